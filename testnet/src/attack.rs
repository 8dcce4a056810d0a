//! `goodwill testnet attack`: one process that attacks a local cluster the way strangers on a
//! public network would, so that an operator (and `goodwill bench load --hostile`, and the
//! hostile-peer scenario test) can watch honest nodes carry on under it.
//!
//! With the key of a genesis forger that no node of the cluster runs (a ticket, the cheapest
//! stake there is), each slot it:
//!
//! - follows the chain (range requests into a replica of its own) and signs, on the head, a
//!   block for a slot far in the future, and a block for the current slot carrying a transaction
//!   its header does not commit to (junk that costs a ticket); blocks at even slots are junk and
//!   at odd ones from the future, so it never signs two blocks for one slot;
//! - gossips a block signed by a key with no ticket, a copy of the latest honest block with one
//!   transaction signature swapped, and bytes that decode as nothing;
//! - asks every node for more blocks than the protocol allows in one request;
//! - sends its pending transaction again with a fee one unit higher (replacement spam), and posts
//!   a body over the API's limit.
//!
//! Beside it, a fresh identity every two seconds claims a head a million blocks ahead and never
//! answers the range requests that claim draws. When the nodes ban its identity, it takes a
//! fresh one and goes on. It attacks only nodes on loopback, and prints what it did and how the
//! nodes answered as JSON when it stops (Ctrl-C, or after `--seconds`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eyre::{WrapErr, bail, eyre};
use futures::StreamExt;
use goodwill_ledger::lottery::rank_offset_ms;
use goodwill_ledger::{
    Amount, Block, Chain, ChainSpec, Hash, Keypair, MemoryStore, Payload, Transaction, TransactionBody,
};
use goodwill_node::api_client::{ApiClient, ClientError};
use goodwill_proto::v1 as wire;
use goodwill_protocol::behaviour::GossipKind;
use goodwill_protocol::{BehaviourEvent, build_swarm};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identity, request_response};
use prost::Message;
use serde::Serialize;

use crate::cli::AttackArgs;
use crate::cluster::NodeInfo;

/// How far ahead of the current slot the blocks from the future are signed.
const FUTURE_SLOTS: u64 = 1_000;
/// A lying identity arrives this often...
const LIAR_EVERY: Duration = Duration::from_secs(2);
/// ...and stays this long, holding every range request it gets.
const LIAR_STAYS: Duration = Duration::from_secs(4);
/// The head a liar claims.
const LIAR_CLAIM: u64 = 1_000_000;
/// Replacements sent per round, each one fee unit above the pending transaction.
const REPLACEMENTS: u64 = 4;
/// Hashes in one oversized request (the protocol allows 64).
const OVERSIZED_HASHES: u8 = 65;
/// Bytes in one oversized HTTP body (the API allows 256 KiB).
const OVERSIZED_BODY: usize = 1024 * 1024;

/// What the attacker did, and how the nodes answered.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Identities the attacker used: its own, each fresh one after a ban, and every liar's.
    pub identities: u64,
    /// Times the nodes dropped the attacker's identity (every connection closed), so that it
    /// took a fresh one.
    pub identities_dropped: u64,
    /// Height of the attacker's replica of the chain when it stopped.
    pub replica_height: u64,
    /// Blocks signed with the ticket for a slot [`FUTURE_SLOTS`] ahead, gossiped.
    pub future_blocks: u64,
    /// Blocks signed with the ticket carrying a transaction their header does not commit to.
    pub junk_blocks: u64,
    /// Blocks signed by keys that hold no ticket.
    pub unentitled_blocks: u64,
    /// Copies of honest blocks with one transaction's signature swapped.
    pub swapped_signature_copies: u64,
    /// Gossip messages that decode as nothing.
    pub malformed_gossip: u64,
    /// Requests over the protocol's limits, and how many the nodes refused as bad requests.
    pub oversized_requests: u64,
    /// See [`Report::oversized_requests`].
    pub oversized_refused: u64,
    /// Liars that claimed a far head, and how many of them a node asked for blocks.
    pub liars: u64,
    /// See [`Report::liars`].
    pub liars_asked_for_blocks: u64,
    /// Replacement transactions one fee unit above the pending one, and how many the nodes
    /// refused as underpriced.
    pub replacements: u64,
    /// See [`Report::replacements`].
    pub replacements_refused: u64,
    /// HTTP bodies over the API's limit, and how many the nodes refused with 413 (a node may
    /// also cut the connection before the body is sent).
    pub oversized_bodies: u64,
    /// See [`Report::oversized_bodies`].
    pub oversized_bodies_refused: u64,
}

/// Counts into the shared report (a task that panicked holding it leaves it as it was).
fn note(report: &Mutex<Report>, count: impl FnOnce(&mut Report)) {
    let mut report = report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    count(&mut report);
}

/// Runs `goodwill testnet attack`.
pub fn attack(args: AttackArgs) -> eyre::Result<()> {
    let spec_path = args.dir.join("spec.json");
    let spec = ChainSpec::from_json(
        &std::fs::read_to_string(&spec_path).wrap_err_with(|| format!("reading {}", spec_path.display()))?,
    )
    .map_err(|e| eyre!("{}: {e}", spec_path.display()))?;
    let nodes = crate::cluster::running(&args.dir)?
        .ok_or_else(|| eyre!("no cluster is running in {}", args.dir.display()))?;
    for node in &nodes {
        if !node.p2p.starts_with("/ip4/127.0.0.1/") || !node.http.starts_with("http://127.0.0.1:") {
            bail!(
                "node {} is not on loopback ({} {}): the attacker only attacks local clusters",
                node.index,
                node.p2p,
                node.http
            );
        }
    }
    let key = Keypair::read_file(&args.key).wrap_err_with(|| format!("reading {}", args.key.display()))?;
    if !spec.forgers.iter().any(|f| f.address == key.address()) {
        bail!("{} is not a genesis forger of this chain: the attacker needs a ticket", key.address());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .wrap_err("starting the attacker's runtime")?;
    let report = runtime.block_on(run(spec, Arc::new(key), nodes, args.seconds.map(Duration::from_secs)))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn run(
    spec: ChainSpec,
    key: Arc<Keypair>,
    nodes: Vec<NodeInfo>,
    seconds: Option<Duration>,
) -> eyre::Result<Report> {
    let addresses: Vec<Multiaddr> =
        nodes.iter().map(|n| n.p2p.parse()).collect::<Result<_, _>>().wrap_err("a node's address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let report = Arc::new(Mutex::new(Report::default()));
    let genesis = goodwill_ledger::genesis(&spec).map_err(|e| eyre!("{e}"))?.block.hash();

    let liars =
        tokio::spawn(send_liars(spec.clone(), genesis, addresses.clone(), stop.clone(), report.clone()));
    let http = {
        let (spec, key, stop, report) = (spec.clone(), key.clone(), stop.clone(), report.clone());
        let urls: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
        tokio::task::spawn_blocking(move || spam_api(&spec, genesis, &key, &urls, &stop, &report))
    };
    let peers = tokio::spawn(attack_as_peer(spec, key, addresses, stop.clone(), report.clone()));

    match seconds {
        Some(limit) => tokio::time::sleep(limit).await,
        None => tokio::signal::ctrl_c().await.wrap_err("waiting for Ctrl-C")?,
    }
    stop.store(true, Ordering::Relaxed);
    liars.await?;
    http.await??;
    peers.await??;
    let report = std::mem::take(&mut *report.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    Ok(report)
}

/// The status the attacker's identities give.
fn status(spec: &ChainSpec, genesis: Hash, height: u64, head: Hash) -> wire::Status {
    wire::Status {
        chain_id: spec.chain_id.clone(),
        genesis_hash: genesis.as_bytes().to_vec().into(),
        head_height: height,
        head_hash: head.as_bytes().to_vec().into(),
        role: wire::Role::Main as i32,
        protocol_version: goodwill_protocol::PROTOCOL_VERSION,
    }
}

/// A fresh lying identity every [`LIAR_EVERY`], each dialing the next node in turn.
async fn send_liars(
    spec: ChainSpec,
    genesis: Hash,
    nodes: Vec<Multiaddr>,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<Report>>,
) {
    let claim = status(&spec, genesis, LIAR_CLAIM, Hash([1; 32]));
    let mut tick = tokio::time::interval(LIAR_EVERY);
    let mut liars = Vec::new();
    for node in nodes.iter().cycle() {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        note(&report, |r| {
            r.liars += 1;
            r.identities += 1;
        });
        liars.push(tokio::spawn(lie(node.clone(), claim.clone(), report.clone())));
        liars.retain(|liar| !liar.is_finished());
    }
    for liar in liars {
        let _ = liar.await;
    }
}

/// One liar: claims `claim` to whoever asks, holds every range request until it leaves.
async fn lie(node: Multiaddr, claim: wire::Status, report: Arc<Mutex<Report>>) {
    let Ok(mut swarm) = build_swarm(identity::Keypair::generate_ed25519(), false) else { return };
    if swarm.dial(node).is_err() {
        return;
    }
    let mut held = Vec::new();
    let leave = tokio::time::sleep(LIAR_STAYS);
    tokio::pin!(leave);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => {
                if let Some((request, channel)) = inbound_request(event) {
                    match request.kind {
                        Some(wire::request::Kind::Status(_)) => {
                            let answer = wire::Response { kind: Some(wire::response::Kind::Status(claim.clone())) };
                            let _ = swarm.behaviour_mut().requests.send_response(channel, answer);
                        }
                        Some(wire::request::Kind::BlocksByRange(_)) => {
                            if held.is_empty() {
                                note(&report, |r| r.liars_asked_for_blocks += 1);
                            }
                            held.push(channel);
                        }
                        _ => {}
                    }
                }
            }
            _ = &mut leave => return,
        }
    }
}

fn inbound_request(
    event: SwarmEvent<BehaviourEvent>,
) -> Option<(wire::Request, request_response::ResponseChannel<wire::Response>)> {
    match event {
        SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
            message: request_response::Message::Request { request, channel, .. },
            ..
        })) => Some((request, channel)),
        _ => None,
    }
}

/// Replacement spam and oversized bodies through every node's API, once a slot.
fn spam_api(
    spec: &ChainSpec,
    genesis: Hash,
    key: &Keypair,
    urls: &[String],
    stop: &AtomicBool,
    report: &Mutex<Report>,
) -> eyre::Result<()> {
    let slot = Duration::from_millis(spec.params.slot_duration_ms);
    let clients: Vec<ApiClient> = urls.iter().map(|url| ApiClient::new(url, slot * 4)).collect();
    let fee = spec.params.min_fee;
    let transfer = |nonce: u64, fee: Amount| {
        TransactionBody {
            chain_id: spec.chain_id.clone(),
            sender: key.address(),
            nonce,
            fee,
            payload: Payload::Transfer { to: key.address(), amount: Amount(1) },
        }
        .sign(key, &genesis)
    };
    let oversized = vec![b'0'; OVERSIZED_BODY];
    for node in clients.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(slot);
        let Ok(account) = node.get_ok(&format!("/api/v1/accounts/{}", key.address())) else { continue };
        let Some(nonce) = account["nonce"].as_u64() else { continue };
        // The original may be pending already from an earlier round: then it is a duplicate.
        let _ = node.submit(&transfer(nonce, fee));
        for bump in 1..=REPLACEMENTS {
            let refused = matches!(
                node.submit(&transfer(nonce, Amount(fee.0 + bump))),
                Err(ClientError::Refused { message, .. }) if message.contains("replacement")
            );
            note(report, |r| {
                r.replacements += 1;
                r.replacements_refused += u64::from(refused);
            });
        }
        let refused = matches!(node.post_bytes("/api/v1/transactions", &oversized), Ok(413));
        note(report, |r| {
            r.oversized_bodies += 1;
            r.oversized_bodies_refused += u64::from(refused);
        });
    }
    Ok(())
}

/// The attacker's peer identity, and a fresh one whenever the nodes drop it.
async fn attack_as_peer(
    spec: ChainSpec,
    key: Arc<Keypair>,
    nodes: Vec<Multiaddr>,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<Report>>,
) -> eyre::Result<()> {
    let mut replica = Chain::open(MemoryStore::new(), spec).map_err(|e| eyre!("{e}"))?;
    while !stop.load(Ordering::Relaxed) {
        let dropped = Identity::new(&mut replica, &key, &nodes, &report)?.run(&stop).await?;
        note(&report, |r| {
            r.identities_dropped += u64::from(dropped);
            r.replica_height = replica.head().header().height;
        });
    }
    Ok(())
}

/// One identity of the attacker: a swarm connected to the cluster.
struct Identity<'a> {
    swarm: Swarm<goodwill_protocol::Behaviour>,
    replica: &'a mut Chain<MemoryStore>,
    key: &'a Keypair,
    report: &'a Mutex<Report>,
    blocks: gossipsub::IdentTopic,
    connected: HashSet<PeerId>,
    /// A range request is out.
    syncing: bool,
    /// The latest honest block with transactions heard by gossip.
    latest: Option<Block>,
    /// The last slot attacked.
    attacked: u64,
}

impl<'a> Identity<'a> {
    fn new(
        replica: &'a mut Chain<MemoryStore>,
        key: &'a Keypair,
        nodes: &[Multiaddr],
        report: &'a Mutex<Report>,
    ) -> eyre::Result<Identity<'a>> {
        let mut swarm = build_swarm(identity::Keypair::generate_ed25519(), false).map_err(|e| eyre!(e))?;
        let spec = replica.spec();
        let genesis = replica.genesis_hash();
        let blocks = GossipKind::Blocks.topic(&spec.chain_id, &genesis);
        for kind in GossipKind::ALL {
            swarm.behaviour_mut().gossipsub.subscribe(&kind.topic(&spec.chain_id, &genesis))?;
        }
        for node in nodes {
            swarm.dial(node.clone())?;
        }
        note(report, |r| r.identities += 1);
        Ok(Identity {
            swarm,
            replica,
            key,
            report,
            blocks,
            connected: HashSet::new(),
            syncing: false,
            latest: None,
            attacked: 0,
        })
    }

    /// Attacks until `stop`; whether the nodes dropped this identity.
    async fn run(mut self, stop: &AtomicBool) -> eyre::Result<bool> {
        let slot_ms = self.replica.spec().params.slot_duration_ms;
        let mut tick = tokio::time::interval(Duration::from_millis(slot_ms / 4));
        let mut ever_connected = false;
        // An identity no node accepts within this many ticks is dropped.
        let mut patience = 40u32;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        ever_connected = true;
                        self.connected.insert(peer_id);
                        self.ask(peer_id, wire::request::Kind::Status(self.status()));
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        self.connected.remove(&peer_id);
                        if self.connected.is_empty() {
                            return Ok(true);
                        }
                    }
                    event => self.on_event(event),
                },
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                    if !ever_connected {
                        patience = patience.saturating_sub(1);
                        if patience == 0 {
                            return Ok(true);
                        }
                    }
                    self.on_tick();
                }
            }
        }
    }

    fn status(&self) -> wire::Status {
        let head = self.replica.head();
        status(self.replica.spec(), self.replica.genesis_hash(), head.header().height, head.hash())
    }

    fn ask(&mut self, peer: PeerId, kind: wire::request::Kind) {
        self.swarm.behaviour_mut().requests.send_request(&peer, wire::Request { kind: Some(kind) });
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                message: request_response::Message::Request { request, channel, .. },
                ..
            })) => {
                if let Some(wire::request::Kind::Status(_)) = request.kind {
                    let answer = wire::Response { kind: Some(wire::response::Kind::Status(self.status())) };
                    let _ = self.swarm.behaviour_mut().requests.send_response(channel, answer);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            })) => match response.kind {
                Some(wire::response::Kind::Blocks(blocks)) => {
                    self.syncing = false;
                    for block in blocks.blocks {
                        let Ok(block) = Block::from_wire(block) else { break };
                        if self.replica.import(block).is_err() {
                            break;
                        }
                    }
                }
                Some(wire::response::Kind::Error(error)) if error.code == "bad_request" => {
                    note(self.report, |r| r.oversized_refused += 1);
                }
                Some(wire::response::Kind::Error(_)) => self.syncing = false,
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::OutboundFailure {
                ..
            })) => self.syncing = false,
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                message, ..
            })) if message.topic == self.blocks.hash() => {
                let block =
                    wire::Block::decode(message.data.as_slice()).ok().and_then(|b| Block::from_wire(b).ok());
                if let Some(block) = block.filter(|b| !b.transactions.is_empty()) {
                    self.latest = Some(block);
                }
            }
            _ => {}
        }
    }

    fn on_tick(&mut self) {
        let Some(&peer) = self.connected.iter().next() else { return };
        if !self.syncing {
            self.syncing = true;
            let start_height = self.replica.head().header().height + 1;
            self.ask(
                peer,
                wire::request::Kind::BlocksByRange(wire::BlocksByRange { start_height, count: 64 }),
            );
        }
        let spec = self.replica.spec();
        let now = goodwill_node::now_ms();
        let slot = spec.slot_at(now);
        // Attack once a slot, from a replica within a few slots of the chain.
        if slot <= self.attacked || self.replica.head().header().slot + 4 < slot {
            return;
        }
        self.attacked = slot;
        let mut gossip = Vec::new();
        if slot % 2 == 1 {
            if let Some(block) = self.sign(slot + FUTURE_SLOTS) {
                note(self.report, |r| r.future_blocks += 1);
                gossip.push(block.encode());
            }
        } else if let Some(mut block) = self.sign(slot) {
            let unentitled = self.unentitled(&block);
            block.transactions.push(self.stowaway());
            note(self.report, |r| r.junk_blocks += 1);
            gossip.push(block.encode());
            if let Some(block) = unentitled {
                note(self.report, |r| r.unentitled_blocks += 1);
                gossip.push(block.encode());
            }
        }
        if let Some(copy) = self.latest.take().and_then(swap_a_signature) {
            note(self.report, |r| r.swapped_signature_copies += 1);
            gossip.push(copy.encode());
        }
        // Bytes that decode as nothing, new each slot (gossip drops a message it has seen).
        let mut garbage = vec![0xff; 200];
        garbage[..8].copy_from_slice(&slot.to_be_bytes());
        note(self.report, |r| r.malformed_gossip += 1);
        gossip.push(garbage);
        for bytes in gossip {
            // No mesh yet, or a duplicate: the next slot tries again.
            let _ = self.swarm.behaviour_mut().gossipsub.publish(self.blocks.clone(), bytes);
        }
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        for peer in peers {
            let hashes = (0..OVERSIZED_HASHES).map(|i| vec![i; 32].into()).collect();
            note(self.report, |r| r.oversized_requests += 1);
            self.ask(peer, wire::request::Kind::BlocksByHash(wire::BlocksByHash { hashes }));
        }
    }

    /// A block on the replica's head for `slot`, signed with the ticket at the best rank it
    /// has, stamped at the start of that rank's window.
    fn sign(&self, slot: u64) -> Option<Block> {
        let spec = self.replica.spec();
        let rank = self.replica.rank_of(&self.key.address(), slot).ok()??;
        let time = spec.slot_start_ms(slot)?
            + rank_offset_ms(spec.params.slot_duration_ms, spec.params.fallback_ranks, rank);
        let builder = self.replica.builder(self.key, slot, time).ok()?;
        Some(builder.seal(self.key).ok()?.block)
    }

    /// `block` signed instead by a key that holds no ticket.
    fn unentitled(&self, block: &Block) -> Option<Block> {
        let stranger = Keypair::generate().ok()?;
        let mut header = block.header.header().clone();
        header.forger = stranger.address();
        let header = header.sign(&stranger, &self.replica.genesis_hash());
        Some(Block { header, transactions: block.transactions.clone() })
    }

    /// A transaction no header commits to.
    fn stowaway(&self) -> Transaction {
        let spec = self.replica.spec();
        TransactionBody {
            chain_id: spec.chain_id.clone(),
            sender: self.key.address(),
            nonce: 0,
            fee: spec.params.min_fee,
            payload: Payload::Transfer { to: self.key.address(), amount: Amount(1) },
        }
        .sign(self.key, &self.replica.genesis_hash())
    }
}

/// `block` with its first transaction's signature replaced by another 64 bytes: the same header,
/// contents it does not commit to.
fn swap_a_signature(mut block: Block) -> Option<Block> {
    let first = block.transactions.first_mut()?;
    let mut signed = first.to_wire();
    let mut signature = signed.signature.to_vec();
    signature[0] ^= 0xff;
    signed.signature = signature.into();
    *first = Transaction::from_wire(signed).ok()?;
    Some(block)
}
