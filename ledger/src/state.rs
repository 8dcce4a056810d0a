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

/// The state written by one block: the tree nodes and values that commit to what it changed.
#[derive(Debug, Clone)]
pub struct StateUpdate {
    /// State root after the block.
    pub root: Hash,
    /// Number of state entries the block changed.
    pub changed: usize,
    /// New tree nodes and values, for the store to write in the block's batch.
    pub(crate) tree: TreeUpdateBatch,
}

impl StateUpdate {
    /// Bytes of the values the block writes (leaf contents, not tree nodes).
    pub fn value_bytes(&self) -> usize {
        self.tree.node_batch.values().values().map(|v| v.as_ref().map_or(0, Vec::len)).sum()
    }
}

/// Encoded account values, keyed for the state tree.
pub fn account_values(accounts: &BTreeMap<Address, Account>) -> BTreeMap<KeyHash, Vec<u8>> {
    accounts
        .iter()
        .map(|(address, account)| (account_key(address), encode_account(address, account)))
        .collect()
}

/// Computes the tree at `version` from the tree at `version - 1` (none for genesis) and the
/// changed entries. Pure: reads through `reader`, writes nothing.
pub fn update_state<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    entries: BTreeMap<KeyHash, Vec<u8>>,
) -> Result<StateUpdate, StoreError> {
    update_state_with(reader, version, entries.into_iter().map(|(k, v)| (k, Some(v))).collect())
}

/// [`update_state`] where an entry may also be deleted (`None`).
pub fn update_state_with<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    entries: BTreeMap<KeyHash, Option<Vec<u8>>>,
) -> Result<StateUpdate, StoreError> {
    let changed = entries.len();
    let reader = Reader(reader);
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
    let tree_error = |e: anyhow::Error| StoreError::Tree(e.to_string());
    // Without deletions, insert the sorted keys in one pass: every changed inner node is built
    // once, not once per key below it. The tree, and so its root, is the same either way.
    let (root, tree) = if !entries.is_empty() && entries.values().all(Option::is_some) {
        let values: Vec<(KeyHash, Vec<u8>)> =
            entries.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        let (roots, tree) = tree.batch_put_value_sets(vec![values], None, version).map_err(tree_error)?;
        (roots[0], tree)
    } else {
        tree.put_value_set(entries, version).map_err(tree_error)?
    };
    Ok(StateUpdate { root: Hash(root.0), changed, tree })
}

/// Domain tag of a forger record's key.
const FORGER_KEY_DOMAIN: &[u8] = b"goodwill/forger/v1";
/// Domain tag of an association record's key.
const ASSOCIATION_KEY_DOMAIN: &[u8] = b"goodwill/association/v1";
/// Domain tag of the consensus record's key.
const CONSENSUS_KEY_DOMAIN: &[u8] = b"goodwill/consensus/v2";
/// Domain tag of the registry's key.
const REGISTRY_KEY_DOMAIN: &[u8] = b"goodwill/registry/v1";
/// Domain tag of the roster commitments' key.
const ROSTERS_KEY_DOMAIN: &[u8] = b"goodwill/rosters/v1";
/// Domain tag of a contract record's key.
const CONTRACT_KEY_DOMAIN: &[u8] = b"goodwill/contract/v1";
/// Domain tag of a contract storage entry's key.
const CONTRACT_ENTRY_KEY_DOMAIN: &[u8] = b"goodwill/contract-entry/v1";

/// The state tree's key for a contract record.
pub fn contract_key(address: &Address) -> KeyHash {
    KeyHash(Hash::tagged(CONTRACT_KEY_DOMAIN, address.as_bytes()).0)
}

/// The state tree's key for a contract's storage entry `key`.
pub fn contract_entry_key(contract: &Address, key: &str) -> KeyHash {
    let mut data = Vec::with_capacity(32 + key.len());
    data.extend_from_slice(contract.as_bytes());
    data.extend_from_slice(key.as_bytes());
    KeyHash(Hash::tagged(CONTRACT_ENTRY_KEY_DOMAIN, &data).0)
}

/// Domain tag of the schedule queue's key.
const SCHEDULES_KEY_DOMAIN: &[u8] = b"goodwill/schedules/v1";

/// The state tree's key for the queue of scheduled payments.
pub fn schedules_key() -> KeyHash {
    KeyHash(Hash::tagged(SCHEDULES_KEY_DOMAIN, &[]).0)
}

/// A scheduled payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduledPayment {
    /// The id of the transaction that made it.
    pub id: Hash,
    /// Who pays.
    pub owner: Address,
    /// Who receives.
    pub to: Address,
    /// Each payment.
    pub amount: Amount,
    /// Slots between payments.
    pub every_slots: u64,
    /// Payments left, skipped ones counted.
    pub remaining: u32,
    /// The slot from which the next payment is due.
    pub next_slot: u64,
    /// Payments made.
    pub paid: u32,
    /// Payments skipped because the owner's balance could not cover them.
    pub skipped: u32,
}

/// Every active schedule at `version`, in the order payments run: by due slot, then id.
pub fn read_schedules<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
) -> Result<Vec<ScheduledPayment>, StoreError> {
    read_value(reader, version, schedules_key())?
        .map(|bytes| crate::codec::decode_schedules(&bytes).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// A deployed contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractRecord {
    /// The program.
    pub code: String,
    /// Who deployed it.
    pub creator: Address,
    /// The height of the block that deployed it.
    pub deployed_height: u64,
    /// How many storage entries it holds.
    pub storage_entries: u64,
}

/// A contract's record at `version`.
pub fn read_contract<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    address: &Address,
) -> Result<Option<ContractRecord>, StoreError> {
    read_value(reader, version, contract_key(address))?
        .map(|bytes| {
            crate::codec::decode_contract(address, &bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
}

/// A contract's storage entry (JSON) at `version`.
pub fn read_contract_entry<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    contract: &Address,
    key: &str,
) -> Result<Option<String>, StoreError> {
    read_value(reader, version, contract_entry_key(contract, key))?
        .map(|bytes| {
            crate::codec::decode_contract_entry(contract, key, &bytes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
}

/// The state tree's key for a forger record.
pub fn forger_key(address: &Address) -> KeyHash {
    KeyHash(Hash::tagged(FORGER_KEY_DOMAIN, address.as_bytes()).0)
}

/// The state tree's key for an association record.
pub fn association_key(address: &Address) -> KeyHash {
    KeyHash(Hash::tagged(ASSOCIATION_KEY_DOMAIN, address.as_bytes()).0)
}

/// The state tree's key for the consensus record.
pub fn consensus_key() -> KeyHash {
    KeyHash(Hash::tagged(CONSENSUS_KEY_DOMAIN, &[]).0)
}

/// The state tree's key for the registry of forgers and associations.
pub fn registry_key() -> KeyHash {
    KeyHash(Hash::tagged(REGISTRY_KEY_DOMAIN, &[]).0)
}

/// The state tree's key for the roster commitments.
pub fn rosters_key() -> KeyHash {
    KeyHash(Hash::tagged(ROSTERS_KEY_DOMAIN, &[]).0)
}

/// Forging weight over a span of epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ticket {
    /// Weight, equal to the price paid.
    pub weight: Amount,
    /// First active epoch.
    pub first_epoch: u64,
    /// Last active epoch, inclusive.
    pub last_epoch: u64,
    /// The first epoch in which the ticket no longer lets its forger sign, if its forger was
    /// reported for equivocation (the epoch after the report's).
    pub forfeited_from: Option<u64>,
}

impl Ticket {
    /// Whether the ticket lies on the roster of `epoch`: active then, and not forfeited before
    /// that epoch's roster was fixed (the end of epoch `epoch - 2`). A report made in `epoch - 1`
    /// leaves it on the roster; its forger's draws are void instead ([`Ticket::signs_in`]).
    pub fn is_active(&self, epoch: u64) -> bool {
        (self.first_epoch..=self.last_epoch).contains(&epoch)
            && self.forfeited_from.is_none_or(|f| f >= epoch)
    }

    /// Whether the ticket lets its forger sign in `epoch`: on the roster, and not forfeited.
    pub fn signs_in(&self, epoch: u64) -> bool {
        self.is_active(epoch) && self.forfeited_from.is_none_or(|f| f > epoch)
    }
}

/// A forger's consensus record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgerState {
    /// Hash of the next reveal the forger must publish.
    pub commitment: Hash,
    /// Blocks it has committed.
    pub blocks_forged: u64,
    /// Its tickets, past, active and future.
    pub tickets: Vec<Ticket>,
}

impl ForgerState {
    /// Its weight on the roster of `epoch` ([`Ticket::is_active`]): the same in every state from
    /// the end of epoch `epoch - 2` to the end of `epoch`.
    pub fn weight_in(&self, epoch: u64) -> Amount {
        Amount(self.tickets.iter().filter(|t| t.is_active(epoch)).map(|t| t.weight.0).sum())
    }

    /// Whether it may sign a block of `epoch`: some ticket on that epoch's roster is not
    /// forfeited ([`Ticket::signs_in`]).
    pub fn signs_in(&self, epoch: u64) -> bool {
        self.tickets.iter().any(|t| t.signs_in(epoch) && t.weight > Amount::ZERO)
    }
}

/// An association's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssociationState {
    /// Display name.
    pub name: String,
    /// Where its proof of identity is published.
    pub proof_url: String,
    /// BLAKE3 of that document.
    pub document_hash: Hash,
    /// Epoch of registration (0 for genesis associations).
    pub registered_epoch: u64,
    /// Forgers who voted for it, sorted.
    pub voters: Vec<Address>,
    /// Whether it may receive ticket money.
    pub eligible: bool,
    /// Ticket money received.
    pub received: Amount,
}

/// Chain-wide consensus values, rewritten by every block: a fixed size, whatever the number of
/// forgers and associations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsensusState {
    /// Running mix of every block's reveal.
    pub mix: Hash,
    /// The epoch `seed` belongs to.
    pub seed_epoch: u64,
    /// That epoch's lottery seed.
    pub seed: Hash,
}

/// Who has a forger or an association record: rewritten only by a block that adds or removes
/// one (a first ticket, a registration, an expiry), each of which costs its sender a fee.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Registry {
    /// Addresses with a forger record, sorted.
    pub forgers: Vec<Address>,
    /// Addresses with an association record, sorted.
    pub associations: Vec<Address>,
}

/// What the state commits to about the roster of one epoch: the root of a Merkle tree over its
/// forgers' weight intervals ([`crate::lottery::Roster::commitment`]). With it, a peer that
/// keeps no state checks a draw from one forger's interval and its path, whatever the number of
/// forgers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RosterCommitment {
    /// The epoch.
    pub epoch: u64,
    /// Its total weight.
    pub total_weight: u128,
    /// Its number of forgers (the tree's leaves).
    pub forgers: u64,
    /// The tree's root.
    pub root: Hash,
}

/// The roster commitments of the current and the next epoch, written by an epoch's first block
/// only (two fixed-size entries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rosters {
    /// By epoch, ascending.
    pub commitments: Vec<RosterCommitment>,
}

impl Rosters {
    /// The commitment of `epoch`, if the state holds it.
    pub fn get(&self, epoch: u64) -> Option<&RosterCommitment> {
        self.commitments.iter().find(|c| c.epoch == epoch)
    }
}

/// A raw value at `version`.
pub(crate) fn read_value<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    key: KeyHash,
) -> Result<Option<Vec<u8>>, StoreError> {
    reader.get_value_option(version, key).map_err(|e| StoreError::Tree(e.to_string()))
}

/// A forger's record at `version`.
pub fn read_forger<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    address: &Address,
) -> Result<Option<ForgerState>, StoreError> {
    read_value(reader, version, forger_key(address))?
        .map(|bytes| crate::codec::decode_forger(&bytes).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// An association's record at `version`.
pub fn read_association<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    address: &Address,
) -> Result<Option<AssociationState>, StoreError> {
    read_value(reader, version, association_key(address))?
        .map(|bytes| crate::codec::decode_association(&bytes).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// The consensus record at `version`.
pub fn read_consensus<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
) -> Result<ConsensusState, StoreError> {
    let bytes = read_value(reader, version, consensus_key())?
        .ok_or_else(|| StoreError::Corrupt(format!("no consensus record at height {version}")))?;
    crate::codec::decode_consensus(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The registry of forgers and associations at `version`.
pub fn read_registry<R: TreeReader + ?Sized>(reader: &R, version: u64) -> Result<Registry, StoreError> {
    let bytes = read_value(reader, version, registry_key())?
        .ok_or_else(|| StoreError::Corrupt(format!("no registry at height {version}")))?;
    crate::codec::decode_registry(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The roster commitments at `version`.
pub fn read_rosters<R: TreeReader + ?Sized>(reader: &R, version: u64) -> Result<Rosters, StoreError> {
    let bytes = read_value(reader, version, rosters_key())?
        .ok_or_else(|| StoreError::Corrupt(format!("no roster commitments at height {version}")))?;
    crate::codec::decode_rosters(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The lottery roster of `epoch` as the state at `version` records it.
pub fn read_roster<R: TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    epoch: u64,
) -> Result<crate::lottery::Roster, StoreError> {
    let registry = read_registry(reader, version)?;
    let mut tickets = Vec::with_capacity(registry.forgers.len());
    for address in &registry.forgers {
        if let Some(forger) = read_forger(reader, version, address)? {
            tickets.push((*address, forger.weight_in(epoch)));
        }
    }
    Ok(crate::lottery::Roster::new(tickets))
}

/// The state root at `version`.
pub fn state_root<R: TreeReader + ?Sized>(reader: &R, version: u64) -> Result<Hash, StoreError> {
    let reader = Reader(reader);
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
    tree.get_root_hash(version).map(|root| Hash(root.0)).map_err(|e| StoreError::Tree(e.to_string()))
}

/// The number of leaves (accounts and records) of the state at `version`.
pub fn leaf_count<R: TreeReader + ?Sized>(reader: &R, version: u64) -> Result<usize, StoreError> {
    let reader = Reader(reader);
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
    tree.get_leaf_count(version).map_err(|e| StoreError::Tree(e.to_string()))
}

/// Lets jmt (which wants a sized reader) read through a `?Sized` one.
pub(crate) struct Reader<'a, R: ?Sized>(&'a R);

/// `reader`, as jmt wants it.
pub(crate) fn sized<R: TreeReader + ?Sized>(reader: &R) -> Reader<'_, R> {
    Reader(reader)
}

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

/// What the blocks of a branch that forks from the canonical chain at `base_version` wrote to
/// the state, kept in memory until the branch becomes canonical or is dropped.
#[derive(Debug, Default)]
pub struct BranchOverlay {
    base_version: u64,
    nodes: std::collections::HashMap<NodeKey, Node>,
    values: BTreeMap<(KeyHash, u64), Option<OwnedValue>>,
}

/// What one tree node is counted as in [`BranchOverlay::add`]'s byte estimate: a key, and an
/// internal node's children (a full one holds sixteen hashes).
const NODE_ALLOWANCE: usize = 320;

impl BranchOverlay {
    /// Nothing written yet over the canonical state at `base_version`.
    pub fn new(base_version: u64) -> Self {
        BranchOverlay { base_version, ..BranchOverlay::default() }
    }

    /// Adds what one block of the branch wrote; returns about how many bytes that holds.
    pub fn add(&mut self, update: &StateUpdate) -> usize {
        let batch = &update.tree.node_batch;
        self.nodes.extend(batch.nodes().iter().map(|(k, v)| (k.clone(), v.clone())));
        self.values
            .extend(batch.values().iter().map(|((version, key), value)| ((*key, *version), value.clone())));
        batch.nodes().len() * NODE_ALLOWANCE + batch.values().len() * 48 + update.value_bytes()
    }

    /// The branch's state: what it wrote, over `base` as it was at the fork.
    pub fn reader<'a, R: TreeReader + ?Sized>(&'a self, base: &'a R) -> BranchReader<'a, R> {
        BranchReader { base, overlay: self }
    }
}

/// Reads the state of a branch that forks from the canonical chain at its overlay's base
/// version: entries the branch wrote come from the overlay, older ones from the store, and
/// anything the canonical chain wrote above the fork is invisible.
pub struct BranchReader<'a, R: TreeReader + ?Sized> {
    base: &'a R,
    overlay: &'a BranchOverlay,
}

impl<R: TreeReader + ?Sized> TreeReader for BranchReader<'_, R> {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if let Some(node) = self.overlay.nodes.get(key) {
            return Ok(Some(node.clone()));
        }
        if key.version() > self.overlay.base_version {
            return Ok(None);
        }
        self.base.get_node_option(key)
    }

    fn get_value_option(&self, max_version: u64, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        let base_version = self.overlay.base_version;
        if max_version > base_version {
            let range = (key, base_version + 1)..=(key, max_version);
            if let Some((_, value)) = self.overlay.values.range(range).next_back() {
                return Ok(value.clone());
            }
        }
        self.base.get_value_option(max_version.min(base_version), key)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("tree restoration is not supported")
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::testkit::{self, ChainGenerator};

    /// The one-pass insert gives the same root as inserting key by key, over a tree with
    /// history, for new and changed leaves alike.
    #[test]
    fn batched_and_one_by_one_updates_agree() {
        let mut generator = ChainGenerator::new(64, 7);
        for _ in 0..5 {
            generator.next_block(20);
        }
        let store = generator.chain.store();
        let version = generator.chain.head().header().height + 1;
        for (changed, fresh) in [(1usize, 0usize), (10, 3), (64, 200)] {
            let mut accounts: BTreeMap<Address, Account> = (0..changed)
                .map(|i| (testkit::account(i).address(), Account { balance: Amount(7 * i as u64), nonce: 3 }))
                .collect();
            accounts.extend((0..fresh).map(|i| {
                (crate::Keypair::insecure_dev(&format!("fresh-{i}")).address(), Account::default())
            }));
            let values = account_values(&accounts);
            let batched = update_state(store, version, values.clone()).unwrap();
            let reader = Reader(store);
            let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
            let one_by_one: Vec<(KeyHash, Option<Vec<u8>>)> =
                values.into_iter().map(|(k, v)| (k, Some(v))).collect();
            let (root, _) = tree.put_value_set(one_by_one, version).unwrap();
            assert_eq!(batched.root, Hash(root.0), "{changed} changed, {fresh} new");
        }
    }
}
