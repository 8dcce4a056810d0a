//! A light peer joining a long chain: `bench-light [BLOCKS] [FORGERS]` (default 100,000 blocks,
//! 4 forgers, 30-slot epochs).
//!
//! Builds a chain of BLOCKS empty blocks on which every forger voted in every slot (so that it
//! stores a proof of finality per epoch), starts a main node on it that forges nothing, then a
//! light peer that knows only that node and genesis. Times the light peer from its start until
//! its final block is the chain's, reads its memory (`VmHWM`, `VmRSS` from `/proc`), and times a
//! restart from the final block it kept. Runs the `goodwill` binary next to this one (build both
//! with `--release`), or the one `GOODWILL_BIN` names; the light peer runs as `goodwill light`,
//! or as the binary `LIGHT_BIN` names (`goodwill-light`, the light peer alone).

use std::time::{Duration, Instant};

use eyre::{bail, eyre};
use goodwill_ledger::StatePruning;
use goodwill_node::api_client::ApiClient;
use goodwill_testnet::prebuilt::{self, Options};
use goodwill_testnet::process::{Running, goodwill_binary, start, start_program};

/// The final height a node's status shows.
fn finalized(node: &Running) -> eyre::Result<u64> {
    let status = ApiClient::new(&node.url, Duration::from_secs(10)).get_ok("/api/v1/status")?;
    Ok(status["finalized"]["height"].as_u64().unwrap_or(0))
}

/// Waits until `node`'s final height is `height`; returns how long it took from `since`.
fn wait_final(node: &Running, height: u64, since: Instant) -> eyre::Result<Duration> {
    loop {
        if finalized(node)? >= height {
            return Ok(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(600) {
            bail!("the light peer did not reach the final block within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A process's memory from `/proc/PID/status`, in MiB: the peak and current resident set, and
/// the current one split into anonymous memory (what the process allocated) and file pages (the
/// binary's code the kernel mapped in, shared with the page cache and reclaimable).
struct Memory {
    peak: f64,
    resident: f64,
    anonymous: f64,
    file: f64,
}

impl Memory {
    fn read(pid: u32) -> eyre::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> eyre::Result<f64> {
            let line = status.lines().find(|l| l.starts_with(name)).ok_or_else(|| eyre!("no {name}"))?;
            let kib: f64 = line.split_whitespace().nth(1).ok_or_else(|| eyre!("{line}"))?.parse()?;
            Ok(kib / 1024.0)
        };
        Ok(Memory {
            peak: field("VmHWM:")?,
            resident: field("VmRSS:")?,
            anonymous: field("RssAnon:")?,
            file: field("RssFile:")?,
        })
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peak {:.1} MiB, resident {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB of the binary's pages)",
            self.peak, self.resident, self.anonymous, self.file
        )
    }
}

fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let blocks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let forgers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let binary = goodwill_binary()?;
    let dir = tempfile::tempdir()?;
    let options = Options {
        forgers,
        blocks,
        transfers: 0,
        slot_ms: 1_000,
        slots_per_epoch: None,
        finality: true,
        recipients: 0,
        pruning: StatePruning::Archive,
    };
    let built_at = Instant::now();
    let built = prebuilt::build(dir.path(), &options)?;
    eprintln!("built {blocks} blocks, final as they grew, in {:.1?}", built_at.elapsed());

    let main = start(
        &binary,
        "node",
        &["--chain".as_ref(), built.spec.as_os_str(), "--base-path".as_ref(), built.base_path.as_os_str()],
    )?;
    let height = finalized(&main)?;
    let light_path = dir.path().join("light");
    let light_args: Vec<&std::ffi::OsStr> = vec![
        "--chain".as_ref(),
        built.spec.as_os_str(),
        "--base-path".as_ref(),
        light_path.as_os_str(),
        "--bootnode".as_ref(),
        main.p2p.as_ref(),
    ];
    // `goodwill light`, or the light peer's own binary if LIGHT_BIN names it.
    let light_binary = std::env::var_os("LIGHT_BIN").map(std::path::PathBuf::from);
    let start_light = |args: &[&std::ffi::OsStr]| match &light_binary {
        Some(light) => start_program(light, None, false, args),
        None => start(&binary, "light", args),
    };
    let started = Instant::now();
    let light = start_light(&light_args)?;
    let joined = wait_final(&light, height, started)?;
    let at_join = Memory::read(light.child.id())?;
    std::thread::sleep(Duration::from_secs(10));
    let later = Memory::read(light.child.id())?;
    drop(light);
    let restarted_at = Instant::now();
    let light = start_light(&light_args)?;
    let restarted = wait_final(&light, height, restarted_at)?;
    println!(
        "light peer joined {blocks} blocks (final height {height}, {forgers} forgers) in {:.2} s; \
         restarted at its final block in {:.2} s\nmemory at join: {at_join}\nmemory 10 s later: {later}",
        joined.as_secs_f64(),
        restarted.as_secs_f64()
    );
    drop(light);
    drop(main);
    Ok(())
}
