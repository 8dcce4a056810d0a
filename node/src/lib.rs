//! A Goodwill main node and light peer, wired together: the chain actor that owns the ledger
//! ([`actor`]), the network service run as a main node ([`network`], over `goodwill-protocol`),
//! the forger ([`forger`]), the pool ([`mempool`]), the HTTP API and explorer ([`http`]), the
//! light peer ([`light`]), the wallet's keystore ([`keystore`]) and the commands that start
//! them ([`commands`], [`cli`]). The `goodwill` binary (in `goodwill-testnet`) parses the command
//! line and calls [`commands::run`].
//!
//! ```
//! let format = goodwill_node::cli::LogFormat::Text;
//! assert_eq!(format, goodwill_node::cli::LogFormat::Text);
//! ```

#![allow(missing_docs)] // A wiring crate: its items are documented where they are not obvious.

pub mod actor;
pub mod api_client;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod forger;
pub mod http;
pub mod keystore;
pub mod light;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod run;
pub mod signing;
pub mod state_sync;
pub mod verifier;

/// Starts the log: text for people, or one JSON object per line, on standard error, filtered by
/// RUST_LOG (default `info`).
pub fn init_logs(format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Json => logs.json().with_current_span(false).init(),
        // Colours only on a terminal: log files and pipes get plain text.
        cli::LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
}
