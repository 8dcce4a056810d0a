//! What peers say to each other, as domain types, and the one place they are converted from and
//! to protobuf. A request or response from a peer is decoded here or not at all: a missing
//! field, a hash of the wrong length or an over-long list is a typed [`WireError`], never a
//! default value read further in.

use goodwill_ledger::finality::SignedVote;
use goodwill_ledger::lottery::RosterEntry;
use goodwill_ledger::proof::ProvenLeaf;
use goodwill_ledger::{Address, Block, Hash, Transaction};
use goodwill_proto::v1 as wire;

/// Most blocks in one range response; a longer request is served this many.
pub const MAX_RANGE_BLOCKS: u32 = 128;
/// Most hashes in one blocks-by-hash request.
pub const MAX_HASHES: usize = 64;

/// What a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Keeps the full ledger and serves it.
    Main,
    /// Keeps no ledger: pushes transactions and reads through main nodes.
    Light,
}

/// The first exchange on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The chain's id.
    pub chain_id: String,
    /// The chain's genesis block.
    pub genesis: Hash,
    /// The sender's head.
    pub head_height: u64,
    /// Its hash.
    pub head_hash: Hash,
    /// What the sender is.
    pub role: Role,
    /// The protocol version it speaks.
    pub protocol_version: u32,
}

/// A request from one peer to another.
#[derive(Debug, Clone)]
pub enum Request {
    /// The handshake, or a fresh view of the sender's head.
    Status(Status),
    /// Canonical blocks from `start`, at most `count` (the server may send fewer).
    BlocksByRange {
        /// The first height.
        start: u64,
        /// How many.
        count: u32,
    },
    /// Blocks by hash, at most [`MAX_HASHES`].
    BlocksByHash(Vec<Hash>),
    /// A transaction for the server's pool.
    SubmitTransaction(Box<Transaction>),
    /// An account at the server's head, with its proof.
    Account(Address),
    /// Where a transaction is.
    Transaction(Hash),
    /// What a peer that keeps no state needs to check that `forger` may sign a block of
    /// `slot` on the canonical block `parent`, with its proofs.
    Lottery {
        /// The parent block.
        parent: Hash,
        /// The forger.
        forger: Address,
        /// The child's slot.
        slot: u64,
    },
    /// The finality votes the server holds for rounds after `since_round`.
    Votes {
        /// The asker's last final round.
        since_round: u64,
    },
    /// The stored proofs of finality of blocks at or above `from_height`.
    FinalityProofs {
        /// The lowest height wanted.
        from_height: u64,
    },
    /// The stored proofs of finality at or above `from_height`, each with what a peer that
    /// keeps no state needs to check it.
    FinalitySteps {
        /// The lowest height wanted.
        from_height: u64,
    },
    /// The state after a canonical block, from a key on ([`goodwill_ledger::snapshot`]).
    StateChunk {
        /// The block.
        block: Hash,
        /// The first key wanted.
        start: [u8; 32],
    },
    /// The chain spec the server runs; answered before the handshake, to anyone.
    ChainSpec,
}

/// Largest chain spec a node serves or reads over the network (its JSON).
pub const MAX_CHAIN_SPEC_BYTES: usize = 1024 * 1024;

/// Most votes in one answer to [`Request::Votes`].
pub const MAX_SYNC_VOTES: usize = 1_024;
/// Most proofs in one answer to [`Request::FinalityProofs`].
pub const MAX_FINALITY_PROOFS: usize = 16;
/// Most steps in one answer to [`Request::FinalitySteps`].
pub const MAX_FINALITY_STEPS: usize = 128;
/// Steps stop being added to an answer once it holds this many bytes (one always goes in: a
/// step of [`goodwill_ledger::finality::MAX_PROOF_VOTES`] votes fits the response limit).
pub const FINALITY_STEPS_BYTES: usize = 4 * 1024 * 1024;

/// An account read at a head, with the Merkle proof of it against that head's state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAnswer {
    /// Its balance.
    pub balance: u64,
    /// Its next nonce.
    pub nonce: u64,
    /// The head it was read at.
    pub height: u64,
    /// That head's hash.
    pub head_hash: Hash,
    /// Its leaf in the state tree; `None` if the account was never touched.
    pub state: Option<Vec<u8>>,
    /// The encoded proof of that leaf (or of its absence).
    pub proof: Vec<u8>,
}

/// A transaction's receipt and the sibling hashes that prove it against its block header's
/// receipts root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptProof {
    /// The receipt.
    pub receipt: goodwill_ledger::Receipt,
    /// The path, at most [`MAX_RECEIPT_PATH`] hashes.
    pub path: Vec<Hash>,
}

/// Most hashes a receipt's path may hold (a tree of 2^64 leaves).
pub const MAX_RECEIPT_PATH: usize = 64;

/// Where a transaction is, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAnswer {
    /// Neither pending nor committed on the server's chain.
    Unknown,
    /// In the server's pool.
    Pending,
    /// In a canonical block.
    Committed {
        /// The block's height.
        height: u64,
        /// Its hash.
        block_hash: Hash,
        /// The transaction's position in it.
        index: u32,
        /// Its receipt, proven (boxed: the other answers are small).
        receipt: Option<Box<ReceiptProof>>,
    },
}

/// The lottery's inputs after a block for one forger, proven against its state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotteryAnswer {
    /// The block.
    pub block_hash: Hash,
    /// The consensus record's leaf, the roster commitments', the forger's, and its roster
    /// entry (boxed: the other responses are small).
    pub proof: Box<goodwill_ledger::proof::LotteryProof>,
}

/// Why a request was not answered. The wire carries these as stable strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The two peers are on different chains.
    WrongChain,
    /// The request was malformed.
    BadRequest,
    /// The sender asked too often; it should slow down.
    RateLimited,
    /// The server cannot answer now (a read failed, or it is too busy).
    Unavailable,
    /// The sender has not completed the handshake.
    Unverified,
    /// A code this version does not know.
    Other,
}

impl ErrorCode {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::WrongChain => "wrong_chain",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unverified => "unverified",
            ErrorCode::Other => "other",
        }
    }

    fn parse(code: &str) -> ErrorCode {
        match code {
            "wrong_chain" => ErrorCode::WrongChain,
            "bad_request" => ErrorCode::BadRequest,
            "rate_limited" => ErrorCode::RateLimited,
            "unavailable" => ErrorCode::Unavailable,
            "unverified" => ErrorCode::Unverified,
            _ => ErrorCode::Other,
        }
    }
}

/// An answer to a [`Request`].
#[derive(Debug, Clone)]
pub enum Response {
    /// The server's status.
    Status(Status),
    /// Blocks, in the order asked for.
    Blocks(Vec<Block>),
    /// A submitted transaction's id, or why the pool refused it.
    Submitted(Result<Hash, String>),
    /// An account.
    Account(AccountAnswer),
    /// Where a transaction is.
    Transaction(TxAnswer),
    /// The lottery's inputs after a block.
    Lottery(LotteryAnswer),
    /// Finality votes, oldest round first, at most [`MAX_SYNC_VOTES`].
    Votes(Vec<SignedVote>),
    /// Proofs of finality, lowest first, at most [`MAX_FINALITY_PROOFS`].
    FinalityProofs(Vec<goodwill_ledger::finality::FinalityProof>),
    /// Steps of finality, lowest first, at most [`MAX_FINALITY_STEPS`].
    FinalitySteps(Vec<goodwill_ledger::light::FinalityStep>),
    /// Leaves of a state, at most [`goodwill_ledger::snapshot::MAX_CHUNK_ENTRIES`].
    StateChunk(goodwill_ledger::snapshot::StateChunk),
    /// A chain spec's JSON, at most [`MAX_CHAIN_SPEC_BYTES`]; not checked here.
    ChainSpec(String),
    /// The request was not answered.
    Error(ErrorCode, String),
}

impl Response {
    /// An error answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error(code, message.into())
    }
}

/// A wire message that does not make a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A message or field every sender sets was absent.
    #[error("the {0} is missing")]
    Missing(&'static str),
    /// A field did not decode.
    #[error("the {field} is malformed: {reason}")]
    Malformed {
        /// Which field.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A list was longer than any honest sender makes it.
    #[error("{count} {what} is more than the {limit} allowed")]
    TooMany {
        /// What was listed.
        what: &'static str,
        /// How many came.
        count: usize,
        /// How many may.
        limit: usize,
    },
}

fn hash(bytes: &[u8], field: &'static str) -> Result<Hash, WireError> {
    Hash::from_slice(bytes)
        .ok_or(WireError::Malformed { field, reason: format!("{} bytes, not 32", bytes.len()) })
}

fn malformed(field: &'static str) -> impl FnOnce(goodwill_ledger::codec::DecodeError) -> WireError {
    move |error| WireError::Malformed { field, reason: error.to_string() }
}

fn bytes(slice: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(slice)
}

fn optional(value: &[u8]) -> Option<Vec<u8>> {
    (!value.is_empty()).then(|| value.to_vec())
}

impl Role {
    fn from_proto(role: i32) -> Result<Role, WireError> {
        match wire::Role::try_from(role) {
            Ok(wire::Role::Main) => Ok(Role::Main),
            Ok(wire::Role::Light) => Ok(Role::Light),
            _ => Err(WireError::Malformed { field: "role", reason: format!("unknown role {role}") }),
        }
    }

    fn to_proto(self) -> i32 {
        match self {
            Role::Main => wire::Role::Main as i32,
            Role::Light => wire::Role::Light as i32,
        }
    }
}

impl Status {
    /// Reads a status from the wire.
    pub fn from_proto(status: wire::Status) -> Result<Status, WireError> {
        Ok(Status {
            genesis: hash(&status.genesis_hash, "genesis hash")?,
            head_hash: hash(&status.head_hash, "head hash")?,
            role: Role::from_proto(status.role)?,
            chain_id: status.chain_id,
            head_height: status.head_height,
            protocol_version: status.protocol_version,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> wire::Status {
        wire::Status {
            chain_id: self.chain_id.clone(),
            genesis_hash: bytes(self.genesis.as_bytes()),
            head_height: self.head_height,
            head_hash: bytes(self.head_hash.as_bytes()),
            role: self.role.to_proto(),
            protocol_version: self.protocol_version,
        }
    }
}

impl Request {
    /// Reads a request from the wire: lists are measured before they are decoded.
    pub fn from_proto(request: wire::Request) -> Result<Request, WireError> {
        use wire::request::Kind;
        Ok(match request.kind.ok_or(WireError::Missing("request"))? {
            Kind::Status(status) => Request::Status(Status::from_proto(status)?),
            Kind::BlocksByRange(range) => {
                Request::BlocksByRange { start: range.start_height, count: range.count }
            }
            Kind::BlocksByHash(request) => {
                if request.hashes.len() > MAX_HASHES {
                    return Err(WireError::TooMany {
                        what: "hashes",
                        count: request.hashes.len(),
                        limit: MAX_HASHES,
                    });
                }
                let hashes =
                    request.hashes.iter().map(|h| hash(h, "block hash")).collect::<Result<_, _>>()?;
                Request::BlocksByHash(hashes)
            }
            Kind::SubmitTransaction(signed) => Request::SubmitTransaction(Box::new(
                Transaction::from_wire(signed).map_err(malformed("transaction"))?,
            )),
            Kind::Account(query) => Request::Account(
                Address::from_slice(&query.address)
                    .ok_or(WireError::Malformed { field: "address", reason: "not 32 bytes".into() })?,
            ),
            Kind::Transaction(query) => Request::Transaction(hash(&query.id, "transaction id")?),
            Kind::Votes(query) => Request::Votes { since_round: query.since_round },
            Kind::FinalityProofs(query) => Request::FinalityProofs { from_height: query.from_height },
            Kind::FinalitySteps(query) => Request::FinalitySteps { from_height: query.from_height },
            Kind::ChainSpec(_) => Request::ChainSpec,
            Kind::StateChunk(query) => Request::StateChunk {
                block: hash(&query.block_hash, "block hash")?,
                start: query.start_key.as_ref().try_into().map_err(|_| WireError::Malformed {
                    field: "start key",
                    reason: "not 32 bytes".into(),
                })?,
            },
            Kind::Lottery(query) => Request::Lottery {
                parent: hash(&query.block_hash, "block hash")?,
                forger: Address::from_slice(&query.forger)
                    .ok_or(WireError::Malformed { field: "forger", reason: "not 32 bytes".into() })?,
                slot: query.slot,
            },
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> wire::Request {
        use wire::request::Kind;
        let kind = match self {
            Request::Status(status) => Kind::Status(status.to_proto()),
            Request::BlocksByRange { start, count } => {
                Kind::BlocksByRange(wire::BlocksByRange { start_height: *start, count: *count })
            }
            Request::BlocksByHash(hashes) => Kind::BlocksByHash(wire::BlocksByHash {
                hashes: hashes.iter().map(|h| bytes(h.as_bytes())).collect(),
            }),
            Request::SubmitTransaction(tx) => Kind::SubmitTransaction(tx.to_wire()),
            Request::Account(address) => {
                Kind::Account(wire::AccountQuery { address: bytes(address.as_bytes()) })
            }
            Request::Transaction(id) => {
                Kind::Transaction(wire::TransactionQuery { id: bytes(id.as_bytes()) })
            }
            Request::Votes { since_round } => Kind::Votes(wire::VotesQuery { since_round: *since_round }),
            Request::FinalityProofs { from_height } => {
                Kind::FinalityProofs(wire::FinalityProofsQuery { from_height: *from_height })
            }
            Request::FinalitySteps { from_height } => {
                Kind::FinalitySteps(wire::FinalityStepsQuery { from_height: *from_height })
            }
            Request::ChainSpec => Kind::ChainSpec(wire::ChainSpecQuery {}),
            Request::StateChunk { block, start } => Kind::StateChunk(wire::StateChunkQuery {
                block_hash: bytes(block.as_bytes()),
                start_key: bytes(start),
            }),
            Request::Lottery { parent, forger, slot } => Kind::Lottery(wire::LotteryQuery {
                block_hash: bytes(parent.as_bytes()),
                forger: bytes(forger.as_bytes()),
                slot: *slot,
            }),
        };
        wire::Request { kind: Some(kind) }
    }
}

fn leaf_from_proto(leaf: wire::ProvenLeaf) -> ProvenLeaf {
    (optional(&leaf.value), leaf.proof.to_vec())
}

fn leaf_to_proto((value, proof): &ProvenLeaf) -> wire::ProvenLeaf {
    wire::ProvenLeaf { value: value.as_deref().map(bytes).unwrap_or_default(), proof: bytes(proof) }
}

/// A finality vote from the wire (its signature is not checked here).
pub fn vote_from_wire(vote: &wire::SignedVote) -> Result<SignedVote, WireError> {
    SignedVote::from_wire(vote).map_err(malformed("vote"))
}

impl Response {
    /// Reads a response from the wire. Blocks are decoded (and their transactions' encodings
    /// checked) here; their validity is the chain's to judge.
    pub fn from_proto(response: wire::Response) -> Result<Response, WireError> {
        use wire::response::Kind;
        Ok(match response.kind.ok_or(WireError::Missing("response"))? {
            Kind::Status(status) => Response::Status(Status::from_proto(status)?),
            Kind::Blocks(batch) => Response::Blocks(
                batch
                    .blocks
                    .into_iter()
                    .map(Block::from_wire)
                    .collect::<Result<_, _>>()
                    .map_err(malformed("block"))?,
            ),
            Kind::Submit(result) => Response::Submitted(match result.rejection.is_empty() {
                true => Ok(hash(&result.id, "transaction id")?),
                false => Err(result.rejection),
            }),
            Kind::Account(info) => Response::Account(AccountAnswer {
                balance: info.balance,
                nonce: info.nonce,
                height: info.height,
                head_hash: hash(&info.head_hash, "head hash")?,
                state: optional(&info.state),
                proof: info.proof.to_vec(),
            }),
            Kind::Transaction(info) => {
                use wire::transaction_info::State;
                Response::Transaction(match State::try_from(info.state) {
                    Ok(State::Pending) => TxAnswer::Pending,
                    Ok(State::Committed) => {
                        if info.receipt_path.len() > MAX_RECEIPT_PATH {
                            return Err(WireError::TooMany {
                                what: "receipt path hashes",
                                count: info.receipt_path.len(),
                                limit: MAX_RECEIPT_PATH,
                            });
                        }
                        let receipt = match info.receipt {
                            None => None,
                            Some(receipt) => Some(Box::new(ReceiptProof {
                                receipt: goodwill_ledger::Receipt::from_wire(receipt)
                                    .map_err(malformed("receipt"))?,
                                path: info
                                    .receipt_path
                                    .iter()
                                    .map(|h| hash(h, "receipt path hash"))
                                    .collect::<Result<_, _>>()?,
                            })),
                        };
                        TxAnswer::Committed {
                            height: info.height,
                            block_hash: hash(&info.block_hash, "block hash")?,
                            index: info.index,
                            receipt,
                        }
                    }
                    Ok(State::Unknown) => TxAnswer::Unknown,
                    _ => {
                        return Err(WireError::Malformed {
                            field: "transaction state",
                            reason: format!("unknown state {}", info.state),
                        });
                    }
                })
            }
            Kind::Lottery(proof) => Response::Lottery(LotteryAnswer {
                block_hash: hash(&proof.block_hash, "block hash")?,
                proof: Box::new(goodwill_ledger::proof::LotteryProof {
                    consensus: leaf_from_proto(proof.consensus.ok_or(WireError::Missing("consensus leaf"))?),
                    rosters: leaf_from_proto(proof.rosters.ok_or(WireError::Missing("rosters leaf"))?),
                    forger: leaf_from_proto(proof.forger.ok_or(WireError::Missing("forger leaf"))?),
                    entry: proof
                        .entry
                        .as_ref()
                        .map(RosterEntry::from_wire)
                        .transpose()
                        .map_err(malformed("roster entry"))?,
                }),
            }),
            Kind::Votes(batch) => {
                if batch.votes.len() > MAX_SYNC_VOTES {
                    return Err(WireError::TooMany {
                        what: "votes",
                        count: batch.votes.len(),
                        limit: MAX_SYNC_VOTES,
                    });
                }
                Response::Votes(batch.votes.iter().map(vote_from_wire).collect::<Result<_, _>>()?)
            }
            Kind::FinalityProofs(answer) => {
                if answer.proofs.len() > MAX_FINALITY_PROOFS {
                    return Err(WireError::TooMany {
                        what: "finality proofs",
                        count: answer.proofs.len(),
                        limit: MAX_FINALITY_PROOFS,
                    });
                }
                let proofs = answer.proofs.iter().map(goodwill_ledger::finality::FinalityProof::from_wire);
                Response::FinalityProofs(
                    proofs.collect::<Result<_, _>>().map_err(malformed("finality proof"))?,
                )
            }
            Kind::FinalitySteps(answer) => {
                if answer.steps.len() > MAX_FINALITY_STEPS {
                    return Err(WireError::TooMany {
                        what: "finality steps",
                        count: answer.steps.len(),
                        limit: MAX_FINALITY_STEPS,
                    });
                }
                let steps = answer.steps.iter().map(goodwill_ledger::light::FinalityStep::from_wire);
                Response::FinalitySteps(steps.collect::<Result<_, _>>().map_err(malformed("finality step"))?)
            }
            Kind::StateChunk(chunk) => {
                use goodwill_ledger::snapshot::{MAX_CHUNK_ENTRIES, MAX_RANGE_PROOF_BYTES};
                if chunk.entries.len() > MAX_CHUNK_ENTRIES {
                    return Err(WireError::TooMany {
                        what: "state entries",
                        count: chunk.entries.len(),
                        limit: MAX_CHUNK_ENTRIES,
                    });
                }
                if chunk.proof.len() > MAX_RANGE_PROOF_BYTES {
                    return Err(WireError::Malformed {
                        field: "range proof",
                        reason: format!("{} bytes, at most {MAX_RANGE_PROOF_BYTES}", chunk.proof.len()),
                    });
                }
                let entries = chunk
                    .entries
                    .iter()
                    .map(|entry| {
                        let key: [u8; 32] = entry.key.as_ref().try_into().map_err(|_| {
                            WireError::Malformed { field: "state key", reason: "not 32 bytes".into() }
                        })?;
                        Ok((goodwill_ledger::snapshot::KeyHash(key), entry.value.to_vec()))
                    })
                    .collect::<Result<_, WireError>>()?;
                Response::StateChunk(goodwill_ledger::snapshot::StateChunk {
                    entries,
                    proof: chunk.proof.to_vec(),
                    last: chunk.last,
                })
            }
            Kind::ChainSpec(answer) => {
                if answer.json.len() > MAX_CHAIN_SPEC_BYTES {
                    return Err(WireError::Malformed {
                        field: "chain spec",
                        reason: format!("{} bytes, at most {MAX_CHAIN_SPEC_BYTES}", answer.json.len()),
                    });
                }
                Response::ChainSpec(answer.json)
            }
            Kind::Error(error) => Response::Error(ErrorCode::parse(&error.code), error.message),
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> wire::Response {
        use wire::response::Kind;
        let kind = match self {
            Response::Status(status) => Kind::Status(status.to_proto()),
            Response::Blocks(blocks) => {
                Kind::Blocks(wire::Blocks { blocks: blocks.iter().map(Block::to_wire).collect() })
            }
            Response::Submitted(Ok(id)) => {
                Kind::Submit(wire::SubmitResult { id: bytes(id.as_bytes()), rejection: String::new() })
            }
            Response::Submitted(Err(reason)) => {
                Kind::Submit(wire::SubmitResult { id: Default::default(), rejection: reason.clone() })
            }
            Response::Account(answer) => Kind::Account(wire::AccountInfo {
                balance: answer.balance,
                nonce: answer.nonce,
                height: answer.height,
                head_hash: bytes(answer.head_hash.as_bytes()),
                state: answer.state.as_deref().map(bytes).unwrap_or_default(),
                proof: bytes(&answer.proof),
            }),
            Response::Transaction(answer) => {
                use wire::transaction_info::State;
                let mut info = wire::TransactionInfo::default();
                match answer {
                    TxAnswer::Unknown => info.state = State::Unknown as i32,
                    TxAnswer::Pending => info.state = State::Pending as i32,
                    TxAnswer::Committed { height, block_hash, index, receipt } => {
                        info.state = State::Committed as i32;
                        info.height = *height;
                        info.block_hash = bytes(block_hash.as_bytes());
                        info.index = *index;
                        if let Some(proof) = receipt {
                            info.receipt = Some(proof.receipt.to_wire());
                            info.receipt_path = proof.path.iter().map(|h| bytes(h.as_bytes())).collect();
                        }
                    }
                }
                Kind::Transaction(info)
            }
            Response::Lottery(answer) => Kind::Lottery(wire::LotteryProof {
                block_hash: bytes(answer.block_hash.as_bytes()),
                consensus: Some(leaf_to_proto(&answer.proof.consensus)),
                rosters: Some(leaf_to_proto(&answer.proof.rosters)),
                forger: Some(leaf_to_proto(&answer.proof.forger)),
                entry: answer.proof.entry.as_ref().map(RosterEntry::to_wire),
            }),
            Response::Votes(votes) => {
                Kind::Votes(wire::VoteBatch { votes: votes.iter().map(SignedVote::to_wire).collect() })
            }
            Response::FinalityProofs(proofs) => Kind::FinalityProofs(wire::FinalityProofs {
                proofs: proofs.iter().map(goodwill_ledger::finality::FinalityProof::to_wire).collect(),
            }),
            Response::FinalitySteps(steps) => Kind::FinalitySteps(wire::FinalitySteps {
                steps: steps.iter().map(goodwill_ledger::light::FinalityStep::to_wire).collect(),
            }),
            Response::StateChunk(chunk) => Kind::StateChunk(wire::StateChunk {
                entries: chunk
                    .entries
                    .iter()
                    .map(|(key, value)| wire::StateEntry { key: bytes(&key.0), value: bytes(value) })
                    .collect(),
                proof: bytes(&chunk.proof),
                last: chunk.last,
            }),
            Response::ChainSpec(json) => Kind::ChainSpec(wire::ChainSpecAnswer { json: json.clone() }),
            Response::Error(code, message) => {
                Kind::Error(wire::Error { code: code.as_str().into(), message: message.clone() })
            }
        };
        wire::Response { kind: Some(kind) }
    }
}

#[cfg(test)]
mod tests {
    use goodwill_ledger::finality::{BlockId, Checkpoint, FinalityProof, Vote};
    use goodwill_ledger::testkit;

    use super::*;

    fn status() -> Status {
        Status {
            chain_id: "goodwill-dev".into(),
            genesis: Hash([1; 32]),
            head_height: 7,
            head_hash: Hash([2; 32]),
            role: Role::Light,
            protocol_version: crate::PROTOCOL_VERSION,
        }
    }

    #[test]
    fn every_request_survives_the_wire() {
        let (a, b) = (testkit::account(0), testkit::account(1));
        let tx = testkit::transfer(&a, &b, 0, 100, 10);
        let requests = [
            Request::Status(status()),
            Request::BlocksByRange { start: 3, count: 9 },
            Request::BlocksByHash(vec![Hash([3; 32]), Hash([4; 32])]),
            Request::SubmitTransaction(Box::new(tx)),
            Request::Account(a.address()),
            Request::Transaction(Hash([5; 32])),
            Request::Lottery { parent: Hash([6; 32]), forger: Address([7; 32]), slot: 9 },
            Request::Votes { since_round: 12 },
            Request::StateChunk { block: Hash([8; 32]), start: [9; 32] },
            Request::ChainSpec,
        ];
        for request in requests {
            let back = Request::from_proto(request.to_proto()).unwrap();
            assert_eq!(back.to_proto(), request.to_proto());
        }
    }

    #[test]
    fn every_response_survives_the_wire() {
        let responses = [
            Response::Status(status()),
            Response::Submitted(Ok(Hash([7; 32]))),
            Response::Submitted(Err("nonce too low".into())),
            Response::Account(AccountAnswer {
                balance: 5,
                nonce: 1,
                height: 2,
                head_hash: Hash([8; 32]),
                state: None,
                proof: vec![1, 2],
            }),
            Response::Transaction(TxAnswer::Committed {
                height: 4,
                block_hash: Hash([9; 32]),
                index: 3,
                receipt: Some(Box::new(ReceiptProof {
                    receipt: goodwill_ledger::Receipt {
                        transaction_id: Hash([3; 32]),
                        fee: goodwill_ledger::Amount(10),
                        contract: None,
                    },
                    path: vec![Hash([4; 32])],
                })),
            }),
            Response::Transaction(TxAnswer::Pending),
            Response::Lottery(LotteryAnswer {
                block_hash: Hash([10; 32]),
                proof: Box::new(goodwill_ledger::proof::LotteryProof {
                    consensus: (Some(vec![1]), vec![2]),
                    rosters: (Some(vec![4]), vec![5]),
                    forger: (None, vec![3]),
                    entry: Some(RosterEntry { index: 3, start: 10, end: 20, path: vec![Hash([11; 32])] }),
                }),
            }),
            Response::Votes(vec![SignedVote {
                vote: Vote {
                    round: 5,
                    source: Checkpoint { round: 3, block: BlockId { height: 2, hash: Hash([12; 32]) } },
                    target: BlockId { height: 4, hash: Hash([13; 32]) },
                },
                voter: Address([14; 32]),
                signature: [15; 64],
            }]),
            Response::FinalityProofs(vec![FinalityProof {
                finalized: Checkpoint { round: 6, block: BlockId { height: 5, hash: Hash([16; 32]) } },
                votes: vec![SignedVote {
                    vote: Vote {
                        round: 7,
                        source: Checkpoint { round: 6, block: BlockId { height: 5, hash: Hash([16; 32]) } },
                        target: BlockId { height: 6, hash: Hash([17; 32]) },
                    },
                    voter: Address([18; 32]),
                    signature: [19; 64],
                }],
            }]),
            Response::StateChunk(goodwill_ledger::snapshot::StateChunk {
                entries: vec![(goodwill_ledger::snapshot::KeyHash([20; 32]), vec![1, 2, 3])],
                proof: vec![4, 5],
                last: true,
            }),
            Response::ChainSpec("{\"chain_id\": \"x\"}".into()),
            Response::error(ErrorCode::RateLimited, "slow down"),
        ];
        for response in responses {
            let back = Response::from_proto(response.to_proto()).unwrap();
            assert_eq!(back.to_proto(), response.to_proto());
        }
    }

    /// A peer answers with more proofs, or a proof with more votes, than any node stores: the
    /// answer is refused before a vote of it is decoded.
    #[test]
    fn an_answer_with_more_finality_proofs_or_votes_than_allowed_is_refused() {
        let proof = wire::FinalityProof { hash: bytes::Bytes::from_static(&[1; 32]), ..Default::default() };
        let answer = |proofs: Vec<wire::FinalityProof>| wire::Response {
            kind: Some(wire::response::Kind::FinalityProofs(wire::FinalityProofs { proofs })),
        };
        let many = answer(vec![proof.clone(); MAX_FINALITY_PROOFS + 1]);
        assert!(matches!(Response::from_proto(many), Err(WireError::TooMany { count: 17, .. })));
        let votes = vec![wire::SignedVote::default(); goodwill_ledger::finality::MAX_PROOF_VOTES + 1];
        let crowded = answer(vec![wire::FinalityProof { votes, ..proof.clone() }]);
        assert!(matches!(
            Response::from_proto(crowded),
            Err(WireError::Malformed { field: "finality proof", .. })
        ));
        assert!(
            matches!(Response::from_proto(answer(vec![proof])), Ok(Response::FinalityProofs(p)) if p.len() == 1)
        );
    }

    /// A peer answers a state request with more leaves than a chunk holds, a proof longer than
    /// any tree's, or keys that are not keys: refused before the restore sees any of it.
    #[test]
    fn a_state_chunk_larger_than_any_node_serves_is_refused_before_it_is_read() {
        use goodwill_ledger::snapshot::{MAX_CHUNK_ENTRIES, MAX_RANGE_PROOF_BYTES};
        let entry = wire::StateEntry { key: bytes::Bytes::from_static(&[1; 32]), value: bytes::Bytes::new() };
        let answer = |entries: Vec<wire::StateEntry>, proof: Vec<u8>| wire::Response {
            kind: Some(wire::response::Kind::StateChunk(wire::StateChunk {
                entries,
                proof: proof.into(),
                last: false,
            })),
        };
        let many = answer(vec![entry.clone(); MAX_CHUNK_ENTRIES + 1], Vec::new());
        assert!(matches!(Response::from_proto(many), Err(WireError::TooMany { count: 4_097, .. })));
        let long = answer(vec![entry.clone()], vec![0; MAX_RANGE_PROOF_BYTES + 1]);
        assert!(matches!(Response::from_proto(long), Err(WireError::Malformed { field: "range proof", .. })));
        let short_key = wire::StateEntry { key: bytes::Bytes::from_static(&[1; 31]), ..entry.clone() };
        let bad = answer(vec![short_key], Vec::new());
        assert!(matches!(Response::from_proto(bad), Err(WireError::Malformed { field: "state key", .. })));
        assert!(matches!(
            Response::from_proto(answer(vec![entry], vec![1])),
            Ok(Response::StateChunk(chunk)) if chunk.entries.len() == 1
        ));
    }

    #[test]
    fn a_chain_spec_larger_than_any_node_serves_is_refused() {
        let answer = |json: String| wire::Response {
            kind: Some(wire::response::Kind::ChainSpec(wire::ChainSpecAnswer { json })),
        };
        let huge = answer("x".repeat(MAX_CHAIN_SPEC_BYTES + 1));
        assert!(matches!(Response::from_proto(huge), Err(WireError::Malformed { field: "chain spec", .. })));
        let fits = answer("x".repeat(MAX_CHAIN_SPEC_BYTES));
        assert!(
            matches!(Response::from_proto(fits), Ok(Response::ChainSpec(json)) if json.len() == MAX_CHAIN_SPEC_BYTES)
        );
    }

    #[test]
    fn a_request_for_more_hashes_than_allowed_is_refused_before_any_is_read() {
        let hashes = vec![bytes::Bytes::from_static(&[0; 3]); MAX_HASHES + 1];
        let request =
            wire::Request { kind: Some(wire::request::Kind::BlocksByHash(wire::BlocksByHash { hashes })) };
        assert!(matches!(Request::from_proto(request), Err(WireError::TooMany { count: 65, .. })));
    }

    #[test]
    fn missing_and_malformed_fields_are_typed_errors() {
        assert_eq!(
            Request::from_proto(wire::Request { kind: None }).unwrap_err(),
            WireError::Missing("request")
        );
        let mut short = status().to_proto();
        short.genesis_hash = bytes::Bytes::from_static(&[1; 31]);
        let error = Request::from_proto(wire::Request { kind: Some(wire::request::Kind::Status(short)) });
        assert!(matches!(error, Err(WireError::Malformed { field: "genesis hash", .. })));
        let mut unknown = status().to_proto();
        unknown.role = 9;
        assert!(Status::from_proto(unknown).is_err());
        let lottery = wire::Response {
            kind: Some(wire::response::Kind::Lottery(wire::LotteryProof {
                block_hash: bytes::Bytes::from_static(&[0; 32]),
                consensus: None,
                rosters: None,
                forger: None,
                entry: None,
            })),
        };
        assert_eq!(Response::from_proto(lottery).unwrap_err(), WireError::Missing("consensus leaf"));
    }
}
