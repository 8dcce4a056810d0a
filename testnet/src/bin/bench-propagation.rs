//! Block propagation in a local cluster:
//! `bench-propagation [NODES] [SLOTS] [SLOT_MS] [TRANSFERS_PER_SLOT]`.
//!
//! Starts a cluster of NODES main nodes (default 4) on loopback with the launcher of
//! `goodwill testnet up`, lets it forge for SLOTS slots (default 60) of SLOT_MS milliseconds
//! (default 1000) while TRANSFERS_PER_SLOT transfers (default 0) are submitted each slot, spread
//! over the nodes' HTTP APIs, then stops it, and reads from every node's log when each gossiped block was
//! imported, relative to the timestamp its forger sealed it with (one machine, one clock).
//! Prints p50, p99 and the maximum of that delay per block and node, and of the delay until the
//! last node had the block. Runs the `goodwill` binary next to this one (build both with
//! `--release`), or the one `GOODWILL_BIN` names.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eyre::{WrapErr, bail};
use goodwill_ledger::{Amount, Keypair, Payload, TransactionBody};
use goodwill_node::api_client::ApiClient;
use goodwill_testnet::cluster::{Cluster, Options};

fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut number = |default: u64| -> eyre::Result<u64> {
        args.next().map_or(Ok(default), |a| a.parse().wrap_err_with(|| format!("not a number: {a}")))
    };
    let (nodes, slots, slot_ms, load) = (number(4)?, number(60)?, number(1000)?, number(0)?);
    if nodes < 2 {
        bail!("propagation needs at least two nodes");
    }
    let binary = match std::env::var_os("GOODWILL_BIN") {
        Some(path) => path.into(),
        None => std::env::current_exe()?.with_file_name("goodwill"),
    };
    let dir = tempfile::Builder::new().prefix("goodwill-bench-propagation-").tempdir()?;
    let options = Options { nodes: nodes as usize, slot_ms, http_port: 0, p2p_port: 0, spare_forgers: 0 };
    let mut cluster = Cluster::start(&binary, dir.path(), &options, |step| eprintln!("{step}"))?;
    cluster.wait_for_agreement(Duration::from_secs(120))?;
    eprintln!("forging for {slots} slots of {slot_ms} ms with {load} transfers per slot");
    let urls: Vec<String> = cluster.nodes().map(|n| n.http.clone()).collect();
    let window = Duration::from_millis(slots * slot_ms);
    // The measurement window itself: the figures come from the logs afterwards.
    let submitted = if load == 0 {
        std::thread::sleep(window);
        0
    } else {
        submit_load(&urls, load, slot_ms, window)?
    };
    cluster.check_alive()?;
    let logs: Vec<_> = cluster.nodes().map(|n| n.log.clone()).collect();
    cluster.stop()?;

    // Per block (height and hash), the delay at each node that imported it by gossip.
    let mut blocks: BTreeMap<(u64, String), Vec<u64>> = BTreeMap::new();
    let mut sizes: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
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
            let transactions: u64 = field("transactions=").map_or(Ok(0), |t| t.parse())?;
            sizes.insert(hash.clone(), transactions);
            blocks.entry((height.parse()?, hash)).or_default().push(delay.parse()?);
        }
    }
    let mut each: Vec<u64> = blocks.values().flatten().copied().collect();
    let mean_transactions = sizes.values().sum::<u64>() as f64 / sizes.len().max(1) as f64;
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
        "nodes {nodes}, slot {slot_ms} ms, {submitted} transfers submitted, {} blocks gossiped ({} reached every node), {mean_transactions:.0} transactions per block",
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

/// Submits `per_slot` transfers from the public dev account each slot, round-robin over the
/// nodes, until `window` is over; returns how many were accepted.
fn submit_load(urls: &[String], per_slot: u64, slot_ms: u64, window: Duration) -> eyre::Result<u64> {
    let (dev, dev2) = (Keypair::insecure_dev("dev"), Keypair::insecure_dev("dev2"));
    let nodes: Vec<ApiClient> = urls.iter().map(|url| ApiClient::new(url, Duration::from_secs(10))).collect();
    let status = nodes[0].status()?;
    let (chain_id, genesis, min_fee) = (status.chain_id, status.genesis_hash, status.min_fee.0);
    let account = nodes[0].get_ok(&format!("/api/v1/accounts/{}", dev.address()))?;
    let mut nonce = account["nonce"].as_u64().unwrap_or(0);
    let start = Instant::now();
    let mut accepted = 0;
    let mut slot = 0u64;
    while start.elapsed() < window {
        for i in 0..per_slot {
            let tx = TransactionBody {
                chain_id: chain_id.clone(),
                sender: dev.address(),
                nonce,
                fee: Amount(min_fee),
                payload: Payload::Transfer { to: dev2.address(), amount: Amount(1) },
            }
            .sign(&dev, &genesis);
            let node = &nodes[(i as usize) % nodes.len()];
            if node.submit(&tx).is_ok() {
                nonce += 1;
                accepted += 1;
            }
        }
        slot += 1;
        let next = Duration::from_millis(slot * slot_ms);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    Ok(accepted)
}

/// The `p`th percentile of a sorted, non-empty sample (nearest rank).
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}
