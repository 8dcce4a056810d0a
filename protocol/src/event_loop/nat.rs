//! Being reached from behind NAT. A main node learns the addresses others see it at (identify's
//! observed addresses) and advertises one only after a peer has dialled it back there (AutoNAT
//! v2), the router maps it (UPnP, opt-in), or the operator named it (`--public-addr`). A node
//! with no such address, once a test fails or [`NAT_GRACE`] has passed, reserves a slot on up to
//! [`MAX_RESERVATIONS`] relays among the peers it dialled itself, and advertises the relayed
//! address (`/.../p2p/RELAY/p2p-circuit`); a peer that connects through it is upgraded to a
//! direct connection by hole punching (DCUtR) where the NATs allow. A main node offers to relay
//! only once it is itself reachable, within [`crate::behaviour::relay_config`]'s bounds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, autonat, dcutr, relay, upnp};

use super::EventLoop;
use crate::message::Role;

/// Relays a node behind NAT holds a reservation on: two, so that one going away leaves it
/// reachable while it finds another.
const MAX_RESERVATIONS: usize = 2;
/// Relays remembered to choose from (peers this node dialled that offer to relay).
const MAX_RELAY_CANDIDATES: usize = 8;
/// How long a node with no confirmed address waits for one before it reserves a relay even
/// though no test has failed (its peers may not test addresses, or none may be connected).
const NAT_GRACE: Duration = Duration::from_secs(30);

/// How peers reach this node, as its status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reachability {
    /// Addresses confirmed reachable: a peer dialled this node back there, the router maps it,
    /// or the operator named it.
    pub confirmed: Vec<Multiaddr>,
    /// Relayed addresses this node holds a reservation for.
    pub relayed: Vec<Multiaddr>,
    /// A peer failed to dial one of this node's observed addresses back: it is probably behind
    /// NAT or a firewall.
    pub behind_nat: bool,
    /// Connections peers opened to this node through a relay.
    pub reached_through_relay: u64,
    /// Relayed connections upgraded to direct ones by hole punching.
    pub hole_punched: u64,
}

/// The event loop's NAT state.
pub(crate) struct Nat {
    /// Peers this node dialled that offer to relay, with the address it reached them at.
    candidates: Vec<(PeerId, Multiaddr)>,
    /// Reservations held or asked for.
    reservations: HashMap<ListenerId, PeerId>,
    started: Instant,
    behind_nat: bool,
    reached_through_relay: u64,
    hole_punched: u64,
}

impl Nat {
    pub(crate) fn new() -> Nat {
        Nat {
            candidates: Vec::new(),
            reservations: HashMap::new(),
            started: Instant::now(),
            behind_nat: false,
            reached_through_relay: 0,
            hole_punched: 0,
        }
    }
}

/// Whether `address` goes through a relay.
pub(crate) fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

impl EventLoop {
    /// Addresses peers confirmed or the operator named, relayed ones aside.
    fn direct_external(&self) -> impl Iterator<Item = &Multiaddr> {
        self.swarm.external_addresses().filter(|a| !is_relayed(a))
    }

    /// A peer this node dialled at `address` offers to relay.
    pub(super) fn relay_offered(&mut self, peer: PeerId, address: Multiaddr) {
        if self.role != Role::Main || is_relayed(&address) {
            return;
        }
        let address = strip_peer(address);
        self.nat.candidates.retain(|(known, _)| *known != peer);
        if self.nat.candidates.len() >= MAX_RELAY_CANDIDATES {
            self.nat.candidates.remove(0);
        }
        self.nat.candidates.push((peer, address));
        self.reserve_relays();
    }

    /// Reserves slots on relays while this node has no direct address peers can reach and
    /// either a test failed or the grace period is over.
    pub(super) fn reserve_relays(&mut self) {
        let wanted = self.role == Role::Main
            && self.direct_external().next().is_none()
            && (self.nat.behind_nat || self.nat.started.elapsed() >= NAT_GRACE);
        if !wanted {
            return;
        }
        let candidates = self.nat.candidates.clone();
        for (relay, address) in candidates {
            if self.nat.reservations.len() >= MAX_RESERVATIONS {
                break;
            }
            if self.nat.reservations.values().any(|held| *held == relay) || !self.swarm.is_connected(&relay) {
                continue;
            }
            let circuit = address.with(Protocol::P2p(relay)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    tracing::info!(%relay, %circuit, "no reachable address: asking a relay for a reservation");
                    self.nat.reservations.insert(listener, relay);
                }
                Err(error) => tracing::debug!(%circuit, %error, "cannot reserve on a relay"),
            }
        }
        self.publish_reachability();
    }

    /// Peers can reach this node at `address` (a test passed, the router mapped it, or the
    /// operator named it): a direct address makes the relays' slots needless, and they are
    /// given back for the nodes that need them.
    pub(super) fn address_confirmed(&mut self, address: &Multiaddr) {
        if is_host_address(address) {
            self.nat.behind_nat = false;
            for (listener, relay) in std::mem::take(&mut self.nat.reservations) {
                tracing::info!(%relay, "reachable directly: giving the relay's slot back");
                self.swarm.remove_listener(listener);
            }
        }
        self.publish_reachability();
    }

    /// A listener closed: a relay reservation ended (or was refused).
    pub(super) fn listener_closed(&mut self, listener: ListenerId) {
        if let Some(relay) = self.nat.reservations.remove(&listener) {
            tracing::info!(%relay, "a relay reservation ended");
            self.nat.candidates.retain(|(known, _)| *known != relay);
            self.reserve_relays();
        }
        self.publish_reachability();
    }

    pub(super) fn publish_reachability(&self) {
        let reachability = Reachability {
            confirmed: self.direct_external().cloned().collect(),
            relayed: self.swarm.listeners().filter(|a| is_relayed(a)).cloned().collect(),
            behind_nat: self.nat.behind_nat,
            reached_through_relay: self.nat.reached_through_relay,
            hole_punched: self.nat.hole_punched,
        };
        self.reachability.send_if_modified(|current| {
            let changed = *current != reachability;
            *current = reachability;
            changed
        });
    }

    pub(super) fn autonat_event(&mut self, event: autonat::v2::client::Event) {
        match event.result {
            Ok(()) => {
                tracing::info!(address = %event.tested_addr, server = %event.server, "a peer dialled this node back: the address is reachable")
            }
            Err(error) => {
                tracing::debug!(address = %event.tested_addr, server = %event.server, %error, "an address test failed");
                // Only a host address's failure says something of this node's NAT: peers
                // also pass on relayed addresses and bare `/p2p/...` ones as candidates.
                if is_host_address(&event.tested_addr) {
                    self.nat.behind_nat = true;
                    self.reserve_relays();
                }
            }
        }
        self.publish_reachability();
    }

    pub(super) fn relay_client_event(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal: false, .. } => {
                tracing::info!(relay = %relay_peer_id, "reachable through a relay");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                tracing::info!(peer = %src_peer_id, "a peer reached this node through a relay");
                self.nat.reached_through_relay += 1;
            }
            _ => {}
        }
        self.publish_reachability();
    }

    pub(super) fn dcutr_event(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(_) => {
                tracing::info!(peer = %event.remote_peer_id, "a relayed connection became direct by hole punching");
                self.nat.hole_punched += 1;
                self.publish_reachability();
            }
            Err(error) => tracing::debug!(peer = %event.remote_peer_id, %error, "hole punching failed"),
        }
    }

    pub(super) fn upnp_event(&mut self, event: upnp::Event) {
        match event {
            upnp::Event::NewExternalAddr { external_addr, .. } => {
                tracing::info!(address = %external_addr, "the router forwards a port to this node (UPnP)");
            }
            upnp::Event::ExpiredExternalAddr { external_addr, .. } => {
                tracing::info!(address = %external_addr, "the router's port forwarding ended (UPnP)");
            }
            upnp::Event::GatewayNotFound => tracing::warn!("--upnp: no router answered UPnP"),
            upnp::Event::NonRoutableGateway => {
                tracing::warn!("--upnp: the router is itself behind NAT; its mapping would not help")
            }
        }
        self.publish_reachability();
    }
}

/// Whether `address` names a host and port directly (not through a relay).
fn is_host_address(address: &Multiaddr) -> bool {
    let host = matches!(
        address.iter().next(),
        Some(Protocol::Ip4(_) | Protocol::Ip6(_) | Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_))
    );
    host && !is_relayed(address)
}

/// `address` without its trailing `/p2p/<peer id>`.
fn strip_peer(mut address: Multiaddr) -> Multiaddr {
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_addresses_are_told_apart_and_peer_ids_stripped() {
        let peer = PeerId::random();
        let direct: Multiaddr = "/ip4/198.51.100.1/tcp/30333".parse().unwrap();
        let circuit = direct.clone().with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
        assert!(!is_relayed(&direct) && is_relayed(&circuit));
        assert!(is_host_address(&direct) && !is_host_address(&circuit));
        assert!(!is_host_address(&Multiaddr::empty().with(Protocol::P2p(peer))));
        assert_eq!(strip_peer(direct.clone().with(Protocol::P2p(peer))), direct);
        assert_eq!(strip_peer(direct.clone()), direct);
    }
}
