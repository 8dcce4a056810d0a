//! Schema migrations: a database written by an older Goodwill opens in this one, made current
//! before anything reads it, and one this build cannot read is refused without a change.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use goodwill_ledger::light::Anchor;
use goodwill_ledger::testkit;
use goodwill_ledger::{
    Amount, Chain, ChainSpec, GenesisForger, Keypair, MemoryStore, RocksStore, StatePruning, Store,
};

const SLOTS_PER_EPOCH: u64 = 8;

fn keys() -> Vec<Keypair> {
    (0..4).map(|i| Keypair::insecure_dev(&format!("migration-forger-{i}"))).collect()
}

fn spec() -> ChainSpec {
    let mut spec = testkit::spec();
    spec.forgers = keys().iter().map(|k| GenesisForger::for_key(k, Amount(10))).collect();
    spec.params.slots_per_epoch = SLOTS_PER_EPOCH;
    spec
}

/// Imports `source`'s blocks `from..=to` into `chain`, making final what `source` made final
/// with the proofs it stored, as a node hearing the votes would.
fn follow(chain: &mut Chain<RocksStore>, source: &Chain<MemoryStore>, from: u64, to: u64) {
    let proofs = source.finality_proofs(1, usize::MAX).unwrap();
    for height in from..=to {
        let hash = source.store().canonical_hash(height).unwrap().unwrap();
        chain.import(source.store().block(&hash).unwrap().unwrap()).unwrap();
        if let Some(proof) = proofs.iter().rev().find(|p| p.finalized.block.height <= height) {
            chain.finalize(proof.finalized, Some(proof)).unwrap();
        }
    }
}

/// The column families a database holds, read with RocksDB itself.
fn columns(path: &Path) -> Vec<String> {
    rocksdb::DB::list_cf(&rocksdb::Options::default(), path).unwrap()
}

/// Rewrites the database at `path` as Goodwill wrote schema 4: no stale-node index, no stored
/// finality steps, and the version record saying 4. Returns how many steps it took away.
fn make_schema_4(path: &Path) -> usize {
    let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, columns(path)).unwrap();
    db.drop_cf("stale_nodes").unwrap();
    let meta = db.cf_handle("meta").unwrap();
    let steps: Vec<Box<[u8]>> = db
        .prefix_iterator_cf(meta, b"finality_step/")
        .map(|entry| entry.unwrap().0)
        .take_while(|key| key.starts_with(b"finality_step/"))
        .collect();
    for key in &steps {
        db.delete_cf(meta, key).unwrap();
    }
    db.put_cf(meta, b"schema_version", 4u32.to_be_bytes()).unwrap();
    steps.len()
}

/// Sets the version record of the database at `path`, and adds a column family it may not know.
fn set_schema(path: &Path, version: u32, extra_column: Option<&str>) {
    let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, columns(path)).unwrap();
    if let Some(name) = extra_column {
        db.create_cf(name, &rocksdb::Options::default()).unwrap();
    }
    db.put_cf(db.cf_handle("meta").unwrap(), b"schema_version", version.to_be_bytes()).unwrap();
}

fn schema(path: &Path) -> u32 {
    let db =
        rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), path, columns(path), false).unwrap();
    let bytes = db.get_cf(db.cf_handle("meta").unwrap(), b"schema_version").unwrap().unwrap();
    u32::from_be_bytes(bytes.try_into().unwrap())
}

#[test]
fn a_schema_4_database_is_migrated_and_serves_light_peers_after_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let source = testkit::final_chain(spec(), &keys(), 80);
    let mut chain = Chain::open(RocksStore::open(&path).unwrap(), spec()).unwrap();
    follow(&mut chain, &source, 1, 40);
    let head = chain.head().hash();
    drop(chain);
    assert!(make_schema_4(&path) >= 3, "the chain stored steps to take away");
    assert!(!columns(&path).contains(&"stale_nodes".to_owned()));

    // Opened by this build: the index is added, and the chain builds the steps of the proofs
    // kept for good while their states are all held.
    let mut chain = Chain::open(RocksStore::open(&path).unwrap(), spec()).unwrap();
    assert_eq!(schema(&path), 5);
    assert!(columns(&path).contains(&"stale_nodes".to_owned()));
    assert_eq!(chain.head().hash(), head, "the chain is the one written before");
    assert!(!chain.store().steps_pending().unwrap(), "the steps are built once");
    let latest = chain.store().latest_finality_proof().unwrap().unwrap().finalized.block.height;
    let kept: Vec<_> = chain.finality_proofs(1, usize::MAX).unwrap();
    assert!(kept.len() >= 3, "{} proofs", kept.len());
    for proof in kept.iter().filter(|p| p.finalized.block.height != latest) {
        let height = proof.finalized.block.height;
        let stored = chain.store().finality_step(height).unwrap();
        let built = source.finality_step(proof.clone()).unwrap();
        assert_eq!(stored, built, "the step of the proof at {height}");
    }

    // It then prunes like a node made with schema 5, and its steps outlive the states.
    chain.set_pruning(StatePruning::Keep(0));
    follow(&mut chain, &source, 41, 80);
    let lowest = chain.store().pruned_below();
    assert!(lowest > 40, "pruning passed the migration: {lowest}");
    for height in lowest..=chain.head().header().height {
        let hash = chain.store().canonical_hash(height).unwrap().unwrap();
        let root = chain.store().header(&hash).unwrap().unwrap().header().state_root;
        assert_eq!(goodwill_ledger::chain::stored_state_root(chain.store(), height).unwrap(), root);
    }
    let mut anchor = Anchor::genesis(&spec()).unwrap();
    for proof in chain.finality_proofs(1, usize::MAX).unwrap() {
        let step = chain.finality_step(proof).unwrap().unwrap();
        anchor = anchor.advance(&step, SLOTS_PER_EPOCH).unwrap();
    }
    assert_eq!(anchor.finalized().block, chain.finalized().block, "a light peer follows to the end");
}

#[test]
fn a_database_this_build_cannot_read_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (older, newer) = (dir.path().join("older"), dir.path().join("newer"));
    for path in [&older, &newer] {
        drop(Chain::open(RocksStore::open(path).unwrap(), spec()).unwrap());
    }
    // Too old to migrate: schema 3 had no receipts root in its headers.
    make_schema_4(&older);
    set_schema(&older, 3, None);
    let error = RocksStore::open(&older).err().unwrap();
    assert!(error.to_string().contains("schema is version 3"), "{error}");
    assert_eq!(schema(&older), 3);
    assert!(!columns(&older).contains(&"stale_nodes".to_owned()), "nothing was added");
    // Newer, with a column family this build has never heard of: the version is the reason.
    set_schema(&newer, 6, Some("from_the_future"));
    let error = RocksStore::open_existing(&newer).err().unwrap();
    assert!(error.to_string().contains("schema is version 6; this build reads version 5"), "{error}");
    assert_eq!(schema(&newer), 6);
}
