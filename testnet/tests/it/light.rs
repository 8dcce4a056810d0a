//! A light peer (`goodwill light`, a real process) against real main nodes and a lying one (a
//! libp2p swarm in this test that claims the best head and answers account queries with a made-up
//! balance): the liar is caught by its proof and dropped; transfers pushed through the light peer
//! are committed; the light peer then reads the new balance with a verified proof.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use goodwill_ledger::{Amount, ChainSpec, Keypair, Payload, TransactionBody};
use goodwill_proto::v1 as wire;
use goodwill_protocol::{BehaviourEvent, build_swarm};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, request_response};
use serde_json::Value;

use common::{GOODWILL, Node, build_spec, wait_until};

/// GETs `path` from the light peer; returns the status code and the body.
fn light_get(url: &str, path: &str) -> (u16, Value) {
    let mut response =
        ureq::get(&format!("{url}{path}")).config().http_status_as_error(false).build().call().unwrap();
    (response.status().as_u16(), response.body_mut().read_json().unwrap())
}

/// Starts `goodwill light` on `spec`, keeping its data in `base`, joining through `bootnodes`;
/// returns it and its API's URL.
fn start_light(
    spec: &std::path::Path,
    base: &std::path::Path,
    bootnodes: &[&str],
) -> (common::KillOnDrop, String) {
    let mut command = Command::new(GOODWILL);
    command.args(["light", "--http", "127.0.0.1:0", "--chain"]).arg(spec).arg("--base-path").arg(base);
    for bootnode in bootnodes {
        command.args(["--bootnode", bootnode]);
    }
    let mut light = common::KillOnDrop(command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
    let mut lines = BufReader::new(light.0.stdout.take().unwrap()).lines();
    let url = lines
        .find_map(|line| line.unwrap().strip_prefix("HTTP API listening on ").map(str::to_string))
        .unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    (light, url)
}

/// A libp2p swarm of Goodwill's behaviours listening on loopback: the liar of a test.
async fn liar_swarm() -> (libp2p::Swarm<goodwill_protocol::Behaviour>, libp2p::PeerId, libp2p::Multiaddr) {
    let mut liar = build_swarm(identity::Keypair::generate_ed25519(), false).unwrap();
    let liar_id = *liar.local_peer_id();
    liar.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = liar.select_next_some().await {
            return (liar, liar_id, address.with_p2p(liar_id).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_peer_catches_a_lying_main_node_and_reads_verified_balances() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    build_spec(&chain, 2, 500);
    let spec_path = chain.join("spec.json");
    let spec = ChainSpec::from_json(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    let genesis = goodwill_ledger::genesis(&spec).unwrap().block.hash();
    let n0 = Node::main(&spec_path, &dir.path().join("n0"), Some(&chain.join("forger-0.key")), &[]);
    let n1 = Node::main(&spec_path, &dir.path().join("n1"), Some(&chain.join("forger-1.key")), &[&n0.p2p]);

    // The liar: a main node of this chain by its status, with the highest head, whose account
    // answers state a balance it cannot prove.
    let (mut liar, liar_id, liar_address) = liar_swarm().await;
    let status = wire::Status {
        chain_id: spec.chain_id.clone(),
        genesis_hash: genesis.as_bytes().to_vec().into(),
        head_height: 1_000_000,
        head_hash: vec![7; 32].into(),
        role: wire::Role::Main as i32,
        protocol_version: goodwill_protocol::PROTOCOL_VERSION,
    };
    let lies = tokio::spawn(async move {
        let mut lies = 0u32;
        loop {
            let event = liar.select_next_some().await;
            let SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                message: request_response::Message::Request { request, channel, .. },
                ..
            })) = event
            else {
                continue;
            };
            use wire::response::Kind as Res;
            let answer = match request.kind {
                Some(wire::request::Kind::Status(_)) => Res::Status(status.clone()),
                Some(wire::request::Kind::BlocksByRange(_)) => Res::Blocks(wire::Blocks::default()),
                Some(wire::request::Kind::Account(_)) => {
                    lies += 1;
                    Res::Account(wire::AccountInfo {
                        balance: 5_000_000_000_000_000,
                        nonce: 0,
                        height: 0,
                        head_hash: genesis.as_bytes().to_vec().into(),
                        state: Default::default(),
                        proof: Default::default(),
                    })
                }
                _ => Res::Error(wire::Error { code: "unavailable".into(), message: String::new() }),
            };
            let _ =
                liar.behaviour_mut().requests.send_response(channel, wire::Response { kind: Some(answer) });
            if lies > 10 {
                return lies;
            }
        }
    });

    let liar_text = liar_address.to_string();
    let n0_p2p = n0.p2p.clone();
    let spec_arg = spec_path.clone();
    let light_dir = dir.path().join("light");
    tokio::task::spawn_blocking(move || {
        let (light, url) = start_light(&spec_arg, &light_dir, &[&n0_p2p, &liar_text]);

        // Asked for a balance, the light peer prefers the node claiming the best head: the liar.
        // Its answer fails the proof, so it is refused and the liar dropped.
        let recipient = Keypair::generate().unwrap().address();
        let account = format!("/api/v1/accounts/{recipient}");
        let caught = wait_until(Duration::from_secs(30), || {
            let (code, body) = light_get(&url, &account);
            code == 502 && body["error"]["code"] == "lying_peer"
        });
        assert!(caught, "the lie was not caught: {:?}", light_get(&url, &account));
        let (_, status) = light_get(&url, "/api/v1/status");
        assert_eq!(status["dropped_liars"][0], liar_id.to_string(), "{status}");

        // Transfers pushed through the light peer are committed by the main nodes: one posted
        // to its API, one sent by `goodwill tx --wait` (nonce and inclusion read through it).
        let dev = Keypair::insecure_dev("dev");
        let tx = TransactionBody {
            chain_id: spec.chain_id.clone(),
            sender: dev.address(),
            nonce: n0.nonce(&dev.address()),
            fee: spec.params.min_fee,
            payload: Payload::Transfer { to: recipient, amount: Amount(700) },
        }
        .sign(&dev, &genesis);
        let body = serde_json::json!({ "transaction": hex::encode(tx.encode()) });
        let mut response = ureq::post(&format!("{url}/api/v1/transactions")).send_json(&body).unwrap();
        let answer: Value = response.body_mut().read_json().unwrap();
        assert_eq!(answer["id"], tx.id().to_string(), "{answer}");
        assert!(wait_until(Duration::from_secs(30), || n1.balance(&recipient) == 700), "not committed");
        // The light peer shows it committed only once it holds the block and its accepted header.
        let path = format!("/api/v1/transactions/{}", tx.id());
        let shown = wait_until(Duration::from_secs(30), || light_get(&url, &path).1["status"] == "committed");
        assert!(shown, "{:?}", light_get(&url, &path));
        let (_, committed) = light_get(&url, &path);
        assert_eq!(committed["block"]["index"], 0, "{committed}");
        assert_eq!(
            light_get(&url, &format!("/api/v1/transactions/{}", goodwill_ledger::Hash::default())).0,
            404
        );
        let output = Command::new(GOODWILL)
            .args(["tx", "transfer", "--key", "dev", "--amount", "42", "--wait", "--node", &url, "--to"])
            .arg(recipient.to_string())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        // `--wait` through the light peer: it says committed only once it verified the block.
        assert!(String::from_utf8_lossy(&output.stdout).contains("included in block #"), "{output:?}");
        assert!(wait_until(Duration::from_secs(30), || n1.balance(&recipient) == 742), "not committed");

        // The light peer reads the new balance, proven against a header it verified.
        let read = wait_until(Duration::from_secs(30), || {
            let (code, body) = light_get(&url, &account);
            code == 200 && body["balance"] == "742"
        });
        assert!(read, "{:?}", light_get(&url, &account));
        let (_, body) = light_get(&url, &account);
        assert_ne!(body["main_node"], liar_id.to_string());
        assert!(body["proof"].as_str().unwrap().starts_with("verified"), "{body}");
        let (_, untouched) =
            light_get(&url, &format!("/api/v1/accounts/{}", Keypair::generate().unwrap().address()));
        assert_eq!(untouched["balance"], "0", "an untouched account is proven absent: {untouched}");

        drop((light, n0, n1));
    })
    .await
    .unwrap();
    lies.abort();
}

/// A block at height 1 signed by `key`, a forger of `spec`, claiming rank 0 in a slot whose
/// rank-0 draw another forger won: signature, body and slot are in order; only the lottery says
/// no.
fn block_from_a_loser(spec: &ChainSpec, key: &Keypair) -> goodwill_ledger::Block {
    let replica = goodwill_ledger::Chain::open(goodwill_ledger::MemoryStore::new(), spec.clone()).unwrap();
    let (slot, rank) = (1..1_000)
        .find_map(|slot| match replica.rank_of(&key.address(), slot).unwrap() {
            Some(rank) if rank > 0 => Some((slot, rank)),
            _ => None,
        })
        .unwrap();
    let params = &spec.params;
    let start = spec.slot_start_ms(slot).unwrap();
    let time = start
        + goodwill_ledger::lottery::rank_offset_ms(params.slot_duration_ms, params.fallback_ranks, rank);
    let honest = replica.builder(key, slot, time).unwrap().seal(key).unwrap().block;
    let mut header = honest.header().clone();
    header.rank = 0;
    header.timestamp_ms = start + 1;
    goodwill_ledger::Block { header: header.sign(key, &replica.genesis_hash()), transactions: Vec::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_peer_refuses_a_header_whose_forger_did_not_win() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    build_spec(&chain, 2, 500);
    let spec_path = chain.join("spec.json");
    let spec = ChainSpec::from_json(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    let key0 = Keypair::read_file(&chain.join("forger-0.key")).unwrap();
    let forged = block_from_a_loser(&spec, &key0);
    // Its slot must have come: a block from the future is dropped unchecked, which would prove
    // nothing about the lottery check.
    let early = forged.header().timestamp_ms.saturating_sub(goodwill_node::now_ms());
    tokio::time::sleep(Duration::from_millis(early)).await;
    let genesis = goodwill_ledger::genesis(&spec).unwrap().block.hash();
    let n0 = Node::main(&spec_path, &dir.path().join("n0"), None, &[]);
    let n0_id: libp2p::PeerId = n0.p2p.rsplit('/').next().unwrap().parse().unwrap();

    // The liar claims the best head to the light peer and serves it the forged block; it
    // passes the lottery questions on to the honest node, so the proofs themselves are true.
    let (mut liar, liar_id, liar_address) = liar_swarm().await;
    liar.dial(n0.p2p.parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let status = move |height: u64| wire::Status {
        chain_id: spec.chain_id.clone(),
        genesis_hash: genesis.as_bytes().to_vec().into(),
        head_height: height,
        head_hash: vec![7; 32].into(),
        role: wire::Role::Main as i32,
        protocol_version: goodwill_protocol::PROTOCOL_VERSION,
    };
    let proxy = tokio::spawn(async move {
        let mut relayed = std::collections::HashMap::new();
        loop {
            use wire::response::Kind as Res;
            match liar.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                })) => {
                    let answer = match request.kind {
                        // The honest node must not sync from us; the light peer should.
                        Some(wire::request::Kind::Status(_)) => {
                            Res::Status(status(if peer == n0_id { 0 } else { 1_000_000 }))
                        }
                        Some(wire::request::Kind::BlocksByRange(_)) => {
                            Res::Blocks(wire::Blocks { blocks: vec![forged.to_wire()] })
                        }
                        Some(kind @ wire::request::Kind::Lottery(_)) => {
                            let id = liar
                                .behaviour_mut()
                                .requests
                                .send_request(&n0_id, wire::Request { kind: Some(kind) });
                            relayed.insert(id, channel);
                            continue;
                        }
                        _ => Res::Error(wire::Error { code: "unavailable".into(), message: String::new() }),
                    };
                    let _ = liar
                        .behaviour_mut()
                        .requests
                        .send_response(channel, wire::Response { kind: Some(answer) });
                }
                SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) => {
                    if let Some(channel) = relayed.remove(&request_id) {
                        let _ = liar.behaviour_mut().requests.send_response(channel, response);
                    }
                }
                _ => {}
            }
        }
    });

    let liar_text = liar_address.to_string();
    tokio::task::spawn_blocking(move || {
        let dir = dir;
        let (light, url) = start_light(&spec_path, &dir.path().join("light"), &[&liar_text]);
        let dropped = wait_until(Duration::from_secs(30), || {
            light_get(&url, "/api/v1/status").1["dropped_liars"][0] == liar_id.to_string()
        });
        let (_, status) = light_get(&url, "/api/v1/status");
        assert!(dropped, "the forged header did not get the liar dropped: {status}");
        assert_eq!(status["head"]["height"], 0, "the forged header was not accepted: {status}");
        drop((light, n0));
    })
    .await
    .unwrap();
    proxy.abort();
}

/// The final block a status shows: height and hash.
fn finalized(status: &Value) -> (u64, String) {
    let finalized = &status["finalized"];
    (finalized["height"].as_u64().unwrap_or(0), finalized["hash"].as_str().unwrap_or("").to_string())
}

#[test]
fn a_light_peer_follows_finality_by_proofs_and_starts_again_from_its_last_final_block() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    let output = Command::new(GOODWILL)
        .args(["chain-spec", "build", "--chain", "local", "--forgers", "3", "--slot-ms", "400"])
        .args(["--slots-per-epoch", "4", "--out"])
        .arg(&chain)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let spec_path = chain.join("spec.json");
    let start = |i: usize, bootnodes: &[&str]| {
        let key = chain.join(format!("forger-{i}.key"));
        Node::main(&spec_path, &dir.path().join(format!("n{i}")), Some(&key), bootnodes)
    };
    let n0 = start(0, &[]);
    let nodes = [start(1, &[&n0.p2p]), start(2, &[&n0.p2p])];
    // Six epochs of four slots are final before the light peer first starts.
    let ready = wait_until(Duration::from_secs(90), || finalized(&n0.status()).0 >= 24);
    assert!(ready, "{}", n0.status());

    let light_dir = dir.path().join("light");
    let (light, url) = start_light(&spec_path, &light_dir, &[&n0.p2p]);
    let (height, _) = finalized(&n0.status());
    // Only a verified proof of finality moves a light peer's final block.
    let joined =
        wait_until(Duration::from_secs(30), || finalized(&light_get(&url, "/api/v1/status").1).0 >= height);
    let (_, status) = light_get(&url, "/api/v1/status");
    assert!(joined, "{status}");
    let (light_height, light_hash) = finalized(&status);
    let block = n0.get(&format!("/api/v1/blocks/{light_height}"));
    assert_eq!(block["hash"], light_hash, "the light peer's final block is not the chain's: {status}");

    // A transfer through the light peer, waited on until final there.
    let to = Keypair::generate().unwrap().address().to_string();
    let output = Command::new(GOODWILL)
        .args([
            "tx",
            "transfer",
            "--key",
            "dev",
            "--amount",
            "5",
            "--wait-final",
            "--node",
            &url,
            "--to",
            &to,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("final (block #"), "{output:?}");

    // Every kind of transaction through the light peer, with what each did proven against the
    // receipts root of a header it accepted: a contract deployed, a call that fails reported as
    // failed, and two tickets (the first carries the buyer's first reveal commitment, which the
    // light peer knows to add from the buyer's proven forger record, or its absence).
    let through_light = |args: &[&str]| {
        let output = Command::new(GOODWILL).args(args).args(["--node", &url, "--wait"]).output().unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    };
    let splitter = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/contracts/splitter.star");
    let members = format!(r#"[{{"{to}": 1}}]"#);
    let (deployed, text) = through_light(&["contract", "deploy", splitter, &members, "--key", "dev"]);
    assert!(deployed && text.contains("gas used"), "{text}");
    let contract = text.lines().find_map(|l| l.strip_prefix("contract ")).unwrap().trim().to_string();
    let (called, text) = through_light(&["contract", "call", &contract, "pay", "--key", "dev"]);
    assert!(!called && text.contains("attach the coins"), "a failed call must be reported as failed: {text}");
    let association = Keypair::insecure_dev("dev-association").address().to_string();
    let dev2 = Keypair::insecure_dev("dev2").address();
    assert_eq!(light_get(&url, &format!("/api/v1/forgers/{dev2}")).0, 404);
    let price = (25 * goodwill_ledger::COIN).to_string();
    for _ in 0..2 {
        let args = ["tx", "buy-ticket", "--key", "dev2", "--association", &association, "--price", &price];
        let (bought, text) = through_light(&args);
        assert!(bought, "{text}");
    }
    let (code, forger) = light_get(&url, &format!("/api/v1/forgers/{dev2}"));
    assert_eq!(code, 200, "{forger}");
    assert_eq!(forger["record"]["tickets"].as_array().unwrap().len(), 2, "{forger}");

    let kept = finalized(&light_get(&url, "/api/v1/status").1);
    drop(light);

    // Started again with no main node to reach, it stands where it stopped.
    let nobody = identity::Keypair::generate_ed25519().public().to_peer_id();
    let unreachable = format!("/ip4/127.0.0.1/tcp/9/p2p/{nobody}");
    let (light, url) = start_light(&spec_path, &light_dir, &[&unreachable]);
    let (_, status) = light_get(&url, "/api/v1/status");
    assert!(finalized(&status).0 >= kept.0, "it did not start from {kept:?}: {status}");
    assert_eq!(status["head"]["height"], kept.0, "{status}");
    drop(light);

    // A damaged file is refused with a clear error, and left as it is.
    std::fs::write(light_dir.join("anchor.pb"), b"not an anchor").unwrap();
    let output = Command::new(GOODWILL)
        .args(["light", "--http", "127.0.0.1:0", "--chain"])
        .arg(&spec_path)
        .arg("--base-path")
        .arg(&light_dir)
        .args(["--bootnode", &n0.p2p])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("anchor"), "{output:?}");
    assert_eq!(std::fs::read(light_dir.join("anchor.pb")).unwrap(), b"not an anchor");
    drop(nodes);
}
