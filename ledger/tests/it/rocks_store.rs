//! The RocksDB store: reopening recovers the head and state; a store refuses another chain.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::testkit::{self, ChainGenerator};
use goodwill_ledger::{Address, Chain, ChainError, HistoryEntry, MemoryStore, RocksStore, Store};

#[test]
fn reopening_recovers_head_state_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = ChainGenerator::new(6, 9);
    let blocks: Vec<_> = (0..5).map(|_| generator.next_block(7)).collect();
    {
        let mut chain = Chain::open(RocksStore::open(dir.path()).unwrap(), testkit::spec()).unwrap();
        for block in blocks.clone() {
            chain.import(block).unwrap();
        }
    }
    let chain = Chain::open_stored(RocksStore::open(dir.path()).unwrap()).unwrap();
    assert_eq!(chain.head(), generator.chain.head());
    for i in 0..6 {
        let address = testkit::account(i).address();
        assert_eq!(chain.account(&address).unwrap(), generator.chain.account(&address).unwrap());
    }
    let last = blocks.last().unwrap();
    let tx = &last.transactions[3];
    let location = chain.store().transaction_location(&tx.id()).unwrap().unwrap();
    assert_eq!((location.block_hash, location.height, location.index), (last.hash(), 5, 3));
    let receipts = chain.store().receipts(&last.hash()).unwrap().unwrap();
    assert_eq!(receipts.len(), 7);
    assert_eq!(receipts[3].transaction_id, tx.id());
}

#[test]
fn a_store_refuses_another_chains_spec() {
    let dir = tempfile::tempdir().unwrap();
    drop(Chain::open(RocksStore::open(dir.path()).unwrap(), testkit::spec()).unwrap());
    let error = Chain::open(RocksStore::open(dir.path()).unwrap(), testkit::spec_funding(3)).unwrap_err();
    assert!(matches!(error, ChainError::GenesisMismatch { .. }), "{error}");
}

#[test]
fn a_commit_that_does_not_extend_the_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(RocksStore::open(dir.path()).unwrap(), testkit::spec()).unwrap();
    let mut generator = ChainGenerator::new(3, 1);
    let first = generator.next_block(2);
    let second = generator.next_block(2);
    // A block whose parent has not arrived waits aside; the store is not touched...
    assert_eq!(chain.import(second.clone()).unwrap(), goodwill_ledger::Imported::Side);
    assert_eq!(chain.store().head().unwrap(), Some(chain.genesis_hash()));
    // ...and the store itself refuses a commit that does not extend its head.
    let applied = goodwill_ledger::execute::apply_block(
        generator.chain.store(),
        generator.chain.spec(),
        &generator.chain.genesis_hash(),
        &generator.chain.store().header(&first.hash()).unwrap().unwrap(),
        second,
    )
    .unwrap();
    assert!(matches!(
        chain.commit(applied),
        Err(ChainError::Store(goodwill_ledger::StoreError::NotOnHead { .. }))
    ));
    assert_eq!(chain.head().header().height, 0);
    // ...and connects once its parent arrives.
    chain.import(first).unwrap();
    assert_eq!(chain.head().hash(), generator.chain.head().hash());
}

/// Every page of `address`'s history, `size` entries at a time.
fn whole_history(store: &impl Store, address: &Address, size: usize) -> Vec<HistoryEntry> {
    let mut all: Vec<HistoryEntry> = Vec::new();
    loop {
        let before = all.last().map(|e| (e.location.height, e.location.index));
        let page = store.history(address, before, size).unwrap();
        assert!(page.len() <= size);
        let done = page.len() < size;
        all.extend(page);
        if done {
            return all;
        }
    }
}

#[test]
fn account_history_pages_newest_first_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = ChainGenerator::new(5, 3);
    let blocks: Vec<_> = (0..6).map(|_| generator.next_block(6)).collect();
    let mut memory = Chain::open(MemoryStore::new(), testkit::spec()).unwrap();
    {
        let mut rocks = Chain::open(RocksStore::open(dir.path()).unwrap(), testkit::spec()).unwrap();
        for block in blocks.clone() {
            rocks.import(block.clone()).unwrap();
            memory.import(block).unwrap();
        }
    }
    let rocks = Chain::open_stored(RocksStore::open(dir.path()).unwrap()).unwrap();
    for i in 0..5 {
        let address = testkit::account(i).address();
        // What the blocks say: every transaction sent by or to the account, newest first.
        let mut expected = Vec::new();
        for block in &blocks {
            for (index, tx) in block.transactions.iter().enumerate() {
                if tx.body().accounts().contains(&address) {
                    expected.push((tx.id(), block.hash(), block.header().height, index as u32));
                }
            }
        }
        expected.reverse();
        assert!(!expected.is_empty(), "account {i} took part in no transfer");
        for size in [1, 4, 1000] {
            for store in
                [whole_history(rocks.store(), &address, size), whole_history(memory.store(), &address, size)]
            {
                let found: Vec<_> = store
                    .iter()
                    .map(|e| (e.id, e.location.block_hash, e.location.height, e.location.index))
                    .collect();
                assert_eq!(found, expected, "account {i}, pages of {size}");
            }
        }
    }
    // An account that never took part has no history.
    let stranger = testkit::account(99).address();
    assert!(rocks.store().history(&stranger, None, 10).unwrap().is_empty());
}
