//! The one place where wire messages become domain types and back.
//!
//! Decoding checks shape only: lengths, presence, canonical encoding, size limits. Whether a
//! transaction or block is *valid* is decided by [`crate::execute`], with the chain's state.

use bytes::Bytes;
use goodwill_proto::v1 as wire;
use prost::Message;

/// A wire message could not become a domain value. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are larger than the limit for this kind of message; they were not decoded.
    #[error("{what} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a protobuf message of the expected type.
    #[error("{what} is not valid protobuf: {reason}")]
    Protobuf {
        /// What was being decoded.
        what: &'static str,
        /// prost's explanation.
        reason: String,
    },
    /// The encoding is valid protobuf but not the canonical one (unknown fields, fields out of
    /// order, default values written out). Signed bytes must be canonical so that one message has
    /// one encoding and one hash.
    #[error(
        "{what} is not canonically encoded (unknown fields, fields out of order, or defaults written out)"
    )]
    NonCanonical {
        /// What was being decoded.
        what: &'static str,
    },
    /// A required field is absent.
    #[error("{what} has no {field}")]
    Missing {
        /// The message.
        what: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A bytes field has the wrong length.
    #[error("{what}.{field} must be {expected} bytes, not {got}")]
    Length {
        /// The message.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// A repeated field has more entries than allowed.
    #[error("{what}.{field} has {count} entries, more than the limit of {limit}")]
    TooMany {
        /// The message.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// Entries it has.
        count: usize,
        /// Most it may have.
        limit: usize,
    },
}

/// Decodes `bytes` as `M`, requiring the canonical encoding.
pub(crate) fn decode_canonical<M: Message + Default>(
    what: &'static str,
    bytes: &Bytes,
) -> Result<M, DecodeError> {
    let message =
        M::decode(bytes.clone()).map_err(|e| DecodeError::Protobuf { what, reason: e.to_string() })?;
    if message.encoded_len() != bytes.len() || message.encode_to_vec() != bytes.as_ref() {
        return Err(DecodeError::NonCanonical { what });
    }
    Ok(message)
}

/// Decodes `bytes` as `M` after checking the size limit.
pub(crate) fn decode_limited<M: Message + Default>(
    what: &'static str,
    bytes: Bytes,
    limit: usize,
) -> Result<M, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge { what, size: bytes.len(), limit });
    }
    M::decode(bytes).map_err(|e| DecodeError::Protobuf { what, reason: e.to_string() })
}

/// A fixed-length bytes field.
pub(crate) fn fixed<const N: usize>(
    what: &'static str,
    field: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], DecodeError> {
    bytes.try_into().map_err(|_| DecodeError::Length { what, field, expected: N, got: bytes.len() })
}

/// Account state as the state tree stores it.
pub(crate) fn encode_account(address: &crate::Address, account: &crate::Account) -> Vec<u8> {
    wire::AccountState {
        address: Bytes::copy_from_slice(address.as_bytes()),
        balance: account.balance.0,
        nonce: account.nonce,
    }
    .encode_to_vec()
}

/// Reads account state written by [`encode_account`].
pub(crate) fn decode_account(bytes: &[u8]) -> Result<(crate::Address, crate::Account), DecodeError> {
    let state = wire::AccountState::decode(bytes)
        .map_err(|e| DecodeError::Protobuf { what: "AccountState", reason: e.to_string() })?;
    let address = crate::Address(fixed("AccountState", "address", &state.address)?);
    Ok((address, crate::Account { balance: crate::Amount(state.balance), nonce: state.nonce }))
}

fn hash_field(what: &'static str, field: &'static str, bytes: &[u8]) -> Result<crate::Hash, DecodeError> {
    fixed(what, field, bytes).map(crate::Hash)
}

fn addresses(
    what: &'static str,
    field: &'static str,
    list: &[Bytes],
) -> Result<Vec<crate::Address>, DecodeError> {
    list.iter().map(|b| fixed(what, field, b).map(crate::Address)).collect()
}

fn address_bytes(list: &[crate::Address]) -> Vec<Bytes> {
    list.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

fn protobuf<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, DecodeError> {
    M::decode(bytes).map_err(|e| DecodeError::Protobuf { what, reason: e.to_string() })
}

/// A forger record as the state tree stores it.
pub(crate) fn encode_forger(address: &crate::Address, forger: &crate::state::ForgerState) -> Vec<u8> {
    wire::ForgerState {
        address: Bytes::copy_from_slice(address.as_bytes()),
        commitment: Bytes::copy_from_slice(forger.commitment.as_bytes()),
        blocks_forged: forger.blocks_forged,
        tickets: forger
            .tickets
            .iter()
            .map(|t| wire::Ticket {
                weight: t.weight.0,
                first_epoch: t.first_epoch,
                last_epoch: t.last_epoch,
                forfeited_from: t.forfeited_from.unwrap_or(0),
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Reads a forger record.
pub(crate) fn decode_forger(bytes: &[u8]) -> Result<crate::state::ForgerState, DecodeError> {
    const WHAT: &str = "ForgerState";
    let forger: wire::ForgerState = protobuf(WHAT, bytes)?;
    Ok(crate::state::ForgerState {
        commitment: hash_field(WHAT, "commitment", &forger.commitment)?,
        blocks_forged: forger.blocks_forged,
        tickets: forger
            .tickets
            .iter()
            .map(|t| crate::state::Ticket {
                weight: crate::Amount(t.weight),
                first_epoch: t.first_epoch,
                last_epoch: t.last_epoch,
                forfeited_from: (t.forfeited_from != 0).then_some(t.forfeited_from),
            })
            .collect(),
    })
}

/// An association record as the state tree stores it.
pub(crate) fn encode_association(
    address: &crate::Address,
    association: &crate::state::AssociationState,
) -> Vec<u8> {
    wire::AssociationState {
        address: Bytes::copy_from_slice(address.as_bytes()),
        name: association.name.clone(),
        proof_url: association.proof_url.clone(),
        document_hash: Bytes::copy_from_slice(association.document_hash.as_bytes()),
        registered_epoch: association.registered_epoch,
        voters: address_bytes(&association.voters),
        eligible: association.eligible,
        received: association.received.0,
    }
    .encode_to_vec()
}

/// Reads an association record.
pub(crate) fn decode_association(bytes: &[u8]) -> Result<crate::state::AssociationState, DecodeError> {
    const WHAT: &str = "AssociationState";
    let association: wire::AssociationState = protobuf(WHAT, bytes)?;
    Ok(crate::state::AssociationState {
        name: association.name,
        proof_url: association.proof_url,
        document_hash: hash_field(WHAT, "document_hash", &association.document_hash)?,
        registered_epoch: association.registered_epoch,
        voters: addresses(WHAT, "voters", &association.voters)?,
        eligible: association.eligible,
        received: crate::Amount(association.received),
    })
}

/// The consensus record as the state tree stores it.
pub(crate) fn encode_consensus(consensus: &crate::state::ConsensusState) -> Vec<u8> {
    wire::ConsensusState {
        mix: Bytes::copy_from_slice(consensus.mix.as_bytes()),
        seed_epoch: consensus.seed_epoch,
        seed: Bytes::copy_from_slice(consensus.seed.as_bytes()),
    }
    .encode_to_vec()
}

/// Reads the consensus record.
pub(crate) fn decode_consensus(bytes: &[u8]) -> Result<crate::state::ConsensusState, DecodeError> {
    const WHAT: &str = "ConsensusState";
    let consensus: wire::ConsensusState = protobuf(WHAT, bytes)?;
    Ok(crate::state::ConsensusState {
        mix: hash_field(WHAT, "mix", &consensus.mix)?,
        seed_epoch: consensus.seed_epoch,
        seed: hash_field(WHAT, "seed", &consensus.seed)?,
    })
}

/// The registry as the state tree stores it.
pub(crate) fn encode_registry(registry: &crate::state::Registry) -> Vec<u8> {
    wire::Registry {
        forgers: address_bytes(&registry.forgers),
        associations: address_bytes(&registry.associations),
    }
    .encode_to_vec()
}

/// Reads the registry.
pub(crate) fn decode_registry(bytes: &[u8]) -> Result<crate::state::Registry, DecodeError> {
    const WHAT: &str = "Registry";
    let registry: wire::Registry = protobuf(WHAT, bytes)?;
    Ok(crate::state::Registry {
        forgers: addresses(WHAT, "forgers", &registry.forgers)?,
        associations: addresses(WHAT, "associations", &registry.associations)?,
    })
}

/// The roster commitments as the state tree stores them.
pub(crate) fn encode_rosters(rosters: &crate::state::Rosters) -> Vec<u8> {
    wire::Rosters { commitments: rosters.commitments.iter().map(roster_commitment_to_wire).collect() }
        .encode_to_vec()
}

/// Reads the roster commitments.
pub(crate) fn decode_rosters(bytes: &[u8]) -> Result<crate::state::Rosters, DecodeError> {
    const WHAT: &str = "Rosters";
    let rosters: wire::Rosters = protobuf(WHAT, bytes)?;
    let commitments =
        rosters.commitments.iter().map(|c| roster_commitment_from_wire(WHAT, c)).collect::<Result<_, _>>()?;
    Ok(crate::state::Rosters { commitments })
}

/// A roster commitment's wire form.
pub(crate) fn roster_commitment_to_wire(c: &crate::state::RosterCommitment) -> wire::RosterCommitment {
    wire::RosterCommitment {
        epoch: c.epoch,
        total_weight: Bytes::copy_from_slice(&c.total_weight.to_be_bytes()),
        forgers: c.forgers,
        root: Bytes::copy_from_slice(c.root.as_bytes()),
    }
}

/// A roster commitment from its wire form, inside the message `what`.
pub(crate) fn roster_commitment_from_wire(
    what: &'static str,
    c: &wire::RosterCommitment,
) -> Result<crate::state::RosterCommitment, DecodeError> {
    let total: [u8; 16] = fixed(what, "total_weight", &c.total_weight)?;
    Ok(crate::state::RosterCommitment {
        epoch: c.epoch,
        total_weight: u128::from_be_bytes(total),
        forgers: c.forgers,
        root: hash_field(what, "root", &c.root)?,
    })
}

/// A contract record as the state tree stores it.
pub(crate) fn encode_contract(address: &crate::Address, record: &crate::state::ContractRecord) -> Vec<u8> {
    wire::ContractRecord {
        address: Bytes::copy_from_slice(address.as_bytes()),
        code: record.code.clone(),
        creator: Bytes::copy_from_slice(record.creator.as_bytes()),
        deployed_height: record.deployed_height,
        storage_entries: record.storage_entries,
    }
    .encode_to_vec()
}

/// Reads a contract record written by [`encode_contract`] for `address`.
pub(crate) fn decode_contract(
    address: &crate::Address,
    bytes: &[u8],
) -> Result<crate::state::ContractRecord, DecodeError> {
    const WHAT: &str = "ContractRecord";
    let record = wire::ContractRecord::decode(bytes)
        .map_err(|e| DecodeError::Protobuf { what: WHAT, reason: e.to_string() })?;
    if fixed(WHAT, "address", &record.address)? != *address.as_bytes() {
        return Err(DecodeError::Protobuf { what: WHAT, reason: "the record names another contract".into() });
    }
    Ok(crate::state::ContractRecord {
        code: record.code,
        creator: crate::Address(fixed(WHAT, "creator", &record.creator)?),
        deployed_height: record.deployed_height,
        storage_entries: record.storage_entries,
    })
}

/// A contract storage entry as the state tree stores it: it names its contract and key, so a
/// proof of the leaf says whose entry it is.
pub(crate) fn encode_contract_entry(contract: &crate::Address, key: &str, value: &str) -> Vec<u8> {
    wire::ContractEntry {
        contract: Bytes::copy_from_slice(contract.as_bytes()),
        key: key.to_string(),
        value: value.to_string(),
    }
    .encode_to_vec()
}

/// Reads an entry written by [`encode_contract_entry`] for `contract` and `key`.
pub(crate) fn decode_contract_entry(
    contract: &crate::Address,
    key: &str,
    bytes: &[u8],
) -> Result<String, DecodeError> {
    const WHAT: &str = "ContractEntry";
    let entry = wire::ContractEntry::decode(bytes)
        .map_err(|e| DecodeError::Protobuf { what: WHAT, reason: e.to_string() })?;
    if fixed(WHAT, "contract", &entry.contract)? != *contract.as_bytes() || entry.key != key {
        return Err(DecodeError::Protobuf {
            what: WHAT,
            reason: "the entry names another contract or key".into(),
        });
    }
    Ok(entry.value)
}

/// A contract receipt as a block's receipts store it.
pub(crate) fn contract_receipt_to_wire(receipt: &crate::execute::ContractReceipt) -> wire::ContractReceipt {
    let (result, error) = match &receipt.result {
        Ok(result) => (result.clone(), String::new()),
        Err(error) => (String::new(), error.clone()),
    };
    wire::ContractReceipt {
        contract: Bytes::copy_from_slice(receipt.contract.as_bytes()),
        gas_used: receipt.gas_used,
        result,
        error,
        events: receipt
            .events
            .iter()
            .map(|e| wire::ContractEvent { name: e.name.clone(), data: e.data.clone() })
            .collect(),
    }
}

/// Reads what [`contract_receipt_to_wire`] wrote.
pub(crate) fn contract_receipt_from_wire(
    receipt: wire::ContractReceipt,
) -> Result<crate::execute::ContractReceipt, DecodeError> {
    Ok(crate::execute::ContractReceipt {
        contract: crate::Address(fixed("ContractReceipt", "contract", &receipt.contract)?),
        gas_used: receipt.gas_used,
        result: if receipt.error.is_empty() { Ok(receipt.result) } else { Err(receipt.error) },
        events: receipt
            .events
            .into_iter()
            .map(|e| crate::contract::Event { name: e.name, data: e.data })
            .collect(),
    })
}

/// The schedule queue as the state tree stores it.
pub(crate) fn encode_schedules(schedules: &[crate::state::ScheduledPayment]) -> Vec<u8> {
    wire::ScheduleQueue {
        schedules: schedules
            .iter()
            .map(|s| wire::ScheduledPayment {
                id: Bytes::copy_from_slice(s.id.as_bytes()),
                owner: Bytes::copy_from_slice(s.owner.as_bytes()),
                to: Bytes::copy_from_slice(s.to.as_bytes()),
                amount: s.amount.0,
                every_slots: s.every_slots,
                remaining: s.remaining,
                next_slot: s.next_slot,
                paid: s.paid,
                skipped: s.skipped,
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Reads what [`encode_schedules`] wrote.
pub(crate) fn decode_schedules(bytes: &[u8]) -> Result<Vec<crate::state::ScheduledPayment>, DecodeError> {
    const WHAT: &str = "ScheduledPayment";
    let queue = wire::ScheduleQueue::decode(bytes)
        .map_err(|e| DecodeError::Protobuf { what: "ScheduleQueue", reason: e.to_string() })?;
    queue
        .schedules
        .into_iter()
        .map(|s| {
            Ok(crate::state::ScheduledPayment {
                id: hash_field(WHAT, "id", &s.id)?,
                owner: crate::Address(fixed(WHAT, "owner", &s.owner)?),
                to: crate::Address(fixed(WHAT, "to", &s.to)?),
                amount: crate::Amount(s.amount),
                every_slots: s.every_slots,
                remaining: s.remaining,
                next_slot: s.next_slot,
                paid: s.paid,
                skipped: s.skipped,
            })
        })
        .collect()
}
