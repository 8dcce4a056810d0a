//! A home network behind NAT: two public hosts (198.51.100.1 and .2, the bootnode and a forger,
//! each with `--public-addr`) and a router (198.51.100.254) masquerading a private network
//! (192.168.77.0/24) where a third forger and a light peer run. Nothing outside can open a
//! connection into the private network; what is inside dials out.
//!
//! The forger behind NAT must never advertise the address its peers see it at (the router's,
//! which does not forward), reserve a slot on the bootnode's relay instead, be reached through
//! it by the other public forger, and forge blocks the others accept; the light peer behind NAT
//! pushes a transaction that is committed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use goodwill_ledger::Keypair;
use serde_json::Value;

use super::{HostNode, in_ns, ip};
use crate::common::{self, GOODWILL, wait_until};

/// The namespaces of one run; removed when dropped.
struct NatNetwork {
    names: Vec<String>,
}

impl NatNetwork {
    /// `pub1`, `pub2` and the router's public side on one bridge; the private host behind the
    /// router.
    fn create() -> Result<NatNetwork, String> {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag =
            format!("{}n{}", std::process::id(), RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let name = |role: &str| format!("gw{tag}{role}");
        let mut network = NatNetwork { names: Vec::new() };
        for role in ["sw", "pub1", "pub2", "rtr", "prv"] {
            ip(&["netns", "add", &name(role)])?;
            network.names.push(name(role));
        }
        let (switch, router, private) = (name("sw"), name("rtr"), name("prv"));
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        for (host, address) in
            [("pub1", "198.51.100.1/24"), ("pub2", "198.51.100.2/24"), ("rtr", "198.51.100.254/24")]
        {
            let ns = name(host);
            let port = format!("p{host}");
            ip(&["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "wan0", "netns", &ns])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &ns, "addr", "add", address, "dev", "wan0"])?;
            ip(&["-n", &ns, "link", "set", "wan0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "-n", &router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", &private,
        ])?;
        ip(&["-n", &router, "addr", "add", "192.168.77.1/24", "dev", "lan0"])?;
        ip(&["-n", &router, "link", "set", "lan0", "up"])?;
        ip(&["-n", &private, "addr", "add", "192.168.77.2/24", "dev", "eth0"])?;
        ip(&["-n", &private, "link", "set", "eth0", "up"])?;
        ip(&["-n", &private, "link", "set", "lo", "up"])?;
        ip(&["-n", &private, "route", "add", "default", "via", "192.168.77.1"])?;
        // The router: forwards, masquerades what leaves, and lets in only replies.
        let router_run = |args: &[&str]| -> Result<(), String> {
            let output = Command::new("ip")
                .args(["netns", "exec", &router])
                .args(args)
                .output()
                .map_err(|e| format!("{}: {e}", args[0]))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
            }
        };
        router_run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        router_run(&["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"])?;
        router_run(&[
            "iptables",
            "-A",
            "FORWARD",
            "-i",
            "wan0",
            "-o",
            "lan0",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ])?;
        router_run(&["iptables", "-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-j", "DROP"])?;
        Ok(network)
    }

    fn ns(&self, role: &str) -> &str {
        self.names.iter().find(|n| n.ends_with(role)).map(String::as_str).unwrap_or_default()
    }
}

impl Drop for NatNetwork {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A light peer in namespace `ns`, its API on 127.0.0.1:9944 there; killed when dropped.
struct LightPeer(Child);

impl Drop for LightPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reachability(node: &HostNode) -> Value {
    node.get("/api/v1/status").map(|s| s["network"]["reachability"].clone()).unwrap_or(Value::Null)
}

fn texts(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
}

#[test]
fn a_forger_behind_nat_is_reached_through_a_relay_and_forges_and_a_light_peer_pushes_through_it() {
    let network = match NatNetwork::create() {
        Ok(network) => network,
        Err(reason) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED netns NAT test: {reason}; run as root with iproute2 and iptables"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    common::build_spec(dir.path(), 3, 1000);
    let spec = dir.path().join("spec.json");
    let key = |i: usize| dir.path().join(format!("forger-{i}.key"));
    let public = |host: &str, listen: &str, i: usize, boot: &[&str]| {
        HostNode::start_with(
            network.ns(host),
            listen,
            &spec,
            &dir.path().join(host),
            Some(&key(i)),
            boot,
            &["--public-addr", listen],
        )
    };
    let boot = public("pub1", "/ip4/198.51.100.1/tcp/30333", 0, &[]);
    // The forger behind NAT listens on every interface of its host, as a default install does.
    let home = HostNode::start_with(
        network.ns("prv"),
        "/ip4/0.0.0.0/tcp/30333",
        &spec,
        &dir.path().join("prv"),
        Some(&key(2)),
        &[&boot.p2p],
        &[],
    );
    let home_peer = home.p2p.rsplit('/').next().unwrap().to_string();

    // With no address anyone can dial, it reserves a slot on the bootnode's relay.
    let relayed =
        format!("/ip4/198.51.100.1/tcp/30333/p2p/{}/p2p-circuit", boot.p2p.rsplit('/').next().unwrap());
    assert!(
        wait_until(Duration::from_secs(90), || texts(&reachability(&home)["relayed"])
            .iter()
            .any(|a| a.starts_with(&relayed))),
        "the forger behind NAT holds no relay reservation: {}",
        reachability(&home)
    );
    assert!(texts(&reachability(&boot)["confirmed"]).contains(&"/ip4/198.51.100.1/tcp/30333".to_string()));

    // The other public forger reaches it through the relay, by the relayed address alone.
    let through_relay = format!("{relayed}/p2p/{home_peer}");
    let other = public("pub2", "/ip4/198.51.100.2/tcp/30333", 1, &[&boot.p2p, &through_relay]);
    assert!(
        wait_until(Duration::from_secs(60), || {
            let seen = reachability(&home);
            seen["reached_through_relay"].as_u64().unwrap_or(0) + seen["hole_punched"].as_u64().unwrap_or(0)
                > 0
        }),
        "no peer reached the forger behind NAT: {}",
        reachability(&home)
    );

    // It forges blocks the public nodes accept.
    let home_forger = Keypair::read_file(&key(2)).unwrap().address();
    assert!(
        wait_until(Duration::from_secs(90), || {
            other
                .get(&format!("/api/v1/forgers/{home_forger}"))
                .and_then(|f| f["blocks_forged"].as_u64())
                .is_some_and(|n| n > 0)
        }),
        "no block of the forger behind NAT reached the public forgers: {:?}",
        other.get(&format!("/api/v1/forgers/{home_forger}"))
    );

    // A light peer behind the same NAT pushes a transfer, committed on the public nodes.
    let light = LightPeer(
        Command::new("ip")
            .args(["netns", "exec", network.ns("prv"), GOODWILL, "light", "--chain"])
            .arg(&spec)
            .arg("--base-path")
            .arg(dir.path().join("light"))
            .args(["--bootnode", &boot.p2p, "--http", "127.0.0.1:9944"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = wait_until(Duration::from_secs(60), || {
        in_ns(network.ns("prv"), || {
            ureq::get("http://127.0.0.1:9944/api/v1/status")
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|s| {
                    s["main_peers"].as_u64().unwrap_or(0) > 0 || s["peers"].as_u64().unwrap_or(0) > 0
                })
        })
    });
    assert!(ready, "the light peer behind NAT found no main node");
    let to = Keypair::generate().unwrap().address();
    let output = Command::new("ip")
        .args(["netns", "exec", network.ns("prv"), GOODWILL, "tx", "transfer", "--key", "dev"])
        .args(["--to", &to.to_string(), "--amount", "1234567", "--node", "http://127.0.0.1:9944", "--wait"])
        .output()
        .unwrap();
    assert!(output.status.success(), "the light peer's transfer: {output:?}");
    assert!(
        wait_until(Duration::from_secs(30), || {
            boot.get(&format!("/api/v1/accounts/{to}")).is_some_and(|a| a["balance"] == "1234567")
        }),
        "the transfer is not on the public nodes"
    );
    drop(light);

    // Through all of it, the address the router showed (198.51.100.254) was never advertised.
    let confirmed = texts(&reachability(&home)["confirmed"]);
    assert!(confirmed.is_empty(), "the forger behind NAT advertised {confirmed:?}");
    assert_eq!(reachability(&home)["behind_nat"], true, "{}", reachability(&home));
}
