//! A chain: a store, the spec it was made from, and its head. Imports blocks with full
//! validation and commits each one atomically.

use jmt::storage::TreeReader;

use crate::execute::{AppliedBlock, ApplyError, BlockBuilder, BlockError, Receipt, apply_block};
use crate::spec::SpecError;
use std::collections::BTreeMap;

use crate::codec::{encode_association, encode_consensus, encode_forger};
use crate::lottery::epoch_seed;
use crate::state::{
    AssociationState, ConsensusState, EmptyTree, ForgerState, Ticket, account_values, association_key,
    consensus_key, forger_key, update_state,
};
use crate::store::{Commit, Store, StoreError};
use crate::{Account, Address, Amount, Block, ChainSpec, Hash, Header, Keypair, SealedHeader};

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

/// The genesis block of `spec` and the state it creates: balances, genesis forgers with
/// tickets that never expire, eligible genesis associations, and the consensus record whose mix
/// starts from the spec's commitment.
pub fn genesis(spec: &ChainSpec) -> Result<AppliedBlock, StoreError> {
    let commitment = spec.commitment();
    let accounts: BTreeMap<Address, Account> = spec
        .balances
        .iter()
        .map(|entry| (entry.address, Account { balance: entry.balance, nonce: 0 }))
        .collect();
    let mut entries = account_values(&accounts);
    for forger in &spec.forgers {
        let record = ForgerState {
            commitment: forger.commitment,
            blocks_forged: 0,
            tickets: vec![Ticket { weight: forger.ticket, first_epoch: 0, last_epoch: u64::MAX }],
        };
        entries.insert(forger_key(&forger.address), encode_forger(&forger.address, &record));
    }
    for association in &spec.associations {
        let record = AssociationState {
            name: association.name.clone(),
            proof_url: String::new(),
            document_hash: Hash::ZERO,
            registered_epoch: 0,
            voters: Vec::new(),
            eligible: true,
            received: Amount::ZERO,
        };
        entries
            .insert(association_key(&association.address), encode_association(&association.address, &record));
    }
    let mut forgers: Vec<Address> = spec.forgers.iter().map(|f| f.address).collect();
    forgers.sort();
    let mut associations: Vec<Address> = spec.associations.iter().map(|a| a.address).collect();
    associations.sort();
    let consensus = ConsensusState {
        mix: commitment,
        seed_epoch: 0,
        seed: epoch_seed(0, &commitment),
        forgers,
        associations,
    };
    entries.insert(consensus_key(), encode_consensus(&consensus));
    let state = update_state(&EmptyTree, 0, entries)?;
    let header = Header {
        parent_hash: commitment,
        height: 0,
        slot: 0,
        timestamp_ms: spec.genesis_time_ms,
        transactions_root: Hash::ZERO,
        state_root: state.root,
        forger: Address::ZERO,
        transaction_count: 0,
        rank: 0,
        reveal: Hash::ZERO,
        next_commitment: Hash::ZERO,
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
        let applied = apply_block(&self.store, &self.spec, &self.genesis, &self.head, block)?;
        let receipts = applied.receipts.clone();
        self.commit(applied)?;
        Ok(receipts)
    }

    /// Starts `forger`'s block on the head for `slot`, if the lottery lets it sign that slot.
    pub fn builder(
        &self,
        forger: &Keypair,
        slot: u64,
        timestamp_ms: u64,
    ) -> Result<BlockBuilder<'_, S>, ChainError> {
        Ok(BlockBuilder::new(&self.store, &self.spec, self.genesis, &self.head, forger, slot, timestamp_ms)?)
    }

    /// The rank at which `forger` may sign `slot` on top of the head, if any.
    pub fn rank_of(&self, forger: &Address, slot: u64) -> Result<Option<u32>, StoreError> {
        let mut executor = crate::execute::Executor::new(
            &self.store,
            &self.spec,
            self.genesis,
            self.head.header().height,
            slot,
        );
        executor.rank_of(slot, forger)
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
