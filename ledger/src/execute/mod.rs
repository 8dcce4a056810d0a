//! The state transition: which transactions and blocks are valid, and what they do.
//!
//! Everything here is pure. State is read through a [`TreeReader`] at the parent's version and
//! the result comes back as a value ([`AppliedBlock`]) for the store to commit; an invalid
//! transaction or block returns an error and leaves nothing behind. No clock, no I/O of its own.
//!
//! Laid out by concern: `errors` (why a transaction or block is refused), `stateless` (the rules
//! every node judges alike, without state), `executor` (the state transition, a module per
//! payload kind), `header` (what a block proves about itself and its parent) and `builder` (a
//! forger's block). Every payload's handler reads into locals, checks everything, and returns what
//! to write; the executor writes only after every check has passed.

#[cfg(feature = "node")]
mod builder;
mod errors;
#[cfg(feature = "node")]
mod executor;
mod header;
#[cfg(feature = "node")]
mod stateless;

#[cfg(feature = "node")]
use jmt::storage::TreeReader;

#[cfg(feature = "node")]
pub use builder::BlockBuilder;
pub use errors::{ApplyError, BlockError, ContractReceipt, Receipt, TxError, receipts_root};
#[cfg(feature = "node")]
pub use executor::Executor;
pub use header::{check_contents, check_header};
#[cfg(feature = "node")]
pub use stateless::{
    MAX_ASSOCIATION_NAME_BYTES, MAX_FUNCTION_NAME_BYTES, MAX_PROOF_URL_BYTES, MAX_SCHEDULE_PERIOD_SLOTS,
    MAX_SCHEDULE_TIMES, MAX_SCHEDULES, MAX_SCHEDULES_PER_ACCOUNT, check_rules, check_stateless,
    check_stateless_all,
};

use crate::Block;
use crate::state::StateUpdate;
#[cfg(feature = "node")]
use crate::{ChainSpec, Hash, SealedHeader, Transaction};

/// A block checked against its parent and applied: what the store commits.
#[derive(Debug, Clone)]
pub struct AppliedBlock {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// The state it produces.
    pub state: StateUpdate,
}

#[cfg(feature = "node")]
/// `apply(state, block) -> (state', receipts)`: checks `block` on top of `parent` (whose state
/// `reader` holds) and returns what it changes, or why it is invalid. Writes nothing.
pub fn apply_block<R: TreeReader + ?Sized>(
    reader: &R,
    spec: &ChainSpec,
    genesis: &Hash,
    parent: &SealedHeader,
    block: Block,
) -> Result<AppliedBlock, ApplyError<BlockError>> {
    apply_block_with(reader, spec, genesis, parent, block, &|_| false)
}

#[cfg(feature = "node")]
/// [`apply_block`], skipping the signature check of each transaction for which `verified`
/// holds. `verified` must answer for the transaction's exact bytes, signature included (two
/// transactions with one body and different signatures have the same id): a node that skipped a
/// signature another node checks would otherwise accept a block the other refuses.
pub fn apply_block_with<R: TreeReader + ?Sized>(
    reader: &R,
    spec: &ChainSpec,
    genesis: &Hash,
    parent: &SealedHeader,
    block: Block,
    verified: &dyn Fn(&Transaction) -> bool,
) -> Result<AppliedBlock, ApplyError<BlockError>> {
    let executor = Executor::new(reader, spec, *genesis, parent.header().height, block.header().slot);
    apply_block_in(executor, spec, genesis, parent, block, verified)
}

#[cfg(feature = "node")]
/// [`apply_block_with`] on a given executor: one made for `parent`'s state and `block`'s slot.
pub(crate) fn apply_block_in<R: TreeReader + ?Sized>(
    mut executor: Executor<'_, R>,
    spec: &ChainSpec,
    genesis: &Hash,
    parent: &SealedHeader,
    block: Block,
    verified: &dyn Fn(&Transaction) -> bool,
) -> Result<AppliedBlock, ApplyError<BlockError>> {
    check_header(spec, genesis, parent, &block).map_err(ApplyError::Invalid)?;
    // The signatures not verified yet, checked together before anything is applied (a block with
    // a bad one is refused whole); the refusal names the first transaction that breaks a rule,
    // in block order, as checking one by one would.
    let unverified: Vec<bool> = block.transactions.iter().map(|tx| !verified(tx)).collect();
    let mut signatures = Transaction::verify_signatures(
        genesis,
        block.transactions.iter().zip(&unverified).filter(|(_, unverified)| **unverified).map(|(tx, _)| tx),
    )
    .into_iter();
    executor.begin_block(block.header())?;
    for (index, tx) in block.transactions.iter().enumerate() {
        let signature_ok = !unverified[index] || signatures.next() == Some(true);
        let checked =
            check_rules(tx, spec).and(if signature_ok { Ok(()) } else { Err(TxError::BadSignature) });
        let applied = match checked {
            Ok(()) => executor.apply_checked(tx),
            Err(reason) => Err(ApplyError::Invalid(reason)),
        };
        applied.map_err(|error| match error {
            ApplyError::Invalid(reason) => {
                ApplyError::Invalid(BlockError::Transaction { index, id: tx.id(), reason })
            }
            ApplyError::Store(error) => ApplyError::Store(error),
        })?;
    }
    let (state, receipts) = executor.finish(&block.header().forger)?;
    if state.root != block.header().state_root {
        return Err(ApplyError::Invalid(BlockError::StateRoot {
            got: block.header().state_root,
            computed: state.root,
        }));
    }
    let computed = receipts_root(&receipts);
    if computed != block.header().receipts_root {
        return Err(ApplyError::Invalid(BlockError::ReceiptsRoot {
            got: block.header().receipts_root,
            computed,
        }));
    }
    Ok(AppliedBlock { block, receipts, state })
}
