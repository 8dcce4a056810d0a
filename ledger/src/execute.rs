//! The state transition: which transactions and blocks are valid, and what they do.
//!
//! Everything here is pure. State is read through a [`TreeReader`] at the parent's version and
//! the result comes back as a value ([`AppliedBlock`]) for the store to commit; an invalid
//! transaction or block returns an error and leaves nothing behind. No clock, no I/O of its own.

use std::collections::BTreeMap;

use jmt::storage::TreeReader;

use crate::state::{Account, StateUpdate, read_account, update_state};
use crate::store::StoreError;
use crate::{
    Address, Amount, Block, ChainSpec, Hash, Header, Keypair, Payload, SealedHeader, Transaction,
    transactions_root,
};

/// Why a transaction was refused. Each reason has its own variant, so callers can count them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// Larger than the chain allows.
    #[error("transaction is {size} bytes; the chain allows at most {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// Signed for another chain.
    #[error("transaction is for chain {got:?}, but this is {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The chain it names.
        got: String,
    },
    /// Fee below the chain's minimum.
    #[error("fee {got} is below the chain's minimum of {min}")]
    FeeTooLow {
        /// The minimum.
        min: Amount,
        /// The fee offered.
        got: Amount,
    },
    /// A transfer of nothing.
    #[error("a transfer must move a positive amount")]
    ZeroAmount,
    /// The signature does not verify against the sender's key and these exact bytes.
    #[error("signature does not match the sender and body (wrong key, another chain, or altered bytes)")]
    BadSignature,
    /// Nonce already used: a replay, or a transaction already committed.
    #[error("nonce {got} was already used; the sender's next nonce is {expected}")]
    StaleNonce {
        /// The next nonce.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// Nonce ahead of the sender's next one.
    #[error("nonce {got} is ahead of the sender's next nonce {expected}; send the missing ones first")]
    FutureNonce {
        /// The next nonce.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// The sender cannot pay amount plus fee.
    #[error("balance {available} does not cover {needed} (amount plus fee)")]
    InsufficientBalance {
        /// Amount plus fee.
        needed: Amount,
        /// The sender's balance.
        available: Amount,
    },
    /// A balance would pass 2^64 base units.
    #[error("the recipient's balance would overflow")]
    BalanceOverflow,
    /// The block being built has no room left for it.
    #[error("the block has no room left for a transaction of {size} bytes")]
    BlockFull {
        /// Its size.
        size: usize,
    },
}

/// Why a block was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Its parent is not the block it is being applied on.
    #[error("block's parent is {got}, expected {expected}")]
    WrongParent {
        /// The parent it must have.
        expected: Hash,
        /// The parent it names.
        got: Hash,
    },
    /// Height is not the parent's plus one.
    #[error("block height is {got}, expected {expected}")]
    WrongHeight {
        /// The height it must have.
        expected: u64,
        /// The height it has.
        got: u64,
    },
    /// Slot does not come after the parent's.
    #[error("block slot {slot} is not after its parent's slot {parent_slot}")]
    SlotNotAfterParent {
        /// The block's slot.
        slot: u64,
        /// The parent's slot.
        parent_slot: u64,
    },
    /// Timestamp outside the slot's window.
    #[error("timestamp {timestamp_ms} is outside slot {slot}'s window")]
    TimestampOutsideSlot {
        /// The block's slot.
        slot: u64,
        /// Its timestamp.
        timestamp_ms: u64,
    },
    /// The forger may not forge.
    #[error("{0} is not a forger on this chain")]
    NotAForger(Address),
    /// The forger's signature does not verify.
    #[error("the forger's signature does not verify")]
    BadSignature,
    /// `transaction_count` disagrees with the body.
    #[error("header says {header} transactions, body has {body}")]
    CountMismatch {
        /// The header's count.
        header: u32,
        /// The body's count.
        body: usize,
    },
    /// More transactions than the chain allows.
    #[error("block has {count} transactions; the chain allows {max}")]
    TooManyTransactions {
        /// Count.
        count: usize,
        /// Limit.
        max: u32,
    },
    /// More transaction bytes than the chain allows.
    #[error("block has {size} bytes of transactions; the chain allows {max}")]
    TooLarge {
        /// Size.
        size: usize,
        /// Limit.
        max: u32,
    },
    /// The transactions root does not match the body.
    #[error("transactions root {got} does not match the body's {computed}")]
    TransactionsRoot {
        /// What the header says.
        got: Hash,
        /// What the body gives.
        computed: Hash,
    },
    /// The state root does not match the state the block produces.
    #[error("state root {got} does not match the state the block produces, {computed}")]
    StateRoot {
        /// What the header says.
        got: Hash,
        /// What applying the block gives.
        computed: Hash,
    },
    /// A transaction is invalid.
    #[error("transaction {index} ({id}) is invalid: {reason}")]
    Transaction {
        /// Its position.
        index: usize,
        /// Its id.
        id: Hash,
        /// Why.
        reason: TxError,
    },
    /// The forger's reward overflowed.
    #[error("the forger's reward would overflow its balance")]
    RewardOverflow,
}

/// A transaction or block could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError<E> {
    /// It is invalid.
    #[error(transparent)]
    Invalid(E),
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// The transaction.
    pub transaction_id: Hash,
    /// Fee charged.
    pub fee: Amount,
}

/// Checks what can be checked without state: size, chain, fee floor, payload, signature.
pub fn check_stateless(tx: &Transaction, spec: &ChainSpec) -> Result<(), TxError> {
    let size = tx.encoded_len();
    if size > spec.params.max_transaction_bytes as usize {
        return Err(TxError::TooLarge { size, max: spec.params.max_transaction_bytes });
    }
    let body = tx.body();
    if body.chain_id != spec.chain_id {
        return Err(TxError::WrongChain { expected: spec.chain_id.clone(), got: body.chain_id.clone() });
    }
    if body.fee < spec.params.min_fee {
        return Err(TxError::FeeTooLow { min: spec.params.min_fee, got: body.fee });
    }
    match &body.payload {
        Payload::Transfer { amount, .. } if *amount == Amount::ZERO => return Err(TxError::ZeroAmount),
        Payload::Transfer { .. } => {}
    }
    if !tx.verify_signature() {
        return Err(TxError::BadSignature);
    }
    Ok(())
}

/// Applies transactions one by one on top of the state at a version, keeping the changes in
/// memory. A refused transaction changes nothing.
pub struct Executor<'a, R: TreeReader + ?Sized> {
    reader: &'a R,
    spec: &'a ChainSpec,
    version: u64,
    accounts: BTreeMap<Address, Account>,
    fees: Amount,
    receipts: Vec<Receipt>,
}

impl<'a, R: TreeReader + ?Sized> Executor<'a, R> {
    /// Starts on the state at `version` (the parent block's height).
    pub fn new(reader: &'a R, spec: &'a ChainSpec, version: u64) -> Self {
        Executor {
            reader,
            spec,
            version,
            accounts: BTreeMap::new(),
            fees: Amount::ZERO,
            receipts: Vec::new(),
        }
    }

    /// An account as the transactions so far left it.
    pub fn account(&mut self, address: &Address) -> Result<Account, StoreError> {
        if let Some(account) = self.accounts.get(address) {
            return Ok(*account);
        }
        let account = read_account(self.reader, self.version, address)?;
        self.accounts.insert(*address, account);
        Ok(account)
    }

    /// Checks `tx` fully (signature included) and applies it.
    pub fn apply(&mut self, tx: &Transaction) -> Result<&Receipt, ApplyError<TxError>> {
        check_stateless(tx, self.spec).map_err(ApplyError::Invalid)?;
        self.apply_checked(tx)
    }

    /// Applies `tx`, whose stateless checks ([`check_stateless`]) have passed.
    pub fn apply_checked(&mut self, tx: &Transaction) -> Result<&Receipt, ApplyError<TxError>> {
        let body = tx.body();
        let mut sender = self.account(&body.sender)?;
        if body.nonce != sender.nonce {
            let (expected, got) = (sender.nonce, body.nonce);
            let error = if got < expected {
                TxError::StaleNonce { expected, got }
            } else {
                TxError::FutureNonce { expected, got }
            };
            return Err(ApplyError::Invalid(error));
        }
        let Payload::Transfer { to, amount } = body.payload;
        let needed = amount.checked_add(body.fee).ok_or(ApplyError::Invalid(TxError::BalanceOverflow))?;
        sender.balance = sender
            .balance
            .checked_sub(needed)
            .ok_or(ApplyError::Invalid(TxError::InsufficientBalance { needed, available: sender.balance }))?;
        sender.nonce += 1;
        let fees = self.fees.checked_add(body.fee).ok_or(ApplyError::Invalid(TxError::BalanceOverflow))?;
        // The recipient is read after the sender is debited, so a transfer to oneself works.
        let mut recipient = if to == body.sender { sender } else { self.account(&to)? };
        recipient.balance =
            recipient.balance.checked_add(amount).ok_or(ApplyError::Invalid(TxError::BalanceOverflow))?;
        // Every check has passed: only now does state change.
        self.accounts.insert(body.sender, sender);
        self.accounts.insert(to, recipient);
        self.fees = fees;
        self.receipts.push(Receipt { transaction_id: tx.id(), fee: body.fee });
        Ok(self.receipts.last().expect("just pushed"))
    }

    /// Pays the forger the block reward and the fees, and computes the state at `version + 1`.
    pub fn finish(mut self, forger: &Address) -> Result<(StateUpdate, Vec<Receipt>), ApplyError<BlockError>> {
        let income = self
            .spec
            .params
            .block_reward
            .checked_add(self.fees)
            .ok_or(ApplyError::Invalid(BlockError::RewardOverflow))?;
        let mut account = self.account(forger)?;
        account.balance =
            account.balance.checked_add(income).ok_or(ApplyError::Invalid(BlockError::RewardOverflow))?;
        self.accounts.insert(*forger, account);
        let update = update_state(self.reader, self.version + 1, self.accounts)?;
        Ok((update, self.receipts))
    }
}

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

/// Checks the header against its parent and the chain's rules, without touching state.
pub fn check_header(spec: &ChainSpec, parent: &SealedHeader, block: &Block) -> Result<(), BlockError> {
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
    let window = spec.slot_start_ms(header.slot).zip(spec.slot_start_ms(header.slot + 1));
    if !window.is_some_and(|(start, end)| (start..end).contains(&header.timestamp_ms)) {
        return Err(BlockError::TimestampOutsideSlot {
            slot: header.slot,
            timestamp_ms: header.timestamp_ms,
        });
    }
    if !spec.is_forger(&header.forger) {
        return Err(BlockError::NotAForger(header.forger));
    }
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
    let ids: Vec<Hash> = block.transactions.iter().map(Transaction::id).collect();
    let computed = transactions_root(&ids);
    if computed != header.transactions_root {
        return Err(BlockError::TransactionsRoot { got: header.transactions_root, computed });
    }
    if !block.header.verify_signature() {
        return Err(BlockError::BadSignature);
    }
    Ok(())
}

/// `apply(state, block) -> (state', receipts)`: checks `block` on top of `parent` (whose state
/// `reader` holds) and returns what it changes, or why it is invalid. Writes nothing.
pub fn apply_block<R: TreeReader + ?Sized>(
    reader: &R,
    spec: &ChainSpec,
    parent: &SealedHeader,
    block: Block,
) -> Result<AppliedBlock, ApplyError<BlockError>> {
    check_header(spec, parent, &block).map_err(ApplyError::Invalid)?;
    let mut executor = Executor::new(reader, spec, parent.header().height);
    for (index, tx) in block.transactions.iter().enumerate() {
        executor.apply(tx).map_err(|error| match error {
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
    Ok(AppliedBlock { block, receipts, state })
}

/// Builds a block on a parent: transactions are applied as they are pushed, and refused ones
/// leave no trace.
pub struct BlockBuilder<'a, R: TreeReader + ?Sized> {
    executor: Executor<'a, R>,
    parent: SealedHeader,
    slot: u64,
    timestamp_ms: u64,
    transactions: Vec<Transaction>,
    bytes: usize,
}

impl<'a, R: TreeReader + ?Sized> BlockBuilder<'a, R> {
    /// Starts a block on `parent` for `slot`, stamped `timestamp_ms`.
    pub fn new(
        reader: &'a R,
        spec: &'a ChainSpec,
        parent: SealedHeader,
        slot: u64,
        timestamp_ms: u64,
    ) -> Self {
        let executor = Executor::new(reader, spec, parent.header().height);
        BlockBuilder { executor, parent, slot, timestamp_ms, transactions: Vec::new(), bytes: 0 }
    }

    /// Whether another transaction of `size` bytes fits.
    pub fn has_room(&self, size: usize) -> bool {
        let params = &self.executor.spec.params;
        self.transactions.len() < params.max_block_transactions as usize
            && self.bytes + size <= params.max_block_bytes as usize
    }

    /// Number of transactions so far.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether no transaction was pushed.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Applies and includes `tx`, or refuses it and changes nothing.
    pub fn push(&mut self, tx: Transaction) -> Result<(), ApplyError<TxError>> {
        let size = tx.encoded_len();
        if !self.has_room(size) {
            return Err(ApplyError::Invalid(TxError::BlockFull { size }));
        }
        self.executor.apply(&tx)?;
        self.bytes += size;
        self.transactions.push(tx);
        Ok(())
    }

    /// Seals the block with `forger`'s signature.
    pub fn seal(self, forger: &Keypair) -> Result<AppliedBlock, ApplyError<BlockError>> {
        let (state, receipts) = self.executor.finish(&forger.address())?;
        let ids: Vec<Hash> = self.transactions.iter().map(Transaction::id).collect();
        let header = Header {
            parent_hash: self.parent.hash(),
            height: self.parent.header().height + 1,
            slot: self.slot,
            timestamp_ms: self.timestamp_ms,
            transactions_root: transactions_root(&ids),
            state_root: state.root,
            forger: forger.address(),
            transaction_count: self.transactions.len() as u32,
        };
        let block = Block { header: header.sign(forger), transactions: self.transactions };
        Ok(AppliedBlock { block, receipts, state })
    }
}
