//! `goodwill`: run a Goodwill node and manage keys, chain specs and the ledger.

mod actor;
mod cli;
mod client;
mod commands;
mod forger;
mod http;
mod keystore;
mod light;
mod mempool;
mod metrics;
mod network;
mod rate_limit;
mod run;
mod sync;
mod testnet;

use clap::Parser;

fn main() -> eyre::Result<()> {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    commands::run(cli)
}
