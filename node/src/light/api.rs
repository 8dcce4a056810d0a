//! The light peer's HTTP API: status, accounts and transactions read through main nodes and
//! checked against headers the light peer accepted, and transactions pushed to them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use goodwill_ledger::execute::check_contents;
use goodwill_ledger::{Address, ChainSpec, Hash, SealedHeader, Transaction};
use goodwill_protocol::message::TxAnswer;
use goodwill_protocol::{Request, Response as Answer};
use libp2p::PeerId;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::View;
use super::follow::Command;

/// How long an HTTP request waits for a main node.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub(super) struct Api {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) view: Arc<Mutex<View>>,
    pub(super) spec: Arc<ChainSpec>,
    pub(super) genesis: Hash,
}

pub(super) fn router(api: Api) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/accounts/{address}", get(account))
        .route("/api/v1/forgers/{address}", get(forger))
        .route("/api/v1/transactions", post(submit))
        .route("/api/v1/transactions/{id}", get(transaction))
        .with_state(api)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

fn unexpected() -> Response {
    error(StatusCode::BAD_GATEWAY, "bad_answer", "an unexpected answer".into())
}

async fn ask(api: &Api, request: Request) -> Result<(PeerId, Answer), Response> {
    let (reply, answer) = oneshot::channel();
    let unavailable = |message: String| error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    api.commands.send(Command::Ask(request, reply)).await.map_err(|_| unavailable("shutting down".into()))?;
    match tokio::time::timeout(QUERY_TIMEOUT, answer).await {
        Ok(Ok(Ok(answer))) => Ok(answer),
        Ok(Ok(Err(message))) => Err(unavailable(message)),
        _ => Err(unavailable("no answer from a main node".into())),
    }
}

/// Reports `peer` as a liar and says so.
async fn caught(api: &Api, peer: PeerId, reason: String) -> Response {
    let _ = api.commands.send(Command::Liar(peer, reason.clone())).await;
    error(StatusCode::BAD_GATEWAY, "lying_peer", format!("main node {peer}: {reason}; dropped and banned"))
}

async fn status(State(api): State<Api>) -> Json<Value> {
    let Ok(view) = api.view.lock() else { return Json(json!({ "role": "light" })) };
    let (head, finalized, mains, liars) = (view.head, view.finalized, view.mains, view.liars.clone());
    Json(json!({
        "role": "light",
        "chain_id": view.chain_id,
        "genesis_hash": view.genesis,
        "min_fee": view.min_fee.to_string(),
        "head": head.map(|(height, hash)| json!({ "height": height, "hash": hash })),
        "finalized": finalized.map(|(height, hash)| json!({ "height": height, "hash": hash })),
        "main_peers": mains,
        "dropped_liars": liars,
    }))
}

async fn account(State(api): State<Api>, Path(address): Path<String>) -> Response {
    let address: Address = match address.parse() {
        Ok(address) => address,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_address", format!("{e}")),
    };
    let (peer, info) = match ask(&api, Request::Account(address)).await {
        Ok((peer, Answer::Account(info))) => (peer, info),
        Ok(_) => return unexpected(),
        Err(response) => return response,
    };
    // The header the answer names, verified (fetched from the same node if we lack it).
    let Some(header) = accepted_header(&api, peer, info.head_hash).await else {
        let message = format!("cannot verify the head {} main node {peer} named", info.head_hash);
        return error(StatusCode::BAD_GATEWAY, "unverifiable", message);
    };
    let root = header.header().state_root;
    match goodwill_ledger::proof::verify_account(&root, &address, info.state.as_deref(), &info.proof) {
        Ok(account) if account.balance.0 == info.balance && account.nonce == info.nonce => Json(json!({
            "address": address,
            "balance": account.balance,
            "nonce": account.nonce,
            "height": header.header().height,
            "head": info.head_hash,
            "proof": "verified against the state root of a header signed by its forger",
            "main_node": peer.to_string(),
        }))
        .into_response(),
        Ok(_) => {
            caught(&api, peer, "the balance or nonce it stated differs from the one it proved".into()).await
        }
        Err(e) => caught(&api, peer, format!("its proof failed ({e})")).await,
    }
}

/// A forger's record (its tickets and reveal commitment), proven against the state root of the
/// head the light peer accepted: what `goodwill tx buy-ticket` reads to know whether a first
/// reveal commitment goes with the ticket.
async fn forger(State(api): State<Api>, Path(address): Path<String>) -> Response {
    let address: Address = match address.parse() {
        Ok(address) => address,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_address", format!("{e}")),
    };
    let head = api.view.lock().ok().and_then(|view| view.head);
    let Some((_, head)) = head else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no head accepted yet".into());
    };
    // The lottery answer after the head carries the forger's record, proven (slot 0 asks for no
    // roster entry).
    let (peer, proof) = match ask(&api, Request::Lottery { parent: head, forger: address, slot: 0 }).await {
        Ok((peer, Answer::Lottery(answer))) if answer.block_hash == head => (peer, answer.proof),
        Ok((_, Answer::Error(_, message))) => return error(StatusCode::BAD_GATEWAY, "refused", message),
        Ok(_) => return unexpected(),
        Err(response) => return response,
    };
    let Some(header) = accepted_header(&api, peer, head).await else {
        return error(StatusCode::BAD_GATEWAY, "unverifiable", format!("cannot verify the head {head}"));
    };
    match goodwill_ledger::proof::verify_forger(&header.header().state_root, &address, &proof.forger) {
        Ok(Some(record)) => Json(json!({
            "address": address,
            "record": record,
            "height": header.header().height,
            "proof": "verified against the state root of a header signed by its forger",
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("{address} has no forger record")),
        Err(reason) => {
            caught(&api, peer, format!("its proof of {address}'s forger record failed: {reason}")).await
        }
    }
}

/// Waits until the header `hash` is accepted (fetching it from `peer` if unknown).
async fn accepted_header(api: &Api, peer: PeerId, hash: Hash) -> Option<SealedHeader> {
    let (reply, header) = oneshot::channel();
    api.commands.send(Command::Header(peer, hash, reply)).await.ok()?;
    tokio::time::timeout(QUERY_TIMEOUT, header).await.ok()?.ok()?
}

/// A transaction's status. A committed one is shown only once the light peer has the block that
/// holds it, the block's header is one it accepted, and the body matches the header.
async fn transaction(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let id: Hash = match id.parse() {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_hash", format!("{e}")),
    };
    let (peer, (block_hash, index, receipt)) = match ask(&api, Request::Transaction(id)).await {
        Ok((peer, Answer::Transaction(TxAnswer::Committed { block_hash, index, receipt, .. }))) => {
            (peer, (block_hash, index, receipt))
        }
        Ok((peer, Answer::Transaction(TxAnswer::Pending))) => {
            return Json(json!({ "id": id, "status": "pending", "main_node": peer.to_string() }))
                .into_response();
        }
        Ok((_, Answer::Transaction(TxAnswer::Unknown))) => {
            return error(StatusCode::NOT_FOUND, "not_found", format!("no transaction {id}"));
        }
        Ok(_) => return unexpected(),
        Err(response) => return response,
    };
    let block = match ask(&api, Request::BlocksByHash(vec![block_hash])).await {
        Ok((_, Answer::Blocks(blocks))) => blocks.into_iter().find(|b| b.hash() == block_hash),
        Ok(_) => None,
        Err(response) => return response,
    };
    let Some(header) = accepted_header(&api, peer, block_hash).await else {
        return error(StatusCode::BAD_GATEWAY, "unverifiable", format!("cannot verify block {block_hash}"));
    };
    let holds = block.as_ref().is_some_and(|block| {
        check_contents(&api.spec, &api.genesis, block).is_ok()
            && block.transactions.get(index as usize).is_some_and(|tx| tx.id() == id)
    });
    if !holds {
        return caught(
            &api,
            peer,
            format!("block {block_hash} does not hold transaction {id} at index {index}"),
        )
        .await;
    }
    // What it did, proven against the header's receipts root: a main node cannot make a failed
    // contract call look like a success, nor hide the receipt.
    let proven = receipt.filter(|proof| {
        let count = header.header().transaction_count as usize;
        proof.receipt.transaction_id == id
            && goodwill_ledger::verify_list_path(
                &header.header().receipts_root,
                &proof.receipt.leaf(),
                index as usize,
                count,
                &proof.path,
            )
    });
    let Some(proof) = proven else {
        return caught(
            &api,
            peer,
            format!("its receipt of transaction {id} does not match block {block_hash}"),
        )
        .await;
    };
    Json(json!({
        "id": id,
        "status": "committed",
        "block": { "height": header.header().height, "hash": block_hash, "index": index },
        "receipt": crate::http::views::receipt_view(&proof.receipt),
        "proof": "the block's header was accepted, its body holds the transaction and its receipts root the receipt",
    }))
    .into_response()
}

async fn submit(State(api): State<Api>, body: Bytes) -> Response {
    let bad = |code, message: String| error(StatusCode::BAD_REQUEST, code, message);
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return bad("bad_json", "expected {\"transaction\": \"<hex>\"}".into());
    };
    let Some(Ok(bytes)) = value["transaction"].as_str().map(|t| hex::decode(t.trim())) else {
        return bad("bad_hex", "transaction must be hexadecimal".into());
    };
    let tx = match Transaction::decode(Bytes::from(bytes), 128 * 1024) {
        Ok(tx) => tx,
        Err(e) => return bad("bad_transaction", e.to_string()),
    };
    let id = tx.id();
    match ask(&api, Request::SubmitTransaction(Box::new(tx))).await {
        Ok((peer, Answer::Submitted(Ok(_)))) => {
            Json(json!({ "id": id, "main_node": peer.to_string() })).into_response()
        }
        Ok((_, Answer::Submitted(Err(rejection)))) => bad("rejected", rejection),
        Ok((_, Answer::Error(_, message))) => error(StatusCode::BAD_GATEWAY, "refused", message),
        Ok(_) => unexpected(),
        Err(response) => response,
    }
}
