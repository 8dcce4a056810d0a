//! The node's HTTP API (`/api/v1`, JSON). Read endpoints are public; there is no endpoint that
//! spends a key held by the node.

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use goodwill_ledger::lottery::epoch_of;
use goodwill_ledger::{Address, Hash, Transaction};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actor::{ChainHandle, SubmitError, TxStatus};
use crate::forger::now_ms;
use crate::mempool::PoolError;
use crate::network::NetworkHandle;

/// Largest request body: a hex-encoded transaction at the largest size any chain allows.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// An API error: a status, a stable code and a message for people.
struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": { "code": self.1, "message": self.2 } }))).into_response()
    }
}

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
}

/// The API's routes.
pub fn router(chain: ChainHandle, network: NetworkHandle) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/transactions", post(submit))
        .route("/api/v1/transactions/{id}", get(transaction))
        .route("/api/v1/accounts/{address}", get(account))
        .route("/api/v1/forgers/{address}", get(forger))
        .route("/api/v1/associations/{address}", get(association))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Api { chain, network })
}

/// Binds the API's listening socket (port 0 picks a free port).
pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await
}

async fn status(State(Api { chain, network }): State<Api>) -> Result<Json<Value>, ApiError> {
    let status = chain.status().await.map_err(|_| unavailable())?;
    let header = status.head.header();
    let slot = now_ms().saturating_sub(status.genesis_time_ms) / status.slot_duration_ms;
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
        "slot": slot,
        "epoch": epoch_of(slot, status.slots_per_epoch),
        "peers": network.peers(),
        "network": {
            "peer_id": network.peer_id().to_string(),
            "listening": network.listening().iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "sync": network.sync(),
        "pending_transactions": status.pending,
        "queued_transactions": status.queued,
        "pending_bytes": status.pending_bytes,
        "node_min_fee": status.node_min_fee,
        "min_fee": status.min_fee,
    })))
}

/// Connected and banned peers, with their announced heights, scores and strikes.
async fn peers(State(Api { network, .. }): State<Api>) -> Json<Value> {
    Json(json!({ "peers": network.peer_list().await }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    /// A `SignedTransaction` protobuf, hex-encoded.
    transaction: String,
}

async fn submit(State(Api { chain, network }): State<Api>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let bad = |code, message: String| ApiError(StatusCode::BAD_REQUEST, code, message);
    let submission: Submission = serde_json::from_slice(&body)
        .map_err(|e| bad("bad_json", format!("expected {{\"transaction\": \"<hex>\"}}: {e}")))?;
    let bytes = hex::decode(submission.transaction.trim())
        .map_err(|_| bad("bad_hex", "transaction must be hexadecimal".into()))?;
    let tx = Transaction::decode(Bytes::from(bytes), MAX_BODY_BYTES / 2)
        .map_err(|e| bad("bad_transaction", e.to_string()))?;
    match chain.submit(tx.clone()).await.map_err(|_| unavailable())? {
        Ok(id) => {
            network.publish_transaction(tx);
            Ok(Json(json!({ "id": id })))
        }
        Err(SubmitError::Rejected(reason)) => Err(bad("rejected", reason.to_string())),
        Err(SubmitError::Pool(PoolError::Full)) => {
            Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "pool_full", PoolError::Full.to_string()))
        }
        Err(SubmitError::Pool(reason)) => Err(bad("refused", reason.to_string())),
        Err(SubmitError::Store(message)) => Err(internal(message)),
    }
}

fn parse_address(text: &str) -> Result<Address, ApiError> {
    text.parse().map_err(|e: goodwill_ledger::ParseAddressError| {
        ApiError(StatusCode::BAD_REQUEST, "bad_address", e.to_string())
    })
}

async fn transaction(
    State(Api { chain, .. }): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: Hash = id.parse().map_err(|e: goodwill_ledger::ParseHashError| {
        ApiError(StatusCode::BAD_REQUEST, "bad_hash", e.to_string())
    })?;
    match chain.transaction(id).await.map_err(|_| unavailable())?.map_err(internal)? {
        None => Err(ApiError(StatusCode::NOT_FOUND, "not_found", format!("no transaction {id}"))),
        Some(TxStatus::Pending) => Ok(Json(json!({ "id": id, "status": "pending" }))),
        Some(TxStatus::Committed(location)) => Ok(Json(json!({
            "id": id,
            "status": "committed",
            "block": { "height": location.height, "hash": location.block_hash, "index": location.index },
        }))),
    }
}

async fn account(
    State(Api { chain, .. }): State<Api>,
    Path(address): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    let account = chain.account(address).await.map_err(|_| unavailable())?.map_err(internal)?;
    Ok(Json(json!({ "address": address, "balance": account.balance, "nonce": account.nonce })))
}

async fn forger(
    State(Api { chain, .. }): State<Api>,
    Path(address): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    match chain.forger(address).await.map_err(|_| unavailable())?.map_err(internal)? {
        Some(record) => Ok(Json(json!({ "address": address, "forger": record }))),
        None => {
            Err(ApiError(StatusCode::NOT_FOUND, "not_found", format!("{address} has never held a ticket")))
        }
    }
}

async fn association(
    State(Api { chain, .. }): State<Api>,
    Path(address): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let address = parse_address(&address)?;
    match chain.association(address).await.map_err(|_| unavailable())?.map_err(internal)? {
        Some(record) => Ok(Json(json!({ "address": address, "association": record }))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{address} is not a registered association"),
        )),
    }
}
