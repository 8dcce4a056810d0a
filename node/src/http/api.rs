//! The main node's API and explorer routes (`/api/v1`, JSON). Read endpoints are public; there is
//! no endpoint that spends a key held by the node.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use goodwill_ledger::lottery::epoch_of;
use goodwill_ledger::{Address, Chain, Hash, RocksStore, Transaction};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, views};
use crate::actor::{ChainHandle, SubmitError};
use crate::mempool::{Mempool, PoolError};
use crate::metrics::Metrics;
use crate::network::NetworkHandle;
use crate::now_ms;

mod events;
mod explore;
mod explorer;

pub use events::MAX_EVENT_STREAMS;

/// Largest request body: a hex-encoded transaction at the largest size any chain allows.
const MAX_BODY_BYTES: usize = 256 * 1024;

fn unavailable() -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the node is shutting down".into())
}

fn internal(message: String) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", message)
}

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    chain: ChainHandle,
    network: NetworkHandle,
    metrics: Arc<Metrics>,
    streams: events::Streams,
}

/// The API's and the explorer's routes.
pub fn router(chain: ChainHandle, network: NetworkHandle, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events::events))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/blocks", get(blocks))
        .route("/api/v1/blocks/{id}", get(block))
        .route("/api/v1/finality/proofs", get(finality_proofs))
        .route("/api/v1/transactions", post(submit))
        .route("/api/v1/transactions/batch", post(submit_batch))
        .route("/api/v1/transactions/{id}", get(transaction))
        .route("/api/v1/accounts/{address}", get(account))
        .route("/api/v1/accounts/{address}/transactions", get(history))
        .route("/api/v1/forgers", get(forgers))
        .route("/api/v1/forgers/{address}", get(forger))
        .route("/api/v1/tickets", get(tickets))
        .route("/api/v1/associations", get(associations))
        .route("/api/v1/associations/{address}", get(association))
        .route("/api/v1/contracts/{address}", get(contract))
        .route("/api/v1/schedules", get(schedules))
        .route("/api/v1/contracts/{address}/storage/{key}", get(contract_entry))
        .route("/api/v1/mempool", get(mempool))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(prometheus))
        .merge(explorer::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Api { chain, network, metrics, streams: events::streams() })
}

/// A path parameter whose rejection is a JSON error.
struct ApiPath<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad_path", e.body_text()))
    }
}

/// A query string whose rejection is a JSON error.
struct ApiQuery<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))
    }
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no_such_endpoint", format!("nothing is served at {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Prometheus metrics, in the OpenMetrics text format.
async fn prometheus(State(Api { chain, network, metrics, .. }): State<Api>) -> Result<Response, ApiError> {
    let status = chain.status().await.map_err(|_| unavailable())?;
    let light_peers = network.light_peers();
    let snapshot = crate::metrics::Snapshot {
        head_height: status.head.header().height,
        pool_transactions: status.pending,
        pool_bytes: status.pending_bytes,
        main_peers: network.peers().saturating_sub(light_peers),
        light_peers,
        sync: network.sync(),
    };
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], metrics.render(&snapshot)).into_response())
}

/// The OpenAPI description of this API.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The OpenAPI 3.1 description, kept beside the code it describes.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn status(State(Api { chain, network, metrics, .. }): State<Api>) -> Result<Json<Value>, ApiError> {
    let status = chain.status().await.map_err(|_| unavailable())?;
    let header = status.head.header();
    let slot = goodwill_ledger::spec::slot_at(status.genesis_time_ms, status.slot_duration_ms, now_ms());
    let (cpu, committed, per_transaction) = metrics.cpu_per_transaction();
    // Between rounds of sync the plan's figures are those of its last round: report the head.
    let mut sync = network.sync();
    if !sync.syncing {
        sync.current = header.height;
        sync.target = sync.target.max(header.height);
    }
    Ok(Json(json!({
        "chain_id": status.chain_id,
        "genesis_hash": status.genesis_hash,
        "head": {
            "height": header.height,
            "hash": status.head.hash(),
            "slot": header.slot,
            "timestamp_ms": header.timestamp_ms,
            "forger": header.forger,
        },
        "finalized": {
            "height": status.finalized.block.height,
            "hash": status.finalized.block.hash,
            "round": status.finalized.round,
            "lag": header.height.saturating_sub(status.finalized.block.height),
        },
        "states_from": status.states_from,
        "blocks_from": status.blocks_from,
        "slot": slot,
        "epoch": epoch_of(slot, status.slots_per_epoch),
        "slot_duration_ms": status.slot_duration_ms,
        "genesis_time_ms": status.genesis_time_ms,
        "peers": network.peers(),
        "network": {
            "peer_id": network.peer_id().to_string(),
            "listening": network.listening().iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "sync": sync,
        "pending_transactions": status.pending,
        "queued_transactions": status.queued,
        "pending_bytes": status.pending_bytes,
        "node_min_fee": status.node_min_fee,
        "min_fee": status.min_fee,
        "resources": {
            "cpu_seconds": cpu,
            "committed_transactions": committed,
            "cpu_seconds_per_committed_transaction": per_transaction,
        },
    })))
}

/// Connected and banned peers, with their announced heights, scores and strikes.
async fn peers(State(Api { network, .. }): State<Api>) -> Json<Value> {
    let peers: Vec<Value> = network
        .peer_list()
        .await
        .into_iter()
        .map(|peer| {
            json!({
                "peer_id": peer.peer_id.to_string(),
                "verified": peer.verified,
                "light": peer.light,
                "height": peer.height,
                "gossip_score": peer.gossip_score,
                "strikes": peer.strikes,
                "banned_for_seconds": peer.banned_for.map(|left| left.as_secs()),
            })
        })
        .collect();
    Json(json!({ "peers": peers }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    /// A `SignedTransaction` protobuf, hex-encoded.
    transaction: String,
}

fn bad_request(code: &'static str, message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, code, message)
}

/// A hex-encoded `SignedTransaction`, decoded.
fn decode_submitted(hex_text: &str) -> Result<Transaction, ApiError> {
    let bytes = hex::decode(hex_text.trim())
        .map_err(|_| bad_request("bad_hex", "transaction must be hexadecimal".into()))?;
    Transaction::decode(Bytes::from(bytes), MAX_BODY_BYTES / 2)
        .map_err(|e| bad_request("bad_transaction", e.to_string()))
}

fn submit_error(error: SubmitError) -> ApiError {
    match error {
        SubmitError::Rejected(reason) => bad_request("rejected", reason.to_string()),
        SubmitError::Pool(PoolError::Full) => {
            ApiError(StatusCode::SERVICE_UNAVAILABLE, "pool_full", PoolError::Full.to_string())
        }
        SubmitError::Pool(reason) => bad_request("refused", reason.to_string()),
        SubmitError::Store(message) => internal(message),
    }
}

async fn submit(State(Api { chain, network, .. }): State<Api>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let submission: Submission = serde_json::from_slice(&body)
        .map_err(|e| bad_request("bad_json", format!("expected {{\"transaction\": \"<hex>\"}}: {e}")))?;
    let tx = decode_submitted(&submission.transaction)?;
    let id = chain.submit(tx.clone()).await.map_err(|_| unavailable())?.map_err(submit_error)?;
    network.publish_transaction(tx).await;
    Ok(Json(json!({ "id": id })))
}

/// The most transactions one batch submission may carry.
const MAX_SUBMIT_BATCH: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchSubmission {
    /// `SignedTransaction` protobufs, hex-encoded.
    transactions: Vec<String>,
}

/// Submits up to [`MAX_SUBMIT_BATCH`] transactions in one request, each judged alone and in
/// order (a sender's nonces may follow one another within the batch). Answers one result per
/// transaction, in the order given: `{"id": ...}` or `{"error": {"code", "message"}}`.
async fn submit_batch(
    State(Api { chain, network, .. }): State<Api>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let submission: BatchSubmission = serde_json::from_slice(&body).map_err(|e| {
        bad_request("bad_json", format!("expected {{\"transactions\": [\"<hex>\", ...]}}: {e}"))
    })?;
    let count = submission.transactions.len();
    if count == 0 || count > MAX_SUBMIT_BATCH {
        return Err(bad_request(
            "bad_batch",
            format!("a batch carries 1 to {MAX_SUBMIT_BATCH} transactions, not {count}"),
        ));
    }
    let decoded: Vec<Result<Transaction, ApiError>> =
        submission.transactions.iter().map(|hex_text| decode_submitted(hex_text)).collect();
    let valid: Vec<Transaction> = decoded.iter().filter_map(|tx| tx.as_ref().ok().cloned()).collect();
    let mut admitted = chain.submit_many(valid.clone()).await.map_err(|_| unavailable())?.into_iter();
    let mut valid = valid.into_iter();
    let mut accepted = 0;
    let mut to_publish = Vec::new();
    let results: Vec<Value> = decoded
        .into_iter()
        .map(|decoded| {
            let outcome = decoded.and_then(|_| {
                let tx = valid.next().expect("one transaction per decoded entry");
                let admitted = admitted.next().expect("one result per transaction");
                let id = admitted.map_err(submit_error)?;
                to_publish.push(tx);
                Ok(id)
            });
            match outcome {
                Ok(id) => {
                    accepted += 1;
                    json!({ "id": id })
                }
                Err(ApiError(_, code, message)) => json!({ "error": { "code": code, "message": message } }),
            }
        })
        .collect();
    for tx in to_publish {
        network.publish_transaction(tx).await;
    }
    Ok(Json(json!({ "accepted": accepted, "results": results })))
}

fn parse_address(text: &str) -> Result<Address, ApiError> {
    text.parse().map_err(|e: goodwill_ledger::ParseAddressError| {
        ApiError(StatusCode::BAD_REQUEST, "bad_address", e.to_string())
    })
}

/// Runs an explorer query on the chain thread, and renders what it read off that thread.
async fn explore<T: explore::Render>(
    chain: &ChainHandle,
    query: impl FnOnce(&Chain<RocksStore>, &Mempool) -> Result<T, ApiError> + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    let read = chain.read(query).await.map_err(|_| unavailable())??;
    Ok(Json(read.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofsQuery {
    from_height: Option<u64>,
}

/// The stored proofs of finality (the last final block of each epoch, and the latest) from
/// `from_height` on, at most 16: each the checkpoint and the votes that made it final.
async fn finality_proofs(
    State(Api { chain, .. }): State<Api>,
    ApiQuery(q): ApiQuery<ProofsQuery>,
) -> Result<Json<Value>, ApiError> {
    let from = q.from_height.unwrap_or(0);
    let proofs =
        chain.finality_proofs(from).await.map_err(|_| unavailable())?.map_err(|e| internal(e.to_string()))?;
    let shown: Vec<Value> = proofs.iter().map(views::finality_proof).collect();
    let next = proofs.last().map(|p| p.finalized.block.height + 1);
    Ok(Json(json!({ "proofs": shown, "next_from_height": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlocksQuery {
    before: Option<u64>,
    limit: Option<u64>,
}

async fn blocks(
    State(Api { chain, .. }): State<Api>,
    ApiQuery(q): ApiQuery<BlocksQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    let page =
        chain.read(move |c, _| explore::blocks(c, q.before, limit)).await.map_err(|_| unavailable())??;
    Ok(Json(page.view()))
}

async fn block(
    State(Api { chain, .. }): State<Api>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id: explore::BlockId = id.parse()?;
    let stored = chain.read(move |c, _| explore::block(c, id)).await.map_err(|_| unavailable())??;
    Ok(Json(stored.view()))
}

fn parse_hash(text: &str) -> Result<Hash, ApiError> {
    text.parse().map_err(|e: goodwill_ledger::ParseHashError| {
        ApiError(StatusCode::BAD_REQUEST, "bad_hash", e.to_string())
    })
}

async fn transaction(
    State(Api { chain, .. }): State<Api>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_hash(&id)?;
    let found =
        chain.read(move |c, pool| explore::transaction(c, pool, id)).await.map_err(|_| unavailable())??;
    Ok(Json(found.view()))
}

async fn account(
    State(Api { chain, .. }): State<Api>,
    ApiPath(address): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    explore(&chain, move |c, pool| explore::account(c, pool, address)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(Api { chain, .. }): State<Api>,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    let cursor = q.cursor.as_deref().map(str::parse).transpose()?;
    let limit = q.limit.unwrap_or(20);
    let page = chain
        .read(move |c, _| explore::history(c, address, cursor, limit))
        .await
        .map_err(|_| unavailable())??;
    Ok(Json(page.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgersQuery {
    window: Option<u64>,
    after: Option<String>,
    limit: Option<usize>,
}

/// A list page's query: `after` (an address) and `limit`.
fn page(after: Option<&str>, limit: Option<usize>) -> Result<explore::Page, ApiError> {
    Ok(explore::Page { after: after.map(parse_address).transpose()?, limit })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn forgers(
    State(Api { chain, .. }): State<Api>,
    ApiQuery(q): ApiQuery<ForgersQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = page(q.after.as_deref(), q.limit)?;
    explore(&chain, move |c, _| explore::forgers(c, q.window.unwrap_or(100), page)).await
}

async fn forger(
    State(Api { chain, .. }): State<Api>,
    ApiPath(address): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    explore(&chain, move |c, _| explore::forger(c, address)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketsQuery {
    status: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

async fn tickets(
    State(Api { chain, .. }): State<Api>,
    ApiQuery(q): ApiQuery<TicketsQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = page(q.after.as_deref(), q.limit)?;
    explore(&chain, move |c, _| explore::tickets(c, q.status.as_deref(), page)).await
}

async fn schedules(State(Api { chain, .. }): State<Api>) -> Result<Json<Value>, ApiError> {
    explore(&chain, move |c, _| explore::schedules(c)).await
}

async fn contract(
    State(Api { chain, .. }): State<Api>,
    ApiPath(address): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    explore(&chain, move |c, _| explore::contract(c, address)).await
}

async fn contract_entry(
    State(Api { chain, .. }): State<Api>,
    ApiPath((address, key)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    let entry = chain
        .read(move |c, _| explore::contract_entry(c, address, &key))
        .await
        .map_err(|_| unavailable())??;
    entry.view().map(Json)
}

async fn associations(
    State(Api { chain, .. }): State<Api>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = page(q.after.as_deref(), q.limit)?;
    explore(&chain, move |c, _| explore::associations(c, page)).await
}

async fn association(
    State(Api { chain, .. }): State<Api>,
    ApiPath(address): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    explore(&chain, move |c, _| explore::association(c, address)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolQuery {
    limit: Option<usize>,
}

async fn mempool(
    State(Api { chain, .. }): State<Api>,
    ApiQuery(q): ApiQuery<PoolQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    let page = chain.read(move |_, pool| explore::mempool(pool, limit)).await.map_err(|_| unavailable())?;
    Ok(Json(page.view()))
}
