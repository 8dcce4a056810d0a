//! The state transition: which transactions and blocks are valid, and what they do.
//!
//! Everything here is pure. State is read through a [`TreeReader`] at the parent's version and
//! the result comes back as a value ([`AppliedBlock`]) for the store to commit; an invalid
//! transaction or block returns an error and leaves nothing behind. No clock, no I/O of its own.

use std::collections::BTreeMap;

use jmt::storage::TreeReader;

use crate::codec::{
    encode_association, encode_consensus, encode_contract, encode_contract_entry, encode_forger,
    encode_schedules,
};
use crate::contract::{CallContext, ContractError, ContractState, Entry, Limits, contract_address};
use crate::lottery::{
    ACTIVATION_DELAY_EPOCHS, ELIGIBILITY_PERCENT, Lottery, Roster, epoch_of, epoch_seed, mix_reveal,
    rank_offset_ms, reveal_commitment,
};
use crate::state::{
    Account, AssociationState, ConsensusState, ContractRecord, ForgerState, ScheduledPayment, StateUpdate,
    Ticket, account_values, association_key, consensus_key, contract_entry_key, contract_key, forger_key,
    read_account, read_association, read_consensus, read_contract, read_contract_entry, read_forger,
    read_roster, read_schedules, schedules_key, update_state_with,
};
use crate::store::StoreError;
use crate::{
    Address, Amount, Block, ChainSpec, Hash, Header, Keypair, Payload, SealedHeader, Transaction,
    transactions_root,
};

/// Why a transaction was refused. Each reason has its own variant, so callers can count them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// Larger than the chain allows.
    #[error("transaction is {size} bytes; the chain allows at most {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// Signed for another chain.
    #[error("transaction is for chain {got:?}, but this is {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The chain it names.
        got: String,
    },
    /// Fee below the chain's minimum.
    #[error("fee {got} is below the chain's minimum of {min}")]
    FeeTooLow {
        /// The minimum.
        min: Amount,
        /// The fee offered.
        got: Amount,
    },
    /// A transfer of nothing.
    #[error("a transfer must move a positive amount")]
    ZeroAmount,
    /// The signature does not verify against the sender's key and these exact bytes.
    #[error("signature does not match the sender and body (wrong key, another chain, or altered bytes)")]
    BadSignature,
    /// Nonce already used: a replay, or a transaction already committed.
    #[error("nonce {got} was already used; the sender's next nonce is {expected}")]
    StaleNonce {
        /// The next nonce.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// Nonce ahead of the sender's next one.
    #[error("nonce {got} is ahead of the sender's next nonce {expected}; send the missing ones first")]
    FutureNonce {
        /// The next nonce.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// The sender cannot pay amount plus fee.
    #[error("balance {available} does not cover {needed} (amount plus fee)")]
    InsufficientBalance {
        /// Amount plus fee.
        needed: Amount,
        /// The sender's balance.
        available: Amount,
    },
    /// A balance would pass 2^64 base units.
    #[error("the recipient's balance would overflow")]
    BalanceOverflow,
    /// A ticket below the chain's minimum price.
    #[error("ticket price {got} is below the minimum of {min}")]
    TicketTooCheap {
        /// The minimum.
        min: Amount,
        /// The price offered.
        got: Amount,
    },
    /// A ticket span of zero epochs or beyond the chain's maximum.
    #[error("a ticket spans 1 to {max} epochs, not {got}")]
    TicketSpan {
        /// The maximum.
        max: u32,
        /// The span asked.
        got: u32,
    },
    /// Ticket money may only go to an eligible association.
    #[error("{0} is not an eligible association")]
    NotEligible(Address),
    /// A first ticket must carry the buyer's first reveal commitment.
    #[error("a first ticket must carry a reveal commitment")]
    MissingCommitment,
    /// A forger that has a commitment may not replace it with a ticket purchase.
    #[error("the buyer already has a reveal commitment; leave the field empty")]
    CommitmentAlreadySet,
    /// Name or proof reference out of bounds.
    #[error("invalid association registration: {0}")]
    InvalidRegistration(&'static str),
    /// The sender is already a registered association (or one whose vote is open).
    #[error("{0} is already registered")]
    AlreadyRegistered(Address),
    /// No registration for this address.
    #[error("{0} is not a registered association")]
    UnknownAssociation(Address),
    /// Only forgers with an active ticket may vote.
    #[error("{0} holds no active ticket, and only forgers with one may vote")]
    NoActiveTicket(Address),
    /// One vote per forger and registration.
    #[error("{voter} already voted for {association}")]
    AlreadyVoted {
        /// The voter.
        voter: Address,
        /// The association.
        association: Address,
    },
    /// The association is eligible already.
    #[error("{0} is already eligible")]
    AlreadyEligible(Address),
    /// The voting window closed.
    #[error("the vote on {0} has closed; it may register again")]
    RegistrationExpired(Address),
    /// The two headers are not an equivocation.
    #[error("not an equivocation: {0}")]
    NotEquivocation(&'static str),
    /// The offender has no tickets left to forfeit (already punished, or never a forger).
    #[error("{0} has no tickets left to forfeit")]
    NothingToForfeit(Address),
    /// The block being built has no room left for it.
    #[error("the block has no room left for a transaction of {size} bytes")]
    BlockFull {
        /// Its size.
        size: usize,
    },
    /// The block being built has no gas left for it.
    #[error("the block's contract transactions bring {used} gas of {max}; no room for {gas} more")]
    BlockGasFull {
        /// Its gas limit.
        gas: u64,
        /// Gas the block's contract transactions already bring.
        used: u64,
        /// The chain's `max_block_gas`.
        max: u64,
    },
    /// A contract transaction may bring at most `contract::MAX_TRANSACTION_GAS`.
    #[error("a gas limit of {gas_limit} is above the most one transaction may bring, {max}")]
    GasLimitTooHigh {
        /// The gas limit.
        gas_limit: u64,
        /// The cap.
        max: u64,
    },
    /// A contract transaction must bring gas and pay at least 1 base unit per unit of gas.
    #[error(
        "a gas limit of {gas_limit} needs a fee of at least {gas_limit} (1 base unit per gas), not {fee}"
    )]
    GasPriceTooLow {
        /// The gas limit.
        gas_limit: u64,
        /// The fee offered.
        fee: Amount,
    },
    /// A program that does not parse or is too large, a bad function name, or arguments that
    /// are not a JSON array.
    #[error("invalid contract transaction: {0}")]
    InvalidContract(String),
    /// No contract at that address.
    #[error("no contract at {0}")]
    NoSuchContract(Address),
    /// A contract already lives at the address this deployment would take.
    #[error("a contract already lives at {0}")]
    ContractExists(Address),
    /// A schedule with a zero amount, period or count, or more payments than allowed.
    #[error("invalid schedule: {0}")]
    InvalidSchedule(&'static str),
    /// The chain holds as many active schedules as it allows.
    #[error("the chain holds {max} active schedules, the most it allows; try again when some end")]
    TooManySchedules {
        /// The bound.
        max: usize,
    },
    /// No active schedule with that id belongs to the sender.
    #[error("no active schedule {0} of the sender")]
    UnknownSchedule(Hash),
}

/// Why a block was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Its parent is not the block it is being applied on.
    #[error("block's parent is {got}, expected {expected}")]
    WrongParent {
        /// The parent it must have.
        expected: Hash,
        /// The parent it names.
        got: Hash,
    },
    /// Height is not the parent's plus one.
    #[error("block height is {got}, expected {expected}")]
    WrongHeight {
        /// The height it must have.
        expected: u64,
        /// The height it has.
        got: u64,
    },
    /// Slot does not come after the parent's.
    #[error("block slot {slot} is not after its parent's slot {parent_slot}")]
    SlotNotAfterParent {
        /// The block's slot.
        slot: u64,
        /// The parent's slot.
        parent_slot: u64,
    },
    /// Timestamp outside the slot's window.
    #[error("timestamp {timestamp_ms} is outside slot {slot}'s window")]
    TimestampOutsideSlot {
        /// The block's slot.
        slot: u64,
        /// Its timestamp.
        timestamp_ms: u64,
    },
    /// The forger did not win this slot at this rank.
    #[error("{forger} may not sign slot {slot} at rank {rank}: the lottery did not pick it")]
    NotEntitled {
        /// The forger.
        forger: Address,
        /// The slot.
        slot: u64,
        /// The rank it claims.
        rank: u32,
    },
    /// Stamped before its rank's window opened.
    #[error("rank {rank} may not be stamped before {earliest_ms}; the block says {timestamp_ms}")]
    TooEarlyForRank {
        /// The rank.
        rank: u32,
        /// Earliest allowed time.
        earliest_ms: u64,
        /// The block's time.
        timestamp_ms: u64,
    },
    /// The reveal does not open the forger's commitment.
    #[error("the block's reveal does not match its forger's commitment")]
    BadReveal,
    /// The forger's signature does not verify.
    #[error("the forger's signature does not verify")]
    BadSignature,
    /// `transaction_count` disagrees with the body.
    #[error("header says {header} transactions, body has {body}")]
    CountMismatch {
        /// The header's count.
        header: u32,
        /// The body's count.
        body: usize,
    },
    /// More transactions than the chain allows.
    #[error("block has {count} transactions; the chain allows {max}")]
    TooManyTransactions {
        /// Count.
        count: usize,
        /// Limit.
        max: u32,
    },
    /// More transaction bytes than the chain allows.
    #[error("block has {size} bytes of transactions; the chain allows {max}")]
    TooLarge {
        /// Size.
        size: usize,
        /// Limit.
        max: u32,
    },
    /// The transactions root does not match the body.
    #[error("transactions root {got} does not match the body's {computed}")]
    TransactionsRoot {
        /// What the header says.
        got: Hash,
        /// What the body gives.
        computed: Hash,
    },
    /// The state root does not match the state the block produces.
    #[error("state root {got} does not match the state the block produces, {computed}")]
    StateRoot {
        /// What the header says.
        got: Hash,
        /// What applying the block gives.
        computed: Hash,
    },
    /// A transaction is invalid.
    #[error("transaction {index} ({id}) is invalid: {reason}")]
    Transaction {
        /// Its position.
        index: usize,
        /// Its id.
        id: Hash,
        /// Why.
        reason: TxError,
    },
    /// The forger's reward overflowed.
    #[error("the forger's reward would overflow its balance")]
    RewardOverflow,
}

/// A transaction or block could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError<E> {
    /// It is invalid.
    #[error(transparent)]
    Invalid(E),
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// The transaction.
    pub transaction_id: Hash,
    /// Fee charged.
    pub fee: Amount,
    /// For a contract deployment or call: what it did.
    pub contract: Option<ContractReceipt>,
}

/// What a contract deployment or call did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContractReceipt {
    /// The contract.
    pub contract: Address,
    /// Gas used.
    pub gas_used: u64,
    /// The result (JSON), or why the call failed (it then changed nothing but the fee).
    pub result: Result<String, String>,
    /// Events, in order.
    pub events: Vec<crate::contract::Event>,
}

/// Checks what can be checked without state: size, chain, fee floor, payload bounds, signature.
pub fn check_stateless(tx: &Transaction, spec: &ChainSpec) -> Result<(), TxError> {
    check_rules(tx, spec)?;
    if !tx.verify_signature() {
        return Err(TxError::BadSignature);
    }
    Ok(())
}

/// [`check_stateless`] of each of `transactions`, in order, the signatures checked as one batch
/// (about twice as fast as one by one; see [`crate::signature`]).
pub fn check_stateless_all(transactions: &[Transaction], spec: &ChainSpec) -> Vec<Result<(), TxError>> {
    let mut results: Vec<Result<(), TxError>> = transactions.iter().map(|tx| check_rules(tx, spec)).collect();
    let to_verify: Vec<usize> = (0..transactions.len()).filter(|&i| results[i].is_ok()).collect();
    let verdicts = Transaction::verify_signatures(to_verify.iter().map(|&i| &transactions[i]));
    for (index, valid) in to_verify.into_iter().zip(verdicts) {
        if !valid {
            results[index] = Err(TxError::BadSignature);
        }
    }
    results
}

/// [`check_stateless`] without the signature: for a transaction whose exact bytes (body and
/// signature) this node has verified already.
pub fn check_rules(tx: &Transaction, spec: &ChainSpec) -> Result<(), TxError> {
    let size = tx.encoded_len();
    if size > spec.params.max_transaction_bytes as usize {
        return Err(TxError::TooLarge { size, max: spec.params.max_transaction_bytes });
    }
    let body = tx.body();
    if body.chain_id != spec.chain_id {
        return Err(TxError::WrongChain { expected: spec.chain_id.clone(), got: body.chain_id.clone() });
    }
    if body.fee < spec.params.min_fee {
        return Err(TxError::FeeTooLow { min: spec.params.min_fee, got: body.fee });
    }
    match &body.payload {
        Payload::Transfer { amount, .. } if *amount == Amount::ZERO => return Err(TxError::ZeroAmount),
        Payload::BuyTicket { price, .. } if *price < spec.params.min_ticket_price => {
            return Err(TxError::TicketTooCheap { min: spec.params.min_ticket_price, got: *price });
        }
        Payload::BuyTicket { epochs, .. } if *epochs == 0 || *epochs > spec.params.max_ticket_epochs => {
            return Err(TxError::TicketSpan { max: spec.params.max_ticket_epochs, got: *epochs });
        }
        Payload::ReportEquivocation { first, second } => {
            let (a, b) = (first.header(), second.header());
            if a.forger != b.forger || a.slot != b.slot {
                return Err(TxError::NotEquivocation("the headers must have the same forger and slot"));
            }
            if first.hash() == second.hash() {
                return Err(TxError::NotEquivocation("the two headers are the same block"));
            }
        }
        Payload::SchedulePayment { amount, every_slots, times, .. } => {
            if *amount == Amount::ZERO {
                return Err(TxError::InvalidSchedule("each payment must be positive"));
            }
            if *every_slots == 0 || *every_slots > MAX_SCHEDULE_PERIOD_SLOTS {
                return Err(TxError::InvalidSchedule("the period is 1 to 100,000,000 slots"));
            }
            if *times == 0 || *times > MAX_SCHEDULE_TIMES {
                return Err(TxError::InvalidSchedule("a schedule makes 1 to 10,000 payments"));
            }
        }
        Payload::DeployContract { code, args, gas_limit } => {
            check_gas(*gas_limit, body.fee)?;
            crate::contract::check_program(code, &crate::contract::Limits::default())
                .map_err(|e| TxError::InvalidContract(e.to_string()))?;
            check_contract_args(args)?;
        }
        Payload::CallContract { function, args, gas_limit, .. } => {
            check_gas(*gas_limit, body.fee)?;
            let name_ok = !function.is_empty()
                && function.len() <= MAX_FUNCTION_NAME_BYTES
                && !function.starts_with('_')
                && function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                return Err(TxError::InvalidContract(format!(
                    "{function:?} is not a public function name (1 to {MAX_FUNCTION_NAME_BYTES} letters, digits and _, not starting with _)"
                )));
            }
            check_contract_args(args)?;
        }
        Payload::RegisterAssociation { name, proof_url, .. } => {
            if name.trim().is_empty() || name.len() > MAX_ASSOCIATION_NAME_BYTES {
                return Err(TxError::InvalidRegistration("the name must be 1 to 64 bytes"));
            }
            if !proof_url.starts_with("https://") || proof_url.len() > MAX_PROOF_URL_BYTES {
                return Err(TxError::InvalidRegistration(
                    "the proof URL must be https and at most 256 bytes",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_gas(gas_limit: u64, fee: Amount) -> Result<(), TxError> {
    if gas_limit > crate::contract::MAX_TRANSACTION_GAS {
        return Err(TxError::GasLimitTooHigh { gas_limit, max: crate::contract::MAX_TRANSACTION_GAS });
    }
    if gas_limit == 0 || fee.0 < gas_limit {
        return Err(TxError::GasPriceTooLow { gas_limit, fee });
    }
    Ok(())
}

fn check_contract_args(args: &str) -> Result<(), TxError> {
    let limit = crate::contract::Limits::default().max_io_bytes;
    if args.len() > limit {
        return Err(TxError::InvalidContract(format!("arguments of {} bytes; at most {limit}", args.len())));
    }
    match serde_json::from_str::<serde_json::Value>(args) {
        Ok(serde_json::Value::Array(_)) => Ok(()),
        _ => Err(TxError::InvalidContract("the arguments must be a JSON array".into())),
    }
}

/// Most payments one schedule makes.
pub const MAX_SCHEDULE_TIMES: u32 = 10_000;
/// Longest period of a schedule, in slots.
pub const MAX_SCHEDULE_PERIOD_SLOTS: u64 = 100_000_000;
/// Most active schedules the chain holds at once: the whole queue is one state entry, rewritten
/// by every block that pays or changes a schedule.
pub const MAX_SCHEDULES: usize = 1_024;

/// Longest contract function name, in bytes.
pub const MAX_FUNCTION_NAME_BYTES: usize = 64;
/// Longest association name, in bytes.
pub const MAX_ASSOCIATION_NAME_BYTES: usize = 64;
/// Longest proof URL, in bytes.
pub const MAX_PROOF_URL_BYTES: usize = 256;

/// Applies transactions one by one on top of the state at a version, keeping what they change in
/// memory. A refused transaction changes nothing: every handler reads into locals, checks
/// everything, and only then writes.
pub struct Executor<'a, R: TreeReader + ?Sized> {
    reader: &'a R,
    spec: &'a ChainSpec,
    /// Genesis hash: what block signatures are bound to.
    genesis: Hash,
    version: u64,
    /// Epoch of the block being applied.
    epoch: u64,
    accounts: BTreeMap<Address, Account>,
    contracts: BTreeMap<Address, ContractRecord>,
    contract_entries: BTreeMap<(Address, String), Option<String>>,
    /// The block's timestamp, once [`Executor::begin_block`] has seen its header.
    time_ms: u64,
    /// The block's slot.
    slot: u64,
    /// The schedule queue, once read; `changed` once anything changed it.
    schedules: Option<Vec<ScheduledPayment>>,
    schedules_changed: bool,
    forgers: BTreeMap<Address, ForgerState>,
    associations: BTreeMap<Address, AssociationState>,
    consensus: Option<ConsensusState>,
    roster: Option<Roster>,
    fees: Amount,
    receipts: Vec<Receipt>,
    /// Gas the block's contract transactions brought so far (their gas limits).
    block_gas: u64,
}

impl<'a, R: TreeReader + ?Sized> Executor<'a, R> {
    /// Starts on the state at `version` (the parent block's height), for a block in `slot` of
    /// the chain whose genesis hash is `genesis`.
    pub fn new(reader: &'a R, spec: &'a ChainSpec, genesis: Hash, version: u64, slot: u64) -> Self {
        Executor {
            reader,
            spec,
            genesis,
            version,
            epoch: epoch_of(slot, spec.params.slots_per_epoch),
            accounts: BTreeMap::new(),
            contracts: BTreeMap::new(),
            contract_entries: BTreeMap::new(),
            time_ms: 0,
            slot,
            schedules: None,
            schedules_changed: false,
            forgers: BTreeMap::new(),
            associations: BTreeMap::new(),
            consensus: None,
            roster: None,
            fees: Amount::ZERO,
            receipts: Vec::new(),
            block_gas: 0,
        }
    }

    /// An account as the transactions so far left it.
    pub fn account(&mut self, address: &Address) -> Result<Account, StoreError> {
        match self.accounts.get(address) {
            Some(account) => Ok(*account),
            None => read_account(self.reader, self.version, address),
        }
    }

    fn forger(&self, address: &Address) -> Result<Option<ForgerState>, StoreError> {
        match self.forgers.get(address) {
            Some(forger) => Ok(Some(forger.clone())),
            None => read_forger(self.reader, self.version, address),
        }
    }

    fn association(&self, address: &Address) -> Result<Option<AssociationState>, StoreError> {
        match self.associations.get(address) {
            Some(association) => Ok(Some(association.clone())),
            None => read_association(self.reader, self.version, address),
        }
    }

    /// A contract as the transactions so far left it.
    pub fn contract(&self, address: &Address) -> Result<Option<ContractRecord>, StoreError> {
        match self.contracts.get(address) {
            Some(record) => Ok(Some(record.clone())),
            None => read_contract(self.reader, self.version, address),
        }
    }

    /// Runs a deployment or call whose sender (already debited the fee and the attached coins)
    /// is `sender`. Returns the fee charged and the receipt; puts into `writes` what a
    /// successful run changes, and the refund into `sender`. A failed run changes nothing else:
    /// the attached coins go back to the sender. Only a state that cannot be read, or a call
    /// to no contract, makes the transaction itself invalid.
    fn run_contract(
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

    fn consensus(&mut self) -> Result<ConsensusState, StoreError> {
        if self.consensus.is_none() {
            self.consensus = Some(read_consensus(self.reader, self.version)?);
        }
        Ok(self.consensus.clone().expect("loaded above"))
    }

    /// The roster of the block's epoch. Tickets bought during the epoch start two epochs later,
    /// so it cannot change while the block is applied.
    fn roster(&mut self) -> Result<&Roster, StoreError> {
        if self.roster.is_none() {
            self.roster = Some(read_roster(self.reader, self.version, self.epoch)?);
        }
        Ok(self.roster.as_ref().expect("loaded above"))
    }

    /// The lottery seed of the block's epoch: stored once the epoch's first block is applied,
    /// otherwise derived from the mix the epoch starts with.
    fn seed(&mut self) -> Result<Hash, StoreError> {
        let consensus = self.consensus()?;
        Ok(if consensus.seed_epoch == self.epoch {
            consensus.seed
        } else {
            epoch_seed(self.epoch, &consensus.mix)
        })
    }

    /// The rank at which `forger` may sign `slot`, if any.
    pub fn rank_of(&mut self, slot: u64, forger: &Address) -> Result<Option<u32>, StoreError> {
        let seed = self.seed()?;
        let fallback_ranks = self.spec.params.fallback_ranks;
        let roster = self.roster()?;
        Ok(Lottery { roster, seed, fallback_ranks }.rank_of(slot, forger))
    }

    /// Applies the block's consensus fields before its transactions: the forger must have won
    /// the slot at the rank it claims, stamped no earlier than that rank's window, and its reveal
    /// must open its commitment. The reveal joins the mix; the commitment moves on.
    pub fn begin_block(&mut self, header: &Header) -> Result<(), ApplyError<BlockError>> {
        self.time_ms = header.timestamp_ms;
        let params = &self.spec.params;
        let seed = self.seed()?;
        let (fallback_ranks, slot_duration) = (params.fallback_ranks, params.slot_duration_ms);
        let roster = self.roster()?;
        let lottery = Lottery { roster, seed, fallback_ranks };
        if !lottery.may_sign(header.slot, &header.forger, header.rank) {
            return Err(ApplyError::Invalid(BlockError::NotEntitled {
                forger: header.forger,
                slot: header.slot,
                rank: header.rank,
            }));
        }
        let earliest_ms = self
            .spec
            .slot_start_ms(header.slot)
            .map(|start| start + rank_offset_ms(slot_duration, fallback_ranks, header.rank))
            .unwrap_or(u64::MAX);
        if header.timestamp_ms < earliest_ms {
            return Err(ApplyError::Invalid(BlockError::TooEarlyForRank {
                rank: header.rank,
                earliest_ms,
                timestamp_ms: header.timestamp_ms,
            }));
        }
        let mut forger =
            self.forger(&header.forger)?.ok_or(ApplyError::Invalid(BlockError::NotEntitled {
                forger: header.forger,
                slot: header.slot,
                rank: header.rank,
            }))?;
        if reveal_commitment(&header.reveal) != forger.commitment {
            return Err(ApplyError::Invalid(BlockError::BadReveal));
        }
        forger.commitment = header.next_commitment;
        forger.blocks_forged += 1;
        let mut consensus = self.consensus()?;
        consensus.seed = seed;
        consensus.seed_epoch = self.epoch;
        consensus.mix = mix_reveal(&consensus.mix, &header.reveal);
        self.forgers.insert(header.forger, forger);
        self.consensus = Some(consensus);
        self.pay_due(header.slot)?;
        Ok(())
    }

    /// The schedule queue as the block so far left it.
    fn schedules(&mut self) -> Result<Vec<ScheduledPayment>, StoreError> {
        if self.schedules.is_none() {
            self.schedules = Some(read_schedules(self.reader, self.version)?);
        }
        Ok(self.schedules.clone().expect("loaded above"))
    }

    /// Runs the payments due by `slot`, before the block's transactions: in queue order (due
    /// slot, then schedule id), each schedule at most once per block. A payment the owner's
    /// balance cannot cover is skipped and counted, never paid in part.
    fn pay_due(&mut self, slot: u64) -> Result<(), StoreError> {
        let queue = self.schedules()?;
        if queue.first().is_none_or(|s| s.next_slot > slot) {
            return Ok(());
        }
        let mut kept = Vec::with_capacity(queue.len());
        for mut schedule in queue {
            if schedule.next_slot > slot {
                kept.push(schedule);
                continue;
            }
            let mut owner = self.account(&schedule.owner)?;
            let mut paid = false;
            if let Some(left) = owner.balance.checked_sub(schedule.amount) {
                // Read the payee after the debit: paying oneself works.
                owner.balance = left;
                let before = self.accounts.insert(schedule.owner, owner);
                let mut payee = self.account(&schedule.to)?;
                match payee.balance.checked_add(schedule.amount) {
                    Some(balance) => {
                        payee.balance = balance;
                        self.accounts.insert(schedule.to, payee);
                        paid = true;
                    }
                    // The payee's balance would overflow: undo the debit and skip.
                    None => match before {
                        Some(account) => {
                            self.accounts.insert(schedule.owner, account);
                        }
                        None => {
                            self.accounts.remove(&schedule.owner);
                        }
                    },
                }
            }
            if paid {
                schedule.paid += 1;
            } else {
                schedule.skipped += 1;
            }
            schedule.remaining -= 1;
            if schedule.remaining > 0 {
                schedule.next_slot = schedule.next_slot.saturating_add(schedule.every_slots);
                kept.push(schedule);
            }
        }
        kept.sort_by_key(|s| (s.next_slot, s.id));
        self.schedules = Some(kept);
        self.schedules_changed = true;
        Ok(())
    }

    /// Checks `tx` fully (signature included) and applies it.
    pub fn apply(&mut self, tx: &Transaction) -> Result<&Receipt, ApplyError<TxError>> {
        check_stateless(tx, self.spec).map_err(ApplyError::Invalid)?;
        self.apply_checked(tx)
    }

    /// Applies `tx`, whose stateless checks ([`check_stateless`]) have passed.
    pub fn apply_checked(&mut self, tx: &Transaction) -> Result<&Receipt, ApplyError<TxError>> {
        let body = tx.body();
        let invalid = ApplyError::Invalid;
        // The block's gas is the sum of what its contract transactions may use, known before
        // any of them runs: the cheapest check comes first.
        let block_gas = self.block_gas_with(tx).map_err(invalid)?;
        let mut sender = self.account(&body.sender)?;
        if body.nonce != sender.nonce {
            let (expected, got) = (sender.nonce, body.nonce);
            let error = if got < expected {
                TxError::StaleNonce { expected, got }
            } else {
                TxError::FutureNonce { expected, got }
            };
            return Err(invalid(error));
        }
        let spent = match &body.payload {
            Payload::Transfer { amount, .. } => *amount,
            Payload::BuyTicket { price, .. } => *price,
            Payload::CallContract { value, .. } => *value,
            Payload::RegisterAssociation { .. }
            | Payload::VoteAssociation { .. }
            | Payload::ReportEquivocation { .. }
            | Payload::DeployContract { .. }
            | Payload::SchedulePayment { .. }
            | Payload::CancelSchedule { .. } => Amount::ZERO,
        };
        let needed = spent.checked_add(body.fee).ok_or(invalid(TxError::BalanceOverflow))?;
        sender.balance = sender
            .balance
            .checked_sub(needed)
            .ok_or(invalid(TxError::InsufficientBalance { needed, available: sender.balance }))?;
        sender.nonce += 1;
        let mut fee = body.fee;
        let mut contract_receipt = None;

        // Each arm checks everything and returns what to write; nothing is written before.
        let mut writes = Writes::default();
        match &body.payload {
            Payload::SchedulePayment { to, amount, every_slots, times } => {
                let mut queue = self.schedules()?;
                if queue.len() >= MAX_SCHEDULES {
                    return Err(invalid(TxError::TooManySchedules { max: MAX_SCHEDULES }));
                }
                queue.push(ScheduledPayment {
                    id: tx.id(),
                    owner: body.sender,
                    to: *to,
                    amount: *amount,
                    every_slots: *every_slots,
                    remaining: *times,
                    next_slot: self.slot.saturating_add(*every_slots),
                    paid: 0,
                    skipped: 0,
                });
                queue.sort_by_key(|s| (s.next_slot, s.id));
                writes.schedules = Some(queue);
            }
            Payload::CancelSchedule { schedule } => {
                let mut queue = self.schedules()?;
                let before = queue.len();
                queue.retain(|s| !(s.id == *schedule && s.owner == body.sender));
                if queue.len() == before {
                    return Err(invalid(TxError::UnknownSchedule(*schedule)));
                }
                writes.schedules = Some(queue);
            }
            Payload::DeployContract { .. } | Payload::CallContract { .. } => {
                let ran = self.run_contract(body, &mut sender, &mut writes)?;
                fee = ran.0;
                contract_receipt = Some(ran.1);
            }
            Payload::Transfer { to, amount } => {
                // Read after the debit, so a transfer to oneself works.
                let mut recipient = if *to == body.sender { sender } else { self.account(to)? };
                recipient.balance =
                    recipient.balance.checked_add(*amount).ok_or(invalid(TxError::BalanceOverflow))?;
                writes.accounts.push((*to, recipient));
            }
            Payload::BuyTicket { association, price, epochs, commitment } => {
                let mut record = self
                    .association(association)?
                    .filter(|a| a.eligible)
                    .ok_or(invalid(TxError::NotEligible(*association)))?;
                let mut consensus = self.consensus()?;
                let mut forger = match (self.forger(&body.sender)?, commitment) {
                    (Some(_), Some(_)) => return Err(invalid(TxError::CommitmentAlreadySet)),
                    (Some(forger), None) => forger,
                    (None, Some(commitment)) => {
                        insert_sorted(&mut consensus.forgers, body.sender);
                        ForgerState { commitment: *commitment, blocks_forged: 0, tickets: Vec::new() }
                    }
                    (None, None) => return Err(invalid(TxError::MissingCommitment)),
                };
                let first_epoch = self.epoch + ACTIVATION_DELAY_EPOCHS;
                forger.tickets.retain(|t| t.last_epoch >= self.epoch);
                forger.tickets.push(Ticket {
                    weight: *price,
                    first_epoch,
                    last_epoch: first_epoch + u64::from(*epochs) - 1,
                });
                record.received =
                    record.received.checked_add(*price).ok_or(invalid(TxError::BalanceOverflow))?;
                let base = if *association == body.sender { sender } else { self.account(association)? };
                let mut payee = base;
                payee.balance = payee.balance.checked_add(*price).ok_or(invalid(TxError::BalanceOverflow))?;
                writes.accounts.push((*association, payee));
                writes.forgers.push((body.sender, forger));
                writes.associations.push((*association, record));
                writes.consensus = Some(consensus);
            }
            Payload::RegisterAssociation { name, proof_url, document_hash } => {
                if let Some(existing) = self.association(&body.sender)? {
                    let expired = !existing.eligible
                        && self.epoch
                            > existing.registered_epoch.saturating_add(self.spec.params.vote_window_epochs);
                    if !expired {
                        return Err(invalid(TxError::AlreadyRegistered(body.sender)));
                    }
                }
                let mut consensus = self.consensus()?;
                insert_sorted(&mut consensus.associations, body.sender);
                writes.associations.push((
                    body.sender,
                    AssociationState {
                        name: name.clone(),
                        proof_url: proof_url.clone(),
                        document_hash: *document_hash,
                        registered_epoch: self.epoch,
                        voters: Vec::new(),
                        eligible: false,
                        received: Amount::ZERO,
                    },
                ));
                writes.consensus = Some(consensus);
            }
            Payload::ReportEquivocation { first, second } => {
                // Signatures are bound to this chain's genesis: headers a key signed on another
                // chain prove nothing here.
                if !first.verify_signature(&self.genesis) || !second.verify_signature(&self.genesis) {
                    return Err(invalid(TxError::NotEquivocation(
                        "a header is not signed by its forger for this chain",
                    )));
                }
                let offender = first.header().forger;
                let mut record = self
                    .forger(&offender)?
                    .filter(|f| !f.tickets.is_empty())
                    .ok_or(invalid(TxError::NothingToForfeit(offender)))?;
                // The ticket money went to associations when it was paid; what is forfeited is
                // every ticket's remaining forging weight.
                record.tickets.clear();
                writes.forgers.push((offender, record));
            }
            Payload::VoteAssociation { association } => {
                let voter = body.sender;
                let epoch = self.epoch;
                let window = self.spec.params.vote_window_epochs;
                let roster = self.roster()?;
                if roster.weight(&voter) == 0 {
                    return Err(invalid(TxError::NoActiveTicket(voter)));
                }
                let total = roster.total_weight();
                let mut record = self
                    .association(association)?
                    .ok_or(invalid(TxError::UnknownAssociation(*association)))?;
                if record.eligible {
                    return Err(invalid(TxError::AlreadyEligible(*association)));
                }
                if epoch > record.registered_epoch.saturating_add(window) {
                    return Err(invalid(TxError::RegistrationExpired(*association)));
                }
                if !insert_sorted(&mut record.voters, voter) {
                    return Err(invalid(TxError::AlreadyVoted { voter, association: *association }));
                }
                // Weighted by tickets, not counted per key: keys are free, weight is not.
                let roster = self.roster()?;
                let support: u128 = record.voters.iter().map(|v| roster.weight(v)).sum();
                record.eligible = support * 100 >= total * ELIGIBILITY_PERCENT;
                writes.associations.push((*association, record));
            }
        }
        let fees = self.fees.checked_add(fee).ok_or(invalid(TxError::BalanceOverflow))?;
        // Every check has passed: only now does state change.
        self.accounts.insert(body.sender, sender);
        for (address, account) in writes.accounts {
            self.accounts.insert(address, account);
        }
        self.contracts.extend(writes.contracts);
        if let Some(queue) = writes.schedules {
            self.schedules = Some(queue);
            self.schedules_changed = true;
        }
        self.contract_entries.extend(writes.contract_entries);
        self.forgers.extend(writes.forgers);
        self.associations.extend(writes.associations);
        if let Some(consensus) = writes.consensus {
            self.consensus = Some(consensus);
        }
        self.fees = fees;
        self.block_gas = block_gas;
        self.receipts.push(Receipt { transaction_id: tx.id(), fee, contract: contract_receipt });
        Ok(self.receipts.last().expect("just pushed"))
    }

    /// The block's gas once `tx` is in it, or why it does not fit.
    fn block_gas_with(&self, tx: &Transaction) -> Result<u64, TxError> {
        let gas = tx.body().payload.gas_limit().unwrap_or(0);
        let max = self.spec.params.max_block_gas;
        match self.block_gas.checked_add(gas) {
            Some(total) if total <= max => Ok(total),
            _ => Err(TxError::BlockGasFull { gas, used: self.block_gas, max }),
        }
    }

    /// Pays the forger the block reward and the fees, and computes the state at `version + 1`.
    pub fn finish(mut self, forger: &Address) -> Result<(StateUpdate, Vec<Receipt>), ApplyError<BlockError>> {
        let income = self
            .spec
            .params
            .block_reward
            .checked_add(self.fees)
            .ok_or(ApplyError::Invalid(BlockError::RewardOverflow))?;
        let mut account = self.account(forger)?;
        account.balance =
            account.balance.checked_add(income).ok_or(ApplyError::Invalid(BlockError::RewardOverflow))?;
        self.accounts.insert(*forger, account);
        let mut entries = account_values(&self.accounts);
        for (address, record) in &self.forgers {
            entries.insert(forger_key(address), encode_forger(address, record));
        }
        for (address, record) in &self.associations {
            entries.insert(association_key(address), encode_association(address, record));
        }
        if let Some(consensus) = &self.consensus {
            entries.insert(consensus_key(), encode_consensus(consensus));
        }
        for (address, record) in &self.contracts {
            entries.insert(contract_key(address), encode_contract(address, record));
        }
        if self.schedules_changed {
            let queue = self.schedules.as_deref().unwrap_or_default();
            entries.insert(schedules_key(), encode_schedules(queue));
        }
        let mut entries: BTreeMap<_, _> = entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
        for ((contract, key), value) in &self.contract_entries {
            let leaf = value.as_ref().map(|value| encode_contract_entry(contract, key, value));
            entries.insert(contract_entry_key(contract, key), leaf);
        }
        let update = update_state_with(self.reader, self.version + 1, entries)?;
        Ok((update, self.receipts))
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

/// What a transaction writes once all its checks pass.
#[derive(Default)]
struct Writes {
    accounts: Vec<(Address, Account)>,
    contracts: Vec<(Address, ContractRecord)>,
    contract_entries: Vec<((Address, String), Option<String>)>,
    schedules: Option<Vec<ScheduledPayment>>,
    forgers: Vec<(Address, ForgerState)>,
    associations: Vec<(Address, AssociationState)>,
    consensus: Option<ConsensusState>,
}

/// Inserts into a sorted list; false if already there.
fn insert_sorted(list: &mut Vec<Address>, address: Address) -> bool {
    match list.binary_search(&address) {
        Ok(_) => false,
        Err(at) => {
            list.insert(at, address);
            true
        }
    }
}

/// A block checked against its parent and applied: what the store commits.
#[derive(Debug, Clone)]
pub struct AppliedBlock {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// The state it produces.
    pub state: StateUpdate,
}

/// Checks the header against its parent and the chain's rules, without touching state.
pub fn check_header(
    spec: &ChainSpec,
    genesis: &Hash,
    parent: &SealedHeader,
    block: &Block,
) -> Result<(), BlockError> {
    let header = block.header();
    let parent_header = parent.header();
    if header.parent_hash != parent.hash() {
        return Err(BlockError::WrongParent { expected: parent.hash(), got: header.parent_hash });
    }
    if header.height != parent_header.height + 1 {
        return Err(BlockError::WrongHeight { expected: parent_header.height + 1, got: header.height });
    }
    if header.slot <= parent_header.slot {
        return Err(BlockError::SlotNotAfterParent { slot: header.slot, parent_slot: parent_header.slot });
    }
    let window = header
        .slot
        .checked_add(1)
        .and_then(|next| spec.slot_start_ms(header.slot).zip(spec.slot_start_ms(next)));
    if !window.is_some_and(|(start, end)| (start..end).contains(&header.timestamp_ms)) {
        return Err(BlockError::TimestampOutsideSlot {
            slot: header.slot,
            timestamp_ms: header.timestamp_ms,
        });
    }
    check_contents(spec, genesis, block)
}

/// Checks what a block proves about itself, without its parent: the body matches the header's
/// count, limits and transactions root, and the forger's signature (bound to this chain) holds.
pub fn check_contents(spec: &ChainSpec, genesis: &Hash, block: &Block) -> Result<(), BlockError> {
    let header = block.header();
    let count = block.transactions.len();
    if header.transaction_count as usize != count {
        return Err(BlockError::CountMismatch { header: header.transaction_count, body: count });
    }
    if count > spec.params.max_block_transactions as usize {
        return Err(BlockError::TooManyTransactions { count, max: spec.params.max_block_transactions });
    }
    let size: usize = block.transactions.iter().map(Transaction::encoded_len).sum();
    if size > spec.params.max_block_bytes as usize {
        return Err(BlockError::TooLarge { size, max: spec.params.max_block_bytes });
    }
    let ids: Vec<Hash> = block.transactions.iter().map(Transaction::id).collect();
    let computed = transactions_root(&ids);
    if computed != header.transactions_root {
        return Err(BlockError::TransactionsRoot { got: header.transactions_root, computed });
    }
    if !block.header.verify_signature(genesis) {
        return Err(BlockError::BadSignature);
    }
    Ok(())
}

/// `apply(state, block) -> (state', receipts)`: checks `block` on top of `parent` (whose state
/// `reader` holds) and returns what it changes, or why it is invalid. Writes nothing.
pub fn apply_block<R: TreeReader + ?Sized>(
    reader: &R,
    spec: &ChainSpec,
    genesis: &Hash,
    parent: &SealedHeader,
    block: Block,
) -> Result<AppliedBlock, ApplyError<BlockError>> {
    apply_block_with(reader, spec, genesis, parent, block, &|_| false)
}

/// [`apply_block`], skipping the signature check of each transaction for which `verified`
/// holds. `verified` must answer for the transaction's exact bytes, signature included (two
/// transactions with one body and different signatures have the same id): a node that skipped a
/// signature another node checks would otherwise accept a block the other refuses.
pub fn apply_block_with<R: TreeReader + ?Sized>(
    reader: &R,
    spec: &ChainSpec,
    genesis: &Hash,
    parent: &SealedHeader,
    block: Block,
    verified: &dyn Fn(&Transaction) -> bool,
) -> Result<AppliedBlock, ApplyError<BlockError>> {
    check_header(spec, genesis, parent, &block).map_err(ApplyError::Invalid)?;
    // The signatures not verified yet, checked together before anything is applied (a block with
    // a bad one is refused whole); the refusal names the first transaction that breaks a rule,
    // in block order, as checking one by one would.
    let unverified: Vec<bool> = block.transactions.iter().map(|tx| !verified(tx)).collect();
    let mut signatures = Transaction::verify_signatures(
        block.transactions.iter().zip(&unverified).filter(|(_, unverified)| **unverified).map(|(tx, _)| tx),
    )
    .into_iter();
    let mut executor = Executor::new(reader, spec, *genesis, parent.header().height, block.header().slot);
    executor.begin_block(block.header())?;
    for (index, tx) in block.transactions.iter().enumerate() {
        let signature_ok = !unverified[index] || signatures.next() == Some(true);
        let checked =
            check_rules(tx, spec).and(if signature_ok { Ok(()) } else { Err(TxError::BadSignature) });
        let applied = match checked {
            Ok(()) => executor.apply_checked(tx),
            Err(reason) => Err(ApplyError::Invalid(reason)),
        };
        applied.map_err(|error| match error {
            ApplyError::Invalid(reason) => {
                ApplyError::Invalid(BlockError::Transaction { index, id: tx.id(), reason })
            }
            ApplyError::Store(error) => ApplyError::Store(error),
        })?;
    }
    let (state, receipts) = executor.finish(&block.header().forger)?;
    if state.root != block.header().state_root {
        return Err(ApplyError::Invalid(BlockError::StateRoot {
            got: block.header().state_root,
            computed: state.root,
        }));
    }
    Ok(AppliedBlock { block, receipts, state })
}

/// Builds a block for a forger that won its slot: transactions are applied as they are pushed,
/// and refused ones leave no trace.
pub struct BlockBuilder<'a, R: TreeReader + ?Sized> {
    executor: Executor<'a, R>,
    header: Header,
    transactions: Vec<Transaction>,
    bytes: usize,
}

impl<'a, R: TreeReader + ?Sized> BlockBuilder<'a, R> {
    /// Starts `forger`'s block on `parent` for `slot`, at the best rank the lottery gives it,
    /// stamped `timestamp_ms` (which must be inside that rank's window of the slot).
    pub fn new(
        reader: &'a R,
        spec: &'a ChainSpec,
        genesis: Hash,
        parent: &SealedHeader,
        forger: &Keypair,
        slot: u64,
        timestamp_ms: u64,
    ) -> Result<Self, ApplyError<BlockError>> {
        let mut executor = Executor::new(reader, spec, genesis, parent.header().height, slot);
        let address = forger.address();
        let not_entitled = || ApplyError::Invalid(BlockError::NotEntitled { forger: address, slot, rank: 0 });
        let rank = executor.rank_of(slot, &address)?.ok_or_else(not_entitled)?;
        let record = read_forger(reader, parent.header().height, &address)?.ok_or_else(not_entitled)?;
        let header = Header {
            parent_hash: parent.hash(),
            height: parent.header().height + 1,
            slot,
            timestamp_ms,
            transactions_root: Hash::ZERO,
            state_root: Hash::ZERO,
            forger: address,
            transaction_count: 0,
            rank,
            reveal: forger.reveal_secret(record.blocks_forged),
            next_commitment: forger.reveal_commitment(record.blocks_forged + 1),
        };
        executor.begin_block(&header)?;
        Ok(BlockBuilder { executor, header, transactions: Vec::new(), bytes: 0 })
    }

    /// The rank the block is forged at.
    pub fn rank(&self) -> u32 {
        self.header.rank
    }

    /// Whether another transaction of `size` bytes fits.
    pub fn has_room(&self, size: usize) -> bool {
        let params = &self.executor.spec.params;
        self.transactions.len() < params.max_block_transactions as usize
            && self.bytes + size <= params.max_block_bytes as usize
    }

    /// Whether `tx` fits: its bytes, and its gas if it is a contract transaction.
    pub fn fits(&self, tx: &Transaction) -> bool {
        self.has_room(tx.encoded_len()) && self.executor.block_gas_with(tx).is_ok()
    }

    /// Number of transactions so far.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether no transaction was pushed.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Checks (signature included), applies and includes `tx`, or refuses it and changes nothing.
    pub fn push(&mut self, tx: Transaction) -> Result<(), ApplyError<TxError>> {
        check_stateless(&tx, self.executor.spec).map_err(ApplyError::Invalid)?;
        self.push_admitted(tx)
    }

    /// Includes `tx`, whose stateless checks (signature included) already passed when it was
    /// admitted to the pool on this chain, so its signature is not verified a second time.
    pub fn push_admitted(&mut self, tx: Transaction) -> Result<(), ApplyError<TxError>> {
        let size = tx.encoded_len();
        if !self.has_room(size) {
            return Err(ApplyError::Invalid(TxError::BlockFull { size }));
        }
        self.executor.apply_checked(&tx)?;
        self.bytes += size;
        self.transactions.push(tx);
        Ok(())
    }

    /// Seals the block with `forger`'s signature.
    pub fn seal(self, forger: &Keypair) -> Result<AppliedBlock, ApplyError<BlockError>> {
        let genesis = self.executor.genesis;
        let (state, receipts) = self.executor.finish(&forger.address())?;
        let ids: Vec<Hash> = self.transactions.iter().map(Transaction::id).collect();
        let header = Header {
            transactions_root: transactions_root(&ids),
            state_root: state.root,
            transaction_count: self.transactions.len() as u32,
            ..self.header
        };
        let block = Block { header: header.sign(forger, &genesis), transactions: self.transactions };
        Ok(AppliedBlock { block, receipts, state })
    }
}
