//! A node that receives a gossiped block whose parent it lacks fetches the parent by hash from the
//! peer that relayed it, and connects the branch. The peer here is a libp2p swarm in the test that
//! refuses every range request, so sync alone cannot get the parent: only the ancestor fetch can.
//! (Under overload, four nodes once split into two branches of equal height for good because each
//! had missed one block of the other and sync only follows higher peers.)

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use futures::StreamExt;
use goodwill_ledger::testkit::slot_time;
use goodwill_ledger::{Block, Chain, ChainSpec, Hash, Keypair, MemoryStore};
use goodwill_proto::v1 as wire;
use goodwill_protocol::{BehaviourEvent, GossipKind, build_swarm};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, request_response};

use common::{Node, build_spec, wait_until};

/// Forges `count` blocks on `spec`'s genesis with its forger keys in `dir`, in the first slots
/// one of them may sign at rank 0.
fn forge_branch(spec: &ChainSpec, dir: &std::path::Path, count: usize) -> Vec<Block> {
    let keys: Vec<Keypair> =
        (0..2).map(|i| Keypair::read_file(&dir.join(format!("forger-{i}.key"))).unwrap()).collect();
    let mut chain = Chain::open(MemoryStore::new(), spec.clone()).unwrap();
    let mut blocks = Vec::new();
    let mut slot = 1;
    while blocks.len() < count {
        if let Some(key) = keys.iter().find(|k| chain.rank_of(&k.address(), slot).unwrap() == Some(0)) {
            let builder = chain.builder(key, slot, slot_time(spec, slot, 0)).unwrap();
            let applied = builder.seal(key).unwrap();
            blocks.push(applied.block.clone());
            chain.commit(applied).unwrap();
        }
        slot += 1;
    }
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossiped_block_without_its_parent_makes_the_node_fetch_the_parent_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    build_spec(&chain_dir, 2, 500);
    let spec_path = chain_dir.join("spec.json");
    let spec = ChainSpec::from_json(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    let genesis = goodwill_ledger::genesis(&spec).unwrap().block.hash();
    let branch = forge_branch(&spec, &chain_dir, 2);
    let (first, second) = (branch[0].clone(), branch[1].clone());
    // Gossip only once both blocks' slots have begun, so that neither is early.
    let ready_at = slot_time(&spec, second.header().slot + 1, 0);
    // A main node that does not forge: its chain changes only by what it is sent.
    let node = Node::main(&spec_path, &dir.path().join("n0"), None, &[]);

    let mut peer = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    let topic = GossipKind::Blocks.topic(&spec.chain_id, &genesis);
    peer.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    peer.dial(node.p2p.parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let status = wire::Status {
        chain_id: spec.chain_id.clone(),
        genesis_hash: genesis.as_bytes().to_vec().into(),
        head_height: 0,
        head_hash: genesis.as_bytes().to_vec().into(),
        role: wire::Role::Main as i32,
        protocol_version: goodwill_protocol::PROTOCOL_VERSION,
    };
    let wanted = first.hash();
    let peer_task = tokio::spawn(async move {
        let mut published = false;
        loop {
            let event = tokio::time::timeout(Duration::from_millis(200), peer.select_next_some()).await;
            let subscribed =
                peer.behaviour().gossipsub.all_peers().any(|(_, topics)| topics.contains(&&topic.hash()));
            if !published && subscribed && now_ms() >= ready_at {
                // Only the second block: its parent stays with this peer until asked for.
                if peer.behaviour_mut().gossipsub.publish(topic.clone(), second.encode()).is_ok() {
                    published = true;
                }
            }
            let Ok(event) = event else { continue };
            let SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                message: request_response::Message::Request { request, channel, .. },
                ..
            })) = event
            else {
                continue;
            };
            use wire::response::Kind as Res;
            let answer = match request.kind {
                Some(wire::request::Kind::Status(_)) => Res::Status(status.clone()),
                Some(wire::request::Kind::BlocksByHash(by_hash)) => {
                    let hashes: Vec<Hash> =
                        by_hash.hashes.iter().filter_map(|h| Hash::from_slice(h)).collect();
                    let blocks = if hashes.contains(&wanted) { vec![first.to_wire()] } else { Vec::new() };
                    Res::Blocks(wire::Blocks { blocks })
                }
                // No ranges: sync cannot fetch the parent.
                _ => Res::Error(wire::Error { code: "unavailable".into(), message: String::new() }),
            };
            let _ =
                peer.behaviour_mut().requests.send_response(channel, wire::Response { kind: Some(answer) });
        }
    });

    // The node ends on the second block: it fetched the first by hash and connected both.
    let expected = branch[1].hash().to_string();
    let connected = wait_until(Duration::from_secs(30), || node.head().1 == expected);
    peer_task.abort();
    assert!(connected, "the node stayed at {:?}; its log: {:?}", node.head(), node.log.lock().unwrap());
    assert_eq!(node.head().0, 2);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}
