//! Running `goodwill` processes in tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
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
        ureq::get(&format!("{}{path}", self.url)).call().unwrap().body_mut().read_json().unwrap()
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

impl Node {
    /// Whether a line of the node's log contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|line| line.contains(needle))
    }

    /// The node's status.
    pub fn status(&self) -> Value {
        self.get("/api/v1/status")
    }
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
