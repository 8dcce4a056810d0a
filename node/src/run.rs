//! `goodwill node`: opens the chain, starts the chain actor, the forger and the HTTP API, and
//! shuts them down cleanly on Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use eyre::{WrapErr, eyre};
use goodwill_ledger::{Chain, ChainSpec, Keypair, RocksStore, Store};
use tokio::sync::watch;

use crate::actor;
use crate::announce;
use crate::forger;

/// What `goodwill node` was asked to run.
pub struct NodeConfig {
    pub spec: ChainSpec,
    pub base_path: PathBuf,
    pub forger_key: Option<Keypair>,
    pub http: SocketAddr,
    /// What each HTTP client may ask.
    pub http_limits: crate::http::limits::ClientLimits,
    pub listen: Vec<libp2p::Multiaddr>,
    pub public_addrs: Vec<libp2p::Multiaddr>,
    pub bootnodes: Vec<libp2p::Multiaddr>,
    pub mdns: bool,
    /// This node's minimum fee.
    pub min_fee: goodwill_ledger::Amount,
    /// This node's minimum gas price for contract transactions.
    pub min_gas_price: u64,
    /// Which states it keeps.
    pub pruning: goodwill_ledger::StatePruning,
    /// Whether a node with no database starts from the last final block's state.
    pub state_sync: bool,
}

/// Runs a node until Ctrl-C.
pub fn run(config: NodeConfig) -> eyre::Result<()> {
    // The chain thread, started from this (the main) thread, keeps its priority; the runtime's
    // threads yield to it (see `verifier`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Submitted transactions are checked on these threads (contracts are parsed): the
        // stack the contract engine is sized for.
        .thread_stack_size(goodwill_ledger::contract::STACK_BYTES)
        .on_thread_start(|| crate::verifier::lower_priority(crate::verifier::RUNTIME_NICENESS))
        .enable_all()
        .build()
        .wrap_err("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: NodeConfig) -> eyre::Result<()> {
    let db_path = config.base_path.join("db");
    std::fs::create_dir_all(&config.base_path)
        .wrap_err_with(|| format!("creating the base path {}", config.base_path.display()))?;
    if config.state_sync {
        crate::state_sync::run(&config.spec, &db_path, config.bootnodes.clone()).await?;
    }
    let store = RocksStore::open(&db_path)?;
    let spec_json = config.spec.to_json();
    let mut chain = Chain::open(store, config.spec)?;
    chain.set_pruning(config.pruning);
    let head = chain.head().clone();
    tracing::info!(
        chain = %chain.spec().chain_id,
        genesis = %chain.genesis_hash(),
        height = head.header().height,
        head = %head.hash(),
        base_path = %config.base_path.display(),
        states_from = chain.store().pruned_below(),
        pruning = ?config.pruning,
        "opened the chain"
    );
    let forger_address = config.forger_key.as_ref().map(Keypair::address);
    let forger = match config.forger_key {
        Some(key) => {
            let path = config.base_path.join(crate::signing::FILE_NAME);
            let record = crate::signing::SigningRecord::open(&path, chain.genesis_hash(), key.address())?;
            Some(crate::signing::Forger { key, record })
        }
        None => None,
    };
    let mut pool = crate::mempool::PoolConfig::new(chain.spec().pool.tx_expiry_slots, config.min_fee);
    pool.min_gas_price = config.min_gas_price;
    let metrics = crate::metrics::Metrics::new();
    let (handle, chain_thread) = actor::spawn(chain, forger, pool, metrics.clone());
    let (stop, stopped) = watch::channel(false);

    let network_key = crate::network::load_or_create_identity(&config.base_path.join("network.key"))?;
    tracing::info!(peer_id = %network_key.public().to_peer_id(), "network identity");
    let addresses = crate::network::Addresses {
        listen: config.listen,
        external: config.public_addrs,
        bootnodes: config.bootnodes,
        mdns: config.mdns,
        chain_spec: Some(spec_json),
    };
    let (network, network_task) =
        crate::network::spawn(network_key, addresses, handle.clone(), metrics.clone(), stopped.clone())
            .await?;

    let listener = crate::http::bind(config.http)
        .await
        .wrap_err_with(|| format!("binding the HTTP API to {}", config.http))?;
    let http_address = listener.local_addr()?;
    let router = crate::http::router(handle.clone(), network.clone(), metrics.clone());
    let mut http_stopped = stopped.clone();
    let http_limits = config.http_limits;
    let http = tokio::spawn(async move {
        let shutdown = async move {
            let _ = http_stopped.wait_for(|stop| *stop).await;
        };
        crate::http::serve(listener, router, http_limits, shutdown).await
    });
    // Tests and scripts wait for this line.
    announce(format_args!("HTTP API listening on http://{http_address}"));
    let forger_task = forger_address.map(|address| {
        tracing::info!(%address, "forging when the lottery picks this node, and voting for finality");
        let voting = tokio::spawn(forger::vote(handle.clone(), network.clone(), stopped.clone()));
        let forging =
            tokio::spawn(forger::run(handle.clone(), network.clone(), address, metrics, stopped.clone()));
        (forging, voting)
    });
    drop(handle);

    tokio::signal::ctrl_c().await.wrap_err("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    if let Some((forging, voting)) = forger_task {
        let _ = forging.await;
        let _ = voting.await;
    }
    http.await.map_err(|e| eyre!("HTTP task: {e}"))??;
    drop(network);
    let _ = network_task.await;
    // The last handles are gone: the actor finishes its queue, closes the store and exits.
    chain_thread.join().map_err(|_| eyre!("the chain thread panicked"))?;
    announce(format_args!("stopped cleanly"));
    Ok(())
}
