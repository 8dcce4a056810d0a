//! The TOML config file of `goodwill node` and `goodwill light`.
//!
//! Every key is a command-line flag of the command, without its dashes (`base-path` or
//! `base_path`); a table `[node]` or `[light]` holds that command's keys. A flag given on the
//! command line overrides the file's key of the same name, lists included (a `--bootnode` on the
//! command line replaces the file's `bootnode` list). The file is turned into flags before the
//! command line is parsed, so it is checked by exactly the rules the flags are: a wrong type or
//! an unknown key is an error naming the key, and nothing starts.
//!
//! ```toml
//! [node]
//! chain = "spec.json"
//! base-path = "/var/lib/goodwill"
//! http = "127.0.0.1:9933"
//! listen = ["/ip4/0.0.0.0/tcp/30333"]
//! bootnode = ["/ip4/203.0.113.7/tcp/30333/p2p/12D3KooW..."]
//! log-format = "json"
//! ```

use std::ffi::OsString;
use std::path::Path;

use eyre::{WrapErr, bail, eyre};
use goodwill_ledger::{ChainSpec, Hash};
use libp2p::Multiaddr;

/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Flags that only the command line may give.
const NOT_IN_FILES: [&str; 2] = ["config", "help"];

/// `args` with the config file's flags inserted after the subcommand, when the command line
/// names a config file (`--config FILE` or `--config=FILE`, or `GOODWILL_CONFIG`) for `node` or
/// `light`. Other command lines are returned as they are.
pub fn expand(args: Vec<OsString>) -> eyre::Result<Vec<OsString>> {
    // The subcommand is the first argument that is not a global flag or its value.
    let mut position = None;
    let mut skip_value = false;
    for (i, arg) in args.iter().enumerate().skip(1) {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let text = arg.to_string_lossy();
        if text == "--log-format" {
            skip_value = true;
        } else if !text.starts_with('-') {
            position = Some(i);
            break;
        }
    }
    let Some(position) = position.filter(|&i| args[i] == "node" || args[i] == "light") else {
        return Ok(args);
    };
    let command = args[position].to_string_lossy().into_owned();
    let rest = &args[position + 1..];
    let mut path = None;
    for (i, arg) in rest.iter().enumerate() {
        let text = arg.to_string_lossy();
        if text == "--config" {
            path = Some(rest.get(i + 1).ok_or_else(|| eyre!("--config needs a file"))?.clone());
        } else if let Some(file) = text.strip_prefix("--config=") {
            path = Some(OsString::from(file));
        }
    }
    let Some(path) = path.or_else(|| std::env::var_os("GOODWILL_CONFIG")) else { return Ok(args) };
    let flags = flags_from_file(Path::new(&path), &command, rest)?;
    let mut expanded = args[..=position].to_vec();
    expanded.extend(flags);
    expanded.extend(rest.iter().cloned());
    Ok(expanded)
}

/// The flags `file` sets for `command`, leaving out those `command_line` gives.
fn flags_from_file(file: &Path, command: &str, command_line: &[OsString]) -> eyre::Result<Vec<OsString>> {
    let shown = file.display();
    let size = std::fs::metadata(file).wrap_err_with(|| format!("reading the config file {shown}"))?.len();
    if size > MAX_CONFIG_BYTES {
        bail!("the config file {shown} is {size} bytes; at most {MAX_CONFIG_BYTES} are read");
    }
    let text = std::fs::read_to_string(file).wrap_err_with(|| format!("reading the config file {shown}"))?;
    let mut table: toml::Table =
        text.parse().map_err(|e| eyre!("the config file {shown} is not valid TOML: {e}"))?;
    // Keys for this command may sit in its own table; the other command's table is not ours.
    let other = if command == "node" { "light" } else { "node" };
    table.remove(other);
    if let Some(section) = table.remove(command) {
        let toml::Value::Table(section) = section else { bail!("{shown}: [{command}] must be a table") };
        table.extend(section);
    }
    let cli = <crate::cli::Command as clap::Subcommand>::augment_subcommands(clap::Command::new("goodwill"));
    let sub = cli.find_subcommand(command).ok_or_else(|| eyre!("no command {command}"))?;
    let mut known: Vec<&str> =
        sub.get_arguments().filter_map(|a| a.get_long()).filter(|l| !NOT_IN_FILES.contains(l)).collect();
    // A global flag of every command, accepted after the subcommand too.
    known.push("log-format");
    let given: Vec<String> = command_line
        .iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect();
    let mut flags = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if !known.contains(&flag.as_str()) {
            bail!(
                "{shown}: unknown key `{key}` for `goodwill {command}`; the keys are: {}",
                known.join(", ")
            );
        }
        if given.contains(&flag) {
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items,
            single => vec![single],
        };
        for value in values {
            match value {
                toml::Value::Boolean(true) => flags.push(OsString::from(format!("--{flag}"))),
                toml::Value::Boolean(false) => {}
                toml::Value::String(text) => flags.push(OsString::from(format!("--{flag}={text}"))),
                toml::Value::Integer(number) => flags.push(OsString::from(format!("--{flag}={number}"))),
                other => bail!(
                    "{shown}: `{key}` must be a string, a number, true/false or a list of them, not {}",
                    other.type_str()
                ),
            }
        }
    }
    Ok(flags)
}

/// How long a bootnode has to answer for its chain spec.
const SPEC_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// The public testnet's spec, shipped in the binary: `--chain testnet`. Made by
/// `goodwill chain-spec build --chain public` (README, "Launch a public network"); its bootnodes
/// are DNS names.
pub const TESTNET_SPEC: &str = include_str!("../chains/testnet.json");

/// The chain spec a `--chain` value names ([`resolve_chain`]; `testnet` is the shipped one unless
/// a file of that name is in the working folder), read and checked.
pub fn load_chain_spec(chain: &Path) -> eyre::Result<ChainSpec> {
    if chain == Path::new("testnet") && !chain.is_file() {
        return ChainSpec::from_json(TESTNET_SPEC).wrap_err("in the testnet spec this binary ships");
    }
    let path = resolve_chain(chain)?;
    let text = std::fs::read_to_string(&path)
        .wrap_err_with(|| format!("reading the chain spec {}", path.display()))?;
    ChainSpec::from_json(&text).wrap_err_with(|| format!("in {}", path.display()))
}

/// [`load_chain_spec`], and [`check_genesis`] when a `--genesis-hash` was given too.
pub fn load_checked_chain_spec(chain: &Path, expected: Option<Hash>) -> eyre::Result<ChainSpec> {
    let spec = load_chain_spec(chain)?;
    if let Some(expected) = expected {
        check_genesis(&spec, expected)?;
    }
    Ok(spec)
}

/// Fails unless `spec`'s genesis block has the hash `expected` (`--genesis-hash`).
pub fn check_genesis(spec: &ChainSpec, expected: Hash) -> eyre::Result<()> {
    let found = goodwill_ledger::genesis(spec)?.block.hash();
    if found != expected {
        bail!("the chain spec makes genesis {found}, not {expected} (--genesis-hash): it is another chain");
    }
    Ok(())
}

/// The chain spec of the network whose genesis is `genesis`, asked of `bootnodes` in turn (before
/// any handshake) and kept from the first that serves one making that genesis: the hash, given
/// by the user, is what makes the answer trustworthy. Returns the spec and its JSON as served.
pub fn fetch_chain_spec(bootnodes: &[Multiaddr], genesis: Hash) -> eyre::Result<(ChainSpec, String)> {
    if bootnodes.is_empty() {
        bail!("--genesis-hash without --chain needs a --bootnode to ask for the chain spec");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut failures = Vec::new();
    for bootnode in bootnodes {
        let json = match runtime.block_on(goodwill_protocol::join::fetch_chain_spec(bootnode, SPEC_PATIENCE))
        {
            Ok(json) => json,
            Err(error) => {
                failures.push(error.to_string());
                continue;
            }
        };
        let made = ChainSpec::from_json(&json).map_err(|e| e.to_string()).and_then(|spec| {
            Ok((goodwill_ledger::genesis(&spec).map_err(|e| e.to_string())?.block.hash(), spec))
        });
        match made {
            Ok((found, spec)) if found == genesis => {
                tracing::info!(%bootnode, chain = %spec.chain_id, %genesis, "fetched the chain spec");
                return Ok((spec, json));
            }
            Ok((found, _)) => failures.push(format!("{bootnode} runs another chain (genesis {found})")),
            Err(error) => failures.push(format!("{bootnode} served an unusable chain spec: {error}")),
        }
    }
    bail!("no bootnode gave the chain spec of genesis {genesis}:\n  {}", failures.join("\n  "))
}

/// The spec file a `--chain` value names: `local` is the local cluster's; anything else is a
/// file.
pub fn resolve_chain(chain: &Path) -> eyre::Result<std::path::PathBuf> {
    match chain.to_str() {
        Some("local") => {
            let dir = std::env::var_os("GOODWILL_TESTNET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(crate::cli::default_testnet_dir);
            let spec = dir.join("spec.json");
            if !spec.exists() {
                bail!(
                    "no local cluster in {}: start one with `goodwill testnet up` (or set GOODWILL_TESTNET_DIR)",
                    dir.display()
                );
            }
            Ok(spec)
        }
        _ => Ok(chain.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use libp2p::multiaddr::Protocol;

    use super::*;

    #[test]
    fn the_shipped_testnet_spec_is_a_public_network_reached_by_name() {
        let spec = load_chain_spec(Path::new("testnet")).unwrap();
        spec.validate().unwrap();
        goodwill_ledger::genesis(&spec).unwrap();
        assert!(!spec.bootnodes.is_empty());
        for bootnode in &spec.bootnodes {
            let address: Multiaddr = bootnode.parse().unwrap();
            let mut parts = address.iter();
            assert!(
                matches!(parts.next(), Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_))),
                "{bootnode}"
            );
            assert!(matches!(address.iter().last(), Some(Protocol::P2p(_))), "{bootnode}: no peer id");
        }
        // No well-known key forges or holds coins in it.
        for name in ["dev", "dev2", "dev-association", "local-forger-0", "local-forger-1"] {
            let known = goodwill_ledger::Keypair::insecure_dev(name).address();
            assert!(spec.forgers.iter().all(|f| f.address != known), "{name} forges");
            assert!(spec.balances.iter().all(|b| b.address != known), "{name} is funded");
        }
    }

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn with_file(text: &str, line: &str) -> eyre::Result<Vec<String>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("goodwill.toml");
        std::fs::write(&file, text)?;
        let line = line.replace("FILE", file.to_str().unwrap());
        Ok(expand(args(&line))?.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn the_file_sets_flags_and_the_command_line_overrides_them() {
        let text = r#"
            min_fee = 5000
            mdns = false
            [node]
            chain = "spec.json"
            base-path = "/tmp/data"
            bootnode = ["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"]
            [light]
            http = "127.0.0.1:1"
        "#;
        let expanded =
            with_file(text, "goodwill node --config FILE --bootnode /ip4/127.0.0.1/tcp/3").unwrap();
        assert!(expanded.contains(&"--chain=spec.json".to_string()), "{expanded:?}");
        assert!(expanded.contains(&"--base-path=/tmp/data".to_string()));
        assert!(expanded.contains(&"--min-fee=5000".to_string()));
        assert!(!expanded.iter().any(|a| a.starts_with("--mdns")));
        // The command line's bootnode replaces the file's list; the light table is ignored.
        assert_eq!(expanded.iter().filter(|a| a.contains("/tcp/")).count(), 1, "{expanded:?}");
        assert!(!expanded.iter().any(|a| a.starts_with("--http")));
        // And clap accepts the result.
        let commands =
            <crate::cli::Command as clap::Subcommand>::augment_subcommands(clap::Command::new("goodwill"));
        let matches = commands.try_get_matches_from(&expanded).unwrap();
        let command = <crate::cli::Command as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        assert!(matches!(command, crate::cli::Command::Node(_)));
    }

    #[test]
    fn only_the_node_and_light_commands_read_a_config_file() {
        // "node" as another command's value is not the node command.
        let line = "goodwill key new --name node --config FILE";
        let expanded = with_file("chain = \"x\"", line).unwrap();
        assert_eq!(expanded.len(), line.split_whitespace().count(), "{expanded:?}");
        // A global flag before the subcommand is skipped with its value.
        let expanded = with_file("chain = \"x\"", "goodwill --log-format json node --config FILE").unwrap();
        assert!(expanded.contains(&"--chain=x".to_string()), "{expanded:?}");
    }

    #[test]
    fn a_bad_file_is_an_error_that_names_the_problem() {
        let unknown = with_file("colour = \"blue\"", "goodwill node --config FILE").unwrap_err().to_string();
        assert!(unknown.contains("unknown key `colour`") && unknown.contains("base-path"), "{unknown}");
        let broken = with_file("chain = ", "goodwill node --config FILE").unwrap_err().to_string();
        assert!(broken.contains("not valid TOML"), "{broken}");
        let typed = with_file("listen = { a = 1 }", "goodwill node --config FILE").unwrap_err().to_string();
        assert!(typed.contains("`listen` must be"), "{typed}");
        let missing = with_file("", "goodwill node --config /nonexistent/goodwill.toml").unwrap_err();
        assert!(format!("{missing:#}").contains("reading the config file"), "{missing:#}");
    }
}
