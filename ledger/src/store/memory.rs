//! The in-memory store, for tests and for replaying a chain.

use std::collections::{BTreeMap, HashMap};

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue};

use super::{
    Commit, HistoryEntry, MAX_HISTORY_PAGE, Store, StoreError, TxLocation, check_branch, check_extends,
    history_accounts,
};
use crate::execute::AppliedBlock;
use crate::execute::Receipt;
use crate::{Address, Hash, SealedHeader, Transaction};

/// Keeps everything in maps. Commits are atomic because they happen under `&mut self`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    head: Option<Hash>,
    headers: HashMap<Hash, SealedHeader>,
    bodies: HashMap<Hash, Vec<Transaction>>,
    receipts: HashMap<Hash, Vec<Receipt>>,
    canonical: BTreeMap<u64, Hash>,
    transactions: HashMap<Hash, TxLocation>,
    /// Account, height and index -> transaction id.
    history: BTreeMap<(Address, u64, u32), Hash>,
    nodes: HashMap<NodeKey, Node>,
    values: BTreeMap<(KeyHash, u64), Option<OwnedValue>>,
    /// Per canonical height: the state keys its block wrote, to undo it in a reorganisation.
    undo: HashMap<u64, Vec<KeyHash>>,
    /// Cumulative rank sum per canonical height.
    rank_sums: BTreeMap<u64, u64>,
    chain_spec: Option<String>,
    finalized: Option<crate::finality::Checkpoint>,
    /// By the final block's height.
    finality_proofs: BTreeMap<u64, crate::finality::FinalityProof>,
    /// By the final block's height.
    finality_steps: BTreeMap<u64, crate::light::FinalityStep>,
    /// Tree nodes no longer in the tree from a height on.
    stale: BTreeMap<u64, Vec<NodeKey>>,
    /// The lowest state version held.
    pruned_below: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl TreeReader for MemoryStore {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(key).cloned())
    }

    fn get_value_option(&self, max_version: u64, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        if max_version < self.pruned_below {
            return Err(StoreError::Pruned { version: max_version, lowest: self.pruned_below }.into());
        }
        Ok(self.values.range((key, 0)..=(key, max_version)).next_back().and_then(|(_, value)| value.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("tree restoration is not supported")
    }
}

impl Store for MemoryStore {
    fn head(&self) -> Result<Option<Hash>, StoreError> {
        Ok(self.head)
    }

    fn header(&self, hash: &Hash) -> Result<Option<SealedHeader>, StoreError> {
        Ok(self.headers.get(hash).cloned())
    }

    fn transactions(&self, hash: &Hash) -> Result<Option<Vec<Transaction>>, StoreError> {
        Ok(self.bodies.get(hash).cloned())
    }

    fn receipts(&self, hash: &Hash) -> Result<Option<Vec<Receipt>>, StoreError> {
        Ok(self.receipts.get(hash).cloned())
    }

    fn canonical_hash(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        Ok(self.canonical.get(&height).copied())
    }

    fn transaction_location(&self, id: &Hash) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.transactions.get(id).copied())
    }

    fn history(
        &self,
        address: &Address,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let end = match before {
            Some((height, index)) => std::ops::Bound::Excluded((*address, height, index)),
            None => std::ops::Bound::Included((*address, u64::MAX, u32::MAX)),
        };
        let start = std::ops::Bound::Included((*address, 0, 0));
        Ok(self
            .history
            .range((start, end))
            .rev()
            .take(limit.min(MAX_HISTORY_PAGE))
            .map(|(&(_, height, index), &id)| HistoryEntry {
                id,
                location: TxLocation {
                    block_hash: self.canonical.get(&height).copied().unwrap_or(Hash::ZERO),
                    height,
                    index,
                },
            })
            .collect())
    }

    fn chain_spec(&self) -> Result<Option<String>, StoreError> {
        Ok(self.chain_spec.clone())
    }

    fn rank_sum(&self) -> Result<u64, StoreError> {
        Ok(self.rank_sums.last_key_value().map_or(0, |(_, sum)| *sum))
    }

    fn finalized(&self) -> Result<Option<crate::finality::Checkpoint>, StoreError> {
        Ok(self.finalized)
    }

    fn set_finalized(
        &mut self,
        checkpoint: &crate::finality::Checkpoint,
        proof: Option<&crate::finality::FinalityProof>,
        replaces: Option<u64>,
    ) -> Result<(), StoreError> {
        self.finalized = Some(*checkpoint);
        if let Some(height) = replaces {
            self.finality_proofs.remove(&height);
        }
        if let Some(proof) = proof {
            self.finality_proofs.insert(checkpoint.block.height, proof.clone());
        }
        Ok(())
    }

    fn finality_proofs(
        &self,
        height: u64,
        limit: usize,
    ) -> Result<Vec<crate::finality::FinalityProof>, StoreError> {
        Ok(self.finality_proofs.range(height..).take(limit).map(|(_, proof)| proof.clone()).collect())
    }

    fn latest_finality_proof(&self) -> Result<Option<crate::finality::FinalityProof>, StoreError> {
        Ok(self.finality_proofs.last_key_value().map(|(_, proof)| proof.clone()))
    }

    fn finality_step(&self, height: u64) -> Result<Option<crate::light::FinalityStep>, StoreError> {
        Ok(self.finality_steps.get(&height).cloned())
    }

    fn put_finality_step(&mut self, step: &crate::light::FinalityStep) -> Result<(), StoreError> {
        self.finality_steps.insert(step.proof.finalized.block.height, step.clone());
        Ok(())
    }

    fn pruned_below(&self) -> u64 {
        self.pruned_below
    }

    fn base_height(&self) -> u64 {
        0
    }

    fn prune_state(&mut self, below: u64, deadline: std::time::Instant) -> Result<u64, StoreError> {
        let head = self.head.and_then(|head| self.headers.get(&head)).map_or(0, |h| h.header().height);
        while self.pruned_below < below.min(head) {
            let version = self.pruned_below + 1;
            for key in self.stale.remove(&version).unwrap_or_default() {
                self.nodes.remove(&key);
            }
            for key in self.undo.remove(&version).unwrap_or_default() {
                let previous = self.values.range((key, 0)..(key, version)).next_back().map(|(k, _)| *k);
                if let Some(previous) = previous {
                    self.values.remove(&previous);
                }
            }
            self.pruned_below = version;
            if std::time::Instant::now() >= deadline {
                break;
            }
        }
        Ok(self.pruned_below)
    }

    fn reorganize(&mut self, ancestor: &SealedHeader, branch: Vec<AppliedBlock>) -> Result<(), StoreError> {
        check_branch(ancestor, &branch)?;
        let base = ancestor.header().height;
        // Nothing below can fail: the maps change together, as one batch would.
        let above: Vec<u64> = self.canonical.range(base + 1..).map(|(h, _)| *h).collect();
        for height in above {
            let hash = self.canonical.remove(&height).unwrap_or(Hash::ZERO);
            for key in self.undo.remove(&height).unwrap_or_default() {
                self.values.remove(&(key, height));
            }
            for (index, tx) in self.bodies.get(&hash).into_iter().flatten().enumerate() {
                self.transactions.remove(&tx.id());
                for account in history_accounts(tx) {
                    self.history.remove(&(account, height, index as u32));
                }
            }
            self.rank_sums.remove(&height);
        }
        self.stale.split_off(&(base + 1));
        self.head = Some(ancestor.hash());
        for applied in branch {
            self.commit(Commit { applied, chain_spec: None })?;
        }
        Ok(())
    }

    fn commit(&mut self, commit: Commit) -> Result<(), StoreError> {
        check_extends(self.head, &commit)?;
        let Commit { applied, chain_spec } = commit;
        let rank_sum = self.rank_sum()? + u64::from(applied.block.header().rank);
        let hash = applied.block.hash();
        let height = applied.block.header().height;
        for (index, tx) in applied.block.transactions.iter().enumerate() {
            self.transactions.insert(tx.id(), TxLocation { block_hash: hash, height, index: index as u32 });
            for account in history_accounts(tx) {
                self.history.insert((account, height, index as u32), tx.id());
            }
        }
        for index in &applied.state.tree.stale_node_index_batch {
            self.stale.entry(index.stale_since_version).or_default().push(index.node_key.clone());
        }
        let batch = applied.state.tree.node_batch;
        self.undo.insert(height, batch.values().keys().map(|(_, key)| *key).collect());
        self.rank_sums.insert(height, rank_sum);
        self.nodes.extend(batch.nodes().iter().map(|(k, v)| (k.clone(), v.clone())));
        self.values
            .extend(batch.values().iter().map(|((version, key), value)| ((*key, *version), value.clone())));
        self.headers.insert(hash, applied.block.header);
        self.bodies.insert(hash, applied.block.transactions);
        self.receipts.insert(hash, applied.receipts);
        self.canonical.insert(height, hash);
        if chain_spec.is_some() {
            self.chain_spec = chain_spec;
        }
        self.head = Some(hash);
        Ok(())
    }
}
