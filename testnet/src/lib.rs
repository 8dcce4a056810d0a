//! Local Goodwill clusters: the launcher behind `goodwill testnet up` and the scenario language
//! cluster tests are written in (issue "The three ways in").
//!
//! For now it names where a cluster keeps its files and builds chains for tests and benchmarks
//! to start from ([`prebuilt`]).
//!
//! ```
//! let dir = goodwill_testnet::node_dir(std::path::Path::new("/tmp/cluster"), 2);
//! assert!(dir.ends_with("n2"));
//! ```

pub mod prebuilt;

use std::path::{Path, PathBuf};

/// The data folder of node `index` in a cluster folder.
pub fn node_dir(cluster: &Path, index: usize) -> PathBuf {
    cluster.join(format!("n{index}"))
}
