//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Counters and the import-time histogram are updated where things happen (the chain actor, the
//! gossip validator); gauges that describe the present (head, pool, peers, sync, CPU) are set
//! when the metrics are scraped.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What a gossiped message was judged.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Ignored,
    Rejected,
}

/// Which gossip topic.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Topic {
    Blocks,
    Transactions,
    Votes,
}

/// Label values are the variants' names in lower case, as Prometheus labels usually are.
macro_rules! lowercase_label {
    ($type:ty { $($variant:ident => $name:literal),* }) => {
        impl EncodeLabelValue for $type {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                let name = match self { $(Self::$variant => $name),* };
                EncodeLabelValue::encode(&name, encoder)
            }
        }
    };
}

lowercase_label!(Verdict { Accepted => "accepted", Ignored => "ignored", Rejected => "rejected" });
lowercase_label!(Topic { Blocks => "blocks", Transactions => "transactions", Votes => "votes" });
lowercase_label!(Role { Main => "main", Light => "light" });

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GossipLabels {
    pub topic: Topic,
    pub verdict: Verdict,
}

/// A peer's role.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Role {
    Main,
    Light,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub role: Role,
}

/// The node's metrics. Cheap to share: every metric is atomics behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Gossiped messages by topic and verdict.
    pub gossip: Family<GossipLabels, Counter>,
    /// Seconds to check and commit one block (imported or forged).
    pub block_import_seconds: Histogram,
    /// Transactions in blocks that joined this node's chain.
    pub committed_transactions: Counter,
    /// Blocks that joined this node's chain.
    pub committed_blocks: Counter,
    /// Reorganisations.
    pub reorganizations: Counter,
    /// Blocks this node forged with transactions left for later because filling took too long.
    pub blocks_cut_by_time: Counter,
    /// Slots this node's forger could have signed but did not, having no peers.
    pub slots_skipped_without_peers: Counter,
    /// Height of the last final block.
    pub finalized_height: Gauge,
    head_height: Gauge,
    confirmed_height: Gauge,
    peers: Family<RoleLabels, Gauge>,
    pool_transactions: Gauge,
    pool_bytes: Gauge,
    syncing: Gauge,
    sync_target_height: Gauge,
    sync_blocks_per_second: Gauge<f64, AtomicU64>,
    cpu_seconds: Gauge<f64, AtomicU64>,
    cpu_seconds_per_transaction: Gauge<f64, AtomicU64>,
    peak_resident_bytes: Gauge,
}

/// The present, as a scrape sees it.
pub struct Snapshot {
    pub head_height: u64,
    pub pool_transactions: usize,
    pub pool_bytes: usize,
    pub main_peers: usize,
    pub light_peers: usize,
    pub sync: goodwill_protocol::sync::Progress,
}

fn gauge(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("goodwill");
        let metrics = Metrics {
            gossip: Family::default(),
            // 100 µs to ~3.3 s.
            block_import_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            committed_transactions: Counter::default(),
            committed_blocks: Counter::default(),
            reorganizations: Counter::default(),
            blocks_cut_by_time: Counter::default(),
            slots_skipped_without_peers: Counter::default(),
            finalized_height: Gauge::default(),
            head_height: Gauge::default(),
            confirmed_height: Gauge::default(),
            peers: Family::default(),
            pool_transactions: Gauge::default(),
            pool_bytes: Gauge::default(),
            syncing: Gauge::default(),
            sync_target_height: Gauge::default(),
            sync_blocks_per_second: Gauge::default(),
            cpu_seconds: Gauge::default(),
            cpu_seconds_per_transaction: Gauge::default(),
            peak_resident_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("head_height", "Height of this node's head block", metrics.head_height.clone());
        registry.register(
            "finalized_height",
            "Height of the last block the forgers' votes made final here",
            metrics.finalized_height.clone(),
        );
        registry.register(
            "confirmed_height",
            "Height below which this node never reorganises (the head minus the deepest fork it follows)",
            metrics.confirmed_height.clone(),
        );
        registry.register(
            "peers",
            "Connected peers that passed the status exchange, by role",
            metrics.peers.clone(),
        );
        registry.register("pool_transactions", "Transactions in the pool", metrics.pool_transactions.clone());
        registry.register("pool_bytes", "Bytes of transactions in the pool", metrics.pool_bytes.clone());
        registry.register(
            "gossip_messages",
            "Gossiped messages by topic and verdict",
            metrics.gossip.clone(),
        );
        registry.register("syncing", "1 while the node catches up with its peers", metrics.syncing.clone());
        registry.register(
            "sync_target_height",
            "Highest head a peer announced",
            metrics.sync_target_height.clone(),
        );
        registry.register(
            "sync_blocks_per_second",
            "Blocks imported per second in the current round of sync",
            metrics.sync_blocks_per_second.clone(),
        );
        registry.register(
            "block_import_seconds",
            "Time to check and commit one block, imported or forged",
            metrics.block_import_seconds.clone(),
        );
        registry.register(
            "committed_transactions",
            "Transactions in blocks that joined this node's chain",
            metrics.committed_transactions.clone(),
        );
        registry.register(
            "committed_blocks",
            "Blocks that joined this node's chain",
            metrics.committed_blocks.clone(),
        );
        registry.register("reorganizations", "Switches to a better branch", metrics.reorganizations.clone());
        registry.register(
            "forged_blocks_cut_by_time",
            "Blocks forged with pending transactions left for later: filling took a quarter of a slot",
            metrics.blocks_cut_by_time.clone(),
        );
        registry.register(
            "forger_slots_skipped_without_peers",
            "Slots this node's forger could have signed but did not: it had no peers, and other forgers hold tickets",
            metrics.slots_skipped_without_peers.clone(),
        );
        registry.register("process_cpu_seconds", "CPU time this process used", metrics.cpu_seconds.clone());
        registry.register(
            "cpu_seconds_per_committed_transaction",
            "CPU time this process used per transaction committed since it started",
            metrics.cpu_seconds_per_transaction.clone(),
        );
        registry.register(
            "process_peak_resident_bytes",
            "Most memory this process has held resident",
            metrics.peak_resident_bytes.clone(),
        );
        Arc::new(Metrics { registry, ..metrics })
    }

    /// CPU seconds this process used, transactions committed since it started, and the ratio.
    pub fn cpu_per_transaction(&self) -> (f64, u64, f64) {
        let cpu = cpu_seconds();
        let committed = self.committed_transactions.get();
        (cpu, committed, if committed == 0 { 0.0 } else { cpu / committed as f64 })
    }

    /// Sets the gauges from `now` and encodes every metric.
    pub fn render(&self, now: &Snapshot) -> String {
        self.head_height.set(gauge(now.head_height));
        self.confirmed_height
            .set(gauge(now.head_height.saturating_sub(goodwill_ledger::chain::MAX_REORG_DEPTH)));
        self.peers.get_or_create(&RoleLabels { role: Role::Main }).set(gauge(now.main_peers));
        self.peers.get_or_create(&RoleLabels { role: Role::Light }).set(gauge(now.light_peers));
        self.pool_transactions.set(gauge(now.pool_transactions));
        self.pool_bytes.set(gauge(now.pool_bytes));
        self.syncing.set(i64::from(now.sync.syncing));
        self.sync_target_height.set(gauge(now.sync.target));
        self.sync_blocks_per_second.set(now.sync.blocks_per_second);
        let (cpu, _, per_transaction) = self.cpu_per_transaction();
        self.cpu_seconds.set(cpu);
        self.cpu_seconds_per_transaction.set(per_transaction);
        self.peak_resident_bytes.set(gauge(peak_resident_bytes()));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts a gossiped message's verdict.
    pub fn gossip(&self, topic: Topic, verdict: Verdict) {
        self.gossip.get_or_create(&GossipLabels { topic, verdict }).inc();
    }

    /// Counts `count` messages with one verdict (those the network judged before the node saw
    /// them: dropped from a full lane, or undecodable).
    pub fn gossip_many(&self, topic: Topic, verdict: Verdict, count: u64) {
        if count > 0 {
            self.gossip.get_or_create(&GossipLabels { topic, verdict }).inc_by(count);
        }
    }
}

/// The most memory this process has held resident, in bytes.
fn peak_resident_bytes() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    // Linux reports it in KiB.
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| u64::try_from(usage.max_rss()).unwrap_or(0) * 1024)
}

/// CPU time (user and system) this process has used, in seconds.
fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            seconds(usage.user_time()) + seconds(usage.system_time())
        }
        Err(_) => 0.0,
    }
}

impl From<goodwill_protocol::behaviour::GossipKind> for Topic {
    fn from(kind: goodwill_protocol::behaviour::GossipKind) -> Topic {
        match kind {
            goodwill_protocol::behaviour::GossipKind::Blocks => Topic::Blocks,
            goodwill_protocol::behaviour::GossipKind::Transactions => Topic::Transactions,
            goodwill_protocol::behaviour::GossipKind::Votes => Topic::Votes,
        }
    }
}
