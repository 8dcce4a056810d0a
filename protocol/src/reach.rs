//! How far an address reaches, so that addresses only travel where they mean something: a peer's
//! loopback or private-network addresses are kept only by nodes that reach it the same way, and
//! the public DHT holds public addresses alone.

use std::net::{Ipv4Addr, Ipv6Addr};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// Who can dial an address, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// This host only.
    Loopback,
    /// One network: private, shared (carrier-grade NAT), link-local and unique-local ranges.
    Private,
    /// Anyone on the internet: a public IP address or a DNS name.
    Public,
}

impl Reach {
    /// The reach of `address`, from its first IP or DNS component; `None` if it has neither,
    /// or the address is one nobody can dial (unspecified, multicast, broadcast, reserved).
    pub fn of(address: &Multiaddr) -> Option<Reach> {
        match address.iter().next()? {
            Protocol::Ip4(ip) => reach_v4(ip),
            Protocol::Ip6(ip) => reach_v6(ip),
            Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name) | Protocol::Dnsaddr(name) => {
                Some(if name.eq_ignore_ascii_case("localhost") { Reach::Loopback } else { Reach::Public })
            }
            _ => None,
        }
    }
}

fn reach_v4(ip: Ipv4Addr) -> Option<Reach> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some(Reach::Loopback)
    } else if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || a == 0 || a >= 240 {
        None
    } else if ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b)) {
        Some(Reach::Private)
    } else {
        Some(Reach::Public)
    }
}

fn reach_v6(ip: Ipv6Addr) -> Option<Reach> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reach_v4(v4);
    }
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some(Reach::Loopback)
    } else if ip.is_unspecified() || ip.is_multicast() {
        None
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 {
        // Unique-local (fc00::/7) and link-local (fe80::/10).
        Some(Reach::Private)
    } else {
        Some(Reach::Public)
    }
}

/// Whether an address a peer gave for itself is worth keeping (in Kademlia, to hand to others)
/// by a node connected to it over an address of reach `link`: one at least as wide. Over the
/// internet only public addresses; over a private network those and private ones; on this host
/// any. An address nobody can dial is never kept.
pub fn worth_keeping(address: &Multiaddr, link: Reach) -> bool {
    Reach::of(address).is_some_and(|reach| reach >= link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(text: &str) -> Option<Reach> {
        Reach::of(&text.parse().unwrap())
    }

    #[test]
    fn addresses_are_ranked_by_who_can_dial_them() {
        assert_eq!(reach("/ip4/127.0.0.1/tcp/1"), Some(Reach::Loopback));
        assert_eq!(reach("/ip6/::1/tcp/1"), Some(Reach::Loopback));
        assert_eq!(reach("/dns4/localhost/tcp/1"), Some(Reach::Loopback));
        for private in [
            "/ip4/10.1.2.3/tcp/1",
            "/ip4/172.16.0.9/udp/1/quic-v1",
            "/ip4/192.168.1.20/tcp/1",
            "/ip4/100.64.0.1/tcp/1",
            "/ip4/169.254.3.4/tcp/1",
            "/ip6/fd00::1/tcp/1",
            "/ip6/fe80::1/tcp/1",
            "/ip6/::ffff:192.168.0.1/tcp/1",
        ] {
            assert_eq!(reach(private), Some(Reach::Private), "{private}");
        }
        for public in ["/ip4/8.8.8.8/tcp/1", "/ip6/2001:4860::8888/tcp/1", "/dns4/boot.example.org/tcp/1"] {
            assert_eq!(reach(public), Some(Reach::Public), "{public}");
        }
        for nobody in
            ["/ip4/0.0.0.0/tcp/1", "/ip4/224.0.0.1/tcp/1", "/ip4/255.255.255.255/tcp/1", "/ip6/::/tcp/1"]
        {
            assert_eq!(reach(nobody), None, "{nobody}");
        }
        assert_eq!(reach("/p2p/12D3KooWLk8wBMXY9Tnr4uRp5hZTX1Ki1uHhUgdx5U7R6RT2gDnS"), None);
    }

    #[test]
    fn a_peer_reached_over_the_internet_cannot_plant_its_private_addresses() {
        let public: Multiaddr = "/ip4/8.8.8.8/tcp/30333".parse().unwrap();
        let lan: Multiaddr = "/ip4/192.168.1.20/tcp/30333".parse().unwrap();
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/30333".parse().unwrap();
        assert!(worth_keeping(&public, Reach::Public));
        assert!(
            !worth_keeping(&lan, Reach::Public),
            "a stranger's LAN address would make us dial our own LAN"
        );
        assert!(!worth_keeping(&local, Reach::Public));
        assert!(worth_keeping(&lan, Reach::Private) && worth_keeping(&public, Reach::Private));
        assert!(!worth_keeping(&local, Reach::Private));
        assert!([&public, &lan, &local].iter().all(|a| worth_keeping(a, Reach::Loopback)), "a local cluster");
    }
}
