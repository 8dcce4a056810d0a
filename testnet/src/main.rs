//! `goodwill`: run a Goodwill node, manage keys, chain specs and the ledger, and run local
//! clusters. The node's commands come from `goodwill-node`; this binary lives in
//! `goodwill-testnet` so that it can also offer the cluster commands without the node depending
//! on the cluster launcher.

use clap::Parser;
use goodwill_testnet::cli::{BenchCommand, Cli, Command, TestnetCommand};

fn main() -> eyre::Result<()> {
    let args = goodwill_node::config::expand(std::env::args_os().collect())?;
    let cli = Cli::parse_from(args);
    goodwill_node::init_logs(cli.log_format);
    match cli.command {
        Command::Node(command) => goodwill_node::commands::run(command),
        Command::Testnet(TestnetCommand::Up(args)) => goodwill_testnet::launch::up(args),
        Command::Testnet(TestnetCommand::Down { dir }) => goodwill_testnet::launch::down(&dir),
        Command::Testnet(TestnetCommand::Attack(args)) => goodwill_testnet::attack::attack(args),
        Command::Bench(BenchCommand::Load(args)) => goodwill_testnet::load::load(args),
    }
}
