//! A new main node starting from a final block's state against one replaying the chain:
//! `bench-state-sync [BLOCKS] [TRANSFERS_PER_BLOCK] [RECIPIENTS]`.
//!
//! Builds a chain of BLOCKS blocks of TRANSFERS_PER_BLOCK transfers, each to the next of
//! RECIPIENTS accounts (so the state holds about RECIPIENTS leaves), with forgers voting every
//! slot so that it is final as it grows; starts a node on it, then a fresh node with
//! `--sync state` and, after it, one that replays the chain from genesis, and times each from its
//! start until its head reaches the chain's. Runs the `goodwill` binary next to this one (build
//! both with `--release`), or the one `GOODWILL_BIN` names.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use eyre::bail;
use goodwill_ledger::{RocksStore, StatePruning, Store};
use goodwill_node::api_client::ApiClient;
use goodwill_testnet::prebuilt::{self, Options};
use goodwill_testnet::process::{Running, goodwill_binary, start};

fn height(node: &Running) -> eyre::Result<u64> {
    Ok(ApiClient::new(&node.url, Duration::from_secs(10)).status()?.head.height)
}

/// Starts a fresh node on `spec` joining through `source`, with `extra` flags, and times it
/// until its head reaches `target`: until it answers (the state restored), and until caught up.
fn join(
    binary: &std::path::Path,
    spec: &std::path::Path,
    base: &std::path::Path,
    source: &Running,
    extra: &[&str],
    target: u64,
) -> eyre::Result<(Duration, Duration)> {
    let mut args: Vec<&OsStr> = vec![
        "--chain".as_ref(),
        spec.as_os_str(),
        "--base-path".as_ref(),
        base.as_os_str(),
        "--bootnode".as_ref(),
        source.p2p.as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let started = Instant::now();
    let node = start(binary, "node", &args)?;
    let answering = started.elapsed();
    loop {
        if height(&node)? >= target {
            return Ok((answering, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(1_800) {
            bail!("the node did not catch up within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let blocks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let transfers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let recipients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let binary = goodwill_binary()?;
    let dir = tempfile::tempdir()?;
    let options = Options {
        forgers: 4,
        blocks,
        transfers,
        slot_ms: 1_000,
        slots_per_epoch: None,
        finality: true,
        recipients,
        pruning: StatePruning::Archive,
    };
    let built_at = Instant::now();
    let built = prebuilt::build(dir.path(), &options)?;
    eprintln!("built {blocks} blocks with {} transactions in {:.1?}", built.transactions, built_at.elapsed());
    let leaves = {
        let store = RocksStore::open_existing(&built.base_path.join("db"))?;
        let head = store.head_header()?.map_or(0, |head| head.header().height);
        goodwill_ledger::state::leaf_count(&store, head)?
    };
    let source = start(
        &binary,
        "node",
        &["--chain".as_ref(), built.spec.as_os_str(), "--base-path".as_ref(), built.base_path.as_os_str()],
    )?;
    let target = height(&source)?;
    let (restored, state_synced) =
        join(&binary, &built.spec, &dir.path().join("state"), &source, &["--sync", "state"], target)?;
    let (_, replayed) = join(&binary, &built.spec, &dir.path().join("full"), &source, &[], target)?;
    println!(
        "{blocks} blocks, {} transactions, {} state leaves:\n\
         --sync state: state restored and the node answering in {:.2} s, at the head in {:.2} s\n\
         --sync full (replay from genesis): at the head in {:.2} s",
        built.transactions,
        leaves,
        restored.as_secs_f64(),
        state_synced.as_secs_f64(),
        replayed.as_secs_f64()
    );
    Ok(())
}
