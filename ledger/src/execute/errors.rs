//! Why a transaction or block was refused, and what applying one produced.

use crate::store::StoreError;
use crate::{Address, Amount, Hash};

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
    #[error(
        "signature does not match the sender and body (wrong key, signed for another chain or genesis, or altered bytes)"
    )]
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
    /// A ticket below the chain's minimum price.
    #[error("ticket price {got} is below the minimum of {min}")]
    TicketTooCheap {
        /// The minimum.
        min: Amount,
        /// The price offered.
        got: Amount,
    },
    /// A ticket span of zero epochs or beyond the chain's maximum.
    #[error("a ticket spans 1 to {max} epochs, not {got}")]
    TicketSpan {
        /// The maximum.
        max: u32,
        /// The span asked.
        got: u32,
    },
    /// Ticket money may only go to an eligible association.
    #[error("{0} is not an eligible association")]
    NotEligible(Address),
    /// A first ticket must carry the buyer's first reveal commitment.
    #[error("a first ticket must carry a reveal commitment")]
    MissingCommitment,
    /// A forger that has a commitment may not replace it with a ticket purchase.
    #[error("the buyer already has a reveal commitment; leave the field empty")]
    CommitmentAlreadySet,
    /// Name or proof reference out of bounds.
    #[error("invalid association registration: {0}")]
    InvalidRegistration(&'static str),
    /// The sender is already a registered association (or one whose vote is open).
    #[error("{0} is already registered")]
    AlreadyRegistered(Address),
    /// No registration for this address.
    #[error("{0} is not a registered association")]
    UnknownAssociation(Address),
    /// Only forgers with an active ticket may vote.
    #[error("{0} holds no active ticket, and only forgers with one may vote")]
    NoActiveTicket(Address),
    /// One vote per forger and registration.
    #[error("{voter} already voted for {association}")]
    AlreadyVoted {
        /// The voter.
        voter: Address,
        /// The association.
        association: Address,
    },
    /// The association is eligible already.
    #[error("{0} is already eligible")]
    AlreadyEligible(Address),
    /// The voting window closed.
    #[error("the vote on {0} has closed; it may register again")]
    RegistrationExpired(Address),
    /// The two headers are not an equivocation.
    #[error("not an equivocation: {0}")]
    NotEquivocation(&'static str),
    /// The offender has no tickets left to forfeit (already punished, or never a forger).
    #[error("{0} has no tickets left to forfeit")]
    NothingToForfeit(Address),
    /// The block being built has no room left for it.
    #[error("the block has no room left for a transaction of {size} bytes")]
    BlockFull {
        /// Its size.
        size: usize,
    },
    /// The block being built has no gas left for it.
    #[error("the block's contract transactions bring {used} gas of {max}; no room for {gas} more")]
    BlockGasFull {
        /// Its gas limit.
        gas: u64,
        /// Gas the block's contract transactions already bring.
        used: u64,
        /// The chain's `max_block_gas`.
        max: u64,
    },
    /// A contract transaction may bring at most `contract::MAX_TRANSACTION_GAS`.
    #[error("a gas limit of {gas_limit} is above the most one transaction may bring, {max}")]
    GasLimitTooHigh {
        /// The gas limit.
        gas_limit: u64,
        /// The cap.
        max: u64,
    },
    /// A contract transaction must bring gas and pay at least 1 base unit per unit of gas.
    #[error(
        "a gas limit of {gas_limit} needs a fee of at least {gas_limit} (1 base unit per gas), not {fee}"
    )]
    GasPriceTooLow {
        /// The gas limit.
        gas_limit: u64,
        /// The fee offered.
        fee: Amount,
    },
    /// A program that does not parse or is too large, a bad function name, or arguments that
    /// are not a JSON array.
    #[error("invalid contract transaction: {0}")]
    InvalidContract(String),
    /// No contract at that address.
    #[error("no contract at {0}")]
    NoSuchContract(Address),
    /// A contract already lives at the address this deployment would take.
    #[error("a contract already lives at {0}")]
    ContractExists(Address),
    /// A schedule with a zero amount, period or count, or more payments than allowed.
    #[error("invalid schedule: {0}")]
    InvalidSchedule(&'static str),
    /// The chain holds as many active schedules as it allows.
    #[error("the chain holds {max} active schedules, the most it allows; try again when some end")]
    TooManySchedules {
        /// The bound.
        max: usize,
    },
    /// The sender owns as many active schedules as one account may.
    #[error("the sender owns {max} active schedules already, as many as one account may")]
    TooManySchedulesOfOwner {
        /// The bound.
        max: usize,
    },
    /// A ticket names its own buyer as the association it pays.
    #[error("a ticket's price must go to an association other than its buyer")]
    TicketPaysBuyer,
    /// A registration pays less than registering costs.
    #[error("registering an association costs a fee of at least {min}; got {got}")]
    RegistrationFeeTooLow {
        /// The chain's registration fee.
        min: Amount,
        /// The fee offered.
        got: Amount,
    },
    /// No active schedule with that id belongs to the sender.
    #[error("no active schedule {0} of the sender")]
    UnknownSchedule(Hash),
}

impl TxError {
    /// Whether the transaction broke a rule that needs no state ([`check_stateless`]): every
    /// node judges it alike, so whoever relayed it did not check. The other errors depend on the
    /// head (nonces, balances, registrations), which differs between honest nodes for a moment.
    pub fn is_stateless(&self) -> bool {
        matches!(
            self,
            TxError::TooLarge { .. }
                | TxError::WrongChain { .. }
                | TxError::FeeTooLow { .. }
                | TxError::ZeroAmount
                | TxError::BadSignature
                | TxError::TicketTooCheap { .. }
                | TxError::TicketSpan { .. }
                | TxError::TicketPaysBuyer
                | TxError::RegistrationFeeTooLow { .. }
                | TxError::NotEquivocation(_)
                | TxError::InvalidRegistration(_)
                | TxError::GasPriceTooLow { .. }
                | TxError::GasLimitTooHigh { .. }
                | TxError::InvalidContract(_)
                | TxError::InvalidSchedule(_)
        )
    }
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
    /// The forger did not win this slot at this rank.
    #[error("{forger} may not sign slot {slot} at rank {rank}: the lottery did not pick it")]
    NotEntitled {
        /// The forger.
        forger: Address,
        /// The slot.
        slot: u64,
        /// The rank it claims.
        rank: u32,
    },
    /// Stamped before its rank's window opened.
    #[error("rank {rank} may not be stamped before {earliest_ms}; the block says {timestamp_ms}")]
    TooEarlyForRank {
        /// The rank.
        rank: u32,
        /// Earliest allowed time.
        earliest_ms: u64,
        /// The block's time.
        timestamp_ms: u64,
    },
    /// The reveal does not open the forger's commitment.
    #[error("the block's reveal does not match its forger's commitment")]
    BadReveal,
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
    /// The receipts root does not match what the block's transactions did.
    #[error("receipts root {got} does not match what the block's transactions did, {computed}")]
    ReceiptsRoot {
        /// What the header says.
        got: Hash,
        /// What applying the block gives.
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
    /// For a contract deployment or call: what it did.
    pub contract: Option<ContractReceipt>,
}

impl Receipt {
    /// The wire form (what the receipts root commits to, and what is stored).
    pub fn to_wire(&self) -> goodwill_proto::v1::Receipt {
        goodwill_proto::v1::Receipt {
            transaction_id: bytes::Bytes::copy_from_slice(self.transaction_id.as_bytes()),
            fee: self.fee.0,
            contract: self.contract.as_ref().map(crate::codec::contract_receipt_to_wire),
        }
    }

    /// A receipt from its wire form.
    pub fn from_wire(receipt: goodwill_proto::v1::Receipt) -> Result<Receipt, crate::codec::DecodeError> {
        Ok(Receipt {
            transaction_id: Hash(crate::codec::fixed("Receipt", "transaction_id", &receipt.transaction_id)?),
            fee: Amount(receipt.fee),
            contract: receipt.contract.map(crate::codec::contract_receipt_from_wire).transpose()?,
        })
    }

    /// Its leaf in the block's receipts tree.
    pub fn leaf(&self) -> Hash {
        use prost::Message;
        Hash::tagged(crate::hash::RECEIPT_LEAF_DOMAIN, &self.to_wire().encode_to_vec())
    }
}

/// The receipts root of a block whose transactions had `receipts`, in order.
pub fn receipts_root(receipts: &[Receipt]) -> Hash {
    let leaves: Vec<Hash> = receipts.iter().map(Receipt::leaf).collect();
    crate::transactions_root(&leaves)
}

/// What a contract deployment or call did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContractReceipt {
    /// The contract.
    pub contract: Address,
    /// Gas used.
    pub gas_used: u64,
    /// The result (JSON), or why the call failed (it then changed nothing but the fee).
    pub result: Result<String, String>,
    /// Events, in order.
    pub events: Vec<crate::contract::Event>,
}
