//! Restoring a final block's state into a new database ([`crate::snapshot`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use jmt::RootHash;
use jmt::proof::SparseMerkleRangeProof;
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{NodeBatch, TreeWriter};
use prost::Message;
use rocksdb::WriteBatch;

use super::{
    Column, META_BASE, META_CHAIN_SPEC, META_FINALIZED, META_PRUNED_BELOW, META_RANK_SUM, RocksStore,
    corrupt, db_error, finality_proof_key, finality_step_key, finalized_record, node_key_bytes, value_key,
};
use crate::finality::Checkpoint;
use crate::hash::StateHasher;
use crate::light::FinalityStep;
use crate::snapshot::{MAX_CHUNK_ENTRIES, MAX_RANGE_PROOF_BYTES, RestoreError, StateChunk, next_key};
use crate::store::{Store, StoreError};
use crate::{Block, ChainSpec, SealedHeader};

/// Writes what the restore froze straight into the database (not synced: the database is only
/// used once [`StateRestore::finish`] writes its head, synced, after the whole tree).
struct Sink(RocksStore);

impl TreeWriter for Sink {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let store = &self.0;
        let (nodes, values) = (store.cf(Column::StateNodes)?, store.cf(Column::StateValues)?);
        let mut write = WriteBatch::default();
        for (key, node) in batch.nodes() {
            write.put_cf(nodes, node_key_bytes(key)?, borsh::to_vec(node)?);
        }
        for ((version, key), value) in batch.values() {
            let record = match value {
                Some(value) => [&[1u8][..], value].concat(),
                None => vec![0u8],
            };
            write.put_cf(values, value_key(key, *version), record);
        }
        store.db.write(write).map_err(db_error)?;
        Ok(())
    }
}

/// The state of a final block, being restored chunk by chunk into a new database; every chunk
/// is checked against the block's state root before it is written. Any error leaves the
/// database to be thrown away.
pub struct StateRestore {
    sink: Arc<Sink>,
    restore: Option<JellyfishMerkleRestore<StateHasher>>,
    base: SealedHeader,
    /// The key the next chunk starts at; `None` once the tree is whole.
    next: Option<jmt::KeyHash>,
    entries: u64,
}

impl std::fmt::Debug for StateRestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRestore")
            .field("base", &self.base.hash())
            .field("next", &self.next)
            .field("entries", &self.entries)
            .finish()
    }
}

impl StateRestore {
    /// Starts restoring the state of `base` (a final block) into a new database at `path`.
    pub fn start(path: &Path, base: SealedHeader) -> Result<StateRestore, StoreError> {
        let store = RocksStore::open(path)?;
        if store.head.is_some() {
            return Err(StoreError::Database(format!("{} holds a chain already", path.display())));
        }
        let sink = Arc::new(Sink(store));
        let root = RootHash(base.header().state_root.0);
        let restore = JellyfishMerkleRestore::new_overwrite(sink.clone(), base.header().height, root)
            .map_err(|e| StoreError::Tree(e.to_string()))?;
        Ok(StateRestore { sink, restore: Some(restore), base, next: Some(jmt::KeyHash([0; 32])), entries: 0 })
    }

    /// The block whose state this is.
    pub fn base(&self) -> &SealedHeader {
        &self.base
    }

    /// The key the next chunk must start at, or `None` once the state is whole.
    pub fn next_key(&self) -> Option<jmt::KeyHash> {
        self.next
    }

    /// Leaves restored so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Checks `chunk` against the state root and writes it; returns whether the state is whole.
    /// A chunk that fails leaves nothing to go on with: start again, from another peer.
    pub fn add_chunk(&mut self, chunk: StateChunk) -> Result<bool, RestoreError> {
        let invalid = |reason: String| RestoreError::Invalid(reason);
        let (Some(restore), Some(next)) = (self.restore.as_mut(), self.next) else {
            return Err(invalid("the restore is over".into()));
        };
        if chunk.entries.is_empty() || chunk.entries.len() > MAX_CHUNK_ENTRIES {
            self.restore = None;
            return Err(invalid(format!("a chunk of {} entries", chunk.entries.len())));
        }
        if chunk.proof.len() > MAX_RANGE_PROOF_BYTES {
            self.restore = None;
            return Err(invalid(format!("a range proof of {} bytes", chunk.proof.len())));
        }
        if chunk.entries[0].0 < next {
            self.restore = None;
            return Err(invalid("a chunk that starts before the key asked for".into()));
        }
        let proof: SparseMerkleRangeProof<StateHasher> = match borsh::from_slice(&chunk.proof) {
            Ok(proof) => proof,
            Err(error) => {
                self.restore = None;
                return Err(invalid(format!("a range proof that does not decode: {error}")));
            }
        };
        let count = chunk.entries.len() as u64;
        let last_key = chunk.entries[count as usize - 1].0;
        // jmt checks order and proof; its internal assertions are caught too, so that no chunk
        // a peer makes up can stop the node.
        let added = catch_unwind(AssertUnwindSafe(|| restore.add_chunk(chunk.entries, proof)));
        match added {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                self.restore = None;
                return Err(invalid(error.to_string()));
            }
            Err(_) => {
                self.restore = None;
                return Err(invalid("a chunk that breaks the tree's invariants".into()));
            }
        }
        self.entries += count;
        self.next = next_key(&last_key);
        if !chunk.last && self.next.is_some() {
            return Ok(false);
        }
        let Some(restore) = self.restore.take() else { return Err(invalid("the restore is over".into())) };
        match catch_unwind(AssertUnwindSafe(|| restore.finish())) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(invalid(error.to_string())),
            Err(_) => return Err(invalid("a state that breaks the tree's invariants".into())),
        }
        // A peer that calls a chunk the last one early leaves a tree with another root.
        let height = self.base.header().height;
        let root = crate::state::state_root(&self.sink.0, height)?;
        if root != self.base.header().state_root {
            return Err(invalid(format!("the restored state's root is {root}, not the block's")));
        }
        self.next = None;
        Ok(true)
    }

    /// Makes the restored database a chain: genesis (its header only; its state is not kept),
    /// the final block `base` with its body, its proof of finality and step, the state's height
    /// as the lowest state and block held. Returns the store, ready for [`crate::Chain::open`].
    pub fn finish(
        self,
        spec: &ChainSpec,
        block: Block,
        finalized: Checkpoint,
        step: &FinalityStep,
    ) -> Result<RocksStore, RestoreError> {
        let invalid = |reason: &str| RestoreError::Invalid(reason.to_string());
        if self.next.is_some() {
            return Err(invalid("the state is not whole yet"));
        }
        if block.hash() != self.base.hash() || finalized.block.hash != self.base.hash() {
            return Err(invalid("the block is not the one whose state was restored"));
        }
        if step.proof.finalized != finalized {
            return Err(invalid("the step is not the block's proof of finality"));
        }
        let genesis = crate::chain::genesis(spec)?;
        crate::execute::check_contents(spec, &genesis.block.hash(), &block)
            .map_err(|e| RestoreError::Invalid(format!("the final block's body: {e}")))?;
        let StateRestore { sink, restore, .. } = self;
        drop(restore);
        let Ok(Sink(mut store)) = Arc::into_inner(sink).ok_or(()) else {
            return Err(RestoreError::Store(corrupt("the restore still holds the store")));
        };
        let height = block.header().height;
        let mut batch = WriteBatch::default();
        store.put_canonical_block(&mut batch, &genesis.block, Some(&[]))?;
        store.put_canonical_block(&mut batch, &block, None)?;
        let meta = store.cf(Column::Meta)?;
        batch.put_cf(meta, META_CHAIN_SPEC, spec.to_json().as_bytes());
        batch.put_cf(meta, META_RANK_SUM, 0u64.to_be_bytes());
        batch.put_cf(meta, META_FINALIZED, finalized_record(&finalized));
        batch.put_cf(meta, finality_proof_key(height), step.proof.to_wire().encode_to_vec());
        batch.put_cf(meta, finality_step_key(height), step.to_wire().encode_to_vec());
        batch.put_cf(meta, META_PRUNED_BELOW, height.to_be_bytes());
        batch.put_cf(meta, META_BASE, height.to_be_bytes());
        store.write(batch)?;
        store.head = Some(block.hash());
        store.pruned_below.store(height, std::sync::atomic::Ordering::Release);
        store.base = height;
        store.head_values.get_mut().map_err(|_| corrupt("cache lock"))?.tip = Some(height);
        debug_assert_eq!(store.head().ok().flatten(), Some(block.hash()));
        Ok(store)
    }
}
