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

#[cfg(feature = "node")]
pub mod actor;
#[cfg(feature = "node")]
pub mod api_client;
pub mod cli;
#[cfg(feature = "node")]
pub mod client;
#[cfg(feature = "node")]
pub mod commands;
pub mod config;
#[cfg(feature = "node")]
pub mod forger;
pub mod http;
#[cfg(feature = "node")]
pub mod keystore;
pub mod light;
#[cfg(feature = "node")]
pub mod mempool;
#[cfg(feature = "node")]
pub mod metrics;
#[cfg(feature = "node")]
pub mod network;
#[cfg(feature = "node")]
pub mod run;
#[cfg(feature = "node")]
pub mod signing;
#[cfg(feature = "node")]
pub mod state_sync;
#[cfg(feature = "node")]
pub mod verifier;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Prints a line for scripts and tests to read. A closed or broken stdout (the reader went
/// away) is no reason for a node to stop, so write errors are ignored (`println!` would panic).
pub fn announce(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

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
