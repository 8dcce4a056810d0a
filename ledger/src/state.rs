//! Account state and its commitment, a Jellyfish Merkle tree versioned by block height.
//!
//! Every account is a leaf keyed by the tagged hash of its address; the value is the
//! `AccountState` protobuf, which names the address, so a proof of one leaf tells a light peer
//! whose balance it is. Versions are block heights: the tree at height `h` is the state after
//! block `h`, and older versions stay readable.

use std::collections::BTreeMap;

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue};
use serde::Serialize;

use crate::codec::{decode_account, encode_account};
use crate::hash::{ACCOUNT_KEY_DOMAIN, StateHasher};
use crate::store::StoreError;
use crate::{Address, Amount, Hash};

/// An account's balance and nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Account {
    /// Spendable coins.
    pub balance: Amount,
    /// Number of transactions the account has had committed; the next must carry this nonce.
    pub nonce: u64,
}

/// The state tree's key for `address`.
pub fn account_key(address: &Address) -> KeyHash {
    KeyHash(Hash::tagged(ACCOUNT_KEY_DOMAIN, address.as_bytes()).0)
}

/// The account at `version` (a block height), or the empty account if it was never touched.
pub fn read_account<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    address: &Address,
) -> Result<Account, StoreError> {
    let value = reader
        .get_value_option(version, account_key(address))
        .map_err(|e| StoreError::Tree(e.to_string()))?;
    match value {
        None => Ok(Account::default()),
        Some(bytes) => {
            let (stored, account) = decode_account(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if stored != *address {
                return Err(StoreError::Corrupt(format!("state for {address} names {stored}")));
            }
            Ok(account)
        }
    }
}

/// The state written by one block: the accounts it changed and the tree nodes that commit to them.
#[derive(Debug, Clone)]
pub struct StateUpdate {
    /// State root after the block.
    pub root: Hash,
    /// The accounts the block changed, with their new values.
    pub accounts: BTreeMap<Address, Account>,
    /// New tree nodes and values, for the store to write in the block's batch.
    pub(crate) tree: TreeUpdateBatch,
}

/// Computes the tree at `version` from the tree at `version - 1` (none for genesis) and the
/// changed accounts. Pure: reads through `reader`, writes nothing.
pub fn update_state<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    accounts: BTreeMap<Address, Account>,
) -> Result<StateUpdate, StoreError> {
    let values: Vec<(KeyHash, Option<Vec<u8>>)> = accounts
        .iter()
        .map(|(address, account)| (account_key(address), Some(encode_account(address, account))))
        .collect();
    let reader = Reader(reader);
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
    let (root, tree) = tree.put_value_set(values, version).map_err(|e| StoreError::Tree(e.to_string()))?;
    Ok(StateUpdate { root: Hash(root.0), accounts, tree })
}

/// The state root at `version`.
pub fn state_root<R: TreeReader + ?Sized>(reader: &R, version: u64) -> Result<Hash, StoreError> {
    let reader = Reader(reader);
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
    tree.get_root_hash(version).map(|root| Hash(root.0)).map_err(|e| StoreError::Tree(e.to_string()))
}

/// Lets jmt (which wants a sized reader) read through a `?Sized` one.
struct Reader<'a, R: ?Sized>(&'a R);

impl<R: TreeReader + ?Sized> TreeReader for Reader<'_, R> {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.0.get_node_option(key)
    }

    fn get_value_option(&self, max_version: u64, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        self.0.get_value_option(max_version, key)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.0.get_rightmost_leaf()
    }
}

/// A reader of the empty tree, from which genesis is built.
pub(crate) struct EmptyTree;

impl TreeReader for EmptyTree {
    fn get_node_option(&self, _: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(None)
    }

    fn get_value_option(&self, _: u64, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(None)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}
