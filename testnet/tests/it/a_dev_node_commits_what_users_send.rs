//! The real `goodwill` binary as a user runs it: a dev node forges, transfers and a ticket
//! purchase submitted with `goodwill tx` land in blocks, the association receives the ticket
//! money, Ctrl-C stops the node cleanly, and the stored chain verifies.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::{GOODWILL, Node};

use goodwill_ledger::{Amount, COIN, ChainParams, Keypair};

#[test]
fn a_dev_node_forges_transfers_and_tickets_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path());
    let (dev, dev2) = (Keypair::insecure_dev("dev").address(), Keypair::insecure_dev("dev2").address());
    let association = Keypair::insecure_dev("dev-association").address();
    let fee = ChainParams::default().min_fee.0;
    let dev2_before = node.balance(&dev2);

    node.tx(&["transfer", "--key", "dev", "--to", &dev2.to_string(), "--amount", "5000"]);
    node.tx(&["transfer", "--key", "dev", "--to", &dev2.to_string(), "--amount", "7000"]);
    assert_eq!(node.balance(&dev2), dev2_before + 12_000);
    assert_eq!(node.get(&format!("/api/v1/accounts/{dev}"))["nonce"], 2);

    let price = 25 * COIN;
    node.tx(&[
        "buy-ticket",
        "--key",
        "dev2",
        "--association",
        &association.to_string(),
        "--price",
        &price.to_string(),
        "--epochs",
        "3",
    ]);
    assert_eq!(node.balance(&dev2), dev2_before + 12_000 - price - fee);
    assert_eq!(node.balance(&association), price, "the ticket money is the association's");
    let record = node.get(&format!("/api/v1/associations/{association}"));
    assert_eq!(record["received"], Amount(price).to_string());
    let forger = node.get(&format!("/api/v1/forgers/{dev2}"));
    assert_eq!(forger["tickets"][0]["weight"], Amount(price).to_string());

    // Refusals are explained, and change nothing.
    let refused = Command::new(GOODWILL)
        .args([
            "tx",
            "transfer",
            "--key",
            "dev2",
            "--to",
            "gw1notanaddress",
            "--amount",
            "1",
            "--node",
            &node.url,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a valid address"));

    let height = node.get("/api/v1/status")["head"]["height"].as_u64().unwrap();
    assert!(height >= 3);
    let status = node.interrupt();
    assert!(status.success(), "the node exited with {status}");

    // Nothing was lost: the stored chain re-validates from genesis up to at least that height.
    let verify =
        Command::new(GOODWILL).args(["ledger", "verify", "--base-path"]).arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    let verified: u64 = text.split("head #").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(verified >= height, "{text}");

    // Started again on the same base path, the development chain continues where it stopped.
    let mut again = Node::start(dir.path());
    assert!(again.get("/api/v1/status")["head"]["height"].as_u64().unwrap() >= verified);
    assert_eq!(again.balance(&dev2), dev2_before + 12_000 - price - fee, "the kept chain has its history");
    assert!(again.interrupt().success());
}

#[test]
fn a_node_runs_a_built_chain_spec_with_its_forger_key() {
    let dir = tempfile::tempdir().unwrap();
    let spec_dir = dir.path().join("chain");
    let built = Command::new(GOODWILL)
        .args(["chain-spec", "build", "--chain", "local", "--forgers", "1", "--out"])
        .arg(&spec_dir)
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let spec =
        goodwill_ledger::ChainSpec::from_json(&std::fs::read_to_string(spec_dir.join("spec.json")).unwrap())
            .unwrap();
    let key = Keypair::read_file(&spec_dir.join("forger-0.key")).unwrap();
    assert_eq!(spec.forgers[0].address, key.address(), "the spec names the written key");
    assert_eq!(spec.forgers[0].commitment, key.reveal_commitment(0));

    let (spec_file, base, key_file) =
        (spec_dir.join("spec.json"), dir.path().join("n0"), spec_dir.join("forger-0.key"));
    let mut node = Node::spawn(&[
        "--chain".as_ref(),
        spec_file.as_os_str(),
        "--base-path".as_ref(),
        base.as_os_str(),
        "--forger-key".as_ref(),
        key_file.as_os_str(),
    ]);

    // The only forger wins every slot: a transfer with --wait proves blocks are being forged.
    let to = Keypair::insecure_dev("dev2").address().to_string();
    node.tx(&["transfer", "--key", "dev", "--to", &to, "--amount", "1"]);
    let status = node.get("/api/v1/status");
    assert_eq!(status["chain_id"], "goodwill-local");
    assert_eq!(status["head"]["forger"], key.address().to_string());
    assert!(node.interrupt().success());
}
