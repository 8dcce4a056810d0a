//! Finality: Casper FFG's rules, with a round per slot for FFG's epochs. Pure: no clock, no
//! I/O; the block tree and the rosters' weights are inputs ([`Ancestry`], [`Weights`]).
//!
//! In round `r` (slot `r`), each forger that may sign in `r`'s epoch signs one [`Vote`]: a
//! *target*, its chain's checkpoint for the round (the latest block of its chain from a slot
//! before `r`: one slot's time to spread, so honest forgers name the same block), and a *source*,
//! the latest justified checkpoint on that chain. For a round, a target that two thirds of the
//! weight (in the roster of every epoch from the source's round to `r`) name with the same
//! justified source is **justified in round `r`**. A checkpoint justified in round `r - 1` is
//! **final** once round `r` justifies a checkpoint from it; so are its ancestors.
//!
//! A forger breaks a rule by signing two different votes for one round, or a vote whose span of
//! rounds (source round to round) strictly surrounds another's. Two conflicting final blocks are
//! impossible unless forgers holding a third of some epoch's weight broke a rule, and the votes
//! that finalized them prove who ([`VoteEquivocation`]); docs/consensus.md gives the argument.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::lottery::epoch_of;
use crate::{Address, Hash, Keypair};

/// Domain tag of a vote's signing bytes.
const VOTE_DOMAIN: &[u8] = b"goodwill/vote/v1";

/// Rounds of votes kept above the last final one. A round older than this cannot justify
/// anything a newer round cannot (the newer round's votes name the latest justified source), so
/// while finality waits, memory stays bounded by this many rounds of one vote per forger.
pub const MAX_ROUNDS: u64 = 256;

/// Most votes kept as proof of what was justified below the open rounds ([`Finality::votes_since`]):
/// a node that was away replays them to learn, link by link, what became final while it was.
pub const MAX_LINK_VOTES: usize = 16_384;

/// A block, named by height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
}

/// A block justified in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checkpoint {
    /// The round it was justified in.
    pub round: u64,
    /// The block.
    pub block: BlockId,
}

/// What a forger signs in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The round (a slot).
    pub round: u64,
    /// The latest justified checkpoint on the voter's chain; `target` descends from it.
    pub source: Checkpoint,
    /// The voter's chain's checkpoint for the round: its latest block from an earlier slot.
    pub target: BlockId,
}

impl Vote {
    /// Exactly what a voter signs: the domain, the genesis hash (votes of one chain prove
    /// nothing on another), then the fields in order, integers big-endian.
    pub fn signing_bytes(&self, genesis: &Hash) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(VOTE_DOMAIN.len() + 1 + 32 + 8 * 4 + 32 * 2);
        bytes.extend_from_slice(VOTE_DOMAIN);
        bytes.push(0);
        bytes.extend_from_slice(genesis.as_bytes());
        bytes.extend_from_slice(&self.round.to_be_bytes());
        bytes.extend_from_slice(&self.source.round.to_be_bytes());
        bytes.extend_from_slice(&self.source.block.height.to_be_bytes());
        bytes.extend_from_slice(self.source.block.hash.as_bytes());
        bytes.extend_from_slice(&self.target.height.to_be_bytes());
        bytes.extend_from_slice(self.target.hash.as_bytes());
        bytes
    }

    /// This vote, signed by `key` for the chain whose genesis is `genesis`.
    pub fn sign(self, key: &Keypair, genesis: &Hash) -> SignedVote {
        SignedVote { vote: self, voter: key.address(), signature: key.sign(&self.signing_bytes(genesis)) }
    }

    /// Whether a voter that signed both this vote and `other` broke a rule: two different votes
    /// in one round, or one's span of rounds strictly inside the other's.
    pub fn conflicts_with(&self, other: &Vote) -> bool {
        (self.round == other.round && self != other) || surrounds(self, other) || surrounds(other, self)
    }

    /// Whether the vote is well formed: its source comes before it, and its target is not
    /// below its source.
    fn well_formed(&self) -> bool {
        self.source.round < self.round && self.target.height >= self.source.block.height
    }
}

/// Whether `outer`'s span of rounds strictly surrounds `inner`'s.
fn surrounds(outer: &Vote, inner: &Vote) -> bool {
    outer.source.round < inner.source.round && inner.round < outer.round
}

/// A vote and its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The forger's address (its public key).
    pub voter: Address,
    /// Its signature of [`Vote::signing_bytes`].
    pub signature: [u8; 64],
}

impl SignedVote {
    /// Whether the signature is the voter's, for this chain.
    pub fn verify(&self, genesis: &Hash) -> bool {
        crate::signature::verify(self.voter.as_bytes(), &self.vote.signing_bytes(genesis), &self.signature)
    }

    /// The vote's wire form.
    pub fn to_wire(&self) -> goodwill_proto::v1::SignedVote {
        let bytes = |b: &[u8]| bytes::Bytes::copy_from_slice(b);
        let vote = &self.vote;
        goodwill_proto::v1::SignedVote {
            round: vote.round,
            source_round: vote.source.round,
            source_height: vote.source.block.height,
            source_hash: bytes(vote.source.block.hash.as_bytes()),
            target_height: vote.target.height,
            target_hash: bytes(vote.target.hash.as_bytes()),
            voter: bytes(self.voter.as_bytes()),
            signature: bytes(&self.signature),
        }
    }

    /// A vote from its wire form (its signature is not checked here).
    pub fn from_wire(vote: &goodwill_proto::v1::SignedVote) -> Result<SignedVote, crate::codec::DecodeError> {
        use crate::codec::fixed;
        const WHAT: &str = "SignedVote";
        Ok(SignedVote {
            vote: Vote {
                round: vote.round,
                source: Checkpoint {
                    round: vote.source_round,
                    block: BlockId {
                        height: vote.source_height,
                        hash: Hash(fixed(WHAT, "source_hash", &vote.source_hash)?),
                    },
                },
                target: BlockId {
                    height: vote.target_height,
                    hash: Hash(fixed(WHAT, "target_hash", &vote.target_hash)?),
                },
            },
            voter: Address(fixed(WHAT, "voter", &vote.voter)?),
            signature: fixed(WHAT, "signature", &vote.signature)?,
        })
    }
}

/// Two votes one forger signed that break a rule together ([`Vote::conflicts_with`]): what a
/// report of it carries, and what makes it forfeit its tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteEquivocation {
    /// The vote seen first.
    pub first: SignedVote,
    /// The one that conflicts with it.
    pub second: SignedVote,
}

/// The block tree, as far as the caller knows it.
pub trait Ancestry {
    /// The hash of the block at `height` on the chain that ends in `block`: `block`'s own hash
    /// at its height, `None` above it or if the chain is not known that far.
    fn ancestor(&self, block: &BlockId, height: u64) -> Option<Hash>;
}

/// The voting weights: forgers' weights on each epoch's roster.
pub trait Weights {
    /// `voter`'s weight in `epoch`: its roster weight if it may sign in that epoch, else 0.
    fn weight(&self, epoch: u64, voter: &Address) -> u128;
    /// The total weight of `epoch`'s roster.
    fn total(&self, epoch: u64) -> u128;
}

/// Why a vote was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefused {
    /// Its round is at or below the last final one, or too old to matter.
    #[error("round {round} is at or below round {floor}, which nothing can change any more")]
    Stale {
        /// Its round.
        round: u64,
        /// The lowest round still counted, less one.
        floor: u64,
    },
    /// Its round has not come yet.
    #[error("round {round} has not begun (the current round is {current})")]
    FromTheFuture {
        /// Its round.
        round: u64,
        /// The current one.
        current: u64,
    },
    /// Its source is not before it, or its target is below its source.
    #[error("the vote's source does not come before its target")]
    Malformed,
    /// The voter holds no weight that may sign in the round's epoch.
    #[error("{0} holds no ticket that votes in this round")]
    NotAVoter(Address),
    /// The same vote was counted already.
    #[error("the vote is known")]
    Known,
    /// It conflicts with a vote of the same voter counted before: the two are evidence.
    #[error("{0} signed two conflicting votes")]
    Equivocation(Address),
}

/// What a batch of votes changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Checkpoints newly justified, by round.
    pub justified: Vec<Checkpoint>,
    /// The new last final checkpoint, if it moved.
    pub finalized: Option<Checkpoint>,
    /// Conflicting pairs found, each voter at most once.
    pub equivocations: Vec<VoteEquivocation>,
    /// A checkpoint that met the rule for finality but conflicts with the final one: proof that
    /// a third of the weight broke a rule (their votes are in `equivocations` of some node). It
    /// is not made final here.
    pub conflicting: Option<Checkpoint>,
    /// The proof of `finalized`.
    pub proof: Option<FinalityProof>,
}

/// Most votes a finality proof may carry: one per voter, two thirds of a roster being enough.
pub const MAX_PROOF_VOTES: usize = 4_096;

/// What shows a checkpoint final: the votes of the round after it that name it as their source
/// and justify that round's checkpoint, two thirds of the weight of every epoch they span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalityProof {
    /// The final checkpoint.
    pub finalized: Checkpoint,
    /// The votes.
    pub votes: Vec<SignedVote>,
}

impl FinalityProof {
    /// The proof's wire form.
    pub fn to_wire(&self) -> goodwill_proto::v1::FinalityProof {
        goodwill_proto::v1::FinalityProof {
            round: self.finalized.round,
            height: self.finalized.block.height,
            hash: bytes::Bytes::copy_from_slice(self.finalized.block.hash.as_bytes()),
            votes: self.votes.iter().map(SignedVote::to_wire).collect(),
        }
    }

    /// A proof from its wire form: at most [`MAX_PROOF_VOTES`] votes, each well formed (their
    /// signatures and weight are not checked here).
    pub fn from_wire(
        proof: &goodwill_proto::v1::FinalityProof,
    ) -> Result<FinalityProof, crate::codec::DecodeError> {
        if proof.votes.len() > MAX_PROOF_VOTES {
            return Err(crate::codec::DecodeError::TooMany {
                what: "FinalityProof",
                field: "votes",
                count: proof.votes.len(),
                limit: MAX_PROOF_VOTES,
            });
        }
        let hash = Hash(crate::codec::fixed("FinalityProof", "hash", &proof.hash)?);
        Ok(FinalityProof {
            finalized: Checkpoint { round: proof.round, block: BlockId { height: proof.height, hash } },
            votes: proof.votes.iter().map(SignedVote::from_wire).collect::<Result<_, _>>()?,
        })
    }
}

/// One node's view of finality: the votes of the rounds still open and what they justified.
#[derive(Debug, Clone)]
pub struct Finality {
    slots_per_epoch: u64,
    finalized: Checkpoint,
    /// Justified checkpoints at or above the final one's round, one per round.
    justified: BTreeMap<u64, Checkpoint>,
    /// Each open round's votes, one per voter.
    rounds: BTreeMap<u64, HashMap<Address, SignedVote>>,
    /// Voters whose conflicting votes were reported already.
    reported: HashSet<Address>,
    /// For rounds at or below the final one, the votes that justified the round's checkpoint
    /// (the proof a node that missed them replays), newest kept, at most [`MAX_LINK_VOTES`].
    links: BTreeMap<u64, Vec<SignedVote>>,
    link_votes: usize,
}

impl Finality {
    /// Finality on a chain whose genesis block is `genesis`: justified and final in round 0.
    pub fn new(genesis: Hash, slots_per_epoch: u64) -> Finality {
        let start = Checkpoint { round: 0, block: BlockId { height: 0, hash: genesis } };
        Finality::resume(start, slots_per_epoch)
    }

    /// Finality resumed from a checkpoint known to be final (stored with its proof).
    pub fn resume(finalized: Checkpoint, slots_per_epoch: u64) -> Finality {
        Finality {
            slots_per_epoch: slots_per_epoch.max(1),
            finalized,
            justified: BTreeMap::from([(finalized.round, finalized)]),
            rounds: BTreeMap::new(),
            reported: HashSet::new(),
            links: BTreeMap::new(),
            link_votes: 0,
        }
    }

    /// The last final checkpoint.
    pub fn finalized(&self) -> Checkpoint {
        self.finalized
    }

    /// The checkpoint justified in `round`, if any (rounds below the final one are forgotten).
    pub fn justified_in(&self, round: u64) -> Option<Checkpoint> {
        self.justified.get(&round).copied()
    }

    /// The votes held for rounds after `round`, oldest round first, at most `limit`: what a node
    /// that was away needs to learn what was justified since its last final round. Below the
    /// open rounds these are the votes that justified each round's checkpoint (as far back as
    /// they are kept); then every vote of the open rounds.
    pub fn votes_since(&self, round: u64, limit: usize) -> Vec<SignedVote> {
        let after = round.saturating_add(1);
        // A round still open gives all its votes; one closed (forgotten while finality waited,
        // or below the final round) gives those that justified it, if any.
        let mut closed =
            self.links.range(after..).filter(|(round, _)| !self.rounds.contains_key(round)).peekable();
        let mut open = self.rounds.range(after..).peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let closed_next = closed.peek().map(|(round, _)| **round);
            let open_next = open.peek().map(|(round, _)| **round);
            match (closed_next, open_next) {
                (Some(c), o) if o.is_none_or(|o| c < o) => {
                    let (_, votes) = closed.next().expect("peeked");
                    out.extend(votes.iter().copied());
                }
                (_, Some(_)) => {
                    let (_, votes) = open.next().expect("peeked");
                    let mut votes: Vec<SignedVote> = votes.values().copied().collect();
                    votes.sort_unstable_by_key(|v| v.voter);
                    out.extend(votes);
                }
                (_, None) => break,
            }
        }
        out.truncate(limit);
        out
    }

    /// Counts every open round again: blocks that were unknown when their votes arrived (a
    /// branch downloaded since) may now be justified by them.
    pub fn recount(&mut self, weights: &impl Weights, tree: &impl Ancestry) -> Progress {
        let mut progress = Progress::default();
        if let Some(from) = self.rounds.keys().next().copied() {
            self.count_from(from, weights, tree, &mut progress);
        }
        progress
    }

    /// Whether `source` is a justified checkpoint here (or below the last final one, where
    /// nothing is remembered).
    pub fn knows_source(&self, source: &Checkpoint) -> bool {
        source.round <= self.finalized.round || self.justified.get(&source.round) == Some(source)
    }

    /// The latest justified checkpoint on the chain that ends in `head`: what an honest voter
    /// names as its source.
    pub fn source_for(&self, head: &BlockId, tree: &impl Ancestry) -> Checkpoint {
        self.justified
            .values()
            .rev()
            .find(|c| tree.ancestor(head, c.block.height) == Some(c.block.hash))
            .copied()
            .unwrap_or(self.finalized)
    }

    /// Counts `votes` (their signatures checked by the caller) in `current_round`, and returns
    /// what became justified or final, and the conflicting pairs found; a refused vote changes
    /// nothing (`refused` gets the reason for each, in order).
    pub fn add_votes(
        &mut self,
        votes: impl IntoIterator<Item = SignedVote>,
        current_round: u64,
        weights: &impl Weights,
        tree: &impl Ancestry,
        refused: &mut Vec<(SignedVote, VoteRefused)>,
    ) -> Progress {
        let mut progress = Progress::default();
        let mut lowest_touched = None;
        for vote in votes {
            match self.take(vote, current_round, weights) {
                Ok(()) => {
                    lowest_touched =
                        Some(lowest_touched.map_or(vote.vote.round, |r: u64| r.min(vote.vote.round)))
                }
                Err((reason, evidence)) => {
                    if let Some(evidence) = evidence {
                        progress.equivocations.push(*evidence);
                    }
                    refused.push((vote, reason));
                }
            }
        }
        if let Some(from) = lowest_touched {
            self.count_from(from, weights, tree, &mut progress);
        }
        self.forget_below(self.finalized.round.max(current_round.saturating_sub(MAX_ROUNDS)));
        progress
    }

    /// Counts votes a peer sent to bring this node up to date ([`Finality::votes_since`]), which
    /// may span more rounds than are kept open: oldest first, in windows of half
    /// [`MAX_ROUNDS`], each counted as if its newest round were the current one (never later
    /// than `current_round`). Old votes can justify nothing without two thirds of real
    /// signatures; this only lets a node that was away follow the links it missed.
    pub fn catch_up(
        &mut self,
        mut votes: Vec<SignedVote>,
        current_round: u64,
        weights: &impl Weights,
        tree: &impl Ancestry,
        refused: &mut Vec<(SignedVote, VoteRefused)>,
    ) -> Progress {
        votes.sort_by_key(|v| v.vote.round);
        let mut progress = Progress::default();
        let mut rest = votes.as_slice();
        while let Some(first) = rest.first() {
            let end = first.vote.round.saturating_add(MAX_ROUNDS / 2);
            let split = rest.partition_point(|v| v.vote.round < end);
            let (window, later) = rest.split_at(split);
            rest = later;
            let newest = window.last().map_or(0, |v| v.vote.round);
            let step =
                self.add_votes(window.iter().copied(), newest.min(current_round), weights, tree, refused);
            progress.justified.extend(step.justified);
            if step.finalized.is_some() {
                progress.finalized = step.finalized;
                progress.proof = step.proof;
            }
            progress.equivocations.extend(step.equivocations);
            progress.conflicting = step.conflicting.or(progress.conflicting);
        }
        progress
    }

    /// Forgets the votes of rounds at or below `floor`, which no longer count, and the
    /// checkpoints justified there except the final one and the latest (the source voters
    /// name): while finality waits, memory stays bounded by [`MAX_ROUNDS`] rounds.
    fn forget_below(&mut self, floor: u64) {
        self.rounds = self.rounds.split_off(&floor.saturating_add(1));
        self.trim_links();
        let keep = (self.finalized.round, self.justified.keys().next_back().copied());
        self.justified.retain(|round, _| *round > floor || *round == keep.0 || Some(*round) == keep.1);
    }

    /// Checks one vote against the rules and this voter's other votes, and keeps it.
    fn take(
        &mut self,
        signed: SignedVote,
        current_round: u64,
        weights: &impl Weights,
    ) -> Result<(), (VoteRefused, Option<Box<VoteEquivocation>>)> {
        let vote = signed.vote;
        let floor = self.finalized.round.max(current_round.saturating_sub(MAX_ROUNDS));
        if vote.round <= floor {
            return Err((VoteRefused::Stale { round: vote.round, floor }, None));
        }
        // One round of drift: a voter whose clock is a little ahead is not refused.
        if vote.round > current_round.saturating_add(1) {
            return Err((VoteRefused::FromTheFuture { round: vote.round, current: current_round }, None));
        }
        if !vote.well_formed() {
            return Err((VoteRefused::Malformed, None));
        }
        if weights.weight(epoch_of(vote.round, self.slots_per_epoch), &signed.voter) == 0 {
            return Err((VoteRefused::NotAVoter(signed.voter), None));
        }
        // This voter's other votes in the open rounds: at most one per round, MAX_ROUNDS rounds.
        for votes in self.rounds.values() {
            let Some(earlier) = votes.get(&signed.voter) else { continue };
            if earlier.vote == vote {
                return Err((VoteRefused::Known, None));
            }
            if earlier.vote.conflicts_with(&vote) {
                let evidence = self
                    .reported
                    .insert(signed.voter)
                    .then(|| Box::new(VoteEquivocation { first: *earlier, second: signed }));
                return Err((VoteRefused::Equivocation(signed.voter), evidence));
            }
        }
        self.rounds.entry(vote.round).or_default().insert(signed.voter, signed);
        Ok(())
    }

    /// Recounts every open round from `from` up, in order: a checkpoint justified in one round
    /// may be the source of a later round's votes.
    fn count_from(
        &mut self,
        from: u64,
        weights: &impl Weights,
        tree: &impl Ancestry,
        progress: &mut Progress,
    ) {
        let rounds: Vec<u64> = self.rounds.range(from..).map(|(round, _)| *round).collect();
        for round in rounds {
            if self.justified.contains_key(&round) {
                continue;
            }
            let Some(votes) = self.rounds.get(&round) else { continue };
            // A cheap bound first: without two thirds of the round's epoch behind justified
            // sources, nothing in the round can be justified (no block is looked up).
            let epoch = epoch_of(round, self.slots_per_epoch);
            let backed: u128 = votes
                .values()
                .filter(|v| self.justified.get(&v.vote.source.round) == Some(&v.vote.source))
                .map(|v| weights.weight(epoch, &v.voter))
                .sum();
            if backed.saturating_mul(3) < weights.total(epoch).saturating_mul(2) {
                continue;
            }
            // One justified target per round: two would need a third of the weight to vote twice.
            let mut links: HashMap<(Checkpoint, BlockId), Vec<&SignedVote>> = HashMap::new();
            for vote in votes.values() {
                if self.justified.get(&vote.vote.source.round) == Some(&vote.vote.source) {
                    links.entry((vote.vote.source, vote.vote.target)).or_default().push(vote);
                }
            }
            let mut candidates: Vec<_> = links.into_iter().collect();
            candidates.sort_unstable_by_key(|((source, target), _)| std::cmp::Reverse((*source, *target)));
            let found = candidates
                .into_iter()
                .find(|((source, target), voters)| {
                    tree.ancestor(target, source.block.height) == Some(source.block.hash)
                        && self.supermajority(source.round, round, voters, weights)
                })
                .map(|((source, target), voters)| {
                    let proof: Vec<SignedVote> = voters.into_iter().copied().collect();
                    (source, Checkpoint { round, block: target }, proof)
                });
            let Some((source, checkpoint, proof)) = found else { continue };
            self.link_votes += proof.len();
            self.links.insert(round, proof);
            self.justified.insert(round, checkpoint);
            progress.justified.push(checkpoint);
            if source.round + 1 == round && source.round > self.finalized.round {
                if tree.ancestor(&source.block, self.finalized.block.height)
                    == Some(self.finalized.block.hash)
                {
                    self.finalize(source);
                    progress.finalized = Some(source);
                    let votes = self.links.get(&round).cloned().unwrap_or_default();
                    progress.proof = Some(FinalityProof { finalized: source, votes });
                } else {
                    progress.conflicting = Some(source);
                }
            }
        }
    }

    /// Makes `checkpoint` the last final one and forgets what lies below it.
    fn finalize(&mut self, checkpoint: Checkpoint) {
        self.finalized = checkpoint;
        self.justified = self.justified.split_off(&checkpoint.round);
        self.rounds = self.rounds.split_off(&(checkpoint.round + 1));
        self.trim_links();
        // A voter reported once is reported again only for votes still open.
        let open: HashSet<Address> = self.rounds.values().flat_map(|votes| votes.keys().copied()).collect();
        self.reported.retain(|voter| open.contains(voter));
    }

    /// Keeps the proofs of justification within [`MAX_LINK_VOTES`], dropping the oldest first,
    /// and those of rounds the justified map no longer holds above the final one.
    fn trim_links(&mut self) {
        let (finalized, justified) = (self.finalized.round, &self.justified);
        let mut dropped = 0;
        self.links.retain(|round, votes| {
            let keep = *round <= finalized || justified.contains_key(round);
            if !keep {
                dropped += votes.len();
            }
            keep
        });
        self.link_votes -= dropped;
        while self.link_votes > MAX_LINK_VOTES {
            let Some((_, votes)) = self.links.pop_first() else { break };
            self.link_votes -= votes.len();
        }
    }

    /// Whether `voters` hold two thirds of the weight of every epoch from `from_round`'s to
    /// `round`'s: counting every epoch a link spans keeps two links that meet on a common roster,
    /// however the rosters change.
    fn supermajority(
        &self,
        from_round: u64,
        round: u64,
        voters: &[&SignedVote],
        weights: &impl Weights,
    ) -> bool {
        let epochs = epoch_of(from_round, self.slots_per_epoch)..=epoch_of(round, self.slots_per_epoch);
        epochs.into_iter().all(|epoch| {
            let total = weights.total(epoch);
            let support: u128 = voters.iter().map(|v| weights.weight(epoch, &v.voter)).sum();
            total > 0 && support.saturating_mul(3) >= total.saturating_mul(2)
        })
    }
}

#[cfg(test)]
mod tests;
