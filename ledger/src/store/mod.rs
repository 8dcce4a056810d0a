//! Where the chain lives: blocks, the canonical index, transactions by id, and the state tree.
//!
//! [`Store`] is what the chain needs; [`RocksStore`] keeps it on disk and [`MemoryStore`] in
//! memory for tests. A block and everything it changes are committed together or not at all.

mod memory;
#[cfg(feature = "node")]
mod rocks;

pub use memory::MemoryStore;
#[cfg(feature = "node")]
pub use rocks::{RocksStore, StateEntries, StateRestore};

use jmt::storage::TreeReader;

use crate::execute::{AppliedBlock, Receipt};
use crate::{Account, Address, Block, Hash, SealedHeader, Transaction, state};

/// The store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// There is no database where one was expected.
    #[error("no Goodwill database at {0}")]
    Missing(String),
    /// RocksDB failed.
    #[error("database error: {0}")]
    Database(String),
    /// Stored bytes do not decode: the database is damaged.
    #[error("the database is damaged: {0}; run `goodwill ledger verify` and restore from a peer or backup")]
    Corrupt(String),
    /// The state tree could not be read.
    #[error("state tree error: {0}")]
    Tree(String),
    /// A commit that would not extend the current head.
    #[error("refusing to commit block {block} at height {height}: it does not extend the head {head}")]
    NotOnHead {
        /// The block.
        block: Hash,
        /// Its height.
        height: u64,
        /// The current head.
        head: Hash,
    },
    /// A state version this store no longer holds: it keeps the states of the last final blocks
    /// only (see [`Store::prune_state`]).
    #[error("the state at height {version} is pruned: this node keeps states from height {lowest} on")]
    Pruned {
        /// Asked for.
        version: u64,
        /// The lowest state version held.
        lowest: u64,
    },
    /// The store was made by an incompatible version of Goodwill: a newer one, or one older
    /// than this build migrates.
    #[error(
        "the database schema is version {found}; this build reads version {expected} and migrates versions {oldest} and later"
    )]
    Schema {
        /// Found.
        found: u32,
        /// The oldest version migrated.
        oldest: u32,
        /// This build's version.
        expected: u32,
    },
}

/// A state reader off the store's thread ([`Store::detached_reader`]).
pub trait DetachedState: TreeReader + Send + Sync {
    /// The lowest state version held now: a read of a version below it may have missed what
    /// pruning removed.
    fn pruned_below(&self) -> u64;
}

/// Where a committed transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TxLocation {
    /// The block holding it.
    pub block_hash: Hash,
    /// That block's height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
}

/// One committed transaction in an account's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// The transaction.
    pub id: Hash,
    /// Where it is.
    pub location: TxLocation,
}

/// Most entries one history query returns.
pub const MAX_HISTORY_PAGE: usize = 1_000;

/// The accounts a transaction's history is indexed under: every account it may change, once.
pub(crate) fn history_accounts(tx: &Transaction) -> Vec<Address> {
    let mut accounts = tx.body().accounts();
    accounts.sort_unstable();
    accounts.dedup();
    accounts
}

/// What one commit writes, atomically.
#[derive(Debug)]
pub struct Commit {
    /// The block, its receipts and its state.
    pub applied: AppliedBlock,
    /// The chain spec (JSON), written with genesis so that a store knows its chain.
    pub chain_spec: Option<String>,
}

/// Persistent chain storage. Readers see either the state before a commit or after it, never a
/// mix; the state tree is read through [`TreeReader`].
pub trait Store: TreeReader {
    /// Hash of the head block, or `None` for an empty store.
    fn head(&self) -> Result<Option<Hash>, StoreError>;
    /// A header by block hash.
    fn header(&self, hash: &Hash) -> Result<Option<SealedHeader>, StoreError>;
    /// A block's transactions by block hash.
    fn transactions(&self, hash: &Hash) -> Result<Option<Vec<Transaction>>, StoreError>;
    /// A block's receipts by block hash.
    fn receipts(&self, hash: &Hash) -> Result<Option<Vec<Receipt>>, StoreError>;
    /// The canonical block hash at `height`.
    fn canonical_hash(&self, height: u64) -> Result<Option<Hash>, StoreError>;
    /// Where a committed transaction is.
    fn transaction_location(&self, id: &Hash) -> Result<Option<TxLocation>, StoreError>;
    /// Committed transactions that may have changed `address`, newest first: those strictly
    /// before `before` (a height and an index in that block) when it is given, at most `limit`
    /// (capped at [`MAX_HISTORY_PAGE`]).
    fn history(
        &self,
        address: &Address,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError>;
    /// The chain spec stored with genesis.
    fn chain_spec(&self) -> Result<Option<String>, StoreError>;
    /// Writes a block that extends the head (or genesis into an empty store) with its state,
    /// atomically, and makes it the head.
    fn commit(&mut self, commit: Commit) -> Result<(), StoreError>;
    /// Sum of the lottery ranks of every block from genesis to the head (for fork choice).
    fn rank_sum(&self) -> Result<u64, StoreError>;
    /// The last final checkpoint recorded, if any.
    fn finalized(&self) -> Result<Option<crate::finality::Checkpoint>, StoreError>;
    /// Records `checkpoint` as the last final one, durably, with its proof if given; in the same
    /// write, the stored proof of the final block at `replaces` goes (one proof per epoch is
    /// kept, and the latest).
    fn set_finalized(
        &mut self,
        checkpoint: &crate::finality::Checkpoint,
        proof: Option<&crate::finality::FinalityProof>,
        replaces: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Stored proofs of finality of blocks at or above `height`, lowest first, at most `limit`.
    fn finality_proofs(
        &self,
        height: u64,
        limit: usize,
    ) -> Result<Vec<crate::finality::FinalityProof>, StoreError>;
    /// The latest stored proof of finality, if any.
    fn latest_finality_proof(&self) -> Result<Option<crate::finality::FinalityProof>, StoreError>;
    /// The finality step stored for the final block at `height` ([`Store::put_finality_step`]).
    fn finality_step(&self, height: u64) -> Result<Option<crate::light::FinalityStep>, StoreError>;
    /// Stores a step whose proof is stored for good (the last of its epoch): built while the
    /// states it proves records against are held, it outlives their pruning.
    fn put_finality_step(&mut self, step: &crate::light::FinalityStep) -> Result<(), StoreError>;
    /// Whether proofs kept for good may lack their stored steps (a database migrated from a
    /// schema without them): [`crate::Chain::open`] builds them while their states are held,
    /// then calls [`Store::clear_steps_pending`].
    fn steps_pending(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Records that every proof kept for good has its step.
    fn clear_steps_pending(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The lowest state version (block height) this store holds: reading the state below it
    /// fails with [`StoreError::Pruned`]. 0 until [`Store::prune_state`] removes any.
    fn pruned_below(&self) -> u64;
    /// The lowest block held after genesis: 0 if the store holds every block, else that of the
    /// final block whose state it was started from ([`crate::snapshot`]); the blocks between
    /// are not held.
    fn base_height(&self) -> u64;
    /// Removes the states of heights below `below` (never the head's): every tree node and value
    /// that only they use goes, the newer versions stay whole. Works height by height, each
    /// removal atomic, until `deadline` (at least one height per call), and returns the lowest
    /// state version held after it. Only for heights no reorganisation can reach (below
    /// finality): a pruned state cannot be rebuilt.
    fn prune_state(&mut self, below: u64, deadline: std::time::Instant) -> Result<u64, StoreError>;
    /// A reader of the state that any thread may use while the store goes on (committing,
    /// pruning), if the store has one: states at or above its [`DetachedState::pruned_below`]
    /// read whole, and one that pruning passes during a read must be read again.
    fn detached_reader(&self) -> Option<std::sync::Arc<dyn DetachedState>> {
        None
    }
    /// Atomically replaces the canonical blocks above `ancestor` by `branch` (whose first block's
    /// parent is `ancestor`, each applied on the one before): the replaced blocks' state values,
    /// canonical entries and transaction index entries are removed, the branch is written, and
    /// its last block becomes the head. Either all of it happens or none.
    fn reorganize(&mut self, ancestor: &SealedHeader, branch: Vec<AppliedBlock>) -> Result<(), StoreError>;

    /// A whole block by hash.
    fn block(&self, hash: &Hash) -> Result<Option<Block>, StoreError> {
        let Some(header) = self.header(hash)? else { return Ok(None) };
        let transactions = self
            .transactions(hash)?
            .ok_or_else(|| StoreError::Corrupt(format!("block {hash} has a header but no body")))?;
        Ok(Some(Block { header, transactions }))
    }

    /// The head's header.
    fn head_header(&self) -> Result<Option<SealedHeader>, StoreError> {
        let Some(hash) = self.head()? else { return Ok(None) };
        let header =
            self.header(&hash)?.ok_or_else(|| StoreError::Corrupt(format!("head {hash} has no header")))?;
        Ok(Some(header))
    }

    /// An account at the head.
    fn account(&self, address: &Address) -> Result<Account, StoreError> {
        let Some(head) = self.head_header()? else { return Ok(Account::default()) };
        state::read_account(self, head.header().height, address)
    }
}

/// Checks that `branch` is a chain of blocks starting on `ancestor`.
fn check_branch(ancestor: &SealedHeader, branch: &[AppliedBlock]) -> Result<(), StoreError> {
    let mut parent = (ancestor.hash(), ancestor.header().height);
    for applied in branch {
        let header = applied.block.header();
        if header.parent_hash != parent.0 || header.height != parent.1 + 1 {
            return Err(StoreError::NotOnHead {
                block: applied.block.hash(),
                height: header.height,
                head: parent.0,
            });
        }
        parent = (applied.block.hash(), header.height);
    }
    Ok(())
}

/// Checks that `commit` extends `head` (or starts an empty store with genesis).
fn check_extends(head: Option<Hash>, commit: &Commit) -> Result<(), StoreError> {
    let header = commit.applied.block.header();
    let extends = match head {
        None => header.height == 0,
        Some(head) => header.parent_hash == head,
    };
    if extends {
        Ok(())
    } else {
        Err(StoreError::NotOnHead {
            block: commit.applied.block.hash(),
            height: header.height,
            head: head.unwrap_or(Hash::ZERO),
        })
    }
}
