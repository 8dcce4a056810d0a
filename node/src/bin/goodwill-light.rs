//! `goodwill-light`: the light peer alone, for devices where memory is short. It takes what
//! `goodwill light` takes (the same flags, the same config file keys, under `[light]` or at the
//! top level) and runs the same code; being only that, it leaves out the main node's database,
//! contract engine and cluster tools, so the code the kernel maps in for it is a fraction of
//! the full binary's.

use std::ffi::OsString;

use clap::Parser;
use goodwill_node::cli::{LightArgs, LogFormat};

/// A Goodwill light peer: keeps no ledger; follows finality by proofs and headers, pushes
/// transactions and reads accounts through main nodes, verifying every answer.
#[derive(Debug, Parser)]
#[command(name = "goodwill-light", version)]
struct Cli {
    /// How logs are written to standard error: `text` or `json`. Filter them with RUST_LOG.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    light: LightArgs,
}

fn main() -> eyre::Result<()> {
    // The config file is read as for `goodwill light`: its keys land after the subcommand,
    // which is then taken out again.
    let mut args: Vec<OsString> = std::env::args_os().collect();
    args.insert(1.min(args.len()), "light".into());
    let mut args = goodwill_node::config::expand(args)?;
    if args.get(1).is_some_and(|arg| arg == "light") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    goodwill_node::init_logs(cli.log_format);
    goodwill_node::light::start(cli.light)
}
