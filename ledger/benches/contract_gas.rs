//! Nanoseconds per unit of gas for a corpus of worst-case contract programs, one per operator
//! and builtin whose cost grows with its input: each runs one operation in a loop until its gas
//! runs out. Gas follows work when every program costs about the same time per unit of gas; the
//! report gives each figure, the median, the costliest against it, and how long a block filled
//! to the chain's gas limit with the costliest program takes to run.
//!
//! `cargo bench -p goodwill-ledger --bench contract_gas` (figures in docs/benchmarks.md).
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use goodwill_ledger::contract::{Entry, Scratch};
use goodwill_ledger::{Amount, ChainParams, Keypair};

/// (name, setup, operation): the program is `setup`, then `operation` in a loop.
const CORPUS: &[(&str, &str, &str)] = &[
    ("loop (tick + statement)", "", "x = i"),
    ("integer arithmetic", "", "x = (i * 7 + 3) // 2 % 5"),
    ("function call", "def g(a):\n    return a\n", "x = g(i)"),
    ("str + str (1 KB)", "s = 'a' * 1000", "x = s + s"),
    ("str * 10 (1 KB)", "s = 'a' * 1000", "x = s * 10"),
    ("str == str (10 KB)", "s = 'a' * 10000\nt = 'a' * 10000", "x = s == t"),
    ("str < str (10 KB)", "s = 'a' * 10000\nt = 'a' * 10000", "x = s < t"),
    ("in str (10 KB)", "s = 'a' * 10000", "x = 'b' in s"),
    ("str slice (10 KB)", "s = 'a' * 10000", "x = s[1:]"),
    ("str.count (10 KB)", "s = 'a' * 10000", "x = s.count('b')"),
    ("str.find (10 KB)", "s = 'a' * 10000", "x = s.find('b')"),
    ("str.replace (10 KB)", "s = 'ab' * 5000", "x = s.replace('a', 'cc')"),
    ("str.split (10 KB)", "s = 'a,' * 5000", "x = s.split(',')"),
    ("str.join (1,000 x 10 B)", "l = ['abcdefghij'] * 1000", "x = ','.join(l)"),
    ("str.upper (10 KB)", "s = 'a' * 10000", "x = s.upper()"),
    ("str.format (10 KB)", "s = 'a' * 10000", "x = '{}-{}'.format(s, s)"),
    ("str % (10 KB)", "s = 'a' * 10000", "x = '%s-%s' % (s, s)"),
    ("str() of a list (1,000)", "l = list(range(1000))", "x = str(l)"),
    ("list + list (1,000)", "l = list(range(1000))", "x = l + l"),
    ("list * 10 (1,000)", "l = list(range(1000))", "x = l * 10"),
    ("list slice (1,000)", "l = list(range(1000))", "x = l[1:]"),
    ("in list (1,000)", "l = list(range(1000))", "x = -1 in l"),
    ("list == list (1,000)", "l = list(range(1000))\nm = list(range(1000))", "x = l == m"),
    ("sorted (1,000)", "l = list(range(1000, 0, -1))", "x = sorted(l)"),
    ("max (1,000)", "l = list(range(1000))", "x = max(l)"),
    ("list(range(1,000))", "", "x = list(range(1000))"),
    ("list(list) (1,000)", "l = list(range(1000))", "x = list(l)"),
    ("tuple(range(1,000))", "", "x = tuple(range(1000))"),
    ("len(range(1,000))", "", "x = len(range(1000))"),
    ("list comprehension (100)", "", "x = [j for j in range(100)]"),
    ("dict comprehension (100)", "", "x = {j: j for j in range(100)}"),
    ("dict lookup", "d = {j: j for j in range(1000)}", "x = d[i % 1000]"),
    ("big int product (4,096 bits)", "a = (1 << 4096) - 1", "x = a * a"),
    ("storage write", "", "write('k', i)"),
    ("storage read", "write('k', 1)", "x = read('k')"),
];

/// Gas each program runs for.
const GAS: u64 = 3_000_000;

fn program(setup: &str, operation: &str) -> String {
    let indent = |text: &str| text.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let helpers: String = setup
        .lines()
        .filter(|l| l.starts_with("def ") || l.starts_with("    "))
        .map(|l| format!("{l}\n"))
        .collect();
    let locals: String = setup
        .lines()
        .filter(|l| !l.starts_with("def ") && !l.starts_with("    "))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{helpers}def f():\n{}    for i in range(100000000):\n        {operation}\n", indent(&locals))
}

/// Best of a few runs: nanoseconds per unit of gas.
fn measure(code: &str) -> f64 {
    let key = Keypair::insecure_dev("bench").address();
    let mut best = Duration::MAX;
    let mut gas = 0;
    for _ in 0..5 {
        let mut scratch = Scratch::new(code, key);
        scratch.limits.max_heap_bytes = 256 * 1024 * 1024;
        let deployed = scratch.run(Entry::Deploy, "[]", key, Amount::ZERO, GAS);
        assert!(deployed.result.is_ok(), "{code}: {:?}", deployed.result);
        let started = Instant::now();
        let outcome = scratch.run(Entry::Call("f"), "[]", key, Amount::ZERO, GAS);
        let elapsed = started.elapsed();
        assert!(outcome.result.is_err(), "{code} ended before its gas did");
        gas = outcome.gas_used;
        best = best.min(elapsed);
    }
    best.as_nanos() as f64 / gas as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `CONTRACT_GAS_FILTER=text` measures only the programs whose name contains it.
    let filter = std::env::var("CONTRACT_GAS_FILTER").unwrap_or_default();
    let mut figures: Vec<(&str, f64)> = CORPUS
        .iter()
        .filter(|(name, _, _)| name.contains(filter.as_str()))
        .map(|(name, setup, operation)| (*name, measure(&program(setup, operation))))
        .collect();
    println!("{:<32} {:>10}", "program", "ns/gas");
    for (name, ns) in &figures {
        println!("{name:<32} {ns:>10.2}");
    }
    figures.sort_by(|a, b| a.1.total_cmp(&b.1));
    let median = figures[figures.len() / 2].1;
    let (worst_name, worst) = figures[figures.len() - 1];
    let (cheapest_name, cheapest) = figures[0];
    println!(
        "median {median:.2} ns/gas; costliest {worst_name} {worst:.2} ({:.2}x the median); cheapest {cheapest_name} {cheapest:.2}",
        worst / median
    );
    let params = ChainParams::default();
    let block_ms = params.max_block_gas as f64 * worst / 1e6;
    println!(
        "a block at max_block_gas ({}) of the costliest program: {block_ms:.0} ms to run (a quarter slot is {} ms)",
        params.max_block_gas,
        params.slot_duration_ms / 4
    );
}
