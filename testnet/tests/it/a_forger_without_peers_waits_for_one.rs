//! A forger whose link is down would fill every slot at the open rank, on a fork no one else
//! sees and that it could never leave without finality. With other forgers on the roster, a
//! forger without peers does not forge; it starts when a peer connects.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{Node, build_spec, same_head, wait_until};

/// The node's count of slots it skipped for want of a peer.
fn skipped(node: &Node) -> u64 {
    let text =
        ureq::get(&format!("{}/metrics", node.url)).call().unwrap().body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("goodwill_forger_slots_skipped_without_peers_total "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[test]
fn a_forger_without_peers_does_not_forge_alone() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    build_spec(&chain, 2, 500);
    let spec = chain.join("spec.json");
    let key = |i: usize| chain.join(format!("forger-{i}.key"));
    let first = Node::main(&spec, &dir.path().join("n0"), Some(&key(0)), &[]);

    // Slots it may sign pass (the open rank alone is every slot), and it signs none of them.
    assert!(wait_until(Duration::from_secs(30), || skipped(&first) >= 3), "{}", first.status());
    assert_eq!(first.head().0, 0, "it forged alone");
    assert!(first.logged("not forging until a peer connects"));

    // A peer connects: both forge, on one chain.
    let second = Node::main(&spec, &dir.path().join("n1"), Some(&key(1)), &[&first.p2p]);
    let agreed =
        wait_until(Duration::from_secs(60), || same_head(&[&first, &second]).is_some_and(|h| h >= 3));
    assert!(agreed, "{} / {}", first.status(), second.status());
    assert!(first.logged("a peer connected: forging again"));
}
