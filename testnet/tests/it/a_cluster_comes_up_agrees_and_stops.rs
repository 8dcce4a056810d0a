//! `goodwill testnet up|down`: a local cluster of separate processes, in the foreground (stopped
//! by Ctrl-C) and detached (stopped by `down`), continuing its chain across restarts.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{GOODWILL, get, wait_until};
use goodwill_ledger::Keypair;
use goodwill_testnet::cluster;

fn up(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(GOODWILL);
    command
        .args(["testnet", "up", "--nodes", "3", "--slot-ms", "500", "--http-port", "0", "--p2p-port", "0"])
        .arg("--dir")
        .arg(dir)
        .args(extra);
    command
}

/// Stops whatever cluster runs in the folder when dropped, so that a failing test leaves no
/// detached nodes behind.
struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = cluster::down(&self.0);
    }
}

#[test]
fn a_cluster_comes_up_agrees_commits_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _down = Down(dir.clone());

    // Foreground: it prints the nodes once they agree, and Ctrl-C stops them all.
    let mut launcher =
        common::KillOnDrop(up(&dir, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let launcher = &mut launcher.0;
    let mut stdout = BufReader::new(launcher.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in stdout.by_ref() {
        let line = line.unwrap();
        let ready = line.contains("Ctrl-C stops every node");
        printed.push(line);
        if ready {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("all nodes agree on block #"), "{text}");
    assert!(text.contains("goodwill tx transfer --key dev"), "{text}");
    let nodes = cluster::running(&dir).unwrap().expect("cluster.json lists the running nodes");
    assert_eq!(nodes.len(), 3);
    for node in &nodes {
        assert!(text.contains(&node.http) && text.contains(&node.p2p), "{text}");
    }

    // A transfer submitted to one node is committed in the chain all of them follow.
    let to = Keypair::generate().unwrap().address();
    let output = Command::new(GOODWILL)
        .args(["tx", "transfer", "--key", "dev", "--amount", "1234", "--wait", "--to", &to.to_string()])
        .args(["--node", &nodes[1].http])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let balance =
        |http: &str| get(http, &format!("/api/v1/accounts/{to}"))["balance"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(30), || nodes.iter().all(|n| balance(&n.http) == "1234")));

    let status = Command::new("kill").args(["-INT", &launcher.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = launcher.wait().unwrap();
    let rest: Vec<String> = stdout.map_while(Result::ok).collect();
    assert!(exit.success(), "{exit} {rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("stopped")), "{rest:?}");
    assert!(cluster::running(&dir).unwrap().is_none(), "no node outlives the launcher");
    for node in &nodes {
        let log = std::fs::read_to_string(&node.log).unwrap();
        assert!(log.contains("stopped cleanly"), "node {} did not stop cleanly:\n{log}", node.index);
    }

    // Detached, on the same folder: the chain continues where it stopped, with the transfer.
    let output = up(&dir, &["--detach"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let nodes = cluster::running(&dir).unwrap().expect("a detached cluster keeps running");
    assert_eq!(balance(&nodes[2].http), "1234", "the restarted chain holds the committed transfer");
    // Another node joins it by name: `--chain local` is the cluster's spec.
    let mut joiner_guard = common::KillOnDrop(
        Command::new(GOODWILL)
            .args(["node", "--chain", "local", "--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .arg("--base-path")
            .arg(dir.join("joiner"))
            .args(["--bootnode", &nodes[0].p2p])
            .env("GOODWILL_TESTNET_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let joiner = &mut joiner_guard.0;
    let mut joiner_lines = BufReader::new(joiner.stdout.take().unwrap()).lines();
    let joiner_url = joiner_lines
        .find_map(|line| line.unwrap().strip_prefix("HTTP API listening on ").map(str::to_string))
        .unwrap();
    std::thread::spawn(move || joiner_lines.for_each(drop));
    let joined = wait_until(Duration::from_secs(30), || {
        get(&joiner_url, "/api/v1/status")["head"]["height"].as_u64()
            >= get(&nodes[0].http, "/api/v1/status")["head"]["height"].as_u64()
    });
    assert!(joined, "a node started with --chain local did not follow the cluster");
    assert_eq!(balance(&joiner_url), "1234");
    joiner.kill().unwrap();
    joiner.wait().unwrap();

    let again = up(&dir, &["--detach"]).output().unwrap();
    assert!(!again.status.success(), "a second cluster in the same folder is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"), "{again:?}");

    let output = Command::new(GOODWILL).args(["testnet", "down", "--dir"]).arg(&dir).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("stopped 3 nodes"), "{output:?}");
    assert!(cluster::running(&dir).unwrap().is_none());
    for node in &nodes {
        let log = std::fs::read_to_string(&node.log).unwrap();
        assert!(log.contains("stopped cleanly"), "node {} did not stop cleanly:\n{log}", node.index);
    }

    // --fresh starts a new chain: the transfer is gone.
    let output = up(&dir, &["--detach", "--fresh"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let nodes = cluster::running(&dir).unwrap().unwrap();
    assert_eq!(balance(&nodes[0].http), "0");
    assert!(cluster::down(&dir).unwrap() == 3);
}
