//! Sync speed of a fresh node: `bench-sync [BLOCKS] [TRANSFERS_PER_BLOCK]`.
//!
//! Builds a chain of BLOCKS blocks with TRANSFERS_PER_BLOCK transfers each, starts a node on it
//! and a fresh node that knows only the first one, and times the fresh node from its start
//! until its head reaches the chain's height. Prints blocks per second and transactions per
//! second. Runs the `goodwill` binary next to this one (build both with `--release`), or the
//! one `GOODWILL_BIN` names.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eyre::{WrapErr, bail, eyre};
use goodwill_node::api_client::ApiClient;
use goodwill_testnet::prebuilt::{self, Options};

struct Running {
    child: Child,
    url: String,
    p2p: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &std::path::Path, args: &[&std::ffi::OsStr]) -> eyre::Result<Running> {
    let mut child = Command::new(binary)
        .arg("node")
        .args(args)
        .args(["--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .wrap_err_with(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| eyre!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut p2p) = (None, None);
    while url.is_none() || p2p.is_none() {
        let line = lines.next().ok_or_else(|| eyre!("the node exited before announcing itself"))??;
        if let Some(rest) = line.strip_prefix("HTTP API listening on ") {
            url = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("P2P listening on ") {
            p2p = Some(rest.to_string());
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Running { child, url: url.unwrap_or_default(), p2p: p2p.unwrap_or_default() })
}

fn height(node: &Running) -> eyre::Result<u64> {
    Ok(ApiClient::new(&node.url, Duration::from_secs(10)).status()?.head.height)
}

fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let blocks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let transfers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let binary = match std::env::var_os("GOODWILL_BIN") {
        Some(path) => path.into(),
        None => std::env::current_exe()?.with_file_name("goodwill"),
    };
    let dir = tempfile::tempdir()?;
    let options =
        Options { forgers: 2, blocks, transfers, slot_ms: 500, slots_per_epoch: None, finality: false };
    let built_at = Instant::now();
    let built = prebuilt::build(dir.path(), &options)?;
    eprintln!("built {blocks} blocks with {} transactions in {:.1?}", built.transactions, built_at.elapsed());

    let source = start(
        &binary,
        &["--chain".as_ref(), built.spec.as_os_str(), "--base-path".as_ref(), built.base_path.as_os_str()],
    )?;
    let fresh_path = dir.path().join("fresh");
    let started = Instant::now();
    let fresh = start(
        &binary,
        &[
            "--chain".as_ref(),
            built.spec.as_os_str(),
            "--base-path".as_ref(),
            fresh_path.as_os_str(),
            "--bootnode".as_ref(),
            source.p2p.as_ref(),
        ],
    )?;
    loop {
        if height(&fresh)? >= blocks {
            break;
        }
        if started.elapsed() > Duration::from_secs(1_800) {
            bail!("the fresh node did not sync within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "synced {blocks} blocks ({transfers} transfers each) in {seconds:.2} s: {:.0} blocks/s, {:.0} transactions/s",
        blocks as f64 / seconds,
        built.transactions as f64 / seconds
    );
    drop(fresh);
    drop(source);
    Ok(())
}
