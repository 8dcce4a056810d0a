//! Home networks behind NAT: two public hosts (198.51.100.1 and .2, each with `--public-addr`)
//! and home routers (198.51.100.254, .253) masquerading private networks (192.168.77.0/24,
//! 192.168.78.0/24). Nothing outside can open a connection into a private network; what is
//! inside dials out.
//!
//! A forger behind NAT must never advertise the address its peers see it at (its router's,
//! which does not forward), reserve a slot on the bootnode's relay instead, be reached through
//! it by a public forger, and forge blocks the others accept; a light peer behind NAT pushes a
//! transaction that is committed. Two forgers behind two NATs upgrade their relayed connection
//! to a direct one by hole punching.

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
    /// `pub1`, `pub2` and the routers' public sides on one bridge; behind router `rtrK`
    /// (198.51.100.(255-K)) the private network 192.168.(76+K).0/24 with one host, `prvK`
    /// (192.168.(76+K).2), for K from 1 to `homes`.
    fn create(homes: usize) -> Result<NatNetwork, String> {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag =
            format!("{}n{}", std::process::id(), RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let name = |role: &str| format!("gw{tag}{role}");
        let mut network = NatNetwork { names: Vec::new() };
        let mut roles = vec!["sw".to_string(), "pub1".to_string(), "pub2".to_string()];
        for k in 1..=homes {
            roles.extend([format!("rtr{k}"), format!("prv{k}")]);
        }
        for role in &roles {
            ip(&["netns", "add", &name(role)])?;
            network.names.push(name(role));
        }
        let switch = name("sw");
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        let mut public = vec![("pub1".to_string(), "198.51.100.1/24".to_string())];
        public.push(("pub2".to_string(), "198.51.100.2/24".to_string()));
        public.extend((1..=homes).map(|k| (format!("rtr{k}"), format!("198.51.100.{}/24", 255 - k))));
        for (host, address) in &public {
            let ns = name(host);
            let port = format!("p{host}");
            ip(&["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "wan0", "netns", &ns])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &ns, "addr", "add", address, "dev", "wan0"])?;
            ip(&["-n", &ns, "link", "set", "wan0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        for k in 1..=homes {
            let (router, private) = (name(&format!("rtr{k}")), name(&format!("prv{k}")));
            let lan = format!("192.168.{}", 76 + k);
            ip(&[
                "-n", &router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns",
                &private,
            ])?;
            ip(&["-n", &router, "addr", "add", &format!("{lan}.1/24"), "dev", "lan0"])?;
            ip(&["-n", &router, "link", "set", "lan0", "up"])?;
            ip(&["-n", &private, "addr", "add", &format!("{lan}.2/24"), "dev", "eth0"])?;
            ip(&["-n", &private, "link", "set", "eth0", "up"])?;
            ip(&["-n", &private, "link", "set", "lo", "up"])?;
            ip(&["-n", &private, "route", "add", "default", "via", &format!("{lan}.1")])?;
            masquerade(&router)?;
        }
        Ok(network)
    }

    fn ns(&self, role: &str) -> &str {
        self.names.iter().find(|n| n.ends_with(role)).map(String::as_str).unwrap_or_default()
    }
}

/// Makes namespace `router` a home router: it forwards, masquerades what leaves by `wan0` (Linux
/// keeps the source port where it can, as most home routers do), and lets in only replies.
fn masquerade(router: &str) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let output = Command::new("ip")
            .args(["netns", "exec", router])
            .args(args)
            .output()
            .map_err(|e| format!("{}: {e}", args[0]))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
        }
    };
    run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    run(&["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"])?;
    let replies = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"];
    run(&[&["iptables", "-A", "FORWARD", "-i", "wan0", "-o", "lan0"][..], &replies[..]].concat())?;
    run(&["iptables", "-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-j", "DROP"])?;
    // Unasked packets to the router itself are dropped, not refused, as home routers do: a
    // refusal would reset a hole punch whose other half is a moment late.
    run(&[&["iptables", "-A", "INPUT", "-i", "wan0"][..], &replies[..]].concat())?;
    run(&["iptables", "-A", "INPUT", "-i", "wan0", "-j", "DROP"])
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

/// A NAT network with `homes` homes, or `None` (said on stderr) where namespaces or iptables
/// are not available.
fn nat_network_or_skip(homes: usize) -> Option<NatNetwork> {
    match NatNetwork::create(homes) {
        Ok(network) => Some(network),
        Err(reason) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED netns NAT test: {reason}; run as root with iproute2 and iptables"
            );
            None
        }
    }
}

/// The nodes of a NAT test: their spec, keys and folders.
struct Setup<'a> {
    network: &'a NatNetwork,
    dir: tempfile::TempDir,
}

impl Setup<'_> {
    fn new(network: &NatNetwork, forgers: usize) -> Setup<'_> {
        let dir = tempfile::tempdir().unwrap();
        common::build_spec(dir.path(), forgers, 1000);
        Setup { network, dir }
    }

    fn key(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("forger-{i}.key"))
    }

    /// Forger `i` on public host `host`, listening on (and advertising) `listen`.
    fn public(&self, host: &str, listen: &str, i: usize, boot: &[&str]) -> HostNode {
        let (spec, base) = (self.dir.path().join("spec.json"), self.dir.path().join(host));
        let ns = self.network.ns(host);
        HostNode::start_with(ns, listen, &spec, &base, Some(&self.key(i)), boot, &["--public-addr", listen])
    }

    /// Forger `i` on private host `host`, listening on every interface of it, as a default
    /// install does.
    fn home(&self, host: &str, i: usize, boot: &[&str]) -> HostNode {
        let (spec, base) = (self.dir.path().join("spec.json"), self.dir.path().join(host));
        let ns = self.network.ns(host);
        HostNode::start_with(ns, "/ip4/0.0.0.0/tcp/30333", &spec, &base, Some(&self.key(i)), boot, &[])
    }
}

fn peer_of(node: &HostNode) -> String {
    node.p2p.rsplit('/').next().unwrap().to_string()
}

/// Waits until `home` holds a reservation on `relay`'s relay; returns its address there.
fn relayed_on(home: &HostNode, relay: &HostNode, at: &str) -> String {
    let relayed = format!("{at}/p2p/{}/p2p-circuit", peer_of(relay));
    assert!(
        wait_until(Duration::from_secs(90), || texts(&reachability(home)["relayed"])
            .iter()
            .any(|a| a.starts_with(&relayed))),
        "the forger behind NAT holds no relay reservation: {}",
        reachability(home)
    );
    format!("{relayed}/p2p/{}", peer_of(home))
}

#[test]
fn a_forger_behind_nat_is_reached_through_a_relay_and_forges_and_a_light_peer_pushes_through_it() {
    let Some(network) = nat_network_or_skip(1) else { return };
    let setup = Setup::new(&network, 3);
    let (dir, key) = (&setup.dir, |i| setup.key(i));
    let spec = dir.path().join("spec.json");
    let boot = setup.public("pub1", "/ip4/198.51.100.1/tcp/30333", 0, &[]);
    let home = setup.home("prv1", 2, &[&boot.p2p]);

    // With no address anyone can dial, it reserves a slot on the bootnode's relay.
    let through_relay = relayed_on(&home, &boot, "/ip4/198.51.100.1/tcp/30333");
    assert!(texts(&reachability(&boot)["confirmed"]).contains(&"/ip4/198.51.100.1/tcp/30333".to_string()));

    // The other public forger reaches it through the relay, by the relayed address alone.
    let other = setup.public("pub2", "/ip4/198.51.100.2/tcp/30333", 1, &[&boot.p2p, &through_relay]);
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
            .args(["netns", "exec", network.ns("prv1"), GOODWILL, "light", "--chain"])
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
        in_ns(network.ns("prv1"), || {
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
        .args(["netns", "exec", network.ns("prv1"), GOODWILL, "tx", "transfer", "--key", "dev"])
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
    // (Whether a test has failed yet is not asserted: the router drops the dial-back, which
    // fails only when TCP gives up, two minutes on; the node reserved after its grace period.)
}

/// Two homes behind two routers, neither of which lets a connection in: both reserve a slot on
/// the bootnode's relay, and when one reaches the other through it, DCUtR has both dial at once
/// from their listen port, which opens both routers, and the relayed connection (capped at
/// 2 minutes and 128 KiB) is upgraded to a direct one.
#[test]
fn two_forgers_behind_different_nats_punch_a_hole_and_connect_directly() {
    let Some(network) = nat_network_or_skip(2) else { return };
    let setup = Setup::new(&network, 3);
    let boot = setup.public("pub1", "/ip4/198.51.100.1/tcp/30333", 0, &[]);
    let first = setup.home("prv1", 1, &[&boot.p2p]);
    let through_relay = relayed_on(&first, &boot, "/ip4/198.51.100.1/tcp/30333");
    let second = setup.home("prv2", 2, &[&boot.p2p, &through_relay]);
    let punched = wait_until(Duration::from_secs(90), || {
        [&first, &second].iter().any(|n| reachability(n)["hole_punched"].as_u64().unwrap_or(0) > 0)
    });
    assert!(punched, "no hole was punched: first {}, second {}", reachability(&first), reachability(&second));
    // Neither advertised its router's address: it lets nothing in unasked.
    for home in [&first, &second] {
        let confirmed = texts(&reachability(home)["confirmed"]);
        assert!(confirmed.is_empty(), "a forger behind NAT advertised {confirmed:?}");
    }
}
