//! Local Goodwill clusters, and the `goodwill` binary: the node's commands (from `goodwill-node`)
//! plus the ones that need a cluster.
//!
//! [`cluster`] starts and stops a cluster of `goodwill node` processes; [`launch`] is
//! `goodwill testnet up|down` on top of it; [`load`] is the load generator (`goodwill bench
//! load`); [`attack`] is `goodwill testnet attack`, hostile strangers in one process; [`scenario`] drives a cluster through steps written one per line (start, wait, stop,
//! kill, restart, partition, heal, one head); [`prebuilt`] builds chains ahead of time for tests
//! and benchmarks to start from; [`process`] runs one `goodwill` process for a benchmark. The cluster tests (`tests/it`) run real processes on loopback.
//!
//! ```
//! let dir = goodwill_testnet::node_dir(std::path::Path::new("/tmp/cluster"), 2);
//! assert!(dir.ends_with("n2"));
//! ```

pub mod attack;
pub mod cli;
pub mod cluster;
pub mod launch;
pub mod load;
pub mod prebuilt;
pub mod process;
pub mod scenario;

use std::path::{Path, PathBuf};

/// The data folder of node `index` in a cluster folder.
pub fn node_dir(cluster: &Path, index: usize) -> PathBuf {
    cluster.join(format!("n{index}"))
}
