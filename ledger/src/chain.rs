//! A chain: a store, the spec it was made from, and its head. Imports blocks with full
//! validation and commits each one atomically.

use jmt::storage::TreeReader;

use crate::execute::{
    AppliedBlock, ApplyError, BlockBuilder, BlockError, Executor, Receipt, apply_block_in, check_contents,
    check_header,
};
use crate::spec::SpecError;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::finality::{BlockId, Checkpoint, FinalityProof};
use crate::lottery::{ForkChoiceKey, Roster, epoch_of};
use crate::side_pool::SidePool;

mod branch;

pub use crate::genesis::{genesis, genesis_rosters};
use crate::state::BranchOverlay;
use crate::store::{Commit, Store, StoreError};
use crate::{Account, Address, Block, ChainSpec, Hash, Keypair, SealedHeader, Transaction};
pub use branch::MAX_BRANCH_BYTES;

/// A chain could not be opened or a block not imported. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The block is invalid.
    #[error("invalid block: {0}")]
    Invalid(#[from] BlockError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain spec is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The store holds another chain.
    #[error(
        "the database holds the chain with genesis {stored}, but the chain spec gives genesis {expected}: use the spec the database was made with, or another base path"
    )]
    GenesisMismatch {
        /// The stored genesis.
        stored: Hash,
        /// The spec's genesis.
        expected: Hash,
    },
    /// The store holds no chain.
    #[error("the database holds no chain yet: start a node on it with a chain spec first")]
    Empty,
    /// A block too far above the head to keep aside.
    #[error(
        "block at height {height} is more than {MAX_REORG_DEPTH} blocks above the head at {head}: sync first"
    )]
    TooFarAhead {
        /// The block's height.
        height: u64,
        /// The head's height.
        head: u64,
    },
    /// A block off the canonical chain whose forger nothing here shows entitled: its parent is
    /// unknown, or it is in a later epoch of its fork than this node can draw, and its forger
    /// holds no ticket for its epoch. No rule is shown broken; the block is not kept.
    #[error("block {hash} is not kept aside: its forger {forger} holds no ticket for its epoch here")]
    Unproven {
        /// The block.
        hash: Hash,
        /// Its forger.
        forger: Address,
    },
    /// A block forking deeper than the chain will reorganise.
    #[error("block at height {height} forks more than {MAX_REORG_DEPTH} blocks below the head at {head}")]
    TooDeep {
        /// The block's height.
        height: u64,
        /// The head's height.
        head: u64,
    },
    /// A block off the canonical chain at or below the last final block: no branch with it can
    /// ever be taken.
    #[error("block at height {height} is off the chain at or below the final block at {finalized}")]
    BelowFinality {
        /// The block's height.
        height: u64,
        /// The last final block's height.
        finalized: u64,
    },
    /// A branch being downloaded grew past [`MAX_BRANCH_BYTES`] before fork choice preferred it.
    #[error(
        "the branch forking at height {from} grew past {MAX_BRANCH_BYTES} bytes after {blocks} blocks; dropped"
    )]
    BranchTooLarge {
        /// The height it forks from.
        from: u64,
        /// Its blocks when dropped.
        blocks: u64,
    },
    /// A checkpoint to make final that is not on this chain.
    #[error("block {hash} at height {height} was made final elsewhere but is not on this chain")]
    NotOnThisChain {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: Hash,
    },
}

pub use crate::lottery::MAX_REORG_DEPTH;

/// An account at a head, provable to a peer that knows only that head's header.
#[derive(Debug, Clone)]
pub struct AccountProof {
    /// The head it was read at.
    pub head: SealedHeader,
    /// The account.
    pub account: Account,
    /// Its leaf value in the state tree (`None` if never touched).
    pub state: Option<Vec<u8>>,
    /// The encoded proof of that leaf against `head`'s state root.
    pub proof: Vec<u8>,
}

/// What importing a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// It extended the head.
    Extended(Vec<Receipt>),
    /// It is already known.
    Known,
    /// It was kept aside: on a fork that is not (yet) better, or waiting for its parent.
    Side,
    /// The chain switched to a better branch that it completes.
    Reorganized {
        /// Blocks of the old chain that were replaced.
        depth: u64,
        /// Those blocks, lowest first: their transactions may need to go back to a pool.
        reverted: Vec<Block>,
    },
}

impl From<ApplyError<BlockError>> for ChainError {
    fn from(error: ApplyError<BlockError>) -> Self {
        match error {
            ApplyError::Invalid(error) => ChainError::Invalid(error),
            ApplyError::Store(error) => ChainError::Store(error),
        }
    }
}

/// A chain on a store.
#[derive(Debug)]
pub struct Chain<S: Store> {
    store: S,
    spec: ChainSpec,
    genesis: Hash,
    head: SealedHeader,
    /// Blocks off the canonical chain, bounded in count and bytes.
    side: SidePool,
    /// Rosters read lately, each under its epoch and the last block before that epoch on the
    /// branch it was read from ([`Chain::roster_key`]).
    rosters: Mutex<VecDeque<(RosterKey, Arc<Roster>)>>,
    /// The last final checkpoint (genesis in round 0 until one is recorded): no
    /// reorganisation goes below it.
    finalized: Checkpoint,
    /// The latest checkpoint the finality gadget justified: fork choice keeps to the chain that
    /// holds it ([`Chain::justify`]).
    justified: Checkpoint,
    /// A branch deeper than the side pool reaches, being downloaded ([`branch::DeepBranch`]).
    branch: Option<branch::DeepBranch>,
    /// Which states below the final block are kept.
    pruning: StatePruning,
}

/// Which states (one per height) a node keeps below its last final block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatePruning {
    /// Every state since genesis (an archive node).
    #[default]
    Archive,
    /// The states of this many heights below the last final block, and every one above it; at
    /// least [`Chain::min_kept_states`], which the finality gadget reads.
    Keep(u64),
}

/// Time one finalization may spend removing old states on the chain thread (one height at
/// least, so pruning keeps up with a chain that finalizes every block).
const PRUNE_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);

/// An epoch, and the last block before it on one branch.
type RosterKey = (u64, Hash);

/// An epoch's roster for votes, and the state version its forgers' records are read at
/// ([`Chain::voting_roster`]).
#[derive(Debug, Clone)]
pub struct VotingRoster {
    /// The epoch.
    pub epoch: u64,
    /// Its roster.
    pub roster: Arc<Roster>,
    /// The height whose state records its forgers.
    pub version: u64,
}

/// Rosters kept: the current and next epochs' on the canonical chain and on a few forks.
const ROSTERS_KEPT: usize = 8;

impl<S: Store> Chain<S> {
    /// Opens the chain of `spec` on `store`, writing genesis into an empty store. A store that
    /// holds another chain is refused.
    pub fn open(mut store: S, spec: ChainSpec) -> Result<Chain<S>, ChainError> {
        spec.validate()?;
        let genesis = genesis(&spec)?;
        let genesis_hash = genesis.block.hash();
        match store.canonical_hash(0)? {
            None => store.commit(Commit { applied: genesis, chain_spec: Some(spec.to_json()) })?,
            Some(stored) if stored != genesis_hash => {
                return Err(ChainError::GenesisMismatch { stored, expected: genesis_hash });
            }
            Some(_) => {}
        }
        let head = store.head_header()?.ok_or(ChainError::Empty)?;
        let finalized = store
            .finalized()?
            .unwrap_or(Checkpoint { round: 0, block: BlockId { height: 0, hash: genesis_hash } });
        let mut chain = Chain {
            store,
            spec,
            genesis: genesis_hash,
            head,
            side: SidePool::default(),
            rosters: Mutex::new(VecDeque::with_capacity(ROSTERS_KEPT)),
            finalized,
            justified: finalized,
            branch: None,
            pruning: StatePruning::Archive,
        };
        if chain.store.steps_pending()? {
            chain.store_pending_steps()?;
        }
        Ok(chain)
    }

    /// Builds and stores the steps of the proofs kept for good that lack them (a database
    /// migrated from a schema without steps), while the states they prove against are held:
    /// before any pruning.
    fn store_pending_steps(&mut self) -> Result<(), StoreError> {
        let latest = self.store.latest_finality_proof()?.map(|proof| proof.finalized.block.height);
        let mut from = 1;
        loop {
            let proofs = self.store.finality_proofs(from, 256)?;
            let Some(last) = proofs.last() else { break };
            from = last.finalized.block.height.saturating_add(1);
            for proof in proofs {
                if Some(proof.finalized.block.height) != latest {
                    self.store_step(proof);
                }
            }
        }
        self.store.clear_steps_pending()
    }

    /// Opens the chain a store already holds, with the spec stored at genesis.
    pub fn open_stored(store: S) -> Result<Chain<S>, ChainError> {
        let spec = store.chain_spec()?.ok_or(ChainError::Empty)?;
        let spec = ChainSpec::from_json(&spec)?;
        Chain::open(store, spec)
    }

    /// Sets which states below the final block are kept; pruning happens as blocks become
    /// final ([`Chain::finalize`]).
    pub fn set_pruning(&mut self, pruning: StatePruning) {
        self.pruning = pruning;
    }

    /// The fewest states below the final block a pruning node keeps: two epochs' worth (an epoch
    /// holds at most one block per slot), so that the roster of the final block's epoch and of
    /// the one before, which votes are counted with, stay readable.
    pub fn min_kept_states(&self) -> u64 {
        self.spec.params.slots_per_epoch.saturating_mul(2)
    }

    /// The last final checkpoint.
    pub fn finalized(&self) -> Checkpoint {
        self.finalized
    }

    /// Records `checkpoint` as final (durably), with its proof if given: it must be on this
    /// chain, and above the last final one (a lower one changes nothing). From then on no
    /// reorganisation goes below it. The stored proofs are the last of each epoch and the
    /// latest: the previous final block's proof goes if it is of the same epoch.
    pub fn finalize(
        &mut self,
        checkpoint: Checkpoint,
        proof: Option<&FinalityProof>,
    ) -> Result<bool, ChainError> {
        let block = checkpoint.block;
        if block.height <= self.finalized.block.height {
            return Ok(false);
        }
        if self.store.canonical_hash(block.height)? != Some(block.hash) {
            return Err(ChainError::NotOnThisChain { height: block.height, hash: block.hash });
        }
        let per_epoch = self.spec.params.slots_per_epoch;
        let same_epoch = epoch_of(self.finalized.round, per_epoch) == epoch_of(checkpoint.round, per_epoch);
        // Only a proof replaces a proof: an epoch never loses the one it has.
        let replaces = (proof.is_some() && same_epoch && self.finalized.block.height > 0)
            .then_some(self.finalized.block.height);
        let latest = self.store.latest_finality_proof()?;
        self.store.set_finalized(&checkpoint, proof, replaces)?;
        self.finalized = checkpoint;
        // The latest proof is kept for good unless this one replaces it: its step is built now,
        // while the states it proves records against are held, and stored for light peers.
        if let Some(latest) =
            latest.filter(|latest| proof.is_some() && replaces != Some(latest.finalized.block.height))
        {
            self.store_step(latest);
        }
        // The checkpoint is recorded; pruning that fails is tried again at the next one.
        if let Err(error) = self.prune() {
            tracing::warn!(%error, "could not remove old states");
        }
        Ok(true)
    }

    /// Builds and stores the step of a proof stored for good, unless it is stored already.
    fn store_step(&mut self, proof: FinalityProof) {
        let height = proof.finalized.block.height;
        let step = match self.store.finality_step(height) {
            Ok(Some(_)) => return,
            Ok(None) => self.finality_step(proof),
            Err(error) => Err(error),
        };
        match step.and_then(|step| step.map_or(Ok(()), |step| self.store.put_finality_step(&step))) {
            Ok(()) => {}
            // Finality goes on; a light peer then skips over this proof to a later one.
            Err(error) => {
                tracing::warn!(height, %error, "could not store the finality step of a final block")
            }
        }
    }

    /// Removes the states below the kept ones ([`StatePruning`]), within [`PRUNE_BUDGET`].
    fn prune(&mut self) -> Result<(), StoreError> {
        let StatePruning::Keep(keep) = self.pruning else { return Ok(()) };
        let below = self.finalized.block.height.saturating_sub(keep.max(self.min_kept_states()));
        if below > self.store.pruned_below() {
            self.store.prune_state(below, std::time::Instant::now() + PRUNE_BUDGET)?;
        }
        Ok(())
    }

    /// Stored proofs of finality of blocks at or above `height`, lowest first, at most `limit`.
    pub fn finality_proofs(&self, height: u64, limit: usize) -> Result<Vec<FinalityProof>, StoreError> {
        self.store.finality_proofs(height, limit)
    }

    /// The hash of the block at `height` on the chain that ends in `block` (stored or kept
    /// aside): one lookup on the canonical chain, a walk of at most [`MAX_REORG_DEPTH`] parents
    /// off it; `None` if unknown. What the finality gadget needs of the block tree.
    pub fn ancestor(&self, block: &BlockId, height: u64) -> Result<Option<Hash>, StoreError> {
        if height > block.height {
            return Ok(None);
        }
        if let Some(found) = self.branch_ancestor(block, height)? {
            return Ok(found);
        }
        let mut at = *block;
        for _ in 0..=MAX_REORG_DEPTH {
            if self.store.canonical_hash(at.height)? == Some(at.hash) {
                return self.store.canonical_hash(height);
            }
            if at.height == height {
                return Ok(Some(at.hash));
            }
            let parent = match self.side.get(&at.hash) {
                Some(side) => side.header().parent_hash,
                None => match self.store.header(&at.hash)? {
                    Some(header) => header.header().parent_hash,
                    None => return Ok(None),
                },
            };
            at = BlockId { height: at.height - 1, hash: parent };
        }
        Ok(None)
    }

    /// The voting weights of `epoch` ([`crate::finality::Weights`]) on the canonical chain:
    /// the epoch's roster and the state its forgers' records are read from (that of the last
    /// block before the epoch, or the head if the epoch has not begun on it); `None` for an epoch
    /// more than one past the head's, whose roster is not fixed yet. The roster is cached.
    pub fn voting_roster(&self, epoch: u64) -> Result<Option<VotingRoster>, StoreError> {
        let slots_per_epoch = self.spec.params.slots_per_epoch;
        let head_epoch = epoch_of(self.head.header().slot, slots_per_epoch);
        if epoch > head_epoch + 1 {
            return Ok(None);
        }
        let first_slot = epoch.saturating_mul(slots_per_epoch);
        let corrupt = |what: String| StoreError::Corrupt(what);
        let anchor = if self.head.header().slot < first_slot {
            self.head.clone()
        } else {
            // The last canonical block before the epoch: slots rise with height, so bisect,
            // among the blocks held (a state-synced store starts at its base).
            let base = self.store.base_height();
            let (mut low, mut high) = (base, self.head.header().height);
            while low < high {
                let middle = low + (high - low).div_ceil(2);
                let hash = self
                    .store
                    .canonical_hash(middle)?
                    .ok_or_else(|| corrupt(format!("no block at {middle}")))?;
                let header = self
                    .store
                    .header(&hash)?
                    .ok_or_else(|| corrupt(format!("block {hash} has no header")))?;
                if header.header().slot < first_slot {
                    low = middle;
                } else {
                    high = middle - 1;
                }
            }
            let hash =
                self.store.canonical_hash(low)?.ok_or_else(|| corrupt(format!("no block at {low}")))?;
            let header =
                self.store.header(&hash)?.ok_or_else(|| corrupt(format!("block {hash} has no header")))?;
            // The epoch began before the base: the base's state records its roster only if the
            // base is in it (a roster holds from the end of epoch - 2 to the end of epoch).
            if low == base
                && base > 0
                && header.header().slot >= first_slot
                && epoch_of(header.header().slot, slots_per_epoch) != epoch
            {
                return Ok(None);
            }
            header
        };
        let version = anchor.header().height;
        let mut executor = self.executor(&self.store, &anchor, version, first_slot)?;
        let roster = executor.shared_roster()?.clone();
        Ok(Some(VotingRoster { epoch, roster, version }))
    }

    /// `voter`'s weight in `roster`'s epoch: its roster weight if its record (as the roster's
    /// state holds it) lets it sign in that epoch, else 0.
    pub fn voting_weight(&self, roster: &VotingRoster, voter: &Address) -> Result<u128, StoreError> {
        let weight = roster.roster.weight(voter);
        if weight == 0 {
            return Ok(0);
        }
        let record = crate::state::read_forger(&self.store, roster.version, voter)?;
        Ok(if record.is_some_and(|r| r.signs_in(roster.epoch)) { weight } else { 0 })
    }

    /// Whether the block `hash` is stored or kept aside.
    pub fn knows(&self, hash: &Hash) -> Result<bool, StoreError> {
        Ok(self.side.contains(hash) || self.branch_holds(hash) || self.store.header(hash)?.is_some())
    }

    /// The head block's header.
    pub fn head(&self) -> &SealedHeader {
        &self.head
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis
    }

    /// The chain spec.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The store, for reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// An account at the head, with its leaf value and the proof of it against the head's
    /// state root (see [`crate::proof`]).
    pub fn account_proof(&self, address: &Address) -> Result<AccountProof, StoreError> {
        let height = self.head.header().height;
        let (state, proof) = crate::proof::prove_account(&self.store, height, address)?;
        Ok(AccountProof { head: self.head.clone(), account: self.account(address)?, state, proof })
    }

    /// An account at the head.
    pub fn account(&self, address: &Address) -> Result<Account, StoreError> {
        crate::state::read_account(&self.store, self.head.header().height, address)
    }

    /// Imports a block: extends the head, keeps it aside, or switches to the better chain it
    /// completes (fork choice: `lottery::ForkChoiceKey`). An invalid block changes nothing.
    pub fn import(&mut self, block: Block) -> Result<Imported, ChainError> {
        self.import_with(block, &|_| false)
    }

    /// [`Chain::import`], trusting the signatures of the transactions for which `verified` holds
    /// when the block extends the head (see [`crate::execute::apply_block_with`]). Blocks of other
    /// branches are always checked in full.
    pub fn import_with(
        &mut self,
        block: Block,
        verified: &dyn Fn(&Transaction) -> bool,
    ) -> Result<Imported, ChainError> {
        let hash = block.hash();
        let height = block.header().height;
        if self.side.contains(&hash) || self.store.canonical_hash(height)? == Some(hash) {
            return Ok(Imported::Known);
        }
        let head_height = self.head.header().height;
        if self.branch_extends(&block) {
            return self.extend_branch(block);
        }
        if block.header().parent_hash == self.head.hash() {
            let executor =
                self.executor(&self.store, &self.head, self.head.header().height, block.header().slot)?;
            let applied = apply_block_in(executor, &self.spec, &self.genesis, &self.head, block, verified)?;
            let receipts = applied.receipts.clone();
            self.commit(applied)?;
            self.drop_stale_branch();
            // Blocks kept aside may now extend the new head, or beat it: a switch they cause is
            // reported, so that the replaced blocks' transactions are not lost.
            let reverted = self.connect_side_blocks()?;
            if reverted.is_empty() {
                return Ok(Imported::Extended(receipts));
            }
            return Ok(Imported::Reorganized { depth: reverted.len() as u64, reverted });
        }
        if height <= self.finalized.block.height {
            return Err(ChainError::BelowFinality { height, finalized: self.finalized.block.height });
        }
        if height.saturating_add(MAX_REORG_DEPTH) <= head_height || height == 0 {
            return Err(ChainError::TooDeep { height, head: head_height });
        }
        // Blocks far ahead come through sync, not the side pool: anyone can self-sign junk at
        // any height, and it must not crowd out real forks.
        if height > head_height.saturating_add(MAX_REORG_DEPTH) {
            return Err(ChainError::TooFarAhead { height, head: head_height });
        }
        self.admit_aside(&block)?;
        self.keep_aside(block);
        let outcome = self.try_branches_through(hash)?;
        if outcome == Imported::Side {
            return Ok(outcome);
        }
        let more = self.connect_side_blocks()?;
        Ok(match outcome {
            Imported::Reorganized { mut reverted, .. } => {
                reverted.extend(more);
                Imported::Reorganized { depth: reverted.len() as u64, reverted }
            }
            Imported::Extended(_) if !more.is_empty() => {
                Imported::Reorganized { depth: more.len() as u64, reverted: more }
            }
            other => other,
        })
    }

    /// What a block must show before it is kept aside, where nothing applies it yet.
    ///
    /// Everything it proves about itself: a body that does not match its header must not occupy
    /// the header's hash. And that its forger may sign it: if its fork leaves the canonical chain
    /// at its parent, or in its own epoch, the draw is exactly the one its branch makes (the
    /// epoch's roster and seed are fixed before the epoch starts), and a forger that did not win
    /// it is shown to break the rules. In a later epoch of a fork, or without its parent, the
    /// draw is unknown here; the forger must at least hold a ticket for the block's epoch, so
    /// that junk costs a ticket and, signed twice for a slot, forfeits it.
    fn admit_aside(&self, block: &Block) -> Result<(), ChainError> {
        check_contents(&self.spec, &self.genesis, block)?;
        let header = block.header();
        let mut parent = header.parent_hash;
        let mut steps = 0u64;
        let fork = loop {
            if let Some(side) = self.side.get(&parent) {
                steps += 1;
                if steps > MAX_REORG_DEPTH {
                    break None;
                }
                parent = side.header().parent_hash;
                continue;
            }
            match self.store.header(&parent)? {
                Some(known) if self.store.canonical_hash(known.header().height)? == Some(parent) => {
                    break Some(known);
                }
                _ => break None,
            }
        };
        let slots_per_epoch = self.spec.params.slots_per_epoch;
        let epoch = epoch_of(header.slot, slots_per_epoch);
        let version = fork.as_ref().map_or(self.head.header().height, |fork| fork.header().height);
        let exact = fork
            .as_ref()
            .is_some_and(|fork| steps == 0 || epoch_of(fork.header().slot, slots_per_epoch) == epoch);
        let mut executor = match (&fork, exact) {
            // The roster is the one its branch draws from at the fork point.
            (Some(fork), true) => self.executor(&self.store, fork, version, header.slot)?,
            _ => Executor::new(&self.store, &self.spec, self.genesis, version, header.slot),
        };
        if let (0, Some(parent)) = (steps, &fork) {
            // A fork from the canonical chain at this very parent: every rule of the header
            // against its parent holds, or the block is refused here.
            check_header(&self.spec, &self.genesis, parent, block)?;
        }
        if exact {
            if !executor.entitled(header)? {
                return Err(BlockError::NotEntitled {
                    forger: header.forger,
                    slot: header.slot,
                    rank: header.rank,
                }
                .into());
            }
        } else if !executor.holds_ticket(&header.forger)? {
            return Err(ChainError::Unproven { hash: block.hash(), forger: header.forger });
        }
        Ok(())
    }

    /// Keeps a block aside; when the pool is full, the blocks farthest from the head's height go
    /// first (stale forks below, speculative blocks above).
    fn keep_aside(&mut self, block: Block) {
        self.side.insert(block, self.head.header().height);
    }

    /// Side blocks whose parent is the head may now extend or beat it. Returns the blocks that
    /// switches to better branches replaced, lowest first.
    pub(super) fn connect_side_blocks(&mut self) -> Result<Vec<Block>, ChainError> {
        let mut reverted = Vec::new();
        loop {
            let head = self.head.hash();
            let mut children: Vec<Hash> =
                self.side.iter().filter(|(_, b)| b.header().parent_hash == head).map(|(h, _)| *h).collect();
            children.sort();
            let mut moved = false;
            for child in children {
                match self.try_branches_through(child) {
                    Ok(Imported::Side) => {}
                    Ok(outcome) => {
                        if let Imported::Reorganized { reverted: replaced, .. } = outcome {
                            reverted.extend(replaced);
                        }
                        moved = true;
                        break;
                    }
                    Err(ChainError::Invalid(error)) => {
                        tracing::debug!(%error, "dropped an invalid side block")
                    }
                    Err(error) => return Err(error),
                }
            }
            if !moved {
                return Ok(reverted);
            }
        }
    }

    /// Tries, as new heads, the side-pool leaves that descend from `from` (itself included),
    /// best candidates first, and switches to the first that beats the current chain. A
    /// descendant found invalid is dropped and the search goes on without it: a bad child never
    /// makes its parent invalid. The error returned is `from`'s own (or its ancestors').
    fn try_branches_through(&mut self, from: Hash) -> Result<Imported, ChainError> {
        loop {
            let mut children: HashMap<Hash, Vec<Hash>> = HashMap::new();
            for (hash, block) in self.side.iter() {
                children.entry(block.header().parent_hash).or_default().push(*hash);
            }
            let mut leaves = Vec::new();
            let mut stack = vec![from];
            while let Some(hash) = stack.pop() {
                match children.get(&hash) {
                    Some(kids) => stack.extend(kids),
                    None => leaves.push(hash),
                }
            }
            leaves.sort_by_key(|hash| {
                (std::cmp::Reverse(self.side.get(hash).map_or(0, |b| b.header().height)), *hash)
            });
            let mut dropped_a_descendant = false;
            for leaf in leaves {
                match self.try_reorganize(leaf) {
                    Ok(Imported::Side) => {}
                    Ok(outcome) => return Ok(outcome),
                    Err(ChainError::Invalid(error)) if self.side.contains(&from) => {
                        // A descendant broke a rule (it and its own descendants are gone): try
                        // the branches again without it.
                        tracing::debug!(%error, "dropped an invalid descendant of a side block");
                        dropped_a_descendant = true;
                        break;
                    }
                    Err(error) => return Err(error),
                }
            }
            if !dropped_a_descendant {
                return Ok(Imported::Side);
            }
        }
    }

    /// Switches to the branch ending at side block `tip` if it connects to the canonical chain
    /// and beats it under fork choice. Fork choice is decided from headers; the replaced blocks
    /// are read only for a switch. Invalid branch blocks are dropped from the side pool, with
    /// their descendants on the branch.
    fn try_reorganize(&mut self, tip: Hash) -> Result<Imported, ChainError> {
        let mut branch = Vec::new();
        let mut cursor = tip;
        let ancestor = loop {
            let Some(block) = self.side.get(&cursor) else { return Ok(Imported::Side) };
            branch.push(cursor);
            let (parent, height) = (block.header().parent_hash, block.header().height);
            if self.store.canonical_hash(height - 1)? == Some(parent) {
                break self
                    .store
                    .header(&parent)?
                    .ok_or_else(|| StoreError::Corrupt(format!("block {parent} has no header")))?;
            }
            if branch.len() as u64 > MAX_REORG_DEPTH {
                return Ok(Imported::Side);
            }
            cursor = parent;
        };
        branch.reverse();
        let (ancestor_height, head_height) = (ancestor.header().height, self.head.header().height);
        let depth = head_height - ancestor_height;
        // Never below the final block, whatever fork choice says.
        if depth > MAX_REORG_DEPTH || ancestor_height < self.finalized.block.height {
            return Ok(Imported::Side);
        }
        let mut replaced_hashes = Vec::with_capacity(depth as usize);
        let mut replaced_ranks = 0u64;
        for height in ancestor_height + 1..=head_height {
            let hash = self
                .store
                .canonical_hash(height)?
                .ok_or_else(|| StoreError::Corrupt(format!("no block at {height}")))?;
            let header = self
                .store
                .header(&hash)?
                .ok_or_else(|| StoreError::Corrupt(format!("block {hash} has no header")))?;
            replaced_ranks += u64::from(header.header().rank);
            replaced_hashes.push(hash);
        }
        let current_sum = self.store.rank_sum()?;
        let branch_ranks: u64 =
            branch.iter().filter_map(|h| self.side.get(h)).map(|b| u64::from(b.header().rank)).sum();
        let tip_height = self.side.get(&tip).map_or(0, |b| b.header().height);
        let candidate = ForkChoiceKey {
            height: tip_height,
            rank_sum: current_sum.checked_sub(replaced_ranks).ok_or_else(|| {
                StoreError::Corrupt("the stored rank sum is smaller than its blocks' ranks".into())
            })? + branch_ranks,
            head: tip,
        };
        let has_justified = branch.contains(&self.justified.block.hash);
        if !self.prefers(ancestor_height, has_justified, candidate)? {
            return Ok(Imported::Side);
        }
        let mut applied = Vec::with_capacity(branch.len());
        {
            let mut overlay = BranchOverlay::new(ancestor_height);
            let mut parent = ancestor.clone();
            for (index, hash) in branch.iter().enumerate() {
                let Some(block) = self.side.get(hash).cloned() else { return Ok(Imported::Side) };
                let slot = block.header().slot;
                let outcome = {
                    let reader = overlay.reader(&self.store);
                    let executor = self.executor(&reader, &parent, parent.header().height, slot)?;
                    apply_block_in(executor, &self.spec, &self.genesis, &parent, block, &|_| false)
                };
                match outcome {
                    Ok(done) => {
                        overlay.add(&done.state);
                        parent = done.block.header.clone();
                        applied.push(done);
                    }
                    Err(ApplyError::Invalid(error)) => {
                        for bad in &branch[index..] {
                            self.side.remove(bad);
                        }
                        return Err(ChainError::Invalid(error));
                    }
                    Err(ApplyError::Store(error)) => return Err(error.into()),
                }
            }
        }
        let mut replaced = Vec::with_capacity(replaced_hashes.len());
        for hash in &replaced_hashes {
            let block = self
                .store
                .block(hash)?
                .ok_or_else(|| StoreError::Corrupt(format!("block {hash} is missing")))?;
            replaced.push(block);
        }
        let new_head = parent_of_last(&applied).unwrap_or_else(|| ancestor.clone());
        self.store.reorganize(&ancestor, applied)?;
        for hash in &branch {
            self.side.remove(hash);
        }
        for block in &replaced {
            self.keep_aside(block.clone());
        }
        tracing::info!(depth, head = %new_head.hash(), height = new_head.header().height, "switched to a better chain");
        self.head = new_head;
        Ok(Imported::Reorganized { depth, reverted: replaced })
    }

    /// Starts `forger`'s block on the head for `slot`, if the lottery lets it sign that slot.
    pub fn builder(
        &self,
        forger: &Keypair,
        slot: u64,
        timestamp_ms: u64,
    ) -> Result<BlockBuilder<'_, S>, ChainError> {
        let executor = self.executor(&self.store, &self.head, self.head.header().height, slot)?;
        Ok(BlockBuilder::with_executor(executor, &self.store, &self.head, forger, timestamp_ms)?)
    }

    /// The ranks at which each of `forgers` may sign `slot` on top of the head (one roster read,
    /// at most one per epoch).
    pub fn ranks(&self, slot: u64, forgers: &[Address]) -> Result<Vec<Option<u32>>, StoreError> {
        let mut executor = self.executor(&self.store, &self.head, self.head.header().height, slot)?;
        forgers.iter().map(|forger| executor.rank_of(slot, forger)).collect()
    }

    /// The roster of `epoch` as the head's state records it: for the head's epoch or a later
    /// one, what a block on the head draws from (kept for the next reader).
    pub fn roster(&self, epoch: u64) -> Result<Arc<Roster>, StoreError> {
        let (height, head_slot) = (self.head.header().height, self.head.header().slot);
        let slots_per_epoch = self.spec.params.slots_per_epoch;
        let slot = epoch.saturating_mul(slots_per_epoch).max(head_slot);
        if epoch_of(slot, slots_per_epoch) != epoch {
            // An epoch before the head's: no block on the head draws from it.
            return Ok(Arc::new(crate::state::read_roster(&self.store, height, epoch)?));
        }
        let mut executor = self.executor(&self.store, &self.head, height, slot)?;
        executor.shared_roster().cloned()
    }

    /// The proof that a peer keeping no state needs to check whether `forger` may sign a block
    /// of `slot` on `parent`, a block whose state the store holds (a canonical one): see
    /// [`crate::proof::prove_lottery`]. The roster entry comes from the roster imports use
    /// (cached, its tree built once), and only for the epochs a child of `parent` can be in
    /// with drawn ranks, so no slot a peer names makes the node read another epoch's roster.
    pub fn lottery_proof(
        &self,
        parent: &SealedHeader,
        forger: &Address,
        slot: u64,
    ) -> Result<crate::proof::LotteryProof, StoreError> {
        let version = parent.header().height;
        let slots_per_epoch = self.spec.params.slots_per_epoch;
        let epoch = epoch_of(slot, slots_per_epoch);
        let last_epoch = crate::state::read_consensus(&self.store, version)?.seed_epoch;
        let entry = if slot > parent.header().slot && crate::lottery::drawn_ranks_open(last_epoch, epoch) {
            self.executor(&self.store, parent, version, slot)?.shared_roster()?.entry(forger)
        } else {
            None
        };
        crate::proof::prove_lottery(&self.store, version, forger, entry)
    }

    /// An executor for a block of `slot` on `parent`, whose state `reader` holds at `version`,
    /// with the roster of the block's epoch from the cache, or read and kept there. Within an
    /// epoch the roster does not change (tickets bought start two epochs later; an equivocation
    /// report ends tickets after the current epoch), so one read serves every block of the epoch
    /// on a branch instead of one per block, each reading one record per forger.
    fn executor<'r, R: TreeReader + ?Sized>(
        &'r self,
        reader: &'r R,
        parent: &SealedHeader,
        version: u64,
        slot: u64,
    ) -> Result<Executor<'r, R>, StoreError> {
        let epoch = epoch_of(slot, self.spec.params.slots_per_epoch);
        let mut executor = Executor::new(reader, &self.spec, self.genesis, version, slot);
        let Some(key) = self.roster_key(parent, epoch)? else { return Ok(executor) };
        let mut rosters = self.rosters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, roster)) = rosters.iter().find(|(k, _)| *k == key) {
            return Ok(executor.with_roster(roster.clone()));
        }
        let roster = executor.shared_roster()?.clone();
        if rosters.len() == ROSTERS_KEPT {
            rosters.pop_front();
        }
        rosters.push_back((key, roster));
        Ok(executor)
    }

    /// The key of the roster of `epoch` after `parent`: the epoch, and the last block before it
    /// on `parent`'s branch, found within one epoch's headers. `None` if a header on the way is
    /// neither stored nor kept aside.
    fn roster_key(&self, parent: &SealedHeader, epoch: u64) -> Result<Option<RosterKey>, StoreError> {
        let slots_per_epoch = self.spec.params.slots_per_epoch;
        let mut header = parent.clone();
        // Slots rise along a valid branch, so an epoch holds at most `slots_per_epoch` blocks;
        // a branch of junk kept aside is not followed further.
        let mut steps = 0u64;
        while epoch_of(header.header().slot, slots_per_epoch) >= epoch && header.header().height > 0 {
            steps += 1;
            if steps > slots_per_epoch {
                return Ok(None);
            }
            let hash = header.header().parent_hash;
            header = match self.side.get(&hash) {
                Some(block) => block.header.clone(),
                None => match self.store.header(&hash)? {
                    Some(stored) => stored,
                    None => return Ok(None),
                },
            };
        }
        Ok(Some((epoch, header.hash())))
    }

    /// The rank at which `forger` may sign `slot` on top of the head, if any.
    pub fn rank_of(&self, forger: &Address, slot: u64) -> Result<Option<u32>, StoreError> {
        Ok(self.ranks(slot, std::slice::from_ref(forger))?.pop().flatten())
    }

    /// Commits a block built on the head by [`Chain::builder`], which applied it already.
    pub fn commit(&mut self, applied: AppliedBlock) -> Result<(), ChainError> {
        let header = applied.block.header.clone();
        self.store.commit(Commit { applied, chain_spec: None })?;
        self.head = header;
        Ok(())
    }
}

fn parent_of_last(applied: &[AppliedBlock]) -> Option<SealedHeader> {
    applied.last().map(|a| a.block.header.clone())
}

/// The state root the store holds for `height`, to compare with a header.
pub fn stored_state_root<R: TreeReader + ?Sized>(reader: &R, height: u64) -> Result<Hash, StoreError> {
    crate::state::state_root(reader, height)
}

/// The chain as the finality gadget sees it ([`crate::finality::Ancestry`],
/// [`crate::finality::Weights`]): its block tree, and its voting weights, each epoch's roster
/// read once per view. A read that fails counts as unknown (no block, no weight).
pub struct FinalityView<'a, S: Store> {
    chain: &'a Chain<S>,
    rosters: Mutex<HashMap<u64, Option<VotingRoster>>>,
}

impl<'a, S: Store> FinalityView<'a, S> {
    /// A view of `chain`.
    pub fn new(chain: &'a Chain<S>) -> Self {
        FinalityView { chain, rosters: Mutex::new(HashMap::new()) }
    }

    fn roster(&self, epoch: u64) -> Option<VotingRoster> {
        let mut rosters = self.rosters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rosters.entry(epoch).or_insert_with(|| self.chain.voting_roster(epoch).ok().flatten()).clone()
    }
}

impl<S: Store> crate::finality::Ancestry for FinalityView<'_, S> {
    fn ancestor(&self, block: &BlockId, height: u64) -> Option<Hash> {
        self.chain.ancestor(block, height).ok().flatten()
    }
}

impl<S: Store> crate::finality::Weights for FinalityView<'_, S> {
    fn weight(&self, epoch: u64, voter: &Address) -> u128 {
        self.roster(epoch).map_or(0, |roster| self.chain.voting_weight(&roster, voter).unwrap_or(0))
    }

    fn total(&self, epoch: u64) -> u128 {
        self.roster(epoch).map_or(0, |roster| roster.roster.total_weight())
    }
}
