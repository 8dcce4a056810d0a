//! Launching a public network as its operators would: `goodwill chain-spec build --chain public`
//! makes new keys for every forger, bootnode and the faucet, and a spec naming the bootnodes by
//! host with the peer ids of their keys. Nodes started from that spec alone find each other
//! through it, forge and finalise; the folder of an earlier network is never overwritten.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use goodwill_ledger::{ChainSpec, Keypair};

use crate::common::{GOODWILL, Node, wait_until};

fn build(dir: &Path, extra: &[&str]) -> Output {
    Command::new(GOODWILL)
        .args(["chain-spec", "build", "--chain", "public", "--out"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn peer_id(network_key: &Path) -> String {
    let bytes = std::fs::read(network_key).unwrap();
    libp2p::identity::Keypair::from_protobuf_encoding(&bytes).unwrap().public().to_peer_id().to_string()
}

#[test]
fn a_public_spec_has_only_new_keys_and_bootnodes_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let cause = Keypair::generate().unwrap().address();
    let output = build(
        &out,
        &[
            "--name",
            "Goodwill test network",
            "--chain-id",
            "goodwill-test-1",
            "--forgers",
            "3",
            "--bootnode-host",
            "boot-0.example.org",
            "--bootnode-host",
            "192.0.2.7",
            "--association",
            &format!("A good cause={cause}"),
            "--genesis-time",
            "1900000000",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let spec = ChainSpec::from_json(&std::fs::read_to_string(out.join("spec.json")).unwrap()).unwrap();
    spec.validate().unwrap();
    assert_eq!((spec.name.as_str(), spec.chain_id.as_str()), ("Goodwill test network", "goodwill-test-1"));
    assert_eq!(spec.genesis_time_ms, 1_900_000_000_000);
    assert_eq!(spec.associations.len(), 1);
    assert_eq!(spec.associations[0].address, cause);

    // Every forger is a key in the folder; no well-known key holds anything.
    let forgers: Vec<_> =
        (0..3).map(|i| Keypair::read_file(&out.join(format!("forger-{i}.key"))).unwrap().address()).collect();
    assert_eq!(spec.forgers.iter().map(|f| f.address).collect::<Vec<_>>(), forgers);
    let faucet = Keypair::read_file(&out.join("faucet.key")).unwrap().address();
    let funded: Vec<_> = spec.balances.iter().map(|b| b.address).collect();
    assert!(funded.contains(&faucet) && forgers.iter().all(|f| funded.contains(f)));
    for name in ["dev", "dev2", "dev-association", "local-forger-0"] {
        let known = Keypair::insecure_dev(name).address();
        assert!(!funded.contains(&known) && !spec.forgers.iter().any(|f| f.address == known), "{name}");
    }

    // The bootnodes: by DNS name or address, each with the peer id of its new network key.
    assert_eq!(
        spec.bootnodes,
        vec![
            format!("/dns/boot-0.example.org/tcp/30333/p2p/{}", peer_id(&out.join("bootnode-0.network.key"))),
            format!("/ip4/192.0.2.7/tcp/30333/p2p/{}", peer_id(&out.join("bootnode-1.network.key"))),
        ]
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let genesis = goodwill_ledger::genesis(&spec).unwrap().block.hash();
    assert!(stdout.contains(&format!("genesis hash {genesis}")), "{stdout}");

    // A second launch into the same folder is refused and changes nothing.
    let before = std::fs::read(out.join("spec.json")).unwrap();
    let again = build(&out, &["--name", "x", "--chain-id", "x", "--bootnode-host", "boot.example.org"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{again:?}");
    assert_eq!(std::fs::read(out.join("spec.json")).unwrap(), before);
}

#[test]
fn a_public_spec_without_what_joiners_need_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["--name", "n", "--chain-id", "goodwill-x"], "--bootnode-host"),
        (vec!["--name", "n", "--bootnode-host", "boot.example.org"], "--chain-id"),
        (vec!["--name", "n", "--chain-id", "goodwill-x", "--bootnode-host", "bad host/name"], "DNS name"),
        (
            vec!["--name", "n", "--chain-id", "goodwill-x", "--bootnode-host", "b.org", "--association", "x"],
            "NAME=ADDRESS",
        ),
        (vec!["--name", "n", "--chain-id", "Not An Id", "--bootnode-host", "b.org"], "chain_id"),
    ] {
        let out = dir.path().join(says.replace(['-', '/', ' ', '='], ""));
        let output = build(&out, &args);
        assert!(!output.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(says), "{args:?}: {output:?}");
        assert!(!out.join("spec.json").exists(), "{args:?}: nothing is written");
    }
}

#[test]
fn nodes_started_from_a_public_spec_alone_find_each_other_forge_and_finalise() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    // The bootnode's port is in the spec: take a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let output = build(
        &out,
        &[
            "--name",
            "Loopback network",
            "--chain-id",
            "goodwill-loopback",
            "--forgers",
            "2",
            "--bootnode-host",
            "127.0.0.1",
            "--p2p-port",
            &port,
            "--slot-ms",
            "500",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let spec = out.join("spec.json");

    // The bootnode runs with the network key made for it, as its operator installs it.
    let boot_base = dir.path().join("boot");
    std::fs::create_dir_all(&boot_base).unwrap();
    std::fs::copy(out.join("bootnode-0.network.key"), boot_base.join("network.key")).unwrap();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let boot = Node::spawn(&[
        "--chain".as_ref(),
        spec.as_os_str(),
        "--base-path".as_ref(),
        boot_base.as_os_str(),
        "--forger-key".as_ref(),
        out.join("forger-0.key").as_os_str(),
        "--listen".as_ref(),
        listen.as_ref(),
    ]);
    // The second forger is told nothing but the spec: it finds the bootnode through it.
    let second = Node::main(&spec, &dir.path().join("second"), Some(&out.join("forger-1.key")), &[]);
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (boot, second) = (boot.status(), second.status());
            let final_height =
                |status: &serde_json::Value| status["finalized"]["height"].as_u64().unwrap_or(0);
            final_height(&boot) >= 3 && final_height(&second) >= 3
        }),
        "both forgers forge and finalise: {} / {}",
        boot.status(),
        second.status()
    );
    assert_eq!(second.genesis(), boot.genesis());
}
