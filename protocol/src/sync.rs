//! Range sync: which blocks to ask which peers for, and in what order to import them.
//!
//! Peers announce their head height (in the status exchange, and implicitly by the blocks they
//! gossip). When one is ahead, the node asks several peers at once for consecutive ranges of
//! [`BATCH`] blocks, at most [`MAX_PER_PEER`] ranges per peer and [`MAX_IN_FLIGHT`] in all,
//! never more than the in-flight window beyond the next block to import. Answers are buffered
//! and handed out in height order. A range a peer cannot serve (empty or short answer, failure,
//! disconnect) goes back to the queue for another peer, and the peer's claimed height is lowered
//! to what it proved it has; a request it leaves unanswered lowers its claim below that range.
//!
//! A claim is a number anyone can send. A node is *behind* (and its forger waits) only while a
//! peer that has served it blocks claims a taller chain: a stream of fresh identities claiming
//! far-ahead heights and then going silent makes the node ask them, never stop forging.
//!
//! This type does no I/O and reads no clock: the event loop sends the requests it plans, feeds it
//! the answers, and passes the time in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::time::Instant;

use goodwill_ledger::Block;
use libp2p::PeerId;

/// Blocks asked for in one request.
pub const BATCH: u32 = crate::message::MAX_RANGE_BLOCKS;
/// Requests in flight to one peer.
pub const MAX_PER_PEER: usize = 2;
/// Requests in flight in all.
pub const MAX_IN_FLIGHT: usize = 8;

/// Heights `start..start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first height.
    pub start: u64,
    /// How many heights.
    pub count: u32,
}

/// What sync is doing, for the log and the API.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Progress {
    /// Whether the node is catching up.
    pub syncing: bool,
    /// Whether a peer that has served this node blocks claims a head above its own: a block
    /// forged on this head would only start a fork. Claims of peers that served nothing do
    /// not count.
    pub behind: bool,
    /// The head's height.
    pub current: u64,
    /// The highest head a peer announced.
    pub target: u64,
    /// Blocks imported per second since this round of sync started.
    pub blocks_per_second: f64,
}

/// An answer that did not fit the request.
#[derive(Debug, thiserror::Error)]
#[error("the peer answered heights {start}.. with block {got} at position {index}")]
pub struct Misfit {
    start: u64,
    index: usize,
    got: u64,
}

struct InFlight {
    peer: PeerId,
    range: Range,
}

/// Range-sync planning. `R` identifies a request (libp2p's request id in the node).
pub struct SyncPlan<R> {
    /// Each peer's highest announced head.
    heights: HashMap<PeerId, u64>,
    in_flight: HashMap<R, InFlight>,
    /// Ranges to ask again, by start.
    retry: BTreeMap<u64, u32>,
    /// Answers waiting for the ranges before them, by start.
    buffered: BTreeMap<u64, (PeerId, Vec<Block>)>,
    /// The lowest height not yet planned.
    next_request: u64,
    /// The lowest height not yet handed out for import.
    next_import: u64,
    /// When this round started, and the head then.
    round: Option<(Instant, u64)>,
    /// After a rewind for a fork: heights up to this one are asked only of the peer whose
    /// branch it is (another peer would serve this node's own branch again).
    pinned: Option<(PeerId, u64)>,
    /// Peers that asked us to slow down, and until when they are left alone.
    resting: HashMap<PeerId, Instant>,
    /// Peers that answered a range with blocks: only their claims make this node behind.
    served: HashSet<PeerId>,
}

impl<R: Hash + Eq + Copy> Default for SyncPlan<R> {
    fn default() -> Self {
        SyncPlan {
            heights: HashMap::new(),
            in_flight: HashMap::new(),
            retry: BTreeMap::new(),
            buffered: BTreeMap::new(),
            next_request: 0,
            next_import: 0,
            round: None,
            pinned: None,
            resting: HashMap::new(),
            served: HashSet::new(),
        }
    }
}

impl<R: Hash + Eq + Copy> SyncPlan<R> {
    /// `peer` has a chain at least `height` high.
    pub fn observe(&mut self, peer: PeerId, height: u64) {
        let known = self.heights.entry(peer).or_insert(0);
        *known = (*known).max(height);
    }

    /// `peer` throttled us: ask it nothing more until `until`.
    pub fn rest(&mut self, peer: PeerId, until: Instant) {
        self.resting.insert(peer, until);
    }

    /// `peer` left: what it was asked goes to others.
    pub fn forget(&mut self, peer: &PeerId) {
        self.heights.remove(peer);
        self.resting.remove(peer);
        self.served.remove(peer);
        if self.pinned.is_some_and(|(p, _)| p == *peer) {
            self.pinned = None;
        }
        let lost: Vec<R> =
            self.in_flight.iter().filter(|(_, f)| f.peer == *peer).map(|(id, _)| *id).collect();
        for id in lost {
            if let Some(flight) = self.in_flight.remove(&id) {
                self.retry.insert(flight.range.start, flight.range.count);
            }
        }
    }

    /// The height `peer` announced, if it did.
    pub fn height_of(&self, peer: &PeerId) -> Option<u64> {
        self.heights.get(peer).copied()
    }

    /// The highest head any peer announced.
    pub fn target(&self) -> u64 {
        self.heights.values().copied().max().unwrap_or(0)
    }

    /// Whether a round of sync is under way.
    pub fn active(&self) -> bool {
        self.round.is_some()
    }

    /// Starts over from `height` (a fork was found below the planned ranges): answers to
    /// earlier requests are dropped when they arrive.
    pub fn restart_from(&mut self, height: u64) {
        self.pinned = None;
        self.in_flight.clear();
        self.retry.clear();
        self.buffered.clear();
        self.next_request = height;
        self.next_import = height;
    }

    /// Starts over from `height`, asking `peer` alone for the heights up to `until`: the
    /// branch of a fork it is on.
    pub fn rewind_to(&mut self, height: u64, peer: PeerId, until: u64) {
        self.restart_from(height);
        self.pinned = Some((peer, until));
    }

    /// Downloads `peer`'s branch, heights `from..=until`: a fork this node found deeper than
    /// a rewind reaches, or one no higher than its own chain (two halves of a partition meet
    /// with heads about as high). A round starts even if no peer claims a higher head, and lasts
    /// until the branch is handed out; the node's chain decides whether to take it.
    pub fn fetch_branch(&mut self, peer: PeerId, from: u64, until: u64, head: u64, now: Instant) {
        if self.round.is_none() {
            self.round = Some((now, head));
        }
        self.observe(peer, until);
        self.rewind_to(from, peer, until);
    }

    /// The requests to send now, given the head's height and the time: each is then reported
    /// with [`sent`].
    ///
    /// [`sent`]: SyncPlan::sent
    pub fn plan(&mut self, head: u64, now: Instant) -> Vec<(PeerId, Range)> {
        if self.round.is_none() {
            if self.target() <= head {
                return Vec::new();
            }
            self.round = Some((now, head));
            self.restart_from(head + 1);
        }
        // A branch being downloaded is fetched to its end even if it is no higher than the head.
        let branch_pending = self.pinned.is_some_and(|(_, until)| self.next_import <= until);
        let target = self.target().max(self.pinned.map_or(0, |(_, until)| until));
        if !branch_pending && head >= target && self.in_flight.is_empty() && self.buffered.is_empty() {
            self.round = None;
            return Vec::new();
        }
        self.resting.retain(|_, until| *until > now);
        let window_end = self.next_import + (MAX_IN_FLIGHT as u64) * u64::from(BATCH);
        let mut load: HashMap<PeerId, usize> = HashMap::new();
        for flight in self.in_flight.values() {
            *load.entry(flight.peer).or_default() += 1;
        }
        let mut planned = Vec::new();
        while self.in_flight.len() + planned.len() < MAX_IN_FLIGHT {
            let range = match self.retry.first_key_value() {
                Some((start, count)) => Range { start: *start, count: *count },
                None if self.next_request <= target && self.next_request < window_end => {
                    let count = BATCH.min((target - self.next_request + 1).min(u64::from(BATCH)) as u32);
                    Range { start: self.next_request, count }
                }
                None => break,
            };
            // The least loaded peer that has the range's first block.
            let peer = self
                .heights
                .iter()
                .filter(|(peer, height)| {
                    let pinned_out =
                        self.pinned.is_some_and(|(p, until)| range.start <= until && p != **peer);
                    **height >= range.start
                        && !pinned_out
                        && !self.resting.contains_key(*peer)
                        && load.get(*peer).copied().unwrap_or(0) < MAX_PER_PEER
                })
                .min_by_key(|(peer, _)| (load.get(*peer).copied().unwrap_or(0), **peer))
                .map(|(peer, _)| *peer);
            let Some(peer) = peer else { break };
            if self.retry.remove(&range.start).is_none() {
                self.next_request += u64::from(range.count);
            }
            *load.entry(peer).or_default() += 1;
            planned.push((peer, range));
        }
        planned
    }

    /// A planned request went out as `id`.
    pub fn sent(&mut self, id: R, peer: PeerId, range: Range) {
        self.in_flight.insert(id, InFlight { peer, range });
    }

    /// The request `id` failed (the peer refused or throttled it): its range goes to another
    /// peer.
    pub fn failed(&mut self, id: &R) {
        if let Some(flight) = self.in_flight.remove(id) {
            self.retry.insert(flight.range.start, flight.range.count);
        }
    }

    /// The request `id` got no answer (it timed out, or the connection failed): its range goes
    /// to another peer, and the peer's claim counts no higher than below that range.
    pub fn unanswered(&mut self, id: &R) {
        if let Some(flight) = self.in_flight.remove(id) {
            if let Some(height) = self.heights.get_mut(&flight.peer) {
                *height = (*height).min(flight.range.start.saturating_sub(1));
            }
            self.retry.insert(flight.range.start, flight.range.count);
        }
    }

    /// The answer to `id`; returns the blocks now ready to import, in height order, each batch
    /// with the peer that sent it. An answer that does not fit its request is an error (and its
    /// range goes back to the queue).
    pub fn answered(&mut self, id: &R, blocks: Vec<Block>) -> Result<Vec<(PeerId, Vec<Block>)>, Misfit> {
        let Some(InFlight { peer, range }) = self.in_flight.remove(id) else {
            // An answer from before a restart.
            return Ok(Vec::new());
        };
        let misfit = blocks
            .iter()
            .enumerate()
            .find(|(i, b)| b.header().height != range.start + *i as u64)
            .map(|(index, b)| Misfit { start: range.start, index, got: b.header().height });
        if let Some(misfit) = misfit.or_else(|| {
            (blocks.len() > range.count as usize).then_some(Misfit {
                start: range.start,
                index: range.count as usize,
                got: range.start + u64::from(range.count),
            })
        }) {
            self.retry.insert(range.start, range.count);
            return Err(misfit);
        }
        let served = blocks.len() as u32;
        if served < range.count {
            // The peer has no more than this: lower its claim, and ask someone else for the rest.
            let has = (range.start + u64::from(served)).saturating_sub(1);
            if let Some(height) = self.heights.get_mut(&peer) {
                *height = (*height).min(has);
            }
            self.retry.insert(range.start + u64::from(served), range.count - served);
        }
        if served > 0 {
            self.served.insert(peer);
            self.buffered.insert(range.start, (peer, blocks));
        }
        let mut ready = Vec::new();
        while let Some((peer, blocks)) = self.buffered.remove(&self.next_import) {
            self.next_import += blocks.len() as u64;
            ready.push((peer, blocks));
        }
        Ok(ready)
    }

    /// What sync is doing, with the head at `head`, at `now`.
    pub fn progress(&self, head: u64, now: Instant) -> Progress {
        let target = self.target().max(head);
        let blocks_per_second = match self.round {
            Some((started, from)) => {
                let seconds = now.saturating_duration_since(started).as_secs_f64();
                if seconds > 0.0 { head.saturating_sub(from) as f64 / seconds } else { 0.0 }
            }
            None => 0.0,
        };
        let behind = self.round.is_some()
            && self.heights.iter().any(|(peer, height)| *height > head && self.served.contains(peer));
        Progress { syncing: self.round.is_some(), behind, current: head, target, blocks_per_second }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use goodwill_ledger::testkit::ChainGenerator;

    use super::*;

    /// The clock every test reads: plans are pure in the time they are given.
    fn start() -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now)
    }

    fn chain(blocks: usize) -> Vec<Block> {
        let mut generator = ChainGenerator::new(2, 7);
        (0..blocks).map(|_| generator.next_block(0)).collect()
    }

    fn slice(chain: &[Block], range: Range) -> Vec<Block> {
        chain
            .iter()
            .filter(|b| (range.start..range.start + u64::from(range.count)).contains(&b.header().height))
            .cloned()
            .collect()
    }

    #[test]
    fn ranges_spread_over_peers_and_come_out_in_order() {
        let n = u64::from(BATCH);
        let top = 4 * n + 44;
        let blocks = chain(top as usize);
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut plan = SyncPlan::<u32>::default();
        assert!(plan.plan(0, start()).is_empty(), "no peer is ahead");
        plan.observe(a, top);
        plan.observe(b, top);
        let requests = plan.plan(0, start());
        // Two peers, two requests each.
        assert_eq!(requests.len(), 2 * MAX_PER_PEER);
        assert_eq!(requests.iter().filter(|(p, _)| *p == a).count(), MAX_PER_PEER);
        let starts: Vec<u64> = requests.iter().map(|(_, r)| r.start).collect();
        assert_eq!(starts, vec![1, 1 + n, 1 + 2 * n, 1 + 3 * n]);
        for (id, (peer, range)) in requests.iter().enumerate() {
            plan.sent(id as u32, *peer, *range);
        }
        // Answers out of order are held until the ranges before them arrive.
        assert!(plan.answered(&2, slice(&blocks, requests[2].1)).unwrap().is_empty());
        assert!(plan.answered(&1, slice(&blocks, requests[1].1)).unwrap().is_empty());
        let ready = plan.answered(&0, slice(&blocks, requests[0].1)).unwrap();
        let heights: Vec<u64> = ready.iter().flat_map(|(_, b)| b.iter().map(|b| b.header().height)).collect();
        assert_eq!(heights, (1..=3 * n).collect::<Vec<_>>());
        assert!(plan.progress(3 * n, start()).syncing);
        // The rest: the last 44 blocks are a short last range.
        let more = plan.plan(3 * n, start());
        assert_eq!(more.iter().map(|(_, r)| (r.start, r.count)).collect::<Vec<_>>(), vec![(4 * n + 1, 44)]);
    }

    #[test]
    fn a_peer_that_cannot_serve_loses_its_claim_and_its_range_goes_elsewhere() {
        let blocks = chain(100);
        let (liar, honest) = (PeerId::random(), PeerId::random());
        let mut plan = SyncPlan::<u32>::default();
        plan.observe(liar, 1_000);
        let first = plan.plan(0, start());
        assert_eq!(first.len(), MAX_PER_PEER, "only the liar claims anything");
        for (id, (peer, range)) in first.iter().enumerate() {
            plan.sent(id as u32, *peer, *range);
        }
        // An empty answer: the liar has nothing past the head.
        assert!(plan.answered(&0, Vec::new()).unwrap().is_empty());
        // A wrong block is a misfit.
        assert!(plan.answered(&1, vec![blocks[5].clone()]).is_err());
        assert_eq!(plan.target(), 0, "the liar's claim fell to what it served");
        plan.observe(honest, 100);
        let retried = plan.plan(0, start());
        assert!(retried.iter().all(|(peer, _)| *peer == honest));
        assert_eq!(retried[0].1, Range { start: 1, count: BATCH });
        // A peer that disconnects hands its ranges back.
        for (id, (peer, range)) in retried.iter().enumerate() {
            plan.sent(10 + id as u32, *peer, *range);
        }
        plan.forget(&honest);
        assert_eq!(plan.target(), 0);
        let other = PeerId::random();
        plan.observe(other, 100);
        assert_eq!(plan.plan(0, start())[0], (other, Range { start: 1, count: BATCH }));
    }

    /// The attack: peer after peer (fresh identities cost nothing) claims a chain far ahead and
    /// then never answers. Claims that served nothing never make the node behind, so its forger
    /// keeps forging; an unanswered request lowers the claim, so the round ends.
    #[test]
    fn far_ahead_claims_that_serve_nothing_never_pause_forging() {
        let blocks = chain(20);
        let mut plan = SyncPlan::<u32>::default();
        for round in 0..50u32 {
            let liar = PeerId::random();
            plan.observe(liar, 1_000_000);
            let asked = plan.plan(0, start());
            assert!(!asked.is_empty(), "the liar is asked");
            assert!(plan.progress(0, start()).syncing, "a round is under way");
            assert!(!plan.progress(0, start()).behind, "but the node is not behind: the liar served nothing");
            for (i, (peer, range)) in asked.iter().enumerate() {
                plan.sent(round * 100 + i as u32, *peer, *range);
            }
            for i in 0..asked.len() {
                plan.unanswered(&(round * 100 + i as u32));
            }
            assert_eq!(plan.height_of(&liar), Some(0), "silence lowered the claim");
            assert!(plan.plan(0, start()).is_empty() && !plan.active(), "the round ended");
        }
        // A peer that serves real blocks does make the node behind while it is.
        let honest = PeerId::random();
        plan.observe(honest, 20);
        let asked = plan.plan(0, start());
        plan.sent(7, honest, asked[0].1);
        plan.answered(&7, slice(&blocks, asked[0].1)).unwrap();
        assert!(plan.progress(10, start()).behind, "half imported: behind a peer that served");
        assert!(!plan.progress(20, start()).behind, "caught up");
    }

    #[test]
    fn a_peer_that_throttled_us_is_asked_nothing_until_its_rest_ends() {
        let (busy, other) = (PeerId::random(), PeerId::random());
        let mut plan = SyncPlan::<u32>::default();
        plan.observe(busy, 1_000);
        let first = plan.plan(0, start());
        for (id, (peer, range)) in first.iter().enumerate() {
            plan.sent(id as u32, *peer, *range);
        }
        // It answers `rate_limited`: the range goes back, and the peer rests.
        plan.failed(&0);
        plan.rest(busy, start() + Duration::from_secs(60));
        assert!(plan.plan(0, start()).iter().all(|(p, _)| *p != busy), "a resting peer is not asked");
        plan.observe(other, 1_000);
        let next = plan.plan(0, start());
        assert!(
            next.iter().any(|(p, r)| *p == other && r.start == first[0].1.start),
            "another peer takes the range"
        );
        assert!(next.iter().all(|(p, _)| *p != busy));
        // Once the rest is over, it is asked again.
        plan.rest(busy, start());
        assert!(plan.plan(0, start()).iter().any(|(p, _)| *p == busy));
    }

    #[test]
    fn the_round_ends_at_the_target() {
        let blocks = chain(10);
        let peer = PeerId::random();
        let mut plan = SyncPlan::<u32>::default();
        plan.observe(peer, 10);
        let requests = plan.plan(0, start());
        assert_eq!(requests, vec![(peer, Range { start: 1, count: 10 })]);
        plan.sent(0, peer, requests[0].1);
        assert_eq!(plan.answered(&0, blocks).unwrap().len(), 1);
        assert!(plan.plan(10, start()).is_empty());
        assert!(!plan.active());
        assert!(!plan.progress(10, start()).syncing);
    }

    #[test]
    fn a_branch_no_higher_than_the_head_is_fetched_from_its_peer_alone_to_its_end() {
        let blocks = chain(300);
        let (forked, other) = (PeerId::random(), PeerId::random());
        let mut plan = SyncPlan::<u32>::default();
        plan.observe(other, 300);
        // Our head is 300 too: nothing to sync until a branch is asked for.
        assert!(plan.plan(300, start()).is_empty() && !plan.active());
        plan.fetch_branch(forked, 101, 300, 300, start());
        let mut id = 0;
        let mut fetched = 100;
        while plan.active() {
            let asked = plan.plan(300, start());
            if asked.is_empty() {
                break;
            }
            for (peer, range) in asked {
                assert_eq!(peer, forked, "only the peer whose branch it is is asked");
                plan.sent(id, peer, range);
                for (_, batch) in plan.answered(&id, slice(&blocks, range)).unwrap() {
                    fetched = batch.last().unwrap().header().height;
                }
                id += 1;
            }
        }
        assert_eq!(fetched, 300, "the whole branch was handed out");
        assert!(plan.plan(300, start()).is_empty());
        assert!(!plan.active(), "the round ended with the branch");
    }
}
