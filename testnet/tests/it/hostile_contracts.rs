//! Hostile contracts sent to a 4-node cluster of real processes, as an attacker would: straight
//! to `POST /api/v1/transactions` (no client-side check) from a key that holds nothing, and from
//! a funded key so that the transaction is gossiped, included and run by every node's import.
//! Every node keeps forging, none stops, and an included transaction's sender paid its fee.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{GOODWILL, get, submit, wait_until};
use goodwill_ledger::{Amount, Hash, Keypair, Payload, Transaction, TransactionBody};
use goodwill_testnet::cluster;

struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = cluster::down(&self.0);
    }
}

fn deploy(
    key: &Keypair,
    (chain_id, genesis): &(String, Hash),
    nonce: u64,
    code: String,
    gas: u64,
) -> Transaction {
    TransactionBody {
        chain_id: chain_id.into(),
        sender: key.address(),
        nonce,
        fee: Amount(gas),
        payload: Payload::DeployContract { code, args: "[]".into(), gas_limit: gas },
    }
    .sign(key, genesis)
}

fn height(http: &str) -> u64 {
    get(http, "/api/v1/status")["head"]["height"].as_u64().unwrap()
}

fn up(dir: &Path) -> Vec<cluster::NodeInfo> {
    let output = Command::new(GOODWILL)
        .args(["testnet", "up", "--nodes", "4", "--slot-ms", "500", "--http-port", "0", "--p2p-port", "0"])
        .args(["--detach", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    cluster::running(dir).unwrap().expect("the cluster runs")
}

#[test]
fn hostile_deployments_neither_stop_nor_stall_a_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _down = Down(dir.clone());
    let nodes = up(&dir);
    let status = get(&nodes[0].http, "/api/v1/status");
    let chain = (
        status["chain_id"].as_str().unwrap().to_string(),
        status["genesis_hash"].as_str().unwrap().parse::<Hash>().unwrap(),
    );

    // From a key that holds nothing: the program is checked before the balance, and refused.
    let stranger = Keypair::generate().unwrap();
    let brackets = format!("x = {}1{}\n", "(".repeat(8_000), ")".repeat(8_000));
    for node in &nodes {
        let (code, answer) = submit(&node.http, &deploy(&stranger, &chain, 0, brackets.clone(), 100_000));
        assert_eq!(code, 400, "{answer}");
        assert!(answer.to_string().contains("nests deeper than"), "{answer}");
    }

    // From the funded dev key: valid programs that attack memory, time and the stack when they
    // run. They are gossiped, included, and run by every node's block import.
    let dev = Keypair::insecure_dev("dev");
    let attacks = [
        "def init():\n    s = \"x\" * 2048\n    return len(s * 2147483647)\n",
        "def init():\n    return len({i: i for i in range(100000000)})\n",
        "def init():\n    s = \"x\" * 1000\n    return len(str([[s] * 1000] * 1000))\n",
        "def init():\n    l = []\n    for i in range(100000):\n        l = [l]\n    return l\n",
        "def init():\n    s = \"a\" * 1000000\n    for i in range(1000000):\n        x = s.count(\"b\")\n",
    ];
    let first_nonce =
        get(&nodes[0].http, &format!("/api/v1/accounts/{}", dev.address()))["nonce"].as_u64().unwrap();
    let mut ids = Vec::new();
    for (i, attack) in attacks.iter().enumerate() {
        let tx = deploy(&dev, &chain, first_nonce + i as u64, attack.to_string(), 5_000_000);
        let (code, answer) = submit(&nodes[i % nodes.len()].http, &tx);
        assert!(code < 300, "{answer}");
        ids.push(tx.id());
    }
    let started = height(&nodes[0].http);
    let included = wait_until(Duration::from_secs(60), || {
        ids.iter().all(|id| {
            nodes.iter().all(|n| get(&n.http, &format!("/api/v1/transactions/{id}"))["receipt"].is_object())
        })
    });
    assert!(included, "every hostile deployment is included on every node");
    for id in &ids {
        let view = get(&nodes[0].http, &format!("/api/v1/transactions/{id}"));
        let receipt = &view["receipt"];
        assert_eq!(receipt["contract"]["succeeded"], false, "{view}");
        let fee: u64 = receipt["fee_paid"].as_str().unwrap().parse().unwrap();
        assert!(fee > 0, "the attacker paid: {view}");
    }
    // Every node keeps forging past the attacks, on one chain.
    let target = height(&nodes[0].http) + 8;
    assert!(
        wait_until(Duration::from_secs(60), || nodes.iter().all(|n| height(&n.http) >= target)),
        "the cluster stalled after the attacks (started at {started})"
    );
    let at = |n: &cluster::NodeInfo| get(&n.http, &format!("/api/v1/blocks/{target}"))["hash"].clone();
    let hash = at(&nodes[0]);
    assert!(nodes.iter().all(|n| at(n) == hash), "the nodes agree on block {target}");
}
