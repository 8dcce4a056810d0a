//! The light peer's follower: one task owns its anchor (the last final block it verified, kept
//! on disk), the headers accepted above it, the blocks waiting for their check, the verified
//! lottery states and the main nodes it knows. It asks main nodes through the network service
//! (each query on a task of its own, the answer coming back to this task), so neither it nor the
//! network's loop ever waits for a peer.
//!
//! Finality first: on joining a main node, and every [`STEP_INTERVAL`], it asks for the proofs
//! of finality above its anchor and moves the anchor along them
//! ([`goodwill_ledger::light::Anchor::advance`]), epoch to epoch, with no blocks. Then it follows
//! the few blocks above the final one, each checked as before (link, slot, body, lottery). After
//! an epoch in which nothing became final, a step names a roster the anchor does not know: the
//! follower then follows blocks across the gap and takes the roster from the lottery state of a
//! block on the chain it follows.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goodwill_ledger::execute::check_header;
use goodwill_ledger::light::{Anchor, StepError};
use goodwill_ledger::lottery::{ForkChoiceKey, epoch_of};
use goodwill_ledger::proof::LotteryState;
use goodwill_ledger::spec::from_the_future;
use goodwill_ledger::state::RosterCommitment;
use goodwill_ledger::{Address, Block, ChainSpec, Hash, SealedHeader};
use goodwill_protocol::message::LotteryAnswer;
use goodwill_protocol::{
    Gossip, GossipEffect, GossipLane, GossipMessage, Head, NetworkEvent, NetworkEvents, NetworkHandle,
    QueryError, Request, Response, Role, Verdict,
};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot, watch};

use super::View;

/// Headers kept in memory: enough to check proofs against any recent head.
const MAX_HEADERS: usize = 4_096;
/// Verified lottery states kept (one per parent block, forger and epoch).
const MAX_LOTTERY_STATES: usize = 256;
/// Blocks waiting for their parent's lottery state, at most, in count and in bytes.
const MAX_WAITING: usize = 1_024;
const MAX_WAITING_BYTES: usize = 8 * 1024 * 1024;
/// Blocks asked for at once while catching up.
const BATCH: u32 = 64;
/// Main nodes caught lying that are remembered (and shown); older ones are forgotten here, but
/// the network's ban (by peer and address) outlives them. Fresh identities cost nothing, so the
/// list must not grow with them.
const MAX_LIARS: usize = 256;
/// Answers from main nodes waiting to be handled.
const ANSWERS: usize = 256;
/// How often main nodes are asked whether finality moved.
const STEP_INTERVAL: Duration = Duration::from_secs(2);
/// Roster commitments kept from the lottery states of followed blocks (the newest epochs).
const FOLLOWED_ROSTERS: usize = 8;

/// Where the answer to an HTTP question goes: the main node that answered, and what it said.
pub(super) type Reply = oneshot::Sender<Result<(PeerId, Response), String>>;

/// What the HTTP side asks of the follower.
pub(super) enum Command {
    /// Ask the best main node.
    Ask(Request, Reply),
    /// The named main node answered with something its proof does not support.
    Liar(PeerId, String),
    /// A header named by an answer, to be fetched and verified if unknown.
    Header(PeerId, Hash, oneshot::Sender<Option<SealedHeader>>),
}

/// Why a query went out.
enum Purpose {
    Question(Reply),
    Lottery(LotteryKey),
    Fetch(Hash),
    CatchUp,
    Steps,
}

/// A main node's answer (or its failure), back on the follower's task.
struct Answer {
    peer: PeerId,
    purpose: Purpose,
    result: Result<Response, QueryError>,
}

/// What a lottery state is for: the parent block, the child's forger, the child's epoch.
type LotteryKey = (Hash, Address, u64);

/// A block waiting for its check.
struct Waiting {
    block: Block,
    /// The peer that sent it.
    from: PeerId,
    /// Its encoded size.
    size: usize,
    /// Whether its header passed [`check_header`] (the lottery is checked apart).
    header_checked: bool,
}

/// A verified header and the rank sum of its chain, for fork choice.
#[derive(Clone)]
struct Known {
    header: SealedHeader,
    rank_sum: u64,
}

pub(super) struct Follower {
    network: NetworkHandle,
    spec: ChainSpec,
    genesis: Hash,
    /// The last final block verified, and the rosters trusted; every header kept descends from
    /// its block.
    anchor: Anchor,
    /// Where it is kept.
    anchor_file: PathBuf,
    /// Whether a request for steps of finality is out.
    stepping: bool,
    /// Roster commitments proven in the states of followed blocks, by epoch, with the block.
    followed_rosters: BTreeMap<u64, (Hash, RosterCommitment)>,
    headers: HashMap<Hash, Known>,
    by_height: BTreeMap<u64, Vec<Hash>>,
    best: Hash,
    /// Published for the network's handshake.
    head: watch::Sender<Head>,
    /// Main nodes of this chain, with the height they announced.
    mains: HashMap<PeerId, u64>,
    /// Main nodes caught lying, the latest last; at most [`MAX_LIARS`].
    liars: VecDeque<PeerId>,
    /// Who waits for a header to be accepted.
    waiters: HashMap<Hash, Vec<oneshot::Sender<Option<SealedHeader>>>>,
    /// Blocks waiting to be checked, by height, with the peer that sent them and their size.
    waiting: BTreeMap<(u64, Hash), Waiting>,
    /// The sum of those sizes: kept, not recounted, since a block's size costs an encoding.
    waiting_bytes: usize,
    /// Verified lottery inputs after a block for one forger and epoch.
    lottery: HashMap<LotteryKey, Arc<LotteryState>>,
    lottery_order: VecDeque<LotteryKey>,
    /// Lottery states asked for.
    lottery_asked: HashSet<LotteryKey>,
    /// Whether a range request catching up is out.
    catching_up: bool,
    answers: mpsc::Sender<Answer>,
    view: Arc<Mutex<View>>,
}

impl Follower {
    /// A follower that starts from `kept` (genesis, or what it verified before).
    pub(super) fn start(
        network: NetworkHandle,
        spec: ChainSpec,
        KeptAnchor { anchor, file: anchor_file }: KeptAnchor,
        head: watch::Sender<Head>,
        view: Arc<Mutex<View>>,
        inbox: mpsc::Receiver<Command>,
        mut events: NetworkEvents,
    ) -> tokio::task::JoinHandle<()> {
        let lanes = events.take_lanes();
        let (answers, answer_inbox) = mpsc::channel(ANSWERS);
        let root = anchor.header.clone();
        let mut follower = Follower {
            network,
            spec,
            genesis: anchor.genesis,
            anchor,
            anchor_file,
            stepping: false,
            followed_rosters: BTreeMap::new(),
            headers: HashMap::new(),
            by_height: BTreeMap::new(),
            best: root.hash(),
            head,
            mains: HashMap::new(),
            liars: VecDeque::new(),
            waiters: HashMap::new(),
            waiting: BTreeMap::new(),
            waiting_bytes: 0,
            lottery: HashMap::new(),
            lottery_order: VecDeque::new(),
            lottery_asked: HashSet::new(),
            catching_up: false,
            answers,
            view,
        };
        follower.insert(Known { header: root, rank_sum: 0 });
        tokio::spawn(follower.run(inbox, answer_inbox, events, lanes))
    }

    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Command>,
        mut answers: mpsc::Receiver<Answer>,
        mut events: NetworkEvents,
        mut lanes: Vec<GossipLane>,
    ) {
        let Some(mut blocks) = lanes.pop() else { return };
        let mut ticks = tokio::time::interval(STEP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.ask_steps(),
                Some(command) = inbox.recv() => self.command(command),
                Some(answer) = answers.recv() => self.answered(answer),
                Some(gossip) = blocks.next() => self.gossiped(gossip).await,
                event = events.next() => match event {
                    Some(event) => self.event(event),
                    None => return,
                },
            }
        }
    }

    /// Asks `peer` on a task of its own; the answer comes back to this task.
    fn ask(&self, peer: PeerId, request: Request, purpose: Purpose) {
        let (network, answers) = (self.network.clone(), self.answers.clone());
        tokio::spawn(async move {
            let result = network.query(peer, request).await;
            let _ = answers.send(Answer { peer, purpose, result }).await;
        });
    }

    fn event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::PeerJoined { peer, status }
                if status.role == Role::Main && !self.liars.contains(&peer) =>
            {
                if !self.mains.contains_key(&peer) {
                    tracing::info!(%peer, height = status.head_height, "main node joined");
                }
                self.mains.insert(peer, status.head_height);
                self.publish_view();
                // Finality first: blocks are fetched from the final block it leads to.
                self.ask_steps();
            }
            NetworkEvent::PeerLeft { peer } => {
                self.mains.remove(&peer);
                self.publish_view();
            }
            NetworkEvent::Listening(address) => crate::announce(format_args!("P2P listening on {address}")),
            _ => {}
        }
    }

    /// A gossiped block: checked if its parent is known, else a sign that a main node is ahead.
    /// A light peer relays nothing: it cannot validate state.
    async fn gossiped(&mut self, Gossip { ticket, message, .. }: Gossip) {
        let source = ticket.source;
        let GossipMessage::Block(received) = message else {
            return self.network.validated(ticket, Verdict::Ignore, GossipEffect::None).await;
        };
        let Ok(block) = received.into_block(|_, _| None) else {
            return self.network.validated(ticket, Verdict::Reject, GossipEffect::None).await;
        };
        self.network.validated(ticket, Verdict::Ignore, GossipEffect::None).await;
        if from_the_future(block.header().timestamp_ms, crate::now_ms()) {
            // Neither checked nor taken as a sign of a taller chain.
            return;
        }
        if self.headers.contains_key(&block.header().parent_hash) {
            return self.offer(block, source);
        }
        // Behind, or on a branch not seen yet: the relayer has its ancestors.
        if let Some(height) = self.mains.get_mut(&source) {
            *height = (*height).max(block.header().height);
        }
        self.catch_up();
    }

    fn insert(&mut self, known: Known) {
        let (hash, height) = (known.header.hash(), known.header.header().height);
        let key = |k: &Known| ForkChoiceKey {
            height: k.header.header().height,
            rank_sum: k.rank_sum,
            head: k.header.hash(),
        };
        let better = self.headers.get(&self.best).is_none_or(|best| key(&known) > key(best));
        self.headers.insert(hash, known);
        self.by_height.entry(height).or_default().push(hash);
        if better {
            self.best = hash;
            self.publish_head();
        }
        // Forget the oldest heights beyond the bound (never the anchor's).
        let root = self.anchor.header.header().height;
        while self.headers.len() > MAX_HEADERS {
            let Some((&oldest, _)) = self.by_height.iter().find(|(h, _)| **h != root) else { break };
            for old in self.by_height.remove(&oldest).unwrap_or_default() {
                self.headers.remove(&old);
            }
        }
        self.publish_view();
    }

    fn publish_head(&self) {
        let (height, hash) = (self.best_height(), self.best);
        let finalized = self.anchor.header.header().height;
        self.head.send_replace(Head { height, hash, finalized });
    }

    fn publish_view(&self) {
        let head = self.headers.get(&self.best).map(|k| (k.header.header().height, self.best));
        if let Ok(mut view) = self.view.lock() {
            view.head = head;
            view.finalized = Some((self.anchor.header.header().height, self.anchor.header.hash()));
            view.mains = self.mains.len();
            view.liars = self.liars.iter().map(ToString::to_string).collect();
        }
    }

    /// Queues `block` (sent by `from`) for checking, and checks what can be checked.
    fn offer(&mut self, block: Block, from: PeerId) {
        let key = (block.header().height, block.hash());
        if self.headers.contains_key(&key.1) || self.waiting.contains_key(&key) {
            return;
        }
        if from_the_future(block.header().timestamp_ms, crate::now_ms()) {
            tracing::debug!(height = key.0, hash = %key.1, %from, "dropped a block stamped in the future");
            return;
        }
        let size = block.encoded_len();
        if self.waiting.len() >= MAX_WAITING || self.waiting_bytes + size > MAX_WAITING_BYTES {
            return;
        }
        self.waiting_bytes += size;
        self.waiting.insert(key, Waiting { block, from, size, header_checked: false });
        self.process();
    }

    /// Checks waiting blocks, lowest first: a block whose parent was accepted and whose
    /// parent's lottery state is known is accepted or dropped; for the others the lottery state
    /// is asked for. Blocks far below the best header are dropped.
    fn process(&mut self) {
        self.drop_waiting_up_to(self.best_height().saturating_sub(64));
        // Callers that gave up (their HTTP request timed out) wait no longer.
        self.waiters.retain(|_, senders| {
            senders.retain(|sender| !sender.is_closed());
            !senders.is_empty()
        });
        loop {
            let mut accepted_any = false;
            let keys: Vec<(u64, Hash)> = self.waiting.keys().copied().collect();
            for key in keys {
                // Looked at in place: only a block that can be checked now leaves the queue.
                let Some(waiting) = self.waiting.get_mut(&key) else { continue };
                let (header, from) = (waiting.block.header().clone(), waiting.from);
                let Some(parent) = self.headers.get(&header.parent_hash).cloned() else { continue };
                // The header's own checks first (signature, parent, slot, size), once: only a
                // well-formed child's forger and slot are asked about.
                let mut checked = Ok(());
                if !waiting.header_checked {
                    checked = check_header(&self.spec, &self.genesis, &parent.header, &waiting.block)
                        .map_err(|e| e.to_string());
                    waiting.header_checked = checked.is_ok();
                }
                if checked.is_ok() {
                    let epoch = epoch_of(header.slot, self.spec.params.slots_per_epoch);
                    let lottery_key = (header.parent_hash, header.forger, epoch);
                    let Some(lottery) = self.lottery.get(&lottery_key).cloned() else {
                        self.ask_lottery(lottery_key, header.slot, from);
                        continue;
                    };
                    checked = lottery.check(&self.spec, &header);
                }
                let Some(Waiting { block, size, .. }) = self.waiting.remove(&key) else { continue };
                self.waiting_bytes -= size;
                match checked {
                    Ok(()) => {
                        let rank_sum = parent.rank_sum + u64::from(block.header().rank);
                        self.insert(Known { header: block.header.clone(), rank_sum });
                        for waiter in self.waiters.remove(&key.1).unwrap_or_default() {
                            let _ = waiter.send(Some(block.header.clone()));
                        }
                        accepted_any = true;
                    }
                    Err(reason) => {
                        // Main nodes check blocks before they serve or relay them: whoever sent
                        // one that breaks the rules is lying, or broken.
                        for waiter in self.waiters.remove(&key.1).unwrap_or_default() {
                            let _ = waiter.send(None);
                        }
                        self.liar(from, format!("sent block #{} that breaks the rules: {reason}", key.0));
                    }
                }
            }
            if !accepted_any {
                break;
            }
        }
        if self.waiting.is_empty() {
            self.catch_up();
        }
    }

    /// Asks `peer` (or the best main node) for the lottery state after a block for a forger
    /// and epoch (`key`; `slot` is the child's), unless it was asked already.
    fn ask_lottery(&mut self, key: LotteryKey, slot: u64, peer: PeerId) {
        if self.lottery_asked.contains(&key) {
            return;
        }
        let peer = if self.mains.contains_key(&peer) { Some(peer) } else { self.best_main() };
        let Some(peer) = peer else { return };
        self.lottery_asked.insert(key);
        let (parent, forger, _) = key;
        self.ask(peer, Request::Lottery { parent, forger, slot }, Purpose::Lottery(key));
    }

    fn lottery_answer(&mut self, peer: PeerId, key: LotteryKey, proof: LotteryAnswer) {
        let (hash, forger, epoch) = key;
        let Some(header) = self.headers.get(&hash).map(|k| k.header.clone()) else { return };
        let root = header.header().state_root;
        match LotteryState::verify(&root, &forger, epoch, &proof.proof) {
            Ok(state) => {
                for commitment in state.rosters() {
                    self.followed_rosters.insert(commitment.epoch, (hash, *commitment));
                }
                while self.followed_rosters.len() > FOLLOWED_ROSTERS {
                    self.followed_rosters.pop_first();
                }
                self.lottery.insert(key, Arc::new(state));
                self.lottery_order.push_back(key);
                while self.lottery_order.len() > MAX_LOTTERY_STATES {
                    if let Some(old) = self.lottery_order.pop_front() {
                        self.lottery.remove(&old);
                    }
                }
                self.process();
            }
            Err(error) => self.liar(peer, format!("its lottery proof failed: {error}")),
        }
    }

    fn best_height(&self) -> u64 {
        self.headers.get(&self.best).map_or(0, |k| k.header.header().height)
    }

    /// The main node with the highest announced head.
    fn best_main(&self) -> Option<PeerId> {
        self.mains.iter().filter(|(p, _)| !self.liars.contains(*p)).max_by_key(|(_, h)| **h).map(|(p, _)| *p)
    }

    /// Asks for the next blocks after our best header, if a main node is ahead (and finality is
    /// not being asked about: its answer may move the anchor far above).
    fn catch_up(&mut self) {
        if self.catching_up || self.stepping {
            return;
        }
        let ours = self.best_height();
        let Some(peer) = self.best_main().filter(|p| self.mains[p] > ours) else { return };
        self.catching_up = true;
        self.ask(peer, Request::BlocksByRange { start: ours + 1, count: BATCH }, Purpose::CatchUp);
    }

    fn liar(&mut self, peer: PeerId, reason: String) {
        tracing::warn!(%peer, reason, "a main node lied; dropping and banning it");
        if !self.liars.contains(&peer) {
            self.liars.push_back(peer);
            if self.liars.len() > MAX_LIARS {
                self.liars.pop_front();
            }
        }
        self.mains.remove(&peer);
        self.network.ban(peer, reason);
        self.publish_view();
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Ask(request, reply) => match self.best_main() {
                None => {
                    let _ = reply.send(Err("no main node is connected".into()));
                }
                Some(peer) => self.ask(peer, request, Purpose::Question(reply)),
            },
            Command::Liar(peer, reason) => self.liar(peer, reason),
            Command::Header(peer, hash, reply) => {
                if let Some(known) = self.headers.get(&hash) {
                    let _ = reply.send(Some(known.header.clone()));
                    return;
                }
                self.waiters.entry(hash).or_default().push(reply);
                self.ask(peer, Request::BlocksByHash(vec![hash]), Purpose::Fetch(hash));
            }
        }
    }

    fn answered(&mut self, Answer { peer, purpose, result }: Answer) {
        match (purpose, result) {
            (Purpose::Question(reply), Ok(response)) => {
                let _ = reply.send(Ok((peer, response)));
            }
            (Purpose::Question(reply), Err(error)) => {
                if let QueryError::Malformed(reason) = &error {
                    self.liar(peer, format!("it sent a malformed answer: {reason}"));
                }
                let _ = reply.send(Err(error.to_string()));
            }
            (Purpose::Fetch(hash), result) => {
                let block = match result {
                    Ok(Response::Blocks(blocks)) => blocks.into_iter().find(|b| b.hash() == hash),
                    _ => None,
                };
                match block {
                    // Answered once it is checked (or refused).
                    Some(block) => self.offer(block, peer),
                    None => {
                        for waiter in self.waiters.remove(&hash).unwrap_or_default() {
                            let _ = waiter.send(None);
                        }
                    }
                }
            }
            (Purpose::Lottery(key), result) => {
                // Failed or refused: asked again (of another main node) when its children are
                // next processed.
                self.lottery_asked.remove(&key);
                if let Ok(Response::Lottery(proof)) = result {
                    self.lottery_answer(peer, key, proof);
                }
            }
            (Purpose::Steps, result) => {
                self.stepping = false;
                match result {
                    Ok(Response::FinalitySteps(steps)) => self.take_steps(peer, steps),
                    Err(QueryError::Malformed(reason)) => {
                        self.liar(peer, format!("it sent a malformed finality step: {reason}"))
                    }
                    _ => {}
                }
                self.catch_up();
            }
            (Purpose::CatchUp, result) => {
                self.catching_up = false;
                match result {
                    Ok(Response::Blocks(blocks)) => {
                        let now = crate::now_ms();
                        for block in blocks {
                            if from_the_future(block.header().timestamp_ms, now) {
                                // A main node serves only blocks it imported, and imports none
                                // from the future: its claim counts no further than this.
                                let below = block.header().height.saturating_sub(1);
                                if let Some(height) = self.mains.get_mut(&peer) {
                                    *height = (*height).min(below);
                                }
                                break;
                            }
                            self.offer(block, peer);
                        }
                        if self.waiting.is_empty() {
                            self.catch_up();
                        }
                    }
                    Err(QueryError::Malformed(reason)) => {
                        tracing::warn!(%peer, %reason, "a main node served a malformed block");
                    }
                    _ => {}
                }
            }
        }
    }
}

impl Follower {
    /// Asks the best main node for the proofs of finality above the anchor, unless asked already.
    fn ask_steps(&mut self) {
        if self.stepping {
            return;
        }
        let Some(peer) = self.best_main() else { return };
        self.stepping = true;
        let from_height = self.anchor.header.header().height + 1;
        self.ask(peer, Request::FinalitySteps { from_height }, Purpose::Steps);
    }

    /// Moves the anchor along `steps` (from `peer`) as far as they hold, then keeps only what
    /// descends from it and writes it down.
    fn take_steps(&mut self, peer: PeerId, steps: Vec<goodwill_ledger::light::FinalityStep>) {
        let slots_per_epoch = self.spec.params.slots_per_epoch;
        let mut advanced = false;
        for step in &steps {
            let mut result = self.anchor.advance(step, slots_per_epoch);
            if let Err(StepError::UnknownRoster(epoch)) = result
                && let Some(commitment) = self.followed_roster(epoch)
            {
                // Across an epoch without finality: the roster of the chain followed.
                let mut bridged = self.anchor.clone();
                bridged.rosters.push(commitment);
                bridged.rosters.sort_by_key(|c| c.epoch);
                result = bridged.advance(step, slots_per_epoch);
            }
            match result {
                Ok(next) => {
                    self.anchor = next;
                    advanced = true;
                }
                Err(StepError::Stale { .. }) => continue,
                Err(error) if error.is_lie() => {
                    self.liar(peer, format!("its proof of finality does not hold: {error}"));
                    break;
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "a proof of finality cannot be checked yet");
                    break;
                }
            }
        }
        if !advanced {
            return;
        }
        let anchor = self.anchor.finalized();
        tracing::info!(height = anchor.block.height, hash = %anchor.block.hash, "final block verified");
        self.reroot();
        if let Err(error) = save_anchor(&self.anchor, &self.anchor_file) {
            let path = self.anchor_file.display();
            tracing::warn!(%path, %error, "could not keep the final block on disk");
        }
        // More may be stored above (an answer is cut by size and by the server's time budget):
        // asked at once; an empty answer ends it.
        self.ask_steps();
    }

    /// A roster commitment for `epoch` proven in the state of a block on the chain followed.
    fn followed_roster(&self, epoch: u64) -> Option<RosterCommitment> {
        let (block, commitment) = self.followed_rosters.get(&epoch)?;
        let mut at = self.headers.get(&self.best)?;
        loop {
            if at.header.hash() == *block {
                return Some(*commitment);
            }
            at = self.headers.get(&at.header.header().parent_hash)?;
        }
    }

    /// Keeps only the headers of the final chain (the anchor's block and its ancestors known
    /// here: what a transaction's inclusion is checked against) and those that descend from it,
    /// and the blocks waiting above it.
    fn reroot(&mut self) {
        let root = self.anchor.header.clone();
        let (root_hash, root_height) = (root.hash(), root.header().height);
        let mut kept: HashMap<Hash, Known> = HashMap::new();
        match self.headers.remove(&root_hash) {
            Some(known) => kept.insert(root_hash, known),
            None => kept.insert(root_hash, Known { header: root.clone(), rank_sum: 0 }),
        };
        let mut parent = root.header().parent_hash;
        while let Some(known) = self.headers.get(&parent) {
            parent = known.header.header().parent_hash;
            kept.insert(known.header.hash(), known.clone());
        }
        for (_, hashes) in self.by_height.range(root_height + 1..) {
            for hash in hashes {
                let descends = self
                    .headers
                    .get(hash)
                    .is_some_and(|known| kept.contains_key(&known.header.header().parent_hash));
                if descends && let Some(known) = self.headers.get(hash) {
                    kept.insert(*hash, known.clone());
                }
            }
        }
        self.headers = kept;
        self.by_height = BTreeMap::new();
        for (hash, known) in &self.headers {
            self.by_height.entry(known.header.header().height).or_default().push(*hash);
        }
        if !self.headers.contains_key(&self.best) {
            self.best = root_hash;
            let key = |k: &Known| ForkChoiceKey {
                height: k.header.header().height,
                rank_sum: k.rank_sum,
                head: k.header.hash(),
            };
            if let Some(best) = self.headers.values().max_by_key(|k| key(k)) {
                self.best = best.header.hash();
            }
        }
        self.drop_waiting_up_to(root_height);
        self.publish_head();
        self.publish_view();
    }

    /// Forgets the blocks waiting at `height` or below.
    fn drop_waiting_up_to(&mut self, height: u64) {
        let mut freed = 0;
        self.waiting.retain(|(at, _), waiting| {
            let keep = *at > height;
            if !keep {
                freed += waiting.size;
            }
            keep
        });
        self.waiting_bytes -= freed;
    }
}

/// A light peer's anchor and the file it is kept in.
pub(super) struct KeptAnchor {
    pub anchor: Anchor,
    pub file: PathBuf,
}

impl KeptAnchor {
    /// The anchor kept in `file`, or `genesis` if there is none. A file that does not decode, or
    /// that belongs to another chain, is an error for the caller to report.
    pub(super) fn load(file: PathBuf, genesis: Anchor) -> eyre::Result<KeptAnchor> {
        let anchor = match read_anchor(&file, &genesis.genesis)? {
            Some(anchor) => {
                let height = anchor.header.header().height;
                tracing::info!(height, hash = %anchor.header.hash(), "starting from the last final block verified");
                anchor
            }
            None => genesis,
        };
        Ok(KeptAnchor { anchor, file })
    }
}

/// The anchor kept in `path`: `None` if there is none.
fn read_anchor(path: &std::path::Path, genesis: &Hash) -> eyre::Result<Option<Anchor>> {
    use eyre::WrapErr;
    use prost::Message;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).wrap_err_with(|| format!("reading {}", path.display())),
    };
    let damaged = || {
        format!(
            "{} is not a light peer's anchor (its last final block); delete it to start from genesis",
            path.display()
        )
    };
    let wire = goodwill_proto::v1::LightAnchor::decode(bytes.as_slice()).wrap_err_with(damaged)?;
    let anchor = Anchor::from_wire(wire).wrap_err_with(damaged)?;
    if anchor.genesis != *genesis {
        eyre::bail!(
            "{} holds the anchor of another chain (genesis {}); use another --base-path",
            path.display(),
            anchor.genesis
        );
    }
    Ok(Some(anchor))
}

/// Writes `anchor` to `path` so that a crash at any instant leaves the old file or the new one:
/// a temporary file, synced, renamed over it, and the folder synced.
fn save_anchor(anchor: &Anchor, path: &std::path::Path) -> std::io::Result<()> {
    use prost::Message;
    use std::io::Write;
    let temporary = path.with_extension("pb.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&anchor.to_wire().encode_to_vec())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(folder) = path.parent() {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}
