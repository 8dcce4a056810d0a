//! Goodwill's network protocol: what main nodes and light peers say to each other over libp2p.
//!
//! - [`behaviour`]: the composed libp2p behaviour (gossipsub for blocks and transactions,
//!   request-response for status, sync and submission, identify, ping, Kademlia) and the swarm
//!   builder (TCP with noise and yamux, and QUIC).
//! - [`codec`]: length-prefixed protobuf framing with limits checked before reading.
//!
//! Topic names bind the chain id and genesis hash, so nodes of different chains never mix:
//!
//! ```
//! use goodwill_protocol::behaviour::GossipKind;
//! let topic = GossipKind::Blocks.topic("goodwill-dev", &goodwill_ledger::Hash([0xab; 32]));
//! assert_eq!(topic.to_string(), "/goodwill/goodwill-dev/abababababababab/blocks/2");
//! ```

pub mod behaviour;
pub mod codec;

pub use behaviour::{Behaviour, BehaviourEvent, GossipKind, PROTOCOL_VERSION, build_swarm};
