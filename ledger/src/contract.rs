//! Contracts: programs in Python syntax (Starlark) that every main node runs with the same result.
//!
//! A contract is a Starlark module. Its top-level code defines functions; calling a contract
//! runs the module and then one of its public functions (a name not starting with `_`) with
//! JSON arguments, and returns a JSON result. Deploying runs `init(*args)` if the module defines
//! it. Starlark has no I/O, clock or randomness, keeps dicts in insertion order and has integers
//! without overflow, so the same call on the same state gives the same result everywhere.
//!
//! What a contract can touch is the host API below, nothing else: its caller, the coins
//! attached to the call, the block's height and time, its own balance and key-value storage,
//! transfers from its own balance, and events. [`call`] is pure: it reads the contract's state
//! through [`ContractState`] and returns what the call would change as [`Effects`]; the ledger
//! applies them only if the call succeeded. A failed call changes nothing but still uses gas.
//!
//! Metering ([`gas`]): every statement, every function call and loop iteration (the
//! interpreter's ticks), every KiB the call allocates, every unit of work an operator or builtin
//! does (bytes scanned or copied, elements visited), and every host call priced by the bytes it
//! touches. The interpreter is Goodwill's patched copy of `starlark` 0.14.2
//! (`vendor/starlark/GOODWILL.md`): it checks each allocation against the call's memory budget
//! *before* it happens and charges work before doing it, so no program can ask the allocator
//! for more than the call may use, whatever operator it uses. Gas is checked before every
//! statement and by every charge. Programs are measured before they are parsed ([`nesting`]),
//! so no program can overflow the stack of the thread that reads it. Gas depends on how the
//! interpreter counts, so changing it is a protocol change.

use std::collections::BTreeMap;

use crate::{Address, Amount};

#[cfg(feature = "node")]
mod engine;
pub mod nesting;

#[cfg(feature = "node")]
pub use engine::{MAX_JSON_DEPTH, Scratch, call, check_program};
pub use nesting::MAX_NESTING;

/// The most gas one transaction may bring: what one call may cost, whatever fee it pays. A
/// block holds at most the chain's `max_block_gas` (`Params`).
pub const MAX_TRANSACTION_GAS: u64 = 10_000_000;

/// The stack a thread that parses or runs contracts is given. The deepest program
/// [`MAX_NESTING`] allows parses and runs on a quarter of it (tested).
pub const STACK_BYTES: usize = 16 * 1024 * 1024;

/// Domain tag of contract addresses.
const CONTRACT_ADDRESS_DOMAIN: &[u8] = b"goodwill/contract-address/v1";

/// The address of the contract that `sender` deploys with its transaction of `nonce`: no key
/// signs for it, so only the contract's own code moves its coins.
pub fn contract_address(sender: &Address, nonce: u64) -> Address {
    let mut data = [0u8; 40];
    data[..32].copy_from_slice(sender.as_bytes());
    data[32..].copy_from_slice(&nonce.to_be_bytes());
    Address(crate::Hash::tagged(CONTRACT_ADDRESS_DOMAIN, &data).0)
}

/// The gas schedule. Every figure is part of the protocol.
pub mod gas {
    /// Every call and every deployment, before any code runs.
    pub const BASE: u64 = 2_000;
    /// Per byte of code run (the module is parsed on every call).
    pub const CODE_BYTE: u64 = 2;
    /// Per byte of code stored, on deployment.
    pub const DEPLOY_BYTE: u64 = 20;
    /// Per statement executed.
    pub const STATEMENT: u64 = 5;
    /// Per interpreter tick: a function call or a loop iteration.
    pub const TICK: u64 = 8;
    /// Per bytecode instruction executed (an operator, a load, a store, a jump).
    pub const INSTRUCTION: u64 = 2;
    /// Per KiB allocated (the interpreter's arena, dict tables and big integers).
    pub const HEAP_KIB: u64 = 64;
    /// Per unit of work an operator or builtin does before it does it: a byte scanned or
    /// copied, an element visited or compared (`vendor/starlark/GOODWILL.md` lists them).
    pub const WORK: u64 = 1;
    /// Per storage read, plus [`STORAGE_BYTE_READ`] per byte of key and value.
    pub const STORAGE_READ: u64 = 100;
    /// Per byte a storage read touches.
    pub const STORAGE_BYTE_READ: u64 = 1;
    /// Per storage write or deletion, plus [`STORAGE_BYTE_WRITE`] per byte of key and value.
    pub const STORAGE_WRITE: u64 = 1_000;
    /// Per byte a storage write stores.
    pub const STORAGE_BYTE_WRITE: u64 = 10;
    /// Per transfer from the contract.
    pub const TRANSFER: u64 = 500;
    /// Per event, plus [`EVENT_BYTE`] per byte of its name and data.
    pub const EVENT: u64 = 200;
    /// Per byte of an event.
    pub const EVENT_BYTE: u64 = 4;
    /// Per other host call (caller, value, height, time, balance).
    pub const HOST_CALL: u64 = 20;
}

/// Bounds no call may pass, whatever gas it brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest program.
    pub max_code_bytes: usize,
    /// Most bytes a call may allocate on the Starlark heap.
    pub max_heap_bytes: usize,
    /// Deepest call stack.
    pub max_call_depth: usize,
    /// Most storage entries one contract may hold.
    pub max_storage_entries: u64,
    /// Longest storage key.
    pub max_key_bytes: usize,
    /// Largest storage value (JSON).
    pub max_value_bytes: usize,
    /// Most events per call.
    pub max_events: usize,
    /// Largest arguments or result (JSON).
    pub max_io_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_code_bytes: 64 * 1024,
            max_heap_bytes: 32 * 1024 * 1024,
            max_call_depth: 64,
            max_storage_entries: 100_000,
            max_key_bytes: 128,
            max_value_bytes: 16 * 1024,
            max_events: 64,
            max_io_bytes: 16 * 1024,
        }
    }
}

/// Why a call failed. Every failure rolls the call's effects back; the gas is still used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The program does not parse, is too large, or nests too deeply.
    #[error("the program is invalid: {0}")]
    InvalidProgram(String),
    /// No public function of that name.
    #[error("the contract has no public function {0:?}")]
    NoSuchFunction(String),
    /// Arguments or result too large, or not representable as JSON.
    #[error("bad arguments or result: {0}")]
    BadData(String),
    /// The call used all the gas it brought.
    #[error("out of gas: the call may use {limit}")]
    OutOfGas {
        /// The gas limit.
        limit: u64,
    },
    /// The call allocated more than the heap bound.
    #[error("the call allocated more than {limit} bytes")]
    OutOfMemory {
        /// The bound.
        limit: usize,
    },
    /// The call stack grew past its bound.
    #[error("the call stack is deeper than {limit}")]
    CallDepth {
        /// The bound.
        limit: usize,
    },
    /// A storage key, value or entry count beyond its bound.
    #[error("storage quota: {0}")]
    StorageQuota(String),
    /// The contract tried to send more than it holds.
    #[error("the contract holds {available} and cannot send {wanted}")]
    InsufficientFunds {
        /// Its balance.
        available: Amount,
        /// What it tried to send in all.
        wanted: u128,
    },
    /// `fail(...)`, a runtime error in the program, or a bad host-call argument.
    #[error("the contract failed: {0}")]
    Failed(String),
    /// The node could not read the contract's state (not the contract's fault; the block is
    /// not applied).
    #[error("the contract's state could not be read: {0}")]
    State(String),
}

/// An event a call emitted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Its name.
    pub name: String,
    /// Its data, JSON.
    pub data: String,
}

/// What a successful call changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Storage keys written (`Some(json)`) or deleted (`None`).
    pub storage: BTreeMap<String, Option<String>>,
    /// Coins sent from the contract, in order.
    pub transfers: Vec<(Address, Amount)>,
    /// Events, in order.
    pub events: Vec<Event>,
    /// How many storage entries the call added, net of those it deleted.
    pub entries_added: i64,
}

/// The outcome of a call: its result (JSON) or why it failed, the gas it used, and, on
/// success, what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The function's return value as JSON, or the failure.
    pub result: Result<String, ContractError>,
    /// Gas used, at most the limit.
    pub gas_used: u64,
    /// Empty unless the call succeeded.
    pub effects: Effects,
}

/// The contract's state as the block so far left it.
pub trait ContractState {
    /// A storage entry (JSON), if set.
    fn storage(&self, key: &str) -> Result<Option<String>, String>;
    /// How many storage entries the contract holds.
    fn storage_entries(&self) -> Result<u64, String>;
    /// The contract's balance, the call's attached coins included.
    fn balance(&self) -> Result<Amount, String>;
}

/// Who calls what, where.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The contract's address.
    pub contract: Address,
    /// The transaction's sender.
    pub caller: Address,
    /// Coins the caller attached (already credited to the contract).
    pub value: Amount,
    /// Height of the block the call is in.
    pub height: u64,
    /// That block's timestamp, ms since the Unix epoch.
    pub time_ms: u64,
}

/// What a call runs.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// A deployment: the module, then `init(*args)` if it defines `init`.
    Deploy,
    /// A call of a public function.
    Call(&'a str),
}

#[cfg(test)]
mod tests;
