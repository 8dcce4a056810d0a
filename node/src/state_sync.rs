//! `goodwill node --sync state`: a new main node starts from the state of the last final block
//! instead of replaying every block from genesis.
//!
//! Before the node opens its chain, and only while its database does not exist, it joins the
//! network as a peer that keeps nothing, and:
//! 1. follows proofs of finality from genesis, as a light peer does ([`goodwill_ledger::light`]),
//!    to the last final block a main node can prove: no header it starts from rests on a peer's
//!    word;
//! 2. downloads that block's state in chunks, each checked against the block's state root as it
//!    is written ([`goodwill_ledger::snapshot`]) into `db.restoring` beside the database;
//! 3. fetches the block itself, and makes the restored database a chain whose first block after
//!    genesis is that one; then renames it to `db`, atomically.
//!
//! A peer whose step or chunk does not hold is banned and the download starts again from
//! another; a peer that no longer keeps the state (it pruned it) sends the node back to step 1
//! for a newer final block. A crash at any point leaves either no database (and a
//! `db.restoring` the next start throws away) or the whole one. The node then syncs the blocks
//! after its base as any node does. It holds no block between genesis and its base.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eyre::{WrapErr, eyre};
use goodwill_ledger::ChainSpec;
use goodwill_ledger::light::{Anchor, FinalityStep, StepError};
use goodwill_ledger::snapshot::{RestoreError, StateRestore};
use goodwill_protocol::message::{ErrorCode, Request, Response};
use goodwill_protocol::service::{GossipEffect, NetworkEvent, NetworkHandle, Verdict};
use goodwill_protocol::{ChainIdentity, Head, NetworkConfig, Role};
use libp2p::{Multiaddr, PeerId, identity};
use tokio::sync::{Notify, watch};

/// How long to wait for a main node to join before saying so again.
const WAIT_FOR_PEERS: Duration = Duration::from_secs(10);
/// Downloads started over (a liar, a pruned state, a peer gone) before giving up.
const MAX_ATTEMPTS: usize = 16;
/// Pause before starting over.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Time between two requests to one peer: under its per-peer rate limit
/// ([`goodwill_protocol::rate_limit::REQUESTS_PER_SECOND`]), so that a long download is never
/// throttled or cut off.
const REQUEST_INTERVAL: Duration = Duration::from_millis(60);
/// Times one request is asked again after the peer said to slow down.
const MAX_SLOW_DOWNS: usize = 10;
/// Time between two progress lines in the log.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// The main nodes joined, without the banned ones.
#[derive(Default)]
struct Mains {
    peers: Mutex<(Vec<PeerId>, HashSet<PeerId>)>,
    joined: Notify,
}

impl Mains {
    fn pick(&self, attempt: usize) -> Option<PeerId> {
        let peers = self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (!peers.0.is_empty()).then(|| peers.0[attempt % peers.0.len()])
    }

    fn ban(&self, network: &NetworkHandle, peer: PeerId, reason: String) {
        tracing::warn!(%peer, %reason, "state sync: a main node lied; banned");
        let mut peers = self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.0.retain(|p| *p != peer);
        peers.1.insert(peer);
        network.ban(peer, reason);
    }

    async fn wait(&self, attempt: usize) -> PeerId {
        loop {
            if let Some(peer) = self.pick(attempt) {
                return peer;
            }
            if tokio::time::timeout(WAIT_FOR_PEERS, self.joined.notified()).await.is_err() {
                tracing::info!("state sync: waiting for a main node to join (see --bootnode)");
            }
        }
    }
}

/// Why one attempt ended.
enum Setback {
    /// Start again, from another peer.
    Retry(String),
    /// Give up.
    Fatal(eyre::Report),
}

/// Builds the database at `db` from the last final block's state, fetched from the peers
/// `bootnodes` lead to. Does nothing if `db` exists.
pub async fn run(spec: &ChainSpec, db: &Path, bootnodes: Vec<Multiaddr>) -> eyre::Result<()> {
    if db.join("CURRENT").is_file() {
        return Ok(());
    }
    let staging = db.with_extension("restoring");
    if staging.exists() {
        // An interrupted restore: nothing in it is trusted.
        std::fs::remove_dir_all(&staging).wrap_err_with(|| format!("removing {}", staging.display()))?;
    }
    let genesis = Anchor::genesis(spec)?;
    let (_head_out, head) = watch::channel(Head { height: 0, hash: genesis.genesis, finalized: 0 });
    let config = NetworkConfig {
        role: Role::Light,
        chain: ChainIdentity { chain_id: spec.chain_id.clone(), genesis: genesis.genesis },
        listen: Vec::new(),
        external: Vec::new(),
        bootnodes,
        mdns: false,
        address_limits: Default::default(),
        chain_spec: None,
    };
    let (network, mut events, event_loop) =
        goodwill_protocol::service::new(identity::Keypair::generate_ed25519(), config, head)
            .map_err(|e| eyre!("{e}"))?;
    let (stop, stopped) = watch::channel(false);
    let network_task = tokio::spawn(event_loop.run(stopped));
    let mains = Arc::new(Mains::default());
    let lanes = events.take_lanes();
    let watcher = {
        let (mains, network) = (mains.clone(), network.clone());
        tokio::spawn(async move {
            // Gossip is not for a node without a chain yet: ignored, not relayed.
            for mut lane in lanes {
                let network = network.clone();
                tokio::spawn(async move {
                    while let Some(gossip) = lane.next().await {
                        network.validated(gossip.ticket, Verdict::Ignore, GossipEffect::None).await;
                    }
                });
            }
            while let Some(event) = events.next().await {
                match event {
                    NetworkEvent::PeerJoined { peer, status } if status.role == Role::Main => {
                        let mut peers = mains.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if !peers.1.contains(&peer) && !peers.0.contains(&peer) {
                            peers.0.push(peer);
                        }
                        drop(peers);
                        // A permit if nobody waits yet: the next wait returns at once.
                        mains.joined.notify_one();
                    }
                    NetworkEvent::PeerLeft { peer } => {
                        mains
                            .peers
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0
                            .retain(|p| *p != peer);
                    }
                    NetworkEvent::Request { id, .. } => {
                        let answer =
                            Response::error(ErrorCode::Unavailable, "this node is still syncing its state");
                        network.respond(id, answer).await;
                    }
                    _ => {}
                }
            }
        })
    };
    let started = std::time::Instant::now();
    let mut outcome = Err(eyre!("state sync did not start"));
    for attempt in 0..MAX_ATTEMPTS {
        match attempt_once(spec, &network, &mains, attempt, &staging).await {
            Ok(()) => {
                outcome = Ok(());
                break;
            }
            Err(Setback::Fatal(error)) => {
                outcome = Err(error);
                break;
            }
            Err(Setback::Retry(reason)) => {
                tracing::warn!(attempt, %reason, "state sync: starting again");
                tokio::time::sleep(RETRY_DELAY).await;
                if staging.exists() {
                    std::fs::remove_dir_all(&staging)
                        .wrap_err_with(|| format!("removing {}", staging.display()))?;
                }
                outcome = Err(eyre!("state sync failed {MAX_ATTEMPTS} times; the last time: {reason}"));
            }
        }
    }
    watcher.abort();
    let _ = stop.send(true);
    let _ = network_task.await;
    outcome?;
    std::fs::rename(&staging, db)
        .wrap_err_with(|| format!("renaming {} to {}", staging.display(), db.display()))?;
    if let Some(parent) = db.parent() {
        std::fs::File::open(parent).and_then(|dir| dir.sync_all()).wrap_err("syncing the base path")?;
    }
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "state sync: done; syncing the blocks after it"
    );
    Ok(())
}

/// One try: a final block, its state, the block; the restored database left at `staging`.
async fn attempt_once(
    spec: &ChainSpec,
    network: &NetworkHandle,
    mains: &Mains,
    attempt: usize,
    staging: &Path,
) -> Result<(), Setback> {
    let peer = mains.wait(attempt).await;
    let mut pace = tokio::time::interval(REQUEST_INTERVAL);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (anchor, step) = follow_finality(spec, network, mains, peer, &mut pace).await?;
    let base = anchor.header.clone();
    let height = base.header().height;
    tracing::info!(height, hash = %base.hash(), %peer, "state sync: final block verified; fetching its state");
    let fatal = |e: goodwill_ledger::StoreError| Setback::Fatal(eyre!(e));
    let mut restore = StateRestore::start(staging, base.clone()).map_err(fatal)?;
    let (mut slowed, mut reported) = (0, std::time::Instant::now());
    while let Some(next) = restore.next_key() {
        pace.tick().await;
        let request = Request::StateChunk { block: base.hash(), start: next.0 };
        let chunk = match network.query(peer, request).await {
            Ok(Response::StateChunk(chunk)) => chunk,
            Ok(Response::Error(ErrorCode::RateLimited, _)) if slowed < MAX_SLOW_DOWNS => {
                slowed += 1;
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
            Ok(Response::Error(code, message)) => {
                return Err(Setback::Retry(format!("{peer} answered {}: {message}", code.as_str())));
            }
            Ok(_) => {
                mains.ban(network, peer, "it answered a state request with something else".into());
                return Err(Setback::Retry("a wrong answer".into()));
            }
            Err(error) => return Err(Setback::Retry(format!("asking {peer}: {error}"))),
        };
        match restore.add_chunk(chunk) {
            Ok(_) => {}
            Err(RestoreError::Invalid(reason)) => {
                mains.ban(network, peer, format!("its state chunk does not hold: {reason}"));
                return Err(Setback::Retry(reason));
            }
            Err(RestoreError::Store(error)) => return Err(fatal(error)),
        }
        if reported.elapsed() >= PROGRESS_INTERVAL {
            reported = std::time::Instant::now();
            tracing::info!(leaves = restore.entries(), "state sync: restoring");
        }
    }
    let block = match network.query(peer, Request::BlocksByHash(vec![base.hash()])).await {
        Ok(Response::Blocks(mut blocks)) if blocks.len() == 1 => blocks.remove(0),
        Ok(_) => return Err(Setback::Retry(format!("{peer} did not send the final block"))),
        Err(error) => return Err(Setback::Retry(format!("asking {peer}: {error}"))),
    };
    let checkpoint = anchor.finalized();
    let leaves = restore.entries();
    match restore.finish(spec, block, checkpoint, &step) {
        Ok(store) => drop(store),
        Err(RestoreError::Invalid(reason)) => {
            mains.ban(network, peer, format!("its final block does not hold: {reason}"));
            return Err(Setback::Retry(reason));
        }
        Err(RestoreError::Store(error)) => return Err(fatal(error)),
    }
    tracing::info!(height, leaves, "state sync: state restored");
    Ok(())
}

/// Follows proofs of finality from genesis as far as `peer` proves them; the last step taken is
/// kept with the anchor (the restored database stores it).
async fn follow_finality(
    spec: &ChainSpec,
    network: &NetworkHandle,
    mains: &Mains,
    peer: PeerId,
    pace: &mut tokio::time::Interval,
) -> Result<(Anchor, FinalityStep), Setback> {
    let slots_per_epoch = spec.params.slots_per_epoch;
    let mut anchor = Anchor::genesis(spec).map_err(|e| Setback::Fatal(eyre!(e)))?;
    let mut last: Option<FinalityStep> = None;
    loop {
        let from_height = anchor.header.header().height + 1;
        pace.tick().await;
        let steps = match network.query(peer, Request::FinalitySteps { from_height }).await {
            Ok(Response::FinalitySteps(steps)) => steps,
            Ok(Response::Error(code, message)) => {
                return Err(Setback::Retry(format!("{peer} answered {}: {message}", code.as_str())));
            }
            Ok(_) => {
                mains.ban(network, peer, "it answered a finality request with something else".into());
                return Err(Setback::Retry("a wrong answer".into()));
            }
            Err(error) => return Err(Setback::Retry(format!("asking {peer}: {error}"))),
        };
        let mut advanced = false;
        for step in steps {
            match anchor.advance(&step, slots_per_epoch) {
                Ok(next) => {
                    anchor = next;
                    last = Some(step);
                    advanced = true;
                }
                Err(StepError::Stale { .. }) => continue,
                Err(error) if error.is_lie() => {
                    mains.ban(network, peer, format!("its proof of finality does not hold: {error}"));
                    return Err(Setback::Retry(error.to_string()));
                }
                // An epoch without finality, or short of two thirds by this node's count: the
                // last final block proven is where it starts.
                Err(error) => {
                    tracing::info!(%error, "state sync: finality cannot be followed further");
                    break;
                }
            }
        }
        if !advanced {
            break;
        }
    }
    last.map(|step| (anchor, step)).ok_or_else(|| {
        Setback::Retry(format!(
            "{peer} proved no final block (if none is final yet, start without --sync state)"
        ))
    })
}
