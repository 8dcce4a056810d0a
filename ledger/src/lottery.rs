//! The forger lottery and the fork-choice rule. Pure: no clock, no I/O, no state store.
//!
//! For every slot, a deterministic function of (epoch seed, slot, roster) ranks who may sign:
//! ranks `0..fallback_ranks` are drawn with probability proportional to ticket weight; the last
//! rank, `fallback_ranks`, is open to every forger on the roster. A block of rank `r` may only be
//! stamped from `r / (fallback_ranks + 1)` of the way into its slot, so the primary forger has the
//! first window, the secondary the next, and if every drawn forger is absent, anyone with a
//! ticket fills the slot: the chain cannot stall while one forger is online. docs/consensus.md
//! gives the reasoning.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use rs_merkle::{MerkleProof, MerkleTree};

use crate::hash::ListHasher;
use crate::state::RosterCommitment;
use crate::{Address, Amount, Hash};

/// Domain tag of a lottery draw.
const DRAW_DOMAIN: &[u8] = b"goodwill/lottery/v1";
/// Domain tag of an epoch seed.
const SEED_DOMAIN: &[u8] = b"goodwill/epoch-seed/v1";
/// Domain tag of the running mix of reveals.
const MIX_DOMAIN: &[u8] = b"goodwill/reveal-mix/v1";
/// Domain tag of a reveal commitment.
const REVEAL_DOMAIN: &[u8] = b"goodwill/reveal/v1";
/// Domain tag of a leaf of a roster's Merkle tree.
const ROSTER_LEAF_DOMAIN: &[u8] = b"goodwill/roster-leaf/v1";

/// Most hashes a roster path may hold: the tree of the largest roster there can be (2^64
/// forgers) is 64 levels deep.
pub const MAX_ROSTER_PATH: usize = 64;

/// Share of the active ticket weight whose votes make an association eligible, in percent.
pub const ELIGIBILITY_PERCENT: u128 = 75;
/// A ticket bought in epoch `e` is active from epoch `e + ACTIVATION_DELAY_EPOCHS`: the seed of
/// that epoch is mixed from reveals made after the purchase, so a buyer cannot know when it will
/// win.
pub const ACTIVATION_DELAY_EPOCHS: u64 = 2;

/// The commitment to a reveal secret.
pub fn reveal_commitment(secret: &Hash) -> Hash {
    Hash::tagged(REVEAL_DOMAIN, secret.as_bytes())
}

/// Whether blocks of `epoch` may be signed at drawn ranks on a state whose last block is of
/// `last_epoch`: the state holds `epoch`'s roster commitment (written by the first block of
/// the epoch before) only if the chain has a block in `epoch - 1` or `epoch` itself. After a
/// whole epoch without blocks, the first block is signed at the open rank.
pub fn drawn_ranks_open(last_epoch: u64, epoch: u64) -> bool {
    epoch <= last_epoch.saturating_add(1)
}

/// The forgers holding active tickets in an epoch, with their total weight, sorted by address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    forgers: Vec<Address>,
    /// `cumulative[i]` is the total weight of `forgers[..=i]`.
    cumulative: Vec<u128>,
    /// Its Merkle tree, built the first time a commitment or a path is asked for.
    tree: LazyTree,
}

/// A roster's Merkle tree, built once; rosters compare and print without it.
#[derive(Clone, Default)]
struct LazyTree(OnceLock<MerkleTree<ListHasher>>);

impl PartialEq for LazyTree {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LazyTree {}

impl std::fmt::Debug for LazyTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "built" } else { "not built" })
    }
}

/// One forger's interval of cumulative weight on a committed roster, with the Merkle path
/// that proves it: what a peer that keeps no state needs to check one draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// Its leaf's position (forgers sorted by address).
    pub index: u64,
    /// Where its interval starts.
    pub start: u128,
    /// Where it ends (exclusive).
    pub end: u128,
    /// The sibling hashes from the leaf up, at most [`MAX_ROSTER_PATH`].
    pub path: Vec<Hash>,
}

impl RosterEntry {
    /// The wire form.
    pub fn to_wire(&self) -> goodwill_proto::v1::RosterEntry {
        let bytes = |b: &[u8]| bytes::Bytes::copy_from_slice(b);
        goodwill_proto::v1::RosterEntry {
            index: self.index,
            start: bytes(&self.start.to_be_bytes()),
            end: bytes(&self.end.to_be_bytes()),
            path: self.path.iter().map(|h| bytes(h.as_bytes())).collect(),
        }
    }

    /// An entry from its wire form: at most [`MAX_ROSTER_PATH`] hashes, each 32 bytes, and
    /// weights of 16 bytes (whether it holds is [`RosterEntry::verify`]'s question).
    pub fn from_wire(
        entry: &goodwill_proto::v1::RosterEntry,
    ) -> Result<RosterEntry, crate::codec::DecodeError> {
        use crate::codec::{DecodeError, fixed};
        const WHAT: &str = "RosterEntry";
        if entry.path.len() > MAX_ROSTER_PATH {
            return Err(DecodeError::TooMany {
                what: WHAT,
                field: "path",
                count: entry.path.len(),
                limit: MAX_ROSTER_PATH,
            });
        }
        Ok(RosterEntry {
            index: entry.index,
            start: u128::from_be_bytes(fixed(WHAT, "start", &entry.start)?),
            end: u128::from_be_bytes(fixed(WHAT, "end", &entry.end)?),
            path: entry.path.iter().map(|h| fixed(WHAT, "path", h).map(Hash)).collect::<Result<_, _>>()?,
        })
    }

    /// Checks that this is `forger`'s entry on the roster `commitment` commits to.
    pub fn verify(&self, forger: &Address, commitment: &RosterCommitment) -> Result<(), String> {
        if self.index >= commitment.forgers {
            return Err(format!("leaf {} of a roster of {}", self.index, commitment.forgers));
        }
        if self.start >= self.end || self.end > commitment.total_weight {
            return Err(format!(
                "the interval [{}, {}) does not fit a roster of weight {}",
                self.start, self.end, commitment.total_weight
            ));
        }
        if self.path.len() > MAX_ROSTER_PATH {
            return Err(format!("a path of {} hashes", self.path.len()));
        }
        let (Ok(index), Ok(leaves)) = (usize::try_from(self.index), usize::try_from(commitment.forgers))
        else {
            return Err("a roster larger than this machine can address".into());
        };
        let leaf = roster_leaf(forger, self.start, self.end);
        let proof = MerkleProof::<ListHasher>::new(self.path.iter().map(|h| h.0).collect());
        if !proof.verify(commitment.root.0, &[index], &[leaf], leaves) {
            return Err("the path does not lead to the roster's root".into());
        }
        Ok(())
    }

    /// Whether the draw for `slot` at `rank` with `seed`, on a roster of `total_weight`, falls
    /// in this interval.
    pub fn wins(&self, seed: &Hash, slot: u64, rank: u32, total_weight: u128) -> bool {
        draw_point(seed, slot, rank, total_weight)
            .is_some_and(|point| (self.start..self.end).contains(&point))
    }
}

/// A roster leaf: the forger and its interval of cumulative weight.
fn roster_leaf(forger: &Address, start: u128, end: u128) -> [u8; 32] {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(forger.as_bytes());
    data[32..48].copy_from_slice(&start.to_be_bytes());
    data[48..].copy_from_slice(&end.to_be_bytes());
    Hash::tagged(ROSTER_LEAF_DOMAIN, &data).0
}

/// The point the draw for `slot` at `rank` lands on in `[0, total_weight)`; `None` if no one
/// holds weight.
fn draw_point(seed: &Hash, slot: u64, rank: u32, total_weight: u128) -> Option<u128> {
    if total_weight == 0 {
        return None;
    }
    let mut input = [0u8; 44];
    input[..32].copy_from_slice(seed.as_bytes());
    input[32..40].copy_from_slice(&slot.to_be_bytes());
    input[40..].copy_from_slice(&rank.to_be_bytes());
    let digest = Hash::tagged(DRAW_DOMAIN, &input);
    let mut high = [0u8; 16];
    high.copy_from_slice(&digest.0[..16]);
    // Total weight is below 2^72 for any realistic supply, so the modulo bias of a 128-bit
    // draw is below 2^-56.
    Some(u128::from_be_bytes(high) % total_weight)
}

impl Roster {
    /// Builds a roster from tickets; a forger's tickets add up, zero weights are dropped.
    pub fn new(tickets: impl IntoIterator<Item = (Address, Amount)>) -> Roster {
        let mut weights: BTreeMap<Address, u128> = BTreeMap::new();
        for (forger, weight) in tickets {
            if weight.0 > 0 {
                *weights.entry(forger).or_default() += u128::from(weight.0);
            }
        }
        let mut total = 0u128;
        let (forgers, cumulative) = weights
            .into_iter()
            .map(|(forger, weight)| {
                total += weight;
                (forger, total)
            })
            .unzip();
        Roster { forgers, cumulative, tree: LazyTree::default() }
    }

    /// The interval of cumulative weight of forger `i`.
    fn interval(&self, i: usize) -> (u128, u128) {
        (if i == 0 { 0 } else { self.cumulative[i - 1] }, self.cumulative[i])
    }

    fn tree(&self) -> &MerkleTree<ListHasher> {
        self.tree.0.get_or_init(|| {
            let leaves: Vec<[u8; 32]> = (0..self.forgers.len())
                .map(|i| {
                    let (start, end) = self.interval(i);
                    roster_leaf(&self.forgers[i], start, end)
                })
                .collect();
            MerkleTree::from_leaves(&leaves)
        })
    }

    /// What the state commits to about this roster as `epoch`'s.
    pub fn commitment(&self, epoch: u64) -> RosterCommitment {
        RosterCommitment {
            epoch,
            total_weight: self.total_weight(),
            forgers: self.forgers.len() as u64,
            root: self.tree().root().map_or(Hash::ZERO, Hash),
        }
    }

    /// `forger`'s entry and its path, if it holds weight.
    pub fn entry(&self, forger: &Address) -> Option<RosterEntry> {
        let i = self.forgers.binary_search(forger).ok()?;
        let (start, end) = self.interval(i);
        let path = self.tree().proof(&[i]).proof_hashes().iter().map(|h| Hash(*h)).collect();
        Some(RosterEntry { index: i as u64, start, end, path })
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u128 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// A forger's weight (0 if absent).
    pub fn weight(&self, forger: &Address) -> u128 {
        self.forgers.binary_search(forger).map_or(0, |i| self.weight_at(i))
    }

    /// Whether `forger` holds weight.
    pub fn contains(&self, forger: &Address) -> bool {
        self.forgers.binary_search(forger).is_ok()
    }

    /// Number of forgers.
    pub fn len(&self) -> usize {
        self.forgers.len()
    }

    /// Whether no one holds weight.
    pub fn is_empty(&self) -> bool {
        self.forgers.is_empty()
    }

    /// The forgers and their weights.
    pub fn iter(&self) -> impl Iterator<Item = (Address, u128)> + '_ {
        self.forgers.iter().enumerate().map(|(i, f)| (*f, self.weight_at(i)))
    }

    fn weight_at(&self, i: usize) -> u128 {
        let (start, end) = self.interval(i);
        end - start
    }

    /// The forger drawn at `rank` for `slot`: a point drawn uniformly in `[0, total weight)`
    /// falls in one forger's interval, so the chance is exactly weight / total, and splitting a
    /// weight across several keys changes nothing.
    pub fn draw(&self, seed: &Hash, slot: u64, rank: u32) -> Option<Address> {
        let point = draw_point(seed, slot, rank, self.total_weight())?;
        let index = self.cumulative.partition_point(|&c| c <= point);
        self.forgers.get(index).copied()
    }
}

/// The lottery of one epoch: its roster and seed, and how many drawn ranks precede the open one.
#[derive(Debug, Clone, Copy)]
pub struct Lottery<'a> {
    /// Who holds tickets this epoch.
    pub roster: &'a Roster,
    /// The epoch seed.
    pub seed: Hash,
    /// Number of drawn ranks; rank `fallback_ranks` is open to the whole roster.
    pub fallback_ranks: u32,
}

impl Lottery<'_> {
    /// The best rank at which `forger` may sign `slot`, or `None` if it holds no ticket.
    pub fn rank_of(&self, slot: u64, forger: &Address) -> Option<u32> {
        if !self.roster.contains(forger) {
            return None;
        }
        let drawn =
            (0..self.fallback_ranks).find(|&rank| self.roster.draw(&self.seed, slot, rank) == Some(*forger));
        Some(drawn.unwrap_or(self.fallback_ranks))
    }

    /// Whether `forger` may sign `slot` at `rank`.
    pub fn may_sign(&self, slot: u64, forger: &Address, rank: u32) -> bool {
        match rank.cmp(&self.fallback_ranks) {
            Ordering::Less => self.roster.draw(&self.seed, slot, rank) == Some(*forger),
            Ordering::Equal => self.roster.contains(forger),
            Ordering::Greater => false,
        }
    }
}

/// How far into its slot a block of `rank` may be stamped at the earliest.
pub fn rank_offset_ms(slot_duration_ms: u64, fallback_ranks: u32, rank: u32) -> u64 {
    slot_duration_ms * u64::from(rank) / (u64::from(fallback_ranks) + 1)
}

/// The epoch a slot belongs to.
pub fn epoch_of(slot: u64, slots_per_epoch: u64) -> u64 {
    slot / slots_per_epoch.max(1)
}

/// Folds a block's reveal into the running mix.
pub fn mix_reveal(mix: &Hash, reveal: &Hash) -> Hash {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(mix.as_bytes());
    input[32..].copy_from_slice(reveal.as_bytes());
    Hash::tagged(MIX_DOMAIN, &input)
}

/// The seed of `epoch`: the mix as the last block before the epoch left it, bound to the epoch
/// number so that epochs without blocks still get distinct seeds.
pub fn epoch_seed(epoch: u64, mix_before_epoch: &Hash) -> Hash {
    let mut input = [0u8; 40];
    input[..8].copy_from_slice(&epoch.to_be_bytes());
    input[8..].copy_from_slice(mix_before_epoch.as_bytes());
    Hash::tagged(SEED_DOMAIN, &input)
}

/// Deepest reorganisation a chain performs above its last final block: a fork from further
/// below the head is refused.
pub const MAX_REORG_DEPTH: u64 = 64;

/// What fork choice compares: more blocks win; then the chain whose blocks were forged at better
/// (lower) ranks in total; then the lower head hash, so every node breaks a full tie the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkChoiceKey {
    /// Head height.
    pub height: u64,
    /// Sum of the ranks of every block on the chain.
    pub rank_sum: u64,
    /// Head hash.
    pub head: Hash,
}

impl Ord for ForkChoiceKey {
    /// `Greater` is the better chain.
    fn cmp(&self, other: &Self) -> Ordering {
        self.height
            .cmp(&other.height)
            .then_with(|| other.rank_sum.cmp(&self.rank_sum))
            .then_with(|| other.head.cmp(&self.head))
    }
}

impl PartialOrd for ForkChoiceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(i: u8) -> Address {
        Address([i; 32])
    }

    #[test]
    fn roster_merges_and_orders_weights() {
        let roster = Roster::new([
            (address(3), Amount(5)),
            (address(1), Amount(2)),
            (address(3), Amount(1)),
            (address(2), Amount(0)),
        ]);
        assert_eq!(roster.len(), 2);
        assert_eq!(roster.total_weight(), 8);
        assert_eq!(roster.weight(&address(3)), 6);
        assert_eq!(roster.weight(&address(1)), 2);
        assert!(!roster.contains(&address(2)));
        assert_eq!(roster.draw(&Hash::ZERO, 1, 0).map(|a| roster.contains(&a)), Some(true));
        assert_eq!(Roster::new([]).draw(&Hash::ZERO, 1, 0), None);
    }

    #[test]
    fn every_roster_entry_proves_its_interval_and_no_other() {
        for size in 1..=9u8 {
            let roster = Roster::new((1..=size).map(|i| (address(i), Amount(u64::from(i) * 3))));
            let commitment = roster.commitment(7);
            assert_eq!(
                (commitment.forgers, commitment.total_weight),
                (u64::from(size), roster.total_weight())
            );
            for i in 1..=size {
                let entry = roster.entry(&address(i)).unwrap();
                assert_eq!(entry.end - entry.start, roster.weight(&address(i)));
                entry.verify(&address(i), &commitment).unwrap();
                // Another forger's claim to it, a moved interval, another position, or a path cut
                // short: refused.
                assert!(entry.verify(&address(i + 1), &commitment).is_err());
                let mut moved = entry.clone();
                moved.start += 1;
                assert!(moved.verify(&address(i), &commitment).is_err());
                if size > 1 {
                    let mut elsewhere = entry.clone();
                    elsewhere.index = (entry.index + 1) % u64::from(size);
                    assert!(elsewhere.verify(&address(i), &commitment).is_err());
                    let mut short = entry.clone();
                    short.path.pop();
                    assert!(short.verify(&address(i), &commitment).is_err());
                }
                let mut past = entry.clone();
                past.index = u64::from(size);
                assert!(past.verify(&address(i), &commitment).is_err());
            }
            // A draw lands in exactly the interval of the forger it picks.
            for slot in 0..20 {
                let winner = roster.draw(&Hash([3; 32]), slot, 0).unwrap();
                for i in 1..=size {
                    let wins = roster.entry(&address(i)).unwrap().wins(
                        &Hash([3; 32]),
                        slot,
                        0,
                        commitment.total_weight,
                    );
                    assert_eq!(wins, address(i) == winner);
                }
            }
        }
        assert!(Roster::new([]).entry(&address(1)).is_none());
        assert_eq!(Roster::new([]).commitment(0).root, Hash::ZERO);
    }

    #[test]
    fn a_forger_with_all_the_weight_wins_every_rank() {
        let roster = Roster::new([(address(1), Amount(10))]);
        let lottery = Lottery { roster: &roster, seed: Hash([9; 32]), fallback_ranks: 2 };
        for slot in 0..50 {
            assert_eq!(lottery.rank_of(slot, &address(1)), Some(0));
            assert!(lottery.may_sign(slot, &address(1), 0));
            assert!(lottery.may_sign(slot, &address(1), 2));
            assert!(!lottery.may_sign(slot, &address(1), 3));
            assert!(!lottery.may_sign(slot, &address(2), 2));
        }
    }

    #[test]
    fn fork_choice_prefers_length_then_ranks_then_lower_hash() {
        let key = |height, rank_sum, h: u8| ForkChoiceKey { height, rank_sum, head: Hash([h; 32]) };
        assert!(key(5, 9, 1) > key(4, 0, 1));
        assert!(key(5, 1, 9) > key(5, 2, 1));
        assert!(key(5, 1, 1) > key(5, 1, 2));
        assert_eq!(key(5, 1, 1).cmp(&key(5, 1, 1)), Ordering::Equal);
    }

    #[test]
    fn rank_windows_split_the_slot() {
        assert_eq!(rank_offset_ms(3_000, 2, 0), 0);
        assert_eq!(rank_offset_ms(3_000, 2, 1), 1_000);
        assert_eq!(rank_offset_ms(3_000, 2, 2), 2_000);
    }

    #[test]
    fn seeds_differ_per_epoch_and_mix() {
        let mix = mix_reveal(&Hash::ZERO, &Hash([1; 32]));
        assert_ne!(epoch_seed(1, &mix), epoch_seed(2, &mix));
        assert_ne!(epoch_seed(1, &mix), epoch_seed(1, &Hash::ZERO));
        assert_ne!(mix_reveal(&mix, &Hash([2; 32])), mix_reveal(&mix, &Hash([3; 32])));
    }
}
