//! `goodwill testnet up|down`: a local cluster of main nodes, each a separate process, through
//! the launcher in `goodwill-testnet`.

use std::path::Path;
use std::time::Duration;

use crate::cluster::{self, Cluster, Options};
use eyre::{WrapErr, bail};
use goodwill_ledger::Keypair;

use crate::cli::TestnetUpArgs;

/// Starts the cluster, reports it, and waits for Ctrl-C (unless detached).
pub fn up(args: TestnetUpArgs) -> eyre::Result<()> {
    let binary = std::env::current_exe().wrap_err("finding the goodwill executable")?;
    if args.fresh {
        remove_chain(&args.dir)?;
    }
    let options = Options {
        nodes: usize::from(args.nodes),
        slot_ms: args.slot_ms,
        http_port: args.http_port,
        p2p_port: args.p2p_port,
        spare_forgers: usize::from(args.spare_forgers),
    };
    let mut cluster = Cluster::start(&binary, &args.dir, &options, |step| eprintln!("testnet: {step}"))?;
    eprintln!("testnet: waiting for the nodes to agree on a head");
    let limit = Duration::from_millis((args.slot_ms * 30).max(60_000));
    let (height, hash) = cluster.wait_for_agreement(limit)?;
    print_summary(&binary, &cluster, height, &hash);
    if args.detach {
        println!(
            "\nthe cluster runs in the background; stop it with: {} testnet down --dir {}",
            binary.display(),
            args.dir.display()
        );
        cluster.detach();
        return Ok(());
    }
    println!("\nCtrl-C stops every node.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("starting the signal handler")?;
    loop {
        let interrupted = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(1), tokio::signal::ctrl_c()).await });
        if let Ok(result) = interrupted {
            result.wrap_err("waiting for Ctrl-C")?;
            break;
        }
        for (node, status) in cluster.exited() {
            eprintln!("testnet: node {} exited ({status}); its log is {}", node.index, node.log.display());
        }
    }
    eprintln!("testnet: stopping {} nodes", args.nodes);
    cluster.stop()?;
    println!(
        "stopped; the chain stays in {} (`up` continues it, `up --fresh` starts anew)",
        args.dir.display()
    );
    Ok(())
}

/// Stops a detached cluster.
pub fn down(dir: &Path) -> eyre::Result<()> {
    match cluster::down(dir)? {
        0 => println!("no cluster is running in {}", dir.display()),
        stopped => println!("stopped {stopped} nodes in {}", dir.display()),
    }
    Ok(())
}

fn print_summary(binary: &Path, cluster: &Cluster, height: u64, hash: &str) {
    println!("\nall nodes agree on block #{height} {hash}\n");
    for node in cluster.nodes() {
        println!("node {}", node.index);
        println!("  http  {}", node.http);
        println!("  p2p   {}", node.p2p);
        println!("  data  {}", node.base_path.display());
        println!("  log   {}", node.log.display());
    }
    let first = cluster.nodes().next().map(|n| n.http.clone()).unwrap_or_default();
    let to = Keypair::insecure_dev("dev2").address();
    println!("\nsend a first transaction (the dev key is funded on local chains, and public):");
    println!(
        "  {} tx transfer --key dev --to {to} --amount 1000000000 --node {first} --wait",
        binary.display()
    );
    println!("watch the chain in the explorer: {first}/ (or curl -s {first}/api/v1/status)");
    let spare = cluster.dir().join(format!("forger-{}.key", cluster.nodes().count()));
    if spare.exists() {
        println!("attack it with a spare forger's ticket, and watch the nodes carry on:");
        println!(
            "  {} testnet attack --dir {} --key {} --seconds 60",
            binary.display(),
            cluster.dir().display(),
            spare.display()
        );
    }
}

/// Deletes the chain in `dir`: the spec, the forger keys and the node folders; nothing else.
fn remove_chain(dir: &Path) -> eyre::Result<()> {
    if cluster::running(dir)?.is_some() {
        bail!("a cluster is running in {}; stop it first (goodwill testnet down --dir {0})", dir.display());
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_node =
            name.strip_prefix('n').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let is_key = name.starts_with("forger-") && name.ends_with(".key");
        let path = entry.path();
        if is_node && path.is_dir() {
            std::fs::remove_dir_all(&path).wrap_err_with(|| format!("removing {}", path.display()))?;
        } else if is_key || name == "spec.json" || name == "cluster.json" {
            std::fs::remove_file(&path).wrap_err_with(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}
