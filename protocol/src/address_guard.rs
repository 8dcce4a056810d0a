//! Limits by IP address. Identities cost nothing, so a peer's PeerId alone cannot carry a limit
//! or a ban: the guard counts inbound connections per address (an IPv6 peer is its /64) and
//! refuses those over [`AddressLimits::inbound_per_address`], and a ban follows the address of
//! the banned peer, so a fresh key from the same host is refused too. Request rates stay per peer
//! ([`crate::rate_limit`]); with the connections per address bounded, so are the requests.
//!
//! Loopback is exempt unless told otherwise: a local cluster runs every node on 127.0.0.1.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::task::{Context, Poll};
use std::time::Instant;

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr, multiaddr::Protocol};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm, dummy,
};

/// Inbound connections one address may hold, unless configured.
pub const DEFAULT_INBOUND_PER_ADDRESS: u32 = 4;

/// How much one address may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLimits {
    /// Inbound connections from one address (an IPv6 /64).
    pub inbound_per_address: u32,
    /// Whether loopback addresses are limited and banned too.
    pub limit_loopback: bool,
}

impl Default for AddressLimits {
    fn default() -> Self {
        AddressLimits { inbound_per_address: DEFAULT_INBOUND_PER_ADDRESS, limit_loopback: false }
    }
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The address is banned.
    #[error("{0} is banned")]
    Banned(IpAddr),
    /// The address holds as many inbound connections as one may.
    #[error("{address} holds {held} inbound connections already")]
    Crowded {
        /// The address.
        address: IpAddr,
        /// Its connections.
        held: u32,
    },
}

/// The behaviour: it refuses connections, and has nothing to say on the wire.
#[derive(Default)]
pub struct AddressGuard {
    limits: AddressLimits,
    /// Established inbound connections per address.
    inbound: HashMap<IpAddr, u32>,
    /// Which address each established connection is from, and whether it is inbound.
    connections: HashMap<ConnectionId, (PeerId, IpAddr, bool)>,
    /// Bans by address, and when each ends. Each follows a ban of a peer, which takes strikes
    /// earned on a verified connection, so there are few.
    banned: HashMap<IpAddr, Instant>,
}

/// The key an address is limited under: IPv4 as is (an IPv4-mapped IPv6 address too), IPv6 by its
/// /64, the block one subscriber usually holds. The HTTP API's per-client limits use it as well.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// The IP address a multiaddr starts with, if any.
fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|protocol| match protocol {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl AddressGuard {
    /// A guard enforcing `limits`.
    pub fn new(limits: AddressLimits) -> AddressGuard {
        AddressGuard { limits, ..AddressGuard::default() }
    }

    fn exempt(&self, address: IpAddr) -> bool {
        address.is_loopback() && !self.limits.limit_loopback
    }

    /// Bans the address `peer` is connected from until `until`; returns it, or `None` if the
    /// peer is not connected or its address is exempt.
    pub fn ban_address_of(&mut self, peer: &PeerId, until: Instant) -> Option<IpAddr> {
        let address =
            self.connections.values().find(|(p, _, _)| p == peer).map(|(_, address, _)| *address)?;
        if self.exempt(address) {
            return None;
        }
        self.banned.insert(address, until);
        Some(address)
    }

    /// Lifts the bans that ended by `now`; returns the addresses freed.
    pub fn lift_expired(&mut self, now: Instant) -> Vec<IpAddr> {
        let ended: Vec<IpAddr> =
            self.banned.iter().filter(|(_, end)| **end <= now).map(|(a, _)| *a).collect();
        for address in &ended {
            self.banned.remove(address);
        }
        ended
    }

    fn check(&self, remote: &Multiaddr, inbound: bool) -> Result<Option<IpAddr>, ConnectionDenied> {
        let Some(ip) = ip_of(remote) else { return Ok(None) };
        if self.exempt(ip) {
            return Ok(None);
        }
        let address = address_key(ip);
        if self.banned.contains_key(&address) {
            return Err(ConnectionDenied::new(Refused::Banned(ip)));
        }
        let held = self.inbound.get(&address).copied().unwrap_or(0);
        if inbound && held >= self.limits.inbound_per_address {
            return Err(ConnectionDenied::new(Refused::Crowded { address: ip, held }));
        }
        Ok(Some(address))
    }

    fn established(&mut self, connection: ConnectionId, peer: PeerId, remote: &Multiaddr, inbound: bool) {
        let Some(ip) = ip_of(remote) else { return };
        let address = address_key(ip);
        if inbound && !self.exempt(ip) {
            *self.inbound.entry(address).or_default() += 1;
        }
        self.connections.insert(connection, (peer, address, inbound));
    }
}

impl NetworkBehaviour for AddressGuard {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _connection: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check(remote, true).map(|_| ())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // Checked again: several may have been pending at once.
        self.check(remote, true)?;
        self.established(connection, peer, remote, true);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(remote, false)?;
        self.established(connection, peer, remote, false);
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(closed) = event
            && let Some((_, address, inbound)) = self.connections.remove(&closed.connection_id)
            && inbound
            && let Some(count) = self.inbound.get_mut(&address)
        {
            *count -= 1;
            if *count == 0 {
                self.inbound.remove(&address);
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_peer_is_its_slash_64_and_a_mapped_ipv4_its_address() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key("2001:db8:0:1::1".parse().unwrap()));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_address_is_read_from_any_multiaddr() {
        let tcp: Multiaddr = "/ip4/192.0.2.1/tcp/30333".parse().unwrap();
        let quic: Multiaddr = "/ip6/2001:db8::1/udp/30333/quic-v1".parse().unwrap();
        assert_eq!(ip_of(&tcp), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(ip_of(&quic), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ip_of(&"/dns4/example.org/tcp/1".parse().unwrap()), None);
    }
}
