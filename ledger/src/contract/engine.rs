//! The contract engine: the Starlark interpreter, metered, with the host API. Compiled into
//! main nodes only (feature `node`): a light peer checks no program.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use starlark::codemap::FileSpanRef;
use starlark::environment::{Globals, GlobalsBuilder, Module};
use starlark::eval::{BeforeStmtFuncDyn, Evaluator};
use starlark::sandbox::{self, Budget, Exhausted};
use starlark::starlark_module;
use starlark::syntax::{AstModule, Dialect};
use starlark::values::Value;
use starlark::values::none::NoneType;

use super::{
    CallContext, ContractError, ContractState, Effects, Entry, Event, Limits, Outcome, gas, nesting,
};
use crate::{Address, Amount};

/// The host side of a running call, reached from Starlark through `Evaluator::extra`.
use host_type::{Host, HostInner};

mod host_type {
    // starlark's `ProvidesStaticType` derive writes an `unsafe impl` (a type id for a type with a
    // lifetime): the library's own mechanism for `Evaluator::extra`, and the one unsafe item in
    // the workspace.
    #![allow(unsafe_code)]

    use std::cell::RefCell;

    use starlark::any::ProvidesStaticType;

    use super::{CallContext, ContractError, ContractState, Effects, Limits};

    #[derive(ProvidesStaticType)]
    pub(super) struct Host<'s> {
        pub(super) state: &'s dyn ContractState,
        pub(super) context: CallContext,
        pub(super) limits: Limits,
        pub(super) gas_limit: u64,
        pub(super) inner: RefCell<HostInner>,
    }

    #[derive(Default)]
    pub(super) struct HostInner {
        /// Gas of host calls, statements and code so far (ticks and heap are read from the
        /// evaluator).
        pub(super) gas: u64,
        pub(super) effects: Effects,
        /// Coins sent so far.
        pub(super) sent: u128,
        /// Net storage entries added by this call.
        pub(super) added_entries: i64,
        /// Why the host stopped the call, when it did.
        pub(super) abort: Option<ContractError>,
    }
}

impl Host<'_> {
    /// Charges `gas`; records and returns the failure if that passes the limit.
    fn charge(&self, gas: u64) -> Result<(), ContractError> {
        let mut inner = self.inner.borrow_mut();
        inner.gas = inner.gas.saturating_add(gas);
        if inner.gas > self.gas_limit {
            let error = ContractError::OutOfGas { limit: self.gas_limit };
            inner.abort = Some(error.clone());
            return Err(error);
        }
        Ok(())
    }

    /// Records `error` as the reason the call stops.
    fn abort(&self, error: ContractError) -> anyhow::Error {
        let message = error.to_string();
        self.inner.borrow_mut().abort.get_or_insert(error);
        anyhow::anyhow!(message)
    }
}

fn host<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a Host<'a>> {
    eval.extra
        .and_then(|extra| extra.downcast_ref::<Host>())
        .ok_or_else(|| anyhow::anyhow!("no host: this function runs only inside a contract call"))
}

/// Total gas: host calls, statements and code, plus the evaluator's ticks, the memory and the
/// work the sandbox counted.
fn total_gas(host: &Host, eval: &Evaluator) -> u64 {
    let inner = host.inner.borrow();
    let usage = sandbox::usage();
    let heap_kib = (usage.arena_bytes.saturating_add(usage.native_bytes) / 1024) as u64;
    inner
        .gas
        .saturating_add(eval.get_total_tick_count().saturating_mul(gas::TICK))
        .saturating_add(eval.instruction_count().saturating_mul(gas::INSTRUCTION))
        .saturating_add(heap_kib.saturating_mul(gas::HEAP_KIB))
        .saturating_add(usage.work.saturating_mul(gas::WORK))
}

/// The contract error a tripped sandbox budget means.
fn exhausted(exhausted: Exhausted, host: &Host) -> ContractError {
    match exhausted {
        Exhausted::Memory { .. } => ContractError::OutOfMemory { limit: host.limits.max_heap_bytes },
        Exhausted::Work { .. } => ContractError::OutOfGas { limit: host.gas_limit },
    }
}

/// Runs before every statement: charges it, stops the call at the gas bound or a tripped
/// budget, and gives the sandbox what is left of the gas as work.
struct Meter;

impl<'e> BeforeStmtFuncDyn<'e> for Meter {
    fn call<'v>(
        &mut self,
        _: FileSpanRef,
        _: bool,
        eval: &mut Evaluator<'v, '_, 'e>,
    ) -> starlark::Result<()> {
        let host = host(eval).map_err(starlark::Error::new_other)?;
        host.charge(gas::STATEMENT).map_err(|e| starlark::Error::new_other(host.abort(e)))?;
        if let Some(tripped) = sandbox::tripped() {
            return Err(starlark::Error::new_other(host.abort(exhausted(tripped, host))));
        }
        let used = total_gas(host, eval);
        if used > host.gas_limit {
            let error = ContractError::OutOfGas { limit: host.gas_limit };
            return Err(starlark::Error::new_other(host.abort(error)));
        }
        sandbox::set_max_work(sandbox::usage().work + (host.gas_limit - used) / gas::WORK);
        Ok(())
    }
}

#[starlark_module]
fn host_api(builder: &mut GlobalsBuilder) {
    /// The address that sent the call (a `gw1...` string).
    fn caller(eval: &mut Evaluator) -> anyhow::Result<String> {
        let host = host(eval)?;
        host.charge(gas::HOST_CALL)?;
        Ok(host.context.caller.to_string())
    }

    /// This contract's address.
    fn this_contract(eval: &mut Evaluator) -> anyhow::Result<String> {
        let host = host(eval)?;
        host.charge(gas::HOST_CALL)?;
        Ok(host.context.contract.to_string())
    }

    /// Coins attached to the call, in base units.
    fn attached(eval: &mut Evaluator) -> anyhow::Result<u64> {
        let host = host(eval)?;
        host.charge(gas::HOST_CALL)?;
        Ok(host.context.value.0)
    }

    /// Height of the block the call is in.
    fn block_height(eval: &mut Evaluator) -> anyhow::Result<u64> {
        let host = host(eval)?;
        host.charge(gas::HOST_CALL)?;
        Ok(host.context.height)
    }

    /// That block's time, ms since the Unix epoch.
    fn block_time_ms(eval: &mut Evaluator) -> anyhow::Result<u64> {
        let host = host(eval)?;
        host.charge(gas::HOST_CALL)?;
        Ok(host.context.time_ms)
    }

    /// The contract's balance, less what this call has sent so far.
    fn balance(eval: &mut Evaluator) -> anyhow::Result<u64> {
        let host = host(eval)?;
        host.charge(gas::HOST_CALL)?;
        let balance = host.state.balance().map_err(|e| host.abort(ContractError::State(e)))?;
        let sent = host.inner.borrow().sent;
        Ok((u128::from(balance.0) - sent.min(u128::from(balance.0))) as u64)
    }

    /// A storage entry, or `default` if unset.
    fn read<'v>(
        #[starlark(require = pos)] key: &str,
        #[starlark(default = NoneType)] default: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let host = host(eval)?;
        check_key(host, key)?;
        let pending = host.inner.borrow().effects.storage.get(key).cloned();
        let stored = match pending {
            Some(value) => value,
            None => host.state.storage(key).map_err(|e| host.abort(ContractError::State(e)))?,
        };
        let touched = key.len() + stored.as_ref().map_or(0, String::len);
        host.charge(gas::STORAGE_READ + gas::STORAGE_BYTE_READ * touched as u64)?;
        match stored {
            None => Ok(default),
            Some(json) => {
                let value: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|e| host.abort(ContractError::State(format!("stored {key:?}: {e}"))))?;
                Ok(eval.heap().alloc(&value))
            }
        }
    }

    /// Sets a storage entry to a JSON-representable value.
    fn write(
        #[starlark(require = pos)] key: &str,
        value: Value,
        eval: &mut Evaluator,
    ) -> anyhow::Result<NoneType> {
        let host = host(eval)?;
        check_key(host, key)?;
        let json = to_json(value, host.limits.max_value_bytes).map_err(|e| {
            host.abort(match e {
                JsonError::TooLarge(limit) => {
                    ContractError::StorageQuota(format!("a value of more than {limit} bytes"))
                }
                JsonError::Invalid(e) => ContractError::Failed(format!("write {key:?}: {e}")),
            })
        })?;
        host.charge(gas::STORAGE_WRITE + gas::STORAGE_BYTE_WRITE * (key.len() + json.len()) as u64)?;
        write_entry(host, key, Some(json))?;
        Ok(NoneType)
    }

    /// Deletes a storage entry (nothing if unset).
    fn delete(#[starlark(require = pos)] key: &str, eval: &mut Evaluator) -> anyhow::Result<NoneType> {
        let host = host(eval)?;
        check_key(host, key)?;
        host.charge(gas::STORAGE_WRITE + gas::STORAGE_BYTE_WRITE * key.len() as u64)?;
        write_entry(host, key, None)?;
        Ok(NoneType)
    }

    /// Sends `amount` base units from the contract to `to` (a `gw1...` address).
    fn transfer(
        #[starlark(require = pos)] to: &str,
        #[starlark(require = pos)] amount: u64,
        eval: &mut Evaluator,
    ) -> anyhow::Result<NoneType> {
        let host = host(eval)?;
        host.charge(gas::TRANSFER)?;
        let to: Address =
            to.parse().map_err(|e| host.abort(ContractError::Failed(format!("transfer to {to:?}: {e}"))))?;
        if amount == 0 {
            return Err(host.abort(ContractError::Failed("transfer of nothing".into())));
        }
        let balance = host.state.balance().map_err(|e| host.abort(ContractError::State(e)))?;
        let wanted = host.inner.borrow().sent + u128::from(amount);
        if wanted > u128::from(balance.0) {
            return Err(host.abort(ContractError::InsufficientFunds { available: balance, wanted }));
        }
        let mut inner = host.inner.borrow_mut();
        inner.sent = wanted;
        inner.effects.transfers.push((to, Amount(amount)));
        Ok(NoneType)
    }

    /// Records an event `name` with JSON-representable `data`.
    fn emit(
        #[starlark(require = pos)] name: &str,
        #[starlark(default = NoneType)] data: Value,
        eval: &mut Evaluator,
    ) -> anyhow::Result<NoneType> {
        let host = host(eval)?;
        let data = to_json(data, host.limits.max_value_bytes)
            .map_err(|e| host.abort(ContractError::Failed(format!("emit {name:?}: {e}"))))?;
        host.charge(gas::EVENT + gas::EVENT_BYTE * (name.len() + data.len()) as u64)?;
        let mut inner = host.inner.borrow_mut();
        if inner.effects.events.len() >= host.limits.max_events || name.len() > host.limits.max_key_bytes {
            drop(inner);
            return Err(host.abort(ContractError::Failed("too many or too large events".into())));
        }
        inner.effects.events.push(Event { name: name.to_string(), data });
        Ok(NoneType)
    }
}

/// Why a value could not become JSON.
#[derive(Debug, thiserror::Error)]
enum JsonError {
    #[error("its JSON is longer than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Invalid(String),
}

/// `value` as JSON, failing as soon as the text passes `limit` bytes: serialising stops there,
/// so a value that holds one large string a million times cannot build a gigabyte first.
fn to_json(value: Value, limit: usize) -> Result<String, JsonError> {
    struct Bounded {
        text: Vec<u8>,
        limit: usize,
        overflowed: bool,
    }
    impl std::io::Write for Bounded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.text.len() + bytes.len() > self.limit {
                self.overflowed = true;
                return Err(std::io::Error::other("too large"));
            }
            self.text.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    check_json_shape(value, limit)?;
    let mut out = Bounded { text: Vec::new(), limit, overflowed: false };
    match serde_json::to_writer(&mut out, &value) {
        Ok(()) => String::from_utf8(out.text).map_err(|e| JsonError::Invalid(e.to_string())),
        Err(_) if out.overflowed => Err(JsonError::TooLarge(limit)),
        Err(e) => Err(JsonError::Invalid(e.to_string())),
    }
}

/// How deeply a value passed to the host or returned may nest: serialising recurses, so this is
/// checked first, without recursion.
pub const MAX_JSON_DEPTH: usize = 32;

/// Walks `value` without recursion: it nests at most [`MAX_JSON_DEPTH`] deep, and has at most
/// `limit` elements (each is at least one byte of JSON, so more could not fit anyway; aliasing
/// could otherwise make the walk exponential).
fn check_json_shape<'v>(value: Value<'v>, limit: usize) -> Result<(), JsonError> {
    use starlark::values::dict::DictRef;
    use starlark::values::list::ListRef;
    use starlark::values::tuple::TupleRef;
    let mut pending = vec![(value, 0usize)];
    let mut visited = 0usize;
    while let Some((value, depth)) = pending.pop() {
        visited += 1;
        if visited > limit {
            return Err(JsonError::TooLarge(limit));
        }
        if depth > MAX_JSON_DEPTH {
            return Err(JsonError::Invalid(format!("it nests deeper than {MAX_JSON_DEPTH} levels")));
        }
        // The queue stays within the limit too.
        let mut push = |children: &[Value<'v>]| {
            if visited + pending.len() + children.len() > limit {
                return Err(JsonError::TooLarge(limit));
            }
            pending.extend(children.iter().map(|&child| (child, depth + 1)));
            Ok(())
        };
        if let Some(list) = ListRef::from_value(value) {
            push(list.content())?;
        } else if let Some(tuple) = TupleRef::from_value(value) {
            push(tuple.content())?;
        } else if let Some(dict) = DictRef::from_value(value) {
            let entries: Vec<Value<'v>> = dict.iter().take(limit).flat_map(|(k, v)| [k, v]).collect();
            push(&entries)?;
        }
    }
    Ok(())
}

fn check_key(host: &Host, key: &str) -> anyhow::Result<()> {
    if key.is_empty() || key.len() > host.limits.max_key_bytes {
        let error =
            format!("a key of {} bytes; keys are 1 to {} bytes", key.len(), host.limits.max_key_bytes);
        return Err(host.abort(ContractError::StorageQuota(error)));
    }
    Ok(())
}

/// Writes (or deletes) an entry in the call's pending storage, within the entry quota.
fn write_entry(host: &Host, key: &str, value: Option<String>) -> anyhow::Result<()> {
    let was_pending = host.inner.borrow().effects.storage.get(key).cloned();
    let existed = match was_pending {
        Some(pending) => pending.is_some(),
        None => host.state.storage(key).map_err(|e| host.abort(ContractError::State(e)))?.is_some(),
    };
    let delta = i64::from(value.is_some()) - i64::from(existed);
    let held = host.state.storage_entries().map_err(|e| host.abort(ContractError::State(e)))?;
    let mut inner = host.inner.borrow_mut();
    let after = held as i64 + inner.added_entries + delta;
    if delta > 0 && after > host.limits.max_storage_entries as i64 {
        drop(inner);
        let error = format!("the contract may hold at most {} entries", host.limits.max_storage_entries);
        return Err(host.abort(ContractError::StorageQuota(error)));
    }
    inner.added_entries += delta;
    inner.effects.storage.insert(key.to_string(), value);
    Ok(())
}

/// The globals a contract sees: the Starlark standard library (no `print` output, no
/// extensions that reach outside) and the host API. Built once: frozen, shared by every call.
///
/// The first use also runs a small program outside any budget, so that the interpreter's
/// lazily built statics (the compiler's constants, the methods of `list` and `str`) are built
/// before a budget applies: a budget that ran out while one was being built would poison it
/// for every later call, and the work of building it would be charged to one call only.
fn globals() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| {
        let globals = GlobalsBuilder::standard().with(host_api).build();
        const WARM_UP: &str = "def f(x):\n    l = [x, x + 1] * 2\n    d = {\"a\": l, 1: (x,)}\n    \
            return len(str(d)) + len(sorted(l)) + len(\"a,b\".split(\",\")) + l.index(x) + len(\"%s\" % d)\nf(1)\n";
        if let Ok(ast) = AstModule::parse("warm-up.star", WARM_UP.to_owned(), &Dialect::Standard) {
            Module::with_temp_heap(|module| {
                let mut eval = Evaluator::new(&module);
                let _ = eval.eval_module(ast, &globals);
            });
        }
        globals
    })
}

/// Checks that `code` is within the size and nesting bounds and parses, without running it.
/// Every door a program comes through (gossip, HTTP, block import, the command line) goes
/// through here before anything recursive reads it.
pub fn check_program(code: &str, limits: &Limits) -> Result<(), ContractError> {
    parse(code, limits).map(drop)
}

/// The program's syntax tree, once its size and nesting are shown to be within bounds.
fn parse(code: &str, limits: &Limits) -> Result<AstModule, ContractError> {
    if code.len() > limits.max_code_bytes {
        return Err(ContractError::InvalidProgram(format!(
            "{} bytes; at most {}",
            code.len(),
            limits.max_code_bytes
        )));
    }
    nesting::check_nesting(code).map_err(ContractError::InvalidProgram)?;
    // Programs come from the network: should the parser ever panic on one, that program is
    // invalid, and the node (a gossip validator, a block import) goes on.
    let parsed =
        std::panic::catch_unwind(|| AstModule::parse("contract.star", code.to_owned(), &Dialect::Standard))
            .map_err(|_| ContractError::InvalidProgram("the parser could not read it".into()))?;
    parsed.map_err(|e| ContractError::InvalidProgram(e.without_diagnostic().to_string()))
}

/// Runs `entry` of the contract `code` with `args` (a JSON array), within `gas_limit`.
///
/// Memory is bounded by `limits.max_heap_bytes` (the interpreter's arena, dict tables and big
/// integers; a temporary buffer is checked against what is left before it is allocated) and
/// work by the gas.
pub fn call(
    code: &str,
    entry: Entry<'_>,
    args: &str,
    context: CallContext,
    state: &dyn ContractState,
    gas_limit: u64,
    limits: &Limits,
) -> Outcome {
    let host =
        Host { state, context, limits: limits.clone(), gas_limit, inner: RefCell::new(HostInner::default()) };
    let base = gas::BASE
        + gas::CODE_BYTE * code.len() as u64
        + if matches!(entry, Entry::Deploy) { gas::DEPLOY_BYTE * code.len() as u64 } else { 0 };
    // Before the budget starts (see `globals`).
    let globals = globals();
    let run = || -> (Result<String, ContractError>, u64) {
        let prepared = host.charge(base).and_then(|()| {
            let ast = parse(code, limits)?;
            if args.len() > limits.max_io_bytes {
                let error = format!("arguments of {} bytes; at most {}", args.len(), limits.max_io_bytes);
                return Err(ContractError::BadData(error));
            }
            let args = serde_json::from_str::<Vec<serde_json::Value>>(args)
                .map_err(|e| ContractError::BadData(format!("arguments must be a JSON array: {e}")))?;
            Ok((ast, args))
        });
        match prepared {
            Ok((ast, args)) => evaluate(&host, globals, ast, entry, &args),
            Err(error) => (Err(error), host.inner.borrow().gas),
        }
    };
    let budget = Budget { max_bytes: limits.max_heap_bytes, max_work: gas_limit / gas::WORK };
    let guard = sandbox::enter(budget);
    // An allocation past the budget unwinds out of the interpreter (the arena cannot return an
    // error); any other panic inside it fails the call on every node alike instead of stopping
    // this one. Either way the call used all its gas.
    let (result, gas) = match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let error = match sandbox::exhausted_from_panic(payload.as_ref()) {
                Some(tripped) => exhausted(tripped, &host),
                None => ContractError::Failed("the interpreter stopped the call".into()),
            };
            (Err(error), gas_limit)
        }
    };
    drop(guard);
    let mut inner = host.inner.into_inner();
    inner.effects.entries_added = inner.added_entries;
    match result {
        Ok(json) if gas <= gas_limit => Outcome { result: Ok(json), gas_used: gas, effects: inner.effects },
        Ok(_) | Err(ContractError::OutOfGas { .. }) => Outcome {
            result: Err(ContractError::OutOfGas { limit: gas_limit }),
            gas_used: gas_limit,
            effects: Effects::default(),
        },
        Err(error) => {
            Outcome { result: Err(error), gas_used: gas.min(gas_limit), effects: Effects::default() }
        }
    }
}

/// Discards `print` output: a contract has no console, and the node's log is not its to fill.
struct NoPrint;

impl starlark::PrintHandler for NoPrint {
    fn println(&self, _: &str) -> starlark::Result<()> {
        Ok(())
    }
}

/// Runs the module, then the entry; returns the result's JSON and the total gas.
fn evaluate(
    host: &Host,
    globals: &Globals,
    ast: AstModule,
    entry: Entry<'_>,
    args: &[serde_json::Value],
) -> (Result<String, ContractError>, u64) {
    let limits = &host.limits;
    Module::with_temp_heap(|module| {
        // Only this call's heaps count against its budget (see `Heap::sandbox_count`).
        module.heap().sandbox_count();
        module.frozen_heap().sandbox_count();
        let mut eval = Evaluator::new(&module);
        eval.extra = Some(host);
        eval.set_print_handler(&NoPrint);
        // A backstop for loops inside one expression, which run no statement hook: the
        // interpreter checks it every 1,000 ticks. Setting each once cannot fail. Memory is
        // the sandbox's: nothing is collected during a call, so what it counts is what is held.
        let ticks = host.gas_limit / gas::TICK + 1;
        let _ = eval.set_max_tick_count(ticks);
        let _ = eval.set_max_callstack_size(limits.max_call_depth);
        eval.disable_gc();
        eval.before_stmt_for_dap(starlark::eval::BeforeStmtFunc::from_dyn(Box::new(Meter)));
        let outcome = (|| -> Result<String, starlark::Error> {
            eval.eval_module(ast, globals)?;
            let function = match entry {
                Entry::Deploy => module.get("init"),
                Entry::Call(name) if name.starts_with('_') => None,
                Entry::Call(name) => match module.get(name) {
                    Some(function) => Some(function),
                    None => {
                        return Err(starlark::Error::new_other(
                            host.abort(ContractError::NoSuchFunction(name.to_string())),
                        ));
                    }
                },
            };
            let result = match (function, entry) {
                (None, Entry::Deploy) => return Ok("null".to_string()),
                (None, Entry::Call(name)) => {
                    return Err(starlark::Error::new_other(
                        host.abort(ContractError::NoSuchFunction(name.to_string())),
                    ));
                }
                (Some(function), _) => {
                    let heap = module.heap();
                    let args: Vec<Value> = args.iter().map(|a| heap.alloc(a)).collect();
                    eval.eval_function(function, &args, &[])?
                }
            };
            to_json(result, limits.max_io_bytes).map_err(|e| {
                starlark::Error::new_other(
                    host.abort(ContractError::BadData(format!("the result is not JSON: {e}"))),
                )
            })
        })();
        let gas = total_gas(host, &eval);
        // A budget that tripped fails the call even if the program went on (an error the
        // interpreter swallowed, inside `list.index` say).
        if let Some(tripped) = sandbox::tripped() {
            return (Err(exhausted(tripped, host)), gas);
        }
        let result = outcome.map_err(|error| {
            if let Some(reason) = host.inner.borrow_mut().abort.take() {
                return reason;
            }
            let text = error.without_diagnostic().to_string();
            match error.kind() {
                starlark::ErrorKind::StackOverflow(_) => {
                    ContractError::CallDepth { limit: limits.max_call_depth }
                }
                _ if text.contains("ticks has been exceeded") => {
                    ContractError::OutOfGas { limit: host.gas_limit }
                }
                _ => ContractError::Failed(text),
            }
        });
        (result, gas)
    })
}

/// A contract on a state of its own, outside any chain: for trying contracts
/// (`goodwill contract run`) and testing them. Calls apply their effects the way the ledger
/// does: attached coins are credited before the call and returned if it fails.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Scratch {
    /// The program.
    pub code: String,
    /// The contract's address.
    pub address: Address,
    /// Its storage.
    pub storage: BTreeMap<String, String>,
    /// Its balance.
    pub balance: Amount,
    /// Coins it sent, to whom, over all calls.
    pub paid: BTreeMap<Address, Amount>,
    /// The height and time calls see.
    pub height: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Bounds.
    #[serde(skip)]
    pub limits: Limits,
}

impl ContractState for Scratch {
    fn storage(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.storage.get(key).cloned())
    }

    fn storage_entries(&self) -> Result<u64, String> {
        Ok(self.storage.len() as u64)
    }

    fn balance(&self) -> Result<Amount, String> {
        Ok(self.balance)
    }
}

impl Scratch {
    /// A contract with `code` at `address`, not yet deployed.
    pub fn new(code: &str, address: Address) -> Scratch {
        Scratch {
            code: code.to_string(),
            address,
            storage: BTreeMap::new(),
            balance: Amount::ZERO,
            paid: BTreeMap::new(),
            height: 1,
            time_ms: 0,
            limits: Limits::default(),
        }
    }

    /// Runs `entry` from `caller` with `value` attached; on success applies its effects.
    pub fn run(
        &mut self,
        entry: Entry<'_>,
        args: &str,
        caller: Address,
        value: Amount,
        gas_limit: u64,
    ) -> Outcome {
        let before = self.balance;
        self.balance = self.balance.checked_add(value).unwrap_or(Amount(u64::MAX));
        let context =
            CallContext { contract: self.address, caller, value, height: self.height, time_ms: self.time_ms };
        let code = self.code.clone();
        let outcome = call(&code, entry, args, context, self, gas_limit, &self.limits.clone());
        if outcome.result.is_err() {
            self.balance = before;
            return outcome;
        }
        for (key, value) in &outcome.effects.storage {
            match value {
                Some(value) => self.storage.insert(key.clone(), value.clone()),
                None => self.storage.remove(key),
            };
        }
        for (to, amount) in &outcome.effects.transfers {
            self.balance = Amount(self.balance.0 - amount.0);
            let paid = self.paid.entry(*to).or_insert(Amount::ZERO);
            *paid = Amount(paid.0.saturating_add(amount.0));
        }
        outcome
    }
}
