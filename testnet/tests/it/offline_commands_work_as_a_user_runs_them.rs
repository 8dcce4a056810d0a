//! The `goodwill` binary's offline commands, run as a user would.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use goodwill_ledger::store::Commit;
use goodwill_ledger::testkit::{self, ChainGenerator};
use goodwill_ledger::{Address, Block, Chain, ChainSpec, Keypair, RocksStore, Store};

fn goodwill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_goodwill")).args(args).output().expect("run goodwill")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn key_generate_writes_a_private_key_file_and_prints_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forger.key");
    let output = goodwill(&["key", "generate", "--out", path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let printed: Address = stdout(&output).trim().parse().expect("prints a valid address");
    assert_eq!(Keypair::read_file(&path).unwrap().address(), printed);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let inspected = goodwill(&["key", "inspect", path.to_str().unwrap()]);
    assert_eq!(stdout(&inspected).trim(), printed.to_string());
    // A second generate to the same file must not destroy the key.
    let again = goodwill(&["key", "generate", "--out", path.to_str().unwrap()]);
    assert!(!again.status.success());
    assert_eq!(Keypair::read_file(&path).unwrap().address(), printed);
}

#[test]
fn chain_spec_build_prints_valid_specs() {
    for (chain, forgers) in [("dev", 1), ("local", 3)] {
        let output = goodwill(&["chain-spec", "build", "--chain", chain, "--forgers", &forgers.to_string()]);
        assert!(output.status.success(), "{output:?}");
        let spec = ChainSpec::from_json(&stdout(&output)).expect("a valid spec");
        assert_eq!(spec.chain_id, format!("goodwill-{chain}"));
        assert_eq!(spec.forgers.len(), forgers);
    }
}

fn store_with_blocks(base: &Path, blocks: &[Block]) {
    let store = RocksStore::open(&base.join("db")).unwrap();
    let mut chain = Chain::open(store, testkit::spec()).unwrap();
    for block in blocks {
        chain.import(block.clone()).unwrap();
    }
}

#[test]
fn ledger_verify_reports_the_head_of_a_good_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = ChainGenerator::new(4, 5);
    let blocks: Vec<Block> = (0..6).map(|_| generator.next_block(5)).collect();
    store_with_blocks(dir.path(), &blocks);
    let output = goodwill(&["ledger", "verify", "--base-path", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains(&format!("head #6 {}", blocks[5].hash())), "{text}");
    assert!(text.contains("30 transactions"), "{text}");
}

#[test]
fn ledger_verify_names_the_first_bad_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = ChainGenerator::new(4, 5);
    let blocks: Vec<Block> = (0..3).map(|_| generator.next_block(2)).collect();
    store_with_blocks(dir.path(), &blocks[..2]);
    // Write block 3 re-signed by an outsider straight into the store, bypassing validation, as
    // a damaged or tampered database would hold it.
    let mut store = RocksStore::open(&dir.path().join("db")).unwrap();
    let parent = store.header(&blocks[1].hash()).unwrap().unwrap();
    let mut applied = goodwill_ledger::execute::apply_block(
        generator.chain.store(),
        generator.chain.spec(),
        &generator.chain.genesis_hash(),
        &parent,
        blocks[2].clone(),
    )
    .unwrap();
    let outsider = Keypair::insecure_dev("outsider");
    let mut header = applied.block.header().clone();
    header.forger = outsider.address();
    applied.block.header = header.sign(&outsider, &generator.chain.genesis_hash());
    let bad_hash = applied.block.hash();
    store.commit(Commit { applied, chain_spec: None }).unwrap();
    drop(store);

    let output = goodwill(&["ledger", "verify", "--base-path", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains(&format!("bad block at height 3 ({bad_hash})")), "{text}");
    assert!(text.contains("the lottery did not pick it"), "{text}");
}

#[test]
fn ledger_verify_refuses_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = goodwill(&["ledger", "verify", "--base-path", dir.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no Goodwill database"), "{output:?}");
    assert!(!dir.path().join("db").exists(), "verify must not create a database");
}

#[test]
fn chain_names_resolve_or_say_why_not() {
    let empty = tempfile::tempdir().unwrap();
    let base = empty.path().join("base");
    let output = Command::new(env!("CARGO_BIN_EXE_goodwill"))
        .args(["node", "--chain", "local", "--base-path", base.to_str().unwrap()])
        .env("GOODWILL_TESTNET_DIR", empty.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no local cluster in") && stderr.contains("goodwill testnet up"), "{stderr}");
    assert!(!base.exists(), "a refused start leaves nothing behind");

    // Neither a spec nor a genesis hash: the error names both ways to say which chain.
    let output = goodwill(&["node", "--base-path", base.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--chain") && stderr.contains("--genesis-hash"), "{stderr}");
    assert!(!base.exists(), "a refused start leaves nothing behind");
}

#[test]
fn a_config_file_runs_a_node_with_json_logs_and_a_bad_one_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("data");
    let config = dir.path().join("goodwill.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\ndev = true\nbase-path = {:?}\nlog-format = \"json\"\nhttp = \"127.0.0.1:1\"\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    // The harness's `--http 127.0.0.1:0` overrides the file's port 1.
    let node = common::Node::spawn(&["--config".as_ref(), config.as_os_str()]);
    assert!(node.get("/api/v1/status")["chain_id"] == "goodwill-dev");
    assert!(base.join("db").is_dir(), "the file's base path is used");
    let logged =
        common::wait_until(std::time::Duration::from_secs(10), || !node.log.lock().unwrap().is_empty());
    assert!(logged);
    // Every line of the log is one JSON object with a level and its fields.
    for text in node.log.lock().unwrap().iter() {
        let line: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(line["level"].is_string() && line["fields"].is_object(), "{line}");
    }
    drop(node);

    // An unknown key: an error that names it, and no node.
    let bad = dir.path().join("bad.toml");
    let other = dir.path().join("other");
    std::fs::write(
        &bad,
        format!("dev = true\nbase-path = {:?}\nfrobnicate = 1\n", other.display().to_string()),
    )
    .unwrap();
    let output = goodwill(&["node", "--config", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown key `frobnicate`"), "{output:?}");
    assert!(!other.exists(), "a refused config created the base path");
}

#[test]
fn contract_run_keeps_a_scratch_state_between_calls() {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("splitter.star");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/contracts/splitter.star"), &code)
        .unwrap();
    let code = code.to_str().unwrap();
    let (a, b) = (Keypair::insecure_dev("a").address(), Keypair::insecure_dev("b").address());
    let members = format!(r#"[{{"{a}": 3, "{b}": 1}}]"#);
    let output = goodwill(&["contract", "run", code, "--deploy", &members]);
    assert!(output.status.success(), "{output:?}");
    // The state file keeps the members; a payment is shared 3:1.
    let output = goodwill(&["contract", "run", code, "pay", "--value", "400", "--caller", "payer"]);
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["result"][a.to_string()], 300, "{report}");
    assert_eq!(report["result"][b.to_string()], 100, "{report}");
    assert!(report["gas_used"].as_u64().unwrap() > 0);
    assert_eq!(report["transfers"].as_array().unwrap().len(), 2);
    // A failing call exits non-zero, says why, and reports its gas.
    let output = goodwill(&["contract", "run", code, "pay"]);
    assert!(!output.status.success());
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(report["error"].as_str().unwrap().contains("attach the coins"), "{report}");
    // A call with no state to run on is refused with the way out.
    let output = goodwill(&["contract", "run", code, "pay", "--state", "/nonexistent/state.json"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--deploy first"), "{output:?}");
}
