//! Finality for peers that keep no state: a light peer holds an [`Anchor`] (the last final
//! block it verified and the roster commitments it trusts) and moves it forward one
//! [`FinalityStep`] at a time, without downloading the blocks in between.
//!
//! A step carries a stored [`FinalityProof`]: the votes of round `r` naming the final checkpoint
//! `C` (justified in round `r - 1`) as their source and one target `T`. It is accepted when the
//! votes are signed for this chain and their voters hold two thirds of the weight of each epoch
//! the link spans (that of `r - 1`, and that of `r` when it is the next one), as a main node
//! counts it ([`crate::finality`]):
//!
//! - A voter's weight in an epoch is its interval on the epoch's roster, proven by a Merkle path
//!   against the roster commitment, if its record (proven against `T`'s state root) lets it sign
//!   in that epoch. `T`'s state is the right one: its slot is before `r` and at or after the
//!   last block before `r`'s epoch, and a forfeit reported in an epoch takes effect after it, so
//!   what `T`'s state says of signing in either epoch is what the state main nodes read says.
//! - The commitment of `r - 1`'s epoch must be one the anchor trusts. Once two thirds of it have
//!   signed `T`, `T`'s state is as trustworthy as the votes, and its roster commitments (of
//!   `T`'s epoch and the next) are learnt from it; the commitment of `r`'s epoch may come from
//!   there. A step whose first epoch the anchor does not know cannot be checked: after an epoch
//!   in which nothing became final, the light peer follows headers across the gap.
//!
//! This is the check Ethereum's light clients make of a sync committee, with the whole roster as
//! the committee: what it trusts is that less than a third of each epoch's weight signs
//! conflicting votes (which [`crate::finality::VoteEquivocation`] would prove).

use std::collections::HashSet;

use bytes::Bytes;
use goodwill_proto::v1 as wire;

use crate::codec::DecodeError;
use crate::finality::{BlockId, Checkpoint, FinalityProof, MAX_PROOF_VOTES, SignedVote};
use crate::lottery::{RosterEntry, epoch_of};
use crate::proof::{ProvenLeaf, verify_value};
use crate::state::{RosterCommitment, rosters_key};
use crate::store::StoreError;
use crate::{ChainSpec, Hash, SealedHeader};

/// Roster commitments an anchor keeps: the newest, enough for the epochs a next step spans.
pub const MAX_ANCHOR_ROSTERS: usize = 4;

/// What a voter weighs in the epochs a proof spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterProof {
    /// Its record's leaf at the target's state.
    pub record: ProvenLeaf,
    /// Its entry on the roster of the epoch of round `r - 1`, if it is on it.
    pub first: Option<RosterEntry>,
    /// Its entry on the roster of round `r`'s epoch, when that is the next one and it is on it.
    pub second: Option<RosterEntry>,
}

/// A proof of finality with what a peer that keeps no state needs to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalityStep {
    /// The proof.
    pub proof: FinalityProof,
    /// The final block's header.
    pub finalized: SealedHeader,
    /// The header of the block the votes name as target.
    pub target: SealedHeader,
    /// The roster commitments' leaf at the target's state.
    pub rosters: ProvenLeaf,
    /// One per vote, in the proof's order.
    pub voters: Vec<VoterProof>,
}

/// What a light peer trusts: the last final block it verified, and roster commitments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The chain's genesis hash.
    pub genesis: Hash,
    /// The round the final block was justified in.
    pub round: u64,
    /// The final block's header.
    pub header: SealedHeader,
    /// Trusted roster commitments, by epoch ascending, at most [`MAX_ANCHOR_ROSTERS`].
    pub rosters: Vec<RosterCommitment>,
}

/// Why a step was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// It finalizes nothing above the anchor.
    #[error("it finalizes height {height}, not above the anchor's {anchored}")]
    Stale {
        /// The height it finalizes.
        height: u64,
        /// The anchor's.
        anchored: u64,
    },
    /// The anchor holds no commitment to the roster the votes must be weighed with first.
    #[error("no trusted roster commitment for epoch {0}")]
    UnknownRoster(u64),
    /// The voters hold less than two thirds of an epoch's weight.
    #[error("its voters hold {support} of epoch {epoch}'s weight of {total}, less than two thirds")]
    Short {
        /// The epoch.
        epoch: u64,
        /// Their weight.
        support: u128,
        /// The epoch's.
        total: u128,
    },
    /// It is inconsistent, or a signature or a Merkle proof in it does not hold: whoever sent it
    /// lied (main nodes serve only what they checked).
    #[error("{0}")]
    Invalid(String),
}

impl StepError {
    /// Whether the step proves its sender dishonest (or broken), rather than unusable here.
    pub fn is_lie(&self) -> bool {
        matches!(self, StepError::Invalid(_))
    }
}

impl Anchor {
    /// The anchor every light peer of `spec`'s chain may start from: genesis, final by
    /// definition, and the rosters it commits to.
    pub fn genesis(spec: &ChainSpec) -> Result<Anchor, StoreError> {
        let genesis = crate::genesis(spec)?.block;
        Ok(Anchor {
            genesis: genesis.hash(),
            round: 0,
            header: genesis.header,
            rosters: crate::genesis_rosters(spec).commitments,
        })
    }

    /// The final block.
    pub fn finalized(&self) -> Checkpoint {
        let header = self.header.header();
        Checkpoint { round: self.round, block: BlockId { height: header.height, hash: self.header.hash() } }
    }

    fn roster(&self, epoch: u64) -> Option<&RosterCommitment> {
        self.rosters.iter().find(|c| c.epoch == epoch)
    }

    /// Checks `step` (see the module's description) and returns the anchor at its final block.
    /// Nothing here is proportional to more than the step's size, which decoding bounds.
    pub fn advance(&self, step: &FinalityStep, slots_per_epoch: u64) -> Result<Anchor, StepError> {
        let invalid = |reason: String| Err(StepError::Invalid(reason));
        let final_checkpoint = step.proof.finalized;
        let (height, anchored) = (final_checkpoint.block.height, self.header.header().height);
        if height <= anchored || final_checkpoint.round <= self.round {
            return Err(StepError::Stale { height, anchored });
        }
        let Some(first) = step.proof.votes.first() else { return invalid("a proof with no votes".into()) };
        let (round, target) = (first.vote.round, first.vote.target);
        if round != final_checkpoint.round + 1 {
            return invalid(format!(
                "votes of round {round} cannot finalize round {}",
                final_checkpoint.round
            ));
        }
        if step.voters.len() != step.proof.votes.len() {
            return invalid(format!(
                "{} voter proofs for {} votes",
                step.voters.len(),
                step.proof.votes.len()
            ));
        }
        let mut seen = HashSet::with_capacity(step.proof.votes.len());
        for vote in &step.proof.votes {
            if vote.vote.round != round || vote.vote.source != final_checkpoint || vote.vote.target != target
            {
                return invalid(format!("{}'s vote is not for the proof's link", vote.voter));
            }
            if !seen.insert(vote.voter) {
                return invalid(format!("{} votes twice", vote.voter));
            }
        }
        check_named(&step.finalized, &final_checkpoint.block, "final")?;
        check_named(&step.target, &target, "target")?;
        if target.height < final_checkpoint.block.height {
            return invalid("the target is below its source".into());
        }
        let messages: Vec<Vec<u8>> =
            step.proof.votes.iter().map(|v| v.vote.signing_bytes(&self.genesis)).collect();
        let verdicts =
            crate::signature::verify_all(step.proof.votes.iter().zip(&messages).map(|(vote, message)| {
                crate::signature::SignedMessage {
                    key: vote.voter.as_bytes(),
                    message,
                    signature: &vote.signature,
                }
            }));
        if let Some((vote, _)) = step.proof.votes.iter().zip(&verdicts).find(|(_, ok)| !**ok) {
            return invalid(format!("{}'s vote is not signed for this chain", vote.voter));
        }

        let root = step.target.header().state_root;
        let records = step
            .proof
            .votes
            .iter()
            .zip(&step.voters)
            .map(|(vote, proof)| {
                crate::proof::verify_forger(&root, &vote.voter, &proof.record)
                    .map_err(|e| StepError::Invalid(format!("{}'s record: {e}", vote.voter)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let first_epoch = epoch_of(final_checkpoint.round, slots_per_epoch);
        let second_epoch = epoch_of(round, slots_per_epoch);
        let commitment = *self.roster(first_epoch).ok_or(StepError::UnknownRoster(first_epoch))?;
        let weigh = |commitment: &RosterCommitment, pick: fn(&VoterProof) -> Option<&RosterEntry>| {
            weigh(&step.proof.votes, &step.voters, &records, commitment, pick)
        };
        weigh(&commitment, |p| p.first.as_ref())?;

        // Two thirds of a trusted roster vouch for the target: its state's rosters are trusted.
        let (value, proof) = &step.rosters;
        verify_value(&root, rosters_key(), value.as_deref(), proof)
            .map_err(|e| StepError::Invalid(format!("the target's roster commitments: {e}")))?;
        let bytes =
            value.as_deref().ok_or_else(|| StepError::Invalid("the target's state has no rosters".into()))?;
        let learnt = crate::codec::decode_rosters(bytes)
            .map_err(|e| StepError::Invalid(format!("the target's roster commitments: {e}")))?
            .commitments;
        let mut rosters = self.rosters.clone();
        for commitment in learnt {
            match rosters.iter().find(|c| c.epoch == commitment.epoch) {
                Some(known) if *known != commitment => {
                    return invalid(format!(
                        "the target's state commits to another roster for epoch {}",
                        commitment.epoch
                    ));
                }
                Some(_) => {}
                None => rosters.push(commitment),
            }
        }
        rosters.sort_by_key(|c| c.epoch);
        if second_epoch != first_epoch {
            let commitment = *rosters
                .iter()
                .find(|c| c.epoch == second_epoch)
                .ok_or(StepError::UnknownRoster(second_epoch))?;
            weigh(&commitment, |p| p.second.as_ref())?;
        } else if step.voters.iter().any(|p| p.second.is_some()) {
            return invalid("an entry for a second epoch the proof does not span".into());
        }
        let excess = rosters.len().saturating_sub(MAX_ANCHOR_ROSTERS);
        rosters.drain(..excess);
        Ok(Anchor {
            genesis: self.genesis,
            round: final_checkpoint.round,
            header: step.finalized.clone(),
            rosters,
        })
    }

    /// The wire form (what a light peer keeps on disk).
    pub fn to_wire(&self) -> wire::LightAnchor {
        wire::LightAnchor {
            genesis: Bytes::copy_from_slice(self.genesis.as_bytes()),
            round: self.round,
            header: Some(self.header.to_wire()),
            rosters: self.rosters.iter().map(crate::codec::roster_commitment_to_wire).collect(),
        }
    }

    /// An anchor from its wire form: shape only (it was verified before it was written).
    pub fn from_wire(anchor: wire::LightAnchor) -> Result<Anchor, DecodeError> {
        const WHAT: &str = "LightAnchor";
        if anchor.rosters.len() > MAX_ANCHOR_ROSTERS {
            return Err(DecodeError::TooMany {
                what: WHAT,
                field: "rosters",
                count: anchor.rosters.len(),
                limit: MAX_ANCHOR_ROSTERS,
            });
        }
        let header = anchor.header.ok_or(DecodeError::Missing { what: WHAT, field: "header" })?;
        Ok(Anchor {
            genesis: Hash(crate::codec::fixed(WHAT, "genesis", &anchor.genesis)?),
            round: anchor.round,
            header: SealedHeader::from_wire(header)?,
            rosters: anchor
                .rosters
                .iter()
                .map(|c| crate::codec::roster_commitment_from_wire(WHAT, c))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Checks that `header` is the block the votes name as `what`.
fn check_named(header: &SealedHeader, named: &BlockId, what: &str) -> Result<(), StepError> {
    if header.hash() != named.hash || header.header().height != named.height {
        return Err(StepError::Invalid(format!("the {what} header is not the block the votes name")));
    }
    Ok(())
}

/// Checks each voter's entry (picked by `pick`) on the roster `commitment` commits to, and that
/// the voters whose records let them sign in its epoch hold two thirds of its weight.
fn weigh(
    votes: &[SignedVote],
    proofs: &[VoterProof],
    records: &[Option<crate::state::ForgerState>],
    commitment: &RosterCommitment,
    pick: fn(&VoterProof) -> Option<&RosterEntry>,
) -> Result<(), StepError> {
    let mut support: u128 = 0;
    for ((vote, proof), record) in votes.iter().zip(proofs).zip(records) {
        let Some(entry) = pick(proof) else { continue };
        entry.verify(&vote.voter, commitment).map_err(|e| {
            StepError::Invalid(format!("{}'s roster entry for epoch {}: {e}", vote.voter, commitment.epoch))
        })?;
        if record.as_ref().is_some_and(|r| r.signs_in(commitment.epoch)) {
            support = support.saturating_add(entry.end - entry.start);
        }
    }
    let total = commitment.total_weight;
    if total == 0 || support.saturating_mul(3) < total.saturating_mul(2) {
        return Err(StepError::Short { epoch: commitment.epoch, support, total });
    }
    Ok(())
}

impl FinalityStep {
    /// The wire form.
    pub fn to_wire(&self) -> wire::FinalityStep {
        let leaf = |(value, proof): &ProvenLeaf| wire::ProvenLeaf {
            value: value.as_deref().map(Bytes::copy_from_slice).unwrap_or_default(),
            proof: Bytes::copy_from_slice(proof),
        };
        wire::FinalityStep {
            proof: Some(self.proof.to_wire()),
            finalized: Some(self.finalized.to_wire()),
            target: Some(self.target.to_wire()),
            rosters: Some(leaf(&self.rosters)),
            voters: self
                .voters
                .iter()
                .map(|v| wire::VoterProof {
                    record: Some(leaf(&v.record)),
                    first: v.first.as_ref().map(RosterEntry::to_wire),
                    second: v.second.as_ref().map(RosterEntry::to_wire),
                })
                .collect(),
        }
    }

    /// A step from its wire form: every count bounded ([`MAX_PROOF_VOTES`] votes and voter
    /// proofs, roster paths), nothing verified.
    pub fn from_wire(step: &wire::FinalityStep) -> Result<FinalityStep, DecodeError> {
        const WHAT: &str = "FinalityStep";
        let missing = |field| DecodeError::Missing { what: WHAT, field };
        if step.voters.len() > MAX_PROOF_VOTES {
            return Err(DecodeError::TooMany {
                what: WHAT,
                field: "voters",
                count: step.voters.len(),
                limit: MAX_PROOF_VOTES,
            });
        }
        let leaf = |leaf: &wire::ProvenLeaf| -> ProvenLeaf {
            ((!leaf.value.is_empty()).then(|| leaf.value.to_vec()), leaf.proof.to_vec())
        };
        let header = |header: &Option<wire::SignedBlockHeader>, field| {
            SealedHeader::from_wire(header.clone().ok_or(missing(field))?)
        };
        Ok(FinalityStep {
            proof: FinalityProof::from_wire(step.proof.as_ref().ok_or(missing("proof"))?)?,
            finalized: header(&step.finalized, "finalized")?,
            target: header(&step.target, "target")?,
            rosters: leaf(step.rosters.as_ref().ok_or(missing("rosters"))?),
            voters: step
                .voters
                .iter()
                .map(|v| {
                    Ok(VoterProof {
                        record: leaf(v.record.as_ref().ok_or(missing("voters.record"))?),
                        first: v.first.as_ref().map(RosterEntry::from_wire).transpose()?,
                        second: v.second.as_ref().map(RosterEntry::from_wire).transpose()?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
        })
    }
}

#[cfg(feature = "node")]
mod serve;
#[cfg(test)]
mod tests;
