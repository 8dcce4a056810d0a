//! Blocks off the canonical chain from hostile forgers: nothing applies them until their branch
//! is tried, so what they must show before they are kept, and whom they can get blamed.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::{Block, BlockError, Chain, ChainError, Hash, Header, Imported, Keypair, MemoryStore};

use super::fork_choice::{self, forger_key, spec};

fn key_of(address: &goodwill_ledger::Address) -> Keypair {
    (0..2).map(forger_key).find(|k| k.address() == *address).unwrap()
}

/// Blocks forged at `slots` on a chain of their own (the fork tests' forgers and spec).
fn branch(slots: &[u64], amount: u64) -> Vec<Block> {
    fork_choice::branch(slots, amount).1
}

/// `block`'s header changed by `change` and signed again by `key`.
fn resigned(block: &Block, key: &Keypair, change: impl FnOnce(&mut Header)) -> Block {
    let mut header = block.header().clone();
    change(&mut header);
    let genesis = Chain::open(MemoryStore::new(), spec()).unwrap().genesis_hash();
    Block { header: header.sign(key, &genesis), transactions: block.transactions.clone() }
}

/// The attack: a key holding nothing signs blocks off the chain, as many as the side pool holds,
/// to crowd out real forks and make the node decode them. Without a ticket it cannot: a fork
/// from the canonical chain is drawn exactly and refused as signed out of turn, and a block
/// without its parent is not kept.
#[test]
fn junk_side_blocks_from_a_key_without_a_ticket_are_not_kept() {
    let canonical = branch(&[2, 4], 100);
    let fork = branch(&[1, 3], 200);
    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    for block in &canonical {
        chain.import(block.clone()).unwrap();
    }
    let outsider = Keypair::insecure_dev("junk-outsider");
    let on_genesis = resigned(&fork[0], &outsider, |h| h.forger = outsider.address());
    assert!(matches!(
        chain.import(on_genesis.clone()),
        Err(ChainError::Invalid(BlockError::NotEntitled { .. }))
    ));
    let orphan = resigned(&fork[1], &outsider, |h| {
        h.forger = outsider.address();
        h.parent_hash = Hash([9; 32]);
    });
    assert!(matches!(chain.import(orphan.clone()), Err(ChainError::Unproven { .. })));
    for junk in [&on_genesis, &orphan] {
        assert!(!chain.knows(&junk.hash()).unwrap(), "junk is not kept aside");
    }
    assert_eq!(chain.head().hash(), canonical[1].hash());
}

/// The attack: a forger holding a ticket signs a fork block for a slot it did not win. The
/// draw of a fork from the canonical chain is known, so the block is refused before it is kept.
#[test]
fn a_side_block_whose_forger_did_not_win_its_slot_is_refused_before_it_is_kept() {
    let canonical = branch(&[2, 4], 100);
    let fork = branch(&[1], 200);
    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    for block in &canonical {
        chain.import(block.clone()).unwrap();
    }
    let winner = fork[0].header().forger;
    let other = (0..2).map(forger_key).find(|k| k.address() != winner).unwrap();
    assert_ne!(chain.rank_of(&other.address(), 1).unwrap(), Some(0));
    let out_of_turn = resigned(&fork[0], &other, |h| h.forger = other.address());
    assert!(matches!(
        chain.import(out_of_turn.clone()),
        Err(ChainError::Invalid(BlockError::NotEntitled { .. }))
    ));
    assert!(!chain.knows(&out_of_turn.hash()).unwrap());
    // The real winner's block is kept.
    assert_eq!(chain.import(fork[0].clone()).unwrap(), Imported::Side);
}

/// The attack: a copy of an honest block with one transaction's signature swapped. Before the
/// transactions root covered signatures, the copy had the honest block's hash: kept aside
/// first, it took the hash, its failure made the honest block "known" and invalid. Now the
/// copy's body does not match the header, and the honest block is unharmed.
#[test]
fn a_copy_of_a_block_with_a_swapped_signature_cannot_take_the_honest_blocks_place() {
    let honest = branch(&[1, 2], 100);
    let mut copy = honest[1].clone();
    let mut wire = copy.transactions[0].to_wire();
    wire.signature = honest[0].transactions[0].signature().to_vec().into();
    copy.transactions[0] = goodwill_ledger::Transaction::from_wire(wire).unwrap();
    assert_eq!(copy.hash(), honest[1].hash(), "the header is untouched");

    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    assert!(matches!(chain.import(copy), Err(ChainError::Invalid(BlockError::TransactionsRoot { .. }))));
    assert!(!chain.knows(&honest[1].hash()).unwrap());
    assert_eq!(chain.import(honest[1].clone()).unwrap(), Imported::Side);
    assert!(matches!(
        chain.import(honest[0].clone()).unwrap(),
        Imported::Extended(_) | Imported::Reorganized { .. }
    ));
    assert_eq!(chain.head().hash(), honest[1].hash());
}

/// The attack: a forger hangs an invalid child (a wrong state root, correctly signed) under an
/// honest fork block before that block arrives. When the honest block comes and its branch is
/// tried, the child fails: the child is dropped, and the honest block (and whoever relayed it)
/// is not blamed.
#[test]
fn a_bad_child_never_makes_its_parent_invalid() {
    let canonical = branch(&[2], 100);
    let fork = branch(&[1, 3], 200);
    let forger = key_of(&fork[1].header().forger);
    let bad_child = resigned(&fork[1], &forger, |h| h.state_root = Hash([1; 32]));
    let mut chain = Chain::open(MemoryStore::new(), spec()).unwrap();
    chain.import(canonical[0].clone()).unwrap();
    // The child arrives first, without its parent: its forger holds a ticket, so it is kept.
    assert_eq!(chain.import(bad_child.clone()).unwrap(), Imported::Side);
    // The honest parent arrives: its branch (with the child) would beat the chain, the child
    // fails, and the parent is judged alone.
    let outcome = chain.import(fork[0].clone());
    assert!(outcome.is_ok(), "the honest parent was blamed for its child: {outcome:?}");
    assert!(!chain.knows(&bad_child.hash()).unwrap(), "the bad child is dropped");
    assert!(chain.knows(&fork[0].hash()).unwrap());
    // The real child still completes the branch.
    assert!(matches!(
        chain.import(fork[1].clone()).unwrap(),
        Imported::Reorganized { .. } | Imported::Extended(_)
    ));
    assert_eq!(chain.head().hash(), fork[1].hash());
}
