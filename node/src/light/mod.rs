//! `goodwill light`: a peer that keeps no ledger. It follows finality from its anchor (genesis,
//! or the last final block it verified, kept in `anchor.pb` under its base path) by proofs of
//! finality, epoch to epoch, without blocks ([`goodwill_ledger::light`]); above the final block
//! it accepts a header only if it links to a header already accepted, fits its slot, proves its
//! body, and was forged by the lottery's rightful winner: the lottery's inputs after the parent
//! (the consensus record and every forger's record) come from a main node with Merkle proofs
//! against the parent's state root. It pushes transactions to main nodes and reads accounts
//! through them, checking every answer's proof against the state root of a header it accepted.
//! A main node whose proof does not hold is dropped and banned.
//!
//! It runs the same network service as a main node, in the light role ([`follow`] drives it);
//! [`api`] is its HTTP API.

mod api;
mod follow;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use eyre::{WrapErr, bail, eyre};
use goodwill_ledger::{ChainSpec, Hash};
use goodwill_protocol::{ChainIdentity, Head, NetworkConfig, Role};
use libp2p::{Multiaddr, identity};
use tokio::sync::{mpsc, watch};

/// What `goodwill light` was asked to run.
pub struct LightConfig {
    pub spec: ChainSpec,
    /// Where the last final block verified is kept.
    pub base_path: PathBuf,
    pub bootnodes: Vec<Multiaddr>,
    pub listen: Vec<Multiaddr>,
    pub mdns: bool,
    pub http: SocketAddr,
    /// What each HTTP client may ask.
    pub http_limits: crate::http::limits::ClientLimits,
}

/// Runs `goodwill light` (and `goodwill-light`).
pub fn start(args: crate::cli::LightArgs) -> eyre::Result<()> {
    let spec = match (&args.chain, args.genesis_hash) {
        (Some(chain), expected) => crate::config::load_checked_chain_spec(chain, expected)?,
        (None, Some(expected)) => crate::config::fetch_chain_spec(&args.network.bootnodes, expected)?.0,
        (None, None) => bail!("a light peer needs --chain, or --genesis-hash with --bootnode"),
    };
    let mut bootnodes = args.network.bootnodes;
    bootnodes.extend(spec.bootnodes.iter().filter_map(|text| text.parse().ok()));
    if bootnodes.is_empty() {
        bail!("a light peer needs a main node to talk to: pass --bootnode ADDRESS");
    }
    let http = args.http.address_or(crate::cli::DEFAULT_LIGHT_HTTP);
    let base_path = args.base_path.unwrap_or_else(|| crate::cli::default_light_dir(&spec.chain_id));
    let config = LightConfig {
        spec,
        base_path,
        bootnodes,
        listen: args.network.listen,
        mdns: args.network.mdns,
        http,
        http_limits: args.http.limits(),
    };
    run(config)
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

/// What the HTTP side sees of the light peer.
#[derive(Default)]
struct View {
    chain_id: String,
    genesis: Option<Hash>,
    min_fee: u64,
    head: Option<(u64, Hash)>,
    finalized: Option<(u64, Hash)>,
    mains: usize,
    liars: Vec<String>,
}

async fn serve(config: LightConfig) -> eyre::Result<()> {
    let genesis = goodwill_ledger::light::Anchor::genesis(&config.spec)?;
    let genesis_hash = genesis.genesis;
    std::fs::create_dir_all(&config.base_path)
        .wrap_err_with(|| format!("creating {}", config.base_path.display()))?;
    let kept = follow::KeptAnchor::load(config.base_path.join("anchor.pb"), genesis)?;
    let root = &kept.anchor.header;
    let (height, hash) = (root.header().height, root.hash());
    let (head_out, head) = watch::channel(Head { height, hash, finalized: height });
    let network_config = NetworkConfig {
        role: Role::Light,
        chain: ChainIdentity { chain_id: config.spec.chain_id.clone(), genesis: genesis_hash },
        listen: config.listen,
        external: Vec::new(),
        bootnodes: config.bootnodes,
        mdns: config.mdns,
        address_limits: Default::default(),
        chain_spec: None,
    };
    let (network, events, event_loop) =
        goodwill_protocol::service::new(identity::Keypair::generate_ed25519(), network_config, head)
            .map_err(|e| eyre!("{e}"))?;
    let (stop, stopped) = watch::channel(false);
    let network_task = tokio::spawn(event_loop.run(stopped));
    let view = Arc::new(Mutex::new(View {
        chain_id: config.spec.chain_id.clone(),
        genesis: Some(genesis_hash),
        min_fee: config.spec.params.min_fee.0,
        ..View::default()
    }));
    let (commands, inbox) = mpsc::channel(64);
    let spec = Arc::new(config.spec.clone());
    let follower = follow::Follower::start(network, config.spec, kept, head_out, view.clone(), inbox, events);
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .wrap_err_with(|| format!("binding the HTTP API to {}", config.http))?;
    let http_address = listener.local_addr()?;
    let router = api::router(api::Api { commands, view, spec, genesis: genesis_hash });
    let limits = config.http_limits;
    let http = tokio::spawn(crate::http::serve(listener, router, limits, std::future::pending()));
    crate::announce(format_args!("HTTP API listening on http://{http_address}"));
    tracing::info!(genesis = %genesis_hash, "light peer: following headers, keeping no ledger");
    tokio::signal::ctrl_c().await.wrap_err("waiting for Ctrl-C")?;
    http.abort();
    follower.abort();
    let _ = stop.send(true);
    let _ = network_task.await;
    crate::announce(format_args!("stopped cleanly"));
    Ok(())
}
