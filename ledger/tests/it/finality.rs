//! Finality on real chains: the forgers' votes, weighed by the chain's rosters, make blocks
//! final; a final block is kept across a restart, and no fork below it is ever taken.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::chain::FinalityView;
use goodwill_ledger::finality::{BlockId, Finality, SignedVote, Vote};
use goodwill_ledger::lottery::epoch_of;
use goodwill_ledger::{Chain, ChainError, Imported, MemoryStore, RocksStore, Store};

use crate::fork_choice::{forge_at, forger_key, spec};

fn head_of<S: Store>(chain: &Chain<S>) -> BlockId {
    BlockId { height: chain.head().header().height, hash: chain.head().hash() }
}

/// Every one of the two forgers votes for `chain`'s head in `round`; what becomes final is
/// recorded in the chain.
fn vote_round<S: Store>(chain: &mut Chain<S>, finality: &mut Finality, round: u64, voters: usize) {
    let head = head_of(chain);
    let progress = {
        let view = FinalityView::new(chain);
        let source = finality.source_for(&head, &view);
        let votes: Vec<SignedVote> = (0..voters)
            .map(|i| Vote { round, source, target: head }.sign(&forger_key(i), &chain.genesis_hash()))
            .collect();
        let mut refused = Vec::new();
        let progress = finality.add_votes(votes, round, &view, &view, &mut refused);
        assert!(refused.is_empty(), "{refused:?}");
        progress
    };
    if let Some(checkpoint) = progress.finalized {
        let proof = progress.proof.as_ref().expect("a final checkpoint comes with its proof");
        assert_eq!(proof.finalized, checkpoint);
        assert!(chain.finalize(checkpoint, Some(proof)).unwrap());
    }
}

#[test]
fn the_forgers_votes_make_the_chain_final_and_no_fork_below_it_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(RocksStore::open(dir.path()).unwrap(), spec()).unwrap();
    let mut finality = Finality::new(chain.genesis_hash(), chain.spec().params.slots_per_epoch);
    let mut memory = Chain::open(MemoryStore::new(), spec()).unwrap();
    // Both forgers vote every slot: each block is final one round after it is justified.
    for slot in 1..=40 {
        let block = forge_at(&mut memory, slot, 1);
        chain.import(block).unwrap();
        vote_round(&mut chain, &mut finality, slot, 2);
    }
    let finalized = chain.finalized();
    assert_eq!(finalized.block.height, 39, "{finalized:?}");
    assert_eq!(chain.store().canonical_hash(39).unwrap(), Some(finalized.block.hash));
    // One of two is half the weight: the chain grows, finality waits.
    for slot in 41..=45 {
        let block = forge_at(&mut memory, slot, 1);
        chain.import(block).unwrap();
        vote_round(&mut chain, &mut finality, slot, 1);
    }
    assert_eq!(chain.finalized(), finalized);

    // A longer branch that forks below the final block is never taken.
    let (mut fork, _) = crate::fork_choice::branch(&[1, 2, 3], 2);
    let mut fork_blocks = Vec::new();
    for slot in 46..=100 {
        fork_blocks.push(forge_at(&mut fork, slot, 2));
    }
    let first = crate::fork_choice::branch(&[1, 2, 3], 2).1[2].clone();
    assert!(matches!(chain.import(first), Err(ChainError::BelowFinality { height: 3, finalized: 39 })));
    let head = chain.head().clone();
    for block in fork_blocks {
        assert!(!matches!(chain.import(block), Ok(Imported::Reorganized { .. })));
    }
    assert_eq!(chain.head(), &head);

    // The final checkpoint survives a restart.
    drop(chain);
    let reopened = Chain::open(RocksStore::open(dir.path()).unwrap(), spec()).unwrap();
    assert_eq!(reopened.finalized(), finalized);
    // So do the proofs: the last of each epoch and the latest, each two votes signed for this
    // chain that name its checkpoint as their source.
    let proofs = reopened.finality_proofs(0, 1_000).unwrap();
    let per_epoch = reopened.spec().params.slots_per_epoch;
    let epochs: Vec<u64> = proofs.iter().map(|p| epoch_of(p.finalized.round, per_epoch)).collect();
    assert_eq!(proofs.last().map(|p| p.finalized), Some(finalized));
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "one proof per epoch: {epochs:?}");
    assert_eq!(proofs.len() as u64, epoch_of(finalized.round, per_epoch) + 1, "every epoch has its proof");
    for proof in &proofs {
        assert_eq!(proof.votes.len(), 2);
        for vote in &proof.votes {
            assert_eq!(vote.vote.source, proof.finalized);
            assert!(vote.verify(&reopened.genesis_hash()));
        }
        let height = proof.finalized.block.height;
        assert_eq!(reopened.store().canonical_hash(height).unwrap(), Some(proof.finalized.block.hash));
    }
    assert_eq!(reopened.finality_proofs(finalized.block.height, 10).unwrap().len(), 1);
}
