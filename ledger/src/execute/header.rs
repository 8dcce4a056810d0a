//! What a block proves about itself and against its parent, without touching state.

use super::BlockError;
use crate::{Block, ChainSpec, Hash, SealedHeader, Transaction, transactions_root};

/// Checks the header against its parent and the chain's rules, without touching state.
pub fn check_header(
    spec: &ChainSpec,
    genesis: &Hash,
    parent: &SealedHeader,
    block: &Block,
) -> Result<(), BlockError> {
    let header = block.header();
    let parent_header = parent.header();
    if header.parent_hash != parent.hash() {
        return Err(BlockError::WrongParent { expected: parent.hash(), got: header.parent_hash });
    }
    if header.height != parent_header.height + 1 {
        return Err(BlockError::WrongHeight { expected: parent_header.height + 1, got: header.height });
    }
    if header.slot <= parent_header.slot {
        return Err(BlockError::SlotNotAfterParent { slot: header.slot, parent_slot: parent_header.slot });
    }
    let window = header
        .slot
        .checked_add(1)
        .and_then(|next| spec.slot_start_ms(header.slot).zip(spec.slot_start_ms(next)));
    if !window.is_some_and(|(start, end)| (start..end).contains(&header.timestamp_ms)) {
        return Err(BlockError::TimestampOutsideSlot {
            slot: header.slot,
            timestamp_ms: header.timestamp_ms,
        });
    }
    check_contents(spec, genesis, block)
}

/// Checks what a block proves about itself, without its parent: the body matches the header's
/// count, limits and transactions root, and the forger's signature (bound to this chain) holds.
pub fn check_contents(spec: &ChainSpec, genesis: &Hash, block: &Block) -> Result<(), BlockError> {
    let header = block.header();
    let count = block.transactions.len();
    if header.transaction_count as usize != count {
        return Err(BlockError::CountMismatch { header: header.transaction_count, body: count });
    }
    if count > spec.params.max_block_transactions as usize {
        return Err(BlockError::TooManyTransactions { count, max: spec.params.max_block_transactions });
    }
    let size: usize = block.transactions.iter().map(Transaction::encoded_len).sum();
    if size > spec.params.max_block_bytes as usize {
        return Err(BlockError::TooLarge { size, max: spec.params.max_block_bytes });
    }
    let leaves: Vec<Hash> = block.transactions.iter().map(Transaction::leaf).collect();
    let computed = transactions_root(&leaves);
    if computed != header.transactions_root {
        return Err(BlockError::TransactionsRoot { got: header.transactions_root, computed });
    }
    if !block.header.verify_signature(genesis) {
        return Err(BlockError::BadSignature);
    }
    Ok(())
}
