//! The web explorer end to end, in headless Chromium driven through chromedriver against a real
//! dev node: the home page lists the latest blocks; a block leads to its transaction, the
//! transaction to its recipient, whose page shows the balance; the search box finds an
//! address and explains what it cannot find; the associations page shows the donations.
//!
//! Chromium and chromedriver come from the distribution's packages (`scripts/bootstrap.sh --test`
//! installs them). Where they are missing the test says so past the harness capture and
//! returns, as the network-namespace test does.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{KillOnDrop, Node};
use fantoccini::{Client, ClientBuilder, Locator};
use goodwill_ledger::{COIN, Keypair};
use serde_json::json;

/// How long any one element may take to appear (the page refreshes every two seconds).
const PATIENCE: Duration = Duration::from_secs(30);

fn tool(variable: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// Starts chromedriver on a free loopback port and returns it with its URL, once it says it
/// listens.
fn start_chromedriver(driver: &Path) -> (KillOnDrop, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(driver)
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|line| line.contains("started successfully"));
    assert!(started, "chromedriver did not start");
    std::thread::spawn(move || lines.for_each(drop));
    (KillOnDrop(child), format!("http://127.0.0.1:{port}"))
}

async fn browser(driver_url: &str, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1200,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .unwrap()
}

/// Text of the first element matching `css`, once there is one. As for [`click`], a live page
/// may redraw it between finding and reading: find it again and retry.
async fn text(client: &Client, css: &str) -> String {
    for _ in 0..10 {
        let element = client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await.unwrap();
        if let Ok(text) = element.text().await {
            return text;
        }
    }
    panic!("could not read {css}");
}

/// Clicks the first element matching `css`. The live pages are redrawn when the head moves, so
/// an element found a moment ago may be gone: find it again and retry.
async fn click(client: &Client, css: &str) {
    for _ in 0..10 {
        let element = client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await.unwrap();
        if element.click().await.is_ok() {
            return;
        }
    }
    panic!("could not click {css}");
}

/// Waits until the page's `#view` is marked as showing `page` (a hash route).
async fn on_page(client: &Client, page: &str) {
    let css = format!("main[data-page=\"{page}\"]");
    client.wait().at_most(PATIENCE).for_element(Locator::Css(&css)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_follows_a_block_to_a_transaction_to_an_account_and_searches() {
    let (Some(chromium), Some(driver)) =
        (tool("CHROMIUM", "/usr/bin/chromium"), tool("CHROMEDRIVER", "/usr/bin/chromedriver"))
    else {
        // Past the harness's capture, so that a run without a browser says what it skipped.
        let message = "SKIPPED explorer test: no Chromium/chromedriver (run scripts/bootstrap.sh --test)\n";
        let _ = std::fs::OpenOptions::new().write(true).open("/dev/tty").map(|mut tty| {
            use std::io::Write;
            tty.write_all(message.as_bytes())
        });
        eprint!("{message}");
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"));
    let dev = Keypair::insecure_dev("dev").address();
    let receiver = Keypair::generate().unwrap().address();
    let amount = 12 * COIN + COIN / 2;
    let id = node.transfer("dev", &receiver, amount);
    let height = node.get(&format!("/api/v1/transactions/{id}"))["block"]["height"].as_u64().unwrap();

    let (_driver, driver_url) = start_chromedriver(&driver);
    let client = browser(&driver_url, &chromium, &dir.path().join("profile")).await;

    // Home: the chain's head and the latest blocks, with the transfer's block among them.
    client.goto(&node.url).await.unwrap();
    on_page(&client, "#/").await;
    assert!(text(&client, "#head-height").await.starts_with('#'));
    // Finality: the last final block, and how far the head is ahead of it.
    assert!(text(&client, "#final-height").await.starts_with('#'));
    assert!(text(&client, "#final-lag").await.contains("behind the head"));
    // The node committed our transfer: its CPU cost per transaction is shown, in ms or µs.
    let cpu = text(&client, "#cpu-per-tx").await;
    assert!(cpu.ends_with(" ms") || cpu.ends_with(" µs"), "{cpu}");
    click(&client, &format!("#latest-blocks a[href=\"#/block/{height}\"]")).await;

    // The block lists the transfer; it leads to the transaction.
    on_page(&client, &format!("#/block/{height}")).await;
    assert!(text(&client, "h1").await.contains(&format!("Block #{height}")));
    assert!(text(&client, "#block-transactions").await.contains("transfer"));
    click(&client, &format!("#block-transactions a[href=\"#/tx/{id}\"]")).await;

    // The transaction: committed in that block, the amount in coins; on to the recipient.
    on_page(&client, &format!("#/tx/{id}")).await;
    let page = text(&client, "main").await;
    assert!(page.contains("committed"), "{page}");
    assert!(page.contains(&format!("#{height}")), "{page}");
    assert!(page.contains("12.5 GW"), "{page}");
    click(&client, &format!("main a[href=\"#/account/{receiver}\"]")).await;

    // The recipient's page: its balance and the transfer in its history.
    on_page(&client, &format!("#/account/{receiver}")).await;
    assert_eq!(text(&client, "#account-address").await, receiver.to_string());
    assert_eq!(text(&client, "#account-balance").await, "12.5 GW");
    let history = text(&client, "#account-transactions").await;
    assert!(history.contains("transfer") && history.contains("in"), "{history}");

    // Search: an address opens its account...
    let input = client.wait().at_most(PATIENCE).for_element(Locator::Css("#search-input")).await.unwrap();
    input.send_keys(&dev.to_string()).await.unwrap();
    click(&client, "#search button").await;
    on_page(&client, &format!("#/account/{dev}")).await;
    assert_eq!(text(&client, "#account-address").await, dev.to_string());
    // ...a height opens its block, and nonsense is explained.
    let input = client.find(Locator::Css("#search-input")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(&height.to_string()).await.unwrap();
    click(&client, "#search button").await;
    on_page(&client, &format!("#/block/{height}")).await;
    let input = client.find(Locator::Css("#search-input")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys("not a thing").await.unwrap();
    click(&client, "#search button").await;
    assert!(text(&client, "#error").await.contains("not a height"));

    // Associations: the genesis association, eligible, in the table.
    client.goto(&format!("{}/#/associations", node.url)).await.unwrap();
    on_page(&client, "#/associations").await;
    let associations = text(&client, "#associations").await;
    assert!(
        associations.contains("Development good cause") && associations.contains("eligible"),
        "{associations}"
    );

    // A contract: its call's receipt (gas, result, events), then the contract's code and storage.
    let splitter = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/contracts/splitter.star");
    let members = format!(r#"[{{"{receiver}": 1}}]"#);
    let output = std::process::Command::new(common::GOODWILL)
        .args(["contract", "deploy", splitter, &members, "--key", "dev", "--wait", "--node", &node.url])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let contract = stdout.lines().find_map(|l| l.strip_prefix("contract ")).unwrap().trim().to_string();
    let output = std::process::Command::new(common::GOODWILL)
        .args([
            "contract", "call", &contract, "pay", "--value", "500", "--key", "dev", "--wait", "--node",
            &node.url,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let call = stdout.lines().find_map(|l| l.strip_prefix("submitted ")).unwrap().trim().to_string();
    client.goto(&format!("{}/#/tx/{call}", node.url)).await.unwrap();
    on_page(&client, &format!("#/tx/{call}")).await;
    assert!(text(&client, "#receipt-gas").await.parse::<u64>().unwrap() > 0);
    assert!(text(&client, "#receipt-result").await.contains("500"));
    assert!(text(&client, "#receipt-events").await.contains("paid"));
    click(&client, &format!("main a[href=\"#/contract/{contract}\"]")).await;
    on_page(&client, &format!("#/contract/{contract}")).await;
    assert_eq!(text(&client, "#contract-address").await, contract);
    assert_eq!(text(&client, "#contract-entries").await, "1");
    assert!(text(&client, "#contract-code").await.contains("def pay():"));
    // Its storage, read by key.
    let key = client.find(Locator::Css("#storage-key")).await.unwrap();
    key.send_keys("members").await.unwrap();
    click(&client, "#storage-form button").await;
    // The answer's element appears when the answer has come.
    let shown = text(&client, "#storage-value").await;
    assert!(shown.contains(&receiver.to_string()), "{shown}");

    client.close().await.unwrap();
}
