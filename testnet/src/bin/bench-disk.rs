//! Disk growth of a main node's database, archive against pruning:
//! `bench-disk [BLOCKS] [TRANSFERS_PER_BLOCK] [RECIPIENTS] [KEEP]`.
//!
//! Builds the same loaded chain twice (BLOCKS blocks of TRANSFERS_PER_BLOCK transfers, each to
//! the next of RECIPIENTS accounts, forgers voting every slot so that blocks become final as a
//! live network's do): once keeping every state, once keeping KEEP states below the final block.
//! Prints, for each, the database's size on disk as written and after a full compaction, and its
//! number of state-tree nodes and values.

use std::path::Path;
use std::time::Instant;

use goodwill_ledger::{RocksStore, StatePruning, Store};
use goodwill_testnet::prebuilt::{self, Options};

/// Bytes of the files in `dir` and below.
fn size(dir: &Path) -> eyre::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() { size(&entry.path())? } else { metadata.len() };
    }
    Ok(total)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let blocks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let transfers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let recipients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let keep: u64 =
        args.next().map(|a| a.parse()).transpose()?.unwrap_or(goodwill_node::cli::DEFAULT_STATE_KEEP);
    println!(
        "{blocks} blocks of {transfers} transfers to {recipients} accounts, 4 forgers voting every slot"
    );
    println!("| states kept | build | on disk as written | after compaction | state nodes | state values |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for pruning in [StatePruning::Archive, StatePruning::Keep(keep)] {
        let dir = tempfile::tempdir()?;
        let options = Options {
            forgers: 4,
            blocks,
            transfers,
            slot_ms: 1_000,
            slots_per_epoch: None,
            finality: true,
            recipients,
            pruning,
        };
        let started = Instant::now();
        let built = prebuilt::build(dir.path(), &options)?;
        let build = started.elapsed();
        let db = built.base_path.join("db");
        let written = size(&db)?;
        let store = RocksStore::open_existing(&db)?;
        store.compact()?;
        let entries = store.state_entries()?;
        let from = store.pruned_below();
        drop(store);
        let compacted = size(&db)?;
        let kept = match pruning {
            StatePruning::Archive => "all (archive)".to_string(),
            StatePruning::Keep(keep) => format!("{keep} below final (from height {from})"),
        };
        println!(
            "| {kept} | {:.0} s | {:.1} MiB | {:.1} MiB | {} | {} |",
            build.as_secs_f64(),
            mib(written),
            mib(compacted),
            entries.nodes,
            entries.values
        );
    }
    Ok(())
}
