//! Two real swarms on 127.0.0.1: they connect, answer a status request, and deliver a gossiped
//! message that the receiver validates before it counts.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use goodwill_ledger::Hash;
use goodwill_proto::v1 as wire;
use goodwill_protocol::behaviour::GossipKind;
use goodwill_protocol::{BehaviourEvent, build_swarm};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, gossipsub, identity, request_response};

fn status(height: u64) -> wire::Status {
    wire::Status {
        chain_id: "goodwill-test".into(),
        genesis_hash: vec![7; 32].into(),
        head_height: height,
        head_hash: vec![height as u8; 32].into(),
        role: wire::Role::Main as i32,
        protocol_version: 1,
    }
}

#[tokio::test]
async fn two_swarms_exchange_status_and_gossip() {
    let mut a = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    let mut b = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    let topic = GossipKind::Blocks.topic("goodwill-test", &Hash([7; 32]));
    a.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    b.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    a.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();

    let run = async {
        // Wait for A's address, then B dials it.
        let address: Multiaddr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
                break address;
            }
        };
        b.dial(address).unwrap();
        let a_id = *a.local_peer_id();
        let mut asked = false;
        let mut published = false;
        let mut got_status = None;
        let mut got_gossip = None;
        while got_status.is_none() || got_gossip.is_none() {
            tokio::select! {
                event = a.select_next_some() => match event {
                    SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                        message: request_response::Message::Request { request, channel, .. }, ..
                    })) => {
                        assert!(matches!(request.kind, Some(wire::request::Kind::Status(_))));
                        let response = wire::Response { kind: Some(wire::response::Kind::Status(status(42))) };
                        a.behaviour_mut().requests.send_response(channel, response).unwrap();
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                        propagation_source, message_id, message,
                    })) => {
                        a.behaviour_mut().gossipsub.report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            gossipsub::MessageAcceptance::Accept,
                        );
                        got_gossip = Some(message.data);
                    }
                    _ => {}
                },
                event = b.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == a_id && !asked => {
                        let request = wire::Request { kind: Some(wire::request::Kind::Status(status(1))) };
                        b.behaviour_mut().requests.send_request(&peer_id, request);
                        asked = true;
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                        message: request_response::Message::Response { response, .. }, ..
                    })) => got_status = Some(response),
                    // Publish once A's subscription is known: gossip needs a peer on the topic.
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. }))
                        if peer_id == a_id && !published =>
                    {
                        b.behaviour_mut().gossipsub.publish(topic.clone(), b"a block".to_vec()).unwrap();
                        published = true;
                    }
                    _ => {}
                },
            }
        }
        (got_status.unwrap(), got_gossip.unwrap())
    };
    let (response, gossip) =
        tokio::time::timeout(Duration::from_secs(30), run).await.expect("the swarms talked");
    assert_eq!(response.kind, Some(wire::response::Kind::Status(status(42))));
    assert_eq!(gossip, b"a block");
}

#[tokio::test]
async fn a_third_connection_to_one_peer_is_denied() {
    use goodwill_protocol::behaviour::MAX_CONNECTIONS_PER_PEER;
    use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
    use libp2p::swarm::{DialError, ListenError};

    let mut a = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    let mut b = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    a.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let run = async {
        let address: Multiaddr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
                break address;
            }
        };
        let a_id = *a.local_peer_id();
        for _ in 0..=MAX_CONNECTIONS_PER_PEER {
            let dial = DialOpts::peer_id(a_id)
                .addresses(vec![address.clone()])
                .condition(PeerCondition::Always)
                .build();
            b.dial(dial).unwrap();
        }
        let (mut established, mut denied) = (0, 0);
        while established < MAX_CONNECTIONS_PER_PEER || denied == 0 {
            tokio::select! {
                event = a.select_next_some() => {
                    if let SwarmEvent::IncomingConnectionError { error: ListenError::Denied { .. }, .. } = event {
                        denied += 1;
                    }
                }
                event = b.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { .. } => established += 1,
                    SwarmEvent::OutgoingConnectionError { error: DialError::Denied { .. }, .. } => denied += 1,
                    _ => {}
                },
            }
        }
        (established, denied)
    };
    let (established, denied) =
        tokio::time::timeout(Duration::from_secs(30), run).await.expect("the dials resolved");
    assert_eq!(established, MAX_CONNECTIONS_PER_PEER);
    assert!(denied >= 1);
}
