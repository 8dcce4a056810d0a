//! Sync speed of a fresh node: `bench-sync [BLOCKS] [TRANSFERS_PER_BLOCK]`.
//!
//! Builds a chain of BLOCKS blocks with TRANSFERS_PER_BLOCK transfers each, starts a node on it
//! and a fresh node that knows only the first one, and times the fresh node from its start
//! until its head reaches the chain's height. Prints blocks per second and transactions per
//! second. Runs the `goodwill` binary next to this one (build both with `--release`), or the
//! one `GOODWILL_BIN` names.

use std::time::{Duration, Instant};

use eyre::bail;
use goodwill_ledger::StatePruning;
use goodwill_node::api_client::ApiClient;
use goodwill_testnet::prebuilt::{self, Options};
use goodwill_testnet::process::{Running, goodwill_binary, start};

fn height(node: &Running) -> eyre::Result<u64> {
    Ok(ApiClient::new(&node.url, Duration::from_secs(10)).status()?.head.height)
}

fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let blocks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let transfers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let binary = goodwill_binary()?;
    let dir = tempfile::tempdir()?;
    let options = Options {
        forgers: 2,
        blocks,
        transfers,
        slot_ms: 500,
        slots_per_epoch: None,
        finality: false,
        recipients: 0,
        pruning: StatePruning::Archive,
    };
    let built_at = Instant::now();
    let built = prebuilt::build(dir.path(), &options)?;
    eprintln!("built {blocks} blocks with {} transactions in {:.1?}", built.transactions, built_at.elapsed());

    let source = start(
        &binary,
        "node",
        &["--chain".as_ref(), built.spec.as_os_str(), "--base-path".as_ref(), built.base_path.as_os_str()],
    )?;
    let fresh_path = dir.path().join("fresh");
    let started = Instant::now();
    let fresh = start(
        &binary,
        "node",
        &[
            "--chain".as_ref(),
            built.spec.as_os_str(),
            "--base-path".as_ref(),
            fresh_path.as_os_str(),
            "--bootnode".as_ref(),
            source.p2p.as_ref(),
        ],
    )?;
    loop {
        if height(&fresh)? >= blocks {
            break;
        }
        if started.elapsed() > Duration::from_secs(1_800) {
            bail!("the fresh node did not sync within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "synced {blocks} blocks ({transfers} transfers each) in {seconds:.2} s: {:.0} blocks/s, {:.0} transactions/s",
        blocks as f64 / seconds,
        built.transactions as f64 / seconds
    );
    drop(fresh);
    drop(source);
    Ok(())
}
