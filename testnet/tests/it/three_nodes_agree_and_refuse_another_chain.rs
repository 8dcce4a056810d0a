//! Three real main nodes on 127.0.0.1 forge one chain together; a transaction sent to one is
//! committed everywhere; a node of another chain is refused at the first exchange.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{Node, build_spec, wait_until};
use goodwill_ledger::Keypair;

fn main_node(chain: &std::path::Path, base: &std::path::Path, forger: usize, bootnode: Option<&str>) -> Node {
    let key = chain.join(format!("forger-{forger}.key"));
    Node::main(&chain.join("spec.json"), base, Some(&key), bootnode.as_slice())
}

#[test]
fn three_nodes_agree_and_refuse_another_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    build_spec(&chain, 3, 2_000);
    let first = main_node(&chain, &dir.path().join("n0"), 0, None);
    let others: Vec<Node> =
        (1..3).map(|i| main_node(&chain, &dir.path().join(format!("n{i}")), i, Some(&first.p2p))).collect();
    let nodes: Vec<&Node> = std::iter::once(&first).chain(&others).collect();

    // Everyone connected to everyone else (through the bootnode's gossip mesh), and one chain grows.
    let agreed = wait_until(Duration::from_secs(60), || {
        let statuses: Vec<_> = nodes.iter().map(|n| n.status()).collect();
        statuses
            .iter()
            .all(|s| s["head"]["height"].as_u64().unwrap() >= 5 && s["peers"].as_u64().unwrap() >= 1)
            && statuses.windows(2).all(|w| w[0]["head"]["hash"] == w[1]["head"]["hash"])
    });
    assert!(agreed, "nodes did not agree: {:?}", nodes.iter().map(|n| n.status()).collect::<Vec<_>>());

    // A transfer sent to the last node is committed on the first.
    let to = Keypair::insecure_dev("dev2").address();
    let before = first.balance(&to);
    nodes[2].tx(&["transfer", "--key", "dev", "--to", &to.to_string(), "--amount", "777"]);
    assert!(
        wait_until(Duration::from_secs(30), || first.balance(&to) == before + 777),
        "the transfer did not reach node 0"
    );

    // A node of another chain (same ids, another genesis) is refused and never counts as a peer.
    let other_chain = dir.path().join("other");
    build_spec(&other_chain, 1, 2_000);
    let stranger = main_node(&other_chain, &dir.path().join("stranger"), 0, Some(&first.p2p));
    // Both sides see the mismatch at the status exchange and log why.
    let refused = wait_until(Duration::from_secs(20), || {
        first.logged("refusing a peer of another chain")
            && stranger.logged("refusing a peer of another chain")
    });
    assert!(refused, "no refusal logged");
    assert!(first.logged("its genesis is"), "the reason names the genesis");
    assert_eq!(stranger.status()["peers"], 0, "a node of another chain was accepted as a peer");
    assert_eq!(first.status()["peers"], 2);

    // The metrics count the gossip the first node accepted (its peers' blocks) and its peers.
    let metrics =
        ureq::get(&format!("{}/metrics", first.url)).call().unwrap().body_mut().read_to_string().unwrap();
    let value = |prefix: &str| -> u64 {
        let line =
            metrics.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("goodwill_gossip_messages_total{topic=\"blocks\",verdict=\"accepted\"}") >= 1, "{metrics}");
    assert_eq!(value("goodwill_peers{role=\"main\"}"), 2, "{metrics}");
    // The transfer reached it as a gossiped batch that decoded and validated (accepted, or
    // ignored if the block carrying it came first), and nothing was rejected.
    let count = |verdict: &str| {
        let prefix =
            format!("goodwill_gossip_messages_total{{topic=\"transactions\",verdict=\"{verdict}\"}}");
        metrics
            .lines()
            .find(|l| l.starts_with(&prefix))
            .map_or(0, |l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    assert!(count("accepted") + count("ignored") >= 1, "{metrics}");
    assert_eq!(count("rejected"), 0, "{metrics}");
    drop(stranger);
    drop(others);
}
