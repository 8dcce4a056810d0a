//! Hosts with addresses of their own: four network namespaces on one bridge, made and removed by
//! this test. Three hosts run the genesis forgers; a fourth joins knowing only the chain spec and
//! one bootnode address, discovers the other peers, syncs, buys a ticket and forges. Taking its
//! link down forks it away from the others; bringing it up again ends every node on one chain.
//!
//! Needs root (or CAP_NET_ADMIN) and `ip` (iproute2). Where namespaces cannot be made, the test
//! says so on stderr and does nothing else: it is skipped, not passed.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{GOODWILL, wait_until};
use goodwill_ledger::Keypair;
use serde_json::Value;

/// The namespaces and links of one test run; removed when dropped.
struct Network {
    /// The namespace holding the bridge.
    switch: String,
    /// One namespace per host.
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

impl Network {
    /// Host `i` (from 1) gets 10.203.0.i/24 on a link to the bridge.
    fn create(hosts: usize) -> Result<Network, String> {
        // Unique across test processes and across the tests of one (they run in parallel).
        static NETWORKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag =
            format!("{}n{}", std::process::id(), NETWORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut network = Network { switch: format!("gw{tag}s"), hosts: Vec::new() };
        ip(&["netns", "add", &network.switch])?;
        let switch = network.switch.clone();
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        // A second bridge: hosts moved onto it reach each other and no one on the first.
        ip(&["-n", &switch, "link", "add", "br1", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br1", "up"])?;
        for i in 1..=hosts {
            let host = format!("gw{tag}h{i}");
            ip(&["netns", "add", &host])?;
            network.hosts.push(host.clone());
            let (port, eth) = (format!("port{i}"), "eth0".to_string());
            ip(&["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", &eth, "netns", &host])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &host, "addr", "add", &format!("10.203.0.{i}/24"), "dev", &eth])?;
            ip(&["-n", &host, "link", "set", &eth, "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    /// Moves hosts `group` onto their own bridge (`apart`) or back: a partition whose links
    /// stay up, as when a route between two regions fails.
    fn split(&self, group: &[usize], apart: bool) {
        for i in group {
            let bridge = if apart { "br1" } else { "br0" };
            ip(&["-n", &self.switch, "link", "set", &format!("port{i}"), "master", bridge]).unwrap();
        }
    }

    /// Takes host `i`'s link to the bridge down or up.
    fn link(&self, i: usize, up: bool) {
        ip(&["-n", &self.switch, "link", "set", &format!("port{i}"), if up { "up" } else { "down" }])
            .unwrap();
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Runs `f` on a thread inside namespace `ns`: its sockets are that host's.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// A node running on a host.
struct HostNode {
    ns: String,
    child: Child,
    p2p: String,
    /// Its log file.
    log: std::path::PathBuf,
}

impl HostNode {
    fn start(
        ns: &str,
        i: usize,
        spec: &std::path::Path,
        base: &std::path::Path,
        key: Option<&std::path::Path>,
        boot: &[&str],
    ) -> HostNode {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, GOODWILL, "node", "--chain"])
            .arg(spec)
            .arg("--base-path")
            .arg(base)
            .args(["--listen", &format!("/ip4/10.203.0.{i}/tcp/30333"), "--http", "127.0.0.1:9933"]);
        if let Some(key) = key {
            command.arg("--forger-key").arg(key);
        }
        for bootnode in boot {
            command.args(["--bootnode", bootnode]);
        }
        let log = base.with_extension("log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = command.stdout(Stdio::piped()).stderr(file).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let p2p = loop {
            let line = lines.next().expect("the node announces its address").unwrap();
            if let Some(address) = line.strip_prefix("P2P listening on ") {
                break address.to_string();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        HostNode { ns: ns.to_string(), child, p2p, log }
    }

    /// The last `count` lines of its log about syncing, branches and finality: what a failed
    /// heal is read from.
    fn sync_log(&self, count: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let words = ["branch", "fork", "sync", "justif", "reorgan", "switch", "final", "WARN", "ERROR"];
        let lines: Vec<&str> = text.lines().filter(|l| words.iter().any(|w| l.contains(w))).collect();
        lines[lines.len().saturating_sub(count)..].join("\n")
    }

    fn get(&self, path: &str) -> Option<Value> {
        let path = path.to_string();
        in_ns(&self.ns, move || {
            let mut response = ureq::get(&format!("http://127.0.0.1:9933{path}")).call().ok()?;
            response.body_mut().read_json().ok()
        })
    }

    fn finalized(&self) -> Option<(u64, String)> {
        let status = self.get("/api/v1/status")?;
        Some((status["finalized"]["height"].as_u64()?, status["finalized"]["hash"].as_str()?.to_string()))
    }

    fn hash_at(&self, height: u64) -> Option<String> {
        Some(self.get(&format!("/api/v1/blocks/{height}"))?["hash"].as_str()?.to_string())
    }

    /// The block holding transaction `id`, once committed.
    fn committed(&self, id: &goodwill_ledger::Hash) -> Option<String> {
        let status = self.get(&format!("/api/v1/transactions/{id}"))?;
        (status["status"] == "committed")
            .then(|| status["block"]["hash"].as_str().unwrap_or_default().to_string())
    }

    fn nonce(&self, address: &goodwill_ledger::Address) -> Option<u64> {
        self.get(&format!("/api/v1/accounts/{address}"))?["nonce"].as_u64()
    }

    fn genesis(&self) -> goodwill_ledger::Hash {
        self.get("/api/v1/status").unwrap()["genesis_hash"].as_str().unwrap().parse().unwrap()
    }

    /// Submits `tx` through the node's API; the answer's status code.
    fn submit(&self, tx: &goodwill_ledger::Transaction) -> u16 {
        let body = serde_json::json!({ "transaction": hex::encode(tx.encode()) });
        in_ns(&self.ns, move || {
            ureq::post("http://127.0.0.1:9933/api/v1/transactions")
                .config()
                .http_status_as_error(false)
                .build()
                .send_json(&body)
                .map_or(0, |response| response.status().as_u16())
        })
    }

    fn head(&self) -> Option<(u64, String)> {
        let status = self.get("/api/v1/status")?;
        Some((status["head"]["height"].as_u64()?, status["head"]["hash"].as_str()?.to_string()))
    }

    fn tx(&self, args: &[&str]) {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.ns, GOODWILL, "tx"])
            .args(args)
            .args(["--node", "http://127.0.0.1:9933", "--wait"])
            .output()
            .unwrap();
        assert!(output.status.success(), "goodwill tx {args:?}: {output:?}");
    }
}

impl Drop for HostNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn one_head(nodes: &[&HostNode]) -> Option<(u64, String)> {
    let heads: Vec<_> = nodes.iter().map(|n| n.head()).collect::<Option<_>>()?;
    heads.windows(2).all(|w| w[0].1 == w[1].1).then(|| heads[0].clone())
}

/// A network of `hosts`, or `None` (said on standard error, past the test harness's capture, so
/// that a skip is never silent) where namespaces cannot be made.
fn network_or_skip(hosts: usize) -> Option<Network> {
    Network::create(hosts)
        .map_err(|reason| {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED netns test: cannot create network namespaces ({reason}); run as root with iproute2"
            );
        })
        .ok()
}

#[test]
fn a_fourth_host_joins_from_the_spec_forges_and_heals_after_a_partition() {
    let Some(network) = network_or_skip(4) else { return };
    let dir = tempfile::tempdir().unwrap();
    common::build_spec(dir.path(), 3, 500);
    let spec = dir.path().join("spec.json");
    let base = |i: usize| dir.path().join(format!("h{i}"));
    let key = |i: usize| dir.path().join(format!("forger-{i}.key"));

    let h1 = HostNode::start(&network.hosts[0], 1, &spec, &base(1), Some(&key(0)), &[]);
    let h2 = HostNode::start(&network.hosts[1], 2, &spec, &base(2), Some(&key(1)), &[&h1.p2p]);
    let h3 = HostNode::start(&network.hosts[2], 3, &spec, &base(3), Some(&key(2)), &[&h1.p2p]);
    assert!(
        wait_until(Duration::from_secs(60), || one_head(&[&h1, &h2, &h3]).is_some_and(|h| h.0 >= 3)),
        "the three hosts did not forge one chain"
    );

    // The fourth host knows the spec and host 1's address, nothing else.
    let newcomer = Keypair::generate().unwrap();
    let new_key = dir.path().join("newcomer.key");
    newcomer.write_file(&new_key).unwrap();
    let h4 = HostNode::start(&network.hosts[3], 4, &spec, &base(4), Some(&new_key), &[&h1.p2p]);
    let all = [&h1, &h2, &h3, &h4];
    assert!(
        wait_until(Duration::from_secs(60), || h4.get("/api/v1/status").is_some_and(|s| s["peers"] == 3)),
        "the fourth host did not discover every peer: {:?}",
        h4.get("/api/v1/peers")
    );
    assert!(wait_until(Duration::from_secs(60), || one_head(&all).is_some()), "the fourth host did not sync");

    // It buys a ticket worth as much as the three genesis tickets together, and forges.
    let address = newcomer.address().to_string();
    h4.tx(&["transfer", "--key", "dev", "--to", &address, "--amount", "4000000000000"]);
    let association = "gw1ssxem4z9m7nmu7wgygar8ydvjw9pg0f4u5aqlxxcgrfwdc3dzsesyckgfg";
    assert_eq!(Keypair::insecure_dev("dev-association").address().to_string(), association);
    let key4 = new_key.to_str().unwrap();
    h4.tx(&["buy-ticket", "--key", key4, "--association", association, "--price", "3000000000000"]);
    let forged = |node: &HostNode| {
        node.get(&format!("/api/v1/forgers/{address}"))
            .map_or(0, |f| f["blocks_forged"].as_u64().unwrap_or(0))
    };
    // Tickets count from two epochs after purchase: 60 slots of half a second.
    assert!(wait_until(Duration::from_secs(120), || forged(&h1) > 0), "the new forger never forged");

    // Its link goes down: it forges alone, the others go on without it.
    network.link(4, false);
    let split = h1.head().unwrap().0;
    let apart = wait_until(Duration::from_secs(60), || match (one_head(&[&h1, &h2, &h3]), h4.head()) {
        (Some(a), Some(b)) => a.0 >= split + 3 && b.0 >= split + 3 && a.1 != b.1,
        _ => false,
    });
    assert!(apart, "the hosts did not fork apart: {:?} / {:?}", h1.head(), h4.head());

    // Up again: every node ends on one chain, above where either side was.
    network.link(4, true);
    let highest = all.iter().filter_map(|n| n.head()).map(|h| h.0).max().unwrap();
    assert!(
        wait_until(Duration::from_secs(90), || one_head(&all).is_some_and(|h| h.0 > highest)),
        "the network did not heal: {:?}",
        all.iter().map(|n| n.head()).collect::<Vec<_>>()
    );
}

/// `count` transfers from `from` to `to`, nonces from `nonce` on.
fn transfers(
    from: &Keypair,
    to: &Keypair,
    nonce: u64,
    count: u64,
    genesis: &goodwill_ledger::Hash,
) -> Vec<goodwill_ledger::Transaction> {
    use goodwill_ledger::{Amount, Payload, TransactionBody};
    (nonce..nonce + count)
        .map(|nonce| {
            TransactionBody {
                chain_id: "goodwill-local".into(),
                sender: from.address(),
                nonce,
                fee: Amount(1_000),
                payload: Payload::Transfer { to: to.address(), amount: Amount(1_000 + nonce) },
            }
            .sign(from, genesis)
        })
        .collect()
}

/// Whether every node holds the same block at `height`.
fn agree_at(nodes: &[&HostNode], height: u64) -> bool {
    let hashes: Vec<Option<String>> = nodes.iter().map(|n| n.hash_at(height)).collect();
    hashes[0].is_some() && hashes.windows(2).all(|w| w[0] == w[1])
}

/// Two partitions, each longer than a reorganisation reaches (64 slots), with transfers and
/// double spends on both sides, and no node restarted. First a majority (three forgers of four,
/// which keep finalizing) against a minority (one forger and a plain node, which forge on
/// alone); then two halves of which neither holds two thirds (finality waits on both). After
/// each, every node ends on one chain, nothing that was final is reverted, each double spend is
/// committed once, and finality goes on.
#[test]
fn partitions_longer_than_a_reorganisation_heal_without_restarts() {
    let Some(network) = network_or_skip(5) else { return };
    let dir = tempfile::tempdir().unwrap();
    common::build_spec(dir.path(), 4, 500);
    let spec = dir.path().join("spec.json");
    let base = |i: usize| dir.path().join(format!("h{i}"));
    let key = |i: usize| dir.path().join(format!("forger-{i}.key"));
    let h1 = HostNode::start(&network.hosts[0], 1, &spec, &base(1), Some(&key(0)), &[]);
    let boot = [h1.p2p.as_str()];
    let h2 = HostNode::start(&network.hosts[1], 2, &spec, &base(2), Some(&key(1)), &boot);
    let h3 = HostNode::start(&network.hosts[2], 3, &spec, &base(3), Some(&key(2)), &boot);
    let h4 = HostNode::start(&network.hosts[3], 4, &spec, &base(4), Some(&key(3)), &boot);
    let h5 = HostNode::start(&network.hosts[4], 5, &spec, &base(5), None, &boot);
    let all = [&h1, &h2, &h3, &h4, &h5];
    assert!(
        wait_until(Duration::from_secs(60), || {
            one_head(&all).is_some() && all.iter().all(|n| n.finalized().is_some_and(|f| f.0 >= 2))
        }),
        "the cluster did not agree and finalize: {:?}",
        all.iter().map(|n| (n.head(), n.finalized())).collect::<Vec<_>>()
    );
    let genesis = h1.genesis();
    let (dev, dev2) = (Keypair::insecure_dev("dev"), Keypair::insecure_dev("dev2"));
    let (left, right) = (Keypair::insecure_dev("left"), Keypair::insecure_dev("right"));
    let slots_apart = 70;

    for (round, (side_a, side_b)) in
        [(&[1usize, 2, 3][..], &[4usize, 5][..]), (&[1, 2, 5][..], &[3, 4][..])].into_iter().enumerate()
    {
        let (a, b) = (all[side_a[0] - 1], all[side_b[0] - 1]);
        let nodes_a: Vec<&HostNode> = side_a.iter().map(|i| all[i - 1]).collect();
        let nodes_b: Vec<&HostNode> = side_b.iter().map(|i| all[i - 1]).collect();
        let final_before: Vec<(u64, String)> = all.iter().map(|n| n.finalized().unwrap()).collect();
        network.split(side_b, true);
        let split = all.iter().filter_map(|n| n.head()).map(|h| h.0).max().unwrap();

        // Both sides take the same nonces of dev2, paying different people: double spends.
        let nonce = a.nonce(&dev2.address()).unwrap();
        assert_eq!(b.nonce(&dev2.address()), Some(nonce));
        let to_left = transfers(&dev2, &left, nonce, 20, &genesis);
        let to_right = transfers(&dev2, &right, nonce, 20, &genesis);
        // And a stream of transfers of dev's on one side only.
        let dev_nonce = a.nonce(&dev.address()).unwrap();
        let only_a = transfers(&dev, &left, dev_nonce, 40, &genesis);
        for (i, tx) in to_left.iter().enumerate() {
            assert_eq!(a.submit(tx), 200);
            assert_eq!(b.submit(&to_right[i]), 200);
            assert_eq!(a.submit(&only_a[2 * i]), 200);
            assert_eq!(a.submit(&only_a[2 * i + 1]), 200);
        }
        let apart = wait_until(Duration::from_secs(120), || {
            let (ha, hb) = (one_head(&nodes_a), one_head(&nodes_b));
            ha.zip(hb).is_some_and(|(ha, hb)| {
                ha.0 >= split + slots_apart && hb.0 >= split + slots_apart && ha.1 != hb.1
            })
        });
        assert!(
            apart,
            "round {round}: the sides did not forge apart: {:?}",
            all.iter().map(|n| n.head()).collect::<Vec<_>>()
        );
        let final_apart: Vec<(u64, String)> = all.iter().map(|n| n.finalized().unwrap()).collect();
        if round == 0 {
            assert!(final_apart[0].0 > split, "three of four went on finalizing: {final_apart:?}");
            assert!(final_apart[3].0 <= split + 2, "one of four cannot finalize: {final_apart:?}");
        } else {
            assert!(final_apart.iter().all(|f| f.0 <= split + 2), "half cannot finalize: {final_apart:?}");
        }

        // The route comes back: one chain, nothing final reverted, finality goes on.
        network.split(side_b, false);
        let highest = all.iter().filter_map(|n| n.head()).map(|h| h.0).max().unwrap();
        let healed = wait_until(Duration::from_secs(120), || {
            one_head(&all).is_some_and(|h| h.0 > highest)
                && all.iter().all(|n| n.finalized().is_some_and(|f| f.0 > highest))
        });
        if !healed {
            for (i, node) in all.iter().enumerate() {
                eprintln!(
                    "host {} ({:?}, final {:?}):\n{}",
                    i + 1,
                    node.head(),
                    node.finalized(),
                    node.sync_log(40)
                );
            }
        }
        assert!(
            healed,
            "round {round}: the network did not heal: {:?}",
            all.iter().map(|n| (n.head(), n.finalized())).collect::<Vec<_>>()
        );
        for (i, node) in all.iter().enumerate() {
            for (height, hash) in [&final_before[i], &final_apart[i]] {
                assert_eq!(
                    node.hash_at(*height).as_ref(),
                    Some(hash),
                    "host {}: a final block was reverted",
                    i + 1
                );
            }
        }
        assert!(agree_at(&all, highest));
        // Each of dev2's nonces is committed once, to one of the two, the same on every node.
        let settled = wait_until(Duration::from_secs(30), || {
            all.iter().all(|n| {
                n.nonce(&dev2.address()) == Some(nonce + 20)
                    && n.nonce(&dev.address()) == Some(dev_nonce + 40)
            })
        });
        assert!(
            settled,
            "round {round}: transactions were lost: {:?}",
            all.iter().map(|n| n.nonce(&dev2.address())).collect::<Vec<_>>()
        );
        for (l, r) in to_left.iter().zip(&to_right) {
            let places: Vec<(Option<String>, Option<String>)> =
                all.iter().map(|n| (n.committed(&l.id()), n.committed(&r.id()))).collect();
            assert!(places.windows(2).all(|w| w[0] == w[1]), "nodes disagree: {places:?}");
            assert!(places[0].0.is_some() != places[0].1.is_some(), "a double spend: {places:?}");
        }
    }
}
