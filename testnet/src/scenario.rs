//! A small language for cluster scenarios, one step per line:
//!
//! ```text
//! start 4                # start a cluster of 4 forging main nodes (the first step, once)
//! wait height 10         # until every running node's head is at height 10 or above
//! wait 3 blocks          # until every running node is 3 blocks above the highest head now
//! stop 1                 # stop node 1 cleanly (Ctrl-C)
//! kill 1                 # stop node 1 at once (kill -9)
//! restart 1              # start node 1 again, joining through the running nodes
//! partition 0 1 | 2 3    # split the cluster: nodes outside the first group restart knowing
//!                        # only their own group
//! wait apart             # until each group agrees on a head of its own (the groups forked)
//! heal                   # one node of each other group restarts knowing every group
//! one head               # until every running node has the same head
//! ```
//!
//! `#` starts a comment. Every wait gives up after [`Scenario::patience`] slots.
//!
//! ```
//! use goodwill_testnet::scenario::{Scenario, Step};
//! let scenario = Scenario::parse("start 3\nwait height 2\nkill 1\nrestart 1\none head").unwrap();
//! assert_eq!(scenario.steps()[2], Step::Stop { node: 1, crash: true });
//! assert!(Scenario::parse("wait height 2").is_err(), "a scenario starts its cluster first");
//! ```

use std::path::Path;
use std::time::Duration;

use eyre::{bail, eyre};

use crate::cluster::{Cluster, Options};

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start the cluster.
    Start {
        /// Main nodes.
        nodes: usize,
    },
    /// Until every running node's head is at this height or above.
    WaitHeight(u64),
    /// Until every running node is this many blocks above the highest head when the step begins.
    WaitBlocks(u64),
    /// Stop a node.
    Stop {
        /// Which.
        node: usize,
        /// At once (SIGKILL) rather than cleanly.
        crash: bool,
    },
    /// Start a stopped node again.
    Restart(usize),
    /// Split the running nodes into groups that cannot reach each other.
    Partition(Vec<Vec<usize>>),
    /// Until each group of the last partition agrees on a head, and the groups' heads differ.
    Apart,
    /// Join the groups of the last partition again.
    Heal,
    /// Until every running node has the same head.
    OneHead,
}

/// A parsed scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    steps: Vec<Step>,
    /// How many slots a wait may take before the scenario fails.
    pub patience: u64,
}

impl Scenario {
    /// Parses a scenario; errors name the line.
    pub fn parse(text: &str) -> eyre::Result<Scenario> {
        let mut steps = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let step = parse_step(line).map_err(|e| eyre!("line {}: `{line}`: {e}", number + 1))?;
            let starts = matches!(step, Step::Start { .. });
            if starts != steps.is_empty() {
                bail!("line {}: a scenario starts its cluster first, and once", number + 1);
            }
            steps.push(step);
        }
        if steps.is_empty() {
            bail!("an empty scenario");
        }
        Ok(Scenario { steps, patience: 60 })
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Runs the scenario with `binary` in `dir` (a fresh folder), with slots of `slot_ms`, on
    /// free loopback ports. `progress` hears each step as it begins. Stops the cluster at the end.
    pub fn run(
        &self,
        binary: &Path,
        dir: &Path,
        slot_ms: u64,
        mut progress: impl FnMut(&str),
    ) -> eyre::Result<()> {
        let limit = Duration::from_millis(slot_ms * self.patience);
        let mut cluster: Option<Cluster> = None;
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for step in &self.steps {
            progress(&format!("{step:?}"));
            if let Step::Start { nodes } = step {
                let options = Options { nodes: *nodes, slot_ms, http_port: 0, p2p_port: 0, spare_forgers: 0 };
                cluster = Some(Cluster::start(binary, dir, &options, |_| {})?);
                continue;
            }
            let cluster = cluster.as_mut().ok_or_else(|| eyre!("the cluster is not started"))?;
            match step {
                Step::Start { .. } => {}
                Step::WaitHeight(height) => {
                    cluster.wait_for_height(*height, limit)?;
                }
                Step::WaitBlocks(blocks) => {
                    let highest = cluster
                        .running()
                        .iter()
                        .map(|n| crate::cluster::head(&n.http).map(|h| h.0))
                        .collect::<eyre::Result<Vec<_>>>()?
                        .into_iter()
                        .max()
                        .unwrap_or(0);
                    cluster.wait_for_height(highest + blocks, limit)?;
                }
                Step::Stop { node, crash } => cluster.stop_node(*node, *crash)?,
                Step::Restart(node) => cluster.restart_node(*node, None)?,
                Step::Partition(split) => {
                    for group in &split[1..] {
                        for node in group {
                            cluster.stop_node(*node, false)?;
                        }
                    }
                    for group in &split[1..] {
                        for node in group {
                            cluster.restart_node(*node, Some(group))?;
                        }
                    }
                    groups = split.clone();
                }
                Step::Apart => {
                    if groups.is_empty() {
                        bail!("wait apart without a partition");
                    }
                    wait_apart(cluster, &groups, limit)?;
                }
                Step::Heal => {
                    if groups.is_empty() {
                        bail!("heal without a partition");
                    }
                    for group in &groups[1..] {
                        cluster.stop_node(group[0], false)?;
                        cluster.restart_node(group[0], None)?;
                    }
                    groups.clear();
                }
                Step::OneHead => {
                    cluster.wait_for_agreement(limit)?;
                }
            }
        }
        match cluster {
            Some(cluster) => cluster.stop(),
            None => Ok(()),
        }
    }
}

/// Polls until each group's running nodes share a head and no two groups share one.
fn wait_apart(cluster: &mut Cluster, groups: &[Vec<usize>], limit: Duration) -> eyre::Result<()> {
    let start = std::time::Instant::now();
    loop {
        cluster.check_alive()?;
        let running = cluster.running();
        let mut heads = Vec::new();
        for group in groups {
            let hashes: Vec<String> = running
                .iter()
                .filter(|n| group.contains(&n.index))
                .map(|n| crate::cluster::head(&n.http).map(|h| h.1))
                .collect::<eyre::Result<_>>()?;
            heads.push(hashes);
        }
        let agreed: Vec<&String> =
            heads.iter().filter(|h| !h.is_empty() && h.iter().all(|x| *x == h[0])).map(|h| &h[0]).collect();
        let distinct = agreed.iter().collect::<std::collections::HashSet<_>>().len();
        if agreed.len() == groups.len() && distinct == groups.len() {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("the groups did not fork apart within {limit:?}: {heads:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn parse_step(line: &str) -> eyre::Result<Step> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |word: &str| word.parse::<u64>().map_err(|_| eyre!("`{word}` is not a number"));
    let node = |word: &str| word.parse::<usize>().map_err(|_| eyre!("`{word}` is not a node number"));
    Ok(match words.as_slice() {
        ["start", n] => Step::Start { nodes: node(n)? },
        ["wait", "height", h] => Step::WaitHeight(number(h)?),
        ["wait", n, "blocks" | "block"] => Step::WaitBlocks(number(n)?),
        ["stop", n] => Step::Stop { node: node(n)?, crash: false },
        ["kill", n] => Step::Stop { node: node(n)?, crash: true },
        ["restart", n] => Step::Restart(node(n)?),
        ["partition", ..] => {
            let groups: Vec<Vec<usize>> = line["partition".len()..]
                .split('|')
                .map(|group| group.split_whitespace().map(node).collect::<eyre::Result<Vec<_>>>())
                .collect::<eyre::Result<_>>()?;
            if groups.len() < 2 || groups.iter().any(Vec::is_empty) {
                bail!("a partition needs two or more non-empty groups: `partition 0 1 | 2 3`");
            }
            Step::Partition(groups)
        }
        ["wait", "apart"] => Step::Apart,
        ["heal"] => Step::Heal,
        ["one", "head"] => Step::OneHead,
        _ => bail!(
            "unknown step (start N, wait height H, wait N blocks, stop I, kill I, restart I, partition A.. | B.., wait apart, heal, one head)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_step_and_names_the_bad_line() {
        let text = "start 4 # four\n\nwait height 3\nwait 2 blocks\nstop 0\nkill 1\nrestart 1\n\
                    partition 0 1 | 2 3\nwait apart\nheal\none head\n";
        let scenario = Scenario::parse(text).unwrap();
        assert_eq!(
            scenario.steps(),
            [
                Step::Start { nodes: 4 },
                Step::WaitHeight(3),
                Step::WaitBlocks(2),
                Step::Stop { node: 0, crash: false },
                Step::Stop { node: 1, crash: true },
                Step::Restart(1),
                Step::Partition(vec![vec![0, 1], vec![2, 3]]),
                Step::Apart,
                Step::Heal,
                Step::OneHead,
            ]
        );
        let error = Scenario::parse("start 2\nwait height x").unwrap_err().to_string();
        assert!(error.contains("line 2") && error.contains("not a number"), "{error}");
        assert!(Scenario::parse("start 2\npartition 0 |").is_err());
        assert!(Scenario::parse("start 2\nstart 2").is_err());
        assert!(Scenario::parse("start 2\nfly").is_err());
    }
}
