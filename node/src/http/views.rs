//! How chain records look in the API's JSON. Amounts are decimal strings (base units), hashes
//! hex, addresses bech32m, as everywhere else in the API.

// The light peer's build shows receipts only.
#![cfg_attr(not(feature = "node"), allow(dead_code))]

use goodwill_ledger::execute::Receipt;
use goodwill_ledger::state::{AssociationState, ForgerState, Ticket};
use goodwill_ledger::{Block, Payload, SealedHeader, Transaction, TxLocation};
use serde_json::{Value, json};

/// A transaction kind's stable name.
pub fn kind(tx: &Transaction) -> &'static str {
    match &tx.body().payload {
        Payload::Transfer { .. } => "transfer",
        Payload::BuyTicket { .. } => "buy_ticket",
        Payload::RegisterAssociation { .. } => "register_association",
        Payload::VoteAssociation { .. } => "vote_association",
        Payload::ReportEquivocation { .. } => "report_equivocation",
        Payload::ReportVoteEquivocation { .. } => "report_vote_equivocation",
        Payload::DeployContract { .. } => "deploy_contract",
        Payload::CallContract { .. } => "call_contract",
        Payload::SchedulePayment { .. } => "schedule_payment",
        Payload::CancelSchedule { .. } => "cancel_schedule",
        _ => "unknown",
    }
}

fn header_brief(header: &SealedHeader) -> Value {
    let h = header.header();
    json!({ "hash": header.hash(), "height": h.height, "slot": h.slot, "forger": h.forger })
}

/// A proof of finality: the final checkpoint and the votes that made it final.
pub fn finality_proof(proof: &goodwill_ledger::finality::FinalityProof) -> Value {
    let checkpoint = proof.finalized;
    let votes: Vec<Value> = proof
        .votes
        .iter()
        .map(|v| json!({ "voter": v.voter, "vote": vote_brief(&v.vote), "signature": hex::encode(v.signature) }))
        .collect();
    json!({
        "round": checkpoint.round,
        "height": checkpoint.block.height,
        "hash": checkpoint.block.hash,
        "votes": votes,
    })
}

fn vote_brief(vote: &goodwill_ledger::finality::Vote) -> Value {
    json!({
        "round": vote.round,
        "source": { "round": vote.source.round, "height": vote.source.block.height, "hash": vote.source.block.hash },
        "target": { "height": vote.target.height, "hash": vote.target.hash },
    })
}

/// A transaction: what was signed, and what it does.
pub fn transaction(tx: &Transaction) -> Value {
    let body = tx.body();
    let payload = match &body.payload {
        Payload::Transfer { to, amount } => json!({ "to": to, "amount": amount }),
        Payload::BuyTicket { association, price, epochs, commitment } => json!({
            "association": association,
            "price": price,
            "epochs": epochs,
            "commitment": commitment,
        }),
        Payload::RegisterAssociation { name, proof_url, document_hash } => {
            json!({ "name": name, "proof_url": proof_url, "document_hash": document_hash })
        }
        Payload::VoteAssociation { association } => json!({ "association": association }),
        Payload::ReportEquivocation { first, second } => {
            json!({ "first": header_brief(first), "second": header_brief(second) })
        }
        Payload::ReportVoteEquivocation { first, second } => {
            json!({ "voter": first.voter, "first": vote_brief(&first.vote), "second": vote_brief(&second.vote) })
        }
        Payload::DeployContract { code, args, gas_limit } => json!({
            "contract": goodwill_ledger::contract::contract_address(&body.sender, body.nonce),
            "code": code,
            "args": args,
            "gas_limit": gas_limit,
        }),
        Payload::CallContract { contract, function, args, value, gas_limit } => json!({
            "contract": contract,
            "function": function,
            "args": args,
            "value": value,
            "gas_limit": gas_limit,
        }),
        Payload::SchedulePayment { to, amount, every_slots, times } => json!({
            "schedule": tx.id(),
            "to": to,
            "amount": amount,
            "every_slots": every_slots,
            "times": times,
        }),
        Payload::CancelSchedule { schedule } => json!({ "schedule": schedule }),
        _ => Value::Null,
    };
    json!({
        "id": tx.id(),
        "kind": kind(tx),
        "chain_id": body.chain_id,
        "sender": body.sender,
        "nonce": body.nonce,
        "fee": body.fee,
        "size": tx.encoded_len(),
        "payload": payload,
        "accounts": body.accounts(),
    })
}

/// A committed transaction with its block and receipt.
pub fn committed(tx: &Transaction, location: &TxLocation, receipt: Option<&Receipt>) -> Value {
    let mut value = transaction(tx);
    value["status"] = json!("committed");
    value["block"] =
        json!({ "hash": location.block_hash, "height": location.height, "index": location.index });
    value["receipt"] = receipt.map_or(Value::Null, receipt_view);
    value
}

/// What a transaction did: its fee, and for a contract transaction the gas, result or error,
/// and events.
pub fn receipt_view(receipt: &Receipt) -> Value {
    let mut value = json!({ "fee_paid": receipt.fee });
    if let Some(contract) = &receipt.contract {
        let events: Vec<Value> = contract
            .events
            .iter()
            .map(|e| json!({ "name": e.name, "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null) }))
            .collect();
        value["contract"] = json!({
            "address": contract.contract,
            "gas_used": contract.gas_used,
            "succeeded": contract.result.is_ok(),
            "result": contract.result.as_ref().ok().and_then(|r| serde_json::from_str::<Value>(r).ok()),
            "error": contract.result.as_ref().err(),
            "events": events,
        });
    }
    value
}

/// A block's header fields and totals; with `transactions`, its transactions in order.
pub fn block(block: &Block, receipts: &[Receipt], with_transactions: bool) -> Value {
    let header = block.header();
    let fees: u128 = receipts.iter().map(|r| u128::from(r.fee.0)).sum();
    let mut value = json!({
        "hash": block.hash(),
        "height": header.height,
        "parent_hash": header.parent_hash,
        "slot": header.slot,
        "timestamp_ms": header.timestamp_ms,
        "forger": header.forger,
        "rank": header.rank,
        "transaction_count": header.transaction_count,
        "transactions_root": header.transactions_root,
        "state_root": header.state_root,
        "receipts_root": header.receipts_root,
        "reveal": header.reveal,
        "next_commitment": header.next_commitment,
        "size": block.encoded_len(),
        "fees": fees.to_string(),
    });
    if with_transactions {
        value["transactions"] = block
            .transactions
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                let mut v = transaction(tx);
                v["index"] = json!(i);
                v["fee_paid"] = receipts.get(i).map_or(Value::Null, |r| json!(r.fee));
                v
            })
            .collect();
    }
    value
}

/// Where a ticket stands in `epoch`.
pub fn ticket_status(ticket: &Ticket, epoch: u64) -> &'static str {
    if ticket.forfeited_from.is_some_and(|f| f <= epoch) {
        "forfeited"
    } else if ticket.is_active(epoch) {
        "active"
    } else if epoch < ticket.first_epoch {
        "upcoming"
    } else {
        "past"
    }
}

/// A forger's record in `epoch`: its weight on that epoch's roster, and each ticket with its
/// status.
pub fn forger(record: &ForgerState, epoch: u64) -> Value {
    json!({
        "weight": record.weight_in(epoch),
        "blocks_forged": record.blocks_forged,
        "commitment": record.commitment,
        "tickets": record.tickets.iter().map(|t| json!({
            "weight": t.weight,
            "first_epoch": t.first_epoch,
            "last_epoch": t.last_epoch,
            "forfeited_from": t.forfeited_from,
            "status": ticket_status(t, epoch),
        })).collect::<Vec<_>>(),
    })
}

/// An association's record, with its support among the forgers of the current epoch (in
/// hundredths of a percent of the active ticket weight).
pub fn association(record: &AssociationState, support_basis_points: u64) -> Value {
    json!({
        "name": record.name,
        "proof_url": record.proof_url,
        "document_hash": record.document_hash,
        "registered_epoch": record.registered_epoch,
        "eligible": record.eligible,
        "received": record.received,
        "votes": record.voters.len(),
        "voters": record.voters,
        "support_basis_points": support_basis_points,
    })
}
