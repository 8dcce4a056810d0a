//! The network service: one task ([`EventLoop`]) owns the swarm; the node talks to it through a
//! [`NetworkHandle`] and hears from it through [`NetworkEvents`] and the [`GossipLane`]s.
//!
//! The loop never waits for the chain. Whatever needs the chain leaves as an event (a request to
//! answer, a sync batch or a fetched ancestor to import, a gossiped message to validate) and the
//! answer comes back as a command on the handle (a response, an import report, a verdict). The
//! chain's head comes in on a `watch` channel. A slow import or a busy verifier therefore
//! delays only the work that needs it; every peer connection keeps being served.
//!
//! Every queue is bounded: events, commands and the lanes by count, the lanes also by bytes,
//! pending inbound requests and outbound queries by count. What does not fit is answered
//! `unavailable` (a request), ignored (gossip: peers that need it sync) or retried (a sync
//! batch).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use goodwill_ledger::{Block, Hash, ReceivedBlock, SealedHeader, Transaction};
use goodwill_proto::v1 as wire;
use libp2p::{Multiaddr, PeerId, gossipsub, identity};
use prost::Message;
use tokio::sync::{mpsc, oneshot, watch};

use crate::behaviour::{GossipKind, MAX_GOSSIP_BYTES};
use crate::handshake::ChainIdentity;
use crate::message::{Request, Response, Role, WireError};
use crate::peers::{Offence, PeerInfo};
use crate::sync::Progress;

pub use crate::event_loop::EventLoop;

/// Depth of the command queue.
pub(crate) const COMMANDS: usize = 1_024;
/// Depth of the event queue.
pub(crate) const EVENTS: usize = 512;
/// Gossiped messages of one kind waiting for validation, in count and in bytes; more are
/// ignored (not relayed).
pub(crate) const LANE_MESSAGES: usize = 1_024;
pub(crate) const LANE_BYTES: usize = 32 * 1024 * 1024;
/// Most transactions in one gossiped batch.
pub const TX_BATCH: usize = 512;
/// Most votes in one gossiped batch.
pub const VOTE_BATCH: usize = 64;

/// Where the network listens, whom it dials first, and what it is.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// A main node serves the ledger and syncs; a light peer only asks.
    pub role: Role,
    /// The chain this node is on: peers of another are refused.
    pub chain: ChainIdentity,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Addresses the operator says peers reach this node at (a public IP or DNS name and the
    /// port forwarded to it): advertised at once, without waiting for peers to confirm them.
    pub external: Vec<Multiaddr>,
    /// Peers to dial at start (and seed Kademlia with).
    pub bootnodes: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS (it multicasts on the real interface).
    pub mdns: bool,
    /// Connections and bans per IP address.
    pub address_limits: crate::address_guard::AddressLimits,
    /// The chain spec's JSON, served to whoever asks ([`Request::ChainSpec`]); `None` for a
    /// peer that serves nothing.
    pub chain_spec: Option<String>,
}

/// The chain's head, as the node publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
    /// The height of the last final block on it: a fork is looked for above it, never below.
    pub finalized: u64,
}

/// The network could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The swarm could not be built (transport or behaviour).
    #[error("building the network: {0}")]
    Build(String),
    /// A listen address could not be used.
    #[error("listening on {address}: {reason}; is the port taken?")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A gossip topic could not be joined.
    #[error("joining the gossip topics: {0}")]
    Subscribe(String),
}

/// A gossip validation result, as gossipsub takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: relay it.
    Accept,
    /// Known already, or not useful yet: do not relay, do not blame the sender.
    Ignore,
    /// Invalid: do not relay, and penalise the sender.
    Reject,
}

/// What validating a gossiped message showed, besides its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipEffect {
    /// Nothing more.
    None,
    /// A block extended or switched the chain.
    Applied,
    /// A block showed that the network is ahead of this node.
    Behind {
        /// The block's height.
        height: u64,
    },
    /// A block whose parent this node lacks: the relayer has it (and its ancestors).
    Orphan {
        /// The block's height.
        height: u64,
        /// The missing parent.
        parent: Hash,
    },
    /// The sender relayed something no honest node relays.
    Penalise(Offence),
}

/// Identifies an inbound request until it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InboundId(pub(crate) u64);

/// How importing a sync batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchEnd {
    /// Every block was imported or known.
    Done,
    /// A block broke a rule: the peer served it.
    Invalid,
    /// A block did not connect to this node's chain: a fork below the planned ranges.
    Fork,
    /// A block is stamped further ahead of this node's clock than clocks drift: the peer's
    /// claim counts no further than the blocks before it.
    FromTheFuture,
    /// This node failed, or is stopping.
    Failed,
}

/// What importing a fetched ancestor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AncestorOutcome {
    /// It connected a branch.
    Applied,
    /// Its own parent is missing too.
    Orphan,
    /// It breaks a rule.
    Invalid,
    /// It is further below the head than the side pool reaches: the branch is downloaded by
    /// range instead ([`crate::sync::SyncPlan::fetch_branch`]).
    TooDeep,
    /// Anything else (known, kept aside, out of range): the search ends.
    Ended,
}

/// What the network asks of the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A verified peer asks what only the chain can answer; answer with
    /// [`NetworkHandle::respond`]. Never a status: the handshake is the loop's own.
    Request {
        /// Who asks.
        peer: PeerId,
        /// Where the answer goes.
        id: InboundId,
        /// What it asks.
        request: Request,
    },
    /// Sync fetched these consecutive blocks: import them in order and report with
    /// [`NetworkHandle::batch_imported`]. One batch is out at a time.
    ImportBatch {
        /// Who served them.
        peer: PeerId,
        /// The blocks, lowest first.
        blocks: Vec<Block>,
    },
    /// A missing ancestor of a gossiped block arrived: import it and report with
    /// [`NetworkHandle::ancestor_imported`].
    Ancestor {
        /// Who served it.
        peer: PeerId,
        /// The block (its hash is the one asked for).
        block: Box<Block>,
        /// How far below the gossiped block it is.
        depth: u64,
    },
    /// A peer passed the handshake.
    PeerJoined {
        /// The peer.
        peer: PeerId,
        /// What it said.
        status: crate::message::Status,
    },
    /// A peer's status showed it on another chain: it was refused and disconnected.
    PeerRefused {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: crate::handshake::Mismatch,
    },
    /// A verified peer left or was dropped.
    PeerLeft {
        /// The peer.
        peer: PeerId,
    },
    /// The node listens on a new address (with `/p2p/<peer id>`: what another passes as a
    /// bootnode).
    Listening(Multiaddr),
}

/// A gossiped message, decoded, waiting for the node's verdict ([`NetworkHandle::validated`]).
#[derive(Debug)]
pub struct Gossip {
    /// What the verdict is about.
    pub ticket: GossipTicket,
    /// The message.
    pub message: GossipMessage,
    /// Messages of this kind dropped since the last one taken, because the lane was full.
    pub dropped_before: u64,
    /// Messages of this kind rejected since the last one taken, because they did not decode.
    pub rejected_before: u64,
}

/// Identifies a gossiped message until its verdict.
#[derive(Debug, Clone)]
pub struct GossipTicket {
    pub(crate) id: gossipsub::MessageId,
    /// The peer it came from.
    pub source: PeerId,
    /// Its kind.
    pub kind: GossipKind,
}

/// What was gossiped.
#[derive(Debug)]
pub enum GossipMessage {
    /// A block, its transactions still in wire form.
    Block(Box<ReceivedBlock>),
    /// A batch of transactions.
    Transactions(Vec<Transaction>),
    /// A batch of finality votes, their signatures not yet checked.
    Votes(Vec<goodwill_ledger::finality::SignedVote>),
}

/// A raw message as the loop queues it.
pub(crate) struct RawGossip {
    pub(crate) id: gossipsub::MessageId,
    pub(crate) source: PeerId,
    pub(crate) data: Vec<u8>,
}

/// The queue of one kind of gossip, and the bytes waiting in it.
pub(crate) struct LaneState {
    pub(crate) queued_bytes: AtomicUsize,
    pub(crate) dropped: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

/// The gossip of one kind, in arrival order, decoded as it is taken: one lane per kind, so that
/// a block never waits behind transaction batches.
pub struct GossipLane {
    kind: GossipKind,
    inbox: mpsc::Receiver<RawGossip>,
    state: Arc<LaneState>,
    network: NetworkHandle,
}

impl GossipLane {
    /// Which kind this lane carries.
    pub fn kind(&self) -> GossipKind {
        self.kind
    }

    /// The next gossiped message that decodes; `None` when the network stopped. One that does
    /// not decode is rejected here and its sender penalised.
    pub async fn next(&mut self) -> Option<Gossip> {
        loop {
            let raw = self.inbox.recv().await?;
            self.state.queued_bytes.fetch_sub(raw.data.len(), Ordering::Relaxed);
            let ticket = GossipTicket { id: raw.id, source: raw.source, kind: self.kind };
            match decode_gossip(self.kind, raw.data) {
                Ok(message) => {
                    let dropped_before = self.state.dropped.swap(0, Ordering::Relaxed);
                    let rejected_before = self.state.rejected.swap(0, Ordering::Relaxed);
                    return Some(Gossip { ticket, message, dropped_before, rejected_before });
                }
                Err(reason) => {
                    tracing::debug!(source = %ticket.source, %reason, "undecodable gossip");
                    self.state.rejected.fetch_add(1, Ordering::Relaxed);
                    let penalty = GossipEffect::Penalise(Offence::InvalidGossip);
                    self.network.validated(ticket, Verdict::Reject, penalty).await;
                }
            }
        }
    }
}

/// Reads a gossiped message of `kind` as a lane's consumer does: a block's header in full and its
/// transactions' framing, or a batch of 1 to [`TX_BATCH`] transactions, each decoded. Public for
/// the fuzz targets (`fuzz/`).
pub fn decode_gossip(kind: GossipKind, data: Vec<u8>) -> Result<GossipMessage, WireError> {
    let malformed = |reason: String| WireError::Malformed { field: "gossip", reason };
    match kind {
        GossipKind::Blocks => ReceivedBlock::decode(bytes::Bytes::from(data), MAX_GOSSIP_BYTES)
            .map(|block| GossipMessage::Block(Box::new(block)))
            .map_err(|e| malformed(e.to_string())),
        GossipKind::Transactions => {
            let batch =
                wire::TransactionBatch::decode(data.as_slice()).map_err(|e| malformed(e.to_string()))?;
            if batch.transactions.is_empty() || batch.transactions.len() > TX_BATCH {
                return Err(WireError::TooMany {
                    what: "transactions",
                    count: batch.transactions.len(),
                    limit: TX_BATCH,
                });
            }
            let txs =
                batch.transactions.into_iter().map(Transaction::from_wire).collect::<Result<Vec<_>, _>>();
            txs.map(GossipMessage::Transactions).map_err(|e| malformed(e.to_string()))
        }
        GossipKind::Votes => {
            let batch = wire::VoteBatch::decode(data.as_slice()).map_err(|e| malformed(e.to_string()))?;
            if batch.votes.is_empty() || batch.votes.len() > VOTE_BATCH {
                return Err(WireError::TooMany {
                    what: "votes",
                    count: batch.votes.len(),
                    limit: VOTE_BATCH,
                });
            }
            let votes =
                batch.votes.iter().map(crate::message::vote_from_wire).collect::<Result<Vec<_>, _>>()?;
            Ok(GossipMessage::Votes(votes))
        }
    }
}

/// A query to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// It did not answer in time, the connection dropped, or it does not speak the protocol.
    #[error("the peer did not answer: {0}")]
    NoAnswer(String),
    /// Its answer did not decode.
    #[error("the peer's answer is malformed: {0}")]
    Malformed(#[from] WireError),
    /// Too many queries are out; try again.
    #[error("too many queries are waiting for answers")]
    Busy,
    /// The network stopped.
    #[error("the network has stopped")]
    Stopped,
}

/// What the node asks of the loop.
pub(crate) enum Command {
    Respond(InboundId, Box<Response>),
    Validated(GossipTicket, Verdict, GossipEffect),
    BatchImported {
        peer: PeerId,
        end: BatchEnd,
        head: u64,
        top: u64,
    },
    AncestorImported {
        peer: PeerId,
        block: Hash,
        height: u64,
        parent: Hash,
        depth: u64,
        outcome: AncestorOutcome,
    },
    PublishBlock(Box<Block>),
    PublishTransaction(Box<Transaction>),
    PublishVotes(Vec<goodwill_ledger::finality::SignedVote>),
    Query(PeerId, Box<Request>, oneshot::Sender<Result<Response, QueryError>>),
    Ban(PeerId, String),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
}

/// Numbers the loop publishes for readers that must not wait for it.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) peers: AtomicUsize,
    pub(crate) light_peers: AtomicUsize,
}

/// A cloneable handle to the network task.
#[derive(Clone)]
pub struct NetworkHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) sync: watch::Receiver<Progress>,
    pub(crate) listening: watch::Receiver<Vec<Multiaddr>>,
    pub(crate) peer_id: PeerId,
}

impl NetworkHandle {
    /// Sends a command without waiting: a full queue drops it (gossip is best effort, peers
    /// that miss something sync; a request left unanswered times out at the asker).
    fn send(&self, command: Command) {
        if self.commands.try_send(command).is_err() {
            tracing::debug!("the network's command queue is full; dropping a command");
        }
    }

    /// Answers the inbound request `id`.
    pub async fn respond(&self, id: InboundId, response: Response) {
        self.deliver(Command::Respond(id, Box::new(response))).await;
    }

    /// Sends a command the loop must not miss, waiting while its queue is full: the waiting is
    /// the node's (its answering and validating tasks slow down), never the loop's.
    async fn deliver(&self, command: Command) {
        let _ = self.commands.send(command).await;
    }

    /// Reports the verdict on a gossiped message.
    pub async fn validated(&self, ticket: GossipTicket, verdict: Verdict, effect: GossipEffect) {
        self.deliver(Command::Validated(ticket, verdict, effect)).await;
    }

    /// Reports how importing a sync batch from `peer` ended: `head` is the chain's height after
    /// it, `top` the batch's highest block. Sync waits for it.
    pub async fn batch_imported(&self, peer: PeerId, end: BatchEnd, head: u64, top: u64) {
        self.deliver(Command::BatchImported { peer, end, head, top }).await;
    }

    /// Reports what importing a fetched ancestor (the block `header` seals) did.
    pub async fn ancestor_imported(
        &self,
        peer: PeerId,
        header: &SealedHeader,
        depth: u64,
        outcome: AncestorOutcome,
    ) {
        self.deliver(Command::AncestorImported {
            peer,
            block: header.hash(),
            height: header.header().height,
            parent: header.header().parent_hash,
            depth,
            outcome,
        })
        .await;
    }

    /// Gossips a block this node forged.
    pub async fn publish_block(&self, block: Block) {
        // Never dropped: a forged block that is not published forks the chain.
        self.deliver(Command::PublishBlock(Box::new(block))).await;
    }

    /// Gossips a transaction this node admitted (batched with others for a few milliseconds).
    /// Waits while the loop's queue is full: a transaction admitted but never gossiped would
    /// wait for this node's own slot, so the submitter is slowed down instead.
    pub async fn publish_transaction(&self, tx: Transaction) {
        self.deliver(Command::PublishTransaction(Box::new(tx))).await;
    }

    /// Gossips finality votes (this node's, at most [`VOTE_BATCH`] at once).
    pub async fn publish_votes(&self, votes: Vec<goodwill_ledger::finality::SignedVote>) {
        self.deliver(Command::PublishVotes(votes)).await;
    }

    /// Asks `peer` something and waits for its answer.
    pub async fn query(&self, peer: PeerId, request: Request) -> Result<Response, QueryError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Query(peer, Box::new(request), reply))
            .await
            .map_err(|_| QueryError::Stopped)?;
        answer.await.map_err(|_| QueryError::Stopped)?
    }

    /// Disconnects and bans `peer` for `reason`.
    pub fn ban(&self, peer: PeerId, reason: String) {
        self.send(Command::Ban(peer, reason));
    }

    /// Peers that passed the handshake.
    pub fn peers(&self) -> usize {
        self.shared.peers.load(Ordering::Relaxed)
    }

    /// Of those, how many are light peers.
    pub fn light_peers(&self) -> usize {
        self.shared.light_peers.load(Ordering::Relaxed)
    }

    /// What sync is doing.
    pub fn sync(&self) -> Progress {
        *self.sync.borrow()
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses this node listens on, each ending in `/p2p/<peer id>`.
    pub fn listening(&self) -> Vec<Multiaddr> {
        self.listening.borrow().clone()
    }

    /// Connected and banned peers; empty if the network stopped.
    pub async fn peer_list(&self) -> Vec<PeerInfo> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Peers(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }
}

/// What the network tells the node, apart from gossip.
pub struct NetworkEvents {
    pub(crate) events: mpsc::Receiver<NetworkEvent>,
    pub(crate) lanes: Vec<GossipLane>,
}

impl NetworkEvents {
    /// The next event; `None` when the network stopped.
    pub async fn next(&mut self) -> Option<NetworkEvent> {
        self.events.recv().await
    }

    /// The gossip lanes (one per kind this role follows), to be drained on tasks of their own.
    pub fn take_lanes(&mut self) -> Vec<GossipLane> {
        std::mem::take(&mut self.lanes)
    }
}

/// Builds the network for `key`: listens, dials the bootnodes and joins the chain's topics. Run
/// the returned loop on a task of its own; `head` is the chain's head as it changes.
pub fn new(
    key: identity::Keypair,
    config: NetworkConfig,
    head: watch::Receiver<Head>,
) -> Result<(NetworkHandle, NetworkEvents, EventLoop), NetworkError> {
    let mut swarm = crate::build_swarm(key, config.mdns).map_err(NetworkError::Build)?;
    swarm.behaviour_mut().addresses = crate::address_guard::AddressGuard::new(config.address_limits);
    let kinds: &[GossipKind] = match config.role {
        Role::Main => &GossipKind::ALL,
        // A light peer follows blocks, and pushes transactions by request.
        Role::Light => &[GossipKind::Blocks],
    };
    let topics: Vec<_> =
        kinds.iter().map(|k| (*k, k.topic(&config.chain.chain_id, &config.chain.genesis))).collect();
    for (_, topic) in &topics {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(topic)
            .map_err(|e| NetworkError::Subscribe(e.to_string()))?;
    }
    let hashes: Vec<_> = topics.iter().map(|(_, t)| t.hash()).collect();
    let (params, thresholds) = crate::behaviour::peer_score(&hashes);
    swarm.behaviour_mut().gossipsub.with_peer_score(params, thresholds).map_err(NetworkError::Subscribe)?;
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| NetworkError::Listen { address: address.clone(), reason: e.to_string() })?;
    }
    for address in &config.external {
        swarm.add_external_address(address.clone());
    }
    for address in &config.bootnodes {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = address.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, address.clone());
        }
        if let Err(error) = swarm.dial(address.clone()) {
            tracing::warn!(%address, %error, "could not dial a bootnode");
        }
    }
    let (commands, inbox) = mpsc::channel(COMMANDS);
    let (events_out, events) = mpsc::channel(EVENTS);
    let shared = Arc::new(Shared::default());
    let height = head.borrow().height;
    let (progress, sync) =
        watch::channel(crate::sync::SyncPlan::<()>::default().progress(height, std::time::Instant::now()));
    let (listen_addresses, listening) = watch::channel(Vec::new());
    let handle =
        NetworkHandle { commands, shared: shared.clone(), sync, listening, peer_id: *swarm.local_peer_id() };
    let mut lanes = Vec::new();
    let mut lane_inputs = Vec::new();
    for (kind, topic) in topics {
        let (sender, inbox) = mpsc::channel(LANE_MESSAGES);
        let state = Arc::new(LaneState {
            queued_bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        });
        lanes.push(GossipLane { kind, inbox, state: state.clone(), network: handle.clone() });
        lane_inputs.push(crate::event_loop::LaneInput {
            kind,
            topic_hash: topic.hash(),
            topic,
            sender,
            state,
        });
    }
    let event_loop = EventLoop::new(crate::event_loop::Parts {
        swarm,
        role: config.role,
        chain: config.chain,
        head,
        inbox,
        events: events_out,
        lanes: lane_inputs,
        shared,
        progress,
        listen_addresses,
        bootnodes: config.bootnodes,
        chain_spec: config.chain_spec,
    });
    Ok((handle, NetworkEvents { events, lanes }, event_loop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_no_node_sends_does_not_decode() {
        assert!(decode_gossip(GossipKind::Transactions, vec![0xff; 16]).is_err(), "not a batch");
        let empty = wire::TransactionBatch { transactions: Vec::new() }.encode_to_vec();
        assert!(matches!(
            decode_gossip(GossipKind::Transactions, empty),
            Err(WireError::TooMany { count: 0, .. })
        ));
        let (a, b) = (goodwill_ledger::testkit::account(0), goodwill_ledger::testkit::account(1));
        let tx = goodwill_ledger::testkit::transfer(&a, &b, 0, 100, 10).to_wire();
        let too_many =
            wire::TransactionBatch { transactions: vec![tx.clone(); TX_BATCH + 1] }.encode_to_vec();
        assert!(decode_gossip(GossipKind::Transactions, too_many).is_err());
        let one = wire::TransactionBatch { transactions: vec![tx] }.encode_to_vec();
        assert!(
            matches!(decode_gossip(GossipKind::Transactions, one), Ok(GossipMessage::Transactions(txs)) if txs.len() == 1)
        );
        assert!(decode_gossip(GossipKind::Blocks, vec![1, 2, 3]).is_err());
    }
}
