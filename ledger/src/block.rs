//! Block headers and blocks.

use bytes::Bytes;
use goodwill_proto::v1 as wire;
use prost::Message;

use crate::codec::{DecodeError, decode_canonical, decode_limited, fixed};
use crate::tx::signing_message;
use crate::{Address, Hash, Keypair, Transaction, hash::BLOCK_DOMAIN};

/// What a forger signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Hash of the parent header.
    pub parent_hash: Hash,
    /// Distance from genesis.
    pub height: u64,
    /// Slot the block was forged in.
    pub slot: u64,
    /// Unix time in milliseconds, inside the slot.
    pub timestamp_ms: u64,
    /// Merkle root of the transaction ids.
    pub transactions_root: Hash,
    /// State-tree root after the block.
    pub state_root: Hash,
    /// The forger's address (its public key).
    pub forger: Address,
    /// Number of transactions in the body.
    pub transaction_count: u32,
    /// The forger's lottery rank in this slot (0 = primary draw).
    pub rank: u32,
    /// Preimage of the forger's reveal commitment.
    pub reveal: Hash,
    /// The forger's next reveal commitment.
    pub next_commitment: Hash,
    /// Merkle root of the receipts, in transaction order.
    pub receipts_root: Hash,
}

impl Header {
    fn to_wire(&self) -> wire::BlockHeader {
        wire::BlockHeader {
            parent_hash: Bytes::copy_from_slice(self.parent_hash.as_bytes()),
            height: self.height,
            slot: self.slot,
            timestamp_ms: self.timestamp_ms,
            transactions_root: Bytes::copy_from_slice(self.transactions_root.as_bytes()),
            state_root: Bytes::copy_from_slice(self.state_root.as_bytes()),
            forger: Bytes::copy_from_slice(self.forger.as_bytes()),
            transaction_count: self.transaction_count,
            rank: self.rank,
            reveal: Bytes::copy_from_slice(self.reveal.as_bytes()),
            next_commitment: Bytes::copy_from_slice(self.next_commitment.as_bytes()),
            receipts_root: Bytes::copy_from_slice(self.receipts_root.as_bytes()),
        }
    }

    fn from_wire(header: wire::BlockHeader) -> Result<Header, DecodeError> {
        const WHAT: &str = "BlockHeader";
        Ok(Header {
            parent_hash: Hash(fixed(WHAT, "parent_hash", &header.parent_hash)?),
            height: header.height,
            slot: header.slot,
            timestamp_ms: header.timestamp_ms,
            transactions_root: Hash(fixed(WHAT, "transactions_root", &header.transactions_root)?),
            state_root: Hash(fixed(WHAT, "state_root", &header.state_root)?),
            forger: Address(fixed(WHAT, "forger", &header.forger)?),
            transaction_count: header.transaction_count,
            rank: header.rank,
            reveal: Hash(fixed(WHAT, "reveal", &header.reveal)?),
            next_commitment: Hash(fixed(WHAT, "next_commitment", &header.next_commitment)?),
            receipts_root: Hash(fixed(WHAT, "receipts_root", &header.receipts_root)?),
        })
    }

    /// Seals the header with the forger's signature, bound to the chain whose genesis hash is
    /// `chain`: a signed header proves which chain it was made for.
    pub fn sign(self, key: &Keypair, chain: &Hash) -> SealedHeader {
        let bytes = Bytes::from(self.to_wire().encode_to_vec());
        let signature = Some(key.sign(&header_signing_message(chain, &bytes)));
        SealedHeader { hash: Hash::tagged(BLOCK_DOMAIN, &bytes), header: self, bytes, signature }
    }

    /// Seals genesis, which no one signs.
    pub(crate) fn seal_unsigned(self) -> SealedHeader {
        let bytes = Bytes::from(self.to_wire().encode_to_vec());
        SealedHeader { hash: Hash::tagged(BLOCK_DOMAIN, &bytes), header: self, bytes, signature: None }
    }
}

/// `"goodwill/block/v1" || 0x00 || chain || header`.
fn header_signing_message(chain: &Hash, header: &[u8]) -> Vec<u8> {
    let mut bound = Vec::with_capacity(32 + header.len());
    bound.extend_from_slice(chain.as_bytes());
    bound.extend_from_slice(header);
    signing_message(BLOCK_DOMAIN, &bound)
}

/// A header with its hash and its forger's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHeader {
    hash: Hash,
    header: Header,
    bytes: Bytes,
    signature: Option<[u8; 64]>,
}

impl SealedHeader {
    /// The block hash: the tagged hash of the header's canonical encoding.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The header fields.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The forger's signature; `None` only for genesis.
    pub fn signature(&self) -> Option<&[u8; 64]> {
        self.signature.as_ref()
    }

    /// Checks the forger's signature ([`crate::signature`]) for the chain whose genesis hash is
    /// `chain`.
    pub fn verify_signature(&self, chain: &Hash) -> bool {
        let Some(signature) = &self.signature else {
            return false;
        };
        let message = header_signing_message(chain, &self.bytes);
        crate::signature::verify(self.header.forger.as_bytes(), &message, signature)
    }

    /// The wire form.
    pub fn to_wire(&self) -> wire::SignedBlockHeader {
        wire::SignedBlockHeader {
            header: self.bytes.clone(),
            signature: self.signature.map(|s| Bytes::copy_from_slice(&s)).unwrap_or_default(),
        }
    }

    /// Reads the wire form; checks shape, not validity.
    pub fn from_wire(signed: wire::SignedBlockHeader) -> Result<SealedHeader, DecodeError> {
        let header = Header::from_wire(decode_canonical("BlockHeader", &signed.header)?)?;
        let signature = if signed.signature.is_empty() {
            None
        } else {
            Some(fixed("SignedBlockHeader", "signature", &signed.signature)?)
        };
        Ok(SealedHeader {
            hash: Hash::tagged(BLOCK_DOMAIN, &signed.header),
            header,
            bytes: signed.header,
            signature,
        })
    }
}

/// A sealed header and its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: SealedHeader,
    /// The transactions, in execution order.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The header fields.
    pub fn header(&self) -> &Header {
        self.header.header()
    }

    /// The wire form.
    pub fn to_wire(&self) -> wire::Block {
        wire::Block { header: Some(self.header.to_wire()), body: Some(body_to_wire(&self.transactions)) }
    }

    /// Reads the wire form; checks shape, not validity.
    pub fn from_wire(block: wire::Block) -> Result<Block, DecodeError> {
        let header = block.header.ok_or(DecodeError::Missing { what: "Block", field: "header" })?;
        Ok(Block {
            header: SealedHeader::from_wire(header)?,
            transactions: body_from_wire(block.body.unwrap_or_default())?,
        })
    }

    /// Decodes a `Block` of at most `limit` bytes.
    pub fn decode(bytes: Bytes, limit: usize) -> Result<Block, DecodeError> {
        Block::from_wire(decode_limited("Block", bytes, limit)?)
    }

    /// Encodes the wire form.
    pub fn encode(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }

    /// Length of the wire form.
    pub fn encoded_len(&self) -> usize {
        self.to_wire().encoded_len()
    }
}

/// A block as it arrived: the header read, the transactions still in their wire form, so that a
/// node can take the ones it already holds decoded (its pool's) instead of decoding them again.
#[derive(Debug, Clone)]
pub struct ReceivedBlock {
    header: SealedHeader,
    transactions: Vec<wire::SignedTransaction>,
}

impl ReceivedBlock {
    /// Reads a `Block` of at most `limit` bytes: the header in full, the transactions only as
    /// far as their framing (body bytes and signature, no copy).
    pub fn decode(bytes: Bytes, limit: usize) -> Result<ReceivedBlock, DecodeError> {
        let block: wire::Block = decode_limited("Block", bytes, limit)?;
        let header = block.header.ok_or(DecodeError::Missing { what: "Block", field: "header" })?;
        Ok(ReceivedBlock {
            header: SealedHeader::from_wire(header)?,
            transactions: block.body.unwrap_or_default().transactions,
        })
    }

    /// The sealed header.
    pub fn header(&self) -> &SealedHeader {
        &self.header
    }

    /// How many transactions it carries.
    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }

    /// The block. Each transaction is `known(id, signature)` when that answers (a transaction
    /// with this id, hence these exact body bytes, and this signature), and is decoded otherwise.
    pub fn into_block(
        self,
        known: impl Fn(&Hash, &[u8]) -> Option<Transaction>,
    ) -> Result<Block, DecodeError> {
        let transactions = self
            .transactions
            .into_iter()
            .map(|signed| match known(&Hash::tagged(crate::TX_DOMAIN, &signed.body), &signed.signature) {
                Some(tx) => Ok(tx),
                None => Transaction::from_wire(signed),
            })
            .collect::<Result<_, _>>()?;
        Ok(Block { header: self.header, transactions })
    }
}

/// The wire form of a block body.
pub(crate) fn body_to_wire(transactions: &[Transaction]) -> wire::BlockBody {
    wire::BlockBody { transactions: transactions.iter().map(Transaction::to_wire).collect() }
}

/// Reads a block body.
pub(crate) fn body_from_wire(body: wire::BlockBody) -> Result<Vec<Transaction>, DecodeError> {
    body.transactions.into_iter().map(Transaction::from_wire).collect()
}
