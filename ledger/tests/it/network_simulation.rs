//! A seeded simulation of a Goodwill network on real ledgers: 4 nodes hosting 20 forgers with
//! random ticket sizes exchange blocks with random delays over 10,000 slots; forgers go offline
//! and come back, and one forger equivocates. Every node must end on the same head, the
//! equivocator must lose its tickets, the chain must not stall, and block shares must follow
//! ticket weight.

#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use goodwill_ledger::state::read_forger;
use goodwill_ledger::testkit::{self, CHAIN_ID};
use goodwill_ledger::{
    Address, Amount, Block, Chain, ChainError, ChainSpec, GenesisBalance, GenesisForger, Keypair,
    MemoryStore, Payload, SealedHeader, Store, TransactionBody,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const NODES: usize = 4;
const FORGERS: usize = 20;
const SLOTS: u64 = 10_000;
const EQUIVOCATOR: usize = 7;

fn key(i: usize) -> Keypair {
    Keypair::insecure_dev(&format!("sim-forger-{i}"))
}

struct Node {
    chain: Chain<MemoryStore>,
    forgers: Vec<usize>,
    /// First header seen per (forger, slot), to catch equivocation.
    seen: HashMap<(Address, u64), SealedHeader>,
    reports: Vec<(SealedHeader, SealedHeader)>,
    reported: HashSet<Address>,
    reorganisations: u64,
}

impl Node {
    fn receive(&mut self, block: Block) {
        let header = block.header.clone();
        match self.chain.import(block) {
            Ok(goodwill_ledger::Imported::Reorganized { depth, .. }) if depth > 0 => {
                self.reorganisations += 1
            }
            Ok(_) => {}
            Err(ChainError::Invalid(error)) => {
                panic!("an honest simulation produced an invalid block: {error}")
            }
            Err(error) => panic!("{error}"),
        }
        let key = (header.header().forger, header.header().slot);
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, header);
            }
            Some(first) if first.hash() != header.hash() && self.reported.insert(key.0) => {
                self.reports.push((first.clone(), header));
            }
            Some(_) => {}
        }
    }
}

#[test]
fn a_network_with_delays_outages_and_an_equivocator_agrees_and_follows_weight() {
    let mut rng = StdRng::seed_from_u64(20261124);
    let weights: Vec<u64> = (0..FORGERS).map(|_| rng.random_range(1..=100)).collect();
    let mut spec: ChainSpec = testkit::spec();
    spec.forgers = (0..FORGERS).map(|i| GenesisForger::for_key(&key(i), Amount(weights[i]))).collect();
    spec.balances = (0..FORGERS)
        .map(|i| GenesisBalance { address: key(i).address(), balance: Amount::coins(1) })
        .collect();
    let ranks = spec.params.fallback_ranks;
    let steps_per_slot = u64::from(ranks) + 1;

    let mut nodes: Vec<Node> = (0..NODES)
        .map(|n| Node {
            chain: Chain::open(MemoryStore::new(), spec.clone()).unwrap(),
            forgers: (0..FORGERS).filter(|f| f % NODES == n).collect(),
            seen: HashMap::new(),
            reports: Vec::new(),
            reported: HashSet::new(),
            reorganisations: 0,
        })
        .collect();
    let node_of = |forger: usize| forger % NODES;
    let keys: Vec<Keypair> = (0..FORGERS).map(key).collect();
    let addresses: Vec<Address> = keys.iter().map(Keypair::address).collect();

    // Deliveries: (time in rank steps, sequence, node, block index).
    let mut arena: Vec<Block> = Vec::new();
    let mut queue: BinaryHeap<Reverse<(u64, u64, usize, usize)>> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut online = [true; FORGERS];
    let mut online_slots: [Vec<u64>; FORGERS] = std::array::from_fn(|_| Vec::new());
    let mut equivocations = 0;

    for slot in 1..=SLOTS {
        for f in 0..FORGERS {
            let flip = if online[f] { rng.random_bool(0.003) } else { rng.random_bool(0.03) };
            online[f] ^= flip;
            if online[f] {
                online_slots[f].push(slot);
            }
        }
        // Each node's forgers' ranks in this slot, recomputed only if the node's head moves.
        let mut slot_ranks: Vec<Option<(goodwill_ledger::Hash, Vec<Option<u32>>)>> = vec![None; NODES];
        for rank in 0..=ranks {
            let now = slot * steps_per_slot + u64::from(rank);
            while queue.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
                let Reverse((_, _, n, b)) = queue.pop().unwrap();
                nodes[n].receive(arena[b].clone());
            }
            for n in 0..NODES {
                let node = &nodes[n];
                if node.chain.head().header().slot >= slot {
                    continue;
                }
                let head_hash = node.chain.head().hash();
                if slot_ranks[n].as_ref().is_none_or(|(at, _)| *at != head_hash) {
                    let mine: Vec<Address> = node.forgers.iter().map(|&f| addresses[f]).collect();
                    slot_ranks[n] = Some((head_hash, node.chain.ranks(slot, &mine).unwrap()));
                }
                let their_ranks = &slot_ranks[n].as_ref().unwrap().1;
                let chosen =
                    node.forgers.iter().zip(their_ranks).find(|(f, r)| online[**f] && **r == Some(rank));
                let Some((&f, _)) = chosen else {
                    continue;
                };
                let time = testkit::slot_time(&spec, slot, rank);
                // A report stays until the node's chain has punished the offender: the block
                // that carried it may lose a fork.
                let reports = std::mem::take(&mut nodes[n].reports);
                let mut kept = Vec::new();
                let node = &mut nodes[n];
                let mut builder = node.chain.builder(&keys[f], slot, time).unwrap();
                let mut nonce = node.chain.account(&addresses[f]).unwrap().nonce;
                for (first, second) in reports {
                    let report = TransactionBody {
                        chain_id: CHAIN_ID.into(),
                        sender: addresses[f],
                        nonce,
                        fee: Amount(10),
                        payload: Payload::ReportEquivocation {
                            first: Box::new(first.clone()),
                            second: Box::new(second.clone()),
                        },
                    }
                    .sign(&keys[f], &node.chain.genesis_hash());
                    // Another report may be on this chain already: then there is nothing left to
                    // forfeit, and this one is dropped.
                    if builder.push(report).is_ok() {
                        nonce += 1;
                        kept.push((first, second));
                    }
                }
                node.reports = kept;
                let block = builder.seal(&keys[f]).unwrap().block;
                let mut twin = None;
                if f == EQUIVOCATOR && rng.random_bool(0.5) {
                    let builder = node.chain.builder(&keys[f], slot, time + 1);
                    if let Ok(builder) = builder {
                        twin = Some(builder.seal(&keys[f]).unwrap().block);
                        equivocations += 1;
                    }
                }
                node.receive(block.clone());
                arena.push(block);
                let original = arena.len() - 1;
                let twin = twin.map(|b| {
                    arena.push(b);
                    arena.len() - 1
                });
                for other in (0..NODES).filter(|&o| o != n) {
                    // Most blocks arrive at once; some a few rank steps (up to two slots) late.
                    let delay =
                        if rng.random_bool(0.8) { 0 } else { rng.random_range(1..=2 * steps_per_slot) };
                    // The equivocator shows half the network its second block.
                    let which = match twin {
                        Some(twin) if other % 2 == 1 => twin,
                        _ => original,
                    };
                    sequence += 1;
                    queue.push(Reverse((now + delay, sequence, other, which)));
                    if let Some(twin) = twin {
                        // ...and, later, everyone sees both.
                        let other_one = if which == twin { original } else { twin };
                        sequence += 1;
                        queue.push(Reverse((now + delay + steps_per_slot, sequence, other, other_one)));
                    }
                }
                assert_eq!(node_of(f), n);
            }
        }
    }
    // Deliver everything still in flight.
    while let Some(Reverse((_, _, n, b))) = queue.pop() {
        nodes[n].receive(arena[b].clone());
    }

    // One head everywhere.
    let head = nodes[0].chain.head().clone();
    for node in &nodes[1..] {
        assert_eq!(node.chain.head(), &head, "nodes disagree on the head");
    }
    let chain = &nodes[0].chain;
    let height = head.header().height;

    // Delays made forks, and fork choice resolved them.
    let reorganisations: u64 = nodes.iter().map(|n| n.reorganisations).sum();
    assert!(reorganisations > 0, "the simulation never forked");

    // The equivocator was caught and lost its tickets.
    assert!(equivocations > 0);
    let record = read_forger(chain.store(), height, &addresses[EQUIVOCATOR]).unwrap().unwrap();
    let next_epoch = goodwill_ledger::lottery::epoch_of(head.header().slot, spec.params.slots_per_epoch) + 1;
    assert!(!record.signs_in(next_epoch), "the equivocator kept its tickets: {record:?}");

    // Walk the final chain.
    let mut blocks_by = [0u64; FORGERS];
    let mut primary_by = [0u64; FORGERS];
    let mut slots_with_block = HashSet::new();
    let mut punished_at = u64::MAX;
    for h in 1..=height {
        let block = chain.store().block(&chain.store().canonical_hash(h).unwrap().unwrap()).unwrap().unwrap();
        let f = addresses.iter().position(|a| *a == block.header().forger).unwrap();
        blocks_by[f] += 1;
        if block.header().rank == 0 {
            primary_by[f] += 1;
        }
        slots_with_block.insert(block.header().slot);
        if block.transactions.iter().any(|tx| matches!(tx.body().payload, Payload::ReportEquivocation { .. }))
        {
            punished_at = punished_at.min(block.header().slot);
        }
    }
    // No stall: at most a few consecutive empty slots (forks orphan some blocks).
    let mut longest_gap = 0;
    let mut gap = 0;
    for slot in 1..=SLOTS {
        gap = if slots_with_block.contains(&slot) { 0 } else { gap + 1 };
        longest_gap = longest_gap.max(gap);
    }
    assert!(longest_gap <= 3, "{longest_gap} consecutive slots without a block");
    assert!(height > SLOTS * 9 / 10, "{height} blocks in {SLOTS} slots");

    // Shares: each honest forger's primary-rank blocks on the final chain against its weight
    // share of the slots it was online (the total weight drops when the equivocator is punished).
    let total: u64 = weights.iter().sum();
    for f in (0..FORGERS).filter(|&f| f != EQUIVOCATOR) {
        let (mut mean, mut variance) = (0.0, 0.0);
        for &slot in &online_slots[f] {
            let weight_total = if slot > punished_at { total - weights[EQUIVOCATOR] } else { total };
            let p = weights[f] as f64 / weight_total as f64;
            mean += p;
            variance += p * (1.0 - p);
        }
        let sigma = variance.sqrt();
        let got = primary_by[f] as f64;
        // Late blocks are sometimes orphaned by a fork: allow 5% below the expectation.
        assert!(
            got <= mean + 5.0 * sigma && got >= mean * 0.95 - 5.0 * sigma,
            "forger {f} (weight {}): {got} primary blocks, expected {mean:.1} ± {sigma:.1}",
            weights[f]
        );
    }
    println!(
        "height {height}, reorganisations {reorganisations}, equivocations {equivocations}, \
         longest gap {longest_gap}, blocks per forger {blocks_by:?}"
    );
}
