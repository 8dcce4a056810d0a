//! Live updates: the node pushes heads, finality and a transaction's progress as server-sent
//! events, and a crowd of clients holding streams open cannot take more than the node allows.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use goodwill_ledger::Keypair;
use goodwill_node::api_client::ApiClient;
use serde_json::Value;

use crate::common::{Node, wait_until};

#[test]
fn heads_finality_and_a_transaction_arrive_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"));
    let (genesis, status) = (node.genesis(), node.status());
    let dev = Keypair::insecure_dev("dev");
    let tx = goodwill_ledger::TransactionBody {
        chain_id: status["chain_id"].as_str().unwrap().into(),
        sender: dev.address(),
        nonce: node.nonce(&dev.address()),
        fee: goodwill_ledger::Amount(status["min_fee"].as_str().unwrap().parse().unwrap()),
        payload: goodwill_ledger::Payload::Transfer {
            to: Keypair::insecure_dev("dev2").address(),
            amount: goodwill_ledger::Amount(5),
        },
    }
    .sign(&dev, &genesis);
    assert_eq!(node.submit(&tx).0, 200);
    let client = ApiClient::new(&node.url, Duration::from_secs(10));
    let events = client.events(&format!("/api/v1/events?tx={}", tx.id()), Duration::from_secs(60)).unwrap();
    let (mut heights, mut statuses, mut finalized) = (Vec::new(), Vec::new(), Vec::new());
    for (name, data) in events.unwrap() {
        let data: Value = serde_json::from_str(&data).unwrap();
        match name.as_str() {
            "head" => heights.push(data["height"].as_u64().unwrap()),
            "finalized" => finalized.push(data["height"].as_u64().unwrap()),
            "tx" => {
                assert_eq!(data["id"], tx.id().to_string());
                statuses.push((data["status"].as_str().unwrap().to_string(), data["final"] == true));
                if data["final"] == true {
                    break;
                }
            }
            other => panic!("an event the API does not describe: {other}"),
        }
    }
    assert!(heights.windows(2).all(|w| w[0] < w[1]), "heads only move forward here: {heights:?}");
    assert!(finalized.windows(2).all(|w| w[0] < w[1]), "{finalized:?}");
    assert_eq!(statuses.last(), Some(&("committed".to_string(), true)), "{statuses:?}");
    assert!(statuses.windows(2).all(|w| w[0] != w[1]), "a status is sent when it changes: {statuses:?}");
    // `goodwill tx --wait-final` follows the same stream to the end.
    let waited = node.tx(&[
        "transfer",
        "--key",
        "dev",
        "--to",
        &Keypair::insecure_dev("dev2").address().to_string(),
        "--amount",
        "7",
        "--wait-final",
    ]);
    assert!(waited.contains("final (block #"), "{waited}");
}

/// Opens `GET /api/v1/events` on a raw connection; the status code once the headers arrive.
fn open_stream(address: &str) -> (TcpStream, u16) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: node\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head);
    let code = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    (stream, code)
}

#[test]
fn a_crowd_holding_event_streams_open_cannot_take_more_than_the_node_allows() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"));
    let address = node.url.trim_start_matches("http://").to_string();
    let mut open: Vec<TcpStream> = (0..goodwill_node::http::MAX_EVENT_STREAMS)
        .map(|i| {
            let (stream, code) = open_stream(&address);
            assert_eq!(code, 200, "stream {i}");
            stream
        })
        .collect();
    let (_, refused) = open_stream(&address);
    assert_eq!(refused, 503, "one stream too many");
    // The API still answers everything else.
    assert!(node.status()["head"]["height"].is_u64());
    // A client that leaves gives its stream back (noticed at the next event it would be sent).
    drop(open.pop());
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (stream, code) = open_stream(&address);
            if code == 200 {
                open.push(stream);
            }
            code == 200
        }),
        "a freed stream is taken again"
    );
}
