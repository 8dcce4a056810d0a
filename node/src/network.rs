//! The network task: it owns the libp2p `Swarm`; the rest of the node talks to it through a
//! bounded channel. Every new connection starts with a status exchange, and a peer on another
//! chain (chain id or genesis hash) is disconnected with the reason logged. Gossiped blocks and
//! transactions are validated by the chain actor before they are relayed; a node that learns of
//! a longer chain syncs it by range.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use goodwill_ledger::{Block, Hash, Transaction};
use goodwill_proto::v1 as wire;
use goodwill_protocol::behaviour::{GossipKind, MAX_GOSSIP_BYTES, PROTOCOL_VERSION};
use goodwill_protocol::{Behaviour, BehaviourEvent};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, identity, request_response};
use tokio::sync::{mpsc, watch};

use crate::actor::{ChainHandle, ImportOutcome, MAX_RANGE_BLOCKS, SubmitError, Verdict};

/// Depth of the command queue.
const QUEUE: usize = 256;

/// What the rest of the node asks of the network.
pub enum NetCommand {
    PublishBlock(Box<Block>),
    PublishTransaction(Box<Transaction>),
}

/// A cloneable handle to the network task.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<NetCommand>,
    peers: Arc<AtomicUsize>,
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
    for address in config.listen {
        swarm.listen_on(address.clone()).map_err(|e| eyre::eyre!("listening on {address}: {e}"))?;
    }
    for address in config.bootnodes {
        if let Err(error) = swarm.dial(address.clone()) {
            tracing::warn!(%address, %error, "could not dial a bootnode");
        }
    }
    let (commands, inbox) = mpsc::channel(QUEUE);
    let peers = Arc::new(AtomicUsize::new(0));
    let task = Network {
        swarm,
        chain,
        chain_id: status.chain_id,
        genesis: status.genesis_hash,
        topics,
        verified: HashSet::new(),
        syncing: false,
        peers: peers.clone(),
        limits: crate::rate_limit::PeerRateLimiter::new(),
    };
    let handle = tokio::spawn(task.run(inbox, shutdown));
    Ok((NetworkHandle { commands, peers }, handle))
}

struct Network {
    swarm: Swarm<Behaviour>,
    chain: ChainHandle,
    chain_id: String,
    genesis: Hash,
    topics: Vec<(GossipKind, gossipsub::IdentTopic)>,
    /// Peers that passed the status exchange (bounded by the connection limits).
    verified: HashSet<PeerId>,
    /// Whether a range request is in flight.
    syncing: bool,
    peers: Arc<AtomicUsize>,
    /// Per-peer request rate limits.
    limits: crate::rate_limit::PeerRateLimiter,
}

impl Network {
    async fn run(mut self, mut inbox: mpsc::Receiver<NetCommand>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                command = inbox.recv() => match command {
                    Some(command) => self.command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => {
                    if self.event(event).await.is_err() {
                        return; // the chain actor stopped
                    }
                }
            }
        }
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
            NetCommand::PublishBlock(block) => (GossipKind::Blocks, block.encode()),
            NetCommand::PublishTransaction(tx) => (GossipKind::Transactions, tx.encode()),
        };
        let topic = self.topic(kind);
        if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
            // No peers yet, or a duplicate: peers that missed it will sync.
            tracing::debug!(%error, ?kind, "gossip not published");
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

    fn refuse(&mut self, peer: PeerId, reason: &str) {
        tracing::warn!(%peer, reason, "refusing a peer of another chain");
        self.verified.remove(&peer);
        self.peers.store(self.verified.len(), Ordering::Relaxed);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn accept_peer(&mut self, peer: PeerId) {
        if self.verified.insert(peer) {
            tracing::info!(%peer, "peer joined");
            self.peers.store(self.verified.len(), Ordering::Relaxed);
        }
    }

    fn request(&mut self, peer: &PeerId, kind: wire::request::Kind) {
        self.swarm.behaviour_mut().requests.send_request(peer, wire::Request { kind: Some(kind) });
    }

    /// Asks `peer` for blocks after our head when it is ahead.
    async fn sync_from(&mut self, peer: PeerId, their_height: u64) -> Result<(), crate::actor::Stopped> {
        let ours = self.chain.status().await?.head.header().height;
        if their_height > ours && !self.syncing {
            self.syncing = true;
            let range = wire::BlocksByRange { start_height: ours + 1, count: MAX_RANGE_BLOCKS };
            self.request(&peer, wire::request::Kind::BlocksByRange(range));
        }
        Ok(())
    }

    async fn event(&mut self, event: SwarmEvent<BehaviourEvent>) -> Result<(), crate::actor::Stopped> {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with_p2p(*self.swarm.local_peer_id()).unwrap_or_else(|a| a);
                // Scripts and tests read this line; it is ready to paste as a --bootnode.
                println!("P2P listening on {full}");
            }
            SwarmEvent::ConnectionEstablished { peer_id, num_established, .. }
                if num_established.get() == 1 =>
            {
                let status = Self::our_status(self.chain.clone()).await?;
                self.request(&peer_id, wire::request::Kind::Status(status));
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.limits.forget(&peer_id);
                if self.verified.remove(&peer_id) {
                    self.peers.store(self.verified.len(), Ordering::Relaxed);
                }
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
            })) => {
                for address in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, address);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Requests(event)) => self.request_event(event).await?,
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let verdict = self.gossip(&message).await?;
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                };
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Validates a gossiped message with the chain actor.
    async fn gossip(&mut self, message: &gossipsub::Message) -> Result<Verdict, crate::actor::Stopped> {
        let data = Bytes::copy_from_slice(&message.data);
        if message.topic == self.topic(GossipKind::Blocks).hash() {
            let Ok(block) = Block::decode(data, MAX_GOSSIP_BYTES) else { return Ok(Verdict::Reject) };
            let height = block.header().height;
            let outcome = self.chain.import(block).await?;
            // A block whose parent is missing, or far ahead, means we are behind: sync from
            // whoever sent it.
            if matches!(outcome, ImportOutcome::Orphan | ImportOutcome::OutOfRange)
                && let Some(source) = message.source
            {
                self.sync_from(source, height).await?;
            }
            Ok(outcome.verdict())
        } else if message.topic == self.topic(GossipKind::Transactions).hash() {
            let Ok(tx) = Transaction::decode(data, MAX_GOSSIP_BYTES) else { return Ok(Verdict::Reject) };
            Ok(match self.chain.submit(tx).await? {
                Ok(_) => Verdict::Accept,
                // Breaks a rule of the chain: whoever relayed it did not check.
                Err(SubmitError::Rejected(_)) => Verdict::Reject,
                // This node's policy (full, stale, its own minimum fee): no one's fault.
                Err(SubmitError::Pool(_) | SubmitError::Store(_)) => Verdict::Ignore,
            })
        } else {
            Ok(Verdict::Reject)
        }
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
                        tracing::warn!(%peer, "disconnecting a peer that keeps flooding requests");
                        let _ = self.swarm.disconnect_peer_id(peer);
                        return Ok(());
                    }
                }
                let answer = match request.kind {
                    Some(Req::Status(theirs)) => match self.mismatch(&theirs) {
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
                            self.accept_peer(peer);
                            self.sync_from(peer, theirs.head_height).await?;
                            Res::Status(Self::our_status(self.chain.clone()).await?)
                        }
                    },
                    _ if !self.verified.contains(&peer) => {
                        error("unverified", "send a status request first".into())
                    }
                    Some(Req::BlocksByRange(range)) => {
                        let blocks = self.chain.blocks_by_range(range.start_height, range.count).await?;
                        Res::Blocks(wire::Blocks { blocks: blocks.iter().map(Block::to_wire).collect() })
                    }
                    Some(Req::SubmitTransaction(signed)) => match Transaction::from_wire(signed) {
                        Err(reason) => error("bad_request", reason.to_string()),
                        Ok(tx) => match self.chain.submit(tx.clone()).await? {
                            Ok(id) => {
                                self.command(NetCommand::PublishTransaction(Box::new(tx)));
                                Res::Submit(wire::SubmitResult {
                                    id: Bytes::copy_from_slice(id.as_bytes()),
                                    rejection: String::new(),
                                })
                            }
                            Err(reason) => Res::Submit(wire::SubmitResult {
                                id: Bytes::new(),
                                rejection: reason.to_string(),
                            }),
                        },
                    },
                    Some(Req::BlocksByHash(_)) => {
                        error("unsupported", "blocks by hash are not served yet".into())
                    }
                    None => error("bad_request", "empty request".into()),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .requests
                    .send_response(channel, wire::Response { kind: Some(answer) });
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => match response.kind {
                Some(Res::Status(theirs)) => match self.mismatch(&theirs) {
                    Some(reason) => self.refuse(peer, &reason),
                    None => {
                        self.accept_peer(peer);
                        self.sync_from(peer, theirs.head_height).await?;
                    }
                },
                Some(Res::Blocks(batch)) => {
                    self.syncing = false;
                    let count = batch.blocks.len();
                    let mut last_height = 0;
                    for block in batch.blocks {
                        let Ok(block) = Block::from_wire(block) else { break };
                        last_height = block.header().height;
                        if self.chain.import(block).await? == ImportOutcome::Invalid {
                            tracing::warn!(%peer, "a peer served an invalid block");
                            break;
                        }
                    }
                    tracing::info!(%peer, count, up_to = last_height, "synced blocks");
                    if count as u32 == MAX_RANGE_BLOCKS {
                        self.sync_from(peer, last_height + 1).await?;
                    }
                }
                Some(Res::Error(error)) if error.code == "wrong_chain" => self.refuse(peer, &error.message),
                _ => {}
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                self.syncing = false;
                tracing::debug!(%peer, %error, "request failed");
            }
            _ => {}
        }
        Ok(())
    }
}
