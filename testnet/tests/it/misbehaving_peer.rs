//! A misbehaving peer, a real libp2p swarm in this test, against two real nodes on 127.0.0.1:
//! garbage gossip and a request over the protocol's limits earn it strikes and a negative gossip
//! score; a sync answer with an invalid block gets it banned and disconnected. The honest nodes
//! keep forging throughout.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use futures::StreamExt;
use goodwill_ledger::lottery::rank_offset_ms;
use goodwill_ledger::{Block, Chain, ChainSpec, Keypair, MemoryStore};
use goodwill_proto::v1 as wire;
use goodwill_protocol::behaviour::GossipKind;
use goodwill_protocol::{BehaviourEvent, build_swarm};
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, identity, request_response};
use serde_json::Value;

use common::{Node, build_spec, wait_until};

/// A block at `height` on `chain` (a replica of the node's), signed by `key`, with an extra
/// transaction its header does not commit to.
fn invalid_block(chain: &Chain<MemoryStore>, key: &Keypair) -> Block {
    let spec = chain.spec();
    let after = chain.head().header().slot + 1;
    let (slot, rank) = (after..after + 1_000)
        .find_map(|slot| chain.rank_of(&key.address(), slot).unwrap().map(|rank| (slot, rank)))
        .unwrap();
    let time = spec.slot_start_ms(slot).unwrap()
        + rank_offset_ms(spec.params.slot_duration_ms, spec.params.fallback_ranks, rank);
    let mut block = chain.builder(key, slot, time).unwrap().seal(key).unwrap().block;
    let stowaway = goodwill_ledger::TransactionBody {
        chain_id: spec.chain_id.clone(),
        sender: key.address(),
        nonce: 0,
        fee: spec.params.min_fee,
        payload: goodwill_ledger::Payload::Transfer { to: key.address(), amount: goodwill_ledger::Amount(1) },
    }
    .sign(key, &chain.genesis_hash());
    block.transactions.push(stowaway);
    block
}

fn peer_entry(url: &str, peer: &libp2p::PeerId) -> Option<Value> {
    let peers = common::get(url, "/api/v1/peers");
    peers["peers"].as_array().unwrap().iter().find(|p| p["peer_id"] == peer.to_string()).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_peer_is_penalised_then_banned_while_honest_nodes_forge() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    build_spec(&chain_dir, 2, 500);
    let spec_path = chain_dir.join("spec.json");
    let key0_path = chain_dir.join("forger-0.key");
    let n0 = Node::main(&spec_path, &dir.path().join("n0"), Some(&key0_path), &[]);
    let n1 =
        Node::main(&spec_path, &dir.path().join("n1"), Some(&chain_dir.join("forger-1.key")), &[&n0.p2p]);
    let spec = ChainSpec::from_json(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    let key0 = Keypair::read_file(&key0_path).unwrap();
    let mut replica = Chain::open(MemoryStore::new(), spec.clone()).unwrap();
    let genesis = replica.genesis_hash();

    let mut swarm = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    let me = *swarm.local_peer_id();
    let blocks_topic = GossipKind::Blocks.topic(&spec.chain_id, &genesis);
    swarm.behaviour_mut().gossipsub.subscribe(&blocks_topic).unwrap();
    swarm.dial(n0.p2p.parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let node_id: libp2p::PeerId = n0.p2p.rsplit('/').next().unwrap().parse().unwrap();
    let status = |height: u64| wire::Status {
        chain_id: spec.chain_id.clone(),
        genesis_hash: genesis.as_bytes().to_vec().into(),
        head_height: height,
        head_hash: vec![0; 32].into(),
        role: wire::Role::Main as i32,
        protocol_version: goodwill_protocol::PROTOCOL_VERSION,
    };
    let ask_for = |kind| wire::Request { kind: Some(kind) };
    // 65 hashes; the protocol's limit is 64.
    let over_limit = || {
        let hashes = (0..65u8).map(|i| vec![i; 32].into()).collect();
        wire::request::Kind::BlocksByHash(wire::BlocksByHash { hashes })
    };
    let url = n0.url.clone();
    let strikes = move || peer_entry(&url, &me);

    let run = async {
        let (mut published, mut over_limit_refused, mut claimed) = (false, false, false);
        // The node's range requests to us, waiting for our copy of its chain.
        let mut ranges: Vec<(u64, request_response::ResponseChannel<wire::Response>)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(300));
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                        message: request_response::Message::Request { request, channel, .. }, ..
                    })) => match request.kind {
                        Some(wire::request::Kind::Status(_)) => {
                            let height = if claimed { 1_000 } else { 0 };
                            let answer = wire::Response { kind: Some(wire::response::Kind::Status(status(height))) };
                            swarm.behaviour_mut().requests.send_response(channel, answer).unwrap();
                        }
                        Some(wire::request::Kind::BlocksByRange(range)) => {
                            // Fetch the node's chain up to the requested start, then answer.
                            let ask = wire::request::Kind::BlocksByRange(wire::BlocksByRange {
                                start_height: 1,
                                count: 64,
                            });
                            if ranges.is_empty() {
                                swarm.behaviour_mut().requests.send_request(&node_id, ask_for(ask));
                            }
                            ranges.push((range.start_height, channel));
                        }
                        _ => {}
                    },
                    SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                        message: request_response::Message::Response { response, .. }, ..
                    })) => match response.kind {
                        Some(wire::response::Kind::Error(error)) if error.code == "bad_request" => {
                            over_limit_refused = true;
                        }
                        // Asked before the node finished the status exchange with us: ask again.
                        Some(wire::response::Kind::Error(error)) if error.code == "unverified" => {
                            swarm.behaviour_mut().requests.send_request(&node_id, ask_for(over_limit()));
                        }
                        Some(wire::response::Kind::Blocks(blocks)) if !ranges.is_empty() => {
                            ranges.sort_by_key(|(start, _)| *start);
                            let start = ranges[0].0;
                            for block in blocks.blocks {
                                let block = Block::from_wire(block).unwrap();
                                if block.header().height < start {
                                    replica.import(block).unwrap();
                                }
                            }
                            assert_eq!(replica.head().header().height + 1, start);
                            // The first range gets an invalid block; the others nothing.
                            let mut blocks = vec![invalid_block(&replica, &key0).to_wire()];
                            for (_, channel) in ranges.drain(..) {
                                let answer = wire::Response {
                                    kind: Some(wire::response::Kind::Blocks(wire::Blocks { blocks: std::mem::take(&mut blocks) })),
                                };
                                swarm.behaviour_mut().requests.send_response(channel, answer).unwrap();
                            }
                        }
                        _ => {}
                    },
                    // Once the node is on the topic: garbage gossip, and a request over the
                    // protocol's limits (65 hashes; the limit is 64).
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }))
                        if peer_id == node_id && topic == blocks_topic.hash() && !published =>
                    {
                        swarm.behaviour_mut().gossipsub.publish(blocks_topic.clone(), vec![0xff; 200]).unwrap();
                        swarm.behaviour_mut().requests.send_request(&node_id, ask_for(over_limit()));
                        published = true;
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } if peer_id == node_id => {
                        return (published, over_limit_refused, claimed);
                    }
                    _ => {}
                },
                _ = tick.tick(), if published && over_limit_refused && !claimed => {
                    let strikes = strikes.clone();
                    let entry = tokio::task::spawn_blocking(strikes).await.unwrap();
                    let penalised = entry.is_some_and(|e| {
                        e["strikes"].as_u64().unwrap() >= 35 && e["gossip_score"].as_f64().is_some_and(|s| s < 0.0)
                    });
                    if penalised {
                        // Now claim a long chain: the node syncs from us and gets an invalid block.
                        claimed = true;
                        let ask = wire::request::Kind::Status(status(1_000));
                        swarm.behaviour_mut().requests.send_request(&node_id, ask_for(ask));
                    }
                }
            }
        }
    };
    let height_before = n0.head().0;
    let Ok((published, over_limit_refused, claimed)) =
        tokio::time::timeout(Duration::from_secs(60), run).await
    else {
        let log: Vec<String> = n0
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("sync"))
            .cloned()
            .collect();
        panic!("the node did not deal with the peer: {}", log.join("\n"));
    };
    assert!(published && over_limit_refused && claimed);

    let (n0, n1) = tokio::task::spawn_blocking(move || {
        let banned = peer_entry(&n0.url, &me).unwrap();
        assert!(banned["strikes"].as_u64().unwrap() >= 100, "{banned}");
        assert!(banned["banned_for_seconds"].as_u64().unwrap() > 0, "{banned}");
        assert!(n0.logged("served an invalid block"));
        // The honest nodes kept forging, together.
        let forging = wait_until(Duration::from_secs(30), || {
            let (a, b) = (n0.head(), n1.head());
            a.0 >= height_before + 5 && a.1 == b.1
        });
        assert!(forging, "the honest nodes stalled: {} / {}", n0.status(), n1.status());
        (n0, n1)
    })
    .await
    .unwrap();
    drop((n0, n1));
}
