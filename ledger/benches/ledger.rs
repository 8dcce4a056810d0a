//! Ledger benchmarks: `cargo bench -p goodwill-ledger`. Figures go in docs/benchmarks.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use goodwill_ledger::signature::{self, SignedMessage};
use goodwill_ledger::state::{account_values, update_state};
use goodwill_ledger::testkit::{self, ChainGenerator};
use goodwill_ledger::{Account, Amount, Chain, GenesisForger, Keypair, MemoryStore, RocksStore};

fn signatures(c: &mut Criterion) {
    let keys: Vec<SigningKey> = (0..64u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
    let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 120]).collect();
    let signatures: Vec<[u8; 64]> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m).to_bytes()).collect();
    let verifying: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let mut group = c.benchmark_group("ed25519");
    group.throughput(Throughput::Elements(1));
    // The former rule, for comparison with earlier figures.
    let strict = VerifyingKey::from_bytes(&verifying[0]).unwrap();
    group.bench_function("verify_strict", |b| {
        b.iter(|| strict.verify_strict(&messages[0], &Signature::from_bytes(&signatures[0])).unwrap())
    });
    group.bench_function("verify", |b| {
        b.iter(|| assert!(signature::verify(&verifying[0], &messages[0], &signatures[0])))
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("verify_all_64", |b| {
        b.iter(|| {
            let verdicts = signature::verify_all((0..64).map(|i| SignedMessage {
                key: &verifying[i],
                message: &messages[i],
                signature: &signatures[i],
            }));
            assert!(verdicts.iter().all(|ok| *ok));
        })
    });
    group.finish();
}

const BLOCK_TRANSACTIONS: usize = 10_000;
const ACCOUNTS: usize = 20_000;

fn block_import(c: &mut Criterion) {
    let mut generator = ChainGenerator::new(ACCOUNTS, 1);
    let transactions = generator.transfers(BLOCK_TRANSACTIONS);
    let block = generator.next_block_with(transactions);
    let spec = testkit::spec_funding(ACCOUNTS);
    let mut group = c.benchmark_group("block");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BLOCK_TRANSACTIONS as u64));
    group.bench_function("import_and_commit_10000_transfers_rocksdb", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let chain = Chain::open(RocksStore::open(dir.path()).unwrap(), spec.clone()).unwrap();
                (dir, chain, block.clone())
            },
            |(dir, mut chain, block)| {
                chain.import(block).unwrap();
                (dir, chain)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn state_root(c: &mut Criterion) {
    // A tree of 20,000 accounts; each iteration commits a new version changing `changed` of them.
    let mut generator = ChainGenerator::new(ACCOUNTS, 2);
    generator.next_block(0);
    let chain = &generator.chain;
    let mut group = c.benchmark_group("state_root");
    for changed in [100usize, 10_000] {
        let accounts: BTreeMap<_, _> = (0..changed)
            .map(|i| (testkit::account(i).address(), Account { balance: Amount(i as u64), nonce: 1 }))
            .collect();
        let values = account_values(&accounts);
        group.throughput(Throughput::Elements(changed as u64));
        group.bench_function(format!("update_{changed}_accounts"), |b| {
            b.iter(|| update_state(chain.store(), chain.head().header().height + 1, values.clone()).unwrap())
        });
    }
    group.finish();
}

/// Genesis forgers of the roster benchmark.
const FORGERS: usize = 1_000;

/// An epoch of empty blocks on a chain of 1,000 forgers: the lottery check of each block needs
/// the epoch's roster, one record per forger.
fn roster(c: &mut Criterion) {
    let keys: Vec<Keypair> =
        (0..FORGERS).map(|i| Keypair::insecure_dev(&format!("bench-forger-{i}"))).collect();
    let mut spec = testkit::spec();
    spec.forgers = keys.iter().map(|k| GenesisForger::for_key(k, Amount(10))).collect();
    let addresses: Vec<_> = keys.iter().map(Keypair::address).collect();
    let mut forging = Chain::open(MemoryStore::new(), spec.clone()).unwrap();
    let slots = spec.params.slots_per_epoch;
    let mut blocks = Vec::new();
    for slot in 1..=slots {
        let ranks = forging.ranks(slot, &addresses).unwrap();
        let primary = ranks.iter().position(|r| *r == Some(0)).unwrap();
        let time = testkit::slot_time(&spec, slot, 0);
        let applied = forging.builder(&keys[primary], slot, time).unwrap().seal(&keys[primary]).unwrap();
        blocks.push(applied.block.clone());
        forging.commit(applied).unwrap();
    }
    let mut group = c.benchmark_group("roster");
    group.sample_size(10);
    group.throughput(Throughput::Elements(slots));
    group.bench_function(format!("import_an_epoch_of_empty_blocks_{FORGERS}_forgers"), |b| {
        b.iter_batched(
            || (Chain::open(MemoryStore::new(), spec.clone()).unwrap(), blocks.clone()),
            |(mut chain, blocks)| {
                for block in blocks {
                    chain.import(block).unwrap();
                }
                chain
            },
            BatchSize::PerIteration,
        )
    });
    // What a light peer asks for each block: the main node proves the next slot's forger from
    // the cached roster and its tree, the light peer verifies it and checks the header.
    let parent = forging.head().clone();
    let slot = parent.header().slot + 1;
    let ranks = forging.ranks(slot, &addresses).unwrap();
    let primary = ranks.iter().position(|r| *r == Some(0)).unwrap();
    let time = testkit::slot_time(&spec, slot, 0);
    let next = forging.builder(&keys[primary], slot, time).unwrap().seal(&keys[primary]).unwrap().block;
    let epoch = goodwill_ledger::lottery::epoch_of(slot, spec.params.slots_per_epoch);
    let root = parent.header().state_root;
    let proof = forging.lottery_proof(&parent, &addresses[primary], slot).unwrap();
    let size = |(v, p): &goodwill_ledger::proof::ProvenLeaf| v.as_ref().map_or(0, Vec::len) + p.len();
    println!(
        "lottery proof, {FORGERS} forgers: {} bytes",
        size(&proof.consensus)
            + size(&proof.rosters)
            + size(&proof.forger)
            + proof.entry.as_ref().map_or(0, |e| 40 + 32 * e.path.len())
    );
    group.bench_function(format!("prove_the_next_forger_{FORGERS}_forgers"), |b| {
        b.iter(|| forging.lottery_proof(&parent, &addresses[primary], slot).unwrap())
    });
    group.bench_function(format!("verify_and_check_the_next_forger_{FORGERS}_forgers"), |b| {
        b.iter(|| {
            let state =
                goodwill_ledger::proof::LotteryState::verify(&root, &addresses[primary], epoch, &proof)
                    .unwrap();
            state.check(&spec, next.header()).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, signatures, block_import, state_root, roster);
criterion_main!(benches);
