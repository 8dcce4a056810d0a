//! Per-client limits of the HTTP API: a request rate (a token bucket per client, GCRA from
//! `governor`) and a number of requests in flight. A client over either is answered
//! `429 Too Many Requests` with `Retry-After`, before any handler runs, so that one client cannot
//! take the node's threads or its chain thread from the others.
//!
//! A client is its IP address; an IPv6 client is its /64 (`address_guard::address_key`, as for
//! peers), so that an attacker does not get 2^64 identities for the price of one. Loopback is
//! exempt unless told otherwise: it is the operator's own tools (wallet, explorer, scripts).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use goodwill_protocol::address_guard::address_key;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ApiError;

/// Requests per second a client may make, sustained, unless configured.
pub const DEFAULT_RATE: u32 = 50;
/// Requests a client may have in flight at once, unless configured.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Clients tracked before the idle ones are forgotten.
const TRACKED_BEFORE_PRUNING: usize = 10_000;

/// How much one client may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Requests per second, sustained; bursts of twice as many.
    pub per_second: u32,
    /// Requests in flight at once.
    pub concurrent: usize,
    /// Whether loopback clients are limited too.
    pub limit_loopback: bool,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits { per_second: DEFAULT_RATE, concurrent: DEFAULT_CONCURRENCY, limit_loopback: false }
    }
}

/// The limits' state, shared by every connection.
pub struct Limiter {
    limits: ClientLimits,
    rate: DefaultKeyedRateLimiter<IpAddr>,
    in_flight: Mutex<HashMap<IpAddr, usize>>,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: ClientLimits) -> Arc<Limiter> {
        let per_second = NonZeroU32::new(limits.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = per_second.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Arc::new(Limiter { limits, rate: RateLimiter::keyed(quota), in_flight: Mutex::new(HashMap::new()) })
    }

    /// Admits a request from `client`, or says after how many seconds to try again.
    fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Slot, u64> {
        if self.rate.len() > TRACKED_BEFORE_PRUNING {
            self.rate.retain_recent();
        }
        if let Err(not_until) = self.rate.check_key(&client) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = in_flight.entry(client).or_default();
        if *count >= self.limits.concurrent {
            return Err(1);
        }
        *count += 1;
        Ok(Slot { limiter: self.clone(), client })
    }
}

/// A request in flight; dropping it (the response is sent, or the client went away) frees it.
struct Slot {
    limiter: Arc<Limiter>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = self.limiter.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = in_flight.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.client);
            }
        }
    }
}

/// The middleware: admits the request or answers 429.
pub async fn enforce(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    // Served without connection info (in-process tests), every request is one client's.
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.ip());
    if address.is_loopback() && !limiter.limits.limit_loopback {
        return next.run(request).await;
    }
    match limiter.admit(address_key(address)) {
        Ok(_slot) => next.run(request).await,
        Err(retry_after) => {
            let message = format!("too many requests from {address}: try again in {retry_after} s");
            let mut response =
                ApiError(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One GET from `from` (a loopback address of its own) to `server`; the status and the
    /// `Retry-After` header.
    async fn get_from(from: &str, server: SocketAddr) -> (u16, Option<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(server).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer[9..12].parse().unwrap();
        let retry = answer
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("retry-after: ").map(str::to_string));
        (status, retry)
    }

    async fn serve_with(limits: ClientLimits) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(super::super::serve(listener, router, limits, std::future::pending()));
        address
    }

    /// The attack: one client floods the API. Past its burst it is answered 429 with
    /// Retry-After, before any handler runs; another client is served as before.
    #[tokio::test]
    async fn a_flooding_client_gets_429_with_retry_after_and_others_are_served() {
        let server = serve_with(ClientLimits { per_second: 2, concurrent: 16, limit_loopback: true }).await;
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(get_from("127.0.0.2", server).await);
        }
        assert_eq!(
            statuses[..4].iter().map(|s| s.0).collect::<Vec<_>>(),
            [200; 4],
            "a burst of twice the rate"
        );
        let (status, retry) = &statuses[5];
        assert_eq!(*status, 429);
        assert!(retry.as_deref().is_some_and(|s| s.trim().parse::<u64>().is_ok_and(|s| s >= 1)), "{retry:?}");
        assert_eq!(get_from("127.0.0.3", server).await.0, 200, "another client is served");
    }

    #[tokio::test]
    async fn loopback_is_exempt_unless_told_otherwise() {
        let server = serve_with(ClientLimits { per_second: 1, ..ClientLimits::default() }).await;
        for _ in 0..10 {
            assert_eq!(get_from("127.0.0.1", server).await.0, 200);
        }
    }

    #[test]
    fn a_request_in_flight_holds_its_slot_until_it_ends() {
        let limiter = Limiter::new(ClientLimits { per_second: 1_000, concurrent: 2, limit_loopback: true });
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = limiter.admit(client).ok();
        let second = limiter.admit(client).ok();
        assert!(first.is_some() && second.is_some());
        assert_eq!(limiter.admit(client).err(), Some(1), "a third at once is refused");
        assert!(limiter.admit("192.0.2.2".parse().unwrap()).is_ok(), "another client is not");
        drop(first);
        assert!(limiter.admit(client).is_ok(), "a finished request frees its slot");
        drop(second);
        assert!(limiter.in_flight.lock().unwrap().is_empty(), "idle clients leave no state");
    }
}
