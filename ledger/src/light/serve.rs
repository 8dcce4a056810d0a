//! What a main node serves light peers: a [`FinalityStep`] for a stored proof.

use super::{FinalityStep, VoterProof};
use crate::Chain;
use crate::finality::{FinalityProof, MAX_PROOF_VOTES};
use crate::lottery::epoch_of;
use crate::proof::prove_value;
use crate::state::{forger_key, rosters_key};
use crate::store::{Store, StoreError};

impl<S: Store> Chain<S> {
    /// The step for a stored proof: the one stored with it when it was kept for good
    /// ([`Store::put_finality_step`]), or one built from the states it spans; `None` if its
    /// target is no longer on this chain (its state is gone) or the rosters it spans cannot be
    /// read.
    pub fn finality_step(&self, proof: FinalityProof) -> Result<Option<FinalityStep>, StoreError> {
        let Some(first) = proof.votes.first() else { return Ok(None) };
        let target = first.vote.target;
        let store = self.store();
        if let Some(stored) = store.finality_step(proof.finalized.block.height)?
            && stored.proof.finalized == proof.finalized
        {
            return Ok(Some(stored));
        }
        if store.canonical_hash(target.height)? != Some(target.hash) {
            return Ok(None);
        }
        let (Some(finalized), Some(target_header)) =
            (store.header(&proof.finalized.block.hash)?, store.header(&target.hash)?)
        else {
            return Ok(None);
        };
        let slots_per_epoch = self.spec().params.slots_per_epoch;
        let first_epoch = epoch_of(proof.finalized.round, slots_per_epoch);
        let second_epoch = epoch_of(first.vote.round, slots_per_epoch);
        let Some(first_roster) = self.voting_roster(first_epoch)? else { return Ok(None) };
        let second_roster = match second_epoch != first_epoch {
            true => match self.voting_roster(second_epoch)? {
                Some(roster) => Some(roster),
                None => return Ok(None),
            },
            false => None,
        };
        let version = target.height;
        let mut voters = Vec::with_capacity(proof.votes.len().min(MAX_PROOF_VOTES));
        for vote in &proof.votes {
            voters.push(VoterProof {
                record: prove_value(store, version, forger_key(&vote.voter))?,
                first: first_roster.roster.entry(&vote.voter),
                second: second_roster.as_ref().and_then(|r| r.roster.entry(&vote.voter)),
            });
        }
        let rosters = prove_value(store, version, rosters_key())?;
        Ok(Some(FinalityStep { proof, finalized, target: target_header, rosters, voters }))
    }
}
