//! Peers that claim a chain far ahead and then never answer, each under a fresh identity, against
//! a real node on 127.0.0.1 that forges alone: it goes on forging every slot (a pause of at most
//! two slots), since a bare claim makes no node behind.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use goodwill_ledger::ChainSpec;
use goodwill_proto::v1 as wire;
use goodwill_protocol::{BehaviourEvent, build_swarm};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, request_response};

use common::{Node, build_spec, wait_until};

/// Slot length of the test chain.
const SLOT_MS: u64 = 1_000;
/// How long the liars keep coming.
const ATTACK: Duration = Duration::from_secs(16);

/// One liar: a fresh identity that dials `node`, claims a head a million blocks ahead in the
/// status exchange, and holds every range request unanswered; it leaves after `stay`.
async fn lie(node: libp2p::Multiaddr, status: wire::Status, stay: Duration) -> bool {
    let mut swarm = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    swarm.dial(node).unwrap();
    let mut held = Vec::new();
    let mut asked_for_blocks = false;
    let deadline = tokio::time::sleep(stay);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. }, ..
                })) = event {
                    match request.kind {
                        Some(wire::request::Kind::Status(_)) => {
                            let answer = wire::Response { kind: Some(wire::response::Kind::Status(status.clone())) };
                            let _ = swarm.behaviour_mut().requests.send_response(channel, answer);
                        }
                        // Never answered: held until the liar leaves.
                        Some(wire::request::Kind::BlocksByRange(_)) => {
                            asked_for_blocks = true;
                            held.push(channel);
                        }
                        _ => {}
                    }
                }
            }
            _ = &mut deadline => return asked_for_blocks,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_lying_claims_never_pauses_forging() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    build_spec(&chain, 1, SLOT_MS);
    let spec_path = chain.join("spec.json");
    let spec = ChainSpec::from_json(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    let genesis = goodwill_ledger::genesis(&spec).unwrap().block.hash();
    let node = Node::main(&spec_path, &dir.path().join("n0"), Some(&chain.join("forger-0.key")), &[]);
    let url = node.url.clone();
    assert!(wait_until(Duration::from_secs(30), || common::get(&url, "/api/v1/status")["head"]["height"]
        .as_u64()
        .is_some_and(|h| h >= 2)));
    let status = wire::Status {
        chain_id: spec.chain_id.clone(),
        genesis_hash: genesis.as_bytes().to_vec().into(),
        head_height: 1_000_000,
        head_hash: vec![1; 32].into(),
        role: wire::Role::Main as i32,
        protocol_version: goodwill_protocol::PROTOCOL_VERSION,
    };
    let address: libp2p::Multiaddr = node.p2p.parse().unwrap();
    let first_slot = spec.slot_at(goodwill_node::now_ms()) + 1;

    // A new liar every two seconds, each staying four (two overlap at any time).
    let started = Instant::now();
    let mut liars = Vec::new();
    while started.elapsed() < ATTACK {
        liars.push(tokio::spawn(lie(address.clone(), status.clone(), Duration::from_secs(4))));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut asked = 0;
    for liar in liars {
        asked += usize::from(liar.await.unwrap());
    }
    let last_slot = spec.slot_at(goodwill_node::now_ms());

    let url = node.url.clone();
    let page =
        tokio::task::spawn_blocking(move || common::get(&url, "/api/v1/blocks?limit=100")).await.unwrap();
    let mut slots: Vec<u64> = page["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slot"].as_u64().unwrap())
        .filter(|slot| (first_slot..=last_slot).contains(slot))
        .collect();
    slots.sort_unstable();
    let mut longest_pause = slots.first().map_or(last_slot - first_slot, |s| s - first_slot);
    for pair in slots.windows(2) {
        longest_pause = longest_pause.max(pair[1] - pair[0] - 1);
    }
    assert!(asked > 0, "no liar was asked for blocks: the attack did not happen");
    assert!(
        longest_pause <= 2,
        "forging paused {longest_pause} slots under lying claims (slots {first_slot}..={last_slot} forged: {slots:?})"
    );
}
