//! The hostile-peer scenario: three honest nodes carry a steady load while one process,
//! `goodwill testnet attack` holding a quarter of the forging weight, attacks them throughout:
//! blocks from the future, junk blocks signed with its ticket, blocks signed by keys with no
//! ticket, honest blocks with a signature swapped, malformed gossip, oversized requests and
//! bodies, replacement spam, and a fresh identity every two seconds that claims a head a million
//! blocks ahead and then answers nothing. What must hold: every transfer is committed with p99
//! latency within 3 slots (a block from the future, had it been imported, would have stopped
//! honest forging for a thousand slots), and the honest nodes end on one chain.

#![allow(clippy::unwrap_used)]

use crate::common;

#[test]
fn a_hostile_peer_cannot_slow_or_split_a_loaded_cluster() {
    let report = common::bench_load_report(&[
        "--hostile",
        "--nodes",
        "3",
        "--tps",
        "40",
        "--duration",
        "30",
        "--slot-ms",
        "1000",
    ]);
    let (trial, attack) = (&report["trials"][0], &report["attack"]);

    // The attack happened, every part of it, and the nodes refused what they must refuse.
    let count = |field: &str| attack[field].as_u64().unwrap_or_else(|| panic!("no {field}: {attack}"));
    for field in [
        "future_blocks",
        "junk_blocks",
        "unentitled_blocks",
        "swapped_signature_copies",
        "malformed_gossip",
        "oversized_requests",
        "liars",
        "replacements",
        "oversized_bodies",
    ] {
        assert!(count(field) > 0, "the attacker sent no {field}: {attack}");
    }
    assert!(count("identities") > count("liars"), "{attack}");
    assert!(count("liars_asked_for_blocks") > 0, "no node believed a far claim enough to ask: {attack}");
    assert!(count("oversized_refused") > 0, "{attack}");
    assert!(count("oversized_bodies_refused") > 0, "{attack}");
    // A replacement may also meet a nonce its original already used; most meet the pending one.
    assert!(count("replacements_refused") * 2 > count("replacements"), "{attack}");

    // The honest nodes carried the load as if alone, and agree.
    let submitted = trial["submitted"].as_u64().unwrap();
    assert_eq!(trial["committed"].as_u64().unwrap(), submitted, "{trial}");
    let p99 = trial["latency_slots_p99"].as_f64().unwrap();
    assert!(p99 <= 3.0, "p99 latency {p99} slots under attack: {trial}");
    let head = &report["one_chain"];
    assert!(head["height"].as_u64().is_some_and(|h| h > 30), "the honest nodes did not agree: {report}");
}
