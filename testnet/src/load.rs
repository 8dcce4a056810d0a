//! `goodwill bench load`: a load generator for a cluster.
//!
//! It starts a local cluster (or uses running nodes, `--target`), funds many accounts from a
//! funder key in two rounds (the funder pays hubs, the hubs pay the rest: a sender may have at
//! most 64 transactions pending), signs every transfer of a trial ahead of time, and submits them
//! at a steady rate, each account's transfers in nonce order to one node, accounts spread over the
//! nodes. A watcher follows the chain on the first node and notes when each transfer was
//! committed. The report: submitted, accepted, rejected by reason, committed, committed per
//! second, submit-to-commit latency (p50, p99) in milliseconds and slots, and each node's CPU
//! seconds and peak resident memory (from its `/metrics`). With `--find-max` it searches for the
//! highest rate the cluster sustains (95 % committed, p99 latency within 3 slots).
//!
//! Latency runs from the moment the submission was sent to the commit block's timestamp (when
//! its forger sealed it): the same clock on one machine; across machines, as good as their sync.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eyre::{bail, eyre};
use goodwill_ledger::{Address, Amount, COIN, Hash, Keypair, Payload, Transaction, TransactionBody};
use serde::Serialize;
use serde_json::{Value, json};

use goodwill_node::api_client::{ApiClient, ClientError};

use crate::cli::LoadArgs;

/// Coins each load account receives: enough for hundreds of transfers at the minimum fee.
const PER_ACCOUNT: u64 = 100 * COIN;
/// Most transactions one sender may have pending in a node's pool.
const PER_SENDER: usize = 60;
/// How long a read may take before the bench gives up on the node (status, blocks, metrics):
/// an overloaded node answers late, and a trial must not end on that.
const READ_PATIENCE: Duration = Duration::from_secs(60);
/// How long a transfer may wait for others to share its HTTP request (with --batch above 1).
const BATCH_WAIT: Duration = Duration::from_millis(20);
/// How long after a trial's last submission its transfers may still be committed.
const DRAIN_SLOTS: u64 = 10;

/// What the chain is, from the first node.
struct ChainInfo {
    chain_id: String,
    /// What every transaction is signed for.
    genesis: Hash,
    fee: Amount,
    slot_ms: u64,
    genesis_ms: u64,
}

/// A node's resource use, read from its metrics.
#[derive(Debug, Clone, Serialize)]
struct NodeUse {
    url: String,
    cpu_seconds: f64,
    peak_resident_mb: f64,
}

fn node_use(node: &ApiClient) -> eyre::Result<NodeUse> {
    let text = node.get_text("/metrics")?;
    let metric = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    Ok(NodeUse {
        url: node.base().to_string(),
        cpu_seconds: metric("goodwill_process_cpu_seconds"),
        peak_resident_mb: metric("goodwill_process_peak_resident_bytes") / 1e6,
    })
}

/// One trial's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    target_tps: u32,
    duration_s: u64,
    submitted: u64,
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    committed: u64,
    committed_tps: f64,
    latency_ms_p50: u64,
    latency_ms_p99: u64,
    latency_slots_p50: u64,
    latency_slots_p99: u64,
    /// Slots from a block's slot to the first slot the first node showed it final, over the
    /// blocks of the trial (only those that became final before it ended).
    finality_lag_slots_p50: u64,
    finality_lag_slots_p99: u64,
    /// Blocks of the trial that did not become final before it ended.
    not_final: u64,
    nodes: Vec<NodeUse>,
}

impl Trial {
    /// Whether the cluster kept up: 95 % committed, p99 within 3 slots.
    fn sustained(&self) -> bool {
        self.submitted > 0 && self.committed * 100 >= self.submitted * 95 && self.latency_slots_p99 <= 3
    }
}

/// The accounts that carry the load, with their next nonces.
struct Accounts {
    keys: Vec<Keypair>,
    nonces: Vec<u64>,
    /// Trials run so far. Each pays a higher fee than the last, so that its transfers replace
    /// any an overloaded trial left in the pools behind a nonce gap (a pool replaces a pending
    /// transaction only for a higher fee).
    trials: u64,
}

fn transfer(info: &ChainInfo, from: &Keypair, nonce: u64, to: Address, amount: Amount) -> Transaction {
    transfer_paying(info, from, nonce, to, amount, info.fee)
}

fn transfer_paying(
    info: &ChainInfo,
    from: &Keypair,
    nonce: u64,
    to: Address,
    amount: Amount,
    fee: Amount,
) -> Transaction {
    TransactionBody {
        chain_id: info.chain_id.clone(),
        sender: from.address(),
        nonce,
        fee,
        payload: Payload::Transfer { to, amount },
    }
    .sign(from, &info.genesis)
}

/// A refusal's code and message without the numbers that differ per transaction, so that
/// refusals of one kind add up.
fn refusal(error: &ClientError) -> String {
    let (code, message) = match error {
        ClientError::Refused { code, message, .. } => (code.as_str(), message.as_str()),
        ClientError::Unreachable { .. } => return format!("unreachable: {error}"),
        _ => ("http", ""),
    };
    let mut kind = String::with_capacity(message.len());
    for c in message.chars() {
        if !c.is_ascii_digit() {
            kind.push(c);
        } else if !kind.ends_with('#') {
            kind.push('#');
        }
    }
    format!("{code}: {kind}")
}

fn submit(node: &ApiClient, tx: &Transaction) -> Result<(), String> {
    node.submit(tx).map(|_| ()).map_err(|e| refusal(&e))
}

/// Submits `txs` in one request to the batch endpoint: one result per transaction.
fn submit_batch(node: &ApiClient, txs: &[Transaction]) -> Vec<Result<(), String>> {
    match node.submit_batch(txs) {
        Ok(results) => results.into_iter().map(|r| r.map(|_| ()).map_err(|e| refusal(&e))).collect(),
        Err(error) => txs.iter().map(|_| Err(refusal(&error))).collect(),
    }
}

/// Waits until every account in `senders` has used `nonces`.
fn wait_for_nonces(node: &ApiClient, senders: &[(Address, u64)], limit: Duration) -> eyre::Result<()> {
    let started = Instant::now();
    for (address, nonce) in senders {
        loop {
            let account = node.get_ok(&format!("/api/v1/accounts/{address}"))?;
            if account["nonce"].as_u64().unwrap_or(0) >= *nonce {
                break;
            }
            if started.elapsed() > limit {
                bail!("funding did not complete in {} s ({address} is behind)", limit.as_secs());
            }
            // Another process's progress: its API is the only signal.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// Funds `count` fresh accounts from `funder`: the funder pays up to 60 hubs, each hub pays its
/// share of the rest.
fn fund(node: &ApiClient, info: &ChainInfo, funder: &Keypair, count: usize) -> eyre::Result<Accounts> {
    let keys: Vec<Keypair> = (0..count).map(|_| Keypair::generate()).collect::<Result<_, _>>()?;
    let hubs = count.min(PER_SENDER);
    let per_hub = count.div_ceil(hubs);
    let funder_nonce = node.get_ok(&format!("/api/v1/accounts/{}", funder.address()))?["nonce"]
        .as_u64()
        .ok_or_else(|| eyre!("no nonce for the funder"))?;
    // What a hub passes on: its accounts' coins and the fees of paying them.
    let hub_amount = Amount((per_hub as u64) * (PER_ACCOUNT + info.fee.0));
    for (i, hub) in keys.iter().take(hubs).enumerate() {
        let tx = transfer(info, funder, funder_nonce + i as u64, hub.address(), hub_amount);
        submit(node, &tx).map_err(|e| eyre!("funding hub {i}: {e}"))?;
    }
    wait_for_nonces(node, &[(funder.address(), funder_nonce + hubs as u64)], Duration::from_secs(120))?;
    let mut nonces = vec![0u64; count];
    let mut used = Vec::new();
    for (h, hub) in keys.iter().take(hubs).enumerate() {
        let members =
            (hubs + h * (per_hub - 1)..(hubs + (h + 1) * (per_hub - 1)).min(count)).collect::<Vec<_>>();
        for member in &members {
            let tx = transfer(info, hub, nonces[h], keys[*member].address(), Amount(PER_ACCOUNT));
            submit(node, &tx).map_err(|e| eyre!("funding account {member}: {e}"))?;
            nonces[h] += 1;
        }
        used.push((hub.address(), nonces[h]));
    }
    wait_for_nonces(node, &used, Duration::from_secs(120))?;
    Ok(Accounts { keys, nonces, trials: 0 })
}

/// Measures how many signatures one core verifies per second: one by one (`batch` 1, the
/// figure the limit is defined by) or in batches of `batch`, as a node checks a submitted or
/// gossiped batch. The best of six half-second windows: on a shared host a neighbour's load
/// lowers some windows, and the limit should be what a core can do.
fn verifications_per_second(info: &ChainInfo, batch: usize) -> eyre::Result<f64> {
    let txs = (0..batch)
        .map(|_| Ok(transfer(info, &Keypair::generate()?, 0, Keypair::generate()?.address(), Amount(1))))
        .collect::<eyre::Result<Vec<_>>>()?;
    let mut best = 0f64;
    for _ in 0..6 {
        let started = Instant::now();
        let mut count = 0u64;
        while started.elapsed() < Duration::from_millis(500) {
            let valid = match batch {
                1 => txs[0].verify_signature(&info.genesis),
                _ => Transaction::verify_signatures(&info.genesis, &txs).iter().all(|ok| *ok),
            };
            if !valid {
                bail!("a valid signature did not verify");
            }
            count += batch as u64;
        }
        best = best.max(count as f64 / started.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The batch size the batched verification figure is measured with (what the load generator
/// sends per request by default).
const VERIFY_BATCH: usize = 64;

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100).min(sorted.len() - 1)]
}

/// Brings the accounts' nonces back to what the chain has committed, once the nodes' pools hold
/// nothing ready (or a while has passed): a trial that overloaded the cluster leaves transfers
/// that were refused or evicted, and their gaps would block every later one. What waits behind
/// such a gap is replaced by the next trial, which pays a higher fee.
fn resync(nodes: &[ApiClient], info: &ChainInfo, accounts: &mut Accounts) -> eyre::Result<()> {
    let started = Instant::now();
    let limit = Duration::from_millis(30 * info.slot_ms);
    while started.elapsed() < limit {
        let mut ready = 0;
        for node in nodes {
            let status = node.get_ok("/api/v1/status")?;
            let pending = status["pending_transactions"].as_u64().unwrap_or(0);
            ready += pending.saturating_sub(status["queued_transactions"].as_u64().unwrap_or(0));
        }
        if ready == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(info.slot_ms / 2));
    }
    // Each account asks the node it submits to: that node's pool judges its nonces.
    for (i, (key, nonce)) in accounts.keys.iter().zip(accounts.nonces.iter_mut()).enumerate() {
        let node = &nodes[i % nodes.len()];
        let account = node.get_ok(&format!("/api/v1/accounts/{}", key.address()))?;
        *nonce = account["nonce"].as_u64().ok_or_else(|| eyre!("no nonce for {}", key.address()))?;
    }
    Ok(())
}

/// Runs one trial at `tps` for `seconds`.
fn trial(
    nodes: &[ApiClient],
    info: &ChainInfo,
    accounts: &mut Accounts,
    tps: u32,
    seconds: u64,
    batch: usize,
) -> eyre::Result<Trial> {
    resync(nodes, info, accounts)?;
    let before: Vec<NodeUse> = nodes.iter().map(node_use).collect::<Result<_, _>>()?;
    let total = (u64::from(tps) * seconds) as usize;
    let count = accounts.keys.len();
    // Each account has a few slots' worth of its transfers pending at a time, and a pool holds
    // at most 64 per sender.
    if u64::from(tps) * 5 > (count * PER_SENDER) as u64 {
        bail!("{count} accounts cannot carry {tps} transfers per second; raise --accounts");
    }
    // Signed ahead: transfer i goes from account i mod N to the next account.
    accounts.trials += 1;
    let fee = Amount(info.fee.0 * accounts.trials);
    let mut planned: Vec<(usize, Transaction)> = Vec::with_capacity(total);
    for i in 0..total {
        let from = i % count;
        let to = accounts.keys[(from + 1) % count].address();
        let tx = transfer_paying(info, &accounts.keys[from], accounts.nonces[from], to, Amount(1), fee);
        planned.push((from, tx));
        accounts.nonces[from] += 1;
    }
    let submitted_at: Arc<Mutex<HashMap<Hash, u64>>> = Arc::new(Mutex::new(HashMap::with_capacity(total)));
    let rejected: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let head = nodes[0].status()?.head.height;

    // Workers: each owns the accounts congruent to it, so an account's transfers leave in order.
    let workers = 16.min(count);
    let start = Instant::now() + Duration::from_millis(200);
    let start_ms = goodwill_node::now_ms() + 200;
    let interval = Duration::from_secs_f64(1.0 / f64::from(tps.max(1)));
    let mut handles = Vec::new();
    let mut queues: Vec<Vec<(usize, usize, Transaction)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, (from, tx)) in planned.into_iter().enumerate() {
        queues[from % workers].push((i, from, tx));
    }
    // Accounts go to workers by `from % workers` and workers to nodes by `worker % nodes`, so an
    // account's transfers all go to one node.
    for (worker, queue) in queues.into_iter().enumerate() {
        // A client (and connection pool) of its own per worker.
        let node = ApiClient::new(nodes[worker % nodes.len()].base(), Duration::from_secs(10));
        let (submitted_at, rejected) = (submitted_at.clone(), rejected.clone());
        handles.push(std::thread::spawn(move || {
            let due = |i: usize| start + interval * i as u32;
            let mut next = 0;
            while next < queue.len() {
                // Send when `batch` transfers are due, or when the first has waited BATCH_WAIT.
                let first = due(queue[next].0);
                let full = due(queue[(next + batch - 1).min(queue.len() - 1)].0);
                let send_at = if batch > 1 { full.min(first + BATCH_WAIT) } else { first };
                if let Some(wait) = send_at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let now = Instant::now();
                let end = queue[next..]
                    .iter()
                    .take(batch)
                    .position(|(i, ..)| due(*i) > now)
                    .map_or((next + batch).min(queue.len()), |n| next + n.max(1));
                let txs: Vec<(usize, Transaction)> =
                    queue[next..end].iter().map(|(i, _, tx)| (*i, tx.clone())).collect();
                next = end;
                let results = if let [(_, tx)] = txs.as_slice() {
                    vec![submit(&node, tx)]
                } else {
                    submit_batch(&node, &txs.iter().map(|(_, tx)| tx.clone()).collect::<Vec<_>>())
                };
                for ((i, tx), result) in txs.into_iter().zip(results) {
                    // Latency counts from when the transfer was due, waiting for its batch included.
                    let due_ms = start_ms + (interval * i as u32).as_millis() as u64;
                    match result {
                        Ok(()) => {
                            submitted_at.lock().expect("not poisoned").insert(tx.id(), due_ms);
                        }
                        Err(reason) => {
                            *rejected.lock().expect("not poisoned").entry(reason).or_default() += 1
                        }
                    }
                }
            }
        }));
    }

    // The watcher: every new canonical block's transactions, with their block's time and slot.
    let mut committed: HashMap<Hash, (u64, u64)> = HashMap::new();
    // Each block's slot, by height, until the first node shows it final; then its lag.
    let mut awaiting_final: BTreeMap<u64, u64> = BTreeMap::new();
    let mut finality_lags = Vec::new();
    let mut next = head + 1;
    let end_of_submissions = start + Duration::from_secs(seconds);
    let drain = Duration::from_millis(DRAIN_SLOTS * info.slot_ms);
    loop {
        let status = nodes[0].status()?;
        let top = status.head.height;
        while let Some(entry) = awaiting_final.first_entry().filter(|e| *e.key() <= status.finalized.height) {
            finality_lags.push(status.slot.saturating_sub(entry.remove()));
        }
        while next <= top {
            let block = nodes[0].get_ok(&format!("/api/v1/blocks/{next}"))?;
            let (timestamp, slot) =
                (block["timestamp_ms"].as_u64().unwrap_or(0), block["slot"].as_u64().unwrap_or(0));
            awaiting_final.insert(next, slot);
            for tx in block["transactions"].as_array().into_iter().flatten() {
                if let Some(id) = tx["id"].as_str().and_then(|id| id.parse::<Hash>().ok()) {
                    committed.insert(id, (timestamp, slot));
                }
            }
            next += 1;
        }
        let done = handles.iter().all(|h| h.is_finished());
        let accepted = submitted_at.lock().expect("not poisoned").len();
        let all_in =
            done && submitted_at.lock().expect("not poisoned").keys().all(|id| committed.contains_key(id));
        if (done && all_in && accepted > 0) || Instant::now() > end_of_submissions + drain {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The trial's last blocks: finality trails the head by a few slots.
    let final_by = Instant::now() + drain;
    while !awaiting_final.is_empty() && Instant::now() < final_by {
        let status = nodes[0].status()?;
        while let Some(entry) = awaiting_final.first_entry().filter(|e| *e.key() <= status.finalized.height) {
            finality_lags.push(status.slot.saturating_sub(entry.remove()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for handle in handles {
        handle.join().map_err(|_| eyre!("a submitting thread panicked"))?;
    }
    let submitted_at = submitted_at.lock().expect("not poisoned").clone();
    let rejected = rejected.lock().expect("not poisoned").clone();
    let mut latency_ms = Vec::new();
    let mut latency_slots = Vec::new();
    for (id, sent) in &submitted_at {
        if let Some((timestamp, slot)) = committed.get(id) {
            latency_ms.push(timestamp.saturating_sub(*sent));
            let sent_slot = goodwill_ledger::spec::slot_at(info.genesis_ms, info.slot_ms, *sent);
            latency_slots.push(slot.saturating_sub(sent_slot));
        }
    }
    latency_ms.sort_unstable();
    latency_slots.sort_unstable();
    finality_lags.sort_unstable();
    let after: Vec<NodeUse> = nodes.iter().map(node_use).collect::<Result<_, _>>()?;
    let nodes = before
        .iter()
        .zip(after)
        .map(|(b, a)| NodeUse {
            url: a.url,
            cpu_seconds: a.cpu_seconds - b.cpu_seconds,
            peak_resident_mb: a.peak_resident_mb,
        })
        .collect();
    let committed_count = latency_ms.len() as u64;
    Ok(Trial {
        target_tps: tps,
        duration_s: seconds,
        submitted: total as u64,
        accepted: submitted_at.len() as u64,
        rejected,
        committed: committed_count,
        committed_tps: committed_count as f64 / seconds as f64,
        latency_ms_p50: percentile(&latency_ms, 50),
        latency_ms_p99: percentile(&latency_ms, 99),
        latency_slots_p50: percentile(&latency_slots, 50),
        latency_slots_p99: percentile(&latency_slots, 99),
        finality_lag_slots_p50: percentile(&finality_lags, 50),
        finality_lag_slots_p99: percentile(&finality_lags, 99),
        not_final: awaiting_final.len() as u64,
        nodes,
    })
}

fn print_trial(trial: &Trial) {
    println!(
        "target {:>6} tx/s for {} s: submitted {}, accepted {}, committed {} ({:.1} tx/s); latency p50 {} ms / {} slots, p99 {} ms / {} slots{}",
        trial.target_tps,
        trial.duration_s,
        trial.submitted,
        trial.accepted,
        trial.committed,
        trial.committed_tps,
        trial.latency_ms_p50,
        trial.latency_slots_p50,
        trial.latency_ms_p99,
        trial.latency_slots_p99,
        if trial.sustained() { "" } else { "  (not sustained)" },
    );
    println!(
        "    finality lag p50 {} slots, p99 {} slots{}",
        trial.finality_lag_slots_p50,
        trial.finality_lag_slots_p99,
        match trial.not_final {
            0 => String::new(),
            n => format!(" ({n} blocks not final by the end)"),
        }
    );
    for (reason, count) in &trial.rejected {
        println!("    rejected {count:>6}  {reason}");
    }
    for node in &trial.nodes {
        println!(
            "    {:<28} cpu {:>7.2} s   peak rss {:>6.1} MB",
            node.url, node.cpu_seconds, node.peak_resident_mb
        );
    }
}

/// Runs `goodwill bench load`.
pub fn load(args: LoadArgs) -> eyre::Result<()> {
    let mut cluster = None;
    let mut attacker = None;
    let _dir;
    let urls = if args.target.is_empty() {
        let dir = tempfile::Builder::new().prefix("goodwill-bench-load-").tempdir()?;
        let binary = std::env::current_exe()?;
        let options = crate::cluster::Options {
            nodes: usize::from(args.nodes),
            slot_ms: args.slot_ms,
            http_port: 0,
            p2p_port: 0,
            spare_forgers: usize::from(args.hostile),
        };
        let mut started =
            crate::cluster::Cluster::start(&binary, dir.path(), &options, |step| eprintln!("{step}"))?;
        started.wait_for_agreement(Duration::from_secs(120))?;
        let urls = started.nodes().map(|n| n.http.clone()).collect::<Vec<_>>();
        if args.hostile {
            attacker = Some(Attacker::start(&binary, dir.path(), usize::from(args.nodes))?);
        }
        cluster = Some(started);
        _dir = Some(dir);
        urls
    } else {
        _dir = None;
        args.target.iter().map(|u| u.trim_end_matches('/').to_string()).collect()
    };
    let nodes: Vec<ApiClient> = urls.iter().map(|url| ApiClient::new(url, READ_PATIENCE)).collect();
    let status = nodes[0].status()?;
    let info = ChainInfo {
        chain_id: status.chain_id,
        genesis: status.genesis_hash,
        fee: status.min_fee,
        slot_ms: status.slot_duration_ms,
        genesis_ms: status.genesis_time_ms,
    };
    let funder = goodwill_node::client::key(
        &args.funder,
        &info.chain_id,
        &goodwill_node::cli::default_keystore_dir(),
    )?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    eprintln!("measuring signature verification on one core...");
    let per_core = verifications_per_second(&info, 1)?;
    let per_core_batched = verifications_per_second(&info, VERIFY_BATCH)?;
    let limit = cores as f64 * per_core / urls.len() as f64;
    let batched_limit = cores as f64 * per_core_batched / urls.len() as f64;
    let accounts = args.accounts.unwrap_or_else(|| (args.tps as usize / 2).clamp(64, 3_000));
    if !(1..=PER_SENDER * PER_SENDER).contains(&accounts) {
        bail!("--accounts must be 1 to {}", PER_SENDER * PER_SENDER);
    }
    eprintln!("funding {accounts} accounts...");
    let mut funded = fund(&nodes[0], &info, &funder, accounts)?;

    let mut trials = Vec::new();
    if args.find_max {
        let (mut good, mut bad) = (0u32, None::<u32>);
        let mut tps = args.tps;
        for _ in 0..8 {
            eprintln!("trying {tps} tx/s for {} s...", args.duration);
            let result = trial(&nodes, &info, &mut funded, tps, args.duration, usize::from(args.batch))?;
            if !args.json {
                print_trial(&result);
            }
            let sustained = result.sustained();
            trials.push(result);
            if sustained {
                good = tps;
            } else {
                bad = Some(tps);
            }
            tps = match bad {
                None => tps.saturating_mul(2),
                Some(bad) if bad - good > (bad / 10).max(1) => good + (bad - good) / 2,
                Some(_) => break,
            };
        }
    } else {
        let result = trial(&nodes, &info, &mut funded, args.tps, args.duration, usize::from(args.batch))?;
        if !args.json {
            print_trial(&result);
        }
        trials.push(result);
    }
    let best = trials.iter().filter(|t| t.sustained()).map(|t| t.target_tps).max();
    let attack = attacker.take().map(Attacker::stop).transpose()?;
    let mut one_chain = None;
    if let Some(mut cluster) = cluster.take() {
        if attack.is_some() {
            // Whether the honest nodes end on one chain, now that the attacker left.
            let agreed = cluster.wait_for_agreement(Duration::from_millis(info.slot_ms * 30));
            if let Err(error) = &agreed {
                eprintln!("the honest nodes did not agree on a head: {error}");
            }
            one_chain = Some(agreed.ok().map(|(height, hash)| json!({ "height": height, "hash": hash })));
        }
        cluster.stop()?;
    }
    if args.json {
        let report = json!({
            "nodes": urls.len(),
            "cores": cores,
            "slot_ms": info.slot_ms,
            "verifications_per_second_per_core": per_core.round(),
            "batched_verifications_per_second_per_core": per_core_batched.round(),
            "limit_tps": limit.round(),
            "batched_limit_tps": batched_limit.round(),
            "trials": trials,
            "max_sustained_tps": best,
        });
        let mut report = report;
        if let Some(attack) = attack {
            report["attack"] = attack;
            report["one_chain"] = one_chain.flatten().unwrap_or(Value::Null);
        }
        println!("{report:#}");
    } else {
        println!(
            "signature verification per core: {per_core:.0}/s one by one, {per_core_batched:.0}/s in batches of \
             {VERIFY_BATCH}; limit for {} nodes on {cores} cores: {limit:.0} tx/s ({batched_limit:.0} batched)",
            urls.len()
        );
        if let Some(attack) = &attack {
            println!("the attacker's report: {attack:#}");
            match &one_chain {
                Some(Some(head)) => println!("the honest nodes ended on one chain, at {head}"),
                _ => println!("the honest nodes did NOT end on one chain"),
            }
        }
        if let Some(best) = best {
            println!(
                "highest sustained rate: {best} tx/s ({:.0} % of the limit, {:.0} % of the batched one)",
                f64::from(best) * 100.0 / limit,
                f64::from(best) * 100.0 / batched_limit
            );
        }
    }
    Ok(())
}

/// `goodwill testnet attack` running beside a bench's cluster; killed if dropped.
struct Attacker(Option<std::process::Child>);

impl Attacker {
    /// Attacks the cluster in `dir` with the key of its spare forger (the one after `nodes`).
    fn start(binary: &std::path::Path, dir: &std::path::Path, nodes: usize) -> eyre::Result<Attacker> {
        eprintln!("starting the attacker...");
        let child = std::process::Command::new(binary)
            .args(["testnet", "attack", "--dir"])
            .arg(dir)
            .arg("--key")
            .arg(dir.join(format!("forger-{nodes}.key")))
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        Ok(Attacker(Some(child)))
    }

    /// Interrupts the attacker and reads its report.
    fn stop(mut self) -> eyre::Result<Value> {
        let child = self.0.take().ok_or_else(|| eyre!("the attacker was stopped already"))?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!("the attacker failed ({})", output.status);
        }
        serde_json::from_slice(&output.stdout).map_err(|e| eyre!("the attacker's report: {e}"))
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
