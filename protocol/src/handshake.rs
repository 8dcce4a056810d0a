//! The handshake: the first request on every connection is a [`Status`], and a peer of another
//! chain (chain id or genesis hash) or of an incompatible protocol version is refused with the
//! reason. Main nodes and light peers run the
//! same check; what differs is only the role each states.

use goodwill_ledger::Hash;

use crate::message::Status;

/// The chain this node is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainIdentity {
    /// The chain id.
    pub chain_id: String,
    /// The genesis block's hash.
    pub genesis: Hash,
}

/// Why a peer is not a peer of this chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// Another chain id.
    #[error("it is on chain {theirs:?}, this node on {ours:?}")]
    ChainId {
        /// The peer's.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// The same id, another genesis: a chain restarted, or a fork from block zero.
    #[error("its genesis is {theirs}, this node's {ours}")]
    Genesis {
        /// The peer's.
        theirs: Hash,
        /// Ours.
        ours: Hash,
    },
    /// The same chain, another protocol version: its messages would not mean what ours mean.
    #[error("it speaks protocol version {theirs}, this node {ours}: upgrade the older one")]
    Version {
        /// The peer's.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
}

impl ChainIdentity {
    /// Whether `status` is from a peer of this chain.
    pub fn check(&self, status: &Status) -> Result<(), Mismatch> {
        if status.chain_id != self.chain_id {
            return Err(Mismatch::ChainId { theirs: status.chain_id.clone(), ours: self.chain_id.clone() });
        }
        if status.genesis != self.genesis {
            return Err(Mismatch::Genesis { theirs: status.genesis, ours: self.genesis });
        }
        if status.protocol_version != crate::PROTOCOL_VERSION {
            return Err(Mismatch::Version { theirs: status.protocol_version, ours: crate::PROTOCOL_VERSION });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Role;

    #[test]
    fn a_peer_of_another_chain_or_genesis_is_refused_with_the_reason() {
        let ours = ChainIdentity { chain_id: "goodwill-dev".into(), genesis: Hash([1; 32]) };
        let status = Status {
            chain_id: "goodwill-dev".into(),
            genesis: Hash([1; 32]),
            head_height: 3,
            head_hash: Hash([2; 32]),
            role: Role::Main,
            protocol_version: crate::PROTOCOL_VERSION,
        };
        assert_eq!(ours.check(&status), Ok(()));
        let other_chain = Status { chain_id: "elsewhere".into(), ..status.clone() };
        assert!(ours.check(&other_chain).unwrap_err().to_string().contains("elsewhere"));
        let other_genesis = Status { genesis: Hash([9; 32]), ..status.clone() };
        assert!(matches!(ours.check(&other_genesis), Err(Mismatch::Genesis { .. })));
        let older = Status { protocol_version: crate::PROTOCOL_VERSION - 1, ..status };
        assert!(ours.check(&older).unwrap_err().to_string().contains("protocol version"));
    }
}
