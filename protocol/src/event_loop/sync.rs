//! Range sync and ancestor fetches: what the loop asks peers for so that the node catches up, and
//! what it does with the node's import reports.

use std::time::Instant;

use goodwill_ledger::Hash;
use goodwill_ledger::lottery::MAX_REORG_DEPTH;
use libp2p::PeerId;

use super::{
    BRANCH_RETRY, BranchFetch, EventLoop, FORKED_REST, MAX_ANCESTOR_DEPTH, MAX_ANCESTOR_REQUESTS, SYNC_REST,
};
use crate::message::{Request, Role};
use crate::peers::Offence;
use crate::service::{BatchEnd, NetworkEvent};

impl EventLoop {
    /// Asks `peer` for the block `hash`, the `depth`-th missing ancestor of a gossiped block,
    /// unless it is asked for already or too many are.
    pub(super) fn fetch_ancestor(&mut self, peer: PeerId, hash: Hash, depth: u64) {
        if depth > MAX_ANCESTOR_DEPTH {
            // The branch does not meet this node's chain within a short walk: download it by
            // range, from just above the final block.
            self.fetch_branch(peer);
            return;
        }
        if self.ancestors.len() >= MAX_ANCESTOR_REQUESTS
            || self.ancestors.values().any(|(_, wanted, _)| *wanted == hash)
        {
            return;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .requests
            .send_request(&peer, Request::BlocksByHash(vec![hash]).to_proto());
        tracing::debug!(%peer, %hash, depth, "asked for a missing ancestor");
        self.ancestors.insert(id, (peer, hash, depth));
    }

    /// Whether `peer`'s branch may be downloaded now: one branch at a time, each peer's at most
    /// once per [`BRANCH_RETRY`].
    fn may_fetch_branch(&self, peer: &PeerId) -> bool {
        self.role == Role::Main
            && self.branch.is_none()
            && !self.is_forked(peer)
            && self.branch_tried.get(peer).is_none_or(|at| at.elapsed() >= BRANCH_RETRY)
    }

    /// Downloads `peer`'s chain from just above this node's final block to the head `peer`
    /// claims: a fork deeper than a rewind reaches (two halves of a partition meet). The node's
    /// chain applies it aside and takes it if fork choice prefers it.
    pub(super) fn fetch_branch(&mut self, peer: PeerId) {
        if !self.may_fetch_branch(&peer) {
            return;
        }
        let Some(until) = self.sync.height_of(&peer) else { return };
        let from = self.head.borrow().finalized + 1;
        if until < from {
            return;
        }
        self.branch_tried.insert(peer, Instant::now());
        self.branch = Some(BranchFetch { peer, until, started: Instant::now(), connected: false });
        self.ready.clear();
        tracing::info!(%peer, from, until, "a peer follows a branch this node lacks; fetching it");
        self.sync.fetch_branch(peer, from, until, self.last_head, Instant::now());
        self.drive();
    }

    /// Sends the range requests sync plans, hands the next ready batch to the node, and
    /// publishes progress.
    pub(super) fn drive(&mut self) {
        if self.role != Role::Main {
            return;
        }
        let was_active = self.sync.active();
        if !was_active {
            // A round starts from the real head.
            self.last_head = self.head.borrow().height;
        }
        let now = Instant::now();
        for (peer, range) in self.sync.plan(self.last_head, now) {
            let request = Request::BlocksByRange { start: range.start, count: range.count };
            let id = self.swarm.behaviour_mut().requests.send_request(&peer, request.to_proto());
            tracing::debug!(%peer, start = range.start, count = range.count, "asked for blocks");
            self.sync.sent(id, peer, range);
        }
        if !was_active && self.sync.active() {
            self.rewound = false;
            tracing::info!(from = self.last_head, target = self.sync.target(), "syncing");
        }
        if was_active && !self.sync.active() {
            tracing::info!(height = self.last_head, "synced; following the head by gossip");
        }
        if !self.importing
            && let Some((peer, blocks)) = self.ready.pop_front()
        {
            match self.emit(NetworkEvent::ImportBatch { peer, blocks }).map_err(|event| *event) {
                Ok(()) => self.importing = true,
                // The node is busy: the batch waits for the next tick.
                Err(NetworkEvent::ImportBatch { peer, blocks }) => self.ready.push_front((peer, blocks)),
                Err(_) => {}
            }
        }
        self.progress.send_replace(self.sync.progress(self.last_head, now));
    }

    /// The node finished importing a batch from `peer`.
    pub(super) fn imported(&mut self, peer: PeerId, end: BatchEnd, head: u64, top: u64) {
        self.importing = false;
        tracing::debug!(%peer, ?end, head, "imported a batch");
        let advanced = head > self.last_head;
        self.last_head = self.last_head.max(head);
        // Every block was taken, yet the head stays below the batch: its blocks were kept aside
        // on a branch that does not reach our chain (a longer one would have won). The branch
        // forks further down.
        // A branch being downloaded is kept aside until it is complete, or better.
        let in_branch = self.branch.is_some_and(|branch| branch.peer == peer && top <= branch.until);
        if in_branch
            && end == BatchEnd::Done
            && let Some(branch) = self.branch.as_mut()
        {
            branch.connected = true;
        }
        let end = match end {
            BatchEnd::Done if head < top && !in_branch => BatchEnd::Fork,
            end => end,
        };
        let connected = self.branch.is_some_and(|branch| branch.connected);
        if in_branch
            && let Some(BranchFetch { until, .. }) = self.branch
            && (top >= until || end != BatchEnd::Done)
        {
            self.branch = None;
            if head < until.min(top) && end == BatchEnd::Done {
                // Complete, and not better: its peer's claims are not followed for a while.
                tracing::info!(%peer, until, head, "a peer's branch is not better than this chain; staying");
                self.sync.forget(&peer);
            }
        }
        let next = self.last_head + 1;
        match end {
            BatchEnd::Done => {
                if advanced {
                    self.rewound = false;
                }
                let progress = self.sync.progress(self.last_head, Instant::now());
                tracing::info!(
                    current = progress.current,
                    target = progress.target,
                    blocks_per_second = format!("{:.1}", progress.blocks_per_second),
                    "sync progress"
                );
            }
            BatchEnd::Invalid => {
                self.penalise(peer, Offence::Fatal, "served an invalid block");
                self.ready.clear();
                self.sync.restart_from(next);
            }
            BatchEnd::Fork if in_branch && connected => {
                // Its first blocks met this chain and a later one did not: the peer's own chain
                // moved while it was downloaded (it switched too). Fetched again soon.
                tracing::info!(%peer, "a peer's branch changed during its download; it is fetched again");
                self.ready.clear();
                self.forked.insert(peer, Instant::now() + SYNC_REST);
                self.sync.forget(&peer);
                self.sync.restart_from(next);
            }
            BatchEnd::Fork if in_branch => {
                tracing::info!(%peer, "a peer's branch does not meet this chain above its final block");
                self.ready.clear();
                self.forked.insert(peer, Instant::now() + FORKED_REST);
                self.sync.forget(&peer);
                self.sync.restart_from(next);
            }
            BatchEnd::Fork if !self.rewound => {
                // The peer's chain forks below where we asked: fetch its branch from as deep as
                // a reorganisation may go, and let fork choice decide.
                self.rewound = true;
                let from = self.last_head.saturating_sub(MAX_REORG_DEPTH - 2).max(1);
                tracing::info!(%peer, from, "a peer's chain forks from ours; fetching its branch");
                self.ready.clear();
                self.sync.rewind_to(from, peer, next);
            }
            BatchEnd::Fork if self.may_fetch_branch(&peer) => self.fetch_branch(peer),
            BatchEnd::Fork => {
                // Another peer's branch is being downloaded, or this one's was lately: its
                // claims wait until it may be fetched (else every block it relays would start
                // a sync that cannot connect).
                tracing::info!(%peer, "a peer's chain forks deeper than a rewind reaches; its branch waits");
                self.ready.clear();
                let tried = self.branch_tried.get(&peer).map_or(Instant::now(), |at| *at + BRANCH_RETRY);
                self.forked.insert(peer, tried.max(Instant::now() + SYNC_REST));
                self.sync.forget(&peer);
                self.sync.restart_from(next);
            }
            BatchEnd::FromTheFuture => {
                // Not this node's to judge as a lie (its own clock may be the one behind), but
                // nothing more is taken from this peer until it claims again.
                tracing::info!(%peer, "a peer served a block stamped in the future; its claim is dropped");
                self.ready.clear();
                self.sync.forget(&peer);
                self.sync.restart_from(next);
            }
            BatchEnd::Failed => {
                self.ready.clear();
                self.sync.restart_from(next);
            }
        }
        self.drive();
    }
}
