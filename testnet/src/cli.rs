//! The `goodwill` command line: the node's commands ([`goodwill_node::cli::Command`]) and the
//! cluster commands (`testnet`, `bench`) that live here, where the cluster launcher is.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use goodwill_node::cli::{LogFormat, default_testnet_dir};

/// A Goodwill node: a ledger secured by Proof of Good-Will.
#[derive(Debug, Parser)]
#[command(name = "goodwill", version, about)]
pub struct Cli {
    /// How logs are written to standard error: `text` for people, `json` (one object per line)
    /// for log collectors. Filter them with RUST_LOG (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every `goodwill` command: the node's, and the cluster commands this crate adds.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The node's commands.
    #[command(flatten)]
    Node(goodwill_node::cli::Command),
    /// Run a local cluster of main nodes, each a separate process.
    #[command(subcommand)]
    Testnet(TestnetCommand),
    /// Measure a cluster.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `goodwill bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load a cluster with transfers at a steady rate and report what it committed, how fast,
    /// and at what cost: committed TPS, submit-to-commit latency, CPU and memory per node.
    Load(LoadArgs),
}

/// `goodwill bench load`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Main nodes of the local cluster to start (ignored with --target).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub nodes: u16,
    /// Transfers per second to submit (with --find-max: the first rate tried).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub tps: u32,
    /// Seconds each trial submits for.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub duration: u64,
    /// Load running nodes instead (their HTTP APIs; repeatable). Their chain must fund --funder.
    #[arg(long)]
    pub target: Vec<String>,
    /// Search for the highest rate sustained with 95 % committed and p99 latency within 3 slots.
    #[arg(long)]
    pub find_max: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Slot length of the local cluster's chain.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(200..))]
    pub slot_ms: u64,
    /// Accounts that send the load (default: half the rate, 64 to 3,000).
    #[arg(long)]
    pub accounts: Option<usize>,
    /// The key that funds them: `dev` on dev and local chains, a key file, or a keystore key.
    #[arg(long, default_value = "dev")]
    pub funder: String,
    /// Transfers per HTTP request: each submitting thread sends what is due, up to this many,
    /// at least every 20 ms (1: one request per transfer, as a wallet sends them).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch: u16,
    /// Run `goodwill testnet attack` against the local cluster throughout, with the ticket of
    /// one more genesis forger that no node runs, and report what it did and whether the honest
    /// nodes ended on one chain.
    #[arg(long, conflicts_with = "target")]
    pub hostile: bool,
}

/// `goodwill testnet ...`
#[derive(Debug, Subcommand)]
pub enum TestnetCommand {
    /// Start a local cluster: a new chain (or the one already in the folder), one forging main
    /// node per genesis forger, all on loopback. Waits until they agree on a head, prints their
    /// addresses, and stops them all on Ctrl-C.
    Up(TestnetUpArgs),
    /// Stop a cluster started with `up --detach`.
    Down {
        /// The cluster folder.
        #[arg(long, env = "GOODWILL_TESTNET_DIR", default_value_os_t = default_testnet_dir())]
        dir: PathBuf,
    },
    /// Attack a running local cluster as hostile strangers would (blocks from the future, junk
    /// blocks, lying claims from fresh identities, replacement spam, oversized and malformed
    /// requests), with the key of a genesis forger that no node runs; prints what it did and
    /// how the nodes answered as JSON when it stops. Only attacks nodes on loopback.
    Attack(AttackArgs),
}

/// Arguments of `goodwill testnet attack`.
#[derive(Debug, Args)]
pub struct AttackArgs {
    /// The cluster folder (its `cluster.json` names the nodes to attack).
    #[arg(long, env = "GOODWILL_TESTNET_DIR", default_value_os_t = default_testnet_dir())]
    pub dir: PathBuf,
    /// The attacker's forger key: a genesis forger of the cluster's chain that no node runs
    /// (`goodwill testnet up --spare-forgers 1` makes one).
    #[arg(long)]
    pub key: PathBuf,
    /// Stop after this many seconds (default: on Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
}

/// Arguments of `goodwill testnet up`.
#[derive(Debug, Args)]
pub struct TestnetUpArgs {
    /// Main nodes (each forges with a ticket from genesis).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub nodes: u16,
    /// The cluster folder: chain spec, forger keys, and each node's data and log.
    #[arg(long, env = "GOODWILL_TESTNET_DIR", default_value_os_t = default_testnet_dir())]
    pub dir: PathBuf,
    /// Delete the chain already in the folder and start a new one.
    #[arg(long)]
    pub fresh: bool,
    /// Slot length of a new chain, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(200..))]
    pub slot_ms: u64,
    /// Node N serves its HTTP API on 127.0.0.1:(PORT + N); 0 picks free ports.
    #[arg(long, default_value_t = 9933)]
    pub http_port: u16,
    /// Node N listens for peers on 127.0.0.1:(PORT + N); 0 picks free ports.
    #[arg(long, default_value_t = 30333)]
    pub p2p_port: u16,
    /// Return once the cluster is up and leave it running (`goodwill testnet down` stops it).
    #[arg(long)]
    pub detach: bool,
    /// Genesis forgers of a new chain that no node runs: their keys (`forger-N.key` from N =
    /// --nodes on) are for `goodwill testnet attack`, or for nodes started by hand.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub spare_forgers: u16,
}
