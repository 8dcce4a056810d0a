//! A new main node started with `--sync state` (a real process) against a running cluster whose
//! nodes prune old states: it proves the last final block from genesis by proofs of finality,
//! downloads that block's state with proofs, syncs only the blocks after it, and then is a main
//! node like the others: it agrees on the head, serves and commits transactions, finalizes,
//! forges, and starts again from its own database.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;
use std::time::Duration;

use goodwill_ledger::Keypair;
use serde_json::Value;

use common::{GOODWILL, Node, same_head, wait_until};

fn finalized(status: &Value) -> u64 {
    status["finalized"]["height"].as_u64().unwrap_or(0)
}

#[test]
fn a_new_node_starts_from_the_last_final_blocks_state_and_goes_on_as_a_main_node() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    let output = Command::new(GOODWILL)
        .args(["chain-spec", "build", "--chain", "local", "--forgers", "3", "--slot-ms", "400"])
        .args(["--slots-per-epoch", "4", "--out"])
        .arg(&chain)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let spec = chain.join("spec.json");
    let node = |i: usize, extra: &[&str], bootnodes: &[&str]| {
        let (base, key) = (dir.path().join(format!("n{i}")), chain.join(format!("forger-{i}.key")));
        Node::main_with(&spec, &base, Some(&key), bootnodes, extra)
    };
    // Two of three forgers (two thirds of the weight: blocks become final); both keep only the
    // states finality needs, so the new node's base is a state few nodes would still hold.
    let n0 = node(0, &["--state-keep", "0"], &[]);
    let n1 = node(1, &["--state-keep", "0"], &[&n0.p2p]);
    let early = Keypair::generate().unwrap().address();
    n0.transfer("dev", &early, 4_000);
    let ready = wait_until(Duration::from_secs(90), || finalized(&n0.status()) >= 30);
    assert!(ready, "{}", n0.status());
    assert!(n0.status()["states_from"].as_u64().unwrap() > 0, "n0 prunes: {}", n0.status());
    let final_then = finalized(&n0.status());

    let mut n2 = node(2, &["--sync", "state"], &[&n0.p2p]);
    let status = n2.status();
    let base = status["blocks_from"].as_u64().unwrap();
    assert!(base >= final_then, "it started from the last final block: {status}");
    assert_eq!(status["states_from"].as_u64(), Some(base));
    assert!(n2.logged("state sync: state restored"));
    // No block below its base is there; the accounts are.
    let (code, _) = get_status(&n2.url, "/api/v1/blocks/1");
    assert_eq!(code, 404);
    assert_eq!(n2.balance(&early), 4_000);

    // It catches up and agrees, commits what is sent to it, finalizes and forges.
    let agreed =
        wait_until(Duration::from_secs(60), || same_head(&[&n0, &n1, &n2]).is_some_and(|h| h > base));
    assert!(agreed, "{} / {}", n0.status(), n2.status());
    let late = Keypair::generate().unwrap().address();
    n2.transfer("dev", &late, 7_000);
    assert!(wait_until(Duration::from_secs(30), || n0.balance(&late) == 7_000));
    // Votes heard before their blocks arrived count once sync brings the blocks.
    let finalizes = wait_until(Duration::from_secs(60), || finalized(&n2.status()) > base + 8);
    let (f0, f1) = (finalized(&n0.status()), finalized(&n1.status()));
    assert!(finalizes, "final at n0 {f0}, n1 {f1}; n2: {}", n2.status());
    let forger = Keypair::read_file(&chain.join("forger-2.key")).unwrap().address();
    let forged = wait_until(Duration::from_secs(60), || {
        n0.get(&format!("/api/v1/forgers/{forger}"))["blocks_forged"].as_u64().unwrap_or(0) > 0
    });
    assert!(forged, "{}", n0.get(&format!("/api/v1/forgers/{forger}")));

    // It starts again from its own database, where it stopped.
    assert!(n2.interrupt().success());
    let n2 = node(2, &["--sync", "state"], &[&n0.p2p]);
    assert_eq!(n2.status()["blocks_from"].as_u64(), Some(base));
    assert!(!n2.logged("state sync: final block verified"), "it did not sync its state again");
    assert!(wait_until(Duration::from_secs(60), || same_head(&[&n0, &n2]).is_some()));
}

/// GETs `path`; returns the status code and body.
fn get_status(url: &str, path: &str) -> (u16, Value) {
    let mut response =
        ureq::get(&format!("{url}{path}")).config().http_status_as_error(false).build().call().unwrap();
    let code = response.status().as_u16();
    (code, response.body_mut().read_json().unwrap_or(Value::Null))
}
