//! Branches longer than the side pool holds: two halves of a network that forged apart for
//! longer than a shallow reorganisation reaches heal when one downloads the other's branch, and
//! nothing a stranger or a worse branch sends moves the chain.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::chain::MAX_REORG_DEPTH;
use goodwill_ledger::finality::{BlockId, Checkpoint};
use goodwill_ledger::{Block, Chain, ChainError, Imported, MemoryStore, RocksStore, Store};

use crate::fork_choice::{branch, forge_at};

/// Slots `first, first + 2, ...`: `count` of them (two halves forge in alternate slots).
fn slots(first: u64, count: u64) -> Vec<u64> {
    (0..count).map(|i| first + 2 * i).collect()
}

/// A chain holding `blocks`, imported as gossip would bring them.
fn chain_of(blocks: &[Block]) -> Chain<MemoryStore> {
    let mut chain = Chain::open(MemoryStore::new(), crate::fork_choice::spec()).unwrap();
    for block in blocks {
        assert!(matches!(chain.import(block.clone()).unwrap(), Imported::Extended(_)));
    }
    chain
}

fn same_state<S: Store, T: Store>(chain: &Chain<S>, other: &Chain<T>) {
    assert_eq!(chain.head(), other.head());
    let height = chain.head().header().height;
    for h in 0..=height {
        assert_eq!(chain.store().canonical_hash(h).unwrap(), other.store().canonical_hash(h).unwrap(), "{h}");
    }
    for i in 0..2 {
        let address = goodwill_ledger::testkit::account(i).address();
        assert_eq!(chain.account(&address).unwrap(), other.account(&address).unwrap());
    }
}

#[test]
fn a_better_branch_longer_than_a_reorganisation_reaches_heals_through_sync() {
    let half = 2 * MAX_REORG_DEPTH + 20;
    let (_, ours) = branch(&slots(2, half), 100);
    let (theirs_chain, theirs) = branch(&slots(1, half + 1), 200);
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(RocksStore::open(dir.path()).unwrap(), crate::fork_choice::spec()).unwrap();
    for block in &ours {
        chain.import(block.clone()).unwrap();
    }
    // As gossip, the far fork is still refused: the side pool holds shallow forks only.
    assert!(matches!(chain.import(theirs[0].clone()), Err(ChainError::TooDeep { .. })));
    // As sync downloads it, it is applied aside until it is the better chain.
    let mut outcomes = Vec::new();
    for block in &theirs {
        outcomes.push(chain.import_synced(block.clone()).unwrap());
    }
    let last = outcomes.pop().unwrap();
    assert!(outcomes.iter().all(|o| *o == Imported::Side), "switched before the branch was better");
    let Imported::Reorganized { depth, reverted } = last else { panic!("did not switch: {last:?}") };
    assert_eq!(depth, half);
    assert_eq!(
        reverted.iter().map(Block::hash).collect::<Vec<_>>(),
        ours.iter().map(Block::hash).collect::<Vec<_>>()
    );
    assert_eq!(chain.branch_progress(), None);
    same_state(&chain, &theirs_chain);
    // What it wrote is on disk: the store reopened holds the branch.
    let reopened = Chain::open(chain.into_store(), crate::fork_choice::spec()).unwrap();
    same_state(&reopened, &theirs_chain);
}

/// Both halves keep forging while one downloads the other's branch: the other half's newest
/// blocks arrive by gossip before the download reaches them, and wait aside without their
/// parent. When the download reaches them the branch takes them, and with them becomes the
/// better chain; without that, a download that always ends a few blocks short of a chain that
/// grows as fast as this one would never win, and two halves of equal height never meet.
#[test]
fn gossiped_blocks_that_arrived_before_the_branch_reached_them_complete_it() {
    let half = 2 * MAX_REORG_DEPTH;
    let (_, ours) = branch(&slots(2, half), 100);
    let (theirs_chain, theirs) = branch(&slots(1, half + 3), 200);
    let mut chain = chain_of(&ours);
    let (downloaded, gossiped) = theirs.split_at(half as usize);
    for block in gossiped {
        assert_eq!(chain.import(block.clone()).unwrap(), Imported::Side, "kept aside, parent unknown");
    }
    for block in downloaded {
        chain.import_synced(block.clone()).unwrap();
    }
    assert_eq!(
        chain.head().hash(),
        theirs.last().unwrap().hash(),
        "the branch did not take its gossiped tip"
    );
    same_state(&chain, &theirs_chain);
}

#[test]
fn a_worse_long_branch_changes_nothing_and_is_dropped_once_left_behind() {
    let half = 2 * MAX_REORG_DEPTH;
    let (mut ours_chain, ours) = branch(&slots(2, half + 1), 100);
    let (_, theirs) = branch(&slots(1, half), 200);
    let mut chain = chain_of(&ours);
    for block in &theirs {
        assert_eq!(chain.import_synced(block.clone()).unwrap(), Imported::Side);
    }
    assert_eq!(chain.head().hash(), ours.last().unwrap().hash());
    same_state(&chain, &ours_chain);
    assert_eq!(chain.branch_progress(), Some((0, half)));
    // The chain grows on; a branch far behind it and no longer growing is let go.
    let mut slot = 2 * half + 4;
    while chain.branch_progress().is_some() {
        let block = forge_at(&mut ours_chain, slot, 100);
        chain.import(block).unwrap();
        slot += 2;
        assert!(slot < 8 * half, "the branch was never dropped");
    }
    assert!(chain.head().header().height > half + 2 * MAX_REORG_DEPTH);
}

#[test]
fn a_long_branch_never_reverts_a_final_block() {
    let (_, ours) = branch(&slots(2, 100), 100);
    let (_, theirs) = branch(&slots(1, 200), 200);
    let mut chain = chain_of(&ours);
    let final_block = BlockId { height: 10, hash: ours[9].hash() };
    assert!(chain.finalize(Checkpoint { round: 20, block: final_block }, None).unwrap());
    let refused = chain.import_synced(theirs[0].clone());
    assert!(matches!(refused, Err(ChainError::BelowFinality { height: 1, finalized: 10 })), "{refused:?}");
    // Nor does any later block of that branch start one: their parents are not on this chain.
    for block in &theirs[1..] {
        assert!(!matches!(chain.import_synced(block.clone()), Ok(Imported::Reorganized { .. })));
    }
    assert_eq!(chain.head().hash(), ours.last().unwrap().hash());
    assert_eq!(chain.branch_progress(), None);
}

#[test]
fn a_branch_with_an_invalid_block_stops_there_and_the_valid_one_still_wins() {
    let half = MAX_REORG_DEPTH + 10;
    let (_, ours) = branch(&slots(2, half), 100);
    let (theirs_chain, theirs) = branch(&slots(1, half + 1), 200);
    let mut chain = chain_of(&ours);
    let bad_at = 50;
    for block in &theirs[..bad_at] {
        assert_eq!(chain.import_synced(block.clone()).unwrap(), Imported::Side);
    }
    let mut tampered = theirs[bad_at].clone();
    tampered.transactions.clear();
    assert!(matches!(chain.import_synced(tampered), Err(ChainError::Invalid(_))));
    assert_eq!(chain.branch_progress(), Some((0, bad_at as u64)));
    assert_eq!(chain.head().hash(), ours.last().unwrap().hash());
    let outcomes: Vec<Imported> =
        theirs[bad_at..].iter().map(|block| chain.import_synced(block.clone()).unwrap()).collect();
    assert!(outcomes.iter().any(|o| matches!(o, Imported::Reorganized { .. })), "{outcomes:?}");
    same_state(&chain, &theirs_chain);
}

#[test]
fn the_chain_with_the_latest_justified_checkpoint_wins_over_a_longer_one() {
    let half = MAX_REORG_DEPTH + 40;
    let (ours_chain, ours) = branch(&slots(2, half + 10), 100);
    let (theirs_chain, theirs) = branch(&slots(1, half), 200);
    let mut chain = chain_of(&ours);
    for block in &theirs {
        assert_eq!(chain.import_synced(block.clone()).unwrap(), Imported::Side);
    }
    // Two thirds voted for a block of the shorter branch: it is the chain to follow.
    let justified = &theirs[half as usize - 5];
    let checkpoint = Checkpoint {
        round: justified.header().slot + 1,
        block: BlockId { height: justified.header().height, hash: justified.hash() },
    };
    assert!(matches!(chain.justify(checkpoint).unwrap(), Imported::Reorganized { .. }));
    same_state(&chain, &theirs_chain);
    // The longer branch that leaves the justified checkpoint is not taken back.
    for block in &ours {
        let outcome = chain.import_synced(block.clone()).unwrap();
        assert!(!matches!(outcome, Imported::Reorganized { .. }), "left the justified checkpoint");
    }
    assert_eq!(chain.head().hash(), theirs.last().unwrap().hash());
    // An older round justifies nothing new.
    let older = Checkpoint { round: 1, block: BlockId { height: 1, hash: ours[0].hash() } };
    assert_eq!(chain.justify(older).unwrap(), Imported::Known);
    assert_ne!(ours_chain.head(), chain.head());
}
