//! The RocksDB store.
//!
//! One column family per kind of record ([`Column`]). A block, its body, receipts, transaction
//! index entries, state-tree nodes and values, the canonical index entry and the new head are one
//! `WriteBatch`, written with `sync`: after a crash at any instant the database holds the old
//! head or the new one with all of its state, never a mix, and a commit that returned is durable.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use goodwill_proto::v1 as wire;
use hashlink::LruCache;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue};
use prost::Message;
use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

use super::{
    Commit, HistoryEntry, MAX_HISTORY_PAGE, Store, StoreError, TxLocation, check_branch, check_extends,
    history_accounts,
};
use crate::block::{body_from_wire, body_to_wire};
use crate::execute::{AppliedBlock, Receipt};
use crate::{Address, Hash, SealedHeader, Transaction};

mod restore;

pub use restore::StateRestore;

/// Version of the on-disk layout; bumped on any incompatible change. A database of an older
/// version from [`OLDEST_MIGRATED`] on is migrated when opened ([`migrate`]); an older or a
/// newer one is refused, unchanged.
const SCHEMA_VERSION: u32 = 5;
/// The oldest layout this build migrates.
const OLDEST_MIGRATED: u32 = 4;

/// The column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    /// Block hash -> `SignedBlockHeader`.
    Headers,
    /// Block hash -> `BlockBody`.
    Bodies,
    /// Block hash -> `BlockReceipts`.
    Receipts,
    /// Transaction id -> block hash (32 bytes) and index (u32, big-endian).
    TxIndex,
    /// Address (32 bytes), height (u64, big-endian) and index (u32, big-endian) -> transaction
    /// id and block hash: each canonical transaction under every account it may change, in
    /// chain order per account.
    History,
    /// Height (u64, big-endian) -> canonical block hash.
    Canonical,
    /// State-tree node key (borsh) -> node (borsh).
    StateNodes,
    /// Account key hash (32 bytes) and version (u64, big-endian) -> 0x01 and the
    /// `AccountState`, or 0x00 for a deleted value. Big-endian versions sort in order, so the
    /// value at or before a version is one `seek_for_prev`.
    StateValues,
    /// Height (u64, big-endian) -> the state keys (32 bytes each) its canonical block wrote,
    /// so that a reorganisation can remove them, and pruning the values they replaced.
    Undo,
    /// Height (u64, big-endian) and a state-tree node key (borsh) -> nothing: the node, written
    /// by an earlier block, is no longer part of the tree from that height on, so pruning the
    /// states below that height removes it.
    StaleNodes,
    /// Named records: the head, its rank sum, the chain spec, the schema version.
    Meta,
}

impl Column {
    const ALL: [Column; 11] = [
        Column::Headers,
        Column::Bodies,
        Column::Receipts,
        Column::TxIndex,
        Column::History,
        Column::Canonical,
        Column::StateNodes,
        Column::StateValues,
        Column::Undo,
        Column::StaleNodes,
        Column::Meta,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Headers => "headers",
            Column::Bodies => "bodies",
            Column::Receipts => "receipts",
            Column::TxIndex => "tx_index",
            Column::History => "history",
            Column::Canonical => "canonical",
            Column::StateNodes => "state_nodes",
            Column::StateValues => "state_values",
            Column::Undo => "undo",
            Column::StaleNodes => "stale_nodes",
            Column::Meta => "meta",
        }
    }
}

const META_HEAD: &[u8] = b"head";
const META_CHAIN_SPEC: &[u8] = b"chain_spec";
const META_SCHEMA: &[u8] = b"schema_version";
const META_RANK_SUM: &[u8] = b"rank_sum";
const META_FINALIZED: &[u8] = b"finalized";
/// Followed by the final block's height (u64, big-endian) -> its `FinalityProof`.
const META_FINALITY_PROOF: &[u8] = b"finality_proof/";

fn finality_proof_key(height: u64) -> Vec<u8> {
    [META_FINALITY_PROOF, &height.to_be_bytes()].concat()
}

/// Followed by the final block's height (u64, big-endian) -> its `FinalityStep`.
const META_FINALITY_STEP: &[u8] = b"finality_step/";
/// Present (empty) while proofs kept for good may lack their finality steps: set by the
/// migration from schema 4, cleared by the chain once it stored them ([`Store::steps_pending`]).
const META_STEPS_PENDING: &[u8] = b"steps_pending";
/// The lowest state version held (u64, big-endian); absent until a state is pruned.
const META_PRUNED_BELOW: &[u8] = b"pruned_below";
/// The lowest block held after genesis (u64, big-endian): that of the final block whose state a
/// state-synced database started from; absent in a database that holds every block.
const META_BASE: &[u8] = b"base";

/// The `finalized` record of `checkpoint`: round, height, hash.
fn finalized_record(checkpoint: &crate::finality::Checkpoint) -> Vec<u8> {
    let mut value = Vec::with_capacity(48);
    value.extend_from_slice(&checkpoint.round.to_be_bytes());
    value.extend_from_slice(&checkpoint.block.height.to_be_bytes());
    value.extend_from_slice(checkpoint.block.hash.as_bytes());
    value
}

fn finality_step_key(height: u64) -> Vec<u8> {
    [META_FINALITY_STEP, &height.to_be_bytes()].concat()
}

/// State values kept in memory (accounts and other leaves: about 100 bytes each).
const HEAD_VALUES: usize = 65_536;

/// A store in a RocksDB database.
pub struct RocksStore {
    db: Arc<DB>,
    /// Cached head, kept equal to `Meta/head` by `commit`, the only writer.
    head: Option<Hash>,
    /// Recently read or written state values as of the head.
    head_values: Mutex<HeadValues>,
    /// The lowest state version held, kept equal to `Meta/pruned_below` by `prune_state`;
    /// shared with the detached readers.
    pruned_below: Arc<AtomicU64>,
    /// `Meta/base`, or 0.
    base: u64,
}

/// The newest value of recently used state keys, as of version `tip`, the head's height (the
/// newest version the store holds values for): a read at `tip` or above (pool admission,
/// forging and importing on the head: several reads per transaction) is answered without
/// RocksDB. `commit` records what it writes; `reorganize` forgets everything.
struct HeadValues {
    tip: Option<u64>,
    values: LruCache<KeyHash, Option<OwnedValue>>,
}

impl HeadValues {
    fn get(&mut self, max_version: u64, key: &KeyHash) -> Option<Option<OwnedValue>> {
        match self.tip {
            Some(tip) if max_version >= tip => self.values.get(key).cloned(),
            _ => None,
        }
    }

    fn remember(&mut self, max_version: u64, key: KeyHash, value: &Option<OwnedValue>) {
        if self.tip.is_some_and(|tip| max_version >= tip) {
            self.values.insert(key, value.clone());
        }
    }
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).field("head", &self.head).finish()
    }
}

/// Brings a database of schema `from` up to [`SCHEMA_VERSION`], one version at a time. Each
/// step records its new version in the same write as its last change, and can run again if the
/// node stops before that write.
fn migrate(db: &mut DB, options: &Options, from: u32) -> Result<(), StoreError> {
    for version in from..SCHEMA_VERSION {
        match version {
            // 4 to 5: the stale-node index and the stored finality steps. The heights committed
            // before have no index, so pruning never removes the tree nodes they made stale (it
            // removes the values later heights replaced, from the undo records schema 4 kept);
            // the steps of the proofs kept for good are built by the chain when it opens.
            4 => {
                if db.cf_handle(Column::StaleNodes.name()).is_none() {
                    db.create_cf(Column::StaleNodes.name(), options).map_err(db_error)?;
                }
                let meta = db
                    .cf_handle(Column::Meta.name())
                    .ok_or_else(|| corrupt("column family meta is missing"))?;
                let mut batch = WriteBatch::default();
                batch.put_cf(meta, META_STEPS_PENDING, []);
                batch.put_cf(meta, META_SCHEMA, 5u32.to_be_bytes());
                let mut sync = WriteOptions::default();
                sync.set_sync(true);
                db.write_opt(batch, &sync).map_err(db_error)?;
            }
            _ => {
                return Err(StoreError::Schema {
                    found: version,
                    oldest: OLDEST_MIGRATED,
                    expected: SCHEMA_VERSION,
                });
            }
        }
        tracing::info!(from = version, to = version + 1, "migrated the database's schema");
    }
    Ok(())
}

fn db_error(e: rocksdb::Error) -> StoreError {
    StoreError::Database(e.into_string())
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

impl RocksStore {
    /// Opens the database in `path`, creating it if needed. RocksDB replays its write-ahead log
    /// first, so a store that crashed mid-write opens at its last whole commit.
    pub fn open(path: &Path) -> Result<RocksStore, StoreError> {
        RocksStore::open_with(path, true)
    }

    /// Opens an existing database; fails, writing nothing, rather than create one.
    pub fn open_existing(path: &Path) -> Result<RocksStore, StoreError> {
        // RocksDB creates the folder for its log even when told not to create a database, so
        // look for the database's CURRENT file first.
        if !path.join("CURRENT").is_file() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        RocksStore::open_with(path, false)
    }

    fn open_with(path: &Path, create: bool) -> Result<RocksStore, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(create);
        options.create_missing_column_families(create);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Bounded memory on small boards: a modest write buffer per column family.
        options.set_write_buffer_size(16 * 1024 * 1024);
        options.set_max_open_files(256);
        // Compactions run in the background at the lowest CPU and I/O priority: every node of a
        // chain holds the same data and compacts at about the same moment, and a compaction
        // that takes a core from block import for half a second makes the next block late
        // everywhere (measured: a fork on a loaded 4-node cluster at each L0 compaction).
        // Flushes keep their priority, so writes never wait for them.
        let mut env = rocksdb::Env::new().map_err(db_error)?;
        env.lower_thread_pool_cpu_priority();
        env.lower_thread_pool_io_priority();
        options.set_env(&env);
        // An existing database opens with the column families it has, unknown ones included, so
        // that its schema version decides what happens to it (a migration, or a refusal that
        // changes nothing) rather than RocksDB's complaint about a column family.
        let names: Vec<String> = match DB::list_cf(&options, path) {
            Ok(names) => names,
            Err(_) => Column::ALL.iter().map(|c| c.name().to_owned()).collect(),
        };
        let columns = names.iter().map(|name| ColumnFamilyDescriptor::new(name, options.clone()));
        let mut db = DB::open_cf_descriptors(&options, path, columns).map_err(db_error)?;
        let meta =
            db.cf_handle(Column::Meta.name()).ok_or_else(|| corrupt("column family meta is missing"))?;
        match db.get_cf(meta, META_SCHEMA).map_err(db_error)? {
            None => db.put_cf(meta, META_SCHEMA, SCHEMA_VERSION.to_be_bytes()).map_err(db_error)?,
            Some(bytes) => {
                let found =
                    u32::from_be_bytes(bytes.as_slice().try_into().map_err(|_| corrupt("schema version"))?);
                match found {
                    SCHEMA_VERSION => {}
                    OLDEST_MIGRATED..SCHEMA_VERSION => migrate(&mut db, &options, found)?,
                    _ => {
                        return Err(StoreError::Schema {
                            found,
                            oldest: OLDEST_MIGRATED,
                            expected: SCHEMA_VERSION,
                        });
                    }
                }
            }
        }
        if let Some(missing) = Column::ALL.iter().find(|c| db.cf_handle(c.name()).is_none()) {
            return Err(corrupt(format!("column family {} is missing", missing.name())));
        }
        let head_values = Mutex::new(HeadValues { tip: None, values: LruCache::new(HEAD_VALUES) });
        let mut store =
            RocksStore { db: Arc::new(db), head: None, head_values, pruned_below: Arc::default(), base: 0 };
        store.head = match store.get(Column::Meta, META_HEAD)? {
            None => None,
            Some(bytes) => Some(Hash::from_slice(&bytes).ok_or_else(|| corrupt("head record"))?),
        };
        let height_record = |key: &[u8], what: &str| -> Result<u64, StoreError> {
            match store.get(Column::Meta, key)? {
                None => Ok(0),
                Some(bytes) => {
                    Ok(u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| corrupt(what))?))
                }
            }
        };
        let (pruned_below, base) = (
            height_record(META_PRUNED_BELOW, "pruned state record")?,
            height_record(META_BASE, "base record")?,
        );
        store.pruned_below.store(pruned_below, Ordering::Release);
        store.base = base;
        let tip = store.head_header()?.map(|head| head.header().height);
        store.head_values.get_mut().map_err(|_| corrupt("cache lock"))?.tip = tip;
        Ok(store)
    }

    fn cf(&self, column: Column) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(column.name())
            .ok_or_else(|| corrupt(format!("column family {} is missing", column.name())))
    }

    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(column)?, key).map_err(db_error)
    }
}

/// Reads the state tree from the database itself, on any thread, while the store goes on
/// committing and pruning ([`Store::detached_reader`]).
struct DetachedReader {
    db: Arc<DB>,
    pruned_below: Arc<AtomicU64>,
}

impl TreeReader for DetachedReader {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        read_node_in(&self.db, key)
    }

    fn get_value_option(&self, max_version: u64, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        held(&self.pruned_below, max_version)?;
        Ok(read_value_in(&self.db, max_version, key)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("tree restoration is not supported")
    }
}

impl super::DetachedState for DetachedReader {
    fn pruned_below(&self) -> u64 {
        self.pruned_below.load(Ordering::Acquire)
    }
}

fn node_key_bytes(key: &NodeKey) -> Result<Vec<u8>, StoreError> {
    borsh::to_vec(key).map_err(|e| StoreError::Tree(e.to_string()))
}

fn history_key(address: &Address, height: u64, index: u32) -> [u8; 44] {
    let mut out = [0u8; 44];
    out[..32].copy_from_slice(address.as_bytes());
    out[32..40].copy_from_slice(&height.to_be_bytes());
    out[40..].copy_from_slice(&index.to_be_bytes());
    out
}

fn value_key(key: &KeyHash, version: u64) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&key.0);
    out[32..].copy_from_slice(&version.to_be_bytes());
    out
}

impl TreeReader for RocksStore {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        read_node_in(&self.db, key)
    }

    fn get_value_option(&self, max_version: u64, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        held(&self.pruned_below, max_version)?;
        let mut cache = self.head_values.lock().map_err(|_| corrupt("cache lock"))?;
        if let Some(value) = cache.get(max_version, &key) {
            return Ok(value);
        }
        let value = self.read_value(max_version, key)?;
        cache.remember(max_version, key, &value);
        Ok(value)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("tree restoration is not supported")
    }
}

/// How many state entries a store holds ([`RocksStore::state_entries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateEntries {
    /// Tree nodes.
    pub nodes: u64,
    /// Values, one per key and version that wrote it.
    pub values: u64,
}

impl RocksStore {
    /// Counts the state tree's nodes and values by reading them all: for tests and benchmarks.
    pub fn state_entries(&self) -> Result<StateEntries, StoreError> {
        let count = |column| -> Result<u64, StoreError> {
            let mut iter = self.db.raw_iterator_cf(self.cf(column)?);
            iter.seek_to_first();
            let mut count = 0;
            while iter.valid() {
                count += 1;
                iter.next();
            }
            iter.status().map_err(db_error)?;
            Ok(count)
        };
        Ok(StateEntries { nodes: count(Column::StateNodes)?, values: count(Column::StateValues)? })
    }

    /// Compacts every column fully, so that what was deleted leaves the disk: for benchmarks
    /// (RocksDB compacts on its own as data arrives).
    pub fn compact(&self) -> Result<(), StoreError> {
        for column in Column::ALL {
            self.db.compact_range_cf(self.cf(column)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// The value of `key` at `max_version`, from RocksDB.
    fn read_value(&self, max_version: u64, key: KeyHash) -> Result<Option<OwnedValue>, StoreError> {
        read_value_in(&self.db, max_version, key)
    }
}

/// Refuses to read a state below the lowest held: the versions a pruned value was replaced in
/// are gone too, so an older value would answer.
fn held(pruned_below: &AtomicU64, version: u64) -> Result<(), StoreError> {
    let lowest = pruned_below.load(Ordering::Acquire);
    if version < lowest {
        return Err(StoreError::Pruned { version, lowest });
    }
    Ok(())
}

/// The tree node `key` in `db`.
fn read_node_in(db: &DB, key: &NodeKey) -> anyhow::Result<Option<Node>> {
    let column = db.cf_handle(Column::StateNodes.name()).ok_or_else(|| corrupt("no state nodes column"))?;
    match db.get_cf(column, node_key_bytes(key)?).map_err(db_error)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(borsh::from_slice(&bytes)?)),
    }
}

/// The value of `key` at `max_version` in `db`.
fn read_value_in(db: &DB, max_version: u64, key: KeyHash) -> Result<Option<OwnedValue>, StoreError> {
    let column = db.cf_handle(Column::StateValues.name()).ok_or_else(|| corrupt("no state values column"))?;
    let mut iter = db.raw_iterator_cf(column);
    iter.seek_for_prev(value_key(&key, max_version));
    if !iter.valid() {
        iter.status().map_err(db_error)?;
        return Ok(None);
    }
    match (iter.key(), iter.value()) {
        (Some(found), Some(value)) if found.len() == 40 && found[..32] == key.0 => {
            match value.split_first() {
                Some((1, account)) => Ok(Some(account.to_vec())),
                Some((0, [])) => Ok(None),
                _ => Err(corrupt("state value record")),
            }
        }
        _ => Ok(None),
    }
}

impl Store for RocksStore {
    fn head(&self) -> Result<Option<Hash>, StoreError> {
        Ok(self.head)
    }

    fn header(&self, hash: &Hash) -> Result<Option<SealedHeader>, StoreError> {
        let Some(bytes) = self.get(Column::Headers, hash.as_bytes())? else { return Ok(None) };
        let signed = wire::SignedBlockHeader::decode(bytes.as_slice()).map_err(corrupt)?;
        SealedHeader::from_wire(signed).map(Some).map_err(corrupt)
    }

    fn transactions(&self, hash: &Hash) -> Result<Option<Vec<Transaction>>, StoreError> {
        let Some(bytes) = self.get(Column::Bodies, hash.as_bytes())? else { return Ok(None) };
        let body = wire::BlockBody::decode(Bytes::from(bytes)).map_err(corrupt)?;
        body_from_wire(body).map(Some).map_err(corrupt)
    }

    fn receipts(&self, hash: &Hash) -> Result<Option<Vec<Receipt>>, StoreError> {
        let Some(bytes) = self.get(Column::Receipts, hash.as_bytes())? else { return Ok(None) };
        let receipts = wire::BlockReceipts::decode(bytes.as_slice()).map_err(corrupt)?;
        receipts
            .receipts
            .into_iter()
            .map(Receipt::from_wire)
            .collect::<Result<_, _>>()
            .map(Some)
            .map_err(corrupt)
    }

    fn canonical_hash(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        let Some(bytes) = self.get(Column::Canonical, &height.to_be_bytes())? else { return Ok(None) };
        Hash::from_slice(&bytes).map(Some).ok_or_else(|| corrupt("canonical index record"))
    }

    fn transaction_location(&self, id: &Hash) -> Result<Option<TxLocation>, StoreError> {
        let Some(bytes) = self.get(Column::TxIndex, id.as_bytes())? else { return Ok(None) };
        let (hash, index) = bytes.split_at_checked(32).ok_or_else(|| corrupt("transaction index record"))?;
        let block_hash = Hash::from_slice(hash).ok_or_else(|| corrupt("transaction index record"))?;
        let index = u32::from_be_bytes(index.try_into().map_err(|_| corrupt("transaction index record"))?);
        let header = self
            .header(&block_hash)?
            .ok_or_else(|| corrupt(format!("indexed block {block_hash} is missing")))?;
        Ok(Some(TxLocation { block_hash, height: header.header().height, index }))
    }

    fn history(
        &self,
        address: &Address,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let limit = limit.min(MAX_HISTORY_PAGE);
        let mut found = Vec::with_capacity(limit.min(64));
        let mut iter = self.db.raw_iterator_cf(self.cf(Column::History)?);
        match before {
            // Positions are exclusive: step back from the first key at or after `before`.
            Some((height, index)) => {
                iter.seek(history_key(address, height, index));
                if iter.valid() {
                    iter.prev();
                } else {
                    iter.status().map_err(db_error)?;
                    iter.seek_to_last();
                }
            }
            None => iter.seek_for_prev(history_key(address, u64::MAX, u32::MAX)),
        }
        while found.len() < limit && iter.valid() {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
            if key.len() != 44 || key[..32] != *address.as_bytes() {
                break;
            }
            let record = || corrupt("history record");
            let height = u64::from_be_bytes(key[32..40].try_into().map_err(|_| record())?);
            let index = u32::from_be_bytes(key[40..].try_into().map_err(|_| record())?);
            let (id, block_hash) = value.split_at_checked(32).ok_or_else(record)?;
            found.push(HistoryEntry {
                id: Hash::from_slice(id).ok_or_else(record)?,
                location: TxLocation {
                    block_hash: Hash::from_slice(block_hash).ok_or_else(record)?,
                    height,
                    index,
                },
            });
            iter.prev();
        }
        iter.status().map_err(db_error)?;
        Ok(found)
    }

    fn chain_spec(&self) -> Result<Option<String>, StoreError> {
        let Some(bytes) = self.get(Column::Meta, META_CHAIN_SPEC)? else { return Ok(None) };
        String::from_utf8(bytes).map(Some).map_err(|_| corrupt("chain spec record"))
    }

    fn finalized(&self) -> Result<Option<crate::finality::Checkpoint>, StoreError> {
        let Some(bytes) = self.get(Column::Meta, META_FINALIZED)? else { return Ok(None) };
        let (round, rest) = bytes.split_first_chunk::<8>().ok_or_else(|| corrupt("finalized record"))?;
        let (height, hash) = rest.split_first_chunk::<8>().ok_or_else(|| corrupt("finalized record"))?;
        let hash = Hash::from_slice(hash).ok_or_else(|| corrupt("finalized record"))?;
        let block = crate::finality::BlockId { height: u64::from_be_bytes(*height), hash };
        Ok(Some(crate::finality::Checkpoint { round: u64::from_be_bytes(*round), block }))
    }

    fn set_finalized(
        &mut self,
        checkpoint: &crate::finality::Checkpoint,
        proof: Option<&crate::finality::FinalityProof>,
        replaces: Option<u64>,
    ) -> Result<(), StoreError> {
        let meta = self.cf(Column::Meta)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(meta, META_FINALIZED, finalized_record(checkpoint));
        if let Some(height) = replaces {
            batch.delete_cf(meta, finality_proof_key(height));
        }
        if let Some(proof) = proof {
            batch.put_cf(meta, finality_proof_key(checkpoint.block.height), proof.to_wire().encode_to_vec());
        }
        self.write(batch)
    }

    fn finality_proofs(
        &self,
        height: u64,
        limit: usize,
    ) -> Result<Vec<crate::finality::FinalityProof>, StoreError> {
        let mut proofs = Vec::new();
        let mut iter = self.db.raw_iterator_cf(self.cf(Column::Meta)?);
        iter.seek(finality_proof_key(height));
        while proofs.len() < limit {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
            if !key.starts_with(META_FINALITY_PROOF) {
                break;
            }
            let wire = wire::FinalityProof::decode(value).map_err(|_| corrupt("finality proof"))?;
            proofs.push(
                crate::finality::FinalityProof::from_wire(&wire).map_err(|_| corrupt("finality proof"))?,
            );
            iter.next();
        }
        iter.status().map_err(db_error)?;
        Ok(proofs)
    }

    fn latest_finality_proof(&self) -> Result<Option<crate::finality::FinalityProof>, StoreError> {
        let mut iter = self.db.raw_iterator_cf(self.cf(Column::Meta)?);
        iter.seek_for_prev(finality_proof_key(u64::MAX));
        match (iter.key(), iter.value()) {
            (Some(key), Some(value)) if key.starts_with(META_FINALITY_PROOF) => {
                let wire = wire::FinalityProof::decode(value).map_err(|_| corrupt("finality proof"))?;
                crate::finality::FinalityProof::from_wire(&wire)
                    .map(Some)
                    .map_err(|_| corrupt("finality proof"))
            }
            _ => iter.status().map(|()| None).map_err(db_error),
        }
    }

    fn finality_step(&self, height: u64) -> Result<Option<crate::light::FinalityStep>, StoreError> {
        let Some(bytes) = self.get(Column::Meta, &finality_step_key(height))? else { return Ok(None) };
        let wire = wire::FinalityStep::decode(bytes.as_slice()).map_err(|_| corrupt("finality step"))?;
        crate::light::FinalityStep::from_wire(&wire).map(Some).map_err(|_| corrupt("finality step"))
    }

    fn steps_pending(&self) -> Result<bool, StoreError> {
        Ok(self.get(Column::Meta, META_STEPS_PENDING)?.is_some())
    }

    fn clear_steps_pending(&mut self) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(Column::Meta)?, META_STEPS_PENDING);
        self.write(batch)
    }

    fn put_finality_step(&mut self, step: &crate::light::FinalityStep) -> Result<(), StoreError> {
        let key = finality_step_key(step.proof.finalized.block.height);
        self.db.put_cf(self.cf(Column::Meta)?, key, step.to_wire().encode_to_vec()).map_err(db_error)
    }

    fn pruned_below(&self) -> u64 {
        self.pruned_below.load(Ordering::Acquire)
    }

    fn detached_reader(&self) -> Option<Arc<dyn super::DetachedState>> {
        Some(Arc::new(DetachedReader { db: self.db.clone(), pruned_below: self.pruned_below.clone() }))
    }

    fn base_height(&self) -> u64 {
        self.base
    }

    fn prune_state(&mut self, below: u64, deadline: std::time::Instant) -> Result<u64, StoreError> {
        let head = self.head_header()?.map_or(0, |head| head.header().height);
        let below = below.min(head);
        let lowest_held = self.pruned_below.load(Ordering::Acquire);
        if lowest_held >= below {
            return Ok(lowest_held);
        }
        let (nodes, values, stale, undo) = (
            self.cf(Column::StateNodes)?,
            self.cf(Column::StateValues)?,
            self.cf(Column::StaleNodes)?,
            self.cf(Column::Undo)?,
        );
        let mut batch = WriteBatch::default();
        let mut lowest = lowest_held;
        while lowest < below {
            // Making `version` the lowest state held: what only older versions used goes.
            let version = lowest + 1;
            let prefix = version.to_be_bytes();
            let mut index = self.db.raw_iterator_cf(stale);
            index.seek(prefix);
            while let Some(key) = index.key() {
                if !key.starts_with(&prefix) {
                    break;
                }
                batch.delete_cf(nodes, &key[8..]);
                batch.delete_cf(stale, key);
                index.next();
            }
            index.status().map_err(db_error)?;
            // Each value this height wrote replaces the key's previous one.
            let written = self.get(Column::Undo, &prefix)?.unwrap_or_default();
            let mut previous = self.db.raw_iterator_cf(values);
            for key in written.chunks_exact(32) {
                previous.seek_for_prev(value_key(
                    &KeyHash(key.try_into().map_err(|_| corrupt("undo record"))?),
                    lowest,
                ));
                match previous.key() {
                    Some(found) if found.len() == 40 && found[..32] == *key => batch.delete_cf(values, found),
                    _ => previous.status().map_err(db_error)?,
                }
            }
            // No reorganisation goes this deep any more.
            batch.delete_cf(undo, prefix);
            lowest = version;
            if std::time::Instant::now() >= deadline {
                break;
            }
        }
        batch.put_cf(self.cf(Column::Meta)?, META_PRUNED_BELOW, lowest.to_be_bytes());
        // A detached reader that finds the lowest state above the one it read knows its reads may
        // have missed what this removes: raised before the write.
        self.pruned_below.store(lowest, Ordering::Release);
        // Not synced: a crash loses a whole removal or none of it, and the next call redoes it.
        self.db.write(batch).map_err(db_error)?;
        Ok(lowest)
    }

    fn commit(&mut self, commit: Commit) -> Result<(), StoreError> {
        check_extends(self.head, &commit)?;
        let Commit { applied, chain_spec } = commit;
        let mut batch = WriteBatch::default();
        let rank_sum = self.rank_sum()? + u64::from(applied.block.header().rank);
        self.put_block(&mut batch, &applied)?;
        batch.put_cf(self.cf(Column::Meta)?, META_RANK_SUM, rank_sum.to_be_bytes());
        if let Some(spec) = chain_spec {
            batch.put_cf(self.cf(Column::Meta)?, META_CHAIN_SPEC, spec.as_bytes());
        }
        self.write(batch)?;
        self.head = Some(applied.block.hash());
        let cache = self.head_values.get_mut().map_err(|_| corrupt("cache lock"))?;
        cache.tip = Some(applied.block.header().height);
        for ((_, key), value) in applied.state.tree.node_batch.values() {
            cache.values.insert(*key, value.clone());
        }
        Ok(())
    }

    fn rank_sum(&self) -> Result<u64, StoreError> {
        match self.get(Column::Meta, META_RANK_SUM)? {
            None => Ok(0),
            Some(bytes) => {
                Ok(u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| corrupt("rank sum"))?))
            }
        }
    }

    fn reorganize(&mut self, ancestor: &SealedHeader, branch: Vec<AppliedBlock>) -> Result<(), StoreError> {
        check_branch(ancestor, &branch)?;
        let head = self.head_header()?.ok_or_else(|| corrupt("reorganising an empty store"))?;
        let base = ancestor.header().height;
        let mut batch = WriteBatch::default();
        let mut rank_sum = self.rank_sum()?;
        for height in (base + 1..=head.header().height).rev() {
            let hash = self
                .canonical_hash(height)?
                .ok_or_else(|| corrupt(format!("no canonical block at {height}")))?;
            let header = self.header(&hash)?.ok_or_else(|| corrupt(format!("block {hash} has no header")))?;
            rank_sum =
                rank_sum.checked_sub(u64::from(header.header().rank)).ok_or_else(|| corrupt("rank sum"))?;
            let undo = self.get(Column::Undo, &height.to_be_bytes())?.unwrap_or_default();
            for key in undo.chunks_exact(32) {
                let key = KeyHash(key.try_into().map_err(|_| corrupt("undo record"))?);
                batch.delete_cf(self.cf(Column::StateValues)?, value_key(&key, height));
            }
            for (index, tx) in self.transactions(&hash)?.unwrap_or_default().iter().enumerate() {
                batch.delete_cf(self.cf(Column::TxIndex)?, tx.id().as_bytes());
                for account in history_accounts(tx) {
                    batch.delete_cf(self.cf(Column::History)?, history_key(&account, height, index as u32));
                }
            }
            batch.delete_cf(self.cf(Column::Canonical)?, height.to_be_bytes());
            batch.delete_cf(self.cf(Column::Undo)?, height.to_be_bytes());
        }
        // What the replaced blocks made stale is still in use by the ancestor's state and the
        // branch's.
        batch.delete_range_cf(self.cf(Column::StaleNodes)?, &(base + 1).to_be_bytes()[..], &[0xff; 9][..]);
        let mut new_head = ancestor.hash();
        for applied in &branch {
            rank_sum += u64::from(applied.block.header().rank);
            self.put_block(&mut batch, applied)?;
            new_head = applied.block.hash();
        }
        batch.put_cf(self.cf(Column::Meta)?, META_HEAD, new_head.as_bytes());
        batch.put_cf(self.cf(Column::Meta)?, META_RANK_SUM, rank_sum.to_be_bytes());
        self.write(batch)?;
        self.head = Some(new_head);
        // Values of the reverted blocks are gone: start again from the new head.
        let cache = self.head_values.get_mut().map_err(|_| corrupt("cache lock"))?;
        cache.values.clear();
        cache.tip = Some(branch.last().map_or(base, |applied| applied.block.header().height));
        Ok(())
    }
}

impl RocksStore {
    /// Adds a block, everything it indexes and the state it writes to `batch`, and makes it the
    /// head in that batch.
    fn put_block(&self, batch: &mut WriteBatch, applied: &AppliedBlock) -> Result<(), StoreError> {
        let height = applied.block.header().height;
        self.put_canonical_block(batch, &applied.block, Some(&applied.receipts))?;
        let nodes = self.cf(Column::StateNodes)?;
        for (key, node) in applied.state.tree.node_batch.nodes() {
            let node = borsh::to_vec(node).map_err(|e| StoreError::Tree(e.to_string()))?;
            batch.put_cf(nodes, node_key_bytes(key)?, node);
        }
        let values = self.cf(Column::StateValues)?;
        let mut undo = Vec::with_capacity(applied.state.tree.node_batch.values().len() * 32);
        for ((version, key), value) in applied.state.tree.node_batch.values() {
            let record = match value {
                Some(account) => [&[1u8][..], account].concat(),
                None => vec![0u8],
            };
            batch.put_cf(values, value_key(key, *version), record);
            undo.extend_from_slice(&key.0);
        }
        batch.put_cf(self.cf(Column::Undo)?, height.to_be_bytes(), undo);
        let stale = self.cf(Column::StaleNodes)?;
        for index in &applied.state.tree.stale_node_index_batch {
            let key =
                [&index.stale_since_version.to_be_bytes()[..], &node_key_bytes(&index.node_key)?].concat();
            batch.put_cf(stale, key, []);
        }
        Ok(())
    }

    /// Adds a block (its receipts if known) and what it indexes to `batch` as the canonical block
    /// of its height, and makes it the head in that batch; not its state.
    fn put_canonical_block(
        &self,
        batch: &mut WriteBatch,
        block: &crate::Block,
        receipts: Option<&[Receipt]>,
    ) -> Result<(), StoreError> {
        let hash = block.hash();
        let height = block.header().height;
        batch.put_cf(self.cf(Column::Headers)?, hash.as_bytes(), block.header.to_wire().encode_to_vec());
        batch.put_cf(
            self.cf(Column::Bodies)?,
            hash.as_bytes(),
            body_to_wire(&block.transactions).encode_to_vec(),
        );
        if let Some(receipts) = receipts {
            let receipts = wire::BlockReceipts { receipts: receipts.iter().map(Receipt::to_wire).collect() };
            batch.put_cf(self.cf(Column::Receipts)?, hash.as_bytes(), receipts.encode_to_vec());
        }
        let tx_index = self.cf(Column::TxIndex)?;
        let history = self.cf(Column::History)?;
        for (index, tx) in block.transactions.iter().enumerate() {
            let id = tx.id();
            let mut location = hash.as_bytes().to_vec();
            location.extend_from_slice(&(index as u32).to_be_bytes());
            batch.put_cf(tx_index, id.as_bytes(), location);
            let entry = [id.as_bytes().as_slice(), hash.as_bytes().as_slice()].concat();
            for account in history_accounts(tx) {
                batch.put_cf(history, history_key(&account, height, index as u32), &entry);
            }
        }
        batch.put_cf(self.cf(Column::Canonical)?, height.to_be_bytes(), hash.as_bytes());
        batch.put_cf(self.cf(Column::Meta)?, META_HEAD, hash.as_bytes());
        Ok(())
    }

    /// Writes `batch` atomically and durably.
    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(db_error)
    }
}
