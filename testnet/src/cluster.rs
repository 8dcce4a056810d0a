//! A local cluster of main nodes, each a separate `goodwill node` process: what
//! `goodwill testnet up` starts and `goodwill testnet down` stops.
//!
//! A cluster folder holds everything about one cluster:
//!
//! ```text
//! DIR/spec.json         the local chain spec (genesis forgers with tickets from genesis)
//! DIR/forger-N.key      node N's forger key (private to the user)
//! DIR/nN/               node N's base path: its database, network key and `node.log`
//! DIR/cluster.json      the running nodes (process ids and addresses), while they run
//! ```
//!
//! Starting a cluster in a folder that already holds a spec restarts that chain: the nodes open
//! their databases and continue.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eyre::{WrapErr, bail, eyre};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use goodwill_node::api_client::ApiClient;

use crate::node_dir;

/// How long a node may take from its start until its API answers.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node may take to stop after an interrupt before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the launcher looks at a node that is starting or stopping (another process: its
/// log and its API are the only signals there are).
const POLL: Duration = Duration::from_millis(100);

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// Main nodes, each forging with its own genesis ticket.
    pub nodes: usize,
    /// Slot length of a new chain.
    pub slot_ms: u64,
    /// Node N serves its HTTP API on `http_port + N` (0: any free port).
    pub http_port: u16,
    /// Node N listens for peers on `p2p_port + N` (0: any free port).
    pub p2p_port: u16,
    /// Genesis forgers of a new chain beyond `nodes`, whose keys no node runs.
    pub spare_forgers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { nodes: 4, slot_ms: 2_000, http_port: 9933, p2p_port: 30333, spare_forgers: 0 }
    }
}

/// One node of a cluster, as `cluster.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its index in the cluster.
    pub index: usize,
    /// Its process.
    pub pid: u32,
    /// Its HTTP API, `http://127.0.0.1:PORT`.
    pub http: String,
    /// Its peer-to-peer address, ready to pass as `--bootnode`.
    pub p2p: String,
    /// Its data folder.
    pub base_path: PathBuf,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    nodes: Vec<NodeInfo>,
}

/// A running cluster started by this process. Dropping it kills the nodes that are still
/// running; [`Cluster::stop`] stops them cleanly, and [`Cluster::detach`] leaves them running.
pub struct Cluster {
    dir: PathBuf,
    binary: PathBuf,
    options: Options,
    nodes: Vec<(NodeInfo, Option<Child>)>,
}

impl Cluster {
    /// Creates the chain in `dir` if it holds none yet, then starts `options.nodes` main nodes
    /// of it with `binary` (the `goodwill` executable). `progress` hears about each step.
    pub fn start(
        binary: &Path,
        dir: &Path,
        options: &Options,
        mut progress: impl FnMut(&str),
    ) -> eyre::Result<Cluster> {
        if options.nodes == 0 {
            bail!("a cluster needs at least one node");
        }
        if let Some(running) = running(dir)? {
            bail!(
                "a cluster of {} nodes is already running in {} (stop it with `goodwill testnet down --dir {}`)",
                running.len(),
                dir.display(),
                dir.display()
            );
        }
        let spec = dir.join("spec.json");
        if spec.exists() {
            progress(&format!("continuing the chain in {}", dir.display()));
        } else {
            let forgers = options.nodes + options.spare_forgers;
            progress(&format!("creating a chain with {forgers} forgers in {}", dir.display()));
            let output = Command::new(binary)
                .args(["chain-spec", "build", "--chain", "local"])
                .args(["--forgers", &forgers.to_string(), "--slot-ms", &options.slot_ms.to_string()])
                .arg("--out")
                .arg(dir)
                .output()
                .wrap_err_with(|| format!("running {}", binary.display()))?;
            if !output.status.success() {
                bail!("building the chain spec failed: {}", String::from_utf8_lossy(&output.stderr).trim());
            }
        }
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            binary: binary.to_path_buf(),
            options: options.clone(),
            nodes: Vec::new(),
        };
        for index in 0..options.nodes {
            progress(&format!("starting node {index} of {}", options.nodes));
            let bootnodes: Vec<String> = cluster.nodes.iter().map(|(info, _)| info.p2p.clone()).collect();
            let (info, child) = cluster.start_node(index, &bootnodes)?;
            progress(&format!("node {index} is up: {} {}", info.http, info.p2p));
            cluster.nodes.push((info, Some(child)));
            cluster.record()?;
        }
        Ok(cluster)
    }

    fn start_node(&self, index: usize, bootnodes: &[String]) -> eyre::Result<(NodeInfo, Child)> {
        let port = |base: u16| if base == 0 { 0 } else { base.saturating_add(index as u16) };
        let (http_port, p2p_port) = (port(self.options.http_port), port(self.options.p2p_port));
        let base_path = node_dir(&self.dir, index);
        std::fs::create_dir_all(&base_path).wrap_err_with(|| format!("creating {}", base_path.display()))?;
        let log = base_path.join("node.log");
        // Appended to: a restarted node's log keeps what it wrote before.
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .wrap_err_with(|| format!("opening {}", log.display()))?;
        let start_of_run = file.metadata()?.len();
        let mut command = Command::new(&self.binary);
        command
            .arg("node")
            .arg("--chain")
            .arg(self.dir.join("spec.json"))
            .arg("--base-path")
            .arg(&base_path)
            .args(["--http", &format!("127.0.0.1:{http_port}")])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{p2p_port}")]);
        let key = self.dir.join(format!("forger-{index}.key"));
        if key.exists() {
            command.arg("--forger-key").arg(&key);
        }
        for bootnode in bootnodes {
            command.args(["--bootnode", bootnode]);
        }
        // Its own process group: Ctrl-C in the terminal reaches the launcher, which stops the
        // nodes in order, and a detached cluster outlives its terminal.
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()
            .wrap_err_with(|| format!("starting {}", self.binary.display()))?;
        let mut child = KillOnError(Some(child));
        let http = wait_for_line(&log, start_of_run, "HTTP API listening on ", child.get()?)?;
        let status = wait_for_status(&http, child.get()?)?;
        let p2p = status["network"]["listening"]
            .as_array()
            .and_then(|list| list.first())
            .and_then(Value::as_str)
            .ok_or_else(|| eyre!("node {index} does not listen for peers (see {})", log.display()))?
            .to_string();
        let child = child.0.take().ok_or_else(|| eyre!("node {index} vanished"))?;
        Ok((NodeInfo { index, pid: child.id(), http, p2p, base_path, log }, child))
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().map(|(info, _)| info)
    }

    /// The nodes that are running (started by this launcher and not exited).
    pub fn running(&mut self) -> Vec<NodeInfo> {
        self.exited();
        self.nodes.iter().filter(|(_, child)| child.is_some()).map(|(info, _)| info.clone()).collect()
    }

    /// Stops node `index` cleanly (an interrupt, as Ctrl-C), or at once (a kill, as a crash).
    pub fn stop_node(&mut self, index: usize, crash: bool) -> eyre::Result<()> {
        let (info, slot) = self.nodes.get_mut(index).ok_or_else(|| eyre!("there is no node {index}"))?;
        let Some(mut child) = slot.take() else { bail!("node {index} is not running") };
        if crash {
            child.kill()?;
            child.wait()?;
            return Ok(());
        }
        kill(Pid::from_raw(i32::try_from(child.id())?), Signal::SIGINT)?;
        let status = child.wait()?;
        if !status.success() {
            bail!("node {index} stopped with {status}; see {}", info.log.display());
        }
        Ok(())
    }

    /// Starts node `index` again (it must be stopped), joining through the running nodes among
    /// `peers` (all running nodes if `None`). With free ports it comes back on new ones, which
    /// only the nodes it dials learn: that is how a partition is made on loopback.
    pub fn restart_node(&mut self, index: usize, peers: Option<&[usize]>) -> eyre::Result<()> {
        match self.nodes.get(index) {
            None => bail!("there is no node {index}"),
            Some((_, Some(_))) => bail!("node {index} is running"),
            Some((_, None)) => {}
        }
        let bootnodes: Vec<String> = self
            .running()
            .into_iter()
            .filter(|n| n.index != index && peers.is_none_or(|p| p.contains(&n.index)))
            .map(|n| n.p2p)
            .collect();
        let (info, child) = self.start_node(index, &bootnodes)?;
        self.nodes[index] = (info, Some(child));
        self.record()
    }

    /// The cluster folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until every running node has the same head, above genesis; returns its height
    /// and hash. Fails if a node exits meanwhile.
    pub fn wait_for_agreement(&mut self, limit: Duration) -> eyre::Result<(u64, String)> {
        self.wait_until(limit, "agree on a head", |heads| {
            (heads[0].0 > 0 && heads.windows(2).all(|w| w[0].1 == w[1].1)).then(|| heads[0].clone())
        })
    }

    /// Waits until every running node's head is at `height` or above; returns the lowest head.
    pub fn wait_for_height(&mut self, height: u64, limit: Duration) -> eyre::Result<u64> {
        self.wait_until(limit, &format!("reach height {height}"), |heads| {
            let lowest = heads.iter().map(|h| h.0).min().unwrap_or(0);
            (lowest >= height).then_some(lowest)
        })
    }

    /// Polls the running nodes' heads until `done` returns something.
    fn wait_until<T>(
        &mut self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&[(u64, String)]) -> Option<T>,
    ) -> eyre::Result<T> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            let urls: Vec<String> = self
                .nodes
                .iter()
                .filter(|(_, child)| child.is_some())
                .map(|(info, _)| info.http.clone())
                .collect();
            if urls.is_empty() {
                bail!("no node is running");
            }
            let heads: Vec<_> = urls.iter().map(|url| head(url)).collect::<eyre::Result<_>>()?;
            if let Some(result) = done(&heads) {
                return Ok(result);
            }
            if start.elapsed() > limit {
                bail!("the nodes did not {what} within {limit:?}: {heads:?}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// An error naming the first node that exited.
    pub fn check_alive(&mut self) -> eyre::Result<()> {
        match self.exited().first() {
            Some((info, status)) => {
                bail!("node {} exited ({status}); its log is {}", info.index, info.log.display())
            }
            None => Ok(()),
        }
    }

    /// The nodes that exited since the last call, with how.
    pub fn exited(&mut self) -> Vec<(NodeInfo, std::process::ExitStatus)> {
        let mut exited = Vec::new();
        for (info, slot) in &mut self.nodes {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                exited.push((info.clone(), status));
                *slot = None;
            }
        }
        exited
    }

    /// Interrupts every node and waits for each to stop (killing one that takes longer than
    /// 30 s); forgets the cluster's record.
    pub fn stop(mut self) -> eyre::Result<()> {
        let pids: Vec<u32> = self.nodes.iter().map(|(info, _)| info.pid).collect();
        for (_, child) in &mut self.nodes {
            // Reap our children as they exit so that their pids really disappear.
            if let Some(child) = child.take() {
                std::thread::spawn(move || {
                    let mut child = child;
                    let _ = child.wait();
                });
            }
        }
        stop_pids(&pids);
        remove_record(&self.dir)
    }

    /// Leaves the nodes running (`goodwill testnet down` stops them).
    pub fn detach(mut self) {
        for (_, child) in &mut self.nodes {
            child.take();
        }
    }

    fn record(&self) -> eyre::Result<()> {
        let record = Record { nodes: self.nodes().cloned().collect() };
        let path = self.dir.join("cluster.json");
        let text = serde_json::to_string_pretty(&record)?;
        std::fs::write(&path, text + "\n").wrap_err_with(|| format!("writing {}", path.display()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A child killed if starting it fails half-way.
struct KillOnError(Option<Child>);

impl KillOnError {
    fn get(&mut self) -> eyre::Result<&mut Child> {
        self.0.as_mut().ok_or_else(|| eyre!("no child"))
    }
}

impl Drop for KillOnError {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The nodes recorded in `dir/cluster.json` that are still running, if any is.
pub fn running(dir: &Path) -> eyre::Result<Option<Vec<NodeInfo>>> {
    let path = dir.join("cluster.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).wrap_err_with(|| format!("reading {}", path.display())),
    };
    let record: Record =
        serde_json::from_str(&text).wrap_err_with(|| format!("{} is corrupt", path.display()))?;
    let alive: Vec<NodeInfo> = record.nodes.into_iter().filter(is_our_node).collect();
    Ok((!alive.is_empty()).then_some(alive))
}

/// Stops the cluster recorded in `dir`: interrupts each node and waits until it exits. Returns
/// how many were running.
pub fn down(dir: &Path) -> eyre::Result<usize> {
    let nodes = running(dir)?.unwrap_or_default();
    stop_pids(&nodes.iter().map(|n| n.pid).collect::<Vec<_>>());
    remove_record(dir)?;
    Ok(nodes.len())
}

fn remove_record(dir: &Path) -> eyre::Result<()> {
    match std::fs::remove_file(dir.join("cluster.json")) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

/// Whether the recorded process still runs and is that node (not another process that was
/// given the same id since): its command line names the node's base path.
fn is_our_node(node: &NodeInfo) -> bool {
    let Ok(command_line) = std::fs::read(format!("/proc/{}/cmdline", node.pid)) else { return false };
    let base = node.base_path.as_os_str().as_encoded_bytes();
    command_line.split(|b| *b == 0).any(|arg| arg == base)
}

/// Interrupts each process, then waits until all are gone, killing the ones that outlast
/// [`STOP_TIMEOUT`].
fn stop_pids(pids: &[u32]) {
    let pids: Vec<Pid> = pids.iter().filter_map(|p| i32::try_from(*p).ok()).map(Pid::from_raw).collect();
    for pid in &pids {
        let _ = kill(*pid, Signal::SIGINT);
    }
    let start = Instant::now();
    let alive = |pid: &Pid| kill(*pid, None).is_ok() && !is_zombie(*pid);
    while pids.iter().any(alive) {
        if start.elapsed() > STOP_TIMEOUT {
            for pid in pids.iter().filter(|p| alive(p)) {
                let _ = kill(*pid, Signal::SIGKILL);
            }
            break;
        }
        std::thread::sleep(POLL);
    }
}

/// A process that exited but was not reaped yet (its parent is gone or busy).
fn is_zombie(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Reads `log` from byte `from` as the node writes it until a line starts with `prefix`; returns the rest of
/// that line. Fails if the node exits first or takes longer than [`START_TIMEOUT`].
fn wait_for_line(log: &Path, from: u64, prefix: &str, child: &mut Child) -> eyre::Result<String> {
    let mut reader = BufReader::new(File::open(log)?);
    reader.seek(SeekFrom::Start(from))?;
    let mut line = String::new();
    let start = Instant::now();
    loop {
        let position = reader.stream_position()?;
        line.clear();
        if reader.read_line(&mut line)? > 0 && line.ends_with('\n') {
            if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                return Ok(rest.to_string());
            }
            continue;
        }
        // A partial line: read it again once the node has written the rest.
        reader.seek(SeekFrom::Start(position))?;
        if let Some(status) = child.try_wait()? {
            bail!("the node exited ({status}) while starting:\n{}", tail(log, 20));
        }
        if start.elapsed() > START_TIMEOUT {
            bail!("the node did not start within {START_TIMEOUT:?}; see {}", log.display());
        }
        std::thread::sleep(POLL);
    }
}

/// Polls the node's status until it lists a listening address.
fn wait_for_status(http: &str, child: &mut Child) -> eyre::Result<Value> {
    let start = Instant::now();
    loop {
        if let Ok(status) = status(http)
            && status["network"]["listening"].as_array().is_some_and(|list| !list.is_empty())
        {
            return Ok(status);
        }
        if let Some(exit) = child.try_wait()? {
            bail!("the node at {http} exited ({exit}) while starting");
        }
        if start.elapsed() > START_TIMEOUT {
            bail!("the node at {http} did not answer within {START_TIMEOUT:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// The last `lines` lines of a file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// How long a status read may take.
const STATUS_PATIENCE: Duration = Duration::from_secs(10);

/// A node's `/api/v1/status`, as JSON.
pub fn status(http: &str) -> eyre::Result<Value> {
    Ok(ApiClient::new(http, STATUS_PATIENCE).get_ok("/api/v1/status")?)
}

/// A node's head: height and hash.
pub fn head(http: &str) -> eyre::Result<(u64, String)> {
    let head = ApiClient::new(http, STATUS_PATIENCE).status()?.head;
    Ok((head.height, head.hash.to_string()))
}
