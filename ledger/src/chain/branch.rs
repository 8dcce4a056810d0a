//! Branches deeper than the side pool holds: what heals a long partition.
//!
//! Two halves of a network that forge apart build branches as long as the partition lasts. When
//! they meet again, range sync downloads the other half's branch from the last block both share
//! (at or above the final block). The side pool keeps short forks in memory until they win;
//! a long branch goes here instead: one [`DeepBranch`] at a time, every block applied in full as
//! it arrives (on the state its branch reaches, kept in a [`BranchOverlay`] over the store), and
//! the chain switches to it as soon as fork choice prefers it. Nothing of it is written before
//! that, so a branch that turns out invalid or worse changes nothing.
//!
//! What a branch may cost is bounded: [`MAX_BRANCH_BYTES`] of blocks and state, one branch at a
//! time, and only blocks that descend from the canonical chain at or above the final block. Only
//! sync starts a branch (gossip of a block far below the head is refused as before), and a
//! branch's blocks are checked exactly as the head's are: each forger must have won its slot on
//! that branch's own lottery.

use std::collections::HashMap;

use super::{Chain, ChainError, Imported, MAX_REORG_DEPTH};
use crate::execute::{AppliedBlock, ApplyError, apply_block_in};
use crate::finality::{BlockId, Checkpoint};
use crate::lottery::ForkChoiceKey;
use crate::state::BranchOverlay;
use crate::store::{Store, StoreError};
use crate::{Block, Hash, SealedHeader};

/// Most bytes a branch being downloaded may hold (its blocks and the state they wrote): a
/// partition of about this much traffic heals by itself; beyond it, the branch is dropped and
/// the node stays on its own chain (see docs/consensus.md, "Partitions").
pub const MAX_BRANCH_BYTES: usize = 256 << 20;

/// A branch being downloaded: blocks applied one on another from `ancestor`, a canonical block
/// at or above the final one.
#[derive(Debug)]
pub(crate) struct DeepBranch {
    ancestor: SealedHeader,
    /// The canonical chain's rank sum up to `ancestor`, for fork choice.
    ancestor_rank_sum: u64,
    blocks: Vec<AppliedBlock>,
    /// Position of each block in `blocks`.
    index: HashMap<Hash, usize>,
    overlay: BranchOverlay,
    rank_sum: u64,
    bytes: usize,
}

impl DeepBranch {
    fn tip(&self) -> &SealedHeader {
        self.blocks.last().map_or(&self.ancestor, |applied| &applied.block.header)
    }

    fn key(&self) -> ForkChoiceKey {
        let tip = self.tip();
        ForkChoiceKey {
            height: tip.header().height,
            rank_sum: self.ancestor_rank_sum + self.rank_sum,
            head: tip.hash(),
        }
    }

    /// The hash of the branch's block at `height`, if the branch holds one there.
    fn at(&self, height: u64) -> Option<Hash> {
        let offset = height.checked_sub(self.ancestor.header().height + 1)?;
        self.blocks.get(usize::try_from(offset).ok()?).map(|applied| applied.block.hash())
    }

    /// The height of the branch's block `hash`, if it holds it.
    fn height_of(&self, hash: &Hash) -> Option<u64> {
        self.index.get(hash).map(|&i| self.ancestor.header().height + 1 + i as u64)
    }
}

impl<S: Store> Chain<S> {
    /// Imports a block that range sync downloaded: like [`Chain::import`], but a block that forks
    /// from the canonical chain deeper than the side pool reaches (or extends such a fork) is
    /// applied on a branch held in memory ([`DeepBranch`]), which the chain switches to as soon
    /// as fork choice prefers it. Only sync comes here: it asks one peer for one branch, from
    /// the last block this node and that peer share.
    pub fn import_synced(&mut self, block: Block) -> Result<Imported, ChainError> {
        self.import_synced_with(block, &|_| false)
    }

    /// [`Chain::import_synced`], trusting the signatures of the transactions for which
    /// `verified` holds when the block extends the head ([`Chain::import_with`]).
    pub fn import_synced_with(
        &mut self,
        block: Block,
        verified: &dyn Fn(&crate::Transaction) -> bool,
    ) -> Result<Imported, ChainError> {
        let parent = block.header().parent_hash;
        let height = block.header().height;
        if self.branch_extends(&block) {
            return self.extend_branch(block);
        }
        let forks_here = parent != self.head.hash()
            && height > 0
            && self.store.canonical_hash(height - 1)? == Some(parent)
            && self.store.canonical_hash(height)? != Some(block.hash());
        if !forks_here {
            // It extends the head, is known, or its parent is not on this chain.
            return self.import_with(block, verified);
        }
        if height <= self.finalized.block.height {
            return Err(ChainError::BelowFinality { height, finalized: self.finalized.block.height });
        }
        self.start_branch(height - 1, parent)?;
        self.extend_branch(block)
    }

    /// Whether `block` extends the tip of the branch being downloaded.
    pub(super) fn branch_extends(&self, block: &Block) -> bool {
        self.branch.as_ref().is_some_and(|branch| branch.tip().hash() == block.header().parent_hash)
    }

    /// Drops the branch being downloaded once the chain has left it far behind: it is not
    /// growing, and memory is worth more.
    pub(super) fn drop_stale_branch(&mut self) {
        let head = self.head.header().height;
        if self
            .branch
            .as_ref()
            .is_some_and(|b| b.tip().header().height.saturating_add(2 * MAX_REORG_DEPTH) < head)
        {
            tracing::debug!("dropped a branch the chain left behind");
            self.branch = None;
        }
    }

    /// Starts a branch on the canonical block `parent` at `height`, replacing any other.
    fn start_branch(&mut self, height: u64, parent: Hash) -> Result<(), ChainError> {
        let ancestor = self
            .store
            .header(&parent)?
            .ok_or_else(|| StoreError::Corrupt(format!("block {parent} has no header")))?;
        let mut replaced = 0u64;
        for h in height + 1..=self.head.header().height {
            let hash = self
                .store
                .canonical_hash(h)?
                .ok_or_else(|| StoreError::Corrupt(format!("no block at {h}")))?;
            let header = self
                .store
                .header(&hash)?
                .ok_or_else(|| StoreError::Corrupt(format!("block {hash} has no header")))?;
            replaced += u64::from(header.header().rank);
        }
        let ancestor_rank_sum = self.store.rank_sum()?.checked_sub(replaced).ok_or_else(|| {
            StoreError::Corrupt("the stored rank sum is smaller than its blocks' ranks".into())
        })?;
        if let Some(old) = &self.branch {
            tracing::debug!(from = old.ancestor.header().height, "dropped a branch for another");
        }
        self.branch = Some(DeepBranch {
            ancestor,
            ancestor_rank_sum,
            blocks: Vec::new(),
            index: HashMap::new(),
            overlay: BranchOverlay::new(height),
            rank_sum: 0,
            bytes: 0,
        });
        Ok(())
    }

    /// Applies `block` on the branch's tip; switches to the branch if fork choice prefers it.
    pub(super) fn extend_branch(&mut self, block: Block) -> Result<Imported, ChainError> {
        let mut outcome = self.extend_branch_by(block)?;
        // Blocks of the branch that arrived by gossip before the download reached them wait in
        // the side pool (their parent was unknown then): they extend it now, else the branch
        // would stop short of its peer's head while both sides keep forging, and two halves
        // of equal height would never meet.
        while matches!(outcome, Imported::Side) {
            let Some(tip) = self.branch.as_ref().map(|branch| branch.tip().hash()) else { break };
            let child = self
                .side
                .iter()
                .filter(|(_, block)| block.header().parent_hash == tip)
                .min_by_key(|(hash, block)| (block.header().rank, **hash))
                .map(|(hash, _)| *hash);
            let Some(block) = child.and_then(|hash| self.side.remove(&hash)) else { break };
            outcome = match self.extend_branch_by(block) {
                Err(ChainError::Invalid(error)) => {
                    tracing::debug!(%error, "dropped an invalid side block that extended a branch");
                    Imported::Side
                }
                other => other?,
            };
        }
        if let Imported::Reorganized { reverted, .. } = outcome {
            // The side pool may hold what extends the new head, too.
            let mut reverted = reverted;
            reverted.extend(self.connect_side_blocks()?);
            return Ok(Imported::Reorganized { depth: reverted.len() as u64, reverted });
        }
        Ok(outcome)
    }

    /// Applies `block`, a child of the branch's tip, on the branch, and switches to the branch
    /// if fork choice now prefers it.
    fn extend_branch_by(&mut self, block: Block) -> Result<Imported, ChainError> {
        let Some(mut branch) = self.branch.take() else { return self.import(block) };
        // The chain may have moved under the branch (a shallow reorganisation, or finality):
        // a branch that no longer forks from it at or above the final block is dropped.
        let ancestor = branch.ancestor.header().height;
        if self.store.canonical_hash(ancestor)? != Some(branch.ancestor.hash())
            || ancestor < self.finalized.block.height
        {
            return Err(ChainError::TooDeep { height: ancestor + 1, head: self.head.header().height });
        }
        let tip = branch.tip().clone();
        let slot = block.header().slot;
        let applied = {
            let reader = branch.overlay.reader(&self.store);
            let executor = self.executor(&reader, &tip, tip.header().height, slot)?;
            apply_block_in(executor, &self.spec, &self.genesis, &tip, block, &|_| false)
        };
        let applied = match applied {
            Ok(applied) => applied,
            // The branch ends here: what came before it stays, for a better block to extend.
            Err(ApplyError::Invalid(error)) => {
                self.branch = Some(branch);
                return Err(ChainError::Invalid(error));
            }
            Err(ApplyError::Store(error)) => return Err(error.into()),
        };
        let bytes = branch.overlay.add(&applied.state)
            + applied.block.transactions.iter().map(crate::Transaction::encoded_len).sum::<usize>()
            + 512;
        if branch.bytes + bytes > MAX_BRANCH_BYTES {
            tracing::warn!(
                from = ancestor,
                blocks = branch.blocks.len(),
                limit = MAX_BRANCH_BYTES,
                "a branch grew past what this node holds in memory; dropped it"
            );
            return Err(ChainError::BranchTooLarge { from: ancestor, blocks: branch.blocks.len() as u64 });
        }
        branch.bytes += bytes;
        branch.rank_sum += u64::from(applied.block.header().rank);
        branch.index.insert(applied.block.hash(), branch.blocks.len());
        branch.blocks.push(applied);
        let contains_justified = branch.height_of(&self.justified.block.hash).is_some();
        if self.prefers(ancestor, contains_justified, branch.key())? {
            return self.switch_to_branch(branch);
        }
        self.branch = Some(branch);
        Ok(Imported::Side)
    }

    /// Writes `branch` as the canonical chain above its ancestor.
    fn switch_to_branch(&mut self, branch: DeepBranch) -> Result<Imported, ChainError> {
        let DeepBranch { ancestor, blocks, .. } = branch;
        let (ancestor_height, head_height) = (ancestor.header().height, self.head.header().height);
        let mut replaced = Vec::new();
        for height in ancestor_height + 1..=head_height {
            let hash = self
                .store
                .canonical_hash(height)?
                .ok_or_else(|| StoreError::Corrupt(format!("no block at {height}")))?;
            replaced.push(
                self.store
                    .block(&hash)?
                    .ok_or_else(|| StoreError::Corrupt(format!("block {hash} is missing")))?,
            );
        }
        let new_head = blocks.last().map_or_else(|| ancestor.clone(), |applied| applied.block.header.clone());
        let hashes: Vec<Hash> = blocks.iter().map(|applied| applied.block.hash()).collect();
        self.store.reorganize(&ancestor, blocks)?;
        for hash in &hashes {
            self.side.remove(hash);
        }
        let new_height = new_head.header().height;
        for block in &replaced {
            // Only what a shallow fork could still bring back is worth keeping aside.
            if block.header().height.saturating_add(MAX_REORG_DEPTH) > new_height {
                self.keep_aside(block.clone());
            }
        }
        let depth = head_height - ancestor_height;
        tracing::info!(depth, head = %new_head.hash(), height = new_height, "switched to a better branch");
        self.head = new_head;
        Ok(Imported::Reorganized { depth, reverted: replaced })
    }

    /// Fork choice between the canonical chain and a candidate that forks from it at
    /// `ancestor_height`: the chain with the latest justified checkpoint wins (a candidate that
    /// leaves it never does; one that holds it while the canonical chain does not always does),
    /// then [`ForkChoiceKey`]. Never below the final block.
    pub(super) fn prefers(
        &self,
        ancestor_height: u64,
        candidate_has_justified: bool,
        candidate: ForkChoiceKey,
    ) -> Result<bool, StoreError> {
        if ancestor_height < self.finalized.block.height {
            return Ok(false);
        }
        let justified = self.justified.block;
        let canonical_has_justified = self.store.canonical_hash(justified.height)? == Some(justified.hash);
        if canonical_has_justified && justified.height > ancestor_height {
            return Ok(false);
        }
        if candidate_has_justified && !canonical_has_justified {
            return Ok(true);
        }
        let current = ForkChoiceKey {
            height: self.head.header().height,
            rank_sum: self.store.rank_sum()?,
            head: self.head.hash(),
        };
        Ok(candidate > current)
    }

    /// Records `checkpoint` as justified (by the finality gadget): fork choice keeps to the chain
    /// with the latest one. If it lies on a branch this node holds but does not follow, the
    /// chain switches to that branch.
    pub fn justify(&mut self, checkpoint: Checkpoint) -> Result<Imported, ChainError> {
        if checkpoint.round <= self.justified.round {
            return Ok(Imported::Known);
        }
        self.justified = checkpoint;
        let block = checkpoint.block;
        if self.store.canonical_hash(block.height)? == Some(block.hash) {
            return Ok(Imported::Known);
        }
        if let Some(branch) = self.branch.take() {
            if branch.height_of(&block.hash).is_some()
                && self.prefers(branch.ancestor.header().height, true, branch.key())?
            {
                return self.switch_to_branch(branch);
            }
            self.branch = Some(branch);
        }
        if self.side.contains(&block.hash) {
            return self.try_branches_through(block.hash);
        }
        Ok(Imported::Known)
    }

    /// The hash at `height` on the chain that ends in `block`, if `block` is on the branch being
    /// downloaded.
    pub(super) fn branch_ancestor(
        &self,
        block: &BlockId,
        height: u64,
    ) -> Result<Option<Option<Hash>>, StoreError> {
        let Some(branch) = &self.branch else { return Ok(None) };
        if branch.height_of(&block.hash) != Some(block.height) {
            return Ok(None);
        }
        if height > branch.ancestor.header().height {
            return Ok(Some(branch.at(height)));
        }
        Ok(Some(self.store.canonical_hash(height)?))
    }

    /// Whether the branch being downloaded holds `hash`.
    pub(super) fn branch_holds(&self, hash: &Hash) -> bool {
        self.branch.as_ref().is_some_and(|branch| branch.index.contains_key(hash))
    }

    /// The branch being downloaded, if any: where it forks and how far it reaches.
    pub fn branch_progress(&self) -> Option<(u64, u64)> {
        self.branch.as_ref().map(|branch| (branch.ancestor.header().height, branch.tip().header().height))
    }
}
