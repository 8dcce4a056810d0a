//! The libp2p behaviour of a Goodwill node, and the swarm that runs it.

use std::time::Duration;

use goodwill_ledger::Hash;
use libp2p::{
    StreamProtocol, Swarm, gossipsub, identify, identity, kad, noise, ping, request_response, tcp, yamux,
};

use crate::codec::ProstCodec;

/// Version of every protocol below; part of their ids and of the gossip topic names.
pub const PROTOCOL_VERSION: u32 = 4;
/// The request-response protocol (status, blocks by range and hash, transaction submission).
pub const REQUEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/goodwill/req/1");
/// Kademlia's protocol id: Goodwill nodes keep their own DHT, apart from other libp2p networks.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/goodwill/kad/1");
/// Largest gossip message: a full block at the largest size any chain allows, plus framing.
pub const MAX_GOSSIP_BYTES: usize = 5 * 1024 * 1024;
/// Connections kept with one peer.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Connections kept in total.
pub const MAX_CONNECTIONS: u32 = 128;
/// Connections others opened, kept at once: the rest of [`MAX_CONNECTIONS`] is kept for the
/// peers this node chooses, so that strangers dialling in cannot take every slot.
pub const MAX_INBOUND_CONNECTIONS: u32 = 96;
/// Connections this node opened, kept at once.
pub const MAX_OUTBOUND_CONNECTIONS: u32 = MAX_CONNECTIONS - MAX_INBOUND_CONNECTIONS;
/// Connections being negotiated, each way.
pub const MAX_PENDING_CONNECTIONS: u32 = 32;
/// How long a request may take before it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What travels by gossip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GossipKind {
    /// `Block` messages.
    Blocks,
    /// `SignedTransaction` messages.
    Transactions,
    /// `VoteBatch` messages: finality votes.
    Votes,
}

impl GossipKind {
    /// Every kind.
    pub const ALL: [GossipKind; 3] = [GossipKind::Blocks, GossipKind::Transactions, GossipKind::Votes];

    fn name(self) -> &'static str {
        match self {
            GossipKind::Blocks => "blocks",
            GossipKind::Transactions => "transactions",
            GossipKind::Votes => "votes",
        }
    }

    /// The topic of this kind on the chain `chain_id` with genesis `genesis`:
    /// `/goodwill/<chain id>/<first 8 bytes of the genesis hash, hex>/<kind>/<version>`. Nodes of
    /// another chain, or of a chain restarted with another genesis, never share a mesh.
    pub fn topic(self, chain_id: &str, genesis: &Hash) -> gossipsub::IdentTopic {
        let short = &genesis.to_string()[..16];
        gossipsub::IdentTopic::new(format!("/goodwill/{chain_id}/{short}/{}/{PROTOCOL_VERSION}", self.name()))
    }
}

mod composed {
    // The derive generates `BehaviourEvent`, whose variants mirror the fields below and cannot
    // carry their own docs.
    #![allow(missing_docs)]

    use libp2p::swarm::NetworkBehaviour;
    use libp2p::swarm::behaviour::toggle::Toggle;
    use libp2p::{
        allow_block_list, connection_limits, gossipsub, identify, kad, mdns, ping, request_response,
    };

    use crate::address_guard::AddressGuard;
    use crate::codec::ProstCodec;

    /// Everything a node speaks.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Peers banned for misbehaving: their connections are refused.
        pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
        /// Bounds on connections, per peer and in total.
        pub limits: connection_limits::Behaviour,
        /// Bounds and bans per IP address.
        pub addresses: AddressGuard,
        /// Local-network discovery; off unless the operator asks (it multicasts on the real
        /// interface, never on loopback alone).
        pub mdns: Toggle<mdns::tokio::Behaviour>,
        /// Blocks and transactions.
        pub gossipsub: gossipsub::Behaviour,
        /// Status, sync and submissions.
        pub requests: request_response::Behaviour<ProstCodec>,
        /// Tells peers our addresses and protocols, and learns theirs.
        pub identify: identify::Behaviour,
        /// Keeps connections alive and measures round trips.
        pub ping: ping::Behaviour,
        /// Finds peers beyond the bootnodes.
        pub kad: kad::Behaviour<kad::store::MemoryStore>,
    }
}

pub use composed::{Behaviour, BehaviourEvent};

/// Gossipsub parameters. The mesh degree `D = 6` (between 4 and 12) is libp2p's default and
/// works for large networks; `mesh_outbound_min = 2` and `D_lo = 4` keep a 3-to-5-node cluster
/// meshed with everyone (a node with fewer peers than `D_lo` simply grafts all it has). Messages
/// are identified by their BLAKE3 hash, so the same block from two peers is one message, and each
/// is validated by the node (Accept, Ignore or Reject) before it is forwarded. Messages are
/// anonymous: every block and transaction carries its own signature, and a peer is judged by what
/// it relays, so a per-message signature of the publishing peer would only cost one more
/// signature and one more verification per message and hop.
pub fn gossipsub_config() -> Result<gossipsub::Config, gossipsub::ConfigBuilderError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message| gossipsub::MessageId::from(blake3::hash(&message.data).as_bytes().to_vec()))
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .mesh_n(6)
        .mesh_n_low(4)
        .mesh_n_high(12)
        .mesh_outbound_min(2)
        .heartbeat_interval(Duration::from_millis(700))
        .duplicate_cache_time(Duration::from_secs(120))
        .build()
}

/// How often each connection is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// Gossipsub peer scoring for the `topics` of one chain.
///
/// - Invalid messages (P4) weigh heavily: one invalid block or transaction (weight -100, the
///   counter squared) takes a peer below the graylist threshold (-80), after which gossipsub
///   ignores everything it sends until the penalty decays (×0.5 per second, in a few seconds for
///   one message; repeated offences compound).
/// - Mesh delivery rates (P3, P3b) are off: a 3-node cluster sees one block per slot, and
///   under-delivery would punish honest peers in quiet networks.
/// - First deliveries (P2) and time in mesh (P1) earn a little credit.
/// - The application score carries this node's own judgement (invalid sync answers, request
///   floods), weight 1.
/// - Loopback addresses are exempt from the IP-colocation penalty: a local cluster runs every
///   node on 127.0.0.1.
pub fn peer_score(
    topics: &[gossipsub::TopicHash],
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: topics.iter().map(|t| (t.clone(), topic.clone())).collect(),
        app_specific_weight: 1.0,
        ip_colocation_factor_whitelist: [
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ]
        .into(),
        decay_interval: Duration::from_secs(1),
        ..Default::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

impl Behaviour {
    /// The behaviour for `key`; `mdns` turns on local-network discovery.
    pub fn new(key: &identity::Keypair, mdns: bool) -> Result<Behaviour, String> {
        let peer_id = key.public().to_peer_id();
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Anonymous,
            gossipsub_config().map_err(|e| e.to_string())?,
        )?;
        let requests = request_response::Behaviour::with_codec(
            ProstCodec,
            [(REQUEST_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
        );
        let identify = identify::Behaviour::new(identify::Config::new(
            format!("goodwill/{PROTOCOL_VERSION}"),
            key.public(),
        ));
        // A link that stops answering is noticed within fifteen seconds (and closed).
        let ping = ping::Behaviour::new(
            ping::Config::new().with_interval(PING_INTERVAL).with_timeout(PING_INTERVAL * 2),
        );
        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(KAD_PROTOCOL),
        );
        kad.set_mode(Some(kad::Mode::Server));
        let limits = libp2p::connection_limits::Behaviour::new(
            libp2p::connection_limits::ConnectionLimits::default()
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                .with_max_established(Some(MAX_CONNECTIONS))
                .with_max_established_incoming(Some(MAX_INBOUND_CONNECTIONS))
                .with_max_established_outgoing(Some(MAX_OUTBOUND_CONNECTIONS))
                .with_max_pending_incoming(Some(MAX_PENDING_CONNECTIONS))
                .with_max_pending_outgoing(Some(MAX_PENDING_CONNECTIONS)),
        );
        let mdns = match mdns {
            true => Some(
                libp2p::mdns::tokio::Behaviour::new(libp2p::mdns::Config::default(), peer_id)
                    .map_err(|e| format!("starting mDNS: {e}"))?,
            ),
            false => None,
        };
        Ok(Behaviour {
            blocked: Default::default(),
            limits,
            addresses: Default::default(),
            mdns: mdns.into(),
            gossipsub,
            requests,
            identify,
            ping,
            kad,
        })
    }
}

/// Builds a swarm for `key` over TCP and QUIC, with noise and yamux on TCP, dialling `/dns4`,
/// `/dns6` and `/dns` addresses through the system's resolver (`/etc/resolv.conf`, and
/// `/etc/hosts`); `mdns` turns on local-network discovery (keep it off in tests and CI).
pub fn build_swarm(key: identity::Keypair, mdns: bool) -> Result<Swarm<Behaviour>, String> {
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| e.to_string())?
        .with_quic()
        .with_dns()
        .map_err(|e| format!("reading the system's DNS configuration: {e}"))?
        .with_behaviour(|key| Behaviour::new(key, mdns).map_err(|e| e.into()))
        .map_err(|e| e.to_string())?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}
