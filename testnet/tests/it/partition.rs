//! Two halves of a four-node cluster forge apart, then reconnect: every node ends on one chain,
//! a transaction both halves committed is in it once, and a transaction only the losing half
//! committed goes back to a pool and is committed on the winning chain.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{Node, build_spec, same_head, wait_until};
use goodwill_ledger::{Amount, Keypair, Payload, Transaction, TransactionBody};

fn transfer(node: &Node, from: &Keypair, to: &Keypair, amount: u64) -> Transaction {
    TransactionBody {
        chain_id: "goodwill-local".into(),
        sender: from.address(),
        nonce: node.nonce(&from.address()),
        fee: Amount(1_000),
        payload: Payload::Transfer { to: to.address(), amount: Amount(amount) },
    }
    .sign(from, &node.genesis())
}

/// The block holding `tx` on `node`'s chain; `None` while pending or unknown (404).
fn committed(node: &Node, tx: &Transaction) -> Option<String> {
    let mut response = ureq::get(&format!("{}/api/v1/transactions/{}", node.url, tx.id()))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    let status: serde_json::Value = response.body_mut().read_json().unwrap();
    (status["status"] == "committed").then(|| status["block"]["hash"].as_str().unwrap().to_string())
}

#[test]
fn halves_that_forged_apart_end_on_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    // One-second slots: the halves must not drift further apart than a reorganisation may go
    // (64 blocks), even on a loaded machine.
    build_spec(&chain, 4, 1_000);
    let spec = chain.join("spec.json");
    let key = |i: usize| chain.join(format!("forger-{i}.key"));
    let base = |i: usize| dir.path().join(format!("n{i}"));

    // Together first: a common history.
    let a0 = Node::main(&spec, &base(0), Some(&key(0)), &[]);
    let a1 = Node::main(&spec, &base(1), Some(&key(1)), &[&a0.p2p]);
    let mut b0 = Node::main(&spec, &base(2), Some(&key(2)), &[&a0.p2p]);
    let mut b1 = Node::main(&spec, &base(3), Some(&key(3)), &[&a0.p2p]);
    assert!(
        wait_until(Duration::from_secs(60), || same_head(&[&a0, &a1, &b0, &b1]).is_some_and(|h| h >= 4)),
        "the cluster did not agree"
    );

    // Partition: half B restarts knowing only itself (new ports; nobody in half A can reach it).
    b0.interrupt();
    b1.interrupt();
    let b0 = Node::main(&spec, &base(2), Some(&key(2)), &[]);
    let mut b1 = Node::main(&spec, &base(3), Some(&key(3)), &[&b0.p2p]);
    let split = a0.head().0;
    let diverged = wait_until(Duration::from_secs(60), || {
        let (a, b) = (same_head(&[&a0, &a1]), same_head(&[&b0, &b1]));
        a.is_some_and(|h| h >= split + 4) && b.is_some_and(|h| h >= split + 4) && a0.head().1 != b0.head().1
    });
    assert!(diverged, "the halves did not forge apart: {} / {}", a0.status(), b0.status());

    // One transaction reaches both halves; each half also gets one of its own.
    let (dev, dev2) = (Keypair::insecure_dev("dev"), Keypair::insecure_dev("dev2"));
    let forger0 = Keypair::read_file(&key(0)).unwrap();
    let both = transfer(&a0, &dev, &dev2, 11);
    assert_eq!(both, transfer(&b0, &dev, &dev2, 11), "the halves agree on dev's nonce");
    let only_a = transfer(&a0, &forger0, &dev, 13);
    let only_b = transfer(&b0, &dev2, &dev, 17);
    for (node, tx) in [(&a0, &both), (&b0, &both), (&a0, &only_a), (&b0, &only_b)] {
        assert_eq!(node.submit(tx).0, 200);
    }
    let each_committed = wait_until(Duration::from_secs(30), || {
        [(&a0, &both), (&b0, &both), (&a0, &only_a), (&b0, &only_b)]
            .iter()
            .all(|(node, tx)| committed(node, tx).is_some())
    });
    assert!(each_committed, "the halves did not commit their transactions");
    assert_ne!(committed(&a0, &both), committed(&b0, &both), "one transaction, two blocks on two branches");

    // Heal: one node of half B restarts knowing both halves.
    b1.interrupt();
    let b1 = Node::main(&spec, &base(3), Some(&key(3)), &[&b0.p2p, &a0.p2p]);
    let highest = [&a0, &a1, &b0].iter().map(|n| n.head().0).max().unwrap();
    let nodes = [&a0, &a1, &b0, &b1];
    let one_chain = wait_until(Duration::from_secs(90), || same_head(&nodes).is_some_and(|h| h > highest));
    assert!(one_chain, "the halves did not join: {:?}", nodes.iter().map(|n| n.head()).collect::<Vec<_>>());

    // Every transaction is committed exactly once on the one chain: each sender's nonce moved
    // by one, and every node places each transaction in the same block.
    let settled = wait_until(Duration::from_secs(30), || {
        [&both, &only_a, &only_b].iter().all(|tx| {
            let places: Vec<_> = nodes.iter().map(|n| committed(n, tx)).collect();
            places[0].is_some() && places.windows(2).all(|w| w[0] == w[1])
        })
    });
    let places: Vec<Vec<Option<String>>> =
        [&both, &only_a, &only_b].iter().map(|tx| nodes.iter().map(|n| committed(n, tx)).collect()).collect();
    assert!(settled, "a transaction of the losing half was lost: {places:?}");
    for (sender, tx) in [(&dev, &both), (&forger0, &only_a), (&dev2, &only_b)] {
        assert_eq!(a0.nonce(&sender.address()), tx.body().nonce + 1, "committed once");
    }
}
