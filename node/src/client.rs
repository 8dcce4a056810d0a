//! `goodwill tx ...`: builds, signs and submits transactions through a node's HTTP API.

use std::time::{Duration, Instant};

use eyre::{WrapErr, bail, eyre};
use goodwill_ledger::{Address, Amount, Hash, Keypair, Payload, TransactionBody};
use serde_json::{Value, json};

use crate::cli::{TxArgs, TxKind};

/// How long `--wait` waits for inclusion.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// Chains on which the well-known dev keys may be used.
const DEV_CHAINS: [&str; 2] = ["goodwill-dev", "goodwill-local"];

struct Node {
    base: String,
    agent: ureq::Agent,
}

impl Node {
    fn new(base: &str) -> Node {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        Node { base: base.trim_end_matches('/').to_string(), agent: config.into() }
    }

    fn get(&self, path: &str) -> eyre::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut response = self.agent.get(&url).call().wrap_err_with(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        Ok((status, response.body_mut().read_json().wrap_err("the node's answer is not JSON")?))
    }

    fn post(&self, path: &str, body: &Value) -> eyre::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut response =
            self.agent.post(&url).send_json(body).wrap_err_with(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        Ok((status, response.body_mut().read_json().wrap_err("the node's answer is not JSON")?))
    }
}

fn error_message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("unknown error").to_string()
}

fn parse_address(text: &str) -> eyre::Result<Address> {
    text.parse().map_err(|e| eyre!("{e}"))
}

fn key(name: &str, chain_id: &str) -> eyre::Result<Keypair> {
    match name {
        "" => bail!("--key is required: a key file, or dev / dev2 on a dev or local chain"),
        "dev" | "dev2" if DEV_CHAINS.contains(&chain_id) => Ok(Keypair::insecure_dev(name)),
        "dev" | "dev2" => {
            bail!("the insecure {name} key is refused on chain {chain_id}: it is for dev and local chains")
        }
        path => Ok(Keypair::read_file(std::path::Path::new(path))?),
    }
}

/// Runs `goodwill tx`.
pub fn run(args: TxArgs) -> eyre::Result<()> {
    let node = Node::new(&args.node);
    let (code, status) = node.get("/api/v1/status")?;
    if code != 200 {
        bail!("{} answered {code}: {}", args.node, error_message(&status));
    }
    let chain_id =
        status["chain_id"].as_str().ok_or_else(|| eyre!("the node did not say its chain id"))?.to_string();
    let signer = key(&args.key, &chain_id)?;
    let sender = signer.address();
    let (_, account) = node.get(&format!("/api/v1/accounts/{sender}"))?;
    let nonce = account["nonce"].as_u64().ok_or_else(|| eyre!("the node did not say the sender's nonce"))?;
    let payload = match args.kind {
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
    };
    let min_fee = status["min_fee"]
        .as_str()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| eyre!("the node did not say its minimum fee"))?;
    let fee = Amount(args.fee.unwrap_or(min_fee));
    let tx = TransactionBody { chain_id, sender, nonce, fee, payload }.sign(&signer);
    let (code, answer) =
        node.post("/api/v1/transactions", &json!({ "transaction": hex::encode(tx.encode()) }))?;
    if code != 200 {
        bail!("the node refused the transaction: {}", error_message(&answer));
    }
    println!("submitted {}", tx.id());
    if args.wait {
        let started = Instant::now();
        loop {
            let (code, answer) = node.get(&format!("/api/v1/transactions/{}", tx.id()))?;
            if code == 200 && answer["status"] == "committed" {
                let block = &answer["block"];
                println!(
                    "included in block #{} {} at index {}",
                    block["height"],
                    block["hash"].as_str().unwrap_or("?"),
                    block["index"]
                );
                break;
            }
            if code == 404 {
                bail!("the node dropped the transaction before including it (see its log for the reason)");
            }
            if started.elapsed() > WAIT_LIMIT {
                bail!("not included after {} s", WAIT_LIMIT.as_secs());
            }
            // Waiting on another process's progress: polling is the only signal the API offers.
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(())
}
