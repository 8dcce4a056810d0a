//! The Goodwill ledger: domain types, transaction and block validity, the state transition, and
//! a crash-safe store.
//!
//! - [`Transaction`], [`Block`], [`Address`], [`Amount`], [`Hash`] are the domain types;
//!   [`codec`] turns wire messages into them and refuses anything malformed.
//! - [`execute`] decides validity and computes `apply(state, block) -> (state', receipts)` as a
//!   pure function over a state reader.
//! - [`state`] commits to all accounts with a Jellyfish Merkle tree, so one account can be
//!   proven against a header's state root.
//! - [`store`] keeps the chain in RocksDB ([`RocksStore`]) or memory ([`MemoryStore`]); each
//!   block is one atomic write.
//! - [`Chain`] ties them together: open a store with a [`ChainSpec`], import blocks.
//!
//! ```
//! use goodwill_ledger::{Amount, Chain, ChainSpec, Keypair, MemoryStore, Payload, TransactionBody};
//!
//! let spec = ChainSpec::dev(0);
//! let mut chain = Chain::open(MemoryStore::new(), spec.clone()).unwrap();
//! let (dev, dev2) = (Keypair::insecure_dev("dev"), Keypair::insecure_dev("dev2"));
//! let before = chain.account(&dev2.address()).unwrap().balance;
//!
//! let tx = TransactionBody {
//!     chain_id: spec.chain_id.clone(),
//!     sender: dev.address(),
//!     nonce: 0,
//!     fee: spec.params.min_fee,
//!     payload: Payload::Transfer { to: dev2.address(), amount: Amount(5) },
//! }
//! .sign(&dev, &chain.genesis_hash());
//!
//! // The dev key is also the dev chain's only forger, so it wins slot 1 at rank 0.
//! let mut builder = chain.builder(&dev, 1, spec.slot_start_ms(1).unwrap()).unwrap();
//! builder.push(tx).unwrap();
//! let block = builder.seal(&dev).unwrap().block;
//! chain.import(block).unwrap();
//! assert_eq!(chain.account(&dev2.address()).unwrap().balance, Amount(before.0 + 5));
//! ```

// Without `node`, the codecs and state helpers the chain writes with are left unused: the
// light peer's build only reads.
#![cfg_attr(not(feature = "node"), allow(dead_code))]

mod address;
mod amount;
mod block;
#[cfg(feature = "node")]
pub mod chain;
pub mod codec;
pub mod contract;
pub mod execute;
pub mod finality;
mod genesis;
mod hash;
mod keys;
pub mod light;
pub mod lottery;
pub mod proof;
#[cfg(feature = "node")]
mod side_pool;
pub mod signature;
pub mod snapshot;
pub mod spec;
pub mod state;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod tx;

pub use address::{Address, ParseAddressError};
pub use amount::{Amount, COIN};
pub use block::{Block, Header, ReceivedBlock, SealedHeader};
#[cfg(feature = "node")]
pub use chain::{AccountProof, Chain, ChainError, Imported, StatePruning};
pub use codec::DecodeError;
#[cfg(feature = "node")]
pub use execute::BlockBuilder;
pub use execute::{AppliedBlock, ApplyError, BlockError, ContractReceipt, Receipt, TxError};
pub use genesis::{genesis, genesis_rosters};
pub use hash::{
    BLOCK_DOMAIN, Hash, ParseHashError, RECEIPT_LEAF_DOMAIN, TX_DOMAIN, TX_LEAF_DOMAIN, list_path,
    transaction_leaf, transactions_root, verify_list_path,
};
pub use keys::{KeyError, Keypair};
#[cfg(feature = "node")]
pub use side_pool::{MAX_SIDE_BLOCKS, MAX_SIDE_BYTES};
pub use spec::{
    ChainParams, ChainSpec, GenesisAssociation, GenesisBalance, GenesisForger, PoolParams, SpecError,
};
pub use state::Account;
#[cfg(feature = "node")]
pub use store::RocksStore;
pub use store::{HistoryEntry, MemoryStore, Store, StoreError, TxLocation};
pub use tx::{Payload, Transaction, TransactionBody};
