//! Deploying and calling contracts: the engine runs against the block's view of the state, and
//! what a successful run changes is returned to be written with the transaction.

use std::collections::BTreeMap;

use jmt::storage::TreeReader;

use super::{Executor, Writes};
use crate::contract::{CallContext, ContractError, ContractState, Entry, Limits, contract_address};
use crate::execute::{ApplyError, ContractReceipt, TxError};
use crate::state::{Account, ContractRecord, read_contract_entry};
use crate::store::StoreError;
use crate::{Address, Amount, Payload};

impl<R: TreeReader + ?Sized> Executor<'_, R> {
    /// Runs a deployment or call whose sender (already debited the fee and the attached coins)
    /// is `sender`. Returns the fee charged and the receipt; puts into `writes` what a
    /// successful run changes, and the refund into `sender`. A failed run changes nothing else:
    /// the attached coins go back to the sender. Only a state that cannot be read, or a call
    /// to no contract, makes the transaction itself invalid.
    pub(super) fn run_contract(
        &mut self,
        body: &crate::TransactionBody,
        sender: &mut Account,
        writes: &mut Writes,
    ) -> Result<(Amount, ContractReceipt), ApplyError<TxError>> {
        let invalid = ApplyError::Invalid;
        let limits = Limits::default();
        let height = self.version + 1;
        let (address, record, entry, args, value, gas_limit) = match &body.payload {
            Payload::DeployContract { code, args, gas_limit } => {
                let address = contract_address(&body.sender, body.nonce);
                if self.contract(&address)?.is_some() {
                    return Err(invalid(TxError::ContractExists(address)));
                }
                let record = ContractRecord {
                    code: code.clone(),
                    creator: body.sender,
                    deployed_height: height,
                    storage_entries: 0,
                };
                (address, record, Entry::Deploy, args, Amount::ZERO, *gas_limit)
            }
            Payload::CallContract { contract, function, args, value, gas_limit } => {
                let record = self.contract(contract)?.ok_or(invalid(TxError::NoSuchContract(*contract)))?;
                (*contract, record, Entry::Call(function), args, *value, *gas_limit)
            }
            _ => unreachable!("run_contract is called for contract transactions only"),
        };
        // The contract holds what it held plus the attached coins while it runs.
        let mut touched: BTreeMap<Address, Account> = BTreeMap::new();
        touched.insert(body.sender, *sender);
        let mut account = self.account(&address)?;
        account.balance = account.balance.checked_add(value).ok_or(invalid(TxError::BalanceOverflow))?;
        let context =
            CallContext { contract: address, caller: body.sender, value, height, time_ms: self.time_ms };
        let view = ContractView {
            reader: self.reader,
            version: self.version,
            overlay: &self.contract_entries,
            contract: address,
            balance: account.balance,
            entries: record.storage_entries,
        };
        let outcome = crate::contract::call(&record.code, entry, args, context, &view, gas_limit, &limits);
        if let Err(ContractError::State(reason)) = &outcome.result {
            return Err(ApplyError::Store(StoreError::Corrupt(reason.clone())));
        }
        // Gas used times the gas price, at least the chain's minimum fee, at most the fee.
        // (`check_rules` guarantees gas_limit >= 1 and fee >= min_fee; nothing here may panic
        // on a transaction that slipped past it.)
        let price = body.fee.0 / gas_limit.max(1);
        let charged = Amount(
            (u128::from(outcome.gas_used) * u128::from(price))
                .max(u128::from(self.spec.params.min_fee.0))
                .min(u128::from(body.fee.0)) as u64,
        );
        let mut refund = body.fee.0 - charged.0;
        let result = match outcome.result {
            Ok(json) => {
                let mut record = record;
                // The engine counted what its writes added (it read each key to charge for it).
                record.storage_entries =
                    record.storage_entries.saturating_add_signed(outcome.effects.entries_added);
                for (key, value) in &outcome.effects.storage {
                    writes.contract_entries.push(((address, key.clone()), value.clone()));
                }
                touched.insert(address, account);
                for (to, amount) in &outcome.effects.transfers {
                    let payer = touched.get_mut(&address).expect("inserted above");
                    payer.balance =
                        payer.balance.checked_sub(*amount).ok_or(invalid(TxError::BalanceOverflow))?;
                    let mut payee = match touched.get(to) {
                        Some(account) => *account,
                        None => self.account(to)?,
                    };
                    payee.balance =
                        payee.balance.checked_add(*amount).ok_or(invalid(TxError::BalanceOverflow))?;
                    touched.insert(*to, payee);
                }
                writes.contracts.push((address, record));
                Ok(json)
            }
            Err(error) => {
                refund += value.0;
                Err(error.to_string())
            }
        };
        let mut payer = touched.remove(&body.sender).expect("inserted above");
        payer.balance = payer.balance.checked_add(Amount(refund)).ok_or(invalid(TxError::BalanceOverflow))?;
        *sender = payer;
        writes.accounts.extend(touched);
        let receipt = ContractReceipt {
            contract: address,
            gas_used: outcome.gas_used,
            result,
            events: outcome.effects.events,
        };
        Ok((charged, receipt))
    }
}

/// A contract's state as the block so far left it, for the contract engine.
struct ContractView<'x, R: TreeReader + ?Sized> {
    reader: &'x R,
    version: u64,
    overlay: &'x BTreeMap<(Address, String), Option<String>>,
    contract: Address,
    balance: Amount,
    entries: u64,
}

impl<R: TreeReader + ?Sized> ContractState for ContractView<'_, R> {
    fn storage(&self, key: &str) -> Result<Option<String>, String> {
        match self.overlay.get(&(self.contract, key.to_string())) {
            Some(pending) => Ok(pending.clone()),
            None => {
                read_contract_entry(self.reader, self.version, &self.contract, key).map_err(|e| e.to_string())
            }
        }
    }

    fn storage_entries(&self) -> Result<u64, String> {
        Ok(self.entries)
    }

    fn balance(&self) -> Result<Amount, String> {
        Ok(self.balance)
    }
}
