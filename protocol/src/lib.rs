//! Goodwill's network layer: what main nodes and light peers say to each other over libp2p, and
//! the task that says it.
//!
//! - [`message`]: requests, responses, statuses and error codes as domain types, converted from
//!   protobuf in one place with typed errors.
//! - [`behaviour`]: the composed libp2p behaviour (gossipsub for blocks and transactions,
//!   request-response for status, sync and queries, identify, ping, Kademlia) and the swarm
//!   builder (TCP with noise and yamux, and QUIC; DNS names resolved when dialled).
//! - [`address_guard`]: connection limits and bans per IP address, so that fresh identities
//!   from one host share its budget and its ban.
//! - [`reach`]: how far an address reaches (loopback, private network, internet), so that a
//!   peer's addresses enter the DHT only where they can be dialled.
//! - [`codec`]: length-prefixed protobuf framing with limits checked before reading.
//! - [`handshake`]: the status check every connection starts with.
//! - [`join`]: asking a bootnode for its chain spec, to join a network from a bootnode and a
//!   genesis hash.
//! - [`peers`]: the peer manager (offences with one price each, strikes, bans, rate limits).
//! - [`sync`]: the range-sync planner, pure, with the clock passed in.
//! - [`service`]: `(NetworkHandle, NetworkEvents, EventLoop)`. The loop owns the swarm and never
//!   waits for the chain: requests, sync batches and gossip leave as events and lanes, answers
//!   and verdicts come back as commands. Main nodes and light peers run the same service in
//!   their two roles.
//!
//! Topic names bind the chain id and genesis hash, so nodes of different chains never mix:
//!
//! ```
//! use goodwill_protocol::behaviour::GossipKind;
//! let topic = GossipKind::Blocks.topic("goodwill-dev", &goodwill_ledger::Hash([0xab; 32]));
//! assert_eq!(topic.to_string(), "/goodwill/goodwill-dev/abababababababab/blocks/4");
//! ```

pub mod address_guard;
pub mod behaviour;
pub mod codec;
mod event_loop;
pub mod handshake;
pub mod join;
pub mod message;
pub mod peers;
pub mod rate_limit;
pub mod reach;
pub mod service;
pub mod sync;

pub use behaviour::{Behaviour, BehaviourEvent, GossipKind, PROTOCOL_VERSION, build_swarm};
pub use handshake::ChainIdentity;
pub use message::{ErrorCode, Request, Response, Role, Status};
pub use service::{
    AncestorOutcome, BatchEnd, EventLoop, Gossip, GossipEffect, GossipLane, GossipMessage, GossipTicket,
    Head, InboundId, NetworkConfig, NetworkError, NetworkEvent, NetworkEvents, NetworkHandle, QueryError,
    Verdict,
};
