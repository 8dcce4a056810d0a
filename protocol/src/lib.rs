//! Goodwill's network protocol: what main nodes and light peers say to each other over libp2p.
//!
//! This crate is where gossip topics, request-response protocols, message limits and the
//! validation of what arrives from peers live (issue "Main-node network over libp2p"). For now
//! it names the protocol version every later protocol id is built from.
//!
//! ```
//! assert_eq!(goodwill_protocol::PROTOCOL_VERSION, "1");
//! ```

/// Version of the wire protocol; part of every protocol id and gossip topic name.
pub const PROTOCOL_VERSION: &str = "1";
