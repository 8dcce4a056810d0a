use super::*;
use crate::proof::prove_value;
use crate::state::forger_key;
use crate::store::Store;
use crate::testkit;
use crate::{Amount, Chain, GenesisForger, Keypair, MemoryStore};

const FORGERS: usize = 4;

fn keys() -> Vec<Keypair> {
    (0..FORGERS).map(|i| Keypair::insecure_dev(&format!("light-forger-{i}"))).collect()
}

fn spec() -> ChainSpec {
    let mut spec = testkit::spec();
    spec.forgers = keys().iter().map(|k| GenesisForger::for_key(k, Amount(10))).collect();
    spec.params.slots_per_epoch = 8;
    spec
}

/// A chain of `slots` blocks on which every forger votes for the head each slot.
fn final_chain(slots: u64) -> Chain<MemoryStore> {
    testkit::final_chain(spec(), &keys(), slots)
}

/// The steps a main node on `chain` serves above `height`.
fn steps(chain: &Chain<MemoryStore>, height: u64) -> Vec<FinalityStep> {
    let proofs = chain.finality_proofs(height + 1, 64).unwrap();
    proofs.into_iter().map(|p| chain.finality_step(p).unwrap().unwrap()).collect()
}

fn genesis_anchor() -> Anchor {
    Anchor::genesis(&spec()).unwrap()
}

/// The first step, checked to be good, to be spoiled by a test.
fn first_step(chain: &Chain<MemoryStore>) -> FinalityStep {
    let step = steps(chain, 0).remove(0);
    genesis_anchor().advance(&step, 8).unwrap();
    step
}

#[test]
fn a_light_peer_follows_finality_epoch_to_epoch_without_a_single_block() {
    let chain = final_chain(60);
    let final_height = chain.finalized().block.height;
    assert_eq!(final_height, 59);
    let mut anchor = genesis_anchor();
    let steps = steps(&chain, 0);
    // One stored proof per epoch and the latest.
    assert!(steps.len() >= 7, "{} steps", steps.len());
    for step in &steps {
        let next = anchor.advance(step, 8).unwrap();
        assert_eq!(next.finalized(), step.proof.finalized);
        assert!(next.rosters.len() <= MAX_ANCHOR_ROSTERS);
        anchor = next;
    }
    assert_eq!(anchor.finalized(), chain.finalized());
    let stored = chain.store().header(&chain.finalized().block.hash).unwrap().unwrap();
    assert_eq!(anchor.header, stored);
    // What it trusts now holds the rosters of the epochs ahead.
    let epoch = epoch_of(anchor.round, 8);
    assert!(anchor.rosters.iter().any(|c| c.epoch == epoch + 1), "{:?}", anchor.rosters);
}

#[test]
fn a_step_signed_for_another_chain_is_refused() {
    let chain = final_chain(12);
    let mut anchor = genesis_anchor();
    anchor.genesis = Hash([7; 32]);
    let error = anchor.advance(&first_step(&chain), 8).unwrap_err();
    assert!(error.is_lie() && error.to_string().contains("not signed for this chain"), "{error}");
}

#[test]
fn a_step_spanning_a_roster_the_anchor_does_not_know_waits_for_headers() {
    let chain = final_chain(40);
    let late = steps(&chain, 0).pop().unwrap();
    let error = genesis_anchor().advance(&late, 8).unwrap_err();
    assert!(matches!(error, StepError::UnknownRoster(epoch) if epoch >= 2), "{error}");
    assert!(!error.is_lie());
}

#[test]
fn a_third_of_the_weight_cannot_finalize_for_a_light_peer() {
    let chain = final_chain(12);
    let mut step = first_step(&chain);
    step.proof.votes.truncate(2);
    step.voters.truncate(2);
    // Two of four equal forgers: half, not two thirds.
    let error = genesis_anchor().advance(&step, 8).unwrap_err();
    assert!(matches!(error, StepError::Short { support: 20, total: 40, .. }), "{error}");
}

#[test]
fn votes_of_strangers_off_the_roster_weigh_nothing() {
    let chain = final_chain(12);
    let mut step = first_step(&chain);
    let genesis = chain.genesis_hash();
    for (i, (vote, proof)) in step.proof.votes.iter_mut().zip(&mut step.voters).enumerate() {
        let stranger = Keypair::insecure_dev(&format!("stranger-{i}"));
        *vote = vote.vote.sign(&stranger, &genesis);
        proof.record =
            prove_value(chain.store(), step.target.header().height, forger_key(&vote.voter)).unwrap();
        proof.first = None;
    }
    let error = genesis_anchor().advance(&step, 8).unwrap_err();
    assert!(matches!(error, StepError::Short { support: 0, .. }), "{error}");
}

#[test]
fn a_roster_entry_inflated_to_claim_more_weight_is_refused() {
    let chain = final_chain(12);
    let mut step = first_step(&chain);
    step.proof.votes.truncate(2);
    step.voters.truncate(2);
    let entry = step.voters[0].first.as_mut().unwrap();
    entry.start = 0;
    entry.end = 40;
    let error = genesis_anchor().advance(&step, 8).unwrap_err();
    assert!(error.is_lie() && error.to_string().contains("roster entry"), "{error}");
}

#[test]
fn another_voters_entry_is_refused() {
    let chain = final_chain(12);
    let mut step = first_step(&chain);
    step.voters.swap(0, 1);
    let error = genesis_anchor().advance(&step, 8).unwrap_err();
    assert!(error.is_lie(), "{error}");
}

#[test]
fn a_header_other_than_the_one_the_votes_name_is_refused() {
    let chain = final_chain(12);
    let step = first_step(&chain);
    let other = chain.store().header(&chain.store().canonical_hash(1).unwrap().unwrap()).unwrap().unwrap();
    for spoil in
        [|s: &mut FinalityStep, h: SealedHeader| s.finalized = h, |s: &mut FinalityStep, h| s.target = h]
    {
        let mut step = step.clone();
        spoil(&mut step, other.clone());
        let error = genesis_anchor().advance(&step, 8).unwrap_err();
        assert!(error.is_lie() && error.to_string().contains("header"), "{error}");
    }
}

#[test]
fn a_vote_counted_twice_is_refused() {
    let chain = final_chain(12);
    let mut step = first_step(&chain);
    step.proof.votes.truncate(2);
    step.voters.truncate(2);
    step.proof.votes.push(step.proof.votes[0]);
    step.voters.push(step.voters[0].clone());
    let error = genesis_anchor().advance(&step, 8).unwrap_err();
    assert!(error.is_lie() && error.to_string().contains("twice"), "{error}");
}

#[test]
fn a_record_proven_against_another_state_is_refused() {
    let chain = final_chain(12);
    let mut step = first_step(&chain);
    let voter = step.proof.votes[0].voter;
    step.voters[0].record = prove_value(chain.store(), 1, forger_key(&voter)).unwrap();
    let error = genesis_anchor().advance(&step, 8).unwrap_err();
    assert!(error.is_lie() && error.to_string().contains("record"), "{error}");
}

#[test]
fn a_stale_step_changes_nothing() {
    let chain = final_chain(20);
    let all = steps(&chain, 0);
    let anchor = genesis_anchor().advance(&all[0], 8).unwrap().advance(&all[1], 8).unwrap();
    let error = anchor.advance(&all[0], 8).unwrap_err();
    assert!(matches!(error, StepError::Stale { .. }) && !error.is_lie(), "{error}");
}

#[test]
fn steps_and_anchors_survive_their_wire_forms_and_garbage_is_refused() {
    let chain = final_chain(12);
    let step = first_step(&chain);
    assert_eq!(FinalityStep::from_wire(&step.to_wire()).unwrap(), step);
    let anchor = genesis_anchor().advance(&step, 8).unwrap();
    assert_eq!(Anchor::from_wire(anchor.to_wire()).unwrap(), anchor);

    let mut wire = step.to_wire();
    wire.voters.extend(std::iter::repeat_n(wire.voters[0].clone(), MAX_PROOF_VOTES));
    assert!(matches!(FinalityStep::from_wire(&wire), Err(DecodeError::TooMany { .. })));
    let mut wire = anchor.to_wire();
    wire.genesis = Bytes::from_static(b"short");
    assert!(Anchor::from_wire(wire).is_err());
}

#[test]
fn a_light_peer_joins_through_a_node_that_pruned_the_states_its_steps_prove_against() {
    let chain = testkit::final_chain_pruning(spec(), &keys(), 80, crate::StatePruning::Keep(0));
    let lowest = chain.store().pruned_below();
    assert_eq!(lowest, chain.finalized().block.height - chain.min_kept_states());
    let steps = steps(&chain, 0);
    // Every epoch's step whose target's state is gone was stored when its proof was kept.
    let pruned = steps.iter().filter(|step| step.target.header().height < lowest).count();
    assert!(pruned >= 6, "{pruned} of {} steps prove against pruned states", steps.len());
    let mut anchor = genesis_anchor();
    for step in &steps {
        anchor = anchor.advance(step, 8).unwrap();
    }
    assert_eq!(anchor.finalized(), chain.finalized());
}
