use super::*;
use crate::Keypair;

const GAS: u64 = 10_000_000;

fn who(name: &str) -> Address {
    Keypair::insecure_dev(name).address()
}

fn deployed(code: &str, args: &str) -> Scratch {
    let mut contract = Scratch::new(code, who("contract"));
    let outcome = contract.run(Entry::Deploy, args, who("owner"), Amount::ZERO, GAS);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    contract
}

fn call_ok(contract: &mut Scratch, function: &str, args: &str, caller: &str) -> String {
    let outcome = contract.run(Entry::Call(function), args, who(caller), Amount::ZERO, GAS);
    outcome.result.unwrap_or_else(|e| panic!("{function}{args}: {e}"))
}

const COUNTER: &str = r#"
def init(start):
    write("count", start)

def increment(by):
    n = read("count") + by
    write("count", n)
    emit("incremented", {"by": by, "now": n})
    return n

def get():
    return read("count", 0)

def _internal():
    return "secret"
"#;

#[test]
fn a_contract_keeps_state_between_calls_and_answers_json() {
    let mut counter = deployed(COUNTER, "[10]");
    assert_eq!(call_ok(&mut counter, "increment", "[1]", "alice"), "11");
    assert_eq!(call_ok(&mut counter, "increment", "[5]", "bob"), "16");
    assert_eq!(call_ok(&mut counter, "get", "[]", "carol"), "16");
    assert_eq!(counter.storage["count"], "16");
    let outcome = counter.run(Entry::Call("increment"), "[2]", who("alice"), Amount::ZERO, GAS);
    assert_eq!(
        outcome.effects.events,
        vec![Event { name: "incremented".into(), data: r#"{"by":2,"now":18}"#.into() }]
    );
}

#[test]
fn only_public_functions_that_exist_can_be_called() {
    let mut counter = deployed(COUNTER, "[0]");
    for name in ["_internal", "nothing", "write"] {
        let outcome = counter.run(Entry::Call(name), "[]", who("alice"), Amount::ZERO, GAS);
        assert_eq!(outcome.result, Err(ContractError::NoSuchFunction(name.into())), "{name}");
        assert!(outcome.gas_used > 0, "a refused call still pays for running the module");
    }
}

#[test]
fn gas_is_deterministic_and_pinned() {
    // Golden figures: they change only with the gas schedule or the pinned engine, both
    // protocol changes. Update them deliberately, never to make a test pass.
    let run = || {
        let mut counter = Scratch::new(COUNTER, who("contract"));
        let mut used = Vec::new();
        used.push(counter.run(Entry::Deploy, "[0]", who("owner"), Amount::ZERO, GAS).gas_used);
        for by in 1..=3 {
            let args = format!("[{by}]");
            used.push(counter.run(Entry::Call("increment"), &args, who("alice"), Amount::ZERO, GAS).gas_used);
        }
        used.push(counter.run(Entry::Call("get"), "[]", who("alice"), Amount::ZERO, GAS).gas_used);
        used
    };
    let first = run();
    assert_eq!(first, run(), "the same calls on the same state cost the same gas");
    assert_eq!(first, GOLDEN_GAS, "the gas schedule or the engine changed");
}

const GOLDEN_GAS: [u64; 5] = [8_658, 4_115, 4_115, 4_115, 2_704];

#[test]
fn a_failed_call_changes_nothing_but_uses_gas() {
    let code = r#"
def init():
    write("x", 1)

def set_then_fail(value):
    write("x", value)
    transfer(caller(), 5)
    emit("never", None)
    fail("changed my mind")
"#;
    let mut contract = deployed(code, "[]");
    contract.balance = Amount(100);
    let outcome = contract.run(Entry::Call("set_then_fail"), "[7]", who("alice"), Amount(50), GAS);
    match &outcome.result {
        Err(ContractError::Failed(message)) => assert!(message.contains("changed my mind"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(outcome.effects, Effects::default());
    assert!(outcome.gas_used > gas::BASE);
    assert_eq!(contract.storage["x"], "1");
    assert_eq!(contract.balance, Amount(100), "the attached coins went back");
    assert!(contract.paid.is_empty());
}

#[test]
fn a_contract_pays_only_from_what_it_holds() {
    let code = r#"
def pay(to, amount):
    transfer(to, amount)
    return balance()
"#;
    let mut contract = deployed(code, "[]");
    let bob = who("bob").to_string();
    let outcome =
        contract.run(Entry::Call("pay"), &format!(r#"["{bob}", 30]"#), who("alice"), Amount(100), GAS);
    assert_eq!(outcome.result, Ok("70".into()));
    assert_eq!(contract.balance, Amount(70));
    assert_eq!(contract.paid[&who("bob")], Amount(30));
    let outcome =
        contract.run(Entry::Call("pay"), &format!(r#"["{bob}", 71]"#), who("alice"), Amount::ZERO, GAS);
    assert_eq!(outcome.result, Err(ContractError::InsufficientFunds { available: Amount(70), wanted: 71 }));
    let outcome = contract.run(Entry::Call("pay"), r#"["gw1nobody", 1]"#, who("alice"), Amount::ZERO, GAS);
    assert!(matches!(outcome.result, Err(ContractError::Failed(_))), "{:?}", outcome.result);
    assert_eq!(contract.balance, Amount(70));
}

// Hostile contracts: each must stop within its bound, leave nothing behind, and leave the node
// (this test process) running.

#[test]
fn an_endless_loop_runs_out_of_gas() {
    let code = "def spin():\n    n = 0\n    for i in range(2000000000):\n        n += i\n";
    let mut contract = deployed(code, "[]");
    let limit = 200_000;
    let outcome = contract.run(Entry::Call("spin"), "[]", who("alice"), Amount::ZERO, limit);
    assert_eq!(outcome.result, Err(ContractError::OutOfGas { limit }));
    assert_eq!(outcome.gas_used, limit);
}

#[test]
fn a_loop_inside_one_expression_runs_out_of_gas_too() {
    // A comprehension is one statement: the interpreter's tick limit stops it.
    let code = "def spin():\n    return len([i for i in range(2000000000)])\n";
    let mut contract = deployed(code, "[]");
    let limit = 200_000;
    let outcome = contract.run(Entry::Call("spin"), "[]", who("alice"), Amount::ZERO, limit);
    assert_eq!(outcome.result, Err(ContractError::OutOfGas { limit }));
}

#[test]
fn growing_memory_is_stopped_at_the_heap_bound() {
    let code = "def grow():\n    s = \"x\"\n    for i in range(64):\n        s = s + s\n    return len(s)\n";
    let mut contract = deployed(code, "[]");
    let outcome = contract.run(Entry::Call("grow"), "[]", who("alice"), Amount::ZERO, u64::MAX / 2);
    assert_eq!(outcome.result, Err(ContractError::OutOfMemory { limit: contract.limits.max_heap_bytes }));
    // Allocation costs gas: with a smaller limit, gas stops it first.
    let outcome = contract.run(Entry::Call("grow"), "[]", who("alice"), Amount::ZERO, 100_000);
    assert_eq!(outcome.result, Err(ContractError::OutOfGas { limit: 100_000 }));
}

#[test]
fn one_large_allocation_fails_the_call() {
    // Known limit: one expression allocates before any check sees it (here 100 MB); the
    // statement after it fails the call.
    let code = "def big(n):\n    s = \"x\" * n\n    return len(s)\n";
    let mut contract = deployed(code, "[]");
    let outcome = contract.run(Entry::Call("big"), "[100000000]", who("alice"), Amount::ZERO, u64::MAX / 2);
    assert_eq!(outcome.result, Err(ContractError::OutOfMemory { limit: contract.limits.max_heap_bytes }));
    assert_eq!(
        contract.run(Entry::Call("big"), "[1000]", who("alice"), Amount::ZERO, GAS).result,
        Ok("1000".into())
    );
    // With constants, the compiler folds the expression: deploying fails.
    let mut folded = Scratch::new("def big():\n    return \"x\" * 100000000\n", who("contract"));
    let outcome = folded.run(Entry::Deploy, "[]", who("owner"), Amount::ZERO, u64::MAX / 2);
    assert_eq!(outcome.result, Err(ContractError::OutOfMemory { limit: folded.limits.max_heap_bytes }));
}

#[test]
fn deep_calls_and_recursion_are_refused() {
    let mut code = String::new();
    for i in 0..100 {
        code.push_str(&format!("def f{i}():\n    return f{}()\n", i + 1));
    }
    code.push_str("def f100():\n    return 1\n");
    let mut contract = deployed(&code, "[]");
    let outcome = contract.run(Entry::Call("f0"), "[]", who("alice"), Amount::ZERO, GAS);
    assert_eq!(outcome.result, Err(ContractError::CallDepth { limit: 64 }));
    let mut recursive = deployed("def f(n):\n    return f(n + 1)\n", "[]");
    let outcome = recursive.run(Entry::Call("f"), "[0]", who("alice"), Amount::ZERO, GAS);
    assert!(
        matches!(outcome.result, Err(ContractError::Failed(_) | ContractError::CallDepth { .. })),
        "{:?}",
        outcome.result
    );
}

#[test]
fn storage_is_bounded_per_key_value_and_entry_count() {
    let code = r#"
def fill(n):
    for i in range(n):
        write("k%d" % i, i)

def big_value():
    write("v", "x" * 20000)

def long_key():
    write("k" * 200, 1)
"#;
    let mut contract = deployed(code, "[]");
    contract.limits.max_storage_entries = 10;
    assert!(contract.run(Entry::Call("fill"), "[10]", who("a"), Amount::ZERO, GAS).result.is_ok());
    assert_eq!(contract.storage.len(), 10);
    // Rewriting existing entries is within the quota; an eleventh is not.
    assert!(contract.run(Entry::Call("fill"), "[10]", who("a"), Amount::ZERO, GAS).result.is_ok());
    let outcome = contract.run(Entry::Call("fill"), "[11]", who("a"), Amount::ZERO, GAS);
    assert!(matches!(outcome.result, Err(ContractError::StorageQuota(_))), "{:?}", outcome.result);
    assert_eq!(contract.storage.len(), 10);
    for function in ["big_value", "long_key"] {
        let outcome = contract.run(Entry::Call(function), "[]", who("a"), Amount::ZERO, GAS);
        assert!(
            matches!(outcome.result, Err(ContractError::StorageQuota(_))),
            "{function}: {:?}",
            outcome.result
        );
    }
}

#[test]
fn bad_programs_and_arguments_are_refused() {
    let mut contract = Scratch::new("def broken(:\n", who("contract"));
    let outcome = contract.run(Entry::Deploy, "[]", who("owner"), Amount::ZERO, GAS);
    assert!(matches!(outcome.result, Err(ContractError::InvalidProgram(_))), "{:?}", outcome.result);
    let mut counter = deployed(COUNTER, "[0]");
    for args in ["{}", "[1", "not json"] {
        let outcome = counter.run(Entry::Call("increment"), args, who("alice"), Amount::ZERO, GAS);
        assert!(matches!(outcome.result, Err(ContractError::BadData(_))), "{args}: {:?}", outcome.result);
    }
    // Too little gas even to start.
    let outcome = counter.run(Entry::Call("get"), "[]", who("alice"), Amount::ZERO, 10);
    assert_eq!(outcome.result, Err(ContractError::OutOfGas { limit: 10 }));
    assert_eq!(outcome.gas_used, 10);
    // A result that is not JSON.
    let mut contract = deployed("def f():\n    return f\n", "[]");
    let outcome = contract.run(Entry::Call("f"), "[]", who("alice"), Amount::ZERO, GAS);
    assert!(matches!(outcome.result, Err(ContractError::BadData(_))), "{:?}", outcome.result);
}

/// The deepest program of one shape that the nesting bound allows: `make(n)` for the largest
/// `n` that passes the check.
fn deepest_allowed(make: impl Fn(usize) -> String) -> String {
    let mut n = MAX_NESTING + 2;
    while check_program(&make(n), &Limits::default()).is_err() {
        n -= 1;
        assert!(n > 0, "even the shallowest program of this shape was refused: {}", make(1));
    }
    assert!(n >= MAX_NESTING / 4, "the bound allows only {n} levels of: {}", make(1));
    make(n)
}

#[test]
fn deeply_nested_brackets_are_refused_before_any_recursion() {
    // The attack: 16 KB of brackets overflowed a verifier thread's stack and stopped the node.
    let attack = format!("x = {}1{}\n", "(".repeat(8_000), ")".repeat(8_000));
    // A thread with a tiny stack: the check itself must not recurse.
    let checked = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || check_program(&attack, &Limits::default()))
        .expect("a thread")
        .join()
        .expect("the check does not overflow");
    match checked {
        Err(ContractError::InvalidProgram(why)) => assert!(why.contains("nests deeper than"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_deepest_programs_allowed_parse_and_run_on_a_quarter_of_the_contract_stack() {
    let shapes: Vec<Box<dyn Fn(usize) -> String>> = vec![
        Box::new(|n| format!("def f():\n    return {}1{}\n", "(".repeat(n), ")".repeat(n))),
        Box::new(|n| format!("def f():\n    return {}[1]{}\n", "[".repeat(n), "]".repeat(n))),
        Box::new(|n| format!("def f():\n    return {}1\n", "-".repeat(n))),
        Box::new(|n| format!("def f():\n    return 1{}\n", " + 1".repeat(n))),
        Box::new(|n| format!("def f():\n    return {}True\n", "not ".repeat(n))),
        Box::new(|n| format!("def f():\n    return 1{}\n", " if True else 1".repeat(n))),
        Box::new(|n| format!("def f():\n    return ({}1)\n", "lambda: ".repeat(n))),
        Box::new(|n| format!("def f():\n    return \"x\"{}\n", ".upper()".repeat(n))),
        Box::new(|n| {
            let mut code = "def f():\n".to_string();
            for depth in 1..=n {
                code.push_str(&format!("{}if True:\n", "    ".repeat(depth)));
            }
            code + &"    ".repeat(n + 1) + "return 1\n"
        }),
    ];
    for shape in shapes {
        let code = deepest_allowed(shape);
        let ran = std::thread::Builder::new()
            .stack_size(STACK_BYTES / 4)
            .spawn(move || {
                let mut contract = Scratch::new(&code, who("contract"));
                let deployed = contract.run(Entry::Deploy, "[]", who("owner"), Amount::ZERO, GAS);
                let called = contract.run(Entry::Call("f"), "[]", who("alice"), Amount::ZERO, GAS);
                (deployed.result, called.result)
            })
            .expect("a thread")
            .join();
        let (deployed, _called) = ran.expect("parsing and running fit in a quarter of the stack");
        assert!(deployed.is_ok(), "{deployed:?}");
    }
}
