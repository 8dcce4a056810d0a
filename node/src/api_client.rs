//! A typed client of a node's HTTP API, shared by the wallet commands (`goodwill tx`, `account`,
//! `contract`), the cluster launcher and the load generator. One agent keeps its connections
//! open between calls; every answer is read whole, so a connection goes back to the pool.

use std::time::Duration;

use goodwill_ledger::{Amount, Hash, Transaction};
use serde::Deserialize;
use serde_json::{Value, json};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached (or did not answer in time).
    #[error("cannot reach {url}: {reason}; is the node running, and is this its HTTP address?")]
    Unreachable {
        /// What was called.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The answer is not the JSON the API documents.
    #[error("{url} answered something that is not the API's JSON: {reason}")]
    Malformed {
        /// What was called.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The node refused, with the API's error code and message.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's error code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// A node's `/api/v1/status`, the fields its clients read.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeStatus {
    /// The chain's id.
    pub chain_id: String,
    /// Its genesis block.
    pub genesis_hash: Hash,
    /// The head.
    pub head: HeadView,
    /// The slot the node's clock is in.
    pub slot: u64,
    /// Slot length.
    pub slot_duration_ms: u64,
    /// When slot 0 starts.
    pub genesis_time_ms: u64,
    /// Peers that passed the handshake.
    pub peers: usize,
    /// The chain's minimum fee.
    pub min_fee: Amount,
    /// The node's own minimum fee.
    pub node_min_fee: Amount,
    /// The last final block.
    pub finalized: HeadView,
}

/// The head as the status shows it.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct HeadView {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
}

/// A client of one node.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    agent: ureq::Agent,
}

impl ApiClient {
    /// A client of the node at `base` (`http://host:port`), waiting at most `patience` per call.
    pub fn new(base: &str, patience: Duration) -> ApiClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(patience))
            .http_status_as_error(false)
            // Buffers are allocated (and zeroed) per connection; the default 128 KiB is more
            // than a call needs.
            .input_buffer_size(32 * 1024)
            .output_buffer_size(32 * 1024)
            .build()
            .into();
        ApiClient { base: base.trim_end_matches('/').to_string(), agent }
    }

    /// The node's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn read(
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Value), ClientError> {
        let mut response =
            response.map_err(|e| ClientError::Unreachable { url: url.to_string(), reason: e.to_string() })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_json()
            .map_err(|e| ClientError::Malformed { url: url.to_string(), reason: e.to_string() })?;
        Ok((status, body))
    }

    /// GETs `path` (`/api/v1/...`): the HTTP status and the JSON body, whatever the status.
    pub fn get(&self, path: &str) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        Self::read(&url, self.agent.get(&url).call())
    }

    /// POSTs `body` to `path`: the HTTP status and the JSON answer, whatever the status.
    pub fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        Self::read(&url, self.agent.post(&url).send_json(body))
    }

    /// POSTs `body` as it is to `path`, labelled JSON: the HTTP status alone (a refused body's
    /// answer need not be the API's JSON).
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<u16, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.post(&url).header("content-type", "application/json").send(body);
        response
            .map(|r| r.status().as_u16())
            .map_err(|e| ClientError::Unreachable { url: url.clone(), reason: e.to_string() })
    }

    /// GETs `path` and returns its body if the status is a success, the API's error otherwise.
    pub fn get_ok(&self, path: &str) -> Result<Value, ClientError> {
        let (status, body) = self.get(path)?;
        ok(status, body)
    }

    /// GETs a text resource (`/metrics`).
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let unreachable =
            |e: ureq::Error| ClientError::Unreachable { url: url.clone(), reason: e.to_string() };
        let mut response = self.agent.get(&url).call().map_err(unreachable)?;
        response.body_mut().read_to_string().map_err(unreachable)
    }

    /// Opens the node's event stream at `path` (`/api/v1/events...`) for at most `limit`: each
    /// event's name and data, in order, until the stream or `limit` ends. `None` if the node
    /// serves no event stream (a light peer, an older node).
    pub fn events(&self, path: &str, limit: Duration) -> Result<Option<SseEvents>, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .get(&url)
            .header("accept", "text/event-stream")
            .config()
            .timeout_global(Some(limit))
            .build()
            .call()
            .map_err(|e| ClientError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        match response.status().as_u16() {
            200 => Ok(Some(SseEvents { lines: std::io::BufReader::new(response.into_body().into_reader()) })),
            404 => Ok(None),
            status => {
                let body: Value = response.into_body().read_json().unwrap_or(Value::Null);
                Err(refused(status, &body["error"]))
            }
        }
    }

    /// The node's status.
    pub fn status(&self) -> Result<NodeStatus, ClientError> {
        let body = self.get_ok("/api/v1/status")?;
        serde_json::from_value(body).map_err(|e| ClientError::Malformed {
            url: format!("{}/api/v1/status", self.base),
            reason: e.to_string(),
        })
    }

    /// Submits `tx`; its id if admitted.
    pub fn submit(&self, tx: &Transaction) -> Result<Hash, ClientError> {
        let body = json!({ "transaction": hex::encode(tx.encode()) });
        let (status, answer) = self.post("/api/v1/transactions", &body)?;
        let answer = ok(status, answer)?;
        Ok(answer["id"].as_str().and_then(|id| id.parse().ok()).unwrap_or_else(|| tx.id()))
    }

    /// Submits `txs` in one request: one result per transaction, in order.
    pub fn submit_batch(&self, txs: &[Transaction]) -> Result<Vec<Result<Hash, ClientError>>, ClientError> {
        let body =
            json!({ "transactions": txs.iter().map(|tx| hex::encode(tx.encode())).collect::<Vec<_>>() });
        let (status, answer) = self.post("/api/v1/transactions/batch", &body)?;
        let answer = ok(status, answer)?;
        let results = answer["results"].as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(txs
            .iter()
            .enumerate()
            .map(|(i, tx)| match results.get(i) {
                Some(result) if result["id"].is_string() => Ok(tx.id()),
                Some(result) => Err(refused(status, &result["error"])),
                None => Err(ClientError::Malformed {
                    url: format!("{}/api/v1/transactions/batch", self.base),
                    reason: format!("no result for transaction {i}"),
                }),
            })
            .collect())
    }
}

/// The API's error object as a [`ClientError`].
fn refused(status: u16, error: &Value) -> ClientError {
    ClientError::Refused {
        status,
        code: error["code"].as_str().unwrap_or("http").to_string(),
        message: error["message"].as_str().unwrap_or("unknown error").to_string(),
    }
}

fn ok(status: u16, body: Value) -> Result<Value, ClientError> {
    match status {
        200..=299 => Ok(body),
        _ => Err(refused(status, &body["error"])),
    }
}

/// Server-sent events as they arrive: `(event name, data)` pairs; comments and other fields are
/// skipped. Ends when the stream does (or its time limit passes).
pub struct SseEvents {
    lines: std::io::BufReader<ureq::BodyReader<'static>>,
}

impl Iterator for SseEvents {
    type Item = (String, String);

    fn next(&mut self) -> Option<(String, String)> {
        use std::io::{BufRead, Read};
        let (mut name, mut data) = (String::new(), String::new());
        let mut line = String::new();
        loop {
            line.clear();
            // A line longer than an event of this API ever is ends the stream.
            match Read::take(&mut self.lines, 1 << 20).read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() || !name.is_empty() {
                    return Some((std::mem::take(&mut name), std::mem::take(&mut data)));
                }
            } else if let Some(value) = line.strip_prefix("event:") {
                name = value.trim_start().to_string();
            } else if let Some(value) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
    }
}
