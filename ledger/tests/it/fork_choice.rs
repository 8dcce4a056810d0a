//! Fork choice and reorganisation: nodes that see the same blocks in any order end on the same
//! head, and a reorganisation leaves exactly the state of the new branch.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::chain::{MAX_REORG_DEPTH, stored_state_root};
use goodwill_ledger::testkit::{self, CHAIN_ID};
use goodwill_ledger::{
    Amount, Block, Chain, ChainError, ChainSpec, GenesisForger, Imported, Keypair, MemoryStore, Payload,
    RocksStore, Store, TransactionBody,
};

pub(super) fn forger_key(i: usize) -> Keypair {
    Keypair::insecure_dev(&format!("fork-forger-{i}"))
}

pub(super) fn spec() -> ChainSpec {
    let mut spec = testkit::spec();
    spec.forgers = (0..2).map(|i| GenesisForger::for_key(&forger_key(i), Amount(10))).collect();
    spec
}

/// Forges on `chain`'s head at `slot` by that slot's primary forger, with a transfer of `amount`
/// from test account 0 (nonce = its next one), and returns the block.
pub(super) fn forge_at(chain: &mut Chain<MemoryStore>, slot: u64, amount: u64) -> Block {
    let forger =
        (0..2).map(forger_key).find(|k| chain.rank_of(&k.address(), slot).unwrap() == Some(0)).unwrap();
    let from = testkit::account(0);
    let nonce = chain.account(&from.address()).unwrap().nonce;
    let tx = TransactionBody {
        chain_id: CHAIN_ID.into(),
        sender: from.address(),
        nonce,
        fee: Amount(10),
        payload: Payload::Transfer { to: testkit::account(1).address(), amount: Amount(amount) },
    }
    .sign(&from, &chain.genesis_hash());
    let mut builder = chain.builder(&forger, slot, testkit::slot_time(chain.spec(), slot, 0)).unwrap();
    builder.push(tx).unwrap();
    let applied = builder.seal(&forger).unwrap();
    let block = applied.block.clone();
    chain.commit(applied).unwrap();
    block
}

/// A branch from genesis forged at `slots`.
pub(super) fn branch(slots: &[u64], amount: u64) -> (Chain<MemoryStore>, Vec<Block>) {
    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    let blocks = slots.iter().map(|&slot| forge_at(&mut chain, slot, amount)).collect();
    (chain, blocks)
}

fn assert_same_state<S: Store, T: Store>(chain: &Chain<S>, replay: &Chain<T>) {
    assert_eq!(chain.head(), replay.head());
    let height = chain.head().header().height;
    assert_eq!(stored_state_root(chain.store(), height).unwrap(), replay.head().header().state_root);
    for address in [
        testkit::account(0).address(),
        testkit::account(1).address(),
        forger_key(0).address(),
        forger_key(1).address(),
    ] {
        assert_eq!(chain.account(&address).unwrap(), replay.account(&address).unwrap(), "{address}");
    }
}

#[test]
fn a_longer_branch_wins_and_leaves_exactly_its_state() {
    let (_, short) = branch(&[1, 3, 5], 100);
    let (long_chain, long) = branch(&[2, 4, 6, 7], 200);
    let dir = tempfile::tempdir().unwrap();
    let mut memory = Chain::open(MemoryStore::new(), spec()).unwrap();
    let mut rocks = Chain::open(RocksStore::open(dir.path()).unwrap(), spec()).unwrap();
    for block in &short {
        assert!(matches!(memory.import(block.clone()).unwrap(), Imported::Extended(_)));
        assert!(matches!(rocks.import(block.clone()).unwrap(), Imported::Extended(_)));
    }
    // Reading the accounts fills the RocksDB store's cache of values at the head; the
    // reorganisation below must not leave any of them stale.
    assert_same_state(&rocks, &memory);
    // At equal height and ranks, the lower head hash wins the tie.
    let tie_goes_long = long[2].hash() < short[2].hash();
    for (i, block) in long.iter().enumerate() {
        let outcome = memory.import(block.clone()).unwrap();
        assert_eq!(rocks.import(block.clone()).unwrap(), outcome);
        let switch = Imported::Reorganized { depth: 3, reverted: short.clone() };
        match i {
            0 | 1 => assert_eq!(outcome, Imported::Side, "block {i} does not beat the short branch yet"),
            2 if tie_goes_long => assert_eq!(outcome, switch, "block 2 wins the tie"),
            2 => assert_eq!(outcome, Imported::Side, "block 2 loses the tie"),
            _ if tie_goes_long => assert!(matches!(outcome, Imported::Extended(_)), "{outcome:?}"),
            _ => assert_eq!(outcome, switch),
        }
    }
    assert_same_state(&memory, &long_chain);
    assert_same_state(&rocks, &long_chain);
    // The short branch's transactions are gone from the index; the long branch's are there.
    assert!(rocks.store().transaction_location(&short[0].transactions[0].id()).unwrap().is_none());
    let location = rocks.store().transaction_location(&long[3].transactions[0].id()).unwrap().unwrap();
    assert_eq!(location.height, 4);
    // So is every account's history, in both stores.
    let sender = long[3].transactions[0].body().sender;
    let history = rocks.store().history(&sender, None, 100).unwrap();
    assert_eq!(history, memory.store().history(&sender, None, 100).unwrap());
    let ids: Vec<_> = history.iter().map(|e| e.id).collect();
    let expected: Vec<_> = long.iter().rev().flat_map(|b| b.transactions.iter().map(|t| t.id())).collect();
    assert_eq!(ids, expected);
    // And all of it survives a restart.
    drop(rocks);
    let reopened = Chain::open(RocksStore::open(dir.path()).unwrap(), spec()).unwrap();
    assert_same_state(&reopened, &long_chain);
    assert_eq!(reopened.store().rank_sum().unwrap(), 0);
}

#[test]
fn nodes_that_see_a_fork_in_any_order_agree_on_the_head() {
    // Two branches of equal length: fork choice breaks the tie the same way everywhere.
    let (_, left) = branch(&[1, 3], 100);
    let (_, right) = branch(&[2, 4], 200);
    let mut heads = Vec::new();
    for order in [[&left, &right], [&right, &left]] {
        let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
        for blocks in order {
            for block in blocks.iter() {
                chain.import(block.clone()).unwrap();
            }
        }
        heads.push(chain.head().hash());
    }
    assert_eq!(heads[0], heads[1]);
    let expected = left[1].hash().min(right[1].hash());
    assert_eq!(heads[0], expected, "equal length and ranks: the lower hash wins");
}

#[test]
fn a_block_before_its_parent_waits_and_then_connects() {
    let (replay, blocks) = branch(&[1, 2, 3], 100);
    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    assert_eq!(chain.import(blocks[2].clone()).unwrap(), Imported::Side);
    assert_eq!(chain.import(blocks[1].clone()).unwrap(), Imported::Side);
    assert!(matches!(chain.import(blocks[0].clone()).unwrap(), Imported::Extended(_)));
    assert_same_state(&chain, &replay);
    assert_eq!(chain.import(blocks[1].clone()).unwrap(), Imported::Known);
}

#[test]
fn an_invalid_branch_changes_nothing() {
    let (_, short) = branch(&[1, 3], 100);
    let (_, long) = branch(&[2, 4, 6], 200);
    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    for block in &short {
        chain.import(block.clone()).unwrap();
    }
    chain.import(long[0].clone()).unwrap();
    chain.import(long[1].clone()).unwrap();
    // Equal length: fork choice picked one of the two branches; an invalid block must not move it.
    let head = chain.head().clone();
    let mut tampered = long[2].clone();
    tampered.transactions.clear();
    assert!(matches!(chain.import(tampered), Err(ChainError::Invalid(_))));
    assert_eq!(chain.head(), &head);
    // The valid block still wins when it arrives.
    assert!(matches!(
        chain.import(long[2].clone()).unwrap(),
        Imported::Reorganized { .. } | Imported::Extended(_)
    ));
    assert_eq!(chain.head().hash(), long[2].hash());
}

#[test]
fn a_fork_deeper_than_the_bound_is_refused() {
    let depth = MAX_REORG_DEPTH + 1;
    let slots: Vec<u64> = (1..=depth).map(|i| 2 * i).collect();
    let (_, canonical) = branch(&slots, 100);
    let (_, fork) = branch(&[1], 200);
    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    for block in &canonical {
        chain.import(block.clone()).unwrap();
    }
    assert!(matches!(chain.import(fork[0].clone()), Err(ChainError::TooDeep { .. })));
}
