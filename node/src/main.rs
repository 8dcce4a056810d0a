//! `goodwill`: run a Goodwill node and manage keys, chain specs and the ledger.

mod actor;
mod bench;
mod cli;
mod client;
mod commands;
mod config;
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
mod verifier;

use clap::Parser;

fn main() -> eyre::Result<()> {
    let args = config::expand(std::env::args_os().collect())?;
    let cli = cli::Cli::parse_from(args);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Json => logs.json().with_current_span(false).init(),
        // Colours only on a terminal: log files and pipes get plain text.
        cli::LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    commands::run(cli)
}
