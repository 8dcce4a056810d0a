//! A process importing blocks into RocksDB is killed with SIGKILL at random moments. After each
//! kill the store must reopen on a prefix of the chain that was written, no shorter than what
//! the child reported committed, with exactly the state a replay of that prefix gives.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use goodwill_ledger::testkit::{self, ChainGenerator};
use goodwill_ledger::{Block, Chain, RocksStore, Store, chain::stored_state_root, state::read_account};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const ACCOUNTS: usize = 16;
const BLOCKS: usize = 400;
const TRANSACTIONS_PER_BLOCK: usize = 12;
const KILLS: usize = 24;

fn generate() -> (ChainGenerator, Vec<Block>) {
    let mut generator = ChainGenerator::new(ACCOUNTS, 42);
    let blocks = (0..BLOCKS).map(|_| generator.next_block(TRANSACTIONS_PER_BLOCK)).collect();
    (generator, blocks)
}

fn write_blocks(path: &Path, blocks: &[Block]) {
    let mut file = std::fs::File::create(path).unwrap();
    for block in blocks {
        let bytes = block.encode();
        file.write_all(&(bytes.len() as u32).to_be_bytes()).unwrap();
        file.write_all(&bytes).unwrap();
    }
}

fn read_blocks(path: &Path) -> Vec<Block> {
    let data = std::fs::read(path).unwrap();
    let mut blocks = Vec::new();
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        let (bytes, tail) = tail.split_at(len);
        blocks.push(Block::decode(Bytes::copy_from_slice(bytes), usize::MAX).unwrap());
        rest = tail;
    }
    blocks
}

/// The child: imports the blocks in `GOODWILL_CRASH_BLOCKS` above the store's head, printing
/// each height once its commit has returned.
#[test]
#[ignore = "run as a child process by killed_importer_leaves_a_replayable_prefix"]
fn crash_child() {
    let dir = std::env::var("GOODWILL_CRASH_DIR").expect("run by killed_importer_leaves_a_replayable_prefix");
    let blocks = read_blocks(Path::new(&std::env::var("GOODWILL_CRASH_BLOCKS").unwrap()));
    let store = RocksStore::open(Path::new(&dir)).unwrap();
    let mut chain = Chain::open(store, testkit::spec()).unwrap();
    let start = chain.head().header().height as usize;
    let mut stdout = std::io::stdout().lock();
    for block in blocks.into_iter().skip(start) {
        let height = block.header().height;
        chain.import(block).unwrap();
        writeln!(stdout, "committed {height}").unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn killed_importer_leaves_a_replayable_prefix() {
    let (generator, blocks) = generate();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let blocks_file = dir.path().join("blocks.bin");
    write_blocks(&blocks_file, &blocks);

    let seed: u64 =
        std::env::var("GOODWILL_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
    println!("GOODWILL_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let addresses: Vec<_> =
        (0..ACCOUNTS).map(|i| testkit::account(i).address()).chain([testkit::forger().address()]).collect();

    let mut acknowledged = 0u64;
    let mut kills = 0;
    let mut ahead_of_acknowledged = 0;
    let mut checked_up_to = 0u64;
    while kills < KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_safety::crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("GOODWILL_CRASH_DIR", &db)
            .env("GOODWILL_CRASH_BLOCKS", &blocks_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let commits_before_kill = rng.random_range(1..=5);
        let mut seen = 0;
        while seen < commits_before_kill {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(height) = line.strip_prefix("committed ") {
                        acknowledged = height.parse().unwrap();
                        seen += 1;
                    }
                }
                Some(Err(e)) => panic!("reading the child: {e}"),
                None => break,
            }
        }
        // Not synchronisation: a random pause moves the kill to a random point of the next
        // import (decoding, verifying, hashing, or inside RocksDB's write).
        std::thread::sleep(Duration::from_micros(rng.random_range(0..4_000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        drop(lines);

        let store = RocksStore::open(&db).unwrap();
        let head = store.head_header().unwrap().expect("genesis at least");
        let height = head.header().height;
        assert!(
            height >= acknowledged,
            "block {acknowledged} was reported committed but the store reopened at {height}"
        );
        assert!(height as usize <= BLOCKS);
        for h in checked_up_to.max(1)..=height {
            let expected = &blocks[h as usize - 1];
            assert_eq!(store.canonical_hash(h).unwrap(), Some(expected.hash()), "height {h}");
            assert_eq!(store.block(&expected.hash()).unwrap().as_ref(), Some(expected), "block {h}");
        }
        if height > acknowledged {
            // The kill landed after a commit but before the child could report it.
            ahead_of_acknowledged += 1;
        }
        checked_up_to = height;
        let expected_root = match height {
            0 => goodwill_ledger::genesis(&testkit::spec()).unwrap().state.root,
            h => blocks[h as usize - 1].header().state_root,
        };
        assert_eq!(stored_state_root(&store, height).unwrap(), expected_root);
        for address in &addresses {
            assert_eq!(
                store.account(address).unwrap(),
                read_account(generator.chain.store(), height, address).unwrap(),
                "account {address} at height {height}"
            );
        }
        if height as usize == BLOCKS {
            break;
        }
    }
    println!(
        "{kills} kills; final height {checked_up_to}; {ahead_of_acknowledged} reopened past the last report"
    );
    assert!(kills >= 20, "only {kills} kills happened before the child imported every block");
}
