//! A chain: a store, the spec it was made from, and its head. Imports blocks with full
//! validation and commits each one atomically.

use jmt::storage::TreeReader;

use crate::execute::{AppliedBlock, ApplyError, BlockBuilder, BlockError, Receipt, apply_block};
use crate::spec::SpecError;
use crate::state::{EmptyTree, update_state};
use crate::store::{Commit, Store, StoreError};
use crate::{Account, Address, Block, ChainSpec, Hash, Header, SealedHeader};

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
}

impl From<ApplyError<BlockError>> for ChainError {
    fn from(error: ApplyError<BlockError>) -> Self {
        match error {
            ApplyError::Invalid(error) => ChainError::Invalid(error),
            ApplyError::Store(error) => ChainError::Store(error),
        }
    }
}

/// The genesis block of `spec` and the state it creates.
pub fn genesis(spec: &ChainSpec) -> Result<AppliedBlock, StoreError> {
    let accounts = spec
        .balances
        .iter()
        .map(|entry| (entry.address, Account { balance: entry.balance, nonce: 0 }))
        .collect();
    let state = update_state(&EmptyTree, 0, accounts)?;
    let header = Header {
        parent_hash: spec.commitment(),
        height: 0,
        slot: 0,
        timestamp_ms: spec.genesis_time_ms,
        transactions_root: Hash::ZERO,
        state_root: state.root,
        forger: Address::ZERO,
        transaction_count: 0,
    };
    let block = Block { header: header.seal_unsigned(), transactions: Vec::new() };
    Ok(AppliedBlock { block, receipts: Vec::new(), state })
}

/// A chain on a store.
#[derive(Debug)]
pub struct Chain<S: Store> {
    store: S,
    spec: ChainSpec,
    genesis: Hash,
    head: SealedHeader,
}

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
        Ok(Chain { store, spec, genesis: genesis_hash, head })
    }

    /// Opens the chain a store already holds, with the spec stored at genesis.
    pub fn open_stored(store: S) -> Result<Chain<S>, ChainError> {
        let spec = store.chain_spec()?.ok_or(ChainError::Empty)?;
        let spec = ChainSpec::from_json(&spec)?;
        Chain::open(store, spec)
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

    /// An account at the head.
    pub fn account(&self, address: &Address) -> Result<Account, StoreError> {
        crate::state::read_account(&self.store, self.head.header().height, address)
    }

    /// Validates `block` on the head and commits it. An invalid block changes nothing.
    pub fn import(&mut self, block: Block) -> Result<Vec<Receipt>, ChainError> {
        let applied = apply_block(&self.store, &self.spec, &self.head, block)?;
        let receipts = applied.receipts.clone();
        self.commit(applied)?;
        Ok(receipts)
    }

    /// Starts a block on the head.
    pub fn builder(&self, slot: u64, timestamp_ms: u64) -> BlockBuilder<'_, S> {
        BlockBuilder::new(&self.store, &self.spec, self.head.clone(), slot, timestamp_ms)
    }

    /// Commits a block built on the head by [`Chain::builder`], which applied it already.
    pub fn commit(&mut self, applied: AppliedBlock) -> Result<(), ChainError> {
        let header = applied.block.header.clone();
        self.store.commit(Commit { applied, chain_spec: None })?;
        self.head = header;
        Ok(())
    }
}

/// The state root the store holds for `height`, to compare with a header.
pub fn stored_state_root<R: TreeReader + ?Sized>(reader: &R, height: u64) -> Result<Hash, StoreError> {
    crate::state::state_root(reader, height)
}
