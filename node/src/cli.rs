//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A Goodwill node: a ledger secured by Proof of Good-Will.
#[derive(Debug, Parser)]
#[command(name = "goodwill", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Build chain specs.
    #[command(subcommand, name = "chain-spec")]
    ChainSpec(ChainSpecCommand),
    /// Check a node's stored ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
}

/// `goodwill key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a new key. With --out, writes a key file readable only by you and prints the
    /// address; without, prints the key as JSON.
    Generate {
        /// Where to write the key file (refuses to overwrite an existing file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the address of a key file.
    Inspect {
        /// The key file.
        file: PathBuf,
    },
}

/// Built-in chain specs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BuiltinChain {
    /// One node; the insecure `dev` key forges.
    Dev,
    /// A local cluster; well-known insecure forger keys `local-forger-0..N`.
    Local,
}

/// `goodwill chain-spec ...`
#[derive(Debug, Subcommand)]
pub enum ChainSpecCommand {
    /// Print a chain spec as JSON, with genesis at the current time.
    Build(ChainSpecBuildArgs),
}

/// Arguments of `goodwill chain-spec build`.
#[derive(Debug, Args)]
pub struct ChainSpecBuildArgs {
    /// Which chain.
    #[arg(long, value_enum)]
    pub chain: BuiltinChain,
    /// Number of genesis forgers (local chain).
    #[arg(long, default_value_t = 4)]
    pub forgers: usize,
}

/// `goodwill ledger ...`
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Re-validate the stored chain from genesis: signatures, roots, every transaction and the
    /// final state. Prints the head, or the first bad block and why (exit code 1).
    Verify {
        /// The node's base path (its database is in `BASE/db`).
        #[arg(long)]
        base_path: PathBuf,
    },
}
