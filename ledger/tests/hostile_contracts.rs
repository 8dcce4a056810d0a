//! Contracts written to hurt the nodes that run them: one test per class of attack. Each asserts
//! that the call fails with the right error within its gas, that this process never asked the
//! allocator for more than the call's memory budget allows (a counting allocator watches every
//! request), and that the process lives on.
//!
//! The tests take turns (one lock) so that the allocator's peak belongs to one call.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use goodwill_ledger::contract::{self, ContractError, Entry, Outcome, Scratch};
use goodwill_ledger::{Amount, Keypair};

/// Counts live bytes, their peak, and the largest single request.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// The one unsafe item outside the interpreter: a test's allocator that only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        note(new_size);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    LARGEST.fetch_max(size, Ordering::Relaxed);
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static TURN: Mutex<()> = Mutex::new(());

/// The memory budget of the calls below: smaller than the default, so the tests run fast.
const BUDGET: usize = 8 * 1024 * 1024;
/// What one call may add to the process's peak: the budget (arena, dict tables, big integers)
/// once more for a temporary being checked against it, the arena's next chunk (bumpalo doubles
/// its chunks), and the parsed program.
const PEAK_BOUND: usize = 4 * BUDGET;
/// A generous gas limit: these programs must be stopped by their memory, not their gas.
const RICH: u64 = u64::MAX / 4;

/// Memory the call used, as the allocator saw it.
struct Measured {
    outcome: Outcome,
    peak_growth: usize,
    largest_request: usize,
}

/// Deploys `code` and calls `function`, measuring both: a program whose constants the compiler
/// folds fails at deployment, which is then the outcome measured.
fn run(code: &str, function: &str, args: &str, gas: u64) -> Measured {
    let _turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    warm_up();
    let mut contract = Scratch::new(code, Keypair::insecure_dev("contract").address());
    contract.limits.max_heap_bytes = BUDGET;
    let caller = Keypair::insecure_dev("attacker").address();
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    // On a quarter of the stack the node gives the threads that run contracts.
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(contract::STACK_BYTES / 4)
            .spawn_scoped(scope, || {
                let deployed = contract.run(Entry::Deploy, "[]", caller, Amount::ZERO, gas);
                if deployed.result.is_err() {
                    return deployed;
                }
                contract.run(Entry::Call(function), args, caller, Amount::ZERO, gas)
            })
            .expect("a thread")
            .join()
            .expect("the call returns")
    });
    Measured {
        outcome,
        peak_growth: PEAK.load(Ordering::Relaxed).saturating_sub(baseline),
        largest_request: LARGEST.load(Ordering::Relaxed),
    }
}

/// Fails one call before anything is measured: with `RUST_BACKTRACE=1` (as test runners set it)
/// the first error loads the program's debug information for backtraces once, which is the
/// test process's cost, not the contract's.
fn warm_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut contract =
            Scratch::new("def f():\n    fail(\"warm\")\n", Keypair::insecure_dev("warm").address());
        let caller = Keypair::insecure_dev("warm").address();
        let _ = contract.run(Entry::Deploy, "[]", caller, Amount::ZERO, contract::MAX_TRANSACTION_GAS);
        let _ = contract.run(Entry::Call("f"), "[]", caller, Amount::ZERO, contract::MAX_TRANSACTION_GAS);
        let mut repeat =
            Scratch::new("def f(n):\n    return [1] * n\n", Keypair::insecure_dev("warm").address());
        repeat.limits.max_heap_bytes = BUDGET;
        let _ =
            repeat.run(Entry::Call("f"), "[2147483647]", caller, Amount::ZERO, contract::MAX_TRANSACTION_GAS);
    });
}

/// Runs `function` of `code`, expecting it to fail for its memory within the bounds.
fn assert_stopped_for_memory(code: &str, function: &str) {
    let measured = run(code, function, "[]", RICH);
    assert_eq!(
        measured.outcome.result,
        Err(ContractError::OutOfMemory { limit: BUDGET }),
        "{function}: {code}"
    );
    assert!(measured.outcome.gas_used > 0);
    assert_within_bounds(&measured, function);
}

fn assert_within_bounds(measured: &Measured, what: &str) {
    assert!(
        measured.largest_request <= 2 * BUDGET + 64 * 1024,
        "{what}: the allocator was asked for {} bytes at once (budget {BUDGET})",
        measured.largest_request
    );
    assert!(
        measured.peak_growth <= PEAK_BOUND,
        "{what}: the process grew by {} bytes (bound {PEAK_BOUND})",
        measured.peak_growth
    );
}

#[test]
fn repeating_a_string_two_billion_times_fails_before_allocating() {
    // The attack that stopped every node of a cluster: about 2 TB asked of the allocator.
    let code = "def attack():\n    s = \"x\" * 1024\n    return len(s * 2147483647)\n";
    assert_stopped_for_memory(code, "attack");
    assert_stopped_for_memory("def attack():\n    return len(\"x\" * 2147483647)\n", "attack");
}

#[test]
fn repeating_lists_and_tuples_fails_before_allocating() {
    assert_stopped_for_memory("def attack():\n    return len([1, 2, 3] * 2147483647)\n", "attack");
    assert_stopped_for_memory("def attack():\n    return len((1, 2, 3) * 2147483647)\n", "attack");
}

#[test]
fn doubling_a_string_is_stopped_at_the_budget() {
    let code =
        "def attack():\n    s = \"x\"\n    for i in range(64):\n        s = s + s\n    return len(s)\n";
    assert_stopped_for_memory(code, "attack");
}

#[test]
fn joining_one_string_many_times_fails_before_allocating() {
    let code = "def attack():\n    s = \"x\" * 1000\n    return len(\",\".join([s] * 1000000))\n";
    assert_stopped_for_memory(code, "attack");
}

#[test]
fn a_replacement_that_multiplies_a_string_fails_before_allocating() {
    let code = "def attack():\n    return len((\"a\" * 100000).replace(\"a\", \"b\" * 1000))\n";
    assert_stopped_for_memory(code, "attack");
}

#[test]
fn formatting_and_representing_aliased_values_stops_at_the_budget() {
    let setup = "def big():\n    s = \"x\" * 1000\n    row = [s] * 1000\n    return [row] * 1000\n";
    for expression in
        ["str(big())", "repr(big())", "\"%s\" % (big(),)", "\"{}\".format(big())", "\"%r\" % big()"]
    {
        let code = format!("{setup}def attack():\n    return len({expression})\n");
        assert_stopped_for_memory(&code, "attack");
    }
}

#[test]
fn materialising_a_huge_range_fails_before_allocating() {
    for expression in ["list(range(1000000000))", "tuple(range(1000000000))", "sorted(range(1000000000))"] {
        let code = format!("def attack():\n    return len({expression})\n");
        assert_stopped_for_memory(&code, "attack");
    }
}

#[test]
fn growing_lists_and_dicts_in_one_expression_is_stopped_at_the_budget() {
    for expression in ["[i for i in range(100000000)]", "{i: i for i in range(100000000)}"] {
        let code = format!("def attack():\n    return len({expression})\n");
        assert_stopped_for_memory(&code, "attack");
    }
    let code =
        "def attack():\n    d = {}\n    for i in range(100000000):\n        d[i] = i\n    return len(d)\n";
    assert_stopped_for_memory(code, "attack");
}

#[test]
fn squaring_a_big_integer_is_stopped_at_the_budget() {
    let code = "def attack():\n    x = 3\n    for i in range(64):\n        x = x * x\n    return x > 0\n";
    assert_stopped_for_memory(code, "attack");
    // Parsing a long decimal takes quadratic time: refused before parsing.
    let code = "def attack():\n    return int(\"9\" * 1000000) > 0\n";
    let measured = run(code, "attack", "[]", contract::MAX_TRANSACTION_GAS);
    match &measured.outcome.result {
        Err(ContractError::Failed(why)) => assert!(why.contains("at most 30200 digits"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_huge_result_or_event_is_refused_without_building_it() {
    let setup = "def big():\n    s = \"x\" * 1000\n    return [s] * 100000\n";
    let measured = run(&format!("{setup}def attack():\n    return big()\n"), "attack", "[]", RICH);
    assert!(
        matches!(measured.outcome.result, Err(ContractError::BadData(_))),
        "{:?}",
        measured.outcome.result
    );
    assert_within_bounds(&measured, "result");
    for host_call in ["emit(\"e\", big())", "write(\"k\", big())"] {
        let code = format!("{setup}def attack():\n    {host_call}\n");
        let measured = run(&code, "attack", "[]", RICH);
        assert!(
            matches!(measured.outcome.result, Err(ContractError::Failed(_) | ContractError::StorageQuota(_))),
            "{host_call}: {:?}",
            measured.outcome.result
        );
        assert_within_bounds(&measured, host_call);
    }
}

#[test]
fn a_value_nested_a_hundred_thousand_deep_cannot_overflow_the_stack() {
    let setup = "def deep():\n    l = []\n    for i in range(100000):\n        l = [l]\n    return l\n";
    for (expression, fails) in [("len(str(deep()))", false), ("deep() == deep()", true), ("deep()", true)] {
        let code = format!("{setup}def attack():\n    return {expression}\n");
        let measured = run(&code, "attack", "[]", contract::MAX_TRANSACTION_GAS);
        // The representation is cut at the depth bound; comparing and returning it as JSON fail.
        assert_eq!(measured.outcome.result.is_err(), fails, "{expression}: {:?}", measured.outcome.result);
        assert_within_bounds(&measured, expression);
    }
    let code =
        "def attack():\n    t = ()\n    for i in range(100000):\n        t = (t,)\n    return hash(t)\n";
    let measured = run(code, "attack", "[]", contract::MAX_TRANSACTION_GAS);
    assert!(measured.outcome.result.is_err(), "hashing: {:?}", measured.outcome.result);
}

#[test]
fn builtins_that_scan_their_input_charge_for_every_byte() {
    // Each scan runs once on inputs of n and of 2n (bytes, or n/10 elements); what the scan
    // costs beyond a program that does not scan must grow by at least one unit per 8 bytes or
    // per element it touches, so a loop of scans runs out of gas after a few, instead of a
    // thousand scans' time for a thousand statements' gas.
    let scans = [
        "s.count(\"b\")",
        "s.find(\"b\")",
        "s.replace(\"b\", \"c\")",
        "s.split(\"b\")",
        "\"b\" in s",
        "s == t",
        "s < t",
        "s[1:]",
        "s.upper()",
        "s + t",
        "\",\".join([s, t])",
        "\"%s\" % s",
        "\"<{}>\".format(s)",
        "sorted(l)",
        "max(l)",
        "-1 in l",
        "l == m",
        "l[1:]",
        "list(l)",
    ];
    let gas = |n: usize, operation: &str| {
        let code = format!(
            "def attack():\n    s = \"a\" * {n}\n    t = \"a\" * {n}\n    l = list(range({}))\n    m = list(range({}))\n    x = {operation}\n",
            n / 10,
            n / 10
        );
        let measured = run(&code, "attack", "[]", contract::MAX_TRANSACTION_GAS);
        assert!(measured.outcome.result.is_ok(), "{operation}: {:?}", measured.outcome.result);
        measured.outcome.gas_used
    };
    let n = 100_000;
    let base = gas(2 * n, "0") - gas(n, "0");
    for scan in scans {
        let grown = gas(2 * n, scan) - gas(n, scan);
        assert!(grown - base >= (n / 10) as u64, "{scan}: {} more gas for {n} more bytes", grown - base);
    }
}
