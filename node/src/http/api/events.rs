//! Live updates as server-sent events (`GET /api/v1/events`): the head as it moves, each block
//! made final, and with `?tx=ID` what became of one transaction, so that the explorer and
//! `goodwill tx --wait` follow the chain without polling it.
//!
//! Every stream follows the chain's head (a watch: a slow client skips heads, it never queues
//! them), and at most [`MAX_EVENT_STREAMS`] are open at once; the HTTP layer's per-client limits
//! apply to them as to any request (a stream holds its client's slot while it is open).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use goodwill_ledger::Hash;
use goodwill_protocol::Head;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::{Api, ApiError, ApiQuery, explore, parse_hash};
use crate::actor::ChainHandle;

/// Event streams open at once, over all clients.
pub const MAX_EVENT_STREAMS: usize = 256;

/// A comment line this often keeps idle connections (and proxies) from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The streams' shared budget.
pub type Streams = Arc<Semaphore>;

/// A fresh budget of [`MAX_EVENT_STREAMS`].
pub fn streams() -> Streams {
    Arc::new(Semaphore::new(MAX_EVENT_STREAMS))
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    /// A transaction to follow.
    tx: Option<String>,
}

/// One stream's state.
struct Follow {
    chain: ChainHandle,
    head: watch::Receiver<Head>,
    tx: Option<Hash>,
    /// Events ready to send.
    ready: VecDeque<Event>,
    last_head: Option<Hash>,
    last_finalized: Option<u64>,
    last_tx: Option<Value>,
    started: bool,
    /// Released when the client goes away (the stream is dropped).
    _permit: OwnedSemaphorePermit,
}

fn event(name: &'static str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

impl Follow {
    /// Waits for the head to change (the current one first), and queues what changed: a new
    /// head block, a new final block (the head's record changes with either), the transaction.
    async fn advance(&mut self) -> Option<()> {
        if self.started {
            self.head.changed().await.ok()?;
        }
        self.started = true;
        let head = *self.head.borrow_and_update();
        if self.last_head != Some(head.hash) {
            self.last_head = Some(head.hash);
            self.ready.push_back(event(
                "head",
                &json!({ "height": head.height, "hash": head.hash, "finalized": head.finalized }),
            ));
        }
        if self.last_finalized != Some(head.finalized) {
            self.last_finalized = Some(head.finalized);
            self.ready.push_back(event("finalized", &json!({ "height": head.finalized })));
        }
        if let Some(id) = self.tx {
            let found =
                self.chain.read(move |chain, pool| explore::transaction(chain, pool, id)).await.ok()?;
            let mut view = match found {
                Ok(found) => found.view(),
                Err(_) => json!({ "id": id, "status": "unknown" }),
            };
            let height = view["block"]["height"].as_u64();
            view["final"] = json!(height.is_some_and(|height| height <= head.finalized));
            if self.last_tx.as_ref() != Some(&view) {
                self.ready.push_back(event("tx", &view));
                self.last_tx = Some(view);
            }
        }
        Some(())
    }
}

/// `GET /api/v1/events[?tx=ID]`.
pub(super) async fn events(
    State(Api { chain, streams, .. }): State<Api>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tx = query.tx.as_deref().map(parse_hash).transpose()?;
    let permit = streams.try_acquire_owned().map_err(|_| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{MAX_EVENT_STREAMS} event streams are open; try again later"),
        )
    })?;
    let follow = Follow {
        head: chain.head(),
        chain,
        tx,
        ready: VecDeque::new(),
        last_head: None,
        last_finalized: None,
        last_tx: None,
        started: false,
        _permit: permit,
    };
    let stream = futures::stream::unfold(follow, |mut follow| async move {
        loop {
            if let Some(next) = follow.ready.pop_front() {
                return Some((Ok(next), follow));
            }
            follow.advance().await?;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
