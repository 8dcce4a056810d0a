//! The network service between real swarms on 127.0.0.1: requests leave the event loop as events
//! and their answers come back as commands, so a node that is slow to answer (or never answers)
//! stalls no other peer, and peers of another chain are refused in the handshake.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use goodwill_ledger::{Address, Hash};
use goodwill_protocol::address_guard::AddressLimits;
use goodwill_protocol::message::AccountAnswer;
use goodwill_protocol::{
    ChainIdentity, Head, NetworkConfig, NetworkEvent, NetworkEvents, NetworkHandle, Request, Response, Role,
};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, identity};
use tokio::sync::watch;

/// Long enough for loopback, short enough that a hung test fails instead of waiting forever.
const PATIENCE: Duration = Duration::from_secs(30);

struct Service {
    handle: NetworkHandle,
    events: NetworkEvents,
    _head: watch::Sender<Head>,
    _stop: watch::Sender<bool>,
}

fn chain() -> ChainIdentity {
    ChainIdentity { chain_id: "goodwill-test".into(), genesis: Hash([7; 32]) }
}

fn start(role: Role, chain: ChainIdentity, bootnodes: Vec<Multiaddr>) -> Service {
    start_with(role, chain, bootnodes, AddressLimits::default())
}

fn start_with(role: Role, chain: ChainIdentity, bootnodes: Vec<Multiaddr>, limits: AddressLimits) -> Service {
    let (head_out, head) = watch::channel(Head { height: 3, hash: Hash([3; 32]), finalized: 0 });
    let config = NetworkConfig {
        role,
        chain,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        external: Vec::new(),
        bootnodes,
        mdns: false,
        address_limits: limits,
        chain_spec: None,
    };
    let (handle, events, event_loop) =
        goodwill_protocol::service::new(identity::Keypair::generate_ed25519(), config, head).unwrap();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(event_loop.run(stopped));
    Service { handle, events, _head: head_out, _stop: stop }
}

/// The next event that `pick` wants, within [`PATIENCE`].
async fn next<T>(events: &mut NetworkEvents, mut pick: impl FnMut(NetworkEvent) -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(found) = pick(events.next().await.expect("the service stopped")) {
                return found;
            }
        }
    })
    .await
    .expect("the event did not come")
}

async fn address(service: &mut Service) -> Multiaddr {
    next(&mut service.events, |event| match event {
        NetworkEvent::Listening(address) => Some(address),
        _ => None,
    })
    .await
}

async fn joined(service: &mut Service) -> (PeerId, Role) {
    next(&mut service.events, |event| match event {
        NetworkEvent::PeerJoined { peer, status } => Some((peer, status.role)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_request_leaves_as_an_event_and_its_answer_returns_as_a_command() {
    let mut main = start(Role::Main, chain(), Vec::new());
    let bootnode = address(&mut main).await;
    let mut light = start(Role::Light, chain(), vec![bootnode]);
    let (main_id, role) = joined(&mut light).await;
    assert_eq!(role, Role::Main);
    assert_eq!(joined(&mut main).await.1, Role::Light);

    let who = Address::from_slice(&[9; 32]).unwrap();
    let query = tokio::spawn({
        let handle = light.handle.clone();
        async move { handle.query(main_id, Request::Account(who)).await }
    });
    let id = next(&mut main.events, |event| match event {
        NetworkEvent::Request { id, request: Request::Account(asked), .. } if asked == who => Some(id),
        _ => None,
    })
    .await;
    let answer = AccountAnswer {
        balance: 5,
        nonce: 2,
        height: 3,
        head_hash: Hash([3; 32]),
        state: None,
        proof: vec![1, 2, 3],
    };
    main.handle.respond(id, Response::Account(answer.clone())).await;
    match tokio::time::timeout(PATIENCE, query).await.unwrap().unwrap().unwrap() {
        Response::Account(got) => assert_eq!(got, answer),
        other => panic!("expected an account, got {other:?}"),
    }
    // A light peer serves nothing: its answer is an error, and no event reached its node.
    let refused = main
        .handle
        .query(
            light.handle.peer_id(),
            Request::Lottery { parent: Hash([1; 32]), forger: goodwill_ledger::Address([2; 32]), slot: 3 },
        )
        .await
        .unwrap();
    assert!(matches!(refused, Response::Error(goodwill_protocol::ErrorCode::Unavailable, _)), "{refused:?}");
}

#[tokio::test]
async fn a_node_that_never_answers_stalls_no_other_peer() {
    let mut main = start(Role::Main, chain(), Vec::new());
    let bootnode = address(&mut main).await;
    let mut first = start(Role::Light, chain(), vec![bootnode.clone()]);
    let (main_id, _) = joined(&mut first).await;
    // The first peer asks; the node takes the request and never answers it.
    let pending = tokio::spawn({
        let handle = first.handle.clone();
        async move { handle.query(main_id, Request::Transaction(Hash([4; 32]))).await }
    });
    next(&mut main.events, |event| matches!(event, NetworkEvent::Request { .. }).then_some(())).await;
    // Meanwhile another peer joins and is served: the loop did not wait for the answer.
    let mut second = start(Role::Light, chain(), vec![bootnode]);
    assert_eq!(joined(&mut second).await.0, main_id);
    assert!(!pending.is_finished(), "the unanswered request is still waiting, as it should");
    assert_eq!(main.handle.peers(), 2);
}

#[tokio::test]
async fn a_peer_of_another_genesis_is_refused_in_the_handshake() {
    let mut main = start(Role::Main, chain(), Vec::new());
    let bootnode = address(&mut main).await;
    let other = ChainIdentity { genesis: Hash([8; 32]), ..chain() };
    let mut stranger = start(Role::Main, other, vec![bootnode.clone()]);
    // Each side refuses the other, naming the genesis.
    let refused = |event: NetworkEvent| match event {
        NetworkEvent::PeerRefused { reason, .. } => Some(reason),
        NetworkEvent::PeerJoined { peer, .. } => panic!("{peer} of another genesis was accepted"),
        _ => None,
    };
    let theirs = next(&mut stranger.events, refused).await;
    assert!(matches!(theirs, goodwill_protocol::handshake::Mismatch::Genesis { .. }), "{theirs}");
    let ours = next(&mut main.events, refused).await;
    assert!(ours.to_string().contains(&Hash([8; 32]).to_string()), "{ours}");
    // A friend is still welcome, and is the only verified peer.
    let mut friend = start(Role::Light, chain(), vec![bootnode]);
    joined(&mut friend).await;
    let verified: Vec<_> = main.handle.peer_list().await.into_iter().filter(|p| p.verified).collect();
    assert_eq!(verified.len(), 1, "{verified:?}");
    assert_eq!(verified[0].peer_id, friend.handle.peer_id());
    assert_eq!(stranger.handle.peers(), 0, "the stranger accepted the main node");
}

/// Whether a fresh identity dialling `address` from 127.0.0.1 gets a connection.
async fn fresh_identity_connects(address: &Multiaddr) -> bool {
    let mut swarm = goodwill_protocol::build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    swarm.dial(address.clone()).unwrap();
    tokio::time::timeout(PATIENCE, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => return true,
                SwarmEvent::OutgoingConnectionError { .. } | SwarmEvent::ConnectionClosed { .. } => {
                    return false;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the dial neither connected nor failed")
}

/// The attack: identities cost nothing, so one host opens connection after connection under
/// fresh keys until it holds every slot, and comes back under a fresh key once banned. Limits
/// and bans follow the address (loopback is limited here as a remote host would be).
#[tokio::test]
async fn fresh_identities_from_one_address_get_its_share_and_its_ban() {
    let limits = AddressLimits { inbound_per_address: 2, limit_loopback: true };
    let mut main = start_with(Role::Main, chain(), Vec::new(), limits);
    let bootnode = address(&mut main).await;
    let mut first = start(Role::Light, chain(), vec![bootnode.clone()]);
    let _second = start(Role::Light, chain(), vec![bootnode.clone()]);
    joined(&mut main).await;
    joined(&mut main).await;
    joined(&mut first).await;
    assert!(!fresh_identity_connects(&bootnode).await, "a third identity from the address is refused");

    // The first peer is banned: its connection closes, which frees a slot of the address, but
    // the address is banned with it.
    let main_id = main.handle.peer_id();
    main.handle.ban(first.handle.peer_id(), "test".into());
    next(&mut first.events, |event| match event {
        NetworkEvent::PeerLeft { peer } if peer == main_id => Some(()),
        _ => None,
    })
    .await;
    assert!(!fresh_identity_connects(&bootnode).await, "a fresh key from a banned address is refused");
}

#[tokio::test]
async fn a_bootnode_named_by_dns_is_resolved_and_joined() {
    let mut main = start(Role::Main, chain(), Vec::new());
    let listening = address(&mut main).await;
    // The same node, named instead of numbered: /dns4/localhost/tcp/PORT/p2p/ID. The resolver
    // answers `localhost` itself (RFC 6761), so no query leaves the host.
    let named: Multiaddr = listening
        .iter()
        .map(|part| match part {
            libp2p::multiaddr::Protocol::Ip4(_) => libp2p::multiaddr::Protocol::Dns4("localhost".into()),
            other => other,
        })
        .collect();
    assert!(named.to_string().starts_with("/dns4/localhost/tcp/"), "{named}");
    let mut light = start(Role::Light, chain(), vec![named]);
    let (joined_id, role) = joined(&mut light).await;
    assert_eq!((joined_id, role), (main.handle.peer_id(), Role::Main));
}
