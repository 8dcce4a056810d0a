//! Grammar-driven fuzzing of the contract parser and engine: programs built from Starlark's
//! pieces (expressions of every operator and builtin, nested to random depths, statements and
//! blocks) and byte soup. Whatever a program is, checking and running it must end in a result
//! or a contract error, never a panic that escapes, a stack overflow or an abort, and two runs
//! must agree.
//!
//! CI runs a few hundred cases (seconds); a longer run: `PROPTEST_CASES=20000 cargo test
//! --release -p goodwill-ledger --test it contract_fuzz` (figures in docs/benchmarks.md).
#![allow(missing_docs)]

use goodwill_ledger::contract::{self, Entry, Scratch};
use goodwill_ledger::{Amount, Keypair};
use proptest::prelude::*;

/// Gas for each fuzzed call: enough to reach deep into a program, small enough to be quick.
const GAS: u64 = 300_000;

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..1000).prop_map(|n| n.to_string()),
        Just("2147483647".to_string()),
        Just("\"ab\"".to_string()),
        Just("(\"x\" * 300)".to_string()),
        Just("[1, 2, 3]".to_string()),
        Just("(1, \"a\")".to_string()),
        Just("{\"k\": [1]}".to_string()),
        Just("range(100)".to_string()),
        Just("x".to_string()),
        Just("None".to_string()),
        Just("True".to_string()),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(12, 96, 4, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(
                    &["+", "-", "*", "%", "//", "==", "<", "in", "and", "or", "|", "&", "<<"][..]
                ),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (prop::sample::select(&["-", "not ", "~"][..]), inner.clone())
                .prop_map(|(op, a)| format!("({op}{a})")),
            (
                prop::sample::select(
                    &[
                        "len",
                        "str",
                        "repr",
                        "sorted",
                        "list",
                        "tuple",
                        "max",
                        "min",
                        "reversed",
                        "enumerate",
                        "hash",
                        "int",
                        "type",
                        "bool",
                        "any",
                        "all",
                        "dict"
                    ][..]
                ),
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
            (
                inner.clone(),
                prop::sample::select(
                    &[
                        "upper()",
                        "split(\",\")",
                        "join([\"a\", \"b\"])",
                        "replace(\"a\", \"bb\")",
                        "count(\"a\")",
                        "find(\"b\")",
                        "strip()",
                        "format(1, 2)",
                        "elems()",
                        "keys()",
                        "append(1)",
                        "index(1)",
                        "pop()"
                    ][..]
                )
            )
                .prop_map(|(a, m)| format!("({a}).{m}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{{a}: {b}}}")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("({a} if {b} else {c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})[{b}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a} for x in {b}]")),
            inner.clone().prop_map(|a| format!("\"%s\" % ({a},)")),
            inner.prop_map(|a| format!("(lambda y: {a})(1)")),
        ]
    })
}

fn statement() -> impl Strategy<Value = String> {
    let simple = prop_oneof![
        expression().prop_map(|e| format!("x = {e}")),
        expression().prop_map(|e| format!("write(\"k\", {e})")),
        expression().prop_map(|e| format!("emit(\"e\", {e})")),
        expression().prop_map(|e| format!("return {e}")),
    ];
    simple.prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            (expression(), prop::collection::vec(inner.clone(), 1..3))
                .prop_map(|(c, body)| block(&format!("if {c}:"), &body)),
            (expression(), prop::collection::vec(inner.clone(), 1..3))
                .prop_map(|(c, body)| block(&format!("for x in {c}:"), &body)),
            prop::collection::vec(inner, 1..3).prop_map(|body| body.join("\n")),
        ]
    })
}

fn block(head: &str, body: &[String]) -> String {
    let indented: Vec<String> = body.join("\n").lines().map(|line| format!("    {line}")).collect();
    format!("{head}\n{}", indented.join("\n"))
}

fn program() -> impl Strategy<Value = String> {
    prop::collection::vec(statement(), 1..4).prop_map(|body| {
        let body = body.join("\n");
        let indented: Vec<String> = body.lines().map(|line| format!("    {line}")).collect();
        format!("def f(x):\n{}\n", indented.join("\n"))
    })
}

/// Deploys and calls `code` on a thread with a quarter of the stack a node gives contracts.
fn run(code: String) -> (String, u64, String, u64) {
    std::thread::Builder::new()
        .stack_size(contract::STACK_BYTES / 4)
        .spawn(move || {
            let key = Keypair::insecure_dev("fuzz").address();
            let mut scratch = Scratch::new(&code, key);
            let deployed = scratch.run(Entry::Deploy, "[]", key, Amount::ZERO, GAS);
            let called = scratch.run(Entry::Call("f"), "[[1, 2, \"ab\"]]", key, Amount::ZERO, GAS);
            (
                format!("{:?}", deployed.result),
                deployed.gas_used,
                format!("{:?}", called.result),
                called.gas_used,
            )
        })
        .expect("a thread")
        .join()
        .expect("no panic escapes the engine")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_programs_end_in_a_result_or_an_error_and_agree_twice(code in program()) {
        let first = run(code.clone());
        prop_assert!(first.1 <= GAS && first.3 <= GAS, "gas used beyond the limit: {first:?}");
        prop_assert_eq!(&first, &run(code), "two runs of one program disagree");
    }

    #[test]
    fn byte_soup_is_checked_without_panicking(code in "[ -~\n\t(\\[{}\\])]{0,2000}") {
        let _ = std::thread::Builder::new()
            .stack_size(contract::STACK_BYTES / 4)
            .spawn(move || contract::check_program(&code, &contract::Limits::default()))
            .expect("a thread")
            .join()
            .expect("the check does not panic");
    }
}
