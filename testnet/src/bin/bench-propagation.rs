//! Block propagation in a local cluster: `bench-propagation [NODES] [SLOTS] [SLOT_MS]`.
//!
//! Starts a cluster of NODES main nodes (default 4) on loopback with the launcher of
//! `goodwill testnet up`, lets it forge for SLOTS slots (default 60) of SLOT_MS milliseconds
//! (default 1000), stops it, and reads from every node's log when each gossiped block was
//! imported, relative to the timestamp its forger sealed it with (one machine, one clock).
//! Prints p50, p99 and the maximum of that delay per block and node, and of the delay until the
//! last node had the block. Runs the `goodwill` binary next to this one (build both with
//! `--release`), or the one `GOODWILL_BIN` names.

use std::collections::BTreeMap;
use std::time::Duration;

use eyre::{WrapErr, bail};
use goodwill_testnet::cluster::{Cluster, Options};

fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut number = |default: u64| -> eyre::Result<u64> {
        args.next().map_or(Ok(default), |a| a.parse().wrap_err_with(|| format!("not a number: {a}")))
    };
    let (nodes, slots, slot_ms) = (number(4)?, number(60)?, number(1000)?);
    if nodes < 2 {
        bail!("propagation needs at least two nodes");
    }
    let binary = match std::env::var_os("GOODWILL_BIN") {
        Some(path) => path.into(),
        None => std::env::current_exe()?.with_file_name("goodwill"),
    };
    let dir = tempfile::Builder::new().prefix("goodwill-bench-propagation-").tempdir()?;
    let options = Options { nodes: nodes as usize, slot_ms, http_port: 0, p2p_port: 0 };
    let mut cluster = Cluster::start(&binary, dir.path(), &options, |step| eprintln!("{step}"))?;
    cluster.wait_for_agreement(Duration::from_secs(120))?;
    eprintln!("forging for {slots} slots of {slot_ms} ms");
    // The measurement window itself: the figures come from the logs afterwards.
    std::thread::sleep(Duration::from_millis(slots * slot_ms));
    cluster.check_alive()?;
    let logs: Vec<_> = cluster.nodes().map(|n| n.log.clone()).collect();
    cluster.stop()?;

    // Per block (height and hash), the delay at each node that imported it by gossip.
    let mut blocks: BTreeMap<(u64, String), Vec<u64>> = BTreeMap::new();
    for log in &logs {
        let text = std::fs::read_to_string(log)?;
        for line in text.lines().filter(|l| l.contains("imported a gossiped block")) {
            let field = |name: &str| {
                line.split_whitespace().find_map(|word| word.strip_prefix(name)).map(str::to_string)
            };
            let (Some(height), Some(hash), Some(delay)) =
                (field("height="), field("hash="), field("delay_ms="))
            else {
                continue;
            };
            blocks.entry((height.parse()?, hash)).or_default().push(delay.parse()?);
        }
    }
    let mut each: Vec<u64> = blocks.values().flatten().copied().collect();
    // Blocks every other node imported by gossip: the slowest of them is "reached everyone".
    let mut last: Vec<u64> = blocks
        .values()
        .filter(|delays| delays.len() as u64 == nodes - 1)
        .filter_map(|delays| delays.iter().max().copied())
        .collect();
    if last.is_empty() {
        bail!("no block reached every node by gossip; see the logs in {}", dir.path().display());
    }
    each.sort_unstable();
    last.sort_unstable();
    println!(
        "nodes {nodes}, slot {slot_ms} ms, {} blocks gossiped ({} reached every node)",
        blocks.len(),
        last.len()
    );
    println!("{:<28} {:>6} {:>6} {:>6} {:>6}", "delay (ms)", "n", "p50", "p99", "max");
    for (name, sample) in [("forger to one node", &each), ("forger to every node", &last)] {
        println!(
            "{name:<28} {:>6} {:>6} {:>6} {:>6}",
            sample.len(),
            percentile(sample, 50),
            percentile(sample, 99),
            sample[sample.len() - 1]
        );
    }
    Ok(())
}

/// The `p`th percentile of a sorted, non-empty sample (nearest rank).
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}
