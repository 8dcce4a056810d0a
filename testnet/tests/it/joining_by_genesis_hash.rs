//! Joining with two values: a bootnode and the genesis hash. The new node asks the bootnode for
//! its chain spec before any handshake and keeps it only if it makes that genesis; a bootnode of
//! another chain (or one that lies) gets a clear refusal, and nothing is written.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use crate::common::{GOODWILL, Node, wait_until};

#[test]
fn a_node_joins_from_a_bootnode_and_a_genesis_hash_alone() {
    let dir = tempfile::tempdir().unwrap();
    let first = Node::start(&dir.path().join("first"));
    let genesis = first.genesis().to_string();
    let base = dir.path().join("joined");
    let joined = Node::spawn(&[
        "--genesis-hash".as_ref(),
        genesis.as_ref(),
        "--bootnode".as_ref(),
        first.p2p.as_ref(),
        "--base-path".as_ref(),
        base.as_os_str(),
        "--listen".as_ref(),
        "/ip4/127.0.0.1/tcp/0".as_ref(),
    ]);
    assert_eq!(joined.genesis().to_string(), genesis);
    let saved = std::fs::read_to_string(base.join("chain-spec.json")).unwrap();
    assert_eq!(goodwill_ledger::ChainSpec::from_json(&saved).unwrap().chain_id, first.status()["chain_id"]);
    // It is a node of that chain: it follows the dev node's blocks.
    let (height, _) = first.head();
    assert!(wait_until(Duration::from_secs(30), || joined.head().0 > height), "the joined node follows");
    // Restarted, it needs no bootnode to know its chain: the database keeps the spec.
    drop(joined);
    let again = Node::spawn(&[
        "--genesis-hash".as_ref(),
        genesis.as_ref(),
        "--base-path".as_ref(),
        base.as_os_str(),
        "--listen".as_ref(),
        "/ip4/127.0.0.1/tcp/0".as_ref(),
    ]);
    assert_eq!(again.genesis().to_string(), genesis);
}

#[test]
fn a_bootnode_of_another_chain_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let other = Node::start(&dir.path().join("other"));
    let wanted = goodwill_ledger::Hash([7; 32]).to_string();
    let base = dir.path().join("refused");
    let output = Command::new(GOODWILL)
        .args(["node", "--genesis-hash", &wanted, "--bootnode", &other.p2p, "--base-path"])
        .arg(&base)
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("no bootnode gave the chain spec of genesis {wanted}")), "{stderr}");
    assert!(stderr.contains("runs another chain"), "{stderr}");
    assert!(!base.exists(), "nothing was written for a chain it could not prove");
    // A light peer is refused the same way.
    let output = Command::new(GOODWILL)
        .args(["light", "--genesis-hash", &wanted, "--bootnode", &other.p2p, "--http", "127.0.0.1:0"])
        .arg("--base-path")
        .arg(dir.path().join("light"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("runs another chain"));
}
