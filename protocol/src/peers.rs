//! The peer manager: who passed the handshake, what each peer did wrong, who is banned, and how
//! fast each may ask. It does no I/O and reads no clock; the event loop applies what it decides
//! (disconnect, block, unblock) to the swarm.
//!
//! Every offence has one price ([`Offence::strikes`]), the same on every path that detects it.
//! Strikes add up; at [`BAN_STRIKES`] a peer is banned for [`BAN_DURATION`], and its strikes are
//! kept until the ban ends. A peer that disconnects without being banned starts clean.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::message::Role;
use crate::rate_limit::{Decision, PeerRateLimiter};

/// Strikes at which a peer is banned.
pub const BAN_STRIKES: u32 = 100;
/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(600);

/// A class of misbehaviour, with one price each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offence {
    /// Served or relayed something no honest node can produce: a malformed or invalid block in
    /// answer to sync, or a flood of requests past every throttle. Banned at once.
    Fatal,
    /// Answered with something other than what was asked (another block, heights that do not
    /// fit, an invalid ancestor).
    WrongAnswer,
    /// Gossiped a message that does not decode, or a block or batch that breaks a rule every
    /// node checks alike.
    InvalidGossip,
    /// Sent a request that could not be read at all (over the size limit, undecodable).
    UnreadableRequest,
    /// Sent a request that decodes but is malformed (a short hash, too many hashes, a
    /// transaction that does not decode, no request at all).
    BadRequest,
}

impl Offence {
    /// What the offence costs.
    pub fn strikes(self) -> u32 {
        match self {
            Offence::Fatal => BAN_STRIKES,
            Offence::WrongAnswer => 50,
            Offence::InvalidGossip | Offence::UnreadableRequest => 25,
            Offence::BadRequest => 10,
        }
    }
}

/// What the event loop must do after a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// Noted; the peer stays.
    Noted {
        /// Its strikes now.
        strikes: u32,
    },
    /// The peer crossed the threshold: disconnect and block it.
    Banned,
}

/// A connected or banned peer, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Passed the handshake.
    pub verified: bool,
    /// Said it is a light peer.
    pub light: bool,
    /// The highest head it announced.
    pub height: Option<u64>,
    /// Gossipsub's score of it.
    pub gossip_score: Option<f64>,
    /// This node's strikes against it.
    pub strikes: u32,
    /// How long its ban lasts still, if banned.
    pub banned_for: Option<Duration>,
}

/// Peers, strikes, bans and rate limits. Every map is keyed by connected peers (bounded by the
/// connection limits) or banned ones (bounded by how many can offend within a ban).
pub struct PeerManager {
    verified: HashMap<PeerId, Role>,
    strikes: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    limits: PeerRateLimiter,
}

impl Default for PeerManager {
    fn default() -> Self {
        PeerManager::new()
    }
}

impl PeerManager {
    /// No peers yet.
    pub fn new() -> PeerManager {
        PeerManager {
            verified: HashMap::new(),
            strikes: HashMap::new(),
            banned: HashMap::new(),
            limits: PeerRateLimiter::new(),
        }
    }

    /// `peer` passed the handshake as `role`; true if it was not verified before.
    pub fn verify(&mut self, peer: PeerId, role: Role) -> bool {
        self.verified.insert(peer, role).is_none()
    }

    /// Whether `peer` passed the handshake.
    pub fn is_verified(&self, peer: &PeerId) -> bool {
        self.verified.contains_key(peer)
    }

    /// The role a verified peer said it has.
    pub fn role(&self, peer: &PeerId) -> Option<Role> {
        self.verified.get(peer).copied()
    }

    /// How many verified peers there are, and how many of them are light.
    pub fn counts(&self) -> (usize, usize) {
        let light = self.verified.values().filter(|role| **role == Role::Light).count();
        (self.verified.len(), light)
    }

    /// Forgets that `peer` passed the handshake (refused, or gone); true if it had.
    pub fn unverify(&mut self, peer: &PeerId) -> bool {
        self.verified.remove(peer).is_some()
    }

    /// Every connection to `peer` closed: its state goes, but a ban and the strikes behind it
    /// stay until the ban ends.
    pub fn disconnected(&mut self, peer: &PeerId) -> bool {
        self.limits.forget(peer);
        if !self.banned.contains_key(peer) {
            self.strikes.remove(peer);
        }
        self.unverify(peer)
    }

    /// Adds `offence`'s price to `peer`'s strikes, and bans it at the threshold.
    pub fn penalise(&mut self, peer: PeerId, offence: Offence, now: Instant) -> Penalty {
        let total = self.strikes.entry(peer).or_default();
        *total = total.saturating_add(offence.strikes());
        let total = *total;
        if total >= BAN_STRIKES && !self.banned.contains_key(&peer) {
            self.banned.insert(peer, now + BAN_DURATION);
            self.verified.remove(&peer);
            return Penalty::Banned;
        }
        Penalty::Noted { strikes: total }
    }

    /// Bans `peer` at once (a light peer caught a main node lying).
    pub fn ban(&mut self, peer: PeerId, now: Instant) -> bool {
        self.strikes.insert(peer, BAN_STRIKES);
        self.verified.remove(&peer);
        self.banned.insert(peer, now + BAN_DURATION).is_none()
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains_key(peer)
    }

    /// Lifts the bans that ended by `now`; returns whom to unblock.
    pub fn lift_expired(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> =
            self.banned.iter().filter(|(_, end)| **end <= now).map(|(p, _)| *p).collect();
        for peer in &expired {
            self.banned.remove(peer);
            self.strikes.remove(peer);
        }
        expired
    }

    /// Decides about one request from `peer` by its rate.
    pub fn check_rate(&mut self, peer: &PeerId) -> Decision {
        self.limits.check(peer)
    }

    /// `peer`'s strikes.
    pub fn strikes(&self, peer: &PeerId) -> u32 {
        self.strikes.get(peer).copied().unwrap_or(0)
    }

    /// Banned peers and when each ban ends.
    pub fn banned(&self) -> impl Iterator<Item = (&PeerId, Instant)> {
        self.banned.iter().map(|(peer, end)| (peer, *end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fatal_offence_bans_and_small_ones_add_up_to_a_ban() {
        let now = Instant::now();
        let mut peers = PeerManager::new();
        let (liar, sloppy) = (PeerId::random(), PeerId::random());
        peers.verify(liar, Role::Main);
        assert_eq!(peers.penalise(liar, Offence::Fatal, now), Penalty::Banned);
        assert!(peers.is_banned(&liar) && !peers.is_verified(&liar));
        for round in 1..10 {
            let penalty = peers.penalise(sloppy, Offence::BadRequest, now);
            assert_eq!(penalty, Penalty::Noted { strikes: round * 10 });
        }
        assert_eq!(peers.penalise(sloppy, Offence::BadRequest, now), Penalty::Banned);
        // Banned once: more offences while banned do not ban it again.
        assert_eq!(peers.penalise(sloppy, Offence::BadRequest, now), Penalty::Noted { strikes: 110 });
    }

    #[test]
    fn a_ban_outlives_the_disconnection_and_ends_on_time() {
        let now = Instant::now();
        let mut peers = PeerManager::new();
        let (banned, offender) = (PeerId::random(), PeerId::random());
        peers.penalise(banned, Offence::Fatal, now);
        peers.penalise(offender, Offence::WrongAnswer, now);
        peers.disconnected(&banned);
        peers.disconnected(&offender);
        assert_eq!(peers.strikes(&banned), BAN_STRIKES, "a banned peer's strikes stay");
        assert_eq!(peers.strikes(&offender), 0, "a peer that left unbanned starts clean");
        assert!(peers.lift_expired(now + BAN_DURATION - Duration::from_secs(1)).is_empty());
        assert_eq!(peers.lift_expired(now + BAN_DURATION), vec![banned]);
        assert!(!peers.is_banned(&banned));
        assert_eq!(peers.strikes(&banned), 0);
    }

    #[test]
    fn counts_follow_roles() {
        let mut peers = PeerManager::new();
        let (main, light) = (PeerId::random(), PeerId::random());
        assert!(peers.verify(main, Role::Main));
        assert!(!peers.verify(main, Role::Main), "verifying twice is one peer");
        peers.verify(light, Role::Light);
        assert_eq!(peers.counts(), (2, 1));
        peers.disconnected(&light);
        assert_eq!(peers.counts(), (1, 0));
    }
}
