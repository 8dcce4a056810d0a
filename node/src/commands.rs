//! What each command does.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use eyre::{WrapErr, bail, eyre};
use goodwill_ledger::{
    Address, Chain, ChainSpec, Keypair, MemoryStore, RocksStore, Store, chain::stored_state_root,
};
use serde_json::json;

use crate::cli::{
    AccountCommand, BuiltinChain, ChainSpecBuildArgs, ChainSpecCommand, Command, KeyArgs, KeyCommand,
    LedgerCommand, NodeArgs,
};
use crate::keystore::{KdfParams, Keystore, passphrase};

/// Runs a parsed command.
pub fn run(command: Command) -> eyre::Result<()> {
    match command {
        Command::Key(args) => key_command(args),
        Command::Contract(
            command @ (crate::cli::ContractCommand::Deploy { .. }
            | crate::cli::ContractCommand::Call { .. }
            | crate::cli::ContractCommand::Show { .. }),
        ) => crate::client::contract(command),
        Command::Contract(crate::cli::ContractCommand::Run {
            file,
            call,
            deploy,
            state,
            caller,
            value,
            gas,
            height,
        }) => contract_run(&ContractRun { file, call, deploy, state, caller, value, gas, height }),
        Command::Account(AccountCommand::Balance { address, node }) => {
            crate::client::balance(&address, &node)
        }
        Command::Account(AccountCommand::History { address, node, limit }) => {
            crate::client::history(&address, &node, limit)
        }
        Command::ChainSpec(ChainSpecCommand::Build(args)) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
            let mut spec = match args.chain {
                BuiltinChain::Dev => ChainSpec::dev(now),
                BuiltinChain::Local => ChainSpec::local(now, args.forgers as usize),
                BuiltinChain::Public => return build_public_spec(&args, now),
            };
            if let Some(slot_ms) = args.slot_ms {
                spec.params.slot_duration_ms = slot_ms;
            }
            if let Some(slots) = args.slots_per_epoch {
                spec.params.slots_per_epoch = slots;
            }
            spec.validate()?;
            match args.out {
                None => println!("{}", spec.to_json()),
                Some(dir) => write_spec_with_keys(&mut spec, &dir)?,
            }
            Ok(())
        }
        Command::Ledger(LedgerCommand::Verify { base_path }) => ledger_verify(&base_path),
        Command::Node(args) => node(args),
        Command::Light(args) => crate::light::start(args),
        Command::Tx(args) => crate::client::run(args),
    }
}

fn node(args: NodeArgs) -> eyre::Result<()> {
    let (pruning, state_sync) = (args.pruning(), args.sync == crate::cli::SyncMode::State);
    let (spec, forger_key, base_path, _temporary) = if args.dev {
        let (base_path, temporary) = match args.base_path {
            Some(path) => (path, None),
            None => {
                let dir = tempfile::Builder::new().prefix("goodwill-dev-").tempdir()?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let spec = match stored_spec(&base_path)? {
            // A kept development chain continues.
            Some(spec) => spec,
            None => {
                // Genesis at the start of the current slot, so the first block comes at once.
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
                ChainSpec::dev(now - now % goodwill_ledger::ChainParams::default().slot_duration_ms)
            }
        };
        tracing::warn!(
            base_path = %base_path.display(),
            "development chain: the dev and dev2 keys are public and insecure"
        );
        (spec, Some(Keypair::insecure_dev("dev")), base_path, temporary)
    } else {
        let base_path = args.base_path.ok_or_else(|| eyre!("--base-path is required without --dev"))?;
        let spec = match (&args.chain, args.genesis_hash) {
            (Some(chain), expected) => crate::config::load_checked_chain_spec(chain, expected)?,
            // A node that joined this way before starts from the spec its database keeps.
            (None, Some(expected)) => match stored_spec(&base_path)? {
                Some(spec) => {
                    crate::config::check_genesis(&spec, expected)?;
                    spec
                }
                None => {
                    let (spec, json) = crate::config::fetch_chain_spec(&args.network.bootnodes, expected)?;
                    std::fs::create_dir_all(&base_path)
                        .wrap_err_with(|| format!("creating the base path {}", base_path.display()))?;
                    let path = base_path.join("chain-spec.json");
                    std::fs::write(&path, json).wrap_err_with(|| format!("writing {}", path.display()))?;
                    spec
                }
            },
            (None, None) => bail!("--chain, or --genesis-hash with --bootnode, is required without --dev"),
        };
        let key = args.forger_key.as_deref().map(Keypair::read_file).transpose()?;
        (spec, key, base_path, None)
    };
    let listen = match (args.network.listen.is_empty(), args.dev) {
        (false, _) => args.network.listen,
        (true, true) => vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        (true, false) => vec!["/ip4/0.0.0.0/tcp/30333".parse()?, "/ip4/0.0.0.0/udp/30333/quic-v1".parse()?],
    };
    let mut bootnodes = args.network.bootnodes;
    for text in &spec.bootnodes {
        match text.parse() {
            Ok(address) => bootnodes.push(address),
            Err(error) => {
                tracing::warn!(bootnode = %text, %error, "ignoring a malformed bootnode in the chain spec")
            }
        }
    }
    let min_fee = match args.min_fee.map(goodwill_ledger::Amount) {
        Some(fee) if fee < spec.params.min_fee => {
            eyre::bail!("--min-fee {fee} is below the chain's minimum fee of {}", spec.params.min_fee)
        }
        Some(fee) => fee,
        None => spec.params.min_fee,
    };
    crate::run::run(crate::run::NodeConfig {
        min_fee,
        min_gas_price: args.min_gas_price,
        pruning,
        state_sync,
        spec,
        base_path,
        forger_key,
        http: args.http.address_or(crate::cli::DEFAULT_NODE_HTTP),
        http_limits: args.http.limits(),
        listen,
        public_addrs: args.network.public_addrs,
        bootnodes,
        mdns: args.network.mdns,
    })
}

/// The chain spec stored in the database under `base_path`, if there is a database.
fn stored_spec(base_path: &Path) -> eyre::Result<Option<ChainSpec>> {
    let db = base_path.join("db");
    if !db.exists() {
        return Ok(None);
    }
    let store = RocksStore::open_existing(&db)?;
    let Some(text) = store.chain_spec()? else { return Ok(None) };
    Ok(Some(
        ChainSpec::from_json(&text).wrap_err_with(|| format!("the chain spec stored in {}", db.display()))?,
    ))
}

/// Replaces the spec's well-known forger keys by fresh ones, written next to the spec.
/// `goodwill chain-spec build --chain public`: a network nobody knows the keys of but its
/// operators. Every key is new and written into `--out` (a new or empty folder, so that no key of
/// an earlier network is mixed in); the spec names the bootnodes by DNS, with the peer ids of
/// their new network keys.
fn build_public_spec(args: &ChainSpecBuildArgs, now_ms: u64) -> eyre::Result<()> {
    use goodwill_ledger::{Amount, GenesisAssociation, GenesisBalance, GenesisForger};

    let dir = args.out.as_deref().ok_or_else(|| eyre!("--chain public writes new keys: give --out DIR"))?;
    let name = args.name.clone().ok_or_else(|| eyre!("--chain public needs --name"))?;
    let chain_id = args.chain_id.clone().ok_or_else(|| eyre!("--chain public needs --chain-id"))?;
    if args.bootnode_hosts.is_empty() {
        bail!("--chain public needs a --bootnode-host: joining nodes find the network through it");
    }
    let bootnode_hosts = args
        .bootnode_hosts
        .iter()
        .map(|host| host_protocol(host).map(|protocol| (protocol, host.as_str())))
        .collect::<eyre::Result<Vec<_>>>()?;
    let associations = args
        .associations
        .iter()
        .map(|entry| {
            let (name, address) =
                entry.split_once('=').ok_or_else(|| eyre!("--association {entry:?} is not NAME=ADDRESS"))?;
            let address: Address =
                address.trim().parse().map_err(|e| eyre!("--association {entry:?}: {e}"))?;
            Ok(GenesisAssociation { name: name.trim().to_owned(), address })
        })
        .collect::<eyre::Result<Vec<_>>>()?;
    let params = goodwill_ledger::ChainParams {
        slot_duration_ms: args.slot_ms.unwrap_or(goodwill_ledger::ChainParams::default().slot_duration_ms),
        slots_per_epoch: args
            .slots_per_epoch
            .unwrap_or(goodwill_ledger::ChainParams::default().slots_per_epoch),
        ..Default::default()
    };
    let genesis_time_ms = match args.genesis_time {
        Some(seconds) => seconds.checked_mul(1_000).ok_or_else(|| eyre!("--genesis-time is too far away"))?,
        None => now_ms - now_ms % params.slot_duration_ms,
    };
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty: a new network's keys go into a new or empty folder", dir.display());
    }

    // Every key is made, and the spec checked, before anything is written.
    let forger_keys = (0..args.forgers).map(|_| Keypair::generate()).collect::<Result<Vec<_>, _>>()?;
    let faucet = if args.faucet_coins > 0 { Some(Keypair::generate()?) } else { None };
    let mut balances: Vec<_> = forger_keys
        .iter()
        .filter(|_| args.forger_coins > 0)
        .map(|key| GenesisBalance { address: key.address(), balance: Amount::coins(args.forger_coins) })
        .collect();
    balances.extend(
        faucet
            .iter()
            .map(|key| GenesisBalance { address: key.address(), balance: Amount::coins(args.faucet_coins) }),
    );
    let network_keys: Vec<_> =
        bootnode_hosts.iter().map(|_| libp2p::identity::Keypair::generate_ed25519()).collect();
    let bootnodes = bootnode_hosts
        .iter()
        .zip(&network_keys)
        .map(|((protocol, host), key)| {
            format!("/{protocol}/{host}/tcp/{}/p2p/{}", args.p2p_port, key.public().to_peer_id())
        })
        .collect();
    let spec = ChainSpec {
        name,
        chain_id,
        genesis_time_ms,
        params,
        balances,
        forgers: forger_keys.iter().map(|key| GenesisForger::for_key(key, Amount::coins(1_000))).collect(),
        associations,
        bootnodes,
        pool: Default::default(),
    };
    spec.validate()?;
    let genesis = goodwill_ledger::genesis(&spec)?.block.hash();

    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    for (i, key) in forger_keys.iter().enumerate() {
        let path = dir.join(format!("forger-{i}.key"));
        key.write_file(&path)?;
        println!("{}  {}", path.display(), key.address());
    }
    if let Some(key) = &faucet {
        let path = dir.join("faucet.key");
        key.write_file(&path)?;
        println!("{}  {}", path.display(), key.address());
    }
    for (i, key) in network_keys.iter().enumerate() {
        let path = dir.join(format!("bootnode-{i}.network.key"));
        crate::network::write_identity(key, &path)?;
        println!("{}  {}", path.display(), key.public().to_peer_id());
    }
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_json() + "\n")
        .wrap_err_with(|| format!("writing {}", spec_path.display()))?;
    println!("{}", spec_path.display());
    println!("genesis hash {genesis}");
    Ok(())
}

/// The multiaddr protocol naming `host`: `ip4`/`ip6` for an address, `dns` for a name.
fn host_protocol(host: &str) -> eyre::Result<&'static str> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(if ip.is_ipv4() { "ip4" } else { "ip6" });
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        bail!("--bootnode-host {host:?} is neither an IP address nor a DNS name");
    }
    // Either address family: the name's records say which the bootnode has.
    Ok("dns")
}

fn write_spec_with_keys(spec: &mut ChainSpec, dir: &Path) -> eyre::Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    let spec_path = dir.join("spec.json");
    if spec_path.exists() {
        bail!("{} exists already; choose another folder", spec_path.display());
    }
    for (path, key) in spec.replace_forgers(dir)? {
        println!("{} {}", path.display(), key.address());
    }
    spec.validate()?;
    std::fs::write(&spec_path, spec.to_json() + "\n")
        .wrap_err_with(|| format!("writing {}", spec_path.display()))?;
    println!("{}", spec_path.display());
    Ok(())
}

fn key_command(args: KeyArgs) -> eyre::Result<()> {
    let store = Keystore::new(args.keystore);
    match args.command {
        KeyCommand::Generate { out } => key_generate(out.as_deref()),
        KeyCommand::Inspect { file } => {
            let key = Keypair::read_file(&file)?;
            println!("{}", key.address());
            Ok(())
        }
        KeyCommand::New { name } => {
            let key = Keypair::generate()?;
            let passphrase = passphrase("Passphrase for the new key: ", true)?;
            let path = store.add(&key, name.as_deref(), passphrase.as_bytes(), KdfParams::default())?;
            eprintln!("encrypted into {}", path.display());
            println!("{}", key.address());
            Ok(())
        }
        KeyCommand::List => {
            let keys = store.list()?;
            if keys.is_empty() {
                eprintln!("no keys in {} (create one with `goodwill key new`)", store.dir().display());
            }
            for entry in keys {
                println!("{}  {}", entry.address, entry.name.as_deref().unwrap_or("-"));
            }
            Ok(())
        }
        KeyCommand::Import { file, name } => {
            let key = Keypair::read_file(&file)?;
            let passphrase = passphrase(&format!("Passphrase for {}: ", key.address()), true)?;
            let path = store.add(&key, name.as_deref(), passphrase.as_bytes(), KdfParams::default())?;
            eprintln!("encrypted into {}; you may delete {} now", path.display(), file.display());
            println!("{}", key.address());
            Ok(())
        }
        KeyCommand::Export { key, out } => {
            let entry =
                store.find(&key)?.ok_or_else(|| eyre!("no key {key} in {}", store.dir().display()))?;
            let passphrase = passphrase(&format!("Passphrase for {}: ", entry.address), false)?;
            let keypair = store.unlock(&entry, passphrase.as_bytes())?;
            keypair.write_file(&out)?;
            eprintln!("warning: {} holds the key unencrypted", out.display());
            println!("{}", keypair.address());
            Ok(())
        }
    }
}

fn key_generate(out: Option<&Path>) -> eyre::Result<()> {
    let key = Keypair::generate()?;
    match out {
        Some(path) => {
            key.write_file(path)?;
            println!("{}", key.address());
        }
        None => {
            eprintln!("warning: printing a secret key; use --out FILE to write it to a private file instead");
            let text = json!({ "address": key.address(), "secret_key": hex_encode(&key.secret_bytes()) });
            println!("{text:#}");
        }
    }
    Ok(())
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replays the stored chain into a fresh in-memory chain, block by block, with full validation.
fn ledger_verify(base_path: &Path) -> eyre::Result<()> {
    let db_path = base_path.join("db");
    let store = RocksStore::open_existing(&db_path)?;
    let spec_json = store.chain_spec()?.ok_or_else(|| eyre!("the database holds no chain spec"))?;
    let spec = ChainSpec::from_json(&spec_json).wrap_err("the stored chain spec is invalid")?;
    let head = store.head_header()?.ok_or_else(|| eyre!("the database holds no blocks"))?;
    if store.base_height() > 0 {
        bail!(
            "this database started from the state of block {} (--sync state) and holds no block \
             between genesis and that one, so it cannot be replayed from genesis",
            store.base_height()
        );
    }
    let mut replay = Chain::open(MemoryStore::new(), spec.clone())?;
    let stored_genesis = store.canonical_hash(0)?;
    if stored_genesis != Some(replay.genesis_hash()) {
        bail!(
            "genesis {stored_genesis:?} is not the genesis of the stored chain spec ({})",
            replay.genesis_hash()
        );
    }
    let mut touched: BTreeSet<Address> = spec.balances.iter().map(|b| b.address).collect();
    let mut transactions = 0usize;
    let head_height = head.header().height;
    for height in 1..=head_height {
        let hash = store
            .canonical_hash(height)?
            .ok_or_else(|| eyre!("height {height}: no block in the canonical index"))?;
        let block = match store.block(&hash) {
            Ok(Some(block)) => block,
            Ok(None) => bail!("height {height}: block {hash} is indexed but not stored"),
            Err(e) => bail!("height {height}: block {hash} cannot be read: {e}"),
        };
        touched.insert(block.header().forger);
        for tx in &block.transactions {
            touched.extend(tx.body().accounts());
        }
        transactions += block.transactions.len();
        if let Err(error) = replay.import(block) {
            println!("bad block at height {height} ({hash}): {error}");
            std::process::exit(1);
        }
    }
    let stored_root = stored_state_root(&store, head_height)?;
    if stored_root != head.header().state_root {
        bail!("the stored state root {stored_root} differs from the head's {}", head.header().state_root);
    }
    for address in &touched {
        let (stored, replayed) = (store.account(address)?, replay.account(address)?);
        if stored != replayed {
            bail!("account {address}: stored {stored:?}, replay gives {replayed:?}");
        }
    }
    println!(
        "ok: chain {}, head #{} {}, state root {} ({} blocks, {} transactions and {} accounts re-validated)",
        spec.chain_id,
        head_height,
        head.hash(),
        stored_root,
        head_height,
        transactions,
        touched.len()
    );
    Ok(())
}

struct ContractRun {
    file: std::path::PathBuf,
    call: Vec<String>,
    deploy: bool,
    state: Option<std::path::PathBuf>,
    caller: String,
    value: u64,
    gas: u64,
    height: Option<u64>,
}

/// `goodwill contract run`: one call against a scratch state kept in a JSON file.
fn contract_run(run: &ContractRun) -> eyre::Result<()> {
    use goodwill_ledger::contract::{Entry, Scratch};
    let code =
        std::fs::read_to_string(&run.file).wrap_err_with(|| format!("reading {}", run.file.display()))?;
    let state_path = run.state.clone().unwrap_or_else(|| {
        let mut path = run.file.clone().into_os_string();
        path.push(".state.json");
        path.into()
    });
    let caller: Address = match run.caller.parse() {
        Ok(address) => address,
        Err(_) => Keypair::insecure_dev(&run.caller).address(),
    };
    let (entry, args) = match (run.deploy, run.call.as_slice()) {
        (true, []) => (Entry::Deploy, "[]"),
        (true, [args]) => (Entry::Deploy, args.as_str()),
        (true, _) => bail!("--deploy runs `init`: give only its arguments, a JSON array"),
        (false, [function]) => (Entry::Call(function), "[]"),
        (false, [function, args]) => (Entry::Call(function), args.as_str()),
        (false, _) => bail!("name the function to call (then its arguments), or --deploy"),
    };
    let mut scratch = if run.deploy {
        Scratch::new(&code, Keypair::insecure_dev("contract").address())
    } else {
        let text = std::fs::read_to_string(&state_path).wrap_err_with(|| {
            format!("reading the scratch state {} (run with --deploy first)", state_path.display())
        })?;
        let mut scratch: Scratch = serde_json::from_str(&text)
            .wrap_err_with(|| format!("{} is not a scratch state", state_path.display()))?;
        // The file may have changed since deployment: run what it holds now.
        scratch.code = code;
        scratch
    };
    if let Some(height) = run.height {
        scratch.height = height;
    }
    // On a thread with the stack the contract engine is sized for, as on a node.
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(goodwill_ledger::contract::STACK_BYTES)
            .spawn_scoped(scope, || {
                scratch.run(entry, args, caller, goodwill_ledger::Amount(run.value), run.gas)
            })
            .map(|thread| thread.join())
    })
    .wrap_err("starting the contract's thread")?
    .map_err(|_| eyre::eyre!("the contract's thread stopped"))?;
    let result = outcome.result.as_ref().ok().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok());
    let transfers: Vec<_> =
        outcome.effects.transfers.iter().map(|(to, amount)| json!({ "to": to, "amount": amount })).collect();
    let report = json!({
        "result": result,
        "error": outcome.result.as_ref().err().map(ToString::to_string),
        "gas_used": outcome.gas_used,
        "events": outcome.effects.events,
        "storage_written": outcome.effects.storage,
        "transfers": transfers,
        "contract_balance": scratch.balance,
    });
    println!("{report:#}");
    std::fs::write(&state_path, serde_json::to_string_pretty(&scratch)?)
        .wrap_err_with(|| format!("writing {}", state_path.display()))?;
    if outcome.result.is_err() {
        bail!("the call failed; nothing changed but the gas");
    }
    Ok(())
}
