//! State sync: a new main node starts from the state of a final block instead of replaying the
//! chain from genesis.
//!
//! A node that holds a state serves it in chunks ([`state_chunk`]): the tree's leaves in key order
//! from a start key, each chunk with a range proof (the siblings right of the path to its last
//! leaf). The new node checks every chunk against the final block's state root as it adds it
//! ([`StateRestore`], on jmt's restore), so a peer that sends one wrong, missing or extra leaf is
//! caught at that chunk, and writes the tree as it goes: memory stays bounded by a chunk, whatever
//! the size of the state. The final block itself comes from proofs of finality followed from
//! genesis ([`crate::light`]), so nothing the new node starts from rests on a peer's word.

use std::sync::Arc;

pub use jmt::KeyHash;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{JellyfishMerkleIterator, JellyfishMerkleTree, OwnedValue};

use crate::hash::StateHasher;
use crate::store::StoreError;

/// Most leaves in one chunk.
pub const MAX_CHUNK_ENTRIES: usize = 4_096;
/// Leaves stop being added to a chunk once their values hold this many bytes (one always goes
/// in).
pub const CHUNK_VALUE_BYTES: usize = 2 * 1024 * 1024;
/// Most bytes of a chunk's range proof: one sibling per bit of the key, each a leaf (two hashes
/// and a tag) at most, with borsh's lengths.
pub const MAX_RANGE_PROOF_BYTES: usize = 256 * 80 + 16;

/// Consecutive leaves of a state tree, with the proof that they are all of its leaves from the
/// chunk's start key to its last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChunk {
    /// Keys and values, in ascending key order.
    pub entries: Vec<(KeyHash, Vec<u8>)>,
    /// The range proof (jmt `SparseMerkleRangeProof`, borsh) of the last entry.
    pub proof: Vec<u8>,
    /// Whether the last entry is the tree's last leaf.
    pub last: bool,
}

/// Reads every value at one version: the tree's iterator asks for a leaf's value at the version
/// the leaf was written, which pruning may have removed from reach, while the value at the
/// snapshot's version is the same one (the leaf is in its tree).
struct AtVersion<'a, R: ?Sized> {
    reader: &'a R,
    version: u64,
}

impl<R: TreeReader + ?Sized> TreeReader for AtVersion<'_, R> {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.reader.get_node_option(key)
    }

    fn get_value_option(&self, _: u64, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        self.reader.get_value_option(self.version, key)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.reader.get_rightmost_leaf()
    }
}

/// The leaves of the state at `version` from `start` on: at most [`MAX_CHUNK_ENTRIES`], and no
/// more once their values hold [`CHUNK_VALUE_BYTES`] or `deadline` has passed (one always goes
/// in), with the range proof of the last one. Reads what it returns and one leaf more; `None` if
/// no leaf is at or after `start`.
pub fn state_chunk<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    start: KeyHash,
    deadline: std::time::Instant,
) -> Result<Option<StateChunk>, StoreError> {
    let tree_error = |e: anyhow::Error| StoreError::Tree(e.to_string());
    let reader = Arc::new(AtVersion { reader, version });
    let mut leaves = JellyfishMerkleIterator::new(reader.clone(), version, start).map_err(tree_error)?;
    let (mut entries, mut bytes) = (Vec::new(), 0usize);
    let mut last = true;
    for leaf in leaves.by_ref() {
        let (key, value) = leaf.map_err(tree_error)?;
        let full = bytes >= CHUNK_VALUE_BYTES || std::time::Instant::now() >= deadline;
        if entries.len() == MAX_CHUNK_ENTRIES || (full && !entries.is_empty()) {
            last = false;
            break;
        }
        bytes += value.len();
        entries.push((key, value));
    }
    let Some((last_key, _)) = entries.last() else { return Ok(None) };
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(reader.as_ref());
    let proof = tree.get_range_proof(*last_key, version).map_err(tree_error)?;
    let proof = borsh::to_vec(&proof).map_err(|e| StoreError::Tree(e.to_string()))?;
    Ok(Some(StateChunk { entries, proof, last }))
}

/// The key after `key`, or `None` after the last one.
pub fn next_key(key: &KeyHash) -> Option<KeyHash> {
    let mut next = key.0;
    for byte in next.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            return Some(KeyHash(next));
        }
    }
    None
}

/// Why a chunk was refused: the peer that sent it lied or is broken.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The chunk does not fit the state root, or does not follow what was restored.
    #[error("a state chunk does not prove against the final block's state root: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(feature = "node")]
pub use crate::store::StateRestore;

#[cfg(test)]
mod tests;
