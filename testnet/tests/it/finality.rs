//! Finality with real processes: four forgers of equal weight vote every slot, and their chain
//! becomes final a few slots behind its head, the same blocks on every node; with one down
//! (three quarters remain) finality goes on; with two down the chain grows and finality waits,
//! and it catches up when they return.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
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

/// Node `i` of a cluster in `dir` (four forgers of equal weight, 500 ms slots): forger `i`'s
/// key, its base path `dir/n{i}`, and `bootnode` if given.
fn start(dir: &Path, i: usize, bootnode: Option<&str>) -> Node {
    let chain = dir.join("chain");
    let key = chain.join(format!("forger-{i}.key"));
    Node::main(&chain.join("spec.json"), &dir.join(format!("n{i}")), Some(&key), bootnode.as_slice())
}

/// The four nodes of a fresh cluster in `dir`; node 0 is the others' bootnode.
fn four_forgers(dir: &Path) -> Vec<Node> {
    build_spec(&dir.join("chain"), 4, 500);
    let mut nodes = vec![start(dir, 0, None)];
    for i in 1..4 {
        let bootnode = nodes[0].p2p.clone();
        nodes.push(start(dir, i, Some(&bootnode)));
    }
    nodes
}

#[test]
fn four_forgers_finalize_their_chain_and_wait_below_two_thirds() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = four_forgers(dir.path());

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

    // A user waits for finality: the transfer's block is final when the command returns.
    let to = goodwill_ledger::Keypair::generate().unwrap().address();
    let out =
        nodes[1].tx(&["transfer", "--key", "dev", "--amount", "7", "--wait-final", "--to", &to.to_string()]);
    let line = out.lines().find(|l| l.starts_with("final (block #")).unwrap_or_else(|| panic!("{out}"));
    let height: u64 = line["final (block #".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(finalized(&nodes[1]).0 >= height, "{out}");

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
    nodes[2] = start(dir.path(), 2, Some(&bootnode));
    nodes[3] = start(dir.path(), 3, Some(&bootnode));
    // The proofs of what was final before they went down are still stored, and served.
    let proofs = nodes[2].get("/api/v1/finality/proofs");
    let first = &proofs["proofs"][0];
    assert!(first["height"].as_u64().is_some_and(|h| h > 0 && h <= stalled_at), "{proofs}");
    assert_eq!(hash_at(&nodes[0], first["height"].as_u64().unwrap()), first["hash"].as_str().unwrap());
    assert!(
        first["votes"].as_array().is_some_and(|votes| votes.len() >= 3),
        "two thirds of four voted: {proofs}"
    );
    let grown = nodes[0].head().0;
    assert!(
        wait_until(Duration::from_secs(60), || finalized(&nodes[0]).0 >= grown),
        "finality did not resume: {}",
        nodes[0].status()
    );
}

/// The last round `base`'s forger voted in, from its signing record.
fn last_vote_round(base: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(base.join("signing.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["last_vote_round"].as_u64()
}

/// The attack on a forger's own safety: its process dies (kill -9) at any moment of a round,
/// between claiming a vote and signing it, between signing and sending, or while writing the
/// record, and restarts at once, while its chain moves on. It must never sign a vote that
/// conflicts with one it signed before the crash: its peers, which see every vote it sends,
/// never find two of its votes that break a rule, its record never goes back, and it votes
/// again after each restart.
#[test]
fn a_forger_killed_mid_round_never_signs_a_conflicting_vote_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = four_forgers(dir.path());
    let record = dir.path().join("n3");
    assert!(wait_until(Duration::from_secs(60), || finalized(&nodes[0]).0 >= 4), "{}", nodes[0].status());

    let mut last = 0;
    for kill in 0..6u64 {
        // Wait for a vote of this run, then kill at a different point of a slot each time.
        let voted =
            wait_until(Duration::from_secs(30), || last_vote_round(&record).is_some_and(|r| r > last));
        assert!(voted, "run {kill} of the forger did not vote");
        std::thread::sleep(Duration::from_millis(kill * 83 % 500));
        nodes[3].kill();
        let round = last_vote_round(&record).unwrap();
        assert!(round > last, "the record went back from round {last} to {round}");
        last = round;
        let bootnode = nodes[0].p2p.clone();
        nodes[3] = start(dir.path(), 3, Some(&bootnode));
    }
    assert!(wait_until(Duration::from_secs(30), || last_vote_round(&record).is_some_and(|r| r > last)));
    let (before, _) = finalized(&nodes[0]);
    assert!(wait_until(Duration::from_secs(30), || finalized(&nodes[0]).0 >= before + 4), "finality stopped");
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            !node.logged("signed conflicting votes"),
            "node {i} saw conflicting votes of a restarted forger"
        );
    }
}
