//! Finality with real processes: four forgers of equal weight vote every slot, and their chain
//! becomes final a few slots behind its head, the same blocks on every node; with one down
//! (three quarters remain) finality goes on; with two down the chain grows and finality waits,
//! and it catches up when they return.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{Node, build_spec, wait_until};

/// The node's last final block: height and hash.
fn finalized(node: &Node) -> (u64, String) {
    let status = node.status();
    let finalized = &status["finalized"];
    (finalized["height"].as_u64().unwrap(), finalized["hash"].as_str().unwrap().to_string())
}

/// The hash of `node`'s block at `height`.
fn hash_at(node: &Node, height: u64) -> String {
    node.get(&format!("/api/v1/blocks/{height}"))["hash"].as_str().unwrap().to_string()
}

#[test]
fn four_forgers_finalize_their_chain_and_wait_below_two_thirds() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    build_spec(&chain, 4, 500);
    let spec = chain.join("spec.json");
    let key = |i: usize| chain.join(format!("forger-{i}.key"));
    let base = |i: usize| dir.path().join(format!("n{i}"));
    let first = Node::main(&spec, &base(0), Some(&key(0)), &[]);
    let mut nodes = vec![first];
    for i in 1..4 {
        let bootnode = nodes[0].p2p.clone();
        nodes.push(Node::main(&spec, &base(i), Some(&key(i)), &[&bootnode]));
    }

    // All four vote: blocks become final a few slots behind the head, everywhere the same.
    let close = |node: &Node| {
        let (head, _) = node.head();
        let (done, _) = finalized(node);
        done >= 8 && head - done <= 4
    };
    assert!(wait_until(Duration::from_secs(60), || nodes.iter().all(close)), "{}", nodes[0].status());
    let (height, hash) = finalized(&nodes[0]);
    for node in &nodes[1..] {
        assert_eq!(hash_at(node, height), hash, "a final block differs between nodes");
    }
    assert!(nodes[0].logged("final"));

    // One down: three quarters still vote, and finality goes on.
    nodes[3].kill();
    let (before, _) = finalized(&nodes[0]);
    assert!(
        wait_until(Duration::from_secs(30), || finalized(&nodes[0]).0 >= before + 6),
        "{}",
        nodes[0].status()
    );

    // Two down: half the weight; the chain grows, finality waits.
    nodes[2].kill();
    let stalled_at = finalized(&nodes[0]).0;
    let head_then = nodes[0].head().0;
    assert!(wait_until(Duration::from_secs(30), || nodes[0].head().0 >= head_then + 8), "the chain stopped");
    let waiting = finalized(&nodes[0]).0;
    assert!(waiting <= stalled_at + 2, "final at {waiting} with half the weight (was {stalled_at})");

    // They come back (asking a peer for the votes they missed): finality catches up.
    let bootnode = nodes[0].p2p.clone();
    nodes[2] = Node::main(&spec, &base(2), Some(&key(2)), &[&bootnode]);
    nodes[3] = Node::main(&spec, &base(3), Some(&key(3)), &[&bootnode]);
    let grown = nodes[0].head().0;
    assert!(
        wait_until(Duration::from_secs(60), || finalized(&nodes[0]).0 >= grown),
        "finality did not resume: {}",
        nodes[0].status()
    );
}
