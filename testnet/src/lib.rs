//! Local Goodwill clusters: the launcher behind `goodwill testnet up` and the scenario language
//! cluster tests are written in (issue "The three ways in").
//!
//! [`cluster`] starts and stops a cluster of `goodwill node` processes; [`scenario`] drives one
//! through steps written one per line (start, wait, stop, kill, restart, partition, heal, one
//! head); [`prebuilt`] builds chains ahead of time for tests and benchmarks to start from.
//!
//! ```
//! let dir = goodwill_testnet::node_dir(std::path::Path::new("/tmp/cluster"), 2);
//! assert!(dir.ends_with("n2"));
//! ```

pub mod cluster;
pub mod prebuilt;
pub mod scenario;

use std::path::{Path, PathBuf};

/// The data folder of node `index` in a cluster folder.
pub fn node_dir(cluster: &Path, index: usize) -> PathBuf {
    cluster.join(format!("n{index}"))
}
