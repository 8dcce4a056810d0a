//! Joining a network from a bootnode and a genesis hash: the bootnode is asked for its chain
//! spec before any handshake ([`Request::ChainSpec`]). What it answers is not trusted here:
//! the caller checks that the spec's genesis block has the hash it was given.

use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, Message};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, identity};

use crate::BehaviourEvent;
use crate::message::{Request, Response};

/// Why a bootnode gave no chain spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The address names no peer.
    #[error("{0} names no peer: end it with /p2p/<peer id>, as nodes print it")]
    NoPeerId(Multiaddr),
    /// The swarm could not be built or could not dial.
    #[error("{0}")]
    Network(String),
    /// The bootnode could not be reached, or dropped the request.
    #[error("no answer from {address}: {reason}")]
    NoAnswer {
        /// The bootnode.
        address: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The bootnode answered something other than a chain spec.
    #[error("{address} gave no chain spec: {reason}")]
    Refused {
        /// The bootnode.
        address: Multiaddr,
        /// What it said instead.
        reason: String,
    },
}

/// Asks the node at `bootnode` (an address ending in `/p2p/<peer id>`) for the chain spec it
/// runs, within `patience`; the JSON as it came, at most
/// [`crate::message::MAX_CHAIN_SPEC_BYTES`], unchecked.
pub async fn fetch_chain_spec(bootnode: &Multiaddr, patience: Duration) -> Result<String, JoinError> {
    let Some(Protocol::P2p(peer)) = bootnode.iter().last() else {
        return Err(JoinError::NoPeerId(bootnode.clone()));
    };
    let no_answer = |reason: String| JoinError::NoAnswer { address: bootnode.clone(), reason };
    let refused = |reason: String| JoinError::Refused { address: bootnode.clone(), reason };
    let mut swarm =
        crate::build_swarm(identity::Keypair::generate_ed25519(), false).map_err(JoinError::Network)?;
    swarm.dial(bootnode.clone()).map_err(|e| no_answer(e.to_string()))?;
    let exchange = async {
        let mut asked = None;
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer && asked.is_none() => {
                    let request = Request::ChainSpec.to_proto();
                    asked = Some(swarm.behaviour_mut().requests.send_request(&peer, request));
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(failed), error, .. }
                    if failed == peer =>
                {
                    return Err(no_answer(error.to_string()));
                }
                SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                    message: Message::Response { request_id, response },
                    ..
                })) if Some(request_id) == asked => {
                    return match Response::from_proto(response) {
                        Ok(Response::ChainSpec(json)) => Ok(json),
                        Ok(Response::Error(code, message)) => Err(refused(format!("{code:?}: {message}"))),
                        Ok(_) => Err(refused("it answered another request".into())),
                        Err(error) => Err(refused(error.to_string())),
                    };
                }
                SwarmEvent::Behaviour(BehaviourEvent::Requests(
                    request_response::Event::OutboundFailure { request_id, error, .. },
                )) if Some(request_id) == asked => return Err(no_answer(error.to_string())),
                _ => {}
            }
        }
    };
    match tokio::time::timeout(patience, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(no_answer(format!("nothing within {} s", patience.as_secs()))),
    }
}
