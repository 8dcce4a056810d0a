//! The open ledger's HTTP API against a real dev node: blocks page and agree with each other,
//! committed transactions show their block and receipt, an account's history pages newest
//! first, forgers, tickets and associations reflect a ticket purchase, and every bad path or
//! parameter is a JSON 400 or 404 that the OpenAPI description lists.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{Node, wait_until};
use goodwill_ledger::{Amount, COIN, ChainParams, Keypair, Payload, TransactionBody};
use serde_json::Value;

/// A request's status code and JSON body, whatever the status.
fn call(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("POST", Some(body)) => agent.post(url).content_type("application/json").send(body),
        ("DELETE", _) => agent.delete(url).call(),
        _ => unreachable!("{method}"),
    }
    .unwrap();
    let status = response.status().as_u16();
    (status, response.into_body().read_json().unwrap_or(Value::Null))
}

#[test]
fn the_api_shows_the_ledger_and_refuses_bad_input_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let dev = Keypair::insecure_dev("dev").address();
    let receiver = Keypair::generate().unwrap().address();
    let association = Keypair::insecure_dev("dev-association").address();
    let fee = ChainParams::default().min_fee.0;

    let mut sent = Vec::new();
    for amount in [30 * COIN, 20 * COIN, 10 * COIN] {
        sent.push((node.transfer("dev", &receiver, amount), amount));
    }

    // Each transfer: committed, in the block it names at the index it names, with its receipt.
    for (id, amount) in &sent {
        let tx = node.get(&format!("/api/v1/transactions/{id}"));
        assert_eq!(tx["status"], "committed");
        assert_eq!(tx["kind"], "transfer");
        assert_eq!(tx["sender"], dev.to_string());
        assert_eq!(tx["payload"]["to"], receiver.to_string());
        assert_eq!(tx["payload"]["amount"], amount.to_string());
        assert_eq!(tx["receipt"]["fee_paid"], fee.to_string());
        let height = tx["block"]["height"].as_u64().unwrap();
        let block = node.get(&format!("/api/v1/blocks/{height}"));
        assert_eq!(block["hash"], tx["block"]["hash"]);
        let index = tx["block"]["index"].as_u64().unwrap() as usize;
        assert_eq!(block["transactions"][index]["id"], id.as_str());
        assert_eq!(block, node.get(&format!("/api/v1/blocks/{}", block["hash"].as_str().unwrap())));
    }

    // The receiver's history, one entry per page, newest first, ends with no cursor.
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
        let page = node.get(&format!("/api/v1/accounts/{receiver}/transactions?limit=1{query}"));
        ids.extend(
            page["transactions"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(ids.len() <= sent.len(), "the history pages forever: {ids:?}");
    }
    let expected: Vec<String> = sent.iter().rev().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected);
    let account = node.get(&format!("/api/v1/accounts/{receiver}"));
    assert_eq!(account["balance"], (60 * COIN).to_string());
    assert_eq!(account["nonce"], 0);
    assert_eq!(account["is_forger"], false);

    // A batch: each transaction judged alone and in order (a sender's nonces may follow one
    // another within it), one result per entry, the admitted ones committed.
    let dev_key = Keypair::insecure_dev("dev");
    let status = node.get("/api/v1/status");
    let chain_id = status["chain_id"].as_str().unwrap().to_string();
    let genesis: goodwill_ledger::Hash = status["genesis_hash"].as_str().unwrap().parse().unwrap();
    let nonce = node.get(&format!("/api/v1/accounts/{dev}"))["nonce"].as_u64().unwrap();
    assert!(nonce >= 3, "dev sent three transfers");
    let signed = |nonce: u64, amount: u64| {
        let body = TransactionBody {
            chain_id: chain_id.clone(),
            sender: dev,
            nonce,
            fee: Amount(fee),
            payload: Payload::Transfer { to: receiver, amount: Amount(amount) },
        };
        hex::encode(body.sign(&dev_key, &genesis).encode())
    };
    let mut forged = signed(nonce + 2, COIN);
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let batch = serde_json::json!({ "transactions": [
        signed(nonce, COIN), signed(nonce + 1, 2 * COIN), "zz", forged, signed(0, COIN),
    ] });
    let (status, answer) =
        call("POST", &format!("{}/api/v1/transactions/batch", node.url), Some(&batch.to_string()));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let codes: Vec<Option<&str>> = results.iter().map(|r| r["error"]["code"].as_str()).collect();
    assert_eq!(codes, [None, None, Some("bad_hex"), Some("rejected"), Some("refused")], "{answer}");
    assert!(results[3]["error"]["message"].as_str().unwrap().contains("signature"), "{answer}");
    for result in &results[..2] {
        let id = result["id"].as_str().unwrap();
        let committed = wait_until(Duration::from_secs(30), || {
            node.get(&format!("/api/v1/transactions/{id}"))["status"] == "committed"
        });
        assert!(committed, "batched transaction {id} was not committed");
    }
    assert_eq!(node.balance(&receiver), 63 * COIN);

    // A ticket: the buyer becomes a forger with an upcoming ticket; the association receives.
    let price = 25 * COIN;
    let receiver_key = dir.path().join("receiver.key");
    let key = Keypair::generate().unwrap();
    key.write_file(&receiver_key).unwrap();
    node.tx(&[
        "transfer",
        "--key",
        "dev",
        "--to",
        &key.address().to_string(),
        "--amount",
        &(30 * COIN).to_string(),
    ]);
    node.tx(&[
        "buy-ticket",
        "--key",
        receiver_key.to_str().unwrap(),
        "--association",
        &association.to_string(),
        "--price",
        &price.to_string(),
        "--epochs",
        "2",
    ]);
    let forger = node.get(&format!("/api/v1/forgers/{}", key.address()));
    assert_eq!(forger["tickets"][0]["status"], "upcoming");
    assert_eq!(forger["tickets"][0]["weight"], price.to_string());
    let upcoming = node.get("/api/v1/tickets?status=upcoming");
    assert!(upcoming["tickets"].as_array().unwrap().iter().any(|t| t["forger"] == key.address().to_string()));
    let associations = node.get("/api/v1/associations");
    let entry = associations["associations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == association.to_string())
        .unwrap()
        .clone();
    assert_eq!(entry["received"], price.to_string());
    assert_eq!(entry, node.get(&format!("/api/v1/associations/{association}")));

    // Forgers: the dev forger made every recent block so far.
    let forgers = node.get("/api/v1/forgers?window=5");
    let dev_forger = Keypair::insecure_dev("dev").address().to_string();
    let winners = forgers["recent_winners"].as_array().unwrap();
    assert!(!winners.is_empty());
    assert!(winners.iter().all(|w| w["forger"] == dev_forger));

    // Blocks page through the chain newest first, each page continuing where the last stopped.
    let first = node.get("/api/v1/blocks?limit=2");
    let heights: Vec<u64> =
        first["blocks"].as_array().unwrap().iter().map(|b| b["height"].as_u64().unwrap()).collect();
    assert_eq!(heights.len(), 2);
    assert_eq!(heights[0], heights[1] + 1);
    let before = first["next_before"].as_u64().unwrap();
    assert_eq!(before, heights[1]);
    let second = node.get(&format!("/api/v1/blocks?limit=2&before={before}"));
    assert_eq!(second["blocks"][0]["height"], before - 1);
    assert_eq!(second["blocks"][0]["hash"], first["blocks"][1]["parent_hash"]);
    let genesis = node.get("/api/v1/blocks?before=1");
    assert_eq!(genesis["blocks"][0]["height"], 0);
    assert!(genesis["next_before"].is_null());

    // Metrics: Prometheus text with the head, the committed transactions and the CPU they cost.
    let text =
        ureq::get(&format!("{}/metrics", node.url)).call().unwrap().body_mut().read_to_string().unwrap();
    let metric = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let status = node.get("/api/v1/status");
    let head = status["head"]["height"].as_f64().unwrap();
    // Not syncing, the sync figures follow the head.
    assert_eq!(status["sync"]["syncing"], false);
    assert_eq!(status["sync"]["current"].as_f64().unwrap(), head, "{status}");
    assert!(metric("goodwill_head_height") <= head && metric("goodwill_head_height") >= 5.0, "{text}");
    assert!(metric("goodwill_committed_transactions_total") >= 5.0, "{text}");
    assert!(metric("goodwill_block_import_seconds_count") >= 5.0, "{text}");
    assert!(metric("goodwill_cpu_seconds_per_committed_transaction") > 0.0, "{text}");
    assert_eq!(metric("goodwill_pool_transactions"), 0.0, "{text}");
    assert!(text.contains("goodwill_peers{role=\"main\"} 0"), "{text}");
    assert!(text.ends_with("# EOF\n"));

    // Bad input: a JSON error with a stable code, never a 500.
    let zero = "0".repeat(64);
    let api = format!("{}/api/v1", node.url);
    let cases: &[(&str, String, Option<&str>, u16, &str)] = &[
        ("GET", format!("{api}/blocks/not-a-block"), None, 400, "bad_block_id"),
        ("GET", format!("{api}/blocks/18446744073709551616"), None, 400, "bad_block_id"),
        ("GET", format!("{api}/blocks/99999999"), None, 404, "not_found"),
        ("GET", format!("{api}/blocks/{zero}"), None, 404, "not_found"),
        ("GET", format!("{api}/blocks?limit=-1"), None, 400, "bad_query"),
        ("GET", format!("{api}/blocks?colour=blue"), None, 400, "bad_query"),
        ("GET", format!("{api}/transactions/xyz"), None, 400, "bad_hash"),
        ("GET", format!("{api}/transactions/{zero}"), None, 404, "not_found"),
        ("GET", format!("{api}/accounts/gw1nope"), None, 400, "bad_address"),
        ("GET", format!("{api}/accounts/{receiver}/transactions?cursor=7"), None, 400, "bad_cursor"),
        ("GET", format!("{api}/forgers/{receiver}"), None, 404, "not_found"),
        ("GET", format!("{api}/associations/{receiver}"), None, 404, "not_found"),
        ("GET", format!("{api}/tickets?status=someday"), None, 400, "bad_status"),
        ("GET", format!("{api}/no-such-thing"), None, 404, "no_such_endpoint"),
        ("DELETE", format!("{api}/blocks"), None, 405, "method_not_allowed"),
        ("POST", format!("{api}/transactions"), Some("{"), 400, "bad_json"),
        ("POST", format!("{api}/transactions"), Some(r#"{"transaction":"zz"}"#), 400, "bad_hex"),
        ("POST", format!("{api}/transactions"), Some(r#"{"transaction":"0a03"}"#), 400, "bad_transaction"),
        ("POST", format!("{api}/transactions/batch"), Some(r#"{"transactions":[]}"#), 400, "bad_batch"),
        ("POST", format!("{api}/transactions/batch"), Some(r#"{"transaction":"00"}"#), 400, "bad_json"),
    ];
    for (method, url, body, status, code) in cases {
        let (got, answer) = call(method, url, *body);
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{method} {url}: {answer}"
        );
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }

    // The OpenAPI description names every endpoint, and each one it names is served.
    let openapi = node.get("/api/v1/openapi.json");
    let paths = openapi["paths"].as_object().unwrap();
    for (path, _) in paths {
        if path == "/api/v1/events" {
            // A stream that never ends by itself (tests/it/live_events.rs reads it): served.
            let client = goodwill_node::api_client::ApiClient::new(&node.url, Duration::from_secs(10));
            let mut events = client.events(path, Duration::from_secs(10)).unwrap().expect("served");
            assert_eq!(events.next().unwrap().0, "head");
            continue;
        }
        let id = if path.starts_with("/api/v1/blocks") { "1" } else { sent[0].0.as_str() };
        let address = if path.starts_with("/api/v1/forgers") { dev } else { association };
        let concrete =
            path.replace("{id}", id).replace("{address}", &address.to_string()).replace("{key}", "k");
        let (status, answer) = call("GET", &format!("{}{concrete}", node.url), None);
        if path == "/api/v1/transactions" || path == "/api/v1/transactions/batch" {
            assert_eq!(status, 405, "{path} is POST only");
        } else if path.starts_with("/api/v1/contracts") {
            // Served (tests/it/contracts.rs reads real ones); this address holds no contract.
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{path}: {answer}"
            );
        } else {
            assert_eq!(status, 200, "{path}: {answer}");
        }
    }
    for (_, url, ..) in cases.iter().filter(|c| c.3 != 404 || c.4 != "no_such_endpoint") {
        let path = url.trim_start_matches(&node.url).split('?').next().unwrap();
        let templated = paths.keys().any(|p| {
            let (a, b): (Vec<_>, Vec<_>) = (p.split('/').collect(), path.split('/').collect());
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.starts_with('{') || x == y)
        });
        assert!(templated, "{path} is not described");
    }
}
