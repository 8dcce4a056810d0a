//! Transactions: what a sender signs, and the signed envelope.

use bytes::Bytes;
use goodwill_proto::v1 as wire;
use prost::Message;

use crate::codec::{DecodeError, decode_canonical, decode_limited, fixed};
use crate::finality::SignedVote;
use crate::{Address, Amount, Hash, Keypair, SealedHeader, hash::TX_DOMAIN};

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload {
    /// Move `amount` from the sender to `to`.
    Transfer {
        /// Recipient.
        to: Address,
        /// Amount moved; positive.
        amount: Amount,
    },
    /// Buy forging weight; the price goes to an eligible association.
    BuyTicket {
        /// Receives the price.
        association: Address,
        /// Price paid, and weight gained.
        price: Amount,
        /// Epochs the ticket is active, from two epochs after the purchase.
        epochs: u32,
        /// The buyer's first reveal commitment, if it has none yet.
        commitment: Option<Hash>,
    },
    /// Register the sender as an association; opens the forgers' vote.
    RegisterAssociation {
        /// Display name.
        name: String,
        /// Where the proof of identity is published.
        proof_url: String,
        /// BLAKE3 of that document.
        document_hash: Hash,
    },
    /// A forger's vote for a registered association.
    VoteAssociation {
        /// The association.
        association: Address,
    },
    /// Two headers one forger signed for one slot.
    ReportEquivocation {
        /// One header.
        first: Box<SealedHeader>,
        /// Another header, same forger and slot, different hash.
        second: Box<SealedHeader>,
    },
    /// Two finality votes one forger signed that break a voting rule together
    /// ([`crate::finality::Vote::conflicts_with`]).
    ReportVoteEquivocation {
        /// One vote.
        first: Box<SignedVote>,
        /// The other, by the same voter.
        second: Box<SignedVote>,
    },
    /// Deploy a contract at [`crate::contract::contract_address`] of the sender and nonce.
    DeployContract {
        /// The Starlark program.
        code: String,
        /// Arguments of `init`, a JSON array.
        args: String,
        /// Most gas it may use; the fee divided by it is the gas price.
        gas_limit: u64,
    },
    /// Call a contract's public function.
    CallContract {
        /// The contract.
        contract: Address,
        /// The function.
        function: String,
        /// Its arguments, a JSON array.
        args: String,
        /// Coins attached.
        value: Amount,
        /// Most gas it may use; the fee divided by it is the gas price.
        gas_limit: u64,
    },
    /// Pay `amount` to `to` every `every_slots` slots, `times` times.
    SchedulePayment {
        /// Recipient.
        to: Address,
        /// Each payment.
        amount: Amount,
        /// Slots between payments.
        every_slots: u64,
        /// How many payments.
        times: u32,
    },
    /// End a schedule the sender owns.
    CancelSchedule {
        /// The schedule's id: the id of the transaction that made it.
        schedule: Hash,
    },
}

impl Payload {
    /// The gas a contract transaction brings; `None` for other kinds.
    pub fn gas_limit(&self) -> Option<u64> {
        match self {
            Payload::DeployContract { gas_limit, .. } | Payload::CallContract { gas_limit, .. } => {
                Some(*gas_limit)
            }
            _ => None,
        }
    }
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionBody {
    /// Chain the transaction is valid on.
    pub chain_id: String,
    /// Sender, whose key signs.
    pub sender: Address,
    /// The sender's count of committed transactions before this one.
    pub nonce: u64,
    /// Fee paid to the forger.
    pub fee: Amount,
    /// What it does.
    pub payload: Payload,
}

impl TransactionBody {
    /// Every account the transaction may change: the sender first.
    pub fn accounts(&self) -> Vec<Address> {
        match &self.payload {
            Payload::Transfer { to, .. } => vec![self.sender, *to],
            Payload::BuyTicket { association, .. } => vec![self.sender, *association],
            Payload::RegisterAssociation { .. } | Payload::VoteAssociation { .. } => vec![self.sender],
            Payload::ReportEquivocation { first, .. } => vec![self.sender, first.header().forger],
            Payload::ReportVoteEquivocation { first, .. } => vec![self.sender, first.voter],
            Payload::DeployContract { .. } => {
                vec![self.sender, crate::contract::contract_address(&self.sender, self.nonce)]
            }
            // Recipients of the contract's transfers are known only once it runs.
            Payload::CallContract { contract, .. } => vec![self.sender, *contract],
            Payload::SchedulePayment { to, .. } => vec![self.sender, *to],
            Payload::CancelSchedule { .. } => vec![self.sender],
        }
    }

    fn to_wire(&self) -> wire::TransactionBody {
        use wire::transaction_body::Payload as P;
        let bytes = |b: &[u8]| Bytes::copy_from_slice(b);
        let payload = match &self.payload {
            Payload::Transfer { to, amount } => {
                P::Transfer(wire::Transfer { to: bytes(to.as_bytes()), amount: amount.0 })
            }
            Payload::BuyTicket { association, price, epochs, commitment } => P::BuyTicket(wire::BuyTicket {
                association: bytes(association.as_bytes()),
                price: price.0,
                epochs: *epochs,
                commitment: commitment.map(|c| bytes(c.as_bytes())).unwrap_or_default(),
            }),
            Payload::RegisterAssociation { name, proof_url, document_hash } => {
                P::RegisterAssociation(wire::RegisterAssociation {
                    name: name.clone(),
                    proof_url: proof_url.clone(),
                    document_hash: bytes(document_hash.as_bytes()),
                })
            }
            Payload::VoteAssociation { association } => {
                P::VoteAssociation(wire::VoteAssociation { association: bytes(association.as_bytes()) })
            }
            Payload::ReportEquivocation { first, second } => {
                P::ReportEquivocation(wire::ReportEquivocation {
                    first: Some(first.to_wire()),
                    second: Some(second.to_wire()),
                })
            }
            Payload::ReportVoteEquivocation { first, second } => {
                P::ReportVoteEquivocation(wire::ReportVoteEquivocation {
                    first: Some(first.to_wire()),
                    second: Some(second.to_wire()),
                })
            }
            Payload::DeployContract { code, args, gas_limit } => P::DeployContract(wire::DeployContract {
                code: code.clone(),
                args: args.clone(),
                gas_limit: *gas_limit,
            }),
            Payload::CallContract { contract, function, args, value, gas_limit } => {
                P::CallContract(wire::CallContract {
                    contract: bytes(contract.as_bytes()),
                    function: function.clone(),
                    args: args.clone(),
                    value: value.0,
                    gas_limit: *gas_limit,
                })
            }
            Payload::SchedulePayment { to, amount, every_slots, times } => {
                P::SchedulePayment(wire::SchedulePayment {
                    to: bytes(to.as_bytes()),
                    amount: amount.0,
                    every_slots: *every_slots,
                    times: *times,
                })
            }
            Payload::CancelSchedule { schedule } => {
                P::CancelSchedule(wire::CancelSchedule { schedule: bytes(schedule.as_bytes()) })
            }
        };
        wire::TransactionBody {
            chain_id: self.chain_id.clone(),
            sender: Bytes::copy_from_slice(self.sender.as_bytes()),
            nonce: self.nonce,
            fee: self.fee.0,
            payload: Some(payload),
        }
    }

    fn from_wire(body: wire::TransactionBody) -> Result<TransactionBody, DecodeError> {
        const WHAT: &str = "TransactionBody";
        use wire::transaction_body::Payload as P;
        let payload = match body.payload {
            Some(P::Transfer(transfer)) => Payload::Transfer {
                to: Address(fixed("Transfer", "to", &transfer.to)?),
                amount: Amount(transfer.amount),
            },
            Some(P::BuyTicket(ticket)) => Payload::BuyTicket {
                association: Address(fixed("BuyTicket", "association", &ticket.association)?),
                price: Amount(ticket.price),
                epochs: ticket.epochs,
                commitment: match ticket.commitment.is_empty() {
                    true => None,
                    false => Some(Hash(fixed("BuyTicket", "commitment", &ticket.commitment)?)),
                },
            },
            Some(P::RegisterAssociation(register)) => Payload::RegisterAssociation {
                name: register.name,
                proof_url: register.proof_url,
                document_hash: Hash(fixed("RegisterAssociation", "document_hash", &register.document_hash)?),
            },
            Some(P::VoteAssociation(vote)) => Payload::VoteAssociation {
                association: Address(fixed("VoteAssociation", "association", &vote.association)?),
            },
            Some(P::ReportEquivocation(report)) => {
                const REPORT: &str = "ReportEquivocation";
                let first = report.first.ok_or(DecodeError::Missing { what: REPORT, field: "first" })?;
                let second = report.second.ok_or(DecodeError::Missing { what: REPORT, field: "second" })?;
                Payload::ReportEquivocation {
                    first: Box::new(SealedHeader::from_wire(first)?),
                    second: Box::new(SealedHeader::from_wire(second)?),
                }
            }
            Some(P::ReportVoteEquivocation(report)) => {
                const REPORT: &str = "ReportVoteEquivocation";
                let first = report.first.ok_or(DecodeError::Missing { what: REPORT, field: "first" })?;
                let second = report.second.ok_or(DecodeError::Missing { what: REPORT, field: "second" })?;
                Payload::ReportVoteEquivocation {
                    first: Box::new(SignedVote::from_wire(&first)?),
                    second: Box::new(SignedVote::from_wire(&second)?),
                }
            }
            Some(P::DeployContract(deploy)) => {
                Payload::DeployContract { code: deploy.code, args: deploy.args, gas_limit: deploy.gas_limit }
            }
            Some(P::CallContract(call)) => Payload::CallContract {
                contract: Address(fixed("CallContract", "contract", &call.contract)?),
                function: call.function,
                args: call.args,
                value: Amount(call.value),
                gas_limit: call.gas_limit,
            },
            Some(P::SchedulePayment(schedule)) => Payload::SchedulePayment {
                to: Address(fixed("SchedulePayment", "to", &schedule.to)?),
                amount: Amount(schedule.amount),
                every_slots: schedule.every_slots,
                times: schedule.times,
            },
            Some(P::CancelSchedule(cancel)) => Payload::CancelSchedule {
                schedule: Hash(fixed("CancelSchedule", "schedule", &cancel.schedule)?),
            },
            None => return Err(DecodeError::Missing { what: WHAT, field: "payload" }),
        };
        Ok(TransactionBody {
            chain_id: body.chain_id,
            sender: Address(fixed(WHAT, "sender", &body.sender)?),
            nonce: body.nonce,
            fee: Amount(body.fee),
            payload,
        })
    }

    /// Signs the body with `key`, which must be the sender's, for the chain whose genesis hash
    /// is `chain`: the signature is valid there and nowhere else, not even on a chain that
    /// reuses this one's id with another genesis.
    pub fn sign(self, key: &Keypair, chain: &Hash) -> Transaction {
        debug_assert_eq!(key.address(), self.sender, "signing with another account's key");
        let body_bytes = Bytes::from(self.to_wire().encode_to_vec());
        let signature = key.sign(&tx_signing_message(chain, &body_bytes));
        Transaction { id: Hash::tagged(TX_DOMAIN, &body_bytes), body: self, body_bytes, signature }
    }
}

/// `"goodwill/tx/v1" || 0x00 || chain || body`: what a transaction's signature covers.
fn tx_signing_message(chain: &Hash, body: &[u8]) -> Vec<u8> {
    let mut bound = Vec::with_capacity(32 + body.len());
    bound.extend_from_slice(chain.as_bytes());
    bound.extend_from_slice(body);
    signing_message(TX_DOMAIN, &bound)
}

/// `domain || 0x00 || bytes`: what a signature covers.
pub(crate) fn signing_message(domain: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(domain.len() + 1 + bytes.len());
    message.extend_from_slice(domain);
    message.push(0);
    message.extend_from_slice(bytes);
    message
}

/// A signed transaction. Its id is the tagged hash of the body, so it does not depend on the
/// signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    id: Hash,
    body: TransactionBody,
    body_bytes: Bytes,
    signature: [u8; 64],
}

impl Transaction {
    /// The transaction's id.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// What the sender signed.
    pub fn body(&self) -> &TransactionBody {
        &self.body
    }

    /// The signature over the body.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// Its leaf in a block's transactions tree ([`crate::hash::transaction_leaf`]).
    pub fn leaf(&self) -> Hash {
        crate::hash::transaction_leaf(&self.id, &self.signature)
    }

    /// Bytes it takes on the wire (a `SignedTransaction`), which is what size limits count.
    /// Computed from the body's length, without encoding anything.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_bytes.len();
        let body_field = 1 + prost::encoding::encoded_len_varint(body as u64) + body;
        let signature_field = 1 + 1 + self.signature.len();
        body_field + signature_field
    }

    /// Checks the signature under the protocol's rule ([`crate::signature`]) for the chain
    /// whose genesis hash is `chain`.
    pub fn verify_signature(&self, chain: &Hash) -> bool {
        let message = tx_signing_message(chain, &self.body_bytes);
        crate::signature::verify(self.body.sender.as_bytes(), &message, &self.signature)
    }

    /// [`Transaction::verify_signature`] of each of `transactions`, in order, checked as one
    /// batch.
    pub fn verify_signatures<'a>(
        chain: &Hash,
        transactions: impl IntoIterator<Item = &'a Transaction>,
    ) -> Vec<bool> {
        let signed: Vec<(&Transaction, Vec<u8>)> =
            transactions.into_iter().map(|tx| (tx, tx_signing_message(chain, &tx.body_bytes))).collect();
        crate::signature::verify_all(signed.iter().map(|(tx, message)| crate::signature::SignedMessage {
            key: tx.body.sender.as_bytes(),
            message,
            signature: &tx.signature,
        }))
    }

    /// The wire form.
    pub fn to_wire(&self) -> wire::SignedTransaction {
        wire::SignedTransaction {
            body: self.body_bytes.clone(),
            signature: Bytes::copy_from_slice(&self.signature),
        }
    }

    /// Reads the wire form. Checks shape, not validity: see [`crate::execute`].
    pub fn from_wire(signed: wire::SignedTransaction) -> Result<Transaction, DecodeError> {
        let body = TransactionBody::from_wire(decode_canonical("TransactionBody", &signed.body)?)?;
        Ok(Transaction {
            id: Hash::tagged(TX_DOMAIN, &signed.body),
            body,
            body_bytes: signed.body,
            signature: fixed("SignedTransaction", "signature", &signed.signature)?,
        })
    }

    /// Decodes a `SignedTransaction` of at most `limit` bytes.
    pub fn decode(bytes: Bytes, limit: usize) -> Result<Transaction, DecodeError> {
        Transaction::from_wire(decode_limited("SignedTransaction", bytes, limit)?)
    }

    /// Encodes the wire form.
    pub fn encode(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector in docs/protocol.md, recomputed: the document must stay true.
    #[test]
    fn protocol_document_test_vector_holds() {
        let sender = Keypair::from_seed([1; 32]);
        let recipient = Keypair::from_seed([2; 32]);
        let tx = TransactionBody {
            chain_id: "goodwill-dev".into(),
            sender: sender.address(),
            nonce: 0,
            fee: Amount(1000),
            payload: Payload::Transfer { to: recipient.address(), amount: Amount(5_000_000_000) },
        }
        .sign(&sender, &Hash([3; 32]));
        let vector = format!(
            "genesis   {}\nsender    {}\nrecipient {}\nbody      {}\nsignature {}\nid        {}\n",
            Hash([3; 32]),
            sender.address(),
            recipient.address(),
            hex::encode(&tx.body_bytes),
            hex::encode(tx.signature),
            tx.id(),
        );
        let document = include_str!("../../docs/protocol.md");
        assert!(document.contains(&vector), "docs/protocol.md must hold this vector:\n{vector}");
        assert!(tx.verify_signature(&Hash([3; 32])));
    }

    #[test]
    fn id_ignores_the_signature_and_signature_covers_the_body() {
        let key = Keypair::from_seed([3; 32]);
        let body = TransactionBody {
            chain_id: "c".into(),
            sender: key.address(),
            nonce: 1,
            fee: Amount(1),
            payload: Payload::Transfer { to: key.address(), amount: Amount(1) },
        };
        let tx = body.clone().sign(&key, &Hash::ZERO);
        let mut wire = tx.to_wire();
        wire.signature = Bytes::from(vec![0u8; 64]);
        let unsigned = Transaction::from_wire(wire).unwrap();
        assert_eq!(unsigned.id(), tx.id());
        assert!(!unsigned.verify_signature(&Hash::ZERO));
    }
}
