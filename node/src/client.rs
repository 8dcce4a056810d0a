//! `goodwill tx ...`: builds, signs and submits transactions through a node's HTTP API.

use std::time::{Duration, Instant};

use eyre::{WrapErr, bail, eyre};
use goodwill_ledger::{Address, Amount, Hash, Keypair, Payload, TransactionBody};
use serde_json::{Value, json};

use crate::api_client::ApiClient;
use crate::cli::{TxArgs, TxKind, TxOptions};

/// How long `--wait` waits for inclusion.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// Chains on which the well-known dev keys may be used.
const DEV_CHAINS: [&str; 2] = ["goodwill-dev", "goodwill-local"];

/// How long one call to a node may take.
const PATIENCE: Duration = Duration::from_secs(10);

fn error_message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("unknown error").to_string()
}

fn parse_address(text: &str) -> eyre::Result<Address> {
    text.parse().map_err(|e| eyre!("{e}"))
}

/// The key `name` names: a key file, a keystore entry, or a well-known dev key on a dev chain.
pub fn key(name: &str, chain_id: &str, keystore: &std::path::Path) -> eyre::Result<Keypair> {
    match name {
        "" => bail!(
            "--key is required: a keystore address or name, a key file, or dev / dev2 on a dev or local chain"
        ),
        "dev" | "dev2" if DEV_CHAINS.contains(&chain_id) => Ok(Keypair::insecure_dev(name)),
        "dev" | "dev2" => {
            bail!("the insecure {name} key is refused on chain {chain_id}: it is for dev and local chains")
        }
        path if std::path::Path::new(path).is_file() => Ok(Keypair::read_file(std::path::Path::new(path))?),
        which => {
            let store = crate::keystore::Keystore::new(keystore.to_path_buf());
            let entry = store.find(which)?.ok_or_else(|| {
                eyre!(
                    "--key {which}: no such key file, and no key of that address or name in {}",
                    keystore.display()
                )
            })?;
            let passphrase =
                crate::keystore::passphrase(&format!("Passphrase for {}: ", entry.address), false)?;
            store.unlock(&entry, passphrase.as_bytes())
        }
    }
}

fn header(text: &str, which: &str) -> eyre::Result<Box<goodwill_ledger::SealedHeader>> {
    use prost::Message;
    let bytes = hex::decode(text.trim()).map_err(|_| eyre!("--{which} must be hexadecimal"))?;
    let wire = goodwill_proto::v1::SignedBlockHeader::decode(bytes.as_slice())
        .map_err(|e| eyre!("--{which} is not a SignedBlockHeader protobuf: {e}"))?;
    Ok(Box::new(goodwill_ledger::SealedHeader::from_wire(wire).map_err(|e| eyre!("--{which}: {e}"))?))
}

fn vote(text: &str, which: &str) -> eyre::Result<Box<goodwill_ledger::finality::SignedVote>> {
    use prost::Message;
    let bytes = hex::decode(text.trim()).map_err(|_| eyre!("--{which} must be hexadecimal"))?;
    let wire = goodwill_proto::v1::SignedVote::decode(bytes.as_slice())
        .map_err(|e| eyre!("--{which} is not a SignedVote protobuf: {e}"))?;
    let vote =
        goodwill_ledger::finality::SignedVote::from_wire(&wire).map_err(|e| eyre!("--{which}: {e}"))?;
    Ok(Box::new(vote))
}

/// Runs `goodwill tx`.
pub fn run(args: TxArgs) -> eyre::Result<()> {
    let kind = args.kind;
    send(&args.options, |node, signer, _| {
        let sender = signer.address();
        Ok(match kind {
            TxKind::Transfer { to, amount } => {
                Payload::Transfer { to: parse_address(&to)?, amount: Amount(amount) }
            }
            TxKind::BuyTicket { association, price, epochs } => {
                let (code, _) = node.get(&format!("/api/v1/forgers/{sender}"))?;
                // A first ticket carries the commitment to the buyer's first reveal.
                let commitment = (code == 404).then(|| signer.reveal_commitment(0));
                Payload::BuyTicket {
                    association: parse_address(&association)?,
                    price: Amount(price),
                    epochs,
                    commitment,
                }
            }
            TxKind::RegisterAssociation { name, proof_url, document_hash } => Payload::RegisterAssociation {
                name,
                proof_url,
                document_hash: document_hash.parse::<Hash>().map_err(|e| eyre!("{e}"))?,
            },
            TxKind::Vote { association } => {
                Payload::VoteAssociation { association: parse_address(&association)? }
            }
            TxKind::Schedule { to, amount, every, times } => Payload::SchedulePayment {
                to: parse_address(&to)?,
                amount: Amount(amount),
                every_slots: every,
                times,
            },
            TxKind::CancelSchedule { schedule } => Payload::CancelSchedule {
                schedule: schedule.parse::<Hash>().map_err(|e| eyre!("--schedule: {e}"))?,
            },
            TxKind::ReportEquivocation { first, second } => Payload::ReportEquivocation {
                first: header(&first, "first")?,
                second: header(&second, "second")?,
            },
            TxKind::ReportVoteEquivocation { first, second } => Payload::ReportVoteEquivocation {
                first: vote(&first, "first")?,
                second: vote(&second, "second")?,
            },
        })
    })
}

/// Runs `goodwill contract deploy|call|show`.
pub fn contract(command: crate::cli::ContractCommand) -> eyre::Result<()> {
    use crate::cli::ContractCommand as C;
    match command {
        C::Deploy { file, args, gas, options } => {
            let code =
                std::fs::read_to_string(&file).wrap_err_with(|| format!("reading {}", file.display()))?;
            goodwill_ledger::contract::check_program(&code, &goodwill_ledger::contract::Limits::default())
                .map_err(|e| eyre!("{}: {e}", file.display()))?;
            send(&options, |_, signer, nonce| {
                println!(
                    "contract {}",
                    goodwill_ledger::contract::contract_address(&signer.address(), nonce)
                );
                Ok(Payload::DeployContract { code, args, gas_limit: gas })
            })
        }
        C::Call { address, function, args, value, gas, options } => {
            let contract = parse_address(&address)?;
            send(&options, |_, _, _| {
                Ok(Payload::CallContract { contract, function, args, value: Amount(value), gas_limit: gas })
            })
        }
        C::Show { address, key, node } => {
            let address = parse_address(&address)?;
            let api = ApiClient::new(&node, PATIENCE);
            let path = match &key {
                None => format!("/api/v1/contracts/{address}"),
                Some(key) => format!("/api/v1/contracts/{address}/storage/{}", percent_encode(key)),
            };
            let (code, answer) = api.get(&path)?;
            if code != 200 {
                bail!("{node} answered {code}: {}", error_message(&answer));
            }
            println!("{answer:#}");
            Ok(())
        }
        C::Run { .. } => unreachable!("run is handled offline"),
    }
}

/// `key` as one URL path segment.
fn percent_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Signs and submits the payload `build` makes (given the node, the key and the nonce), and
/// with `--wait` follows it into a block.
fn send(
    options: &TxOptions,
    build: impl FnOnce(&ApiClient, &Keypair, u64) -> eyre::Result<Payload>,
) -> eyre::Result<()> {
    let node = ApiClient::new(&options.node, PATIENCE);
    let (code, status) = node.get("/api/v1/status")?;
    if code != 200 {
        bail!("{} answered {code}: {}", options.node, error_message(&status));
    }
    let chain_id =
        status["chain_id"].as_str().ok_or_else(|| eyre!("the node did not say its chain id"))?.to_string();
    // Signed for this genesis: the transaction is valid on this chain's history and no other.
    let genesis: Hash = status["genesis_hash"]
        .as_str()
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| eyre!("the node did not say its genesis hash"))?;
    let signer = key(&options.key, &chain_id, &options.keystore)?;
    let sender = signer.address();
    let (_, account) = node.get(&format!("/api/v1/accounts/{sender}"))?;
    let nonce = account["nonce"].as_u64().ok_or_else(|| eyre!("the node did not say the sender's nonce"))?;
    let payload = build(&node, &signer, nonce)?;
    let min_fee: u64 = status["min_fee"]
        .as_str()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| eyre!("the node did not say its minimum fee"))?;
    let gas = match &payload {
        Payload::DeployContract { gas_limit, .. } | Payload::CallContract { gas_limit, .. } => *gas_limit,
        _ => 0,
    };
    let fee = Amount(options.fee.unwrap_or(min_fee.max(gas)));
    let tx = TransactionBody { chain_id, sender, nonce, fee, payload }.sign(&signer, &genesis);
    let (code, answer) =
        node.post("/api/v1/transactions", &json!({ "transaction": hex::encode(tx.encode()) }))?;
    if code != 200 {
        bail!("the node refused the transaction: {}", error_message(&answer));
    }
    println!("submitted {}", tx.id());
    if options.wait || options.wait_final {
        let answer = match follow_events(&node, tx.id(), options.wait_final)? {
            Some(answer) => answer,
            None => poll(&node, tx.id(), options.wait_final)?,
        };
        report(&answer)?;
    }
    Ok(())
}

/// Prints that a transaction is in a block, once per block it is reported in (a reorganisation
/// before finality may move it).
fn included(answer: &Value, reported: &mut Option<String>) {
    let block = &answer["block"];
    let hash = block["hash"].as_str().unwrap_or("?").to_string();
    if reported.as_ref() != Some(&hash) {
        println!("included in block #{} {hash} at index {}", block["height"], block["index"]);
        *reported = Some(hash);
    }
}

/// Follows transaction `id` on the node's event stream (`/api/v1/events?tx=ID`) until it is in
/// a block (and final, with `wait_final`): its last view. `None` if the node has no event stream
/// (a light peer): poll instead.
fn follow_events(node: &ApiClient, id: Hash, wait_final: bool) -> eyre::Result<Option<Value>> {
    let Some(events) = node.events(&format!("/api/v1/events?tx={id}"), WAIT_LIMIT)? else {
        return Ok(None);
    };
    let mut reported = None;
    for (name, data) in events {
        if name != "tx" {
            continue;
        }
        let answer: Value = serde_json::from_str(&data).wrap_err("the node sent an unreadable event")?;
        match answer["status"].as_str() {
            Some("committed") => {
                included(&answer, &mut reported);
                if !wait_final {
                    return Ok(Some(answer));
                }
                if answer["final"] == true {
                    println!(
                        "final (block #{} {})",
                        answer["block"]["height"],
                        reported.as_deref().unwrap_or("?")
                    );
                    return Ok(Some(answer));
                }
            }
            Some("unknown") => {
                bail!("the node dropped the transaction before including it (see its log for the reason)")
            }
            _ => {}
        }
    }
    match reported {
        Some(_) => bail!(
            "included but not final after {} s (finality waits for two thirds of the forgers' weight; see `finalized` in /api/v1/status)",
            WAIT_LIMIT.as_secs()
        ),
        None => bail!("not included after {} s", WAIT_LIMIT.as_secs()),
    }
}

/// [`follow_events`] for a node without an event stream: asks for the transaction (and the
/// final height) every 250 ms.
fn poll(node: &ApiClient, id: Hash, wait_final: bool) -> eyre::Result<Value> {
    let started = Instant::now();
    let mut reported = None;
    loop {
        // The final height is read before the transaction: a block at or below it that holds
        // the transaction afterwards is final (nothing there changes any more).
        let finalized = match wait_final {
            true => node.get("/api/v1/status")?.1["finalized"]["height"].as_u64().unwrap_or(0),
            false => 0,
        };
        let (code, answer) = node.get(&format!("/api/v1/transactions/{id}"))?;
        if code == 200 && answer["status"] == "committed" {
            included(&answer, &mut reported);
            let height = answer["block"]["height"].as_u64();
            if !wait_final {
                return Ok(answer);
            }
            if height.is_some_and(|height| height <= finalized) {
                println!(
                    "final (block #{} {})",
                    answer["block"]["height"],
                    reported.as_deref().unwrap_or("?")
                );
                return Ok(answer);
            }
        } else if code == 404 {
            bail!("the node dropped the transaction before including it (see its log for the reason)");
        }
        if started.elapsed() > WAIT_LIMIT {
            match reported {
                Some(_) => bail!(
                    "included but not final after {} s (finality waits for two thirds of the forgers' weight; see `finalized` in /api/v1/status)",
                    WAIT_LIMIT.as_secs()
                ),
                None => bail!("not included after {} s", WAIT_LIMIT.as_secs()),
            }
        }
        // Waiting on another process's progress with no event stream to follow: polling is the
        // only signal this node offers.
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Prints what a committed transaction did; fails if it was a contract call that failed.
fn report(answer: &Value) -> eyre::Result<()> {
    if let Some(contract) = answer["receipt"]["contract"].as_object() {
        println!("gas used {} (fee paid {})", contract["gas_used"], answer["receipt"]["fee_paid"]);
        for event in contract["events"].as_array().into_iter().flatten() {
            println!("event {} {}", event["name"].as_str().unwrap_or("?"), event["data"]);
        }
        if let Some(error) = contract["error"].as_str() {
            bail!("the contract call failed (only its fee was charged): {error}");
        }
        println!("result {}", contract["result"]);
    }
    Ok(())
}

/// Runs `goodwill account balance`.
pub fn balance(address: &str, node: &str) -> eyre::Result<()> {
    let address = parse_address(address)?;
    let (code, account) = ApiClient::new(node, PATIENCE).get(&format!("/api/v1/accounts/{address}"))?;
    if code != 200 {
        bail!("{node} answered {code}: {}", error_message(&account));
    }
    let balance: u64 = account["balance"]
        .as_str()
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| eyre!("no balance in the answer"))?;
    println!("{address}");
    println!("balance  {} ({balance} base units)", coins(balance));
    println!("nonce    {}", account["nonce"]);
    if let Some(pending) = account["pending_transactions"].as_u64().filter(|p| *p > 0) {
        println!("pending  {pending} transaction(s) in the node's pool");
    }
    if account["verified"].as_bool() == Some(true) {
        println!("verified against the state root of block #{}", account["height"]);
    }
    Ok(())
}

/// Runs `goodwill account history`.
pub fn history(address: &str, node: &str, limit: usize) -> eyre::Result<()> {
    let address = parse_address(address)?;
    let api = ApiClient::new(node, PATIENCE);
    let mut cursor: Option<String> = None;
    let mut shown = 0;
    while shown < limit {
        let page = (limit - shown).min(100);
        let query = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
        let (code, answer) =
            api.get(&format!("/api/v1/accounts/{address}/transactions?limit={page}{query}"))?;
        if code != 200 {
            bail!("{node} answered {code}: {}", error_message(&answer));
        }
        let transactions = answer["transactions"].as_array().cloned().unwrap_or_default();
        for tx in &transactions {
            let direction = if tx["sender"] == address.to_string() { "out" } else { "in " };
            let amount = tx["payload"]["amount"].as_str().or(tx["payload"]["price"].as_str());
            let amount = amount.and_then(|a| a.parse().ok()).map(coins).unwrap_or_default();
            println!(
                "#{:<8} {} {direction} {:<20} {:>22}  {}",
                tx["block"]["height"],
                tx["id"].as_str().unwrap_or("?"),
                tx["kind"].as_str().unwrap_or("?"),
                amount,
                tx["sender"].as_str().unwrap_or("?"),
            );
        }
        shown += transactions.len();
        match answer["next_cursor"].as_str() {
            Some(next) if !transactions.is_empty() => cursor = Some(next.to_string()),
            _ => break,
        }
    }
    if shown == 0 {
        println!("no committed transactions for {address}");
    }
    Ok(())
}

/// Base units as coins, without trailing zeros.
fn coins(units: u64) -> String {
    let (whole, fraction) = (units / goodwill_ledger::COIN, units % goodwill_ledger::COIN);
    let fraction = format!("{fraction:09}");
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() { format!("{whole} GW") } else { format!("{whole}.{fraction} GW") }
}
