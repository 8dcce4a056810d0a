//! Per-peer request rate limits: a token bucket per peer (GCRA, from `governor`). A peer over its
//! rate is throttled (its requests are answered `rate_limited`); one that keeps flooding is
//! disconnected.

use std::collections::HashMap;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use libp2p::PeerId;

/// Requests per second a peer may make, sustained.
pub const REQUESTS_PER_SECOND: u32 = 20;
/// Requests a peer may make in a burst.
pub const BURST: u32 = 40;
/// Throttled requests in a row after which the peer is disconnected.
pub const STRIKES_BEFORE_DISCONNECT: u32 = 50;

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// Answer `rate_limited`.
    Throttle,
    /// Disconnect the peer.
    Disconnect,
}

/// Rate limits for every connected peer. State is kept only for peers that made requests and
/// is dropped when they disconnect, so it is bounded by the connection limits.
pub struct PeerRateLimiter {
    limiter: DefaultKeyedRateLimiter<PeerId>,
    strikes: HashMap<PeerId, u32>,
}

impl Default for PeerRateLimiter {
    fn default() -> Self {
        PeerRateLimiter::new()
    }
}

impl PeerRateLimiter {
    /// Limits of [`REQUESTS_PER_SECOND`] with bursts of [`BURST`].
    pub fn new() -> PeerRateLimiter {
        PeerRateLimiter::with_quota(REQUESTS_PER_SECOND, BURST)
    }

    fn with_quota(per_second: u32, burst: u32) -> PeerRateLimiter {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        PeerRateLimiter { limiter: RateLimiter::keyed(quota), strikes: HashMap::new() }
    }

    /// Decides about one request from `peer`.
    pub fn check(&mut self, peer: &PeerId) -> Decision {
        if self.limiter.check_key(peer).is_ok() {
            self.strikes.remove(peer);
            return Decision::Allow;
        }
        let strikes = self.strikes.entry(*peer).or_default();
        *strikes += 1;
        if *strikes >= STRIKES_BEFORE_DISCONNECT { Decision::Disconnect } else { Decision::Throttle }
    }

    /// Forgets a peer that disconnected.
    pub fn forget(&mut self, peer: &PeerId) {
        self.strikes.remove(peer);
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_peer_is_throttled_then_disconnected_and_others_are_unaffected() {
        let mut limits = PeerRateLimiter::with_quota(1, 5);
        let (flood, calm) = (PeerId::random(), PeerId::random());
        let decisions: Vec<Decision> =
            (0..5 + STRIKES_BEFORE_DISCONNECT).map(|_| limits.check(&flood)).collect();
        assert!(decisions[..5].iter().all(|d| *d == Decision::Allow), "the burst is allowed");
        assert!(decisions[5..decisions.len() - 1].iter().all(|d| *d == Decision::Throttle), "then throttled");
        assert_eq!(decisions.last(), Some(&Decision::Disconnect), "then disconnected");
        assert_eq!(limits.check(&calm), Decision::Allow, "another peer has its own bucket");
        limits.forget(&flood);
        assert!(!limits.strikes.contains_key(&flood));
    }
}
