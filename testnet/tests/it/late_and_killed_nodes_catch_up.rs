//! Sync between real nodes on 127.0.0.1: a node started after 500 blocks catches up and then
//! follows the head; a node killed with SIGKILL rejoins with nothing lost and catches up.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{GOODWILL, Node, build_spec, same_head, wait_until};
use goodwill_ledger::Keypair;
use goodwill_testnet::prebuilt::{self, Options};

#[test]
fn a_node_started_after_500_blocks_syncs_then_follows() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        forgers: 2,
        blocks: 500,
        transfers: 4,
        slot_ms: 500,
        slots_per_epoch: None,
        finality: false,
        recipients: 0,
        pruning: goodwill_ledger::StatePruning::Archive,
    };
    let built = prebuilt::build(dir.path(), &options).unwrap();
    let first = Node::main(&built.spec, &built.base_path, Some(&built.keys[0]), &[]);
    let late = Node::main(&built.spec, &dir.path().join("late"), None, &[&first.p2p]);

    // It catches up with the 500 prebuilt blocks, and says so in its status while it does.
    let mut saw_target = false;
    let caught_up = wait_until(Duration::from_secs(90), || {
        let sync = &late.status()["sync"];
        saw_target |= sync["target"].as_u64().unwrap() >= 500;
        late.head().0 >= 500
    });
    assert!(caught_up, "the late node did not sync: {}", late.status());
    assert!(saw_target, "the status never showed the sync target");
    // Every prebuilt transfer came along: dev sent two of every four.
    let dev = Keypair::insecure_dev("dev").address();
    assert!(late.nonce(&dev) >= 1_000);

    // Then it follows new blocks by gossip: it agrees with the forger on a head past the
    // prebuilt chain, and no longer reports syncing.
    let following = wait_until(Duration::from_secs(60), || {
        let (height, hash) = late.head();
        height >= 505 && first.head().1 == hash && !late.status()["sync"]["syncing"].as_bool().unwrap()
    });
    assert!(following, "the late node does not follow: {} vs {}", late.status(), first.status());
    assert!(late.logged("synced; following the head by gossip"));
}

#[test]
fn a_killed_node_rejoins_with_nothing_lost_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    build_spec(&chain, 3, 500);
    let spec = chain.join("spec.json");
    let key = |i: usize| chain.join(format!("forger-{i}.key"));
    let base = |i: usize| dir.path().join(format!("n{i}"));
    let first = Node::main(&spec, &base(0), Some(&key(0)), &[]);
    let second = Node::main(&spec, &base(1), Some(&key(1)), &[&first.p2p]);
    let mut third = Node::main(&spec, &base(2), Some(&key(2)), &[&first.p2p]);
    let agreed = |nodes: &[&Node], height: u64| same_head(nodes).is_some_and(|h| h >= height);
    assert!(wait_until(Duration::from_secs(60), || agreed(&[&first, &second, &third], 5)), "no agreement");

    let (height, _) = third.head();
    third.kill();
    assert!(wait_until(Duration::from_secs(60), || first.head().0 >= height + 10), "the others stalled");

    let third = Node::main(&spec, &base(2), Some(&key(2)), &[&first.p2p]);
    // Nothing it had acknowledged was lost...
    assert!(third.head().0 >= height, "the restarted node lost blocks: {}", third.status());
    // ...and it catches up and agrees again.
    let target = first.head().0;
    assert!(
        wait_until(Duration::from_secs(60), || agreed(&[&first, &second, &third], target)),
        "the restarted node did not catch up: {} vs {}",
        third.status(),
        first.status()
    );
    drop(third);
    let verify =
        Command::new(GOODWILL).args(["ledger", "verify", "--base-path"]).arg(base(2)).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
