//! The task that owns the swarm (see [`crate::service`] for what it does and does not do): this
//! module holds its state, commands, peers and gossip; `sync` drives range sync and ancestor
//! fetches, `requests` screens inbound requests and matches answers to what was asked.

mod requests;
mod sync;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use goodwill_ledger::{Block, Hash};
use goodwill_proto::v1 as wire;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, kad, ping};
use prost::Message;
use tokio::sync::{mpsc, oneshot, watch};

use crate::behaviour::{GossipKind, KAD_PROTOCOL};
use crate::handshake::{ChainIdentity, Mismatch};
use crate::message::{Request, Response, Role, Status};
use crate::peers::{Offence, PeerInfo, PeerManager, Penalty};
use crate::reach::Reach;
use crate::service::{
    AncestorOutcome, Command, GossipEffect, GossipTicket, Head, InboundId, LANE_BYTES, LaneState,
    NetworkEvent, QueryError, RawGossip, Shared, TX_BATCH, Verdict,
};
use crate::sync::{Progress, SyncPlan};
use crate::{Behaviour, BehaviourEvent, PROTOCOL_VERSION};

/// Peers the node dials on its own (found through Kademlia) until it has this many.
const TARGET_PEERS: usize = 24;
/// How often the node looks for more peers and lifts expired bans.
const HOUSEKEEPING: Duration = Duration::from_secs(10);
/// How long a peer that throttled our requests is left alone.
const THROTTLE_REST: Duration = Duration::from_secs(1);
/// How often an active sync round looks for peers it may ask again (after a rest).
const SYNC_TICK: Duration = Duration::from_millis(250);
/// Most bytes of transactions in one gossiped batch; a batch is sent when it is full or
/// [`TX_FLUSH`] after its first transaction.
const TX_BATCH_BYTES: usize = 512 * 1024;
const TX_FLUSH: Duration = Duration::from_millis(20);
/// Most ancestor requests outstanding at once.
const MAX_ANCESTOR_REQUESTS: usize = 16;
/// Deepest missing ancestor fetched by hash, one request per block. A deeper branch is
/// downloaded by range instead: a walk of single-block requests would spend the peer's request
/// budget ([`crate::rate_limit::BURST`]) and be throttled halfway.
const MAX_ANCESTOR_DEPTH: u64 = 16;
/// How often one peer's branch is downloaded, at most: a branch that lost is not fetched again
/// for every block its peer gossips.
const BRANCH_RETRY: Duration = Duration::from_secs(30);
/// How long a peer whose downloaded branch does not meet this chain above its final block is
/// not followed.
const FORKED_REST: Duration = Duration::from_secs(300);
/// How long a peer whose branch must wait for another's download is not followed, at least.
const SYNC_REST: Duration = Duration::from_secs(5);
/// A branch download that has not ended after this long gives its place up (its peer stopped
/// answering, or its ranges went to nobody): another peer's branch may then be fetched.
const BRANCH_TIMEOUT: Duration = Duration::from_secs(120);

/// A peer's branch being downloaded.
#[derive(Debug, Clone, Copy)]
struct BranchFetch {
    /// The peer.
    peer: PeerId,
    /// The branch's last height, as the peer claimed it.
    until: u64,
    /// When the download began.
    started: Instant,
    /// Whether a batch of it connected to this chain (its first block's parent is the final
    /// block): a later break means the peer's chain moved during the download, not that it
    /// conflicts with finality.
    connected: bool,
}
/// Most inbound requests waiting for the node's answer, and most queries of ours waiting for a
/// peer's.
const MAX_PENDING_INBOUND: usize = 256;
const MAX_PENDING_QUERIES: usize = 256;

/// The gossip lane of one kind, as the loop feeds it.
pub(crate) struct LaneInput {
    pub(crate) kind: GossipKind,
    pub(crate) topic: gossipsub::IdentTopic,
    /// The topic's hash, computed once: every gossiped message is matched against it.
    pub(crate) topic_hash: gossipsub::TopicHash,
    pub(crate) sender: mpsc::Sender<RawGossip>,
    pub(crate) state: Arc<LaneState>,
}

/// What [`EventLoop::new`] is made of.
pub(crate) struct Parts {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) role: Role,
    pub(crate) chain: ChainIdentity,
    pub(crate) head: watch::Receiver<Head>,
    pub(crate) inbox: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<NetworkEvent>,
    pub(crate) lanes: Vec<LaneInput>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) progress: watch::Sender<Progress>,
    pub(crate) listen_addresses: watch::Sender<Vec<Multiaddr>>,
    pub(crate) bootnodes: Vec<Multiaddr>,
    pub(crate) chain_spec: Option<String>,
}

/// The task that owns the swarm. Run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    role: Role,
    chain: ChainIdentity,
    head: watch::Receiver<Head>,
    inbox: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    lanes: Vec<LaneInput>,
    shared: Arc<Shared>,
    progress: watch::Sender<Progress>,
    listen_addresses: watch::Sender<Vec<Multiaddr>>,
    peers: PeerManager,
    sync: SyncPlan<OutboundRequestId>,
    /// Sync batches waiting for the node to import them, in height order (bounded by the sync
    /// window).
    ready: VecDeque<(PeerId, Vec<Block>)>,
    /// A batch is out for import.
    importing: bool,
    /// The head's height as sync last saw it.
    last_head: u64,
    /// Whether sync already rewound for a fork in this round.
    rewound: bool,
    /// Connected peers on a fork deeper than a reorganisation may go: their heights are not
    /// followed (else every block they relay would restart a sync that cannot succeed).
    /// Until when: their branch is tried again after that (the chains may meet by then, or
    /// another peer's branch being downloaded was not the better one).
    forked: HashMap<PeerId, Instant>,
    /// The branch being downloaded.
    branch: Option<BranchFetch>,
    /// The chain spec served to whoever asks.
    chain_spec: Option<Arc<str>>,
    /// How far the remote address of each open connection reaches (bounded by the connection
    /// limits).
    links: HashMap<ConnectionId, Reach>,
    /// When each connected peer's branch was last downloaded.
    branch_tried: HashMap<PeerId, Instant>,
    /// Outstanding requests for missing ancestors: who was asked, for which block, at what
    /// depth below the gossiped one.
    ancestors: HashMap<OutboundRequestId, (PeerId, Hash, u64)>,
    /// The node's queries waiting for a peer's answer.
    queries: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, QueryError>>>,
    /// Inbound requests waiting for the node's answer.
    inbound: HashMap<InboundId, (PeerId, ResponseChannel<wire::Response>)>,
    next_inbound: u64,
    /// Transactions admitted since the last gossiped batch, and their size.
    outgoing: Vec<wire::SignedTransaction>,
    outgoing_bytes: usize,
    bootstrapped: bool,
    /// Dialled again whenever the node has fewer peers than it wants.
    bootnodes: Vec<Multiaddr>,
}

impl EventLoop {
    pub(crate) fn new(parts: Parts) -> EventLoop {
        let last_head = parts.head.borrow().height;
        EventLoop {
            swarm: parts.swarm,
            role: parts.role,
            chain: parts.chain,
            head: parts.head,
            inbox: parts.inbox,
            events: parts.events,
            lanes: parts.lanes,
            shared: parts.shared,
            progress: parts.progress,
            listen_addresses: parts.listen_addresses,
            bootnodes: parts.bootnodes,
            peers: PeerManager::new(),
            sync: SyncPlan::default(),
            ready: VecDeque::new(),
            importing: false,
            last_head,
            rewound: false,
            forked: HashMap::new(),
            branch: None,
            links: HashMap::new(),
            chain_spec: parts.chain_spec.map(Arc::from),
            branch_tried: HashMap::new(),
            ancestors: HashMap::new(),
            queries: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: 0,
            outgoing: Vec::new(),
            outgoing_bytes: 0,
            bootstrapped: false,
        }
    }

    /// Runs until `shutdown` turns true (or its sender is dropped).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let mut sync_tick = tokio::time::interval(SYNC_TICK);
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut flush_tick = tokio::time::interval(TX_FLUSH);
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
                command = self.inbox.recv() => match command {
                    Some(command) => self.command(command),
                    None => return,
                },
                _ = housekeeping.tick() => self.housekeeping(),
                _ = sync_tick.tick(), if self.sync.active() => self.drive(),
                _ = flush_tick.tick(), if !self.outgoing.is_empty() => self.flush_transactions(),
                event = self.swarm.select_next_some() => self.event(event),
            }
        }
    }

    fn our_status(&self) -> Status {
        let head = *self.head.borrow();
        Status {
            chain_id: self.chain.chain_id.clone(),
            genesis: self.chain.genesis,
            head_height: head.height,
            head_hash: head.hash,
            role: self.role,
            protocol_version: PROTOCOL_VERSION,
        }
    }

    fn topic(&self, kind: GossipKind) -> Option<gossipsub::IdentTopic> {
        self.lanes.iter().find(|lane| lane.kind == kind).map(|lane| lane.topic.clone())
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Respond(id, response) => {
                if let Some((_, channel)) = self.inbound.remove(&id) {
                    let _ = self.swarm.behaviour_mut().requests.send_response(channel, response.to_proto());
                }
            }
            Command::Validated(ticket, verdict, effect) => self.validated(ticket, verdict, effect),
            Command::BatchImported { peer, end, head, top } => self.imported(peer, end, head, top),
            Command::AncestorImported { peer, block, height, parent, depth, outcome } => {
                match outcome {
                    AncestorOutcome::Orphan => self.fetch_ancestor(peer, parent, depth + 1),
                    AncestorOutcome::Applied => {
                        tracing::info!(height, depth, %block, "a fetched ancestor connected a branch")
                    }
                    AncestorOutcome::Invalid => {
                        self.penalise(peer, Offence::WrongAnswer, "served an invalid block")
                    }
                    AncestorOutcome::TooDeep => self.fetch_branch(peer),
                    AncestorOutcome::Ended => {}
                }
                self.drive();
            }
            Command::PublishBlock(block) => self.publish(GossipKind::Blocks, block.encode()),
            Command::PublishVotes(votes) => {
                let votes = votes.iter().map(goodwill_ledger::finality::SignedVote::to_wire).collect();
                self.publish(GossipKind::Votes, wire::VoteBatch { votes }.encode_to_vec());
            }
            Command::PublishTransaction(tx) => {
                self.outgoing_bytes += tx.encoded_len();
                self.outgoing.push(tx.to_wire());
                if self.outgoing.len() >= TX_BATCH || self.outgoing_bytes >= TX_BATCH_BYTES {
                    self.flush_transactions();
                }
            }
            Command::Query(peer, request, reply) => {
                if self.queries.len() >= MAX_PENDING_QUERIES {
                    let _ = reply.send(Err(QueryError::Busy));
                    return;
                }
                let id = self.swarm.behaviour_mut().requests.send_request(&peer, request.to_proto());
                self.queries.insert(id, reply);
            }
            Command::Ban(peer, reason) => {
                tracing::warn!(%peer, reason, "banning a peer");
                if self.peers.ban(peer, Instant::now()) {
                    self.ban_address_of(peer);
                    self.swarm.behaviour_mut().blocked.block_peer(peer);
                }
                self.sync.forget(&peer);
                self.count_peers();
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_list());
            }
        }
    }

    fn publish(&mut self, kind: GossipKind, bytes: Vec<u8>) {
        let Some(topic) = self.topic(kind) else { return };
        if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
            // No peers yet, or a duplicate: peers that missed it will sync.
            tracing::debug!(%error, ?kind, "gossip not published");
        }
    }

    /// Gossips the transactions admitted since the last batch, as one message.
    fn flush_transactions(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        let batch = wire::TransactionBatch { transactions: std::mem::take(&mut self.outgoing) };
        self.outgoing_bytes = 0;
        self.publish(GossipKind::Transactions, batch.encode_to_vec());
    }

    fn peer_list(&self) -> Vec<PeerInfo> {
        let now = Instant::now();
        let connected = self.swarm.connected_peers().copied();
        let banned = self.peers.banned().map(|(peer, _)| *peer);
        let all: HashSet<PeerId> = connected.chain(banned).collect();
        let ends: HashMap<PeerId, Instant> = self.peers.banned().map(|(p, end)| (*p, end)).collect();
        let mut list: Vec<PeerInfo> = all
            .into_iter()
            .map(|peer| PeerInfo {
                peer_id: peer,
                verified: self.peers.is_verified(&peer),
                light: self.peers.role(&peer) == Some(Role::Light),
                height: self.sync.height_of(&peer),
                gossip_score: self.swarm.behaviour().gossipsub.peer_score(&peer),
                strikes: self.peers.strikes(&peer),
                banned_for: ends.get(&peer).map(|end| end.saturating_duration_since(now)),
            })
            .collect();
        list.sort_by_key(|info| info.peer_id.to_string());
        list
    }

    /// Charges `peer` for `offence`; a ban disconnects and blocks it.
    fn penalise(&mut self, peer: PeerId, offence: Offence, reason: &str) {
        let penalty = self.peers.penalise(peer, offence, Instant::now());
        let strikes = self.peers.strikes(&peer);
        tracing::warn!(%peer, reason, strikes, "peer misbehaved");
        self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, -f64::from(strikes));
        if penalty == Penalty::Banned {
            tracing::warn!(%peer, minutes = crate::peers::BAN_DURATION.as_secs() / 60, "banning a peer");
            // Refuses its address, then closes its connections and refuses new ones.
            self.ban_address_of(peer);
            self.swarm.behaviour_mut().blocked.block_peer(peer);
            self.sync.forget(&peer);
            self.count_peers();
        }
    }

    /// Bans the address `peer` is connected from for as long as the peer's own ban: a fresh key
    /// from the same host is refused too.
    fn ban_address_of(&mut self, peer: PeerId) {
        let until = Instant::now() + crate::peers::BAN_DURATION;
        if let Some(address) = self.swarm.behaviour_mut().addresses.ban_address_of(&peer, until) {
            tracing::warn!(%peer, %address, "banning a peer's address");
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        // A branch download that stopped before its end (sync has nothing left to ask, or it
        // ran too long) gives its place up, so that the next peer's branch may be fetched.
        if let Some(branch) = self.branch
            && !self.importing
            && self.ready.is_empty()
            && (!self.sync.active() || now.duration_since(branch.started) > BRANCH_TIMEOUT)
        {
            tracing::info!(peer = %branch.peer, until = branch.until, "a branch download stopped before its end");
            self.branch = None;
            self.sync.forget(&branch.peer);
        }
        for peer in self.peers.lift_expired(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            tracing::info!(%peer, "ban lifted");
        }
        for address in self.swarm.behaviour_mut().addresses.lift_expired(now) {
            tracing::info!(%address, "address ban lifted");
        }
        let (verified, _) = self.peers.counts();
        if verified < TARGET_PEERS {
            // Look for more peers (the routing table's are dialled again, and so are the
            // bootnodes, whom a node that lost every peer may know alone: a partition heals
            // without a restart); found ones are dialled as they enter the routing table.
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
            for address in &self.bootnodes {
                let peer = match address.iter().last() {
                    Some(libp2p::multiaddr::Protocol::P2p(peer)) => peer,
                    _ => continue,
                };
                if !self.swarm.is_connected(&peer) && !self.peers.is_banned(&peer) {
                    let _ = self.swarm.dial(address.clone());
                }
            }
        }
    }

    /// Publishes the verified peers' counts.
    fn count_peers(&mut self) {
        let (verified, light) = self.peers.counts();
        self.shared.peers.store(verified, Ordering::Relaxed);
        self.shared.light_peers.store(light, Ordering::Relaxed);
    }

    /// Tells the node something; if its queue is full, the event is lost (the caller decides
    /// what that means).
    fn emit(&mut self, event: NetworkEvent) -> Result<(), Box<NetworkEvent>> {
        self.events.try_send(event).map_err(|error| match error {
            mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event) => {
                Box::new(event)
            }
        })
    }

    /// `peer`'s status: accepted if it is on this chain, refused (and disconnected) if not.
    fn handshake(&mut self, peer: PeerId, status: Status) -> Result<(), Mismatch> {
        if let Err(mismatch) = self.chain.check(&status) {
            tracing::warn!(%peer, reason = %mismatch, "refusing a peer of another chain");
            if self.peers.unverify(&peer) {
                self.count_peers();
            }
            let _ = self.swarm.disconnect_peer_id(peer);
            let _ = self.emit(NetworkEvent::PeerRefused { peer, reason: mismatch.clone() });
            return Err(mismatch);
        }
        if self.peers.verify(peer, status.role) {
            tracing::info!(%peer, height = status.head_height, light = status.role == Role::Light, "peer joined");
            self.count_peers();
            let _ = self.emit(NetworkEvent::PeerJoined { peer, status: status.clone() });
        }
        if !self.bootstrapped {
            self.bootstrapped = true;
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        self.observe(peer, status.head_height);
        self.drive();
        Ok(())
    }

    /// Whether `peer`'s chain was found not to meet this node's for now.
    fn is_forked(&self, peer: &PeerId) -> bool {
        self.forked.get(peer).is_some_and(|until| Instant::now() < *until)
    }

    /// `peer` has a chain `height` high, unless it is on a fork this node cannot follow.
    fn observe(&mut self, peer: PeerId, height: u64) {
        if self.role == Role::Main && !self.is_forked(&peer) {
            self.sync.observe(peer, height);
        }
    }

    /// The node judged a gossiped message: report it to gossipsub, and act on what it showed.
    fn validated(&mut self, ticket: GossipTicket, verdict: Verdict, effect: GossipEffect) {
        self.report(&ticket.id, &ticket.source, verdict);
        match effect {
            GossipEffect::None | GossipEffect::Applied => {}
            // A block far ahead means we are behind: whoever relayed it has its ancestors.
            GossipEffect::Behind { height } => {
                self.observe(ticket.source, height);
                self.drive();
            }
            // Sync catches up with peers that are ahead; a competing branch no higher than ours
            // is fetched back from its tip, parent by parent, until it connects.
            GossipEffect::Orphan { height, parent } => {
                self.observe(ticket.source, height);
                if self.role == Role::Main {
                    self.fetch_ancestor(ticket.source, parent, 1);
                }
                self.drive();
            }
            GossipEffect::Penalise(offence) => {
                self.penalise(ticket.source, offence, "gossiped an invalid message")
            }
        }
    }

    /// Tells gossipsub what validation found, so it relays, drops or blames.
    fn report(&mut self, id: &gossipsub::MessageId, source: &PeerId, verdict: Verdict) {
        let acceptance = match verdict {
            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
            Verdict::Reject => gossipsub::MessageAcceptance::Reject,
        };
        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(id, source, acceptance);
    }

    /// Queues a gossiped message on its kind's lane, or ignores it if the lane is full.
    fn gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        let Some(lane) = self.lanes.iter().find(|lane| lane.topic_hash == message.topic) else {
            self.report(&id, &source, Verdict::Reject);
            return;
        };
        let size = message.data.len();
        let state = lane.state.clone();
        let fits = state.queued_bytes.load(Ordering::Relaxed) + size <= LANE_BYTES;
        let queued = fits && {
            state.queued_bytes.fetch_add(size, Ordering::Relaxed);
            let sent = lane.sender.try_send(RawGossip { id: id.clone(), source, data: message.data });
            if sent.is_err() {
                state.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            }
            sent.is_ok()
        };
        if !queued {
            // Not relayed; peers that need it sync.
            tracing::debug!(%source, "gossip validation queue full; dropping a message");
            state.dropped.fetch_add(1, Ordering::Relaxed);
            self.report(&id, &source, Verdict::Ignore);
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with_p2p(*self.swarm.local_peer_id()).unwrap_or_else(|a| a);
                self.listen_addresses.send_modify(|list| list.push(full.clone()));
                let _ = self.emit(NetworkEvent::Listening(full));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let full = address.with_p2p(*self.swarm.local_peer_id()).unwrap_or_else(|a| a);
                self.listen_addresses.send_modify(|list| list.retain(|a| *a != full));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, connection_id, endpoint, num_established, ..
            } => {
                if let Some(reach) = Reach::of(endpoint.get_remote_address()) {
                    self.links.insert(connection_id, reach);
                }
                if num_established.get() == 1 {
                    let status = Request::Status(self.our_status());
                    self.swarm.behaviour_mut().requests.send_request(&peer_id, status.to_proto());
                }
            }
            SwarmEvent::ConnectionClosed { connection_id, num_established, .. } if num_established > 0 => {
                self.links.remove(&connection_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, .. } => {
                self.links.remove(&connection_id);
                self.sync.forget(&peer_id);
                self.forked.remove(&peer_id);
                self.branch_tried.remove(&peer_id);
                if self.branch.is_some_and(|branch| branch.peer == peer_id) {
                    self.branch = None;
                }
                self.inbound.retain(|_, (peer, _)| *peer != peer_id);
                if self.peers.disconnected(&peer_id) {
                    self.count_peers();
                    let _ = self.emit(NetworkEvent::PeerLeft { peer: peer_id });
                }
                self.drive();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(address);
                    }
                }
            }
            // A peer's own addresses go into the DHT only if they are as widely reachable as the
            // link it came over: a peer reached over the internet cannot plant its (or anyone's)
            // private-network or loopback addresses for the network to dial.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                connection_id,
                info,
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                let link = self.links.get(&connection_id).copied().unwrap_or(Reach::Public);
                for address in info.listen_addrs {
                    if crate::reach::worth_keeping(&address, link) {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, address);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) => {
                let wanted = self.peers.counts().0 < TARGET_PEERS
                    && !self.swarm.is_connected(&peer)
                    && !self.peers.is_banned(&peer)
                    && peer != *self.swarm.local_peer_id();
                if wanted {
                    tracing::debug!(%peer, "dialling a peer found through the DHT");
                    let _ = self.swarm.dial(DialOpts::peer_id(peer).addresses(addresses.into_vec()).build());
                }
            }
            // A link that stops answering is closed, so that the peers dial a fresh connection
            // once the route is back instead of waiting out TCP's retransmission backoff (which
            // grows to minutes after a long partition).
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                tracing::info!(%peer, %error, "a peer stopped answering pings; closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Requests(event)) => self.request_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.gossip(propagation_source, message_id, message),
            _ => {}
        }
    }
}
