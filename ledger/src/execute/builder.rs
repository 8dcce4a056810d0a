//! A forger's block: transactions applied as they are pushed, refused ones leaving no trace.

use jmt::storage::TreeReader;

use super::{AppliedBlock, ApplyError, BlockError, Executor, TxError, check_stateless};
use crate::state::read_forger;
use crate::{Block, ChainSpec, Hash, Header, Keypair, SealedHeader, Transaction, transactions_root};

/// Builds a block for a forger that won its slot: transactions are applied as they are pushed,
/// and refused ones leave no trace.
pub struct BlockBuilder<'a, R: TreeReader + ?Sized> {
    executor: Executor<'a, R>,
    header: Header,
    transactions: Vec<Transaction>,
    bytes: usize,
}

impl<'a, R: TreeReader + ?Sized> BlockBuilder<'a, R> {
    /// Starts `forger`'s block on `parent` for `slot`, at the best rank the lottery gives it,
    /// stamped `timestamp_ms` (which must be inside that rank's window of the slot).
    pub fn new(
        reader: &'a R,
        spec: &'a ChainSpec,
        genesis: Hash,
        parent: &SealedHeader,
        forger: &Keypair,
        slot: u64,
        timestamp_ms: u64,
    ) -> Result<Self, ApplyError<BlockError>> {
        let executor = Executor::new(reader, spec, genesis, parent.header().height, slot);
        Self::with_executor(executor, reader, parent, forger, timestamp_ms)
    }

    /// [`BlockBuilder::new`] with the executor given: one made for `parent`'s state and the
    /// block's slot.
    pub(crate) fn with_executor(
        mut executor: Executor<'a, R>,
        reader: &'a R,
        parent: &SealedHeader,
        forger: &Keypair,
        timestamp_ms: u64,
    ) -> Result<Self, ApplyError<BlockError>> {
        let slot = executor.slot();
        let address = forger.address();
        let not_entitled = || ApplyError::Invalid(BlockError::NotEntitled { forger: address, slot, rank: 0 });
        let rank = executor.rank_of(slot, &address)?.ok_or_else(not_entitled)?;
        let record = read_forger(reader, parent.header().height, &address)?.ok_or_else(not_entitled)?;
        let header = Header {
            parent_hash: parent.hash(),
            height: parent.header().height + 1,
            slot,
            timestamp_ms,
            transactions_root: Hash::ZERO,
            state_root: Hash::ZERO,
            forger: address,
            transaction_count: 0,
            rank,
            reveal: forger.reveal_secret(record.blocks_forged),
            next_commitment: forger.reveal_commitment(record.blocks_forged + 1),
            receipts_root: Hash::ZERO,
        };
        executor.begin_block(&header)?;
        Ok(BlockBuilder { executor, header, transactions: Vec::new(), bytes: 0 })
    }

    /// The rank the block is forged at.
    pub fn rank(&self) -> u32 {
        self.header.rank
    }

    /// Whether another transaction of `size` bytes fits.
    pub fn has_room(&self, size: usize) -> bool {
        let params = &self.executor.spec.params;
        self.transactions.len() < params.max_block_transactions as usize
            && self.bytes + size <= params.max_block_bytes as usize
    }

    /// Whether `tx` fits: its bytes, and its gas if it is a contract transaction.
    pub fn fits(&self, tx: &Transaction) -> bool {
        self.has_room(tx.encoded_len()) && self.executor.block_gas_with(tx).is_ok()
    }

    /// Number of transactions so far.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether no transaction was pushed.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Checks (signature included), applies and includes `tx`, or refuses it and changes nothing.
    pub fn push(&mut self, tx: Transaction) -> Result<(), ApplyError<TxError>> {
        check_stateless(&tx, self.executor.spec, &self.executor.genesis).map_err(ApplyError::Invalid)?;
        self.push_admitted(tx)
    }

    /// Includes `tx`, whose stateless checks (signature included) already passed when it was
    /// admitted to the pool on this chain, so its signature is not verified a second time.
    pub fn push_admitted(&mut self, tx: Transaction) -> Result<(), ApplyError<TxError>> {
        let size = tx.encoded_len();
        if !self.has_room(size) {
            return Err(ApplyError::Invalid(TxError::BlockFull { size }));
        }
        self.executor.apply_checked(&tx)?;
        self.bytes += size;
        self.transactions.push(tx);
        Ok(())
    }

    /// Seals the block with `forger`'s signature.
    pub fn seal(self, forger: &Keypair) -> Result<AppliedBlock, ApplyError<BlockError>> {
        let genesis = self.executor.genesis;
        let (state, receipts) = self.executor.finish(&forger.address())?;
        let leaves: Vec<Hash> = self.transactions.iter().map(Transaction::leaf).collect();
        let header = Header {
            transactions_root: transactions_root(&leaves),
            state_root: state.root,
            receipts_root: super::receipts_root(&receipts),
            transaction_count: self.transactions.len() as u32,
            ..self.header
        };
        let block = Block { header: header.sign(forger, &genesis), transactions: self.transactions };
        Ok(AppliedBlock { block, receipts, state })
    }
}
