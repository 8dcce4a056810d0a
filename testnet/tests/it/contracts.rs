//! Contracts on a running dev node, the way a user drives them: `goodwill contract deploy`,
//! `call` and `show`, with `--wait`; the API's contract, storage and receipt views.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::{Command, Output};

use common::{GOODWILL, Node};
use goodwill_ledger::Keypair;

fn contract(node: &Node, args: &[&str]) -> Output {
    Command::new(GOODWILL).arg("contract").args(args).args(["--node", &node.url]).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn a_splitter_is_deployed_called_and_shown_through_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/contracts/splitter.star");
    let (a, b) = (Keypair::generate().unwrap().address(), Keypair::generate().unwrap().address());
    let members = format!(r#"[{{"{a}": 3, "{b}": 1}}]"#);

    let output = contract(&node, &["deploy", file, &members, "--key", "dev", "--wait"]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let address = stdout.lines().find_map(|l| l.strip_prefix("contract ")).unwrap().trim().to_string();
    assert!(stdout.contains("gas used"), "{stdout}");

    let output = contract(&node, &["call", &address, "pay", "--value", "4000", "--key", "dev", "--wait"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("event paid"), "{}", text(&output));
    assert_eq!((node.balance(&a), node.balance(&b)), (3_000, 1_000));

    // The contract, one storage entry, and the call's receipt, through the API.
    let shown = node.get(&format!("/api/v1/contracts/{address}"));
    assert_eq!(shown["creator"], Keypair::insecure_dev("dev").address().to_string());
    assert_eq!(shown["storage_entries"], 1);
    assert_eq!(shown["balance"], "0");
    assert!(shown["code"].as_str().unwrap().contains("def pay():"));
    let entry = node.get(&format!("/api/v1/contracts/{address}/storage/members"));
    assert_eq!(entry["value"][a.to_string()], 3);
    let history = node.get(&format!("/api/v1/accounts/{address}/transactions?limit=1"));
    let call = &history["transactions"][0];
    assert_eq!(call["kind"], "call_contract");
    let receipt = &node.get(&format!("/api/v1/transactions/{}", call["id"].as_str().unwrap()))["receipt"];
    assert_eq!(receipt["contract"]["succeeded"], true, "{receipt}");
    assert_eq!(receipt["contract"]["result"][b.to_string()], 1_000);
    let gas = receipt["contract"]["gas_used"].as_u64().unwrap();
    assert_eq!(receipt["fee_paid"], gas.to_string(), "a gas price of 1 by default: {receipt}");

    // A failing call: the CLI says so and exits non-zero; the receipt shows only a fee taken.
    let output = contract(&node, &["call", &address, "pay", "--key", "dev", "--wait"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("attach the coins"), "{}", text(&output));
    let history = node.get(&format!("/api/v1/accounts/{address}/transactions?limit=1"));
    let failed =
        &node.get(&format!("/api/v1/transactions/{}", history["transactions"][0]["id"].as_str().unwrap()));
    assert_eq!(failed["receipt"]["contract"]["succeeded"], false, "{failed}");
    assert!(failed["receipt"]["contract"]["error"].as_str().unwrap().contains("attach the coins"));
    let fee: u64 = failed["receipt"]["fee_paid"].as_str().unwrap().parse().unwrap();
    assert!(fee > 0 && fee < 200_000, "the default gas limit is 200,000; charged {fee}");
    assert_eq!(node.get(&format!("/api/v1/contracts/{address}"))["balance"], "0");

    let output = contract(&node, &["show", &address]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"storage_entries\": 1"));
    let output = contract(&node, &["show", &address, "no-such-key"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("no storage entry"), "{}", text(&output));
}

#[test]
fn a_standing_order_pays_on_its_slots_until_done() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let payee = Keypair::generate().unwrap().address();
    let to = payee.to_string();
    let output = node
        .tx(&["schedule", "--key", "dev", "--to", &to, "--amount", "250", "--every", "2", "--times", "2"]);
    let id = output.lines().find_map(|l| l.strip_prefix("submitted ")).unwrap().trim().to_string();
    // `--wait` returns once the block is in; the first payment is due two slots after it.
    let listed = node.get("/api/v1/schedules");
    let schedule = listed["schedules"].as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).cloned();
    let schedule = schedule.unwrap_or_else(|| panic!("{id} is not listed: {listed}"));
    assert_eq!(schedule["to"], to);
    assert_eq!(schedule["amount"], "250");
    assert_eq!(schedule["remaining"], 2);
    let done = common::wait_until(std::time::Duration::from_secs(60), || {
        node.balance(&payee) == 500
            && node.get("/api/v1/schedules")["schedules"].as_array().unwrap().is_empty()
    });
    assert!(done, "balance {} after the schedule", node.balance(&payee));
    let tx = node.get(&format!("/api/v1/transactions/{id}"));
    assert_eq!(tx["kind"], "schedule_payment");
    assert_eq!(tx["payload"]["every_slots"], 2);
}
