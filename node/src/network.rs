//! The network task: it owns the libp2p `Swarm`; the rest of the node talks to it through a
//! bounded channel.
//!
//! - Every new connection starts with a status exchange; a peer on another chain (chain id or
//!   genesis hash) is disconnected with the reason logged.
//! - Gossiped blocks and transactions are validated by the chain actor before they are relayed.
//! - A node behind its peers syncs by range from several of them at once ([`crate::sync`]);
//!   batches are imported by a separate task, so the swarm keeps being polled meanwhile. A batch
//!   that does not connect to the chain reveals a fork: sync rewinds up to the deepest
//!   reorganisation the chain allows and fetches the other branch, which fork choice then judges.
//! - Misbehaving peers collect strikes (invalid blocks, answers that do not fit, request floods);
//!   past a threshold they are disconnected and banned for a while. Gossipsub's own peer score
//!   graylists peers that relay invalid messages.
//! - Kademlia, seeded by the bootnodes, finds more peers; the node dials them up to a target.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use goodwill_ledger::chain::MAX_REORG_DEPTH;
use goodwill_ledger::{Address, Block, Hash, Transaction};
use goodwill_proto::v1 as wire;
use goodwill_protocol::behaviour::{GossipKind, KAD_PROTOCOL, MAX_GOSSIP_BYTES, PROTOCOL_VERSION};
use goodwill_protocol::{Behaviour, BehaviourEvent};
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, identity, kad, request_response};
use prost::Message;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::actor::{ChainHandle, ImportOutcome, SubmitError, TxStatus, Verdict};
use crate::metrics::{self, Metrics};
use crate::sync::{Progress, SyncPlan};

/// Depth of the command queue.
const QUEUE: usize = 256;
/// Peers the node dials on its own (found through Kademlia) until it has this many.
const TARGET_PEERS: usize = 24;
/// Strikes at which a peer is banned.
const BAN_STRIKES: u32 = 100;
/// How long a ban lasts.
const BAN_DURATION: Duration = Duration::from_secs(600);
/// How often the node looks for more peers and lifts expired bans.
const HOUSEKEEPING: Duration = Duration::from_secs(10);
/// Gossiped messages of one kind waiting for validation, in count and in bytes; more are dropped
/// (and not relayed).
const VALIDATION_QUEUE: usize = 1_024;
const VALIDATION_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// How long a peer that throttled our requests is left alone.
const THROTTLE_REST: Duration = Duration::from_secs(1);
/// How often an active sync round looks for peers it may ask again (after a rest).
const SYNC_TICK: Duration = Duration::from_millis(250);
/// Most transactions in one gossiped batch, and most bytes of them; a batch is sent when it is
/// full or [`TX_FLUSH`] after its first transaction.
const TX_BATCH: usize = 512;
const TX_BATCH_BYTES: usize = 512 * 1024;
const TX_FLUSH: Duration = Duration::from_millis(20);
/// Most ancestor requests outstanding at once.
const MAX_ANCESTOR_REQUESTS: usize = 16;
/// Most hashes in one blocks-by-hash request.
const MAX_HASHES: usize = 64;

/// What the rest of the node asks of the network.
pub enum NetCommand {
    PublishBlock(Box<Block>),
    PublishTransaction(Box<Transaction>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
}

/// A connected or banned peer, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    /// Passed the status exchange.
    pub verified: bool,
    /// The highest head height it announced.
    pub height: Option<u64>,
    /// Gossipsub's score of it.
    pub gossip_score: Option<f64>,
    /// This node's strikes against it.
    pub strikes: u32,
    /// Seconds left of its ban, if banned.
    pub banned_for_seconds: Option<u64>,
}

/// A cloneable handle to the network task.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<NetCommand>,
    peers: Arc<AtomicUsize>,
    light_peers: Arc<AtomicUsize>,
    sync: watch::Receiver<Progress>,
    peer_id: PeerId,
    listening: watch::Receiver<Vec<Multiaddr>>,
}

impl NetworkHandle {
    /// Gossips a block this node forged. Dropped if the queue is full: gossip is best effort,
    /// and peers that miss it sync.
    pub fn publish_block(&self, block: Block) {
        let _ = self.commands.try_send(NetCommand::PublishBlock(Box::new(block)));
    }

    /// Gossips a transaction this node admitted.
    pub fn publish_transaction(&self, tx: Transaction) {
        let _ = self.commands.try_send(NetCommand::PublishTransaction(Box::new(tx)));
    }

    /// Peers that passed the status exchange.
    pub fn peers(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Of those, how many are light peers.
    pub fn light_peers(&self) -> usize {
        self.light_peers.load(Ordering::Relaxed)
    }

    /// What sync is doing.
    pub fn sync(&self) -> Progress {
        *self.sync.borrow()
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses this node listens on, each ending in `/p2p/<peer id>`: what another node
    /// passes as `--bootnode`.
    pub fn listening(&self) -> Vec<Multiaddr> {
        self.listening.borrow().clone()
    }

    /// Connected and banned peers; empty if the network stopped.
    pub async fn peer_list(&self) -> Vec<PeerInfo> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(NetCommand::Peers(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }
}

/// Loads the node's network identity from `path`, creating it on first start.
pub fn load_or_create_identity(path: &Path) -> eyre::Result<identity::Keypair> {
    use eyre::WrapErr;
    if path.exists() {
        let bytes = std::fs::read(path).wrap_err_with(|| format!("reading {}", path.display()))?;
        return identity::Keypair::from_protobuf_encoding(&bytes).wrap_err_with(|| {
            format!("{} is not a libp2p key; move it away to make a new one", path.display())
        });
    }
    let key = identity::Keypair::generate_ed25519();
    let bytes = key.to_protobuf_encoding().wrap_err("encoding the network key")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut file| file.write_all(&bytes))
        .wrap_err_with(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// Where the network listens and whom it first dials.
pub struct NetworkConfig {
    pub listen: Vec<Multiaddr>,
    pub bootnodes: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
}

/// Starts the network task.
pub async fn spawn(
    key: identity::Keypair,
    config: NetworkConfig,
    chain: ChainHandle,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> eyre::Result<(NetworkHandle, tokio::task::JoinHandle<()>)> {
    let status = chain.status().await.map_err(|_| eyre::eyre!("the chain stopped"))?;
    let mut swarm = goodwill_protocol::build_swarm(key, config.mdns)
        .map_err(|e| eyre::eyre!("building the network: {e}"))?;
    let topics: Vec<_> =
        GossipKind::ALL.iter().map(|k| (*k, k.topic(&status.chain_id, &status.genesis_hash))).collect();
    for (_, topic) in &topics {
        swarm.behaviour_mut().gossipsub.subscribe(topic).map_err(|e| eyre::eyre!("subscribing: {e}"))?;
    }
    let hashes: Vec<_> = topics.iter().map(|(_, t)| t.hash()).collect();
    let (params, thresholds) = goodwill_protocol::behaviour::peer_score(&hashes);
    swarm
        .behaviour_mut()
        .gossipsub
        .with_peer_score(params, thresholds)
        .map_err(|e| eyre::eyre!("gossip peer scoring: {e}"))?;
    for address in config.listen {
        swarm.listen_on(address.clone()).map_err(|e| eyre::eyre!("listening on {address}: {e}"))?;
    }
    for address in config.bootnodes {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = address.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, address.clone());
        }
        if let Err(error) = swarm.dial(address.clone()) {
            tracing::warn!(%address, %error, "could not dial a bootnode");
        }
    }
    let (commands, inbox) = mpsc::channel(QUEUE);
    let (reports, report_inbox) = mpsc::channel(4);
    // Gossip is validated by the chain actor on tasks of their own, so that a slow import never
    // stops the swarm from being polled: one per kind, each in arrival order, so that a block
    // never waits behind transaction batches (whose signature checks run at low priority, see
    // `verifier`) and reaches the chain thread as soon as it arrives.
    let (validated, validated_inbox) = mpsc::channel(VALIDATION_QUEUE);
    let lanes = GossipKind::ALL.map(|kind| {
        let (sender, inbox) = mpsc::channel(VALIDATION_QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        tokio::spawn(validate_gossip(
            chain.clone(),
            inbox,
            validated.clone(),
            queued_bytes.clone(),
            metrics.clone(),
        ));
        (kind, ValidationLane { sender, queued_bytes })
    });
    drop(validated);
    let peers = Arc::new(AtomicUsize::new(0));
    let light_peers = Arc::new(AtomicUsize::new(0));
    let head = status.head.header().height;
    let (progress, sync) = watch::channel(SyncPlan::<OutboundRequestId>::default().progress(head));
    let (listen_addresses, listening) = watch::channel(Vec::new());
    let peer_id = *swarm.local_peer_id();
    let task = Network {
        listen_addresses,
        swarm,
        chain,
        chain_id: status.chain_id,
        genesis: status.genesis_hash,
        topics,
        verified: HashSet::new(),
        light: HashSet::new(),
        peers: peers.clone(),
        light_peers: light_peers.clone(),
        metrics,
        limits: crate::rate_limit::PeerRateLimiter::new(),
        sync: SyncPlan::default(),
        ready: VecDeque::new(),
        importing: false,
        reports,
        validations: lanes,
        progress,
        head,
        rewound: false,
        forked: HashSet::new(),
        ancestors: HashMap::new(),
        outgoing: Vec::new(),
        outgoing_bytes: 0,
        strikes: HashMap::new(),
        banned: HashMap::new(),
        bootstrapped: false,
    };
    let handle = tokio::spawn(task.run(inbox, report_inbox, validated_inbox, shutdown));
    Ok((NetworkHandle { commands, peers, light_peers, sync, peer_id, listening }, handle))
}

/// How importing a sync batch ended.
#[derive(Debug)]
enum BatchEnd {
    /// Every block was imported or known.
    Done,
    /// A block broke a rule: the peer served it.
    Invalid,
    /// A block did not connect to this node's chain: a fork below the planned ranges.
    Fork,
    /// This node failed, or is stopping.
    Failed,
}

struct ImportReport {
    peer: PeerId,
    end: BatchEnd,
    /// Our head's height after the batch.
    head: u64,
    /// The highest block of the batch.
    top: u64,
}

struct Network {
    swarm: Swarm<Behaviour>,
    /// Where this node listens, for the status API.
    listen_addresses: watch::Sender<Vec<Multiaddr>>,
    chain: ChainHandle,
    chain_id: String,
    genesis: Hash,
    topics: Vec<(GossipKind, gossipsub::IdentTopic)>,
    /// Peers that passed the status exchange (bounded by the connection limits).
    verified: HashSet<PeerId>,
    /// Those of them that said they are light peers.
    light: HashSet<PeerId>,
    peers: Arc<AtomicUsize>,
    light_peers: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    /// Per-peer request rate limits.
    limits: crate::rate_limit::PeerRateLimiter,
    sync: SyncPlan<OutboundRequestId>,
    /// Sync batches waiting for the import task, in height order (bounded by the sync window).
    ready: VecDeque<(PeerId, Vec<Block>)>,
    importing: bool,
    reports: mpsc::Sender<ImportReport>,
    /// Gossip waiting for validation, a lane per kind.
    validations: [(GossipKind, ValidationLane); 2],
    progress: watch::Sender<Progress>,
    /// The head's height as last seen.
    head: u64,
    /// Whether sync already rewound for a fork in this round.
    rewound: bool,
    /// Connected peers on a fork deeper than a reorganisation may go: their heights are not
    /// followed (else every block they relay would restart a sync that cannot succeed, and
    /// forging would stay paused).
    forked: HashSet<PeerId>,
    /// Outstanding requests for missing ancestors of gossiped blocks: who was asked, for which
    /// block, at what depth below the gossiped one.
    ancestors: HashMap<OutboundRequestId, (PeerId, Hash, u64)>,
    /// Transactions admitted since the last gossiped batch, and their size.
    outgoing: Vec<wire::SignedTransaction>,
    outgoing_bytes: usize,
    /// Strikes per peer (connected peers only, and banned ones until the ban ends).
    strikes: HashMap<PeerId, u32>,
    /// Banned peers and when their ban ends.
    banned: HashMap<PeerId, Instant>,
    bootstrapped: bool,
}

impl Network {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<NetCommand>,
        mut reports: mpsc::Receiver<ImportReport>,
        mut validated: mpsc::Receiver<Validated>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let mut sync_tick = tokio::time::interval(SYNC_TICK);
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut flush_tick = tokio::time::interval(TX_FLUSH);
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                _ = shutdown.changed() => return,
                command = inbox.recv() => match command {
                    Some(command) => {
                        self.command(command);
                        Ok(())
                    }
                    None => return,
                },
                Some(report) = reports.recv() => self.imported(report).await,
                Some(result) = validated.recv() => self.validated(result).await,
                _ = housekeeping.tick() => {
                    self.housekeeping();
                    Ok(())
                }
                _ = sync_tick.tick(), if self.sync.active() => self.drive().await,
                _ = flush_tick.tick(), if !self.outgoing.is_empty() => {
                    self.flush_transactions();
                    Ok(())
                }
                event = self.swarm.select_next_some() => self.event(event).await,
            };
            if step.is_err() {
                return; // the chain actor stopped
            }
        }
    }

    fn lane(&self, kind: GossipKind) -> &ValidationLane {
        let (_, lane) = self.validations.iter().find(|(k, _)| *k == kind).expect("a lane per kind");
        lane
    }

    fn topic(&self, kind: GossipKind) -> gossipsub::IdentTopic {
        self.topics
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| t.clone())
            .expect("both kinds are subscribed")
    }

    fn command(&mut self, command: NetCommand) {
        let (kind, bytes) = match command {
            NetCommand::PublishBlock(block) => {
                self.head = self.head.max(block.header().height);
                (GossipKind::Blocks, block.encode())
            }
            NetCommand::PublishTransaction(tx) => {
                self.outgoing_bytes += tx.encoded_len();
                self.outgoing.push(tx.to_wire());
                if self.outgoing.len() >= TX_BATCH || self.outgoing_bytes >= TX_BATCH_BYTES {
                    self.flush_transactions();
                }
                return;
            }
            NetCommand::Peers(reply) => {
                let _ = reply.send(self.peer_list());
                return;
            }
        };
        let topic = self.topic(kind);
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
        let count = batch.transactions.len();
        let topic = self.topic(GossipKind::Transactions);
        if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(topic, batch.encode_to_vec()) {
            tracing::debug!(%error, count, "transaction batch not published");
        }
    }

    fn peer_list(&self) -> Vec<PeerInfo> {
        let now = Instant::now();
        let connected = self.swarm.connected_peers().copied();
        let banned = self.banned.keys().copied();
        let all: HashSet<PeerId> = connected.chain(banned).collect();
        let mut list: Vec<PeerInfo> = all
            .into_iter()
            .map(|peer| PeerInfo {
                peer_id: peer.to_string(),
                verified: self.verified.contains(&peer),
                height: self.sync.height_of(&peer),
                gossip_score: self.swarm.behaviour().gossipsub.peer_score(&peer),
                strikes: self.strikes.get(&peer).copied().unwrap_or(0),
                banned_for_seconds: self
                    .banned
                    .get(&peer)
                    .map(|end| end.saturating_duration_since(now).as_secs()),
            })
            .collect();
        list.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        list
    }

    /// Adds strikes against `peer`; at [`BAN_STRIKES`] it is disconnected and banned.
    fn penalise(&mut self, peer: PeerId, strikes: u32, reason: &str) {
        let total = self.strikes.entry(peer).or_default();
        *total = total.saturating_add(strikes);
        let total = *total;
        tracing::warn!(%peer, reason, strikes = total, "peer misbehaved");
        self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, -f64::from(total));
        if total >= BAN_STRIKES && !self.banned.contains_key(&peer) {
            tracing::warn!(%peer, minutes = BAN_DURATION.as_secs() / 60, "banning a peer");
            self.banned.insert(peer, Instant::now() + BAN_DURATION);
            // Closes its connections and refuses new ones.
            self.swarm.behaviour_mut().blocked.block_peer(peer);
            self.sync.forget(&peer);
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> =
            self.banned.iter().filter(|(_, end)| **end <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            self.banned.remove(&peer);
            self.strikes.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            tracing::info!(%peer, "ban lifted");
        }
        if !self.verified.is_empty() && self.verified.len() < TARGET_PEERS {
            // Look for more peers; found ones are dialled as they enter the routing table.
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    /// This node's status. Takes the handle by value: a `&self` held across the await would
    /// make the task's future require a `Sync` swarm.
    async fn our_status(chain: ChainHandle) -> Result<wire::Status, crate::actor::Stopped> {
        let status = chain.status().await?;
        Ok(wire::Status {
            chain_id: status.chain_id,
            genesis_hash: Bytes::copy_from_slice(status.genesis_hash.as_bytes()),
            head_height: status.head.header().height,
            head_hash: Bytes::copy_from_slice(status.head.hash().as_bytes()),
            role: wire::Role::Main as i32,
            protocol_version: PROTOCOL_VERSION,
        })
    }

    /// Why `status` is not a peer of this chain, if it is not.
    fn mismatch(&self, status: &wire::Status) -> Option<String> {
        if status.chain_id != self.chain_id {
            return Some(format!("it is on chain {:?}, this node on {:?}", status.chain_id, self.chain_id));
        }
        if status.genesis_hash.as_ref() != self.genesis.as_bytes() {
            return Some(format!(
                "its genesis is {}, this node's {}",
                hex::encode(&status.genesis_hash),
                self.genesis
            ));
        }
        None
    }

    /// Publishes the verified peers' counts (the light set only ever holds verified peers).
    fn count_peers(&mut self) {
        let verified = &self.verified;
        self.light.retain(|peer| verified.contains(peer));
        self.peers.store(self.verified.len(), Ordering::Relaxed);
        self.light_peers.store(self.light.len(), Ordering::Relaxed);
    }

    fn refuse(&mut self, peer: PeerId, reason: &str) {
        tracing::warn!(%peer, reason, "refusing a peer of another chain");
        self.verified.remove(&peer);
        self.count_peers();
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    async fn accept_peer(
        &mut self,
        peer: PeerId,
        status: &wire::Status,
    ) -> Result<(), crate::actor::Stopped> {
        if self.verified.insert(peer) {
            let light = status.role == wire::Role::Light as i32;
            tracing::info!(%peer, height = status.head_height, light, "peer joined");
            if light {
                self.light.insert(peer);
            }
            self.count_peers();
        }
        if !self.bootstrapped {
            self.bootstrapped = true;
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        self.observe(peer, status.head_height);
        self.drive().await
    }

    /// `peer` has a chain `height` high, unless it is on a fork this node cannot follow.
    fn observe(&mut self, peer: PeerId, height: u64) {
        if !self.forked.contains(&peer) {
            self.sync.observe(peer, height);
        }
    }

    /// Asks `peer` for the block `hash`, the `depth`-th missing ancestor of a gossiped block,
    /// unless it is asked for already or too many are.
    fn fetch_ancestor(&mut self, peer: PeerId, hash: Hash, depth: u64) {
        if depth > goodwill_ledger::chain::MAX_REORG_DEPTH
            || self.ancestors.len() >= MAX_ANCESTOR_REQUESTS
            || self.ancestors.values().any(|(_, wanted, _)| *wanted == hash)
        {
            return;
        }
        let kind = wire::request::Kind::BlocksByHash(wire::BlocksByHash {
            hashes: vec![Bytes::copy_from_slice(hash.as_bytes())],
        });
        let id = self.request(&peer, kind);
        tracing::debug!(%peer, %hash, depth, "asked for a missing ancestor");
        self.ancestors.insert(id, (peer, hash, depth));
    }

    /// A peer answered an ancestor request: import the block, and ask for its parent if that is
    /// missing too.
    async fn ancestor_arrived(
        &mut self,
        peer: PeerId,
        wanted: Hash,
        depth: u64,
        blocks: Vec<wire::Block>,
    ) -> Result<(), crate::actor::Stopped> {
        let Some(block) = blocks.into_iter().next() else { return Ok(()) };
        let Ok(block) = Block::from_wire(block) else {
            self.penalise(peer, BAN_STRIKES, "served a malformed block");
            return Ok(());
        };
        if block.hash() != wanted {
            self.penalise(peer, 50, "served another block than the one asked for");
            return Ok(());
        }
        let (height, parent) = (block.header().height, block.header().parent_hash);
        match self.chain.import(block).await? {
            ImportOutcome::Orphan => self.fetch_ancestor(peer, parent, depth + 1),
            ImportOutcome::Applied => {
                self.head = self.head.max(height);
                tracing::info!(height, depth, "a fetched ancestor connected a branch");
            }
            ImportOutcome::Invalid => self.penalise(peer, 50, "served an invalid block"),
            _ => {}
        }
        Ok(())
    }

    fn request(&mut self, peer: &PeerId, kind: wire::request::Kind) -> OutboundRequestId {
        self.swarm.behaviour_mut().requests.send_request(peer, wire::Request { kind: Some(kind) })
    }

    /// Sends the range requests sync plans, starts importing the next ready batch, and
    /// publishes progress.
    async fn drive(&mut self) -> Result<(), crate::actor::Stopped> {
        let was_active = self.sync.active();
        if !self.sync.active() {
            // Before a round starts, make sure it starts from the real head.
            self.head = self.chain.status().await?.head.header().height;
        }
        for (peer, range) in self.sync.plan(self.head) {
            let kind = wire::request::Kind::BlocksByRange(wire::BlocksByRange {
                start_height: range.start,
                count: range.count,
            });
            let id = self.request(&peer, kind);
            tracing::debug!(%peer, start = range.start, count = range.count, "asked for blocks");
            self.sync.sent(id, peer, range);
        }
        if !was_active && self.sync.active() {
            self.rewound = false;
            tracing::info!(from = self.head, target = self.sync.target(), "syncing");
        }
        if was_active && !self.sync.active() {
            tracing::info!(height = self.head, "synced; following the head by gossip");
        }
        if !self.importing
            && let Some((peer, blocks)) = self.ready.pop_front()
        {
            self.importing = true;
            let (chain, reports) = (self.chain.clone(), self.reports.clone());
            tokio::spawn(async move {
                let top = blocks.iter().map(|b| b.header().height).max().unwrap_or(0);
                let end = import_batch(&chain, blocks).await;
                let head = match chain.status().await {
                    Ok(status) => status.head.header().height,
                    Err(_) => 0,
                };
                let _ = reports.send(ImportReport { peer, end, head, top }).await;
            });
        }
        self.progress.send_replace(self.sync.progress(self.head));
        Ok(())
    }

    /// The import task finished a batch.
    async fn imported(&mut self, report: ImportReport) -> Result<(), crate::actor::Stopped> {
        self.importing = false;
        tracing::debug!(peer = %report.peer, end = ?report.end, head = report.head, "imported a batch");
        let advanced = report.head > self.head;
        self.head = self.head.max(report.head);
        // Every block was taken, yet the head stays below the batch: its blocks were kept
        // aside on a branch that does not reach our chain (a longer one would have won). The
        // branch forks further down.
        let end = match report.end {
            BatchEnd::Done if report.head < report.top => BatchEnd::Fork,
            end => end,
        };
        match end {
            BatchEnd::Done => {
                if advanced {
                    self.rewound = false;
                }
                let progress = self.sync.progress(self.head);
                tracing::info!(
                    current = progress.current,
                    target = progress.target,
                    blocks_per_second = format!("{:.1}", progress.blocks_per_second),
                    "sync progress"
                );
            }
            BatchEnd::Invalid => {
                self.penalise(report.peer, BAN_STRIKES, "served an invalid block");
                self.ready.clear();
                self.sync.restart_from(self.head + 1);
            }
            BatchEnd::Fork if !self.rewound => {
                // The peer's chain forks below where we asked: fetch its branch from as deep as
                // a reorganisation may go, and let fork choice decide.
                self.rewound = true;
                let from = self.head.saturating_sub(MAX_REORG_DEPTH - 2).max(1);
                tracing::info!(peer = %report.peer, from, "a peer's chain forks from ours; fetching its branch");
                self.ready.clear();
                self.sync.rewind_to(from, report.peer, self.head + 1);
            }
            BatchEnd::Fork => {
                tracing::warn!(
                    peer = %report.peer,
                    depth = MAX_REORG_DEPTH,
                    "a peer's chain forks deeper than a reorganisation may go; not following it"
                );
                self.ready.clear();
                self.forked.insert(report.peer);
                self.sync.forget(&report.peer);
                self.sync.restart_from(self.head + 1);
            }
            BatchEnd::Failed => {
                self.ready.clear();
                self.sync.restart_from(self.head + 1);
            }
        }
        self.drive().await
    }

    async fn event(&mut self, event: SwarmEvent<BehaviourEvent>) -> Result<(), crate::actor::Stopped> {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with_p2p(*self.swarm.local_peer_id()).unwrap_or_else(|a| a);
                // Scripts and tests read this line; it is ready to paste as a --bootnode.
                crate::run::announce(format_args!("P2P listening on {full}"));
                self.listen_addresses.send_modify(|list| list.push(full));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let full = address.with_p2p(*self.swarm.local_peer_id()).unwrap_or_else(|a| a);
                self.listen_addresses.send_modify(|list| list.retain(|a| *a != full));
            }
            SwarmEvent::ConnectionEstablished { peer_id, num_established, .. }
                if num_established.get() == 1 =>
            {
                let status = Self::our_status(self.chain.clone()).await?;
                self.request(&peer_id, wire::request::Kind::Status(status));
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.limits.forget(&peer_id);
                self.sync.forget(&peer_id);
                self.forked.remove(&peer_id);
                if !self.banned.contains_key(&peer_id) {
                    self.strikes.remove(&peer_id);
                }
                if self.verified.remove(&peer_id) {
                    self.count_peers();
                }
                self.drive().await?;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(address);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                for address in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, address);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) => {
                let wanted = self.verified.len() < TARGET_PEERS
                    && !self.swarm.is_connected(&peer)
                    && !self.banned.contains_key(&peer)
                    && peer != *self.swarm.local_peer_id();
                if wanted {
                    tracing::debug!(%peer, "dialling a peer found through the DHT");
                    let _ = self.swarm.dial(DialOpts::peer_id(peer).addresses(addresses.into_vec()).build());
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Requests(event)) => self.request_event(event).await?,
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let kind = GossipKind::ALL.iter().copied().find(|k| message.topic == self.topic(*k).hash());
                let Some(kind) = kind else {
                    self.report(&message_id, &propagation_source, Verdict::Reject);
                    return Ok(());
                };
                let size = message.data.len();
                let pending = Pending {
                    id: message_id,
                    source: propagation_source,
                    kind,
                    data: Bytes::from(message.data),
                };
                let lane = self.lane(kind);
                if lane.queued_bytes.load(Ordering::Relaxed) + size > VALIDATION_QUEUE_BYTES {
                    tracing::debug!(source = %pending.source, "gossip validation queue full; dropping a message");
                    self.metrics.gossip(metrics::Topic::from(pending.kind), metrics::Verdict::Ignored);
                    self.report(&pending.id, &pending.source, Verdict::Ignore);
                    return Ok(());
                }
                lane.queued_bytes.fetch_add(size, Ordering::Relaxed);
                if let Err(error) = lane.sender.try_send(pending) {
                    lane.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                    // A full queue: this message is dropped (not relayed); peers that need it
                    // sync. A closed one: the chain stopped.
                    let pending = match error {
                        mpsc::error::TrySendError::Full(pending) => pending,
                        mpsc::error::TrySendError::Closed(_) => return Err(crate::actor::Stopped),
                    };
                    tracing::debug!(source = %pending.source, "gossip validation queue full; dropping a message");
                    self.metrics.gossip(metrics::Topic::from(pending.kind), metrics::Verdict::Ignored);
                    self.report(&pending.id, &pending.source, Verdict::Ignore);
                }
            }
            _ => {}
        }
        Ok(())
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

    /// The validation task finished a message: report it, and act on what it showed.
    async fn validated(&mut self, result: Validated) -> Result<(), crate::actor::Stopped> {
        self.report(&result.id, &result.source, result.verdict);
        match result.effect {
            Effect::None => {}
            Effect::Applied { height } => self.head = self.head.max(height),
            // A block whose parent is missing, or far ahead, means we are behind: whoever
            // relayed it has its ancestors.
            Effect::Behind { height } => {
                self.observe(result.source, height);
                self.drive().await?;
            }
            // Sync catches up with peers that are ahead; a competing branch no higher than ours
            // is fetched back from its tip, parent by parent, until it connects.
            Effect::Orphan { height, parent } => {
                self.observe(result.source, height);
                self.fetch_ancestor(result.source, parent, 1);
                self.drive().await?;
            }
            Effect::Penalise { strikes, reason } => self.penalise(result.source, strikes, reason),
        }
        Ok(())
    }

    /// Answers a request from a verified peer.
    async fn answer(
        &mut self,
        peer: PeerId,
        request: wire::request::Kind,
    ) -> Result<wire::response::Kind, crate::actor::Stopped> {
        use wire::request::Kind as Req;
        use wire::response::Kind as Res;
        let error = |code: &str, message: String| Res::Error(wire::Error { code: code.into(), message });
        Ok(match request {
            Req::Status(theirs) => {
                // A repeated status: a fresh view of the peer's head.
                self.observe(peer, theirs.head_height);
                self.drive().await?;
                Res::Status(Self::our_status(self.chain.clone()).await?)
            }
            Req::BlocksByRange(range) => {
                let blocks = self.chain.blocks_by_range(range.start_height, range.count).await?;
                Res::Blocks(wire::Blocks { blocks: blocks.iter().map(Block::to_wire).collect() })
            }
            Req::BlocksByHash(request) => {
                if request.hashes.len() > MAX_HASHES {
                    self.penalise(peer, 10, "asked for too many blocks by hash");
                    return Ok(error("bad_request", format!("at most {MAX_HASHES} hashes")));
                }
                let Some(hashes) = request.hashes.iter().map(|h| Hash::from_slice(h)).collect() else {
                    self.penalise(peer, 10, "sent a malformed hash");
                    return Ok(error("bad_request", "hashes are 32 bytes".into()));
                };
                let blocks = self.chain.blocks_by_hash(hashes).await?;
                Res::Blocks(wire::Blocks { blocks: blocks.iter().map(Block::to_wire).collect() })
            }
            Req::SubmitTransaction(signed) => match Transaction::from_wire(signed) {
                Err(reason) => {
                    self.penalise(peer, 10, "submitted a malformed transaction");
                    error("bad_request", reason.to_string())
                }
                Ok(tx) => match self.chain.submit(tx.clone()).await? {
                    Ok(id) => {
                        self.command(NetCommand::PublishTransaction(Box::new(tx)));
                        Res::Submit(wire::SubmitResult {
                            id: Bytes::copy_from_slice(id.as_bytes()),
                            rejection: String::new(),
                        })
                    }
                    Err(reason) => {
                        Res::Submit(wire::SubmitResult { id: Bytes::new(), rejection: reason.to_string() })
                    }
                },
            },
            Req::Account(query) => {
                let Some(address) = Address::from_slice(&query.address) else {
                    return Ok(error("bad_request", "an address is 32 bytes".into()));
                };
                // Read in one step at the head it names, with the proof a light peer checks.
                match self.chain.account_proof(address).await? {
                    Ok(proven) => Res::Account(wire::AccountInfo {
                        balance: proven.account.balance.0,
                        nonce: proven.account.nonce,
                        height: proven.head.header().height,
                        head_hash: Bytes::copy_from_slice(proven.head.hash().as_bytes()),
                        state: proven.state.map(Bytes::from).unwrap_or_default(),
                        proof: Bytes::from(proven.proof),
                    }),
                    Err(message) => error("unavailable", message),
                }
            }
            Req::Lottery(query) => {
                let Some(hash) = Hash::from_slice(&query.block_hash) else {
                    return Ok(error("bad_request", "a block hash is 32 bytes".into()));
                };
                let leaf = |(value, proof): goodwill_ledger::proof::ProvenLeaf| wire::ProvenLeaf {
                    value: value.map(Bytes::from).unwrap_or_default(),
                    proof: Bytes::from(proof),
                };
                match self.chain.lottery(hash).await? {
                    Ok((consensus, forgers)) => Res::Lottery(wire::LotteryProof {
                        block_hash: query.block_hash,
                        consensus: Some(leaf(consensus)),
                        forgers: forgers.into_iter().map(leaf).collect(),
                    }),
                    Err(message) => error("unavailable", message),
                }
            }
            Req::Transaction(query) => {
                let Some(id) = Hash::from_slice(&query.id) else {
                    return Ok(error("bad_request", "an id is 32 bytes".into()));
                };
                use wire::transaction_info::State;
                let mut info = wire::TransactionInfo::default();
                match self.chain.transaction(id).await? {
                    Ok(None) => info.state = State::Unknown as i32,
                    Ok(Some(TxStatus::Pending)) => info.state = State::Pending as i32,
                    Ok(Some(TxStatus::Committed(location))) => {
                        info.state = State::Committed as i32;
                        info.height = location.height;
                        info.block_hash = Bytes::copy_from_slice(location.block_hash.as_bytes());
                        info.index = location.index;
                    }
                    Err(message) => return Ok(error("unavailable", message)),
                }
                Res::Transaction(info)
            }
        })
    }

    async fn request_event(
        &mut self,
        event: request_response::Event<wire::Request, wire::Response>,
    ) -> Result<(), crate::actor::Stopped> {
        use wire::request::Kind as Req;
        use wire::response::Kind as Res;
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => {
                let error =
                    |code: &str, message: String| Res::Error(wire::Error { code: code.into(), message });
                match self.limits.check(&peer) {
                    crate::rate_limit::Decision::Allow => {}
                    crate::rate_limit::Decision::Throttle => {
                        let answer = error("rate_limited", "too many requests; slow down".into());
                        let response = wire::Response { kind: Some(answer) };
                        let _ = self.swarm.behaviour_mut().requests.send_response(channel, response);
                        return Ok(());
                    }
                    crate::rate_limit::Decision::Disconnect => {
                        self.penalise(peer, BAN_STRIKES, "kept flooding requests");
                        let _ = self.swarm.disconnect_peer_id(peer);
                        return Ok(());
                    }
                }
                let answer = match request.kind {
                    Some(Req::Status(theirs)) if !self.verified.contains(&peer) => {
                        match self.mismatch(&theirs) {
                            Some(reason) => {
                                let answer = error("wrong_chain", reason.clone());
                                let _ = self
                                    .swarm
                                    .behaviour_mut()
                                    .requests
                                    .send_response(channel, wire::Response { kind: Some(answer) });
                                self.refuse(peer, &reason);
                                return Ok(());
                            }
                            None => {
                                self.accept_peer(peer, &theirs).await?;
                                Res::Status(Self::our_status(self.chain.clone()).await?)
                            }
                        }
                    }
                    _ if !self.verified.contains(&peer) => {
                        error("unverified", "send a status request first".into())
                    }
                    Some(kind) => self.answer(peer, kind).await?,
                    None => {
                        self.penalise(peer, 10, "sent an empty request");
                        error("bad_request", "empty request".into())
                    }
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .requests
                    .send_response(channel, wire::Response { kind: Some(answer) });
            }
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            } if self.ancestors.contains_key(&request_id) => {
                // An answer to an ancestor request; anything but the block ends the search.
                if let (Some((asked, wanted, depth)), Some(Res::Blocks(batch))) =
                    (self.ancestors.remove(&request_id), response.kind)
                {
                    self.ancestor_arrived(asked, wanted, depth, batch.blocks).await?;
                    self.drive().await?;
                }
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, response },
                ..
            } => match response.kind {
                Some(Res::Status(theirs)) => match self.mismatch(&theirs) {
                    Some(reason) => self.refuse(peer, &reason),
                    None => self.accept_peer(peer, &theirs).await?,
                },
                Some(Res::Blocks(batch)) => {
                    let blocks: Result<Vec<Block>, _> =
                        batch.blocks.into_iter().map(Block::from_wire).collect();
                    match blocks {
                        Err(reason) => {
                            self.sync.failed(&request_id);
                            self.penalise(peer, BAN_STRIKES, &format!("served a malformed block: {reason}"));
                        }
                        Ok(blocks) => {
                            tracing::debug!(%peer, count = blocks.len(), "received blocks");
                            match self.sync.answered(&request_id, blocks) {
                                Ok(ready) => self.ready.extend(ready),
                                Err(misfit) => self.penalise(peer, 50, &misfit.to_string()),
                            }
                        }
                    }
                    self.drive().await?;
                }
                Some(Res::Error(error)) if error.code == "wrong_chain" => self.refuse(peer, &error.message),
                Some(Res::Error(error)) if error.code == "rate_limited" => {
                    // Over the peer's request budget: the range goes to others, and this peer
                    // is left alone for a while rather than pushed into disconnecting us.
                    tracing::debug!(%peer, "throttled by the peer; resting it");
                    self.sync.failed(&request_id);
                    self.sync.rest(peer, Instant::now() + THROTTLE_REST);
                    self.drive().await?;
                }
                _ => {
                    // An error answer to a range request: another peer gets the range.
                    self.sync.failed(&request_id);
                    self.drive().await?;
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(%peer, %error, "request failed");
                self.ancestors.remove(&request_id);
                self.sync.failed(&request_id);
                self.drive().await?;
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // Includes requests over the size limit and undecodable ones.
                if matches!(error, request_response::InboundFailure::Io(_)) {
                    self.penalise(peer, 25, &format!("sent a request that could not be read: {error}"));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The validation queue of one kind of gossip: the task's inbox and the bytes waiting in it.
struct ValidationLane {
    sender: mpsc::Sender<Pending>,
    queued_bytes: Arc<AtomicUsize>,
}

/// A gossiped message waiting for validation.
struct Pending {
    id: gossipsub::MessageId,
    source: PeerId,
    kind: GossipKind,
    data: Bytes,
}

/// What validating a gossiped message found.
struct Validated {
    id: gossipsub::MessageId,
    source: PeerId,
    verdict: Verdict,
    effect: Effect,
}

/// What the swarm's task does about a validated message, besides reporting it.
enum Effect {
    None,
    /// A block extended or switched our chain.
    Applied {
        height: u64,
    },
    /// A block showed that the network is ahead of us.
    Behind {
        height: u64,
    },
    /// A block whose parent this node lacks: the relayer has it (and its ancestors).
    Orphan {
        height: u64,
        parent: Hash,
    },
    /// The sender relayed something no honest node relays.
    Penalise {
        strikes: u32,
        reason: &'static str,
    },
}

/// Validates gossip with the chain actor, one message at a time in arrival order (a block's
/// parent is usually just before it). Ends when either side stops.
async fn validate_gossip(
    chain: ChainHandle,
    mut inbox: mpsc::Receiver<Pending>,
    results: mpsc::Sender<Validated>,
    queued_bytes: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
) {
    while let Some(pending) = inbox.recv().await {
        let size = pending.data.len();
        let validated = validate(&chain, pending.kind, pending.data).await;
        queued_bytes.fetch_sub(size, Ordering::Relaxed);
        let Ok((verdict, effect)) = validated else { return };
        let counted = match verdict {
            Verdict::Accept => metrics::Verdict::Accepted,
            Verdict::Ignore => metrics::Verdict::Ignored,
            Verdict::Reject => metrics::Verdict::Rejected,
        };
        metrics.gossip(metrics::Topic::from(pending.kind), counted);
        let result = Validated { id: pending.id, source: pending.source, verdict, effect };
        if results.send(result).await.is_err() {
            return;
        }
    }
}

/// Validates one gossiped message: a block is imported, a transaction submitted to the pool.
async fn validate(
    chain: &ChainHandle,
    kind: GossipKind,
    data: Bytes,
) -> Result<(Verdict, Effect), crate::actor::Stopped> {
    let penalise = |reason| (Verdict::Reject, Effect::Penalise { strikes: 25, reason });
    match kind {
        GossipKind::Blocks => {
            // Transactions the pool holds are taken from it rather than decoded a second time.
            let Ok(block) = goodwill_ledger::ReceivedBlock::decode(data, MAX_GOSSIP_BYTES) else {
                return Ok(penalise("gossiped an undecodable block"));
            };
            let header = block.header();
            let (height, hash, forged_at, transactions) = (
                header.header().height,
                header.hash(),
                header.header().timestamp_ms,
                block.transaction_count(),
            );
            let parent = header.header().parent_hash;
            let outcome = chain.import_received(block).await?;
            let effect = match outcome {
                ImportOutcome::Applied => {
                    // The forger stamps a block when it seals it: the delay is how long the
                    // block took to reach this node and be imported (clocks permitting).
                    let delay_ms = crate::forger::now_ms().saturating_sub(forged_at);
                    tracing::info!(height, %hash, transactions, delay_ms, "imported a gossiped block");
                    Effect::Applied { height }
                }
                ImportOutcome::Orphan => Effect::Orphan { height, parent },
                ImportOutcome::OutOfRange => Effect::Behind { height },
                ImportOutcome::Invalid => return Ok(penalise("gossiped an invalid block")),
                _ => Effect::None,
            };
            Ok((outcome.verdict(), effect))
        }
        GossipKind::Transactions => {
            let Ok(batch) = wire::TransactionBatch::decode(data) else {
                return Ok(penalise("gossiped an undecodable transaction batch"));
            };
            if batch.transactions.is_empty() || batch.transactions.len() > TX_BATCH {
                return Ok(penalise("gossiped a transaction batch of a size no node sends"));
            }
            let Ok(txs) =
                batch.transactions.into_iter().map(Transaction::from_wire).collect::<Result<Vec<_>, _>>()
            else {
                return Ok(penalise("gossiped an undecodable transaction"));
            };
            let mut verdict = Verdict::Ignore;
            for result in chain.submit_many(txs).await? {
                match result {
                    Ok(_) => verdict = Verdict::Accept,
                    // A rule any node checks alike (signature, chain, size, fee floor, amounts):
                    // whoever relayed it did not check.
                    Err(SubmitError::Rejected(reason)) if breaks_stateless_rule(&reason) => {
                        return Ok((Verdict::Reject, Effect::None));
                    }
                    // Nonces and balances depend on the head, which differs between honest
                    // nodes for a moment; the pool's policy is this node's own: no one's fault.
                    Err(_) => {}
                }
            }
            Ok((verdict, Effect::None))
        }
    }
}

/// Whether a transaction broke a rule that needs no state: every node judges it alike.
fn breaks_stateless_rule(reason: &goodwill_ledger::TxError) -> bool {
    use goodwill_ledger::TxError as E;
    matches!(
        reason,
        E::TooLarge { .. }
            | E::WrongChain { .. }
            | E::FeeTooLow { .. }
            | E::ZeroAmount
            | E::BadSignature
            | E::TicketTooCheap { .. }
            | E::TicketSpan { .. }
            | E::NotEquivocation(_)
            | E::InvalidRegistration(_)
            | E::GasPriceTooLow { .. }
            | E::GasLimitTooHigh { .. }
            | E::InvalidContract(_)
            | E::InvalidSchedule(_)
    )
}

/// Imports `blocks` in order; stops at the first that is invalid or does not connect.
async fn import_batch(chain: &ChainHandle, blocks: Vec<Block>) -> BatchEnd {
    for block in blocks {
        match chain.import(block).await {
            Ok(ImportOutcome::Applied | ImportOutcome::Known | ImportOutcome::Side) => {}
            Ok(ImportOutcome::Invalid) => return BatchEnd::Invalid,
            Ok(ImportOutcome::Orphan | ImportOutcome::OutOfRange) => return BatchEnd::Fork,
            Ok(ImportOutcome::Failed) | Err(_) => return BatchEnd::Failed,
        }
    }
    BatchEnd::Done
}

#[cfg(test)]
mod tests {
    use goodwill_ledger::{Chain, RocksStore, testkit};

    use super::*;

    async fn judge(chain: &ChainHandle, transactions: Vec<wire::SignedTransaction>) -> Verdict {
        let data = Bytes::from(wire::TransactionBatch { transactions }.encode_to_vec());
        validate(chain, GossipKind::Transactions, data).await.unwrap().0
    }

    #[tokio::test]
    async fn a_transaction_batch_is_rejected_only_for_what_every_node_judges_alike() {
        let dir = tempfile::tempdir().unwrap();
        let spec = testkit::spec(4);
        let pool = crate::mempool::PoolConfig::new(spec.pool.tx_expiry_slots, spec.params.min_fee);
        let chain = Chain::open(RocksStore::open(dir.path()).unwrap(), spec).unwrap();
        let (handle, thread) = crate::actor::spawn(chain, None, pool, Metrics::new());
        let (a, b) = (testkit::account(0), testkit::account(1));

        // Not a batch, or an empty one: no node sends that.
        let garbage =
            validate(&handle, GossipKind::Transactions, Bytes::from_static(&[0xff; 16])).await.unwrap();
        assert_eq!(garbage.0, Verdict::Reject);
        assert_eq!(judge(&handle, Vec::new()).await, Verdict::Reject);
        // Nothing admitted, for a reason that depends on this node's head: ignored.
        let far_ahead = testkit::transfer(&a, &b, 1_000, 100, 10).to_wire();
        assert_eq!(judge(&handle, vec![far_ahead.clone()]).await, Verdict::Ignore);
        // One admitted: the batch is relayed.
        let good = testkit::transfer(&a, &b, 0, 100, 10).to_wire();
        assert_eq!(judge(&handle, vec![far_ahead, good]).await, Verdict::Accept);
        // A signature that does not hold, next to a good transaction: rejected.
        let mut forged = testkit::transfer(&a, &b, 1, 100, 10).to_wire();
        forged.signature = testkit::transfer(&a, &b, 2, 100, 10).to_wire().signature;
        let next = testkit::transfer(&a, &b, 1, 100, 11).to_wire();
        assert_eq!(judge(&handle, vec![next, forged]).await, Verdict::Reject);

        drop(handle);
        thread.join().unwrap();
    }
}
