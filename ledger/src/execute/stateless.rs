//! The rules that need no state: size, chain, fee floor, payload bounds, signature. Every node
//! judges a transaction alike here, so one that breaks them was relayed by a node that did not
//! check ([`TxError::is_stateless`]).

use super::TxError;
use crate::{Amount, ChainSpec, Hash, Payload, Transaction};

/// Checks what can be checked without state: size, chain, fee floor, payload bounds, and the
/// signature for the chain whose genesis hash is `genesis`.
pub fn check_stateless(tx: &Transaction, spec: &ChainSpec, genesis: &Hash) -> Result<(), TxError> {
    check_rules(tx, spec)?;
    if !tx.verify_signature(genesis) {
        return Err(TxError::BadSignature);
    }
    Ok(())
}

/// [`check_stateless`] of each of `transactions`, in order, the signatures checked as one batch
/// (about twice as fast as one by one; see [`crate::signature`]).
pub fn check_stateless_all(
    transactions: &[Transaction],
    spec: &ChainSpec,
    genesis: &Hash,
) -> Vec<Result<(), TxError>> {
    let mut results: Vec<Result<(), TxError>> = transactions.iter().map(|tx| check_rules(tx, spec)).collect();
    let to_verify: Vec<usize> = (0..transactions.len()).filter(|&i| results[i].is_ok()).collect();
    let verdicts = Transaction::verify_signatures(genesis, to_verify.iter().map(|&i| &transactions[i]));
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
        // An association buying a ticket that pays itself would gain forging weight for the fee
        // alone: the price must leave the buyer.
        Payload::BuyTicket { association, .. } if *association == body.sender => {
            return Err(TxError::TicketPaysBuyer);
        }
        Payload::RegisterAssociation { .. } if body.fee < spec.params.min_registration_fee => {
            return Err(TxError::RegistrationFeeTooLow {
                min: spec.params.min_registration_fee,
                got: body.fee,
            });
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
        Payload::ReportVoteEquivocation { first, second } => {
            if first.voter != second.voter {
                return Err(TxError::NotEquivocation("the votes must have the same voter"));
            }
            if first.vote == second.vote {
                return Err(TxError::NotEquivocation("the two votes are the same"));
            }
            if !first.vote.conflicts_with(&second.vote) {
                return Err(TxError::NotEquivocation(
                    "the votes neither share a round nor does one's span surround the other's",
                ));
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
/// Most active schedules one account may own: one account cannot take the chain's whole queue.
pub const MAX_SCHEDULES_PER_ACCOUNT: usize = 16;

/// Longest contract function name, in bytes.
pub const MAX_FUNCTION_NAME_BYTES: usize = 64;
/// Longest association name, in bytes.
pub const MAX_ASSOCIATION_NAME_BYTES: usize = 64;
/// Longest proof URL, in bytes.
pub const MAX_PROOF_URL_BYTES: usize = 256;
