//! Pruning states below finality: every state a pruning node keeps is whole (its root, every
//! account, a proof of each), older ones are refused with a clear error rather than answered
//! wrongly, and a reorganisation above finality leaves nothing that pruning would misread.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::chain::stored_state_root;
use goodwill_ledger::finality::{BlockId, Checkpoint};
use goodwill_ledger::proof::{prove_account, verify_account};
use goodwill_ledger::state::read_account;
use goodwill_ledger::testkit::{self, CHAIN_ID};
use goodwill_ledger::{
    Amount, Block, Chain, ChainSpec, GenesisForger, Imported, Keypair, MemoryStore, Payload, RocksStore,
    StatePruning, Store, TransactionBody,
};

const SLOTS_PER_EPOCH: u64 = 4;
const ACCOUNTS: usize = 12;

fn forger_key(i: usize) -> Keypair {
    Keypair::insecure_dev(&format!("prune-forger-{i}"))
}

fn spec() -> ChainSpec {
    let mut spec = testkit::spec();
    spec.forgers = (0..2).map(|i| GenesisForger::for_key(&forger_key(i), Amount(10))).collect();
    spec.params.slots_per_epoch = SLOTS_PER_EPOCH;
    spec
}

/// Forges on `chain`'s head at `slot`, by that slot's primary forger, a block of transfers from
/// each of `senders` to the next test account.
fn forge(chain: &mut Chain<MemoryStore>, slot: u64, senders: &[usize]) -> Block {
    let forger =
        (0..2).map(forger_key).find(|k| chain.rank_of(&k.address(), slot).unwrap() == Some(0)).unwrap();
    let mut builder = chain.builder(&forger, slot, testkit::slot_time(chain.spec(), slot, 0)).unwrap();
    for &sender in senders {
        let from = testkit::account(sender);
        let tx = TransactionBody {
            chain_id: CHAIN_ID.into(),
            sender: from.address(),
            nonce: chain.account(&from.address()).unwrap().nonce,
            fee: Amount(10),
            payload: Payload::Transfer {
                to: testkit::account((sender + 1) % ACCOUNTS).address(),
                amount: Amount(slot * 10 + sender as u64),
            },
        }
        .sign(&from, &chain.genesis_hash());
        builder.push(tx).unwrap();
    }
    let applied = builder.seal(&forger).unwrap();
    let block = applied.block.clone();
    chain.commit(applied).unwrap();
    block
}

/// Makes the block below the head final on `chain`, as votes would.
fn finalize_parent<S: Store>(chain: &mut Chain<S>) {
    let head = chain.head().header().clone();
    let parent = chain.store().header(&head.parent_hash).unwrap().unwrap();
    let block = BlockId { height: parent.header().height, hash: parent.hash() };
    chain.finalize(Checkpoint { round: head.slot, block }, None).unwrap();
}

/// Every state `chain` keeps is `replay`'s: its root is the header's, and every test account
/// reads the same and is proven against that root.
fn assert_kept_states_whole<S: Store>(chain: &Chain<S>, replay: &Chain<MemoryStore>) {
    let lowest = chain.store().pruned_below();
    for height in lowest..=chain.head().header().height {
        let hash = chain.store().canonical_hash(height).unwrap().unwrap();
        assert_eq!(replay.store().canonical_hash(height).unwrap(), Some(hash));
        let root = chain.store().header(&hash).unwrap().unwrap().header().state_root;
        assert_eq!(stored_state_root(chain.store(), height).unwrap(), root, "height {height}");
        for i in 0..ACCOUNTS {
            let address = testkit::account(i).address();
            let account = read_account(chain.store(), height, &address).unwrap();
            assert_eq!(account, read_account(replay.store(), height, &address).unwrap(), "{i} at {height}");
            let (state, proof) = prove_account(chain.store(), height, &address).unwrap();
            assert_eq!(verify_account(&root, &address, state.as_deref(), &proof).unwrap(), account);
        }
    }
}

#[test]
fn a_pruning_node_keeps_every_state_it_promises_and_refuses_older_ones_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Chain::open(MemoryStore::new(), spec()).unwrap();
    let mut archive = Chain::open(RocksStore::open(&dir.path().join("archive")).unwrap(), spec()).unwrap();
    let mut pruned = Chain::open(RocksStore::open(&dir.path().join("pruned")).unwrap(), spec()).unwrap();
    // Asked to keep none, it keeps what votes read: two epochs below the final block.
    pruned.set_pruning(StatePruning::Keep(0));
    let kept = pruned.min_kept_states();
    assert_eq!(kept, 2 * SLOTS_PER_EPOCH);
    for slot in 1..=60 {
        let senders: Vec<usize> = (0..4).map(|i| (slot as usize + i * 3) % ACCOUNTS).collect();
        let block = forge(&mut source, slot, &senders);
        for chain in [&mut archive, &mut pruned] {
            assert!(matches!(chain.import(block.clone()).unwrap(), Imported::Extended(_)));
            finalize_parent(chain);
        }
    }
    let lowest = pruned.store().pruned_below();
    assert_eq!(lowest, 59 - kept, "pruning keeps up with finality");
    assert_eq!(archive.store().pruned_below(), 0, "an archive node keeps everything");
    assert_kept_states_whole(&pruned, &source);
    // Below the kept states, a read is refused; it is never answered with an older value.
    let address = testkit::account(0).address();
    for height in [0, lowest / 2, lowest - 1] {
        let error = read_account(pruned.store(), height, &address).unwrap_err();
        assert!(error.to_string().contains(&format!("the state at height {height} is pruned")), "{error}");
        assert!(stored_state_root(pruned.store(), height).is_err(), "the root of {height} is gone");
        assert!(read_account(archive.store(), height, &address).is_ok());
    }
    let (archived, kept_entries) =
        (archive.store().state_entries().unwrap(), pruned.store().state_entries().unwrap());
    assert!(kept_entries.nodes * 3 < archived.nodes, "{kept_entries:?} against {archived:?}");
    assert!(kept_entries.values < archived.values, "{kept_entries:?} against {archived:?}");
    // It goes on from a restart: the horizon is kept, and new blocks apply on the pruned tree.
    drop(pruned);
    let mut pruned = Chain::open(RocksStore::open(&dir.path().join("pruned")).unwrap(), spec()).unwrap();
    pruned.set_pruning(StatePruning::Keep(0));
    assert_eq!(pruned.store().pruned_below(), lowest);
    for slot in 61..=70 {
        let block = forge(&mut source, slot, &[0, 1, 2, 3, 4, 5]);
        assert!(matches!(pruned.import(block).unwrap(), Imported::Extended(_)));
        finalize_parent(&mut pruned);
    }
    assert_eq!(pruned.store().pruned_below(), 69 - kept);
    assert_kept_states_whole(&pruned, &source);
}

#[test]
fn pruning_after_a_reorganisation_keeps_the_winning_branch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(RocksStore::open(dir.path()).unwrap(), spec()).unwrap();
    chain.set_pruning(StatePruning::Keep(0));
    let mut memory = Chain::open(MemoryStore::new(), spec()).unwrap();
    memory.set_pruning(StatePruning::Keep(0));
    let mut common = Chain::open(MemoryStore::new(), spec()).unwrap();
    let mut prefix = Vec::new();
    for slot in 1..=10 {
        prefix.push(forge(&mut common, slot, &[0, 2, 4]));
    }
    let replay = |blocks: &[Block]| {
        let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
        for block in blocks {
            chain.import(block.clone()).unwrap();
        }
        chain
    };
    // The losing branch moves accounts the winning one leaves alone: a tree node it made stale
    // is still in the winner's tree, and pruning must not take it.
    let mut losing = replay(&prefix);
    let lost: Vec<Block> = [11, 13, 15].iter().map(|&slot| forge(&mut losing, slot, &[0, 1, 6])).collect();
    let mut winning = replay(&prefix);
    let won: Vec<Block> = [12, 14, 16, 17].iter().map(|&slot| forge(&mut winning, slot, &[3, 8])).collect();
    for block in &prefix {
        chain.import(block.clone()).unwrap();
        memory.import(block.clone()).unwrap();
    }
    // Final below the fork, as it is when a partition heals.
    finalize_parent(&mut chain);
    finalize_parent(&mut memory);
    for block in &lost {
        chain.import(block.clone()).unwrap();
        memory.import(block.clone()).unwrap();
    }
    let mut switched = false;
    for block in &won {
        for imported in [chain.import(block.clone()).unwrap(), memory.import(block.clone()).unwrap()] {
            switched |= matches!(imported, Imported::Reorganized { depth: 3, .. });
        }
    }
    assert!(switched, "the longer branch wins");
    assert_eq!(chain.head(), winning.head());
    // The winner grows; finality and pruning pass the fork.
    for slot in 18..=40 {
        let block = forge(&mut winning, slot, &[(slot as usize) % ACCOUNTS]);
        chain.import(block.clone()).unwrap();
        memory.import(block).unwrap();
        finalize_parent(&mut chain);
        finalize_parent(&mut memory);
    }
    assert!(chain.store().pruned_below() > 17, "pruned past the fork: {}", chain.store().pruned_below());
    assert_eq!(memory.store().pruned_below(), chain.store().pruned_below());
    assert_kept_states_whole(&chain, &winning);
    assert_kept_states_whole(&memory, &winning);
    // Every account the losing branch moved still reads and changes on the winner.
    let block = forge(&mut winning, 41, &[0, 1, 6]);
    assert!(matches!(chain.import(block).unwrap(), Imported::Extended(_)));
    assert_kept_states_whole(&chain, &winning);
}

#[test]
fn a_reader_off_the_chain_thread_reads_whole_states_and_sees_pruning_pass_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Chain::open(MemoryStore::new(), spec()).unwrap();
    let mut chain = Chain::open(RocksStore::open(dir.path()).unwrap(), spec()).unwrap();
    chain.set_pruning(StatePruning::Keep(0));
    let mut grow = |chain: &mut Chain<RocksStore>, slots: std::ops::RangeInclusive<u64>| {
        for slot in slots {
            let block = forge(&mut source, slot, &[slot as usize % ACCOUNTS]);
            chain.import(block).unwrap();
            finalize_parent(chain);
        }
    };
    grow(&mut chain, 1..=20);
    let reader = chain.store().detached_reader().unwrap();
    let height = reader.pruned_below();
    assert!(height > 0);
    let root =
        chain.store().header(&chain.store().canonical_hash(height).unwrap().unwrap()).unwrap().unwrap();
    assert_eq!(stored_state_root(reader.as_ref(), height).unwrap(), root.header().state_root);
    let address = testkit::account(3).address();
    let before = read_account(reader.as_ref(), height, &address).unwrap();
    assert_eq!(before, read_account(chain.store(), height, &address).unwrap());
    // The chain goes on; pruning passes the state the reader was reading, and it can tell.
    grow(&mut chain, 21..=30);
    assert!(reader.pruned_below() > height);
    assert!(read_account(reader.as_ref(), height, &address).is_err());
}
