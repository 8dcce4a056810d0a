/*
 * Goodwill's patch (see GOODWILL.md at the root of this crate).
 *
 * Licensed under the Apache License, Version 2.0 like the rest of this crate.
 */

//! A budget of memory and work for the evaluation running on this thread.
//!
//! Starlark's own limits (`set_max_heap_size`, `set_max_tick_count`) are checked every 1,000
//! ticks, after the fact, and count neither memory outside the arena (dict storage, big
//! integers, strings built before they are copied in) nor the work of a builtin whose cost grows
//! with its input. A host that runs programs written by strangers needs both checked *before*
//! the allocation or the work happens. While a [`Guard`] from [`enter`] lives on a thread:
//!
//! - every arena allocation is counted, and one that would pass the budget unwinds with an
//!   [`Exhausted`] payload (the arena cannot return an error; the host catches the unwind);
//! - operators and builtins whose allocation size is known in advance (repetition,
//!   concatenation, `join`, `replace`, formatting, `list`/`tuple`/`sorted` of a sized iterable,
//!   list and dict growth, big integers) check it against the remaining budget first and fail
//!   with an [`Exhausted`] error instead of allocating;
//! - operators and builtins whose time grows with their input (comparisons, `in`, string
//!   methods, slicing, sorting, ...) charge units of work first, and fail once the work budget
//!   is spent.
//!
//! Once a check has failed, every later check on the thread fails too, so a host that asks
//! [`tripped`] after the evaluation sees the failure however the error was wrapped. Without a
//! guard nothing is counted and nothing fails: plain Starlark behaves as upstream.

use std::any::Any;
use std::cell::Cell;

/// What one evaluation may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes: the arena plus memory held outside it, plus any one temporary.
    pub max_bytes: usize,
    /// Units of work (see [`charge`]).
    pub max_work: u64,
}

/// Why an evaluation was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exhausted {
    /// An allocation would have passed the memory budget.
    #[error("memory budget of {limit} bytes exhausted")]
    Memory {
        /// The budget.
        limit: usize,
    },
    /// An operation would have passed the work budget.
    #[error("work budget of {limit} units exhausted")]
    Work {
        /// The budget.
        limit: u64,
    },
}

/// What an evaluation has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated in the arena (nothing is freed while a guard lives: the host disables
    /// garbage collection).
    pub arena_bytes: usize,
    /// Bytes held outside the arena (dict tables, big integers), counted when they grow.
    pub native_bytes: usize,
    /// Units of work charged.
    pub work: u64,
}

#[derive(Clone, Copy)]
struct State {
    budget: Budget,
    usage: Usage,
    tripped: Option<Exhausted>,
    /// Addresses of the arenas counted (the call's heap and frozen heap); 0 is a free place.
    arenas: [usize; 4],
}

thread_local! {
    static STATE: Cell<Option<State>> = const { Cell::new(None) };
}

/// Ends the budget on this thread when dropped.
#[must_use = "the budget ends when the guard is dropped"]
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        STATE.with(|s| s.set(None));
    }
}

/// Starts counting against `budget` on this thread, until the guard is dropped.
pub fn enter(budget: Budget) -> Guard {
    STATE.with(|s| s.set(Some(State { budget, usage: Usage::default(), tripped: None, arenas: [0; 4] })));
    Guard(())
}

/// What the evaluation on this thread has used (zero without a guard).
pub fn usage() -> Usage {
    STATE.with(|s| s.get().map(|s| s.usage).unwrap_or_default())
}

/// The failure that stopped the evaluation, if a check failed.
pub fn tripped() -> Option<Exhausted> {
    STATE.with(|s| s.get().and_then(|s| s.tripped))
}

/// Sets the work budget (a host lowers it as other costs accrue).
pub fn set_max_work(max_work: u64) {
    update(|s| s.budget.max_work = max_work);
}

/// The [`Exhausted`] a caught unwind carries, if it came from an arena allocation.
pub fn exhausted_from_panic(payload: &(dyn Any + Send)) -> Option<Exhausted> {
    payload.downcast_ref::<Exhausted>().copied()
}

/// Runs `f` on the state if a guard is active; `None` otherwise.
fn update<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|cell| {
        let mut state = cell.get()?;
        let r = f(&mut state);
        cell.set(Some(state));
        Some(r)
    })
}

fn memory_check(state: &mut State, bytes: usize) -> Result<(), Exhausted> {
    if let Some(tripped) = state.tripped {
        return Err(tripped);
    }
    let used = state.usage.arena_bytes.saturating_add(state.usage.native_bytes);
    if used.saturating_add(bytes) > state.budget.max_bytes {
        let error = Exhausted::Memory { limit: state.budget.max_bytes };
        state.tripped = Some(error);
        return Err(error);
    }
    Ok(())
}

/// Checks that a temporary of `bytes` (freed before the operation returns) fits in what is
/// left of the budget. Records nothing.
pub(crate) fn reserve(bytes: usize) -> crate::Result<()> {
    update(|s| memory_check(s, bytes)).unwrap_or(Ok(())).map_err(crate::Error::new_other)
}

/// Like [`reserve`] with the size given as a product that may overflow `usize`.
pub(crate) fn reserve_product(count: usize, size: usize) -> crate::Result<()> {
    reserve(count.checked_mul(size).unwrap_or(usize::MAX))
}

/// Makes the arena at `address` counted (see `Heap::sandbox_count`).
pub(crate) fn count_arena(address: usize) {
    update(|s| {
        if !s.arenas.contains(&address) {
            if let Some(free) = s.arenas.iter_mut().find(|a| **a == 0) {
                *free = address;
            }
        }
    });
}

/// Counts an allocation of `bytes` in the arena at `arena`, if it is one of the counted ones;
/// unwinds with [`Exhausted`] if it would pass the budget (the arena's callers cannot take an
/// error). `resume_unwind` runs no panic hook, so nothing is printed.
#[inline]
pub(crate) fn arena_alloc(arena: usize, bytes: usize) {
    let checked = update(|s| {
        if !s.arenas.contains(&arena) {
            return Ok(());
        }
        memory_check(s, bytes)?;
        s.usage.arena_bytes = s.usage.arena_bytes.saturating_add(bytes);
        Ok::<(), Exhausted>(())
    });
    if let Some(Err(exhausted)) = checked {
        std::panic::resume_unwind(Box::new(exhausted));
    }
}

/// Charges `units` of work before doing it; fails once the work budget is spent.
///
/// A unit is about a nanosecond: an 8-byte word scanned or copied ([`bytes_units`]), a quarter
/// of a value visited ([`element_units`]), a byte written into a text. The host prices it.
#[inline]
pub(crate) fn charge(units: usize) -> crate::Result<()> {
    let units = units as u64;
    update(|s| {
        if let Some(tripped) = s.tripped {
            return Err(tripped);
        }
        s.usage.work = s.usage.work.saturating_add(units);
        if s.usage.work > s.budget.max_work {
            let error = Exhausted::Work { limit: s.budget.max_work };
            s.tripped = Some(error);
            return Err(error);
        }
        Ok(())
    })
    .unwrap_or(Ok(()))
    .map_err(crate::Error::new_other)
}

fn active() -> bool {
    STATE.with(|s| s.get().is_some())
}

/// Units to touch all of `v`: its bytes if it is a string ([`bytes_units`]), its elements if it
/// is a list, tuple, dict or range ([`element_units`]), and 1 for anything else.
pub(crate) fn size_of(v: crate::values::Value) -> usize {
    use crate::values::dict::DictRef;
    use crate::values::list::ListRef;
    use crate::values::tuple::TupleRef;
    if !active() {
        return 1;
    }
    if v.unpack_inline_int().is_some() {
        return 1;
    }
    if let Some(s) = v.unpack_str() {
        return bytes_units(s.len());
    }
    let elements = if let Some(l) = ListRef::from_value(v) {
        l.len()
    } else if let Some(t) = TupleRef::from_value(v) {
        t.len()
    } else if let Some(d) = DictRef::from_value(v) {
        d.len()
    } else if v.get_type() == "range" {
        v.length().map_or(0, |n| n.max(0) as usize)
    } else {
        0
    };
    element_units(elements).max(1)
}

/// Units to compare `a` with `b`: 1 for numbers and the like; the shorter one's size (see
/// [`size_of`]) for strings and containers (their elements that are containers are charged
/// again when they are compared in turn).
#[inline]
pub(crate) fn compare_cost(a: crate::values::Value, b: crate::values::Value) -> usize {
    if a.unpack_inline_int().is_some() || b.unpack_inline_int().is_some() || !active() {
        return ELEMENT_UNITS;
    }
    size_of(a).min(size_of(b))
}

/// Whether a text being built (a representation, `str()`, a formatted string), already `len`
/// bytes long (0 where that is not known), should stop before `next` is written into it: the
/// budget has tripped, the text has passed the memory budget, or charging `next` passes the
/// work budget. Charges `next` otherwise, one unit per byte it will write, estimated before:
/// its length plus quotes for a string, [`REPR_UNITS`] for anything else (a container's own
/// brackets and separators; its elements are charged as they are written). So a text is never
/// longer than the work charged for it, times 4 for a string of characters that need escapes.
#[inline]
pub(crate) fn text_stop(len: usize, next: crate::values::Value) -> bool {
    let Some(state) = STATE.with(|s| s.get()) else {
        return false;
    };
    if state.tripped.is_some() || len > state.budget.max_bytes {
        return true;
    }
    let units = next.unpack_str().map_or(REPR_UNITS, |s| s.len() + 2);
    charge(units).is_err()
}

/// Units charged for writing a value that is not a string into a text: the longest an integer
/// below 2^64, a float, `None` or `True` can be, and a container's brackets and separator.
pub(crate) const REPR_UNITS: usize = 24;

/// Counts memory held outside the arena that grows without a way to return an error (a dict
/// entry, a big integer); unwinds like [`arena_alloc`] if it would pass the budget.
pub(crate) fn native_alloc(bytes: usize) {
    let checked = update(|s| {
        memory_check(s, bytes)?;
        s.usage.native_bytes = s.usage.native_bytes.saturating_add(bytes);
        Ok::<(), Exhausted>(())
    });
    if let Some(Err(exhausted)) = checked {
        std::panic::resume_unwind(Box::new(exhausted));
    }
}

/// Charges work that cannot return an error where it happens (big-integer arithmetic): past
/// the budget the thread is tripped, so the next check fails.
pub(crate) fn charge_later(units: usize) {
    let _ = charge(units);
}

/// Units to scan or copy `bytes` bytes: one per 8-byte word.
#[inline]
pub(crate) fn bytes_units(bytes: usize) -> usize {
    bytes / 8 + 1
}

/// Units to visit, copy or compare `elements` values.
#[inline]
pub(crate) fn element_units(elements: usize) -> usize {
    elements.saturating_mul(ELEMENT_UNITS)
}

/// Units per value visited: a value costs about what 32 bytes of a string cost.
pub(crate) const ELEMENT_UNITS: usize = 4;

/// Bytes a dict entry is counted as (key, value, hash and the index, with room to grow).
pub(crate) const DICT_ENTRY_BYTES: usize = 64;

/// Global functions whose work grows with their arguments' size: each call is charged the
/// size of its positional arguments first (see [`size_of`]).
pub(crate) fn scans_arguments(name: &str) -> bool {
    matches!(
        name,
        "all" | "any" | "dict" | "enumerate" | "int" | "list" | "max" | "min" | "reversed"
            | "sorted" | "tuple" | "zip" | "hash" | "set"
    )
}

/// Charges a call of a native function or method: the size of each positional argument if
/// `scans` (and of the receiver `this`, if it is a string: every string method scans it).
#[inline]
pub(crate) fn charge_call(
    this: Option<crate::values::Value>,
    args: &crate::eval::Arguments,
    scans: bool,
) -> crate::Result<()> {
    if !active() {
        return Ok(());
    }
    // A string method's scan (finding, counting, converting character indices) costs about
    // four times a plain copy of its bytes (measured by the contract gas benchmark).
    let receiver = this.and_then(|t| t.unpack_str()).map(|s| 4 * bytes_units(s.len()));
    if !scans && receiver.is_none() {
        return Ok(());
    }
    let cost = |a: crate::values::Value| {
        if scans { size_of(a) } else { a.unpack_str().map_or(0, |s| bytes_units(s.len())) }
    };
    let mut units = receiver.unwrap_or(0);
    for &a in args.0.pos {
        units = units.saturating_add(cost(a));
    }
    // `f(*xs)`: the elements of `xs` are arguments too.
    if let Some(star) = args.0.args {
        let elements = crate::values::list::ListRef::from_value(star)
            .map(|l| l.content())
            .or_else(|| crate::values::tuple::TupleRef::from_value(star).map(|t| t.content()));
        for &a in elements.unwrap_or(&[]) {
            units = units.saturating_add(cost(a));
        }
    }
    charge(units)
}

/// The most bits an integer may have while a budget is active (upstream already refuses to
/// shift left by more).
pub const MAX_INT_BITS: u64 = 100_000;

/// Unwinds as out of memory if an integer of `bits` is larger than [`MAX_INT_BITS`].
pub(crate) fn check_int_bits(bits: u64) {
    if bits > MAX_INT_BITS && active() {
        let exhausted = update(|s| {
            let error = Exhausted::Memory { limit: s.budget.max_bytes };
            s.tripped.get_or_insert(error);
            error
        });
        if let Some(exhausted) = exhausted {
            std::panic::resume_unwind(Box::new(exhausted));
        }
    }
}

/// The most characters `int()` parses: a decimal number of [`MAX_INT_BITS`] bits, and a sign.
pub const MAX_INT_DIGITS: usize = 30_200;

/// Fails if a text of `len` characters is longer than [`MAX_INT_DIGITS`]; charges the parse
/// first otherwise (quadratic in the length: one unit per pair of 19-digit limbs).
pub(crate) fn check_int_digits(len: usize) -> crate::Result<()> {
    if !active() {
        return Ok(());
    }
    if len > MAX_INT_DIGITS {
        return Err(crate::Error::new_other(anyhow::anyhow!(
            "int() parses at most {MAX_INT_DIGITS} digits (an integer may have at most {MAX_INT_BITS} bits)"
        )));
    }
    let limbs = len / 19 + 1;
    charge(limbs * limbs)
}
