//! `goodwill light`: a peer that keeps no ledger. It follows the chain's headers from genesis,
//! accepting one only if it links to a header already accepted, fits its slot, proves its body,
//! and was forged by the lottery's rightful winner: the lottery's inputs after the parent (the
//! consensus record and every forger's record) come from a main node with Merkle proofs against
//! the parent's state root. It pushes transactions to main nodes and reads accounts through
//! them, checking every answer's proof against the state root of a header it accepted. A main
//! node whose proof does not hold is dropped and banned.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use eyre::{WrapErr, eyre};
use futures::StreamExt;
use goodwill_ledger::execute::{check_contents, check_header};
use goodwill_ledger::lottery::ForkChoiceKey;
use goodwill_ledger::proof::LotteryState;
use goodwill_ledger::{Address, Block, ChainSpec, Hash, SealedHeader, Transaction};
use goodwill_proto::v1 as wire;
use goodwill_protocol::behaviour::{GossipKind, PROTOCOL_VERSION};
use goodwill_protocol::{Behaviour, BehaviourEvent};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identity};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// Headers kept in memory: enough to check proofs against any recent head.
const MAX_HEADERS: usize = 4_096;
/// Verified lottery states kept (one per parent block).
const MAX_LOTTERY_STATES: usize = 256;
/// Blocks waiting for their parent's lottery state, at most, in count and in bytes.
const MAX_WAITING: usize = 1_024;
const MAX_WAITING_BYTES: usize = 8 * 1024 * 1024;
/// Blocks asked for at once while catching up.
const BATCH: u32 = 64;
/// How long an HTTP request waits for a main node.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// What `goodwill light` was asked to run.
pub struct LightConfig {
    pub spec: ChainSpec,
    pub bootnodes: Vec<Multiaddr>,
    pub listen: Vec<Multiaddr>,
    pub http: SocketAddr,
}

/// Runs a light peer until Ctrl-C.
pub fn run(config: LightConfig) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .wrap_err("starting the async runtime")?;
    runtime.block_on(serve(config))
}

/// A verified header and the rank sum of its chain, for fork choice.
#[derive(Clone)]
struct Known {
    header: SealedHeader,
    rank_sum: u64,
}

/// What the HTTP side sees of the light peer.
#[derive(Default)]
struct View {
    chain_id: String,
    genesis: Option<Hash>,
    min_fee: u64,
    head: Option<(u64, Hash)>,
    mains: usize,
    liars: Vec<String>,
}

/// Where the answer to a question goes: the main node that answered, and what it said.
type Reply = oneshot::Sender<Result<(PeerId, wire::response::Kind), String>>;

/// A question for a main node, from the HTTP side.
struct Query {
    kind: wire::request::Kind,
    reply: Reply,
}

enum Command {
    Ask(Query),
    /// The named main node answered with something its proof does not support.
    Liar(PeerId, String),
    /// A header named by an answer, to be fetched and verified if unknown.
    Header(PeerId, Hash, oneshot::Sender<Option<SealedHeader>>),
}

struct Light {
    swarm: Swarm<Behaviour>,
    spec: ChainSpec,
    genesis: Hash,
    headers: HashMap<Hash, Known>,
    by_height: BTreeMap<u64, Vec<Hash>>,
    best: Hash,
    /// Main nodes of this chain, with the height they announced.
    mains: HashMap<PeerId, u64>,
    liars: HashSet<PeerId>,
    /// HTTP questions waiting for their answers.
    questions: HashMap<OutboundRequestId, Reply>,
    /// Header fetches waiting for their answers.
    fetches: HashMap<OutboundRequestId, Hash>,
    /// Who waits for a header to be accepted.
    waiters: HashMap<Hash, Vec<oneshot::Sender<Option<SealedHeader>>>>,
    /// Blocks waiting to be checked, by height, with the peer that sent them.
    waiting: BTreeMap<(u64, Hash), (Block, PeerId)>,
    /// Verified lottery inputs after a block, by its hash.
    lottery: HashMap<Hash, Arc<LotteryState>>,
    lottery_order: std::collections::VecDeque<Hash>,
    /// Lottery proofs asked for: request, and the block they are about.
    lottery_asked: HashMap<OutboundRequestId, Hash>,
    /// The range request catching up, if one is out.
    catching_up: Option<OutboundRequestId>,
    view: Arc<Mutex<View>>,
}

async fn serve(config: LightConfig) -> eyre::Result<()> {
    let genesis = goodwill_ledger::genesis(&config.spec)?.block;
    let genesis_hash = genesis.hash();
    let mut swarm = goodwill_protocol::build_swarm(identity::Keypair::generate_ed25519(), false)
        .map_err(|e| eyre!("building the network: {e}"))?;
    let topic = GossipKind::Blocks.topic(&config.spec.chain_id, &genesis_hash);
    swarm.behaviour_mut().gossipsub.subscribe(&topic).map_err(|e| eyre!("subscribing: {e}"))?;
    for address in config.listen {
        swarm.listen_on(address.clone()).map_err(|e| eyre!("listening on {address}: {e}"))?;
    }
    for address in config.bootnodes {
        if let Err(error) = swarm.dial(address.clone()) {
            tracing::warn!(%address, %error, "could not dial a bootnode");
        }
    }
    let view = Arc::new(Mutex::new(View {
        chain_id: config.spec.chain_id.clone(),
        genesis: Some(genesis_hash),
        min_fee: config.spec.params.min_fee.0,
        ..View::default()
    }));
    let mut light = Light {
        swarm,
        spec: config.spec,
        genesis: genesis_hash,
        headers: HashMap::new(),
        by_height: BTreeMap::new(),
        best: genesis_hash,
        mains: HashMap::new(),
        liars: HashSet::new(),
        questions: HashMap::new(),
        fetches: HashMap::new(),
        waiters: HashMap::new(),
        waiting: BTreeMap::new(),
        lottery: HashMap::new(),
        lottery_order: Default::default(),
        lottery_asked: HashMap::new(),
        catching_up: None,
        view: view.clone(),
    };
    light.insert(Known { header: genesis.header.clone(), rank_sum: 0 });
    let (commands, inbox) = mpsc::channel(64);
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .wrap_err_with(|| format!("binding the HTTP API to {}", config.http))?;
    let http_address = listener.local_addr()?;
    let router = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/accounts/{address}", get(account))
        .route("/api/v1/transactions", post(submit))
        .route("/api/v1/transactions/{id}", get(transaction))
        .with_state(Api { commands, view, spec: Arc::new(light.spec.clone()), genesis: genesis_hash });
    let http = tokio::spawn(async move { axum::serve(listener, router).await });
    crate::run::announce(format_args!("HTTP API listening on http://{http_address}"));
    tracing::info!(genesis = %genesis_hash, "light peer: following headers, keeping no ledger");
    tokio::select! {
        () = light.run(inbox) => {}
        result = tokio::signal::ctrl_c() => result.wrap_err("waiting for Ctrl-C")?,
    }
    http.abort();
    crate::run::announce(format_args!("stopped cleanly"));
    Ok(())
}

impl Light {
    async fn run(&mut self, mut inbox: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                Some(command) = inbox.recv() => self.command(command),
                event = self.swarm.select_next_some() => self.event(event),
            }
        }
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
        }
        // Forget the oldest heights beyond the bound (never genesis).
        while self.headers.len() > MAX_HEADERS {
            let Some((&oldest, _)) = self.by_height.iter().find(|(h, _)| **h > 0) else { break };
            for old in self.by_height.remove(&oldest).unwrap_or_default() {
                self.headers.remove(&old);
            }
        }
        self.publish_view();
    }

    fn publish_view(&self) {
        let head = self.headers.get(&self.best).map(|k| (k.header.header().height, self.best));
        if let Ok(mut view) = self.view.lock() {
            view.head = head;
            view.mains = self.mains.len();
            view.liars = self.liars.iter().map(ToString::to_string).collect();
        }
    }

    /// Queues `block` (sent by `from`) for checking, and checks what can be checked.
    fn offer(&mut self, block: Block, from: PeerId) {
        let key = (block.header().height, block.hash());
        let waiting_bytes: usize = self.waiting.values().map(|(b, _)| b.encoded_len()).sum();
        let full =
            self.waiting.len() >= MAX_WAITING || waiting_bytes + block.encoded_len() > MAX_WAITING_BYTES;
        if self.headers.contains_key(&key.1) || full {
            return;
        }
        self.waiting.insert(key, (block, from));
        self.process();
    }

    /// Checks waiting blocks, lowest first: a block whose parent was accepted and whose
    /// parent's lottery state is known is accepted or dropped; for the others the lottery state
    /// is asked for. Blocks far below the best header are dropped.
    fn process(&mut self) {
        let floor = self.best_height().saturating_sub(64);
        self.waiting.retain(|(height, _), _| *height > floor);
        // Callers that gave up (their HTTP request timed out) wait no longer.
        self.waiters.retain(|_, senders| {
            senders.retain(|sender| !sender.is_closed());
            !senders.is_empty()
        });
        loop {
            let mut accepted_any = false;
            let keys: Vec<(u64, Hash)> = self.waiting.keys().copied().collect();
            for key in keys {
                let Some((block, from)) = self.waiting.get(&key).cloned() else { continue };
                let parent_hash = block.header().parent_hash;
                let Some(parent) = self.headers.get(&parent_hash).cloned() else { continue };
                let Some(lottery) = self.lottery.get(&parent_hash).cloned() else {
                    self.ask_lottery(parent_hash, from);
                    continue;
                };
                self.waiting.remove(&key);
                let checked = check_header(&self.spec, &self.genesis, &parent.header, &block)
                    .map_err(|e| e.to_string())
                    .and_then(|()| lottery.check(&self.spec, block.header()));
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
                        let reason = format!("sent block #{} that breaks the rules: {reason}", key.0);
                        self.command(Command::Liar(from, reason));
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

    /// Asks `peer` (or the best main node) for the lottery state after block `hash`, unless
    /// it was asked already.
    fn ask_lottery(&mut self, hash: Hash, peer: PeerId) {
        if self.lottery_asked.values().any(|h| *h == hash) {
            return;
        }
        let peer = if self.mains.contains_key(&peer) { Some(peer) } else { self.best_main() };
        let Some(peer) = peer else { return };
        let kind = wire::request::Kind::Lottery(wire::LotteryQuery {
            block_hash: Bytes::copy_from_slice(hash.as_bytes()),
        });
        let id = self.swarm.behaviour_mut().requests.send_request(&peer, wire::Request { kind: Some(kind) });
        self.lottery_asked.insert(id, hash);
    }

    /// A lottery proof arrived for block `hash`: verified against that block's state root, it
    /// unlocks the block's children; a proof that does not hold marks `peer` a liar.
    fn lottery_answer(&mut self, peer: PeerId, hash: Hash, answer: Option<wire::response::Kind>) {
        let Some(header) = self.headers.get(&hash).map(|k| k.header.clone()) else { return };
        let Some(wire::response::Kind::Lottery(proof)) = answer else { return };
        let consensus = proof.consensus.unwrap_or_default();
        fn empty_is_none(bytes: &Bytes) -> Option<&[u8]> {
            (!bytes.is_empty()).then_some(bytes.as_ref())
        }
        let forgers: Vec<(Option<&[u8]>, &[u8])> =
            proof.forgers.iter().map(|leaf| (empty_is_none(&leaf.value), leaf.proof.as_ref())).collect();
        let root = header.header().state_root;
        match LotteryState::verify(
            &root,
            (empty_is_none(&consensus.value), consensus.proof.as_ref()),
            &forgers,
        ) {
            Ok(state) => {
                self.lottery.insert(hash, Arc::new(state));
                self.lottery_order.push_back(hash);
                while self.lottery_order.len() > MAX_LOTTERY_STATES {
                    if let Some(old) = self.lottery_order.pop_front() {
                        self.lottery.remove(&old);
                    }
                }
                self.process();
            }
            Err(error) => self.command(Command::Liar(peer, format!("its lottery proof failed: {error}"))),
        }
    }

    fn best_height(&self) -> u64 {
        self.headers.get(&self.best).map_or(0, |k| k.header.header().height)
    }

    /// The main node with the highest announced head.
    fn best_main(&self) -> Option<PeerId> {
        self.mains.iter().filter(|(p, _)| !self.liars.contains(*p)).max_by_key(|(_, h)| **h).map(|(p, _)| *p)
    }

    /// Asks for the next blocks after our best header, if a main node is ahead.
    fn catch_up(&mut self) {
        if self.catching_up.is_some() {
            return;
        }
        let ours = self.best_height();
        let Some(peer) = self.best_main().filter(|p| self.mains[p] > ours) else { return };
        let kind =
            wire::request::Kind::BlocksByRange(wire::BlocksByRange { start_height: ours + 1, count: BATCH });
        let id = self.swarm.behaviour_mut().requests.send_request(&peer, wire::Request { kind: Some(kind) });
        self.catching_up = Some(id);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Ask(Query { kind, reply }) => match self.best_main() {
                None => {
                    let _ = reply.send(Err("no main node is connected".into()));
                }
                Some(peer) => {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .requests
                        .send_request(&peer, wire::Request { kind: Some(kind) });
                    self.questions.insert(id, reply);
                }
            },
            Command::Liar(peer, reason) => {
                tracing::warn!(%peer, reason, "a main node lied; dropping and banning it");
                self.liars.insert(peer);
                self.mains.remove(&peer);
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                self.publish_view();
            }
            Command::Header(peer, hash, reply) => {
                if let Some(known) = self.headers.get(&hash) {
                    let _ = reply.send(Some(known.header.clone()));
                    return;
                }
                self.waiters.entry(hash).or_default().push(reply);
                let kind = wire::request::Kind::BlocksByHash(wire::BlocksByHash {
                    hashes: vec![Bytes::copy_from_slice(hash.as_bytes())],
                });
                let id = self
                    .swarm
                    .behaviour_mut()
                    .requests
                    .send_request(&peer, wire::Request { kind: Some(kind) });
                self.fetches.insert(id, hash);
            }
        }
    }

    fn our_status(&self) -> wire::Status {
        wire::Status {
            chain_id: self.spec.chain_id.clone(),
            genesis_hash: Bytes::copy_from_slice(self.genesis.as_bytes()),
            head_height: self.best_height(),
            head_hash: Bytes::copy_from_slice(self.best.as_bytes()),
            role: wire::Role::Light as i32,
            protocol_version: PROTOCOL_VERSION,
        }
    }

    /// Records a peer's status: a main node of this chain is used; anything else is dropped.
    fn met(&mut self, peer: PeerId, status: &wire::Status) {
        let same_chain =
            status.chain_id == self.spec.chain_id && status.genesis_hash.as_ref() == self.genesis.as_bytes();
        if !same_chain {
            tracing::warn!(%peer, chain = %status.chain_id, "refusing a peer of another chain");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        if status.role == wire::Role::Main as i32 && !self.liars.contains(&peer) {
            if !self.mains.contains_key(&peer) {
                tracing::info!(%peer, height = status.head_height, "main node joined");
            }
            self.mains.insert(peer, status.head_height);
            self.publish_view();
            self.catch_up();
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, num_established, .. }
                if num_established.get() == 1 =>
            {
                let kind = wire::request::Kind::Status(self.our_status());
                self.swarm
                    .behaviour_mut()
                    .requests
                    .send_request(&peer_id, wire::Request { kind: Some(kind) });
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.mains.remove(&peer_id);
                self.publish_view();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                // A light peer checks what it can but relays nothing: it cannot validate state.
                let limit = goodwill_protocol::behaviour::MAX_GOSSIP_BYTES;
                let acceptance = match Block::decode(Bytes::from(message.data), limit) {
                    Err(_) => gossipsub::MessageAcceptance::Reject,
                    Ok(block) if !self.headers.contains_key(&block.header().parent_hash) => {
                        // Behind, or on a branch not seen yet: the relayer has its ancestors.
                        if let Some(height) = self.mains.get_mut(&propagation_source) {
                            *height = (*height).max(block.header().height);
                        }
                        self.catch_up();
                        gossipsub::MessageAcceptance::Ignore
                    }
                    Ok(block) => {
                        self.offer(block, propagation_source);
                        gossipsub::MessageAcceptance::Ignore
                    }
                };
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
            }
            SwarmEvent::Behaviour(BehaviourEvent::Requests(event)) => self.request_event(event),
            _ => {}
        }
    }

    fn request_event(&mut self, event: request_response::Event<wire::Request, wire::Response>) {
        use wire::response::Kind as Res;
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => {
                let answer = match request.kind {
                    Some(wire::request::Kind::Status(theirs)) => {
                        self.met(peer, &theirs);
                        Res::Status(self.our_status())
                    }
                    _ => Res::Error(wire::Error {
                        code: "unavailable".into(),
                        message: "a light peer serves nothing".into(),
                    }),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .requests
                    .send_response(channel, wire::Response { kind: Some(answer) });
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, response },
                ..
            } => {
                if let Some(reply) = self.questions.remove(&request_id) {
                    let _ = reply.send(
                        response.kind.map(|kind| (peer, kind)).ok_or_else(|| "an empty answer".to_string()),
                    );
                } else if let Some(hash) = self.fetches.remove(&request_id) {
                    let block = match response.kind {
                        Some(Res::Blocks(batch)) => batch
                            .blocks
                            .into_iter()
                            .filter_map(|b| Block::from_wire(b).ok())
                            .find(|b| b.hash() == hash),
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
                } else if let Some(hash) = self.lottery_asked.remove(&request_id) {
                    self.lottery_answer(peer, hash, response.kind);
                } else if self.catching_up == Some(request_id) {
                    self.catching_up = None;
                    if let Some(Res::Blocks(batch)) = response.kind {
                        for wire_block in batch.blocks {
                            match Block::from_wire(wire_block) {
                                Ok(block) => self.offer(block, peer),
                                Err(reason) => {
                                    tracing::warn!(%peer, %reason, "a main node served a malformed block");
                                    break;
                                }
                            }
                        }
                    }
                } else if let Some(Res::Status(theirs)) = response.kind {
                    self.met(peer, &theirs);
                }
            }
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(reply) = self.questions.remove(&request_id) {
                    let _ = reply.send(Err(format!("the main node did not answer: {error}")));
                } else if let Some(hash) = self.fetches.remove(&request_id) {
                    for waiter in self.waiters.remove(&hash).unwrap_or_default() {
                        let _ = waiter.send(None);
                    }
                } else if self.lottery_asked.remove(&request_id).is_some() {
                    // Asked again (of another main node) when its children are next processed.
                } else if self.catching_up == Some(request_id) {
                    self.catching_up = None;
                }
            }
            _ => {}
        }
    }
}

#[derive(Clone)]
struct Api {
    commands: mpsc::Sender<Command>,
    view: Arc<Mutex<View>>,
    spec: Arc<ChainSpec>,
    genesis: Hash,
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

async fn ask(api: &Api, kind: wire::request::Kind) -> Result<(PeerId, wire::response::Kind), Response> {
    let (reply, answer) = oneshot::channel();
    let unavailable = |message: String| error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    api.commands
        .send(Command::Ask(Query { kind, reply }))
        .await
        .map_err(|_| unavailable("shutting down".into()))?;
    match tokio::time::timeout(QUERY_TIMEOUT, answer).await {
        Ok(Ok(Ok(answer))) => Ok(answer),
        Ok(Ok(Err(message))) => Err(unavailable(message)),
        _ => Err(unavailable("no answer from a main node".into())),
    }
}

async fn status(State(api): State<Api>) -> Json<Value> {
    let Ok(view) = api.view.lock() else { return Json(json!({ "role": "light" })) };
    let (head, mains, liars) = (view.head, view.mains, view.liars.clone());
    Json(json!({
        "role": "light",
        "chain_id": view.chain_id,
        "genesis_hash": view.genesis,
        "min_fee": view.min_fee.to_string(),
        "head": head.map(|(height, hash)| json!({ "height": height, "hash": hash })),
        "main_peers": mains,
        "dropped_liars": liars,
    }))
}

async fn account(State(api): State<Api>, Path(address): Path<String>) -> Response {
    let address: Address = match address.parse() {
        Ok(address) => address,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_address", format!("{e}")),
    };
    let kind = wire::request::Kind::Account(wire::AccountQuery {
        address: Bytes::copy_from_slice(address.as_bytes()),
    });
    let (peer, answer) = match ask(&api, kind).await {
        Ok(answer) => answer,
        Err(response) => return response,
    };
    let wire::response::Kind::Account(info) = answer else {
        return error(
            StatusCode::BAD_GATEWAY,
            "bad_answer",
            "the main node did not answer with an account".into(),
        );
    };
    let Some(head_hash) = Hash::from_slice(&info.head_hash) else {
        let _ = api.commands.send(Command::Liar(peer, "an account answer without a head".into())).await;
        return error(
            StatusCode::BAD_GATEWAY,
            "lying_peer",
            format!("main node {peer} sent a malformed answer; dropped"),
        );
    };
    // The header the answer names, verified (fetched from the same node if we lack it).
    let Some(header) = accepted_header(&api, peer, head_hash).await else {
        return error(
            StatusCode::BAD_GATEWAY,
            "unverifiable",
            format!("cannot verify the head {head_hash} main node {peer} named"),
        );
    };
    let state = (!info.state.is_empty()).then_some(info.state.as_ref());
    let proven =
        goodwill_ledger::proof::verify_account(&header.header().state_root, &address, state, &info.proof);
    match proven {
        Ok(account) if account.balance.0 == info.balance && account.nonce == info.nonce => Json(json!({
            "address": address,
            "balance": account.balance,
            "nonce": account.nonce,
            "height": header.header().height,
            "head": head_hash,
            "proof": "verified against the state root of a header signed by its forger",
            "main_node": peer.to_string(),
        }))
        .into_response(),
        outcome => {
            let reason = match outcome {
                Err(e) => e.to_string(),
                Ok(_) => "the balance or nonce it stated differs from the one it proved".into(),
            };
            let _ = api.commands.send(Command::Liar(peer, reason.clone())).await;
            error(
                StatusCode::BAD_GATEWAY,
                "lying_peer",
                format!("main node {peer} failed its proof ({reason}); dropped and banned"),
            )
        }
    }
}

/// Waits until the header `hash` is accepted (fetching it from `peer` if unknown).
async fn accepted_header(api: &Api, peer: PeerId, hash: Hash) -> Option<SealedHeader> {
    let (reply, header) = oneshot::channel();
    api.commands.send(Command::Header(peer, hash, reply)).await.ok()?;
    tokio::time::timeout(QUERY_TIMEOUT, header).await.ok()?.ok()?
}

/// A transaction's status. A committed one is shown only once the light peer has the block that
/// holds it, the block's header is one it accepted, and the body matches the header.
async fn transaction(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let id: Hash = match id.parse() {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_hash", format!("{e}")),
    };
    let query = wire::request::Kind::Transaction(wire::TransactionQuery {
        id: Bytes::copy_from_slice(id.as_bytes()),
    });
    let (peer, info) = match ask(&api, query).await {
        Ok((peer, wire::response::Kind::Transaction(info))) => (peer, info),
        Ok(_) => return error(StatusCode::BAD_GATEWAY, "bad_answer", "an unexpected answer".into()),
        Err(response) => return response,
    };
    use wire::transaction_info::State as TxState;
    match TxState::try_from(info.state) {
        Ok(TxState::Pending) => {
            return Json(json!({ "id": id, "status": "pending", "main_node": peer.to_string() }))
                .into_response();
        }
        Ok(TxState::Committed) => {}
        _ => return error(StatusCode::NOT_FOUND, "not_found", format!("no transaction {id}")),
    }
    let Some(block_hash) = Hash::from_slice(&info.block_hash) else {
        let _ =
            api.commands.send(Command::Liar(peer, "a committed transaction without a block".into())).await;
        return error(
            StatusCode::BAD_GATEWAY,
            "lying_peer",
            format!("main node {peer} sent a malformed answer; dropped"),
        );
    };
    let fetch =
        wire::request::Kind::BlocksByHash(wire::BlocksByHash { hashes: vec![info.block_hash.clone()] });
    let block = match ask(&api, fetch).await {
        Ok((_, wire::response::Kind::Blocks(batch))) => {
            batch.blocks.into_iter().filter_map(|b| Block::from_wire(b).ok()).find(|b| b.hash() == block_hash)
        }
        Ok(_) => None,
        Err(response) => return response,
    };
    let Some(header) = accepted_header(&api, peer, block_hash).await else {
        return error(StatusCode::BAD_GATEWAY, "unverifiable", format!("cannot verify block {block_hash}"));
    };
    let holds = block.as_ref().is_some_and(|block| {
        check_contents(&api.spec, &api.genesis, block).is_ok()
            && block.transactions.get(info.index as usize).is_some_and(|tx| tx.id() == id)
    });
    if !holds {
        let reason = format!("block {block_hash} does not hold transaction {id} at index {}", info.index);
        let _ = api.commands.send(Command::Liar(peer, reason.clone())).await;
        return error(
            StatusCode::BAD_GATEWAY,
            "lying_peer",
            format!("main node {peer}: {reason}; dropped and banned"),
        );
    }
    Json(json!({
        "id": id,
        "status": "committed",
        "block": { "height": header.header().height, "hash": block_hash, "index": info.index },
        "proof": "the block's header was accepted and its body holds the transaction",
    }))
    .into_response()
}

async fn submit(State(api): State<Api>, body: Bytes) -> Response {
    let bad = |code, message: String| error(StatusCode::BAD_REQUEST, code, message);
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return bad("bad_json", "expected {\"transaction\": \"<hex>\"}".into());
    };
    let Some(Ok(bytes)) = value["transaction"].as_str().map(|t| hex::decode(t.trim())) else {
        return bad("bad_hex", "transaction must be hexadecimal".into());
    };
    let tx = match Transaction::decode(Bytes::from(bytes), 128 * 1024) {
        Ok(tx) => tx,
        Err(e) => return bad("bad_transaction", e.to_string()),
    };
    let id = tx.id();
    let kind = wire::request::Kind::SubmitTransaction(tx.to_wire());
    match ask(&api, kind).await {
        Ok((peer, wire::response::Kind::Submit(result))) if result.rejection.is_empty() => {
            Json(json!({ "id": id, "main_node": peer.to_string() })).into_response()
        }
        Ok((_, wire::response::Kind::Submit(result))) => bad("rejected", result.rejection),
        Ok((_, wire::response::Kind::Error(e))) => error(StatusCode::BAD_GATEWAY, "refused", e.message),
        Ok(_) => error(StatusCode::BAD_GATEWAY, "bad_answer", "an unexpected answer".into()),
        Err(response) => response,
    }
}
