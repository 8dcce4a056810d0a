//! Running `goodwill` processes in tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const GOODWILL: &str = env!("CARGO_BIN_EXE_goodwill");

/// A running node, interrupted (SIGINT) when dropped if still running.
pub struct Node {
    pub child: Child,
    pub url: String,
    /// The node's peer-to-peer address, ready to pass as --bootnode.
    pub p2p: String,
    /// Its log (stderr), as it is written.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Node {
    pub fn start(base_path: &std::path::Path) -> Node {
        Node::spawn(&["--dev".as_ref(), "--base-path".as_ref(), base_path.as_os_str()])
    }

    /// A main node of the chain `spec` in `base`, forging with `key` if given, listening on a
    /// free loopback port, joining through `bootnodes`.
    pub fn main(spec: &Path, base: &Path, key: Option<&Path>, bootnodes: &[&str]) -> Node {
        Node::main_with(spec, base, key, bootnodes, &[])
    }

    /// [`Node::main`] with more flags.
    pub fn main_with(
        spec: &Path,
        base: &Path,
        key: Option<&Path>,
        bootnodes: &[&str],
        extra: &[&str],
    ) -> Node {
        let mut args: Vec<&OsStr> = vec![
            "--chain".as_ref(),
            spec.as_os_str(),
            "--base-path".as_ref(),
            base.as_os_str(),
            "--listen".as_ref(),
            "/ip4/127.0.0.1/tcp/0".as_ref(),
        ];
        if let Some(key) = key {
            args.extend(["--forger-key".as_ref(), key.as_os_str()]);
        }
        for bootnode in bootnodes {
            args.extend(["--bootnode".as_ref(), OsStr::new(*bootnode)]);
        }
        args.extend(extra.iter().map(OsStr::new));
        Node::spawn(&args)
    }

    /// Runs `goodwill node ARGS --http 127.0.0.1:0` and waits for it to announce its HTTP and
    /// peer-to-peer addresses.
    pub fn spawn(args: &[&std::ffi::OsStr]) -> Node {
        let mut child = Command::new(GOODWILL)
            .arg("node")
            .args(args)
            .args(["--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The node prints its addresses once it listens: no guessing, no sleeping.
        let (mut url, mut p2p) = (None, None);
        while url.is_none() || p2p.is_none() {
            let line = lines.next().expect("the node announces its addresses").unwrap();
            if let Some(address) = line.strip_prefix("HTTP API listening on ") {
                url = Some(address.to_string());
            } else if let Some(address) = line.strip_prefix("P2P listening on ") {
                p2p = Some(address.to_string());
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (sink, stderr) = (log.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Node { child, url: url.unwrap(), p2p: p2p.unwrap(), log }
    }

    pub fn get(&self, path: &str) -> Value {
        get(&self.url, path)
    }

    pub fn balance(&self, address: &goodwill_ledger::Address) -> u64 {
        self.get(&format!("/api/v1/accounts/{address}"))["balance"].as_str().unwrap().parse().unwrap()
    }

    pub fn tx(&self, args: &[&str]) -> String {
        let output = Command::new(GOODWILL)
            .arg("tx")
            .args(args)
            .args(["--node", &self.url, "--wait"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "goodwill tx {args:?}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("included in block #"), "{stdout}");
        stdout
    }

    /// Sends `amount` base units from `key` to `to` with `goodwill tx transfer --wait`; returns
    /// the transaction's id.
    pub fn transfer(&self, key: &str, to: &goodwill_ledger::Address, amount: u64) -> String {
        let output =
            self.tx(&["transfer", "--key", key, "--to", &to.to_string(), "--amount", &amount.to_string()]);
        output.lines().find_map(|l| l.strip_prefix("submitted ")).unwrap().trim().to_string()
    }

    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The height of the head every one of `nodes` has, if they all have the same.
pub fn same_head(nodes: &[&Node]) -> Option<u64> {
    let heads: Vec<_> = nodes.iter().map(|n| n.head()).collect();
    heads.windows(2).all(|w| w[0].1 == w[1].1).then_some(heads[0].0)
}

/// GETs `path` from the API at `url`.
pub fn get(url: &str, path: &str) -> Value {
    ureq::get(&format!("{url}{path}")).call().unwrap().body_mut().read_json().unwrap()
}

/// Builds a local chain spec with `forgers` fresh forger keys and `slot_ms` slots into `dir`.
pub fn build_spec(dir: &Path, forgers: usize, slot_ms: u64) {
    let output = Command::new(GOODWILL)
        .args(["chain-spec", "build", "--chain", "local"])
        .args(["--forgers", &forgers.to_string(), "--slot-ms", &slot_ms.to_string(), "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

impl Node {
    /// Submits `tx` through the HTTP API; returns the answer's status code and body.
    pub fn submit(&self, tx: &goodwill_ledger::Transaction) -> (u16, Value) {
        submit(&self.url, tx)
    }

    /// An account's nonce.
    pub fn nonce(&self, address: &goodwill_ledger::Address) -> u64 {
        self.get(&format!("/api/v1/accounts/{address}"))["nonce"].as_u64().unwrap()
    }

    /// The genesis hash, which transactions are signed for.
    pub fn genesis(&self) -> goodwill_ledger::Hash {
        self.status()["genesis_hash"].as_str().unwrap().parse().unwrap()
    }

    /// The head's height and hash.
    pub fn head(&self) -> (u64, String) {
        let status = self.status();
        (status["head"]["height"].as_u64().unwrap(), status["head"]["hash"].as_str().unwrap().to_string())
    }

    /// Stops the node at once, as a crash would (SIGKILL).
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Whether a line of the node's log contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|line| line.contains(needle))
    }

    /// The node's status.
    pub fn status(&self) -> Value {
        self.get("/api/v1/status")
    }
}

/// Submits `tx` to the node at `url` through its HTTP API; returns the answer's status code and
/// body.
pub fn submit(url: &str, tx: &goodwill_ledger::Transaction) -> (u16, Value) {
    let body = serde_json::json!({ "transaction": hex::encode(tx.encode()) });
    let response = ureq::post(&format!("{url}/api/v1/transactions"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(&body)
        .unwrap();
    let code = response.status().as_u16();
    (code, response.into_body().read_json().unwrap())
}

/// Waits, up to `limit`, until `ready` holds: for state that only another process can change,
/// polling its API is the only signal there is.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ready()
}

/// A child process killed when this is dropped, so that a failing test leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `goodwill bench load ARGS --json` and returns its report; fails with its output if it
/// fails.
pub fn bench_load_report(args: &[&str]) -> Value {
    let output = Command::new(GOODWILL)
        .args(["bench", "load"])
        .args(args)
        .arg("--json")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
