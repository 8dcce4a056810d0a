//! The chain actor: one thread owns the chain and its RocksDB store; everything else sends it
//! commands over a bounded channel and gets answers on `oneshot` channels.

use goodwill_ledger::execute::{check_stateless, check_stateless_all};
use goodwill_ledger::lottery::epoch_of;
use goodwill_ledger::{
    Address, ApplyError, Chain, ChainError, ChainSpec, Hash, ReceivedBlock, RocksStore, SealedHeader, Store,
    StoreError, Transaction, TxError, TxLocation,
};
use goodwill_protocol::{Head, Verdict};
use tokio::sync::{mpsc, oneshot, watch};

use std::sync::Arc;

use crate::mempool::{Mempool, PoolConfig, PoolError};
use crate::metrics::Metrics;
use crate::signing::{Forger, SigningError};
use crate::verifier::Verifier;
use goodwill_ledger::chain::FinalityView;
use goodwill_ledger::finality::{BlockId, Checkpoint, Finality, SignedVote, Vote, Weights};

/// Most blocks in one range response.
pub const MAX_RANGE_BLOCKS: u32 = 128;
/// Most bytes of blocks in one range response (the frame limit is 16 MiB).
const MAX_RANGE_BYTES: usize = 4 * 1024 * 1024;
/// Depth of the command queue.
const QUEUE: usize = 1_024;

/// What the chain looks like now.
#[derive(Debug, Clone)]
pub struct Status {
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub head: SealedHeader,
    /// Transactions in the pool.
    pub pending: usize,
    /// Of those, how many wait behind a nonce gap.
    pub queued: usize,
    /// Bytes of them.
    pub pending_bytes: usize,
    /// This node's minimum fee.
    pub node_min_fee: goodwill_ledger::Amount,
    pub slot_duration_ms: u64,
    pub genesis_time_ms: u64,
    pub slots_per_epoch: u64,
    pub fallback_ranks: u32,
    pub min_fee: goodwill_ledger::Amount,
    /// The last final checkpoint.
    pub finalized: Checkpoint,
    /// The lowest height whose state the node keeps (0 for an archive node).
    pub states_from: u64,
    /// The lowest block it holds after genesis (0 unless it started from a final block's state).
    pub blocks_from: u64,
}

/// What a batch of votes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VotesAdded {
    /// Votes counted.
    pub taken: usize,
    /// Votes refused (known, stale, from a key without weight, ...).
    pub refused: usize,
    /// Pairs of conflicting votes found.
    pub equivocations: usize,
    /// The checkpoint that became final, if any.
    pub finalized: Option<Checkpoint>,
    /// Whether a vote named a source not justified here: this node missed votes.
    pub unknown_source: bool,
}

/// Where a transaction is.
#[derive(Debug, Clone)]
pub enum TxStatus {
    Pending,
    Committed(TxLocation),
}

/// A block the forger made.
#[derive(Debug, Clone)]
pub struct Forged {
    pub height: u64,
    pub hash: Hash,
    pub transactions: usize,
    pub block: goodwill_ledger::Block,
}

/// The proven lottery inputs after a block for one forger: the consensus leaf, the roster
/// commitments, the forger's record and its roster entry.
pub type LotteryLeaves = goodwill_ledger::proof::LotteryProof;

/// What importing a block from a peer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// It extended the chain, or completed a better branch that the chain switched to.
    Applied,
    /// It was known already.
    Known,
    /// Kept aside: a fork that does not beat the chain (yet).
    Side,
    /// Kept aside: its parent is unknown here, so this node misses blocks.
    Orphan,
    /// Too far below or above the head to keep: a deep fork, or this node is behind.
    OutOfRange,
    /// Stamped further ahead of this node's clock than honest clocks drift
    /// ([`goodwill_ledger::spec::MAX_CLOCK_DRIFT_MS`]): neither imported nor kept.
    FromTheFuture,
    /// Kept neither on the chain nor aside: nothing here shows its forger could sign it (its
    /// parent is unknown and its forger holds no ticket for its epoch, say). No rule is shown
    /// broken either.
    Unproven,
    /// It breaks a rule.
    Invalid,
    /// This node could not process it (storage).
    Failed,
}

impl ImportOutcome {
    /// The gossip verdict: relay only what changed this node's chain, blame only invalid blocks.
    /// Side blocks are not relayed: their lottery is not checked until their branch is tried,
    /// and anyone can sign a fork of junk.
    pub fn verdict(self) -> Verdict {
        match self {
            ImportOutcome::Applied => Verdict::Accept,
            ImportOutcome::Invalid => Verdict::Reject,
            _ => Verdict::Ignore,
        }
    }
}

/// A read-only query run on the chain thread.
type Query<S> = Box<dyn FnOnce(&Chain<S>, &Mempool) + Send>;

enum Command<S: Store> {
    Status(oneshot::Sender<Status>),
    AccountProof(Address, oneshot::Sender<Result<goodwill_ledger::AccountProof, ChainFailure>>),
    Transaction(Hash, oneshot::Sender<Result<Option<TxStatus>, ChainFailure>>),
    Submit(Box<Checked>, oneshot::Sender<Result<Hash, SubmitError>>),
    SubmitMany(Vec<Result<Checked, TxError>>, oneshot::Sender<Vec<Result<Hash, SubmitError>>>),
    RankOf(Address, u64, oneshot::Sender<Result<Option<u32>, ChainFailure>>),
    Forge {
        slot: u64,
        timestamp_ms: u64,
        reply: oneshot::Sender<Result<Option<Forged>, ChainFailure>>,
    },
    /// A block from a peer; `true` if range sync downloaded it.
    Import(Box<goodwill_ledger::Block>, bool, oneshot::Sender<ImportOutcome>),
    ImportReceived(Box<ReceivedBlock>, oneshot::Sender<ImportOutcome>),
    BlocksByRange(u64, u32, oneshot::Sender<Vec<goodwill_ledger::Block>>),
    BlocksByHash(Vec<Hash>, oneshot::Sender<Vec<goodwill_ledger::Block>>),
    Lottery(Hash, Address, u64, oneshot::Sender<Result<LotteryLeaves, ChainFailure>>),
    Vote(u64, oneshot::Sender<Result<Option<SignedVote>, ChainFailure>>),
    AddVotes(Vec<SignedVote>, oneshot::Sender<VotesAdded>),
    VotesSince(u64, oneshot::Sender<Vec<SignedVote>>),
    Read(Query<S>),
}

/// A cheap, cloneable handle to the chain actor.
pub struct ChainHandle<S: Store = RocksStore> {
    commands: mpsc::Sender<Command<S>>,
    spec: Arc<ChainSpec>,
    /// What transaction signatures are bound to.
    genesis: Hash,
    verifier: Verifier,
    head: watch::Receiver<Head>,
    /// Finality steps built for light peers.
    steps: Arc<std::sync::Mutex<StepCache>>,
}

/// Finality steps built lately, by final block: a step does not change once its proof is stored,
/// so a light peer asking again, or the next one, costs a lookup rather than the roster reads and
/// Merkle proofs that building it takes on the chain thread. At most [`STEP_CACHE_BYTES`].
#[derive(Default)]
struct StepCache {
    steps: std::collections::HashMap<BlockId, (goodwill_ledger::light::FinalityStep, usize)>,
    order: std::collections::VecDeque<BlockId>,
    bytes: usize,
}

/// Most bytes of encoded steps kept in the cache.
const STEP_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Time one answer may spend building steps on the chain thread (one is always built): a
/// stranger's asks cannot hold imports and forging for longer than this each, and the rate limit
/// bounds how often it asks.
const STEP_BUILD_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);
/// Time one answer may spend reading state leaves on the chain thread, when the store has no
/// detached reader (one is always read).
const STATE_CHUNK_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);
/// Time one answer may spend reading state leaves on a verifier thread.
const DETACHED_CHUNK_BUDGET: std::time::Duration = std::time::Duration::from_millis(200);

impl StepCache {
    fn get(&self, block: &BlockId) -> Option<(goodwill_ledger::light::FinalityStep, usize)> {
        self.steps.get(block).cloned()
    }

    fn insert(&mut self, block: BlockId, step: goodwill_ledger::light::FinalityStep, size: usize) {
        if self.steps.insert(block, (step, size)).is_none() {
            self.order.push_back(block);
            self.bytes += size;
        }
        while self.bytes > STEP_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else { break };
            if let Some((_, size)) = self.steps.remove(&old) {
                self.bytes -= size;
            }
        }
    }
}

/// A transaction that passed the rules needing no state, its signature included.
///
/// Only [`Checked::new`] and [`Checked::all`] make one, and they run on the verifier threads
/// ([`crate::verifier`]): the chain thread, which every import, forging and read waits for, only
/// judges nonces, balances and the pool's policy, and signature checks run on all cores at once,
/// below the chain thread's priority.
struct Checked(Transaction);

impl Checked {
    fn new(tx: Transaction, spec: &ChainSpec, genesis: &Hash) -> Result<Checked, TxError> {
        check_stateless(&tx, spec, genesis)?;
        Ok(Checked(tx))
    }

    /// [`Checked::new`] of each, the signatures verified as one batch.
    fn all(txs: Vec<Transaction>, spec: &ChainSpec, genesis: &Hash) -> Vec<Result<Checked, TxError>> {
        let verdicts = check_stateless_all(&txs, spec, genesis);
        txs.into_iter().zip(verdicts).map(|(tx, verdict)| verdict.map(|()| Checked(tx))).collect()
    }
}

/// Why a submitted transaction was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction breaks a rule.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The pool's policy refuses it.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The node could not read its state.
    #[error("the node could not read its state: {0}")]
    Store(String),
}

/// What the chain thread could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainFailure {
    /// The store could not be read or written.
    #[error("the store failed: {0}; check the disk and the node's log")]
    Store(#[from] StoreError),
    /// The chain refused (an invalid block, a store of another chain).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// No block with this hash is stored.
    #[error("block {0} is unknown to this node")]
    UnknownBlock(Hash),
    /// The block is stored but not on the canonical chain (state is kept for it only).
    #[error("block {0} is not on this node's chain")]
    NotCanonical(Hash),
    /// A failure of a kind this version does not name (the ledger's errors are non-exhaustive).
    #[error("{0}")]
    Other(String),
}

impl From<ApplyError<goodwill_ledger::BlockError>> for ChainFailure {
    fn from(error: ApplyError<goodwill_ledger::BlockError>) -> Self {
        match error {
            ApplyError::Store(error) => ChainFailure::Store(error),
            ApplyError::Invalid(reason) => ChainFailure::Chain(ChainError::Invalid(reason)),
            other => ChainFailure::Other(other.to_string()),
        }
    }
}

/// The actor stopped (the node is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the chain actor has stopped")]
pub struct Stopped;

// Not derived: a derive would ask the store itself to be `Clone`.
impl<S: Store> Clone for ChainHandle<S> {
    fn clone(&self) -> Self {
        ChainHandle {
            commands: self.commands.clone(),
            spec: self.spec.clone(),
            genesis: self.genesis,
            verifier: self.verifier.clone(),
            head: self.head.clone(),
            steps: self.steps.clone(),
        }
    }
}

impl<S: Store + 'static> ChainHandle<S> {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command<S>) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// The head as it changes, published by the chain thread after every command that moved it:
    /// readers that must not wait for the chain (the network's loop) watch this.
    /// The chain's genesis hash (what votes and transactions are signed for).
    pub fn genesis(&self) -> Hash {
        self.genesis
    }

    /// Signs this node's forger's vote for `round` on the head, if its forger may vote in the
    /// round's epoch and its signing record allows it; the vote is counted here already.
    pub async fn vote(&self, round: u64) -> Result<Result<Option<SignedVote>, ChainFailure>, Stopped> {
        self.ask(|r| Command::Vote(round, r)).await
    }

    /// Counts votes whose signatures were checked.
    pub async fn add_votes(&self, votes: Vec<SignedVote>) -> Result<VotesAdded, Stopped> {
        self.ask(|r| Command::AddVotes(votes, r)).await
    }

    /// The votes held for rounds after `round`, oldest first, at most
    /// [`goodwill_protocol::message::MAX_SYNC_VOTES`].
    pub async fn votes_since(&self, round: u64) -> Result<Vec<SignedVote>, Stopped> {
        self.ask(|r| Command::VotesSince(round, r)).await
    }

    pub fn head(&self) -> watch::Receiver<Head> {
        self.head.clone()
    }

    pub async fn status(&self) -> Result<Status, Stopped> {
        self.ask(Command::Status).await
    }

    /// What a light peer needs to check that `forger` may sign a block of `slot` on canonical
    /// block `hash`, proven against its state root.
    pub async fn lottery(
        &self,
        hash: Hash,
        forger: Address,
        slot: u64,
    ) -> Result<Result<LotteryLeaves, ChainFailure>, Stopped> {
        self.ask(|r| Command::Lottery(hash, forger, slot, r)).await
    }

    /// Leaves of the state after the canonical block `block` from `start` on, with their range
    /// proof ([`goodwill_ledger::snapshot::state_chunk`]); `None` past the last leaf. The chain
    /// thread only checks the block; the leaves are read on a verifier thread (below the chain
    /// thread's priority) through the store's detached reader, so a peer restoring a large state
    /// does not hold imports and forging. A store without one is read on the chain thread, for
    /// [`STATE_CHUNK_BUDGET`].
    pub async fn state_chunk(
        &self,
        block: Hash,
        start: [u8; 32],
    ) -> Result<Result<Option<goodwill_ledger::snapshot::StateChunk>, ChainFailure>, Stopped> {
        use goodwill_ledger::snapshot::{KeyHash, state_chunk};
        let start = KeyHash(start);
        let located = self
            .read(move |chain, _| {
                let store = chain.store();
                let header = store.header(&block)?.ok_or(ChainFailure::UnknownBlock(block))?;
                let height = header.header().height;
                if store.canonical_hash(height)? != Some(block) {
                    return Err(ChainFailure::NotCanonical(block));
                }
                if height < store.pruned_below() {
                    return Err(StoreError::Pruned { version: height, lowest: store.pruned_below() }.into());
                }
                Ok(match store.detached_reader() {
                    Some(reader) => (height, Some(reader), None),
                    None => {
                        let deadline = std::time::Instant::now() + STATE_CHUNK_BUDGET;
                        (height, None, Some(state_chunk(store, height, start, deadline)?))
                    }
                })
            })
            .await?;
        let (height, reader, read) = match located {
            Ok(located) => located,
            Err(failure) => return Ok(Err(failure)),
        };
        let Some(reader) = reader else { return Ok(Ok(read.flatten())) };
        self.verifier
            .run(move || {
                let deadline = std::time::Instant::now() + DETACHED_CHUNK_BUDGET;
                let chunk = state_chunk(reader.as_ref(), height, start, deadline)?;
                // Pruning that passed the state during the read may have taken what it read.
                let lowest = reader.pruned_below();
                if height < lowest {
                    return Err(StoreError::Pruned { version: height, lowest }.into());
                }
                Ok(chunk)
            })
            .await
    }

    /// An account at the head, with the proof of it against the head's state root.
    pub async fn account_proof(
        &self,
        address: Address,
    ) -> Result<Result<goodwill_ledger::AccountProof, ChainFailure>, Stopped> {
        self.ask(|r| Command::AccountProof(address, r)).await
    }

    pub async fn transaction(&self, id: Hash) -> Result<Result<Option<TxStatus>, ChainFailure>, Stopped> {
        self.ask(|r| Command::Transaction(id, r)).await
    }

    /// Submits a transaction to the pool. Its signature is checked on a verifier thread.
    pub async fn submit(&self, tx: Transaction) -> Result<Result<Hash, SubmitError>, Stopped> {
        let (spec, genesis) = (self.spec.clone(), self.genesis);
        let checked = match self.verifier.run(move || Checked::new(tx, &spec, &genesis)).await? {
            Ok(checked) => checked,
            Err(reason) => return Ok(Err(reason.into())),
        };
        self.ask(|r| Command::Submit(Box::new(checked), r)).await
    }

    /// Submits several transactions with one command (a gossiped or submitted batch), each
    /// judged alone. Their signatures are checked as one batch on a verifier thread.
    pub async fn submit_many(
        &self,
        txs: Vec<Transaction>,
    ) -> Result<Vec<Result<Hash, SubmitError>>, Stopped> {
        let (spec, genesis) = (self.spec.clone(), self.genesis);
        let checked = self.verifier.run(move || Checked::all(txs, &spec, &genesis)).await?;
        self.ask(|r| Command::SubmitMany(checked, r)).await
    }

    pub async fn rank_of(
        &self,
        forger: Address,
        slot: u64,
    ) -> Result<Result<Option<u32>, ChainFailure>, Stopped> {
        self.ask(|r| Command::RankOf(forger, slot, r)).await
    }

    pub async fn forge(
        &self,
        slot: u64,
        timestamp_ms: u64,
    ) -> Result<Result<Option<Forged>, ChainFailure>, Stopped> {
        self.ask(|reply| Command::Forge { slot, timestamp_ms, reply }).await
    }

    /// Imports a block a peer sent outside range sync (a missing ancestor, say).
    pub async fn import(&self, block: goodwill_ledger::Block) -> Result<ImportOutcome, Stopped> {
        self.ask(|r| Command::Import(Box::new(block), false, r)).await
    }

    /// Imports a block range sync downloaded: a branch deeper than the side pool holds is
    /// applied aside until fork choice prefers it ([`Chain::import_synced`]).
    pub async fn import_synced(&self, block: goodwill_ledger::Block) -> Result<ImportOutcome, Stopped> {
        self.ask(|r| Command::Import(Box::new(block), true, r)).await
    }

    /// Imports a gossiped block whose transactions are still in wire form: those the pool
    /// holds are taken from it, decoded already (and their signatures verified); only the rest
    /// are decoded.
    pub async fn import_received(&self, block: ReceivedBlock) -> Result<ImportOutcome, Stopped> {
        self.ask(|r| Command::ImportReceived(Box::new(block), r)).await
    }

    pub async fn blocks_by_range(
        &self,
        start: u64,
        count: u32,
    ) -> Result<Vec<goodwill_ledger::Block>, Stopped> {
        self.ask(|r| Command::BlocksByRange(start, count, r)).await
    }

    /// Runs `query` on the chain thread against the chain and the pool as they are between two
    /// commands, and returns its answer. Queries must be quick: the chain waits for them.
    pub async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Chain<S>, &Mempool) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        self.ask(|reply| {
            Command::Read(Box::new(move |chain, pool| {
                let _ = reply.send(query(chain, pool));
            }))
        })
        .await
    }

    pub async fn blocks_by_hash(&self, hashes: Vec<Hash>) -> Result<Vec<goodwill_ledger::Block>, Stopped> {
        self.ask(|r| Command::BlocksByHash(hashes, r)).await
    }

    /// The stored proofs of finality of blocks at or above `height`, lowest first, at most
    /// [`goodwill_protocol::message::MAX_FINALITY_PROOFS`].
    pub async fn finality_proofs(
        &self,
        height: u64,
    ) -> Result<Result<Vec<goodwill_ledger::finality::FinalityProof>, ChainFailure>, Stopped> {
        let limit = goodwill_protocol::message::MAX_FINALITY_PROOFS;
        self.read(move |chain, _| chain.finality_proofs(height, limit).map_err(ChainFailure::from)).await
    }

    /// The receipt of the transaction at `index` of the stored block `block`, and the path that
    /// proves it against the block's receipts root; `None` if the block or the receipt is not
    /// stored.
    pub async fn receipt_proof(
        &self,
        block: Hash,
        index: u32,
    ) -> Result<Result<Option<(goodwill_ledger::Receipt, Vec<Hash>)>, ChainFailure>, Stopped> {
        // Only the read is the chain thread's: hashing the block's receipts into the path (a
        // block may hold thousands) is done on the asker's task.
        let read =
            self.read(move |chain, _| chain.store().receipts(&block).map_err(ChainFailure::from)).await?;
        Ok(read.map(|receipts| {
            let receipts = receipts?;
            let index = index as usize;
            let leaves: Vec<Hash> = receipts.iter().map(goodwill_ledger::Receipt::leaf).collect();
            let path = goodwill_ledger::list_path(&leaves, index)?;
            receipts.into_iter().nth(index).map(|receipt| (receipt, path))
        }))
    }

    /// The stored proofs of finality at or above `height` with what a light peer needs to check
    /// each, lowest first: at most [`goodwill_protocol::message::MAX_FINALITY_STEPS`], no more
    /// once they hold [`goodwill_protocol::message::FINALITY_STEPS_BYTES`], and no more built
    /// than [`STEP_BUILD_BUDGET`] allows (the others come from the cache). The answer ends at a
    /// proof whose target left the chain (it cannot be proven any more).
    pub async fn finality_steps(
        &self,
        height: u64,
    ) -> Result<Result<Vec<goodwill_ledger::light::FinalityStep>, ChainFailure>, Stopped> {
        use goodwill_protocol::message::{FINALITY_STEPS_BYTES, MAX_FINALITY_STEPS};
        use prost::Message;
        let cache = self.steps.clone();
        self.read(move |chain, _| {
            let started = std::time::Instant::now();
            let mut cache = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (mut steps, mut bytes, mut built) = (Vec::new(), 0, false);
            for proof in chain.finality_proofs(height, MAX_FINALITY_STEPS)? {
                let block = proof.finalized.block;
                let (step, size) = match cache.get(&block) {
                    Some(cached) => cached,
                    None if built && started.elapsed() >= STEP_BUILD_BUDGET => break,
                    None => {
                        let Some(step) = chain.finality_step(proof)? else { break };
                        let size = step.to_wire().encoded_len();
                        cache.insert(block, step.clone(), size);
                        built = true;
                        (step, size)
                    }
                };
                bytes += size;
                steps.push(step);
                if bytes >= FINALITY_STEPS_BYTES {
                    break;
                }
            }
            Ok(steps)
        })
        .await
    }
}

/// Starts the actor on its own thread. It stops when every handle is dropped; joining the
/// returned thread then guarantees the store is closed.
pub fn spawn<S: Store + Send + 'static>(
    chain: Chain<S>,
    forger: Option<Forger>,
    pool: PoolConfig,
    metrics: Arc<Metrics>,
) -> (ChainHandle<S>, std::thread::JoinHandle<()>) {
    let (commands, mut inbox) = mpsc::channel(QUEUE);
    let (spec, genesis) = (Arc::new(chain.spec().clone()), chain.genesis_hash());
    let head_of = |chain: &Chain<S>| Head {
        height: chain.head().header().height,
        hash: chain.head().hash(),
        finalized: chain.finalized().block.height,
    };
    let (head_out, head) = watch::channel(head_of(&chain));
    let thread = std::thread::Builder::new()
        .name("chain".into())
        // Blocks run contracts here: the stack the contract engine is sized for.
        .stack_size(goodwill_ledger::contract::STACK_BYTES)
        .spawn(move || {
            let finality = Finality::resume(chain.finalized(), chain.spec().params.slots_per_epoch);
            metrics.finalized_height.set(chain.finalized().block.height as i64);
            let mut actor =
                Actor { chain, forger, pool: Mempool::new(pool), metrics, finality, recounted: None };
            while let Some(command) = inbox.blocking_recv() {
                actor.handle(command);
                let now = head_of(&actor.chain);
                head_out.send_if_modified(|head| std::mem::replace(head, now) != now);
            }
            tracing::debug!("chain actor stopped");
        })
        .expect("spawning the chain thread");
    let verifier = Verifier::new().expect("starting the verifier threads");
    let steps = Arc::default();
    (ChainHandle { commands, spec, genesis, verifier, head, steps }, thread)
}

struct Actor<S: Store> {
    chain: Chain<S>,
    /// The forger key and what it signed.
    forger: Option<Forger>,
    pool: Mempool,
    metrics: Arc<Metrics>,
    /// The votes of the open rounds and what they justified.
    finality: Finality,
    /// When the open rounds were last counted again after sync extended the head.
    recounted: Option<std::time::Instant>,
}

/// Time between two recounts of the open rounds while sync extends the head.
const SYNC_RECOUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl<S: Store> Actor<S> {
    fn handle(&mut self, command: Command<S>) {
        // A dropped reply means the asker gave up; nothing to do about it.
        match command {
            Command::Status(reply) => {
                let spec = self.chain.spec();
                let _ = reply.send(Status {
                    chain_id: spec.chain_id.clone(),
                    genesis_hash: self.chain.genesis_hash(),
                    head: self.chain.head().clone(),
                    pending: self.pool.len(),
                    queued: self.pool.gapped(),
                    pending_bytes: self.pool.bytes(),
                    node_min_fee: self.pool.config().min_fee,
                    slot_duration_ms: spec.params.slot_duration_ms,
                    genesis_time_ms: spec.genesis_time_ms,
                    slots_per_epoch: spec.params.slots_per_epoch,
                    fallback_ranks: spec.params.fallback_ranks,
                    min_fee: spec.params.min_fee,
                    finalized: self.chain.finalized(),
                    states_from: self.chain.store().pruned_below(),
                    blocks_from: self.chain.store().base_height(),
                });
            }
            Command::AccountProof(address, reply) => {
                let _ = reply.send(self.chain.account_proof(&address).map_err(ChainFailure::from));
            }
            Command::Transaction(id, reply) => {
                let answer = if self.pool.contains(&id) {
                    Ok(Some(TxStatus::Pending))
                } else {
                    self.chain
                        .store()
                        .transaction_location(&id)
                        .map(|l| l.map(TxStatus::Committed))
                        .map_err(ChainFailure::from)
                };
                let _ = reply.send(answer);
            }
            Command::Submit(tx, reply) => {
                let _ = reply.send(self.submit(*tx));
            }
            Command::SubmitMany(txs, reply) => {
                let results = txs.into_iter().map(|tx| self.submit(tx.map_err(SubmitError::from)?)).collect();
                let _ = reply.send(results);
            }
            Command::RankOf(forger, slot, reply) => {
                let _ = reply.send(self.chain.rank_of(&forger, slot).map_err(ChainFailure::from));
            }
            Command::Forge { slot, timestamp_ms, reply } => {
                let _ = reply.send(self.forge(slot, timestamp_ms));
            }
            Command::Import(block, synced, reply) => {
                let _ = reply.send(self.import(*block, synced));
            }
            Command::ImportReceived(received, reply) => {
                let _ = reply.send(self.import_received(*received));
            }
            Command::BlocksByRange(start, count, reply) => {
                let _ = reply.send(self.blocks_by_range(start, count));
            }
            Command::BlocksByHash(hashes, reply) => {
                let _ = reply.send(self.blocks_by_hash(&hashes));
            }
            Command::Lottery(hash, forger, slot, reply) => {
                let _ = reply.send(self.lottery_leaves(&hash, &forger, slot));
            }
            Command::Vote(round, reply) => {
                let _ = reply.send(self.vote(round));
            }
            Command::AddVotes(votes, reply) => {
                let _ = reply.send(self.add_votes(votes));
            }
            Command::VotesSince(round, reply) => {
                let _ =
                    reply.send(self.finality.votes_since(round, goodwill_protocol::message::MAX_SYNC_VOTES));
            }
            Command::Read(query) => query(&self.chain, &self.pool),
        }
    }

    /// The proven lottery inputs after canonical block `hash` for `forger` in `slot` (state
    /// is kept for the canonical chain only): a few reads and a path from a cached roster tree.
    fn lottery_leaves(
        &self,
        hash: &Hash,
        forger: &Address,
        slot: u64,
    ) -> Result<LotteryLeaves, ChainFailure> {
        let store = self.chain.store();
        let header = store.header(hash)?.ok_or(ChainFailure::UnknownBlock(*hash))?;
        if store.canonical_hash(header.header().height)? != Some(*hash) {
            return Err(ChainFailure::NotCanonical(*hash));
        }
        Ok(self.chain.lottery_proof(&header, forger, slot)?)
    }

    /// Imports a gossiped block, taking the transactions the pool holds (same id and signature)
    /// from it instead of decoding them.
    fn import_received(&mut self, received: ReceivedBlock) -> ImportOutcome {
        let pool = &self.pool;
        let block = received.into_block(|id, signature| {
            pool.get(id).filter(|(held, _)| held.signature()[..] == *signature).map(|(held, _)| held.clone())
        });
        match block {
            Ok(block) => self.import(block, false),
            Err(error) => {
                tracing::warn!(%error, "a gossiped block carries an undecodable transaction");
                ImportOutcome::Invalid
            }
        }
    }

    /// Imports a block from a peer: `synced` if range sync downloaded it (a branch deeper than
    /// the side pool holds may then be applied aside, [`Chain::import_synced`]), else gossiped.
    /// Included transactions leave the pool; after a reorganisation, the replaced blocks'
    /// transactions that the new branch lacks go back in.
    fn import(&mut self, block: goodwill_ledger::Block, synced: bool) -> ImportOutcome {
        let hash = block.hash();
        let (slot, stamped) = (block.header().slot, block.header().timestamp_ms);
        if goodwill_ledger::spec::from_the_future(stamped, crate::now_ms()) {
            tracing::debug!(%hash, slot, stamped, "refused a block stamped in the future");
            return ImportOutcome::FromTheFuture;
        }
        let parent_known = match self.chain.knows(&block.header().parent_hash) {
            Ok(known) => known,
            Err(error) => {
                tracing::error!(%hash, %error, "could not read the store");
                return ImportOutcome::Failed;
            }
        };
        let senders: Vec<Address> = block.transactions.iter().map(|tx| tx.body().sender).collect();
        let started = std::time::Instant::now();
        // A transaction the pool holds, byte for byte, had its signature verified on admission:
        // it is not verified again (a different signature over the same body is).
        let pool = &self.pool;
        let verified =
            |tx: &Transaction| pool.get(&tx.id()).is_some_and(|(held, _)| held.signature() == tx.signature());
        let outcome = if synced {
            self.chain.import_synced_with(block, &verified)
        } else {
            self.chain.import_with(block, &verified)
        };
        let imported = started.elapsed();
        if let Ok(goodwill_ledger::Imported::Extended(_) | goodwill_ledger::Imported::Reorganized { .. }) =
            &outcome
        {
            self.metrics.block_import_seconds.observe(started.elapsed().as_secs_f64());
            self.metrics.committed_blocks.inc();
            self.metrics.committed_transactions.inc_by(senders.len() as u64);
            if matches!(outcome, Ok(goodwill_ledger::Imported::Reorganized { .. })) {
                self.metrics.reorganizations.inc();
            }
        }
        // Votes that arrived before the blocks they name (a branch downloaded since, or one
        // switched to, or blocks sync is still fetching: a node that joins hears the votes of
        // the rounds it has no blocks for yet, and is not sent them again) count now; while sync
        // extends the head, at most once a second.
        let extended_by_sync = synced
            && matches!(outcome, Ok(goodwill_ledger::Imported::Extended(_)))
            && self.recounted.is_none_or(|at| at.elapsed() >= SYNC_RECOUNT_EVERY);
        let moved = matches!(outcome, Ok(goodwill_ledger::Imported::Reorganized { .. }))
            || (synced && self.chain.branch_progress().is_some())
            || extended_by_sync;
        if moved {
            self.recounted = Some(std::time::Instant::now());
            let view = FinalityView::new(&self.chain);
            let progress = self.finality.recount(&view, &view);
            drop(view);
            self.settle_finality(progress);
        }
        match outcome {
            // Held aside already, still without its parent: as much an orphan as the first time.
            Ok(goodwill_ledger::Imported::Known) if !parent_known => ImportOutcome::Orphan,
            Ok(goodwill_ledger::Imported::Known) => ImportOutcome::Known,
            Ok(goodwill_ledger::Imported::Side) if parent_known => ImportOutcome::Side,
            Ok(goodwill_ledger::Imported::Side) => ImportOutcome::Orphan,
            Ok(goodwill_ledger::Imported::Extended(_)) => {
                self.settle_pool(senders, Vec::new());
                tracing::debug!(
                    %hash,
                    import_ms = imported.as_millis() as u64,
                    settle_ms = (started.elapsed() - imported).as_millis() as u64,
                    "applied a block"
                );
                ImportOutcome::Applied
            }
            Ok(goodwill_ledger::Imported::Reorganized { reverted, .. }) => {
                self.settle_pool(senders, reverted);
                ImportOutcome::Applied
            }
            Err(goodwill_ledger::ChainError::Invalid(reason)) => {
                tracing::warn!(%hash, %reason, "rejected a block from a peer");
                ImportOutcome::Invalid
            }
            Err(
                goodwill_ledger::ChainError::TooDeep { .. }
                | goodwill_ledger::ChainError::TooFarAhead { .. }
                | goodwill_ledger::ChainError::BelowFinality { .. }
                | goodwill_ledger::ChainError::BranchTooLarge { .. },
            ) => ImportOutcome::OutOfRange,
            Err(goodwill_ledger::ChainError::Unproven { .. }) => {
                tracing::debug!(%hash, "a block whose forger nothing here shows entitled was not kept");
                ImportOutcome::Unproven
            }
            Err(error) => {
                tracing::error!(%hash, %error, "could not import a block");
                ImportOutcome::Failed
            }
        }
    }

    /// This node's forger's vote in `round`: for the round's checkpoint on this node's chain
    /// (its latest block from an earlier slot), from the latest justified checkpoint below it,
    /// claimed in the signing record before it is signed.
    fn vote(&mut self, round: u64) -> Result<Option<SignedVote>, ChainFailure> {
        let Some(forger) = self.forger.as_mut() else { return Ok(None) };
        let mut target = self.chain.head().clone();
        for _ in 0..goodwill_ledger::chain::MAX_REORG_DEPTH {
            if target.header().slot < round || target.header().height == 0 {
                break;
            }
            match self.chain.store().header(&target.header().parent_hash)? {
                Some(parent) => target = parent,
                None => break,
            }
        }
        if target.header().slot >= round && target.header().height > 0 {
            return Ok(None);
        }
        let head = BlockId { height: target.header().height, hash: target.hash() };
        let epoch = epoch_of(round, self.chain.spec().params.slots_per_epoch);
        let view = FinalityView::new(&self.chain);
        if view.weight(epoch, &forger.key.address()) == 0 {
            return Ok(None);
        }
        let source = self.finality.source_for(&head, &view);
        match forger.record.claim_vote(round, &source) {
            Ok(()) => {}
            Err(error @ (SigningError::AlreadyVoted { .. } | SigningError::SourceGoesBack { .. })) => {
                tracing::debug!(%error, round, "not voting");
                return Ok(None);
            }
            Err(error) => return Err(ChainFailure::Other(error.to_string())),
        }
        let signed = Vote { round, source, target: head }.sign(&forger.key, &self.chain.genesis_hash());
        let mut refused = Vec::new();
        let progress = self.finality.add_votes([signed], self.slot_now(), &view, &view, &mut refused);
        drop(view);
        self.settle_finality(progress);
        Ok(Some(signed))
    }

    /// Counts votes whose signatures were checked.
    fn add_votes(&mut self, votes: Vec<SignedVote>) -> VotesAdded {
        let count = votes.len();
        let unknown_source = votes.iter().any(|v| !self.finality.knows_source(&v.vote.source));
        let mut refused = Vec::new();
        let view = FinalityView::new(&self.chain);
        // Votes a peer sent to bring this node up to date may span more rounds than are open.
        let progress = self.finality.catch_up(votes, self.slot_now(), &view, &view, &mut refused);
        drop(view);
        let added = VotesAdded {
            taken: count - refused.len(),
            refused: refused.len(),
            equivocations: progress.equivocations.len(),
            finalized: progress.finalized,
            unknown_source,
        };
        self.settle_finality(progress);
        added
    }

    /// Records what became final, and reports what broke the rules.
    fn settle_finality(&mut self, progress: goodwill_ledger::finality::Progress) {
        for evidence in &progress.equivocations {
            // Logged in the form `goodwill tx report-vote-equivocation` takes, so that anyone
            // can report it; a node with a forger reports it itself.
            use prost::Message;
            tracing::warn!(
                voter = %evidence.first.voter,
                first = hex::encode(evidence.first.to_wire().encode_to_vec()),
                second = hex::encode(evidence.second.to_wire().encode_to_vec()),
                "a forger signed conflicting votes; report it with `goodwill tx report-vote-equivocation --first .. --second ..`"
            );
            self.report_vote_equivocation(evidence);
        }
        if let Some(checkpoint) = progress.conflicting {
            tracing::error!(
                ?checkpoint,
                "a checkpoint met the rule for finality but conflicts with the final block: a third of the weight broke the voting rules"
            );
        }
        // Fork choice keeps to the chain with the latest justified checkpoint: if it is on a
        // branch this node holds but does not follow, the node switches to it.
        if let Some(latest) = progress.justified.iter().max_by_key(|c| c.round) {
            match self.chain.justify(*latest) {
                Ok(goodwill_ledger::Imported::Reorganized { depth, reverted }) => {
                    tracing::info!(
                        depth,
                        round = latest.round,
                        "switched to the branch with the latest justified checkpoint"
                    );
                    self.metrics.reorganizations.inc();
                    self.settle_pool(Vec::new(), reverted);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not switch to the justified branch"),
            }
        }
        let Some(checkpoint) = progress.finalized else { return };
        match self.chain.finalize(checkpoint, progress.proof.as_ref()) {
            Ok(true) => {
                self.metrics.finalized_height.set(checkpoint.block.height as i64);
                tracing::info!(height = checkpoint.block.height, hash = %checkpoint.block.hash, round = checkpoint.round, "final");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "a checkpoint final by the votes here is not on this node's chain")
            }
        }
    }

    /// The slot the wall clock is in.
    /// Puts a report of `evidence` in the pool, signed by this node's forger, which pays its
    /// fee: the node's next block carries it (and so does any other forger's that takes it from
    /// the pool), and the offender forfeits its tickets. A node without a forger only logs it;
    /// a forger with no coins to pay the fee cannot report.
    fn report_vote_equivocation(&mut self, evidence: &goodwill_ledger::finality::VoteEquivocation) {
        let Some(forger) = self.forger.as_ref() else { return };
        let sender = forger.key.address();
        if evidence.first.voter == sender {
            return;
        }
        let Ok(account) = self.chain.account(&sender) else { return };
        let spec = self.chain.spec();
        let body = goodwill_ledger::TransactionBody {
            chain_id: spec.chain_id.clone(),
            sender,
            nonce: account.nonce + self.pool.count_from(&sender) as u64,
            fee: spec.params.min_fee,
            payload: goodwill_ledger::Payload::ReportVoteEquivocation {
                first: Box::new(evidence.first),
                second: Box::new(evidence.second),
            },
        };
        let genesis = self.chain.genesis_hash();
        let tx = body.sign(&forger.key, &genesis);
        let checked = Checked::new(tx, spec, &genesis).map_err(SubmitError::from);
        match checked.and_then(|checked| self.submit(checked)) {
            Ok(id) => tracing::warn!(%id, voter = %evidence.first.voter, "reported the conflicting votes"),
            Err(reason) => tracing::warn!(%reason, "could not report the conflicting votes"),
        }
    }

    fn slot_now(&self) -> u64 {
        self.chain.spec().slot_at(crate::now_ms())
    }

    /// Brings the pool in line with a new head: nonces the chain used leave, transactions of
    /// `reverted` blocks that the new chain lacks come back, and old transactions expire.
    fn settle_pool(&mut self, senders: Vec<Address>, reverted: Vec<goodwill_ledger::Block>) {
        let slot = self.slot_now();
        let mut touched: std::collections::HashSet<Address> = senders.into_iter().collect();
        if !reverted.is_empty() {
            // The new branch may have committed anything the pool holds, not only what the last
            // imported block carried: every sender is checked again (reorganisations are rare).
            touched.extend(self.pool.senders());
        }
        let mut returned = 0usize;
        for tx in reverted.into_iter().flat_map(|block| block.transactions) {
            touched.insert(tx.body().sender);
            match self.chain.store().transaction_location(&tx.id()) {
                Ok(None) => {}
                _ => continue,
            }
            let Ok(account) = self.chain.account(&tx.body().sender) else { continue };
            if self.pool.insert(tx, &account, slot).is_ok() {
                returned += 1;
            }
        }
        for sender in touched {
            if let Ok(account) = self.chain.account(&sender) {
                self.pool.drop_used(&sender, account.nonce);
            }
        }
        let expired = self.pool.expire(slot);
        if returned > 0 || expired > 0 {
            tracing::debug!(returned, expired, pending = self.pool.len(), "pool settled");
        }
    }

    /// The stored blocks among `hashes`, in their order, within the range byte budget.
    fn blocks_by_hash(&self, hashes: &[Hash]) -> Vec<goodwill_ledger::Block> {
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        for hash in hashes.iter().take(MAX_RANGE_BLOCKS as usize) {
            let Ok(Some(block)) = self.chain.store().block(hash) else { continue };
            bytes += block.encoded_len();
            if bytes > MAX_RANGE_BYTES && !blocks.is_empty() {
                break;
            }
            blocks.push(block);
        }
        blocks
    }

    /// Canonical blocks from `start`, at most `count` and about 4 MiB of them.
    fn blocks_by_range(&self, start: u64, count: u32) -> Vec<goodwill_ledger::Block> {
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        for height in start..start.saturating_add(u64::from(count.min(MAX_RANGE_BLOCKS))) {
            let Ok(Some(hash)) = self.chain.store().canonical_hash(height) else { break };
            let Ok(Some(block)) = self.chain.store().block(&hash) else { break };
            bytes += block.encoded_len();
            if bytes > MAX_RANGE_BYTES && !blocks.is_empty() {
                break;
            }
            blocks.push(block);
        }
        blocks
    }

    /// Admits a transaction that passed the stateless rules to the pool if the pool's rules
    /// (see [`crate::mempool`]) allow it.
    fn submit(&mut self, Checked(tx): Checked) -> Result<Hash, SubmitError> {
        let account = self.chain.account(&tx.body().sender).map_err(|e| SubmitError::Store(e.to_string()))?;
        let id = tx.id();
        let slot = self.slot_now();
        self.pool.insert(tx, &account, slot)?;
        Ok(id)
    }

    /// Forges `slot` if this node's forger may sign it and the head is not already at or past it.
    fn forge(&mut self, slot: u64, timestamp_ms: u64) -> Result<Option<Forged>, ChainFailure> {
        let Some(forger) = self.forger.as_mut() else { return Ok(None) };
        if self.chain.head().header().slot >= slot || forger.record.last_block_slot() >= Some(slot) {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let mut builder = match self.chain.builder(&forger.key, slot, timestamp_ms) {
            Ok(builder) => builder,
            Err(goodwill_ledger::ChainError::Invalid(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Ready transactions, highest fee per byte first, each sender's in nonce order.
        let chain = &self.chain;
        let ready: Vec<Transaction> = self
            .pool
            .ready(|sender| chain.account(sender).ok().map(|a| a.nonce))
            .into_iter()
            .cloned()
            .collect();
        let mut dropped = Vec::new();
        // Every other node imports this block before it can forge on it, taking about as long
        // as building it: a block that takes more than a quarter of a slot to fill risks
        // arriving after the next slot's forger has started, which forks the chain and makes the
        // next blocks larger still. What does not fit waits for the next block.
        let budget = std::time::Duration::from_millis(self.chain.spec().params.slot_duration_ms / 4);
        for (i, tx) in ready.into_iter().enumerate() {
            if i % 64 == 63 && started.elapsed() > budget {
                self.metrics.blocks_cut_by_time.inc();
                break;
            }
            if !builder.fits(&tx) {
                // A smaller one (or one that is not a contract call, once the block's gas is
                // spent) may still fit.
                continue;
            }
            let id = tx.id();
            // Admission checked the signature: it is not verified again.
            match builder.push_admitted(tx) {
                Ok(()) => {}
                // An earlier transaction of its sender was left out.
                Err(ApplyError::Invalid(TxError::FutureNonce { .. })) => {}
                Err(ApplyError::Invalid(reason)) => {
                    tracing::debug!(%id, %reason, "dropping a pending transaction");
                    dropped.push(id);
                }
                Err(ApplyError::Store(error)) => return Err(error.into()),
                Err(error) => return Err(ChainFailure::Other(error.to_string())),
            }
        }
        let filled = started.elapsed();
        // Claimed on disk before the signature exists: whatever happens next, this key never
        // signs this slot again.
        match forger.record.claim_block(slot) {
            Ok(()) => {}
            Err(error @ SigningError::AlreadySigned { .. }) => {
                tracing::warn!(%error, "not forging");
                return Ok(None);
            }
            Err(error) => return Err(ChainFailure::Other(error.to_string())),
        }
        let applied = builder.seal(&forger.key)?;
        let sealed = started.elapsed();
        let block = &applied.block;
        let forged = Forged {
            height: block.header().height,
            hash: block.hash(),
            transactions: block.transactions.len(),
            block: block.clone(),
        };
        let senders: Vec<Address> = block.transactions.iter().map(|tx| tx.body().sender).collect();
        self.chain.commit(applied)?;
        let committed = started.elapsed();
        self.metrics.block_import_seconds.observe(committed.as_secs_f64());
        self.metrics.committed_blocks.inc();
        self.metrics.committed_transactions.inc_by(senders.len() as u64);
        for id in dropped {
            self.pool.remove(&id);
        }
        self.settle_pool(senders, Vec::new());
        let spec = self.chain.spec();
        tracing::info!(
            height = forged.height,
            hash = %forged.hash,
            slot,
            epoch = epoch_of(slot, spec.params.slots_per_epoch),
            transactions = forged.transactions,
            fill_ms = filled.as_millis() as u64,
            seal_ms = (sealed - filled).as_millis() as u64,
            commit_ms = (committed - sealed).as_millis() as u64,
            settle_ms = (started.elapsed() - committed).as_millis() as u64,
            "forged a block"
        );
        Ok(Some(forged))
    }
}

#[cfg(test)]
mod tests {
    use goodwill_ledger::MemoryStore;
    use goodwill_ledger::testkit::{self, ChainGenerator};

    use super::*;

    /// An actor on the memory store: the chain thread's rules do not depend on RocksDB.
    fn actor() -> Actor<MemoryStore> {
        let spec = testkit::spec();
        let pool = PoolConfig::new(spec.pool.tx_expiry_slots, spec.params.min_fee);
        let chain = Chain::open(MemoryStore::default(), spec).unwrap();
        let finality = Finality::resume(chain.finalized(), chain.spec().params.slots_per_epoch);
        Actor {
            chain,
            forger: None,
            pool: Mempool::new(pool),
            metrics: Metrics::new(),
            finality,
            recounted: None,
        }
    }

    /// Submits as a handle does: the stateless rules first, then the pool.
    fn submit(actor: &mut Actor<MemoryStore>, tx: Transaction) -> Result<Hash, SubmitError> {
        let checked = Checked::new(tx, actor.chain.spec(), &actor.chain.genesis_hash())?;
        actor.submit(checked)
    }

    #[test]
    fn a_reorganisation_returns_the_replaced_transactions_to_the_pool() {
        let mut actor = actor();
        let (a, b) = (testkit::account(0), testkit::account(1));
        // Branch one: a single block with Alice's transfer.
        let mut one = ChainGenerator::new(4, 1);
        let alices = testkit::transfer(&a, &b, 0, 5, 10);
        let short = one.next_block_with(vec![alices.clone()]);
        // Branch two, longer, without it.
        let mut two = ChainGenerator::new(4, 2);
        // Carol's transfer waits in this node's pool; branch two commits it in its second block.
        let carols = testkit::transfer(&testkit::account(2), &a, 0, 3, 10);
        assert!(submit(&mut actor, carols.clone()).is_ok());
        let long = [
            two.next_block_with(vec![testkit::transfer(&b, &a, 0, 7, 10)]),
            two.next_block_with(vec![carols.clone()]),
        ];
        // Its second block alone has no parent here, however often it comes (sync relies on
        // hearing so: a block held aside is not "known" while its ancestry is missing).
        assert_eq!(actor.import(long[1].clone(), false), ImportOutcome::Orphan);
        assert_eq!(actor.import(long[1].clone(), false), ImportOutcome::Orphan);
        assert_eq!(actor.import(short.clone(), false), ImportOutcome::Applied);
        assert_eq!(actor.import(short, false), ImportOutcome::Known);
        assert!(!actor.pool.contains(&alices.id()));
        // The first block of branch two completes a longer chain: the chain switches to it.
        assert_eq!(actor.import(long[0].clone(), false), ImportOutcome::Applied);
        assert_eq!(actor.chain.head().hash(), long[1].hash());
        assert!(actor.pool.contains(&alices.id()), "Alice's transfer waits for a block again");
        // Bob's and Carol's transfers were committed by the new branch and are not pending,
        // though the block that completed the branch carried only Bob's.
        assert!(!actor.pool.contains(&carols.id()), "a transaction the branch committed left the pool");
        assert_eq!(actor.pool.len(), 1);
    }

    #[test]
    fn a_received_block_takes_held_transactions_and_checks_the_others() {
        let mut actor = actor();
        let (a, b) = (testkit::account(0), testkit::account(1));
        let held = testkit::transfer(&a, &b, 0, 5, 10);
        assert!(submit(&mut actor, held.clone()).is_ok());
        // The held body under another transfer's signature: the same id, a signature that fails.
        let mut wire = held.to_wire();
        wire.signature = testkit::transfer(&a, &b, 1, 5, 10).signature().to_vec().into();
        let forged = Transaction::from_wire(wire).unwrap();
        assert_eq!(forged.id(), held.id());
        let generator = ChainGenerator::new(4, 1);
        let seal = |tx: Transaction| {
            let slot = generator.chain.head().header().slot + 1;
            let time = generator.chain.spec().slot_start_ms(slot).unwrap();
            let mut builder = generator.chain.builder(&testkit::forger(), slot, time).unwrap();
            builder.push_admitted(tx).unwrap();
            let block = builder.seal(&testkit::forger()).unwrap().block;
            ReceivedBlock::decode(bytes::Bytes::from(block.encode()), 1 << 20).unwrap()
        };
        // The pool's copy is not taken for a different signature: the block's is decoded,
        // verified, and refused.
        assert_eq!(actor.import_received(seal(forged)), ImportOutcome::Invalid);
        assert_eq!(actor.chain.head().header().height, 0);
        // The exact transaction is taken from the pool, and the block applies.
        assert_eq!(actor.import_received(seal(held.clone())), ImportOutcome::Applied);
        assert!(!actor.pool.contains(&held.id()));
        assert_eq!(actor.chain.account(&a.address()).unwrap().nonce, 1);
    }

    /// The attack on oneself: a forger whose database was lost (or whose block a reorganisation
    /// removed, or whose clock stepped back) forges a slot again, and two blocks for one slot
    /// forfeit every ticket it holds. Its signing record, on disk beside the database, refuses.
    #[test]
    fn a_forger_never_signs_a_slot_twice_even_when_its_chain_forgets_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::signing::FILE_NAME);
        let forging = || {
            let mut actor = actor();
            let key = testkit::forger();
            let record =
                crate::signing::SigningRecord::open(&path, actor.chain.genesis_hash(), key.address())
                    .unwrap();
            actor.forger = Some(Forger { key, record });
            actor
        };
        let mut first = forging();
        let time = |slot| testkit::slot_time(&testkit::spec(), slot, 0);
        assert!(first.forge(3, time(3)).unwrap().is_some());
        drop(first);
        // A fresh database (the block is gone), the same record: slot 3 is refused, 4 is not.
        let mut second = forging();
        assert!(second.forge(3, time(3)).unwrap().is_none());
        assert_eq!(second.chain.head().header().height, 0, "nothing was signed");
        assert!(second.forge(4, time(4)).unwrap().is_some());
    }

    /// The attack: a forger signs two different votes in one round, hoping to finalize two
    /// chains. A node with a forger of its own reports it (its key pays the fee), and its next
    /// block carries the report: the offender forfeits its tickets.
    #[test]
    fn a_forger_that_signs_conflicting_votes_is_reported_by_a_node_with_a_forger() {
        let dir = tempfile::tempdir().unwrap();
        let offender = goodwill_ledger::Keypair::insecure_dev("offender");
        let mut spec = testkit::spec();
        spec.forgers.push(goodwill_ledger::GenesisForger::for_key(&offender, goodwill_ledger::Amount(1)));
        // The clock is a few slots past genesis: votes of the current round are taken.
        spec.genesis_time_ms = crate::now_ms().saturating_sub(10 * spec.params.slot_duration_ms);
        let pool = PoolConfig::new(spec.pool.tx_expiry_slots, spec.params.min_fee);
        let chain = Chain::open(MemoryStore::default(), spec.clone()).unwrap();
        let finality = Finality::resume(chain.finalized(), spec.params.slots_per_epoch);
        let key = testkit::forger();
        let path = dir.path().join(crate::signing::FILE_NAME);
        let record = crate::signing::SigningRecord::open(&path, chain.genesis_hash(), key.address()).unwrap();
        let forger = Some(Forger { key: testkit::forger(), record });
        let mut actor = Actor {
            chain,
            forger,
            pool: Mempool::new(pool),
            metrics: Metrics::new(),
            finality,
            recounted: None,
        };
        let forge = |actor: &mut Actor<MemoryStore>, slot: u64| {
            let rank = actor.chain.rank_of(&key.address(), slot).unwrap().unwrap();
            actor.forge(slot, testkit::slot_time(&spec, slot, rank)).unwrap().unwrap()
        };
        forge(&mut actor, 1);

        let genesis = actor.chain.genesis_hash();
        let round = actor.slot_now();
        let source = actor.finality.finalized();
        let blocks = [0, 1].map(|height| {
            let hash = actor.chain.store().canonical_hash(height).unwrap().unwrap();
            BlockId { height, hash }
        });
        let votes = blocks.map(|target| Vote { round, source, target }.sign(&offender, &genesis));
        let added = actor.add_votes(votes.to_vec());
        assert_eq!(added.equivocations, 1, "{round}");
        let reports: Vec<Transaction> = actor
            .pool
            .best(16)
            .into_iter()
            .map(|(tx, _)| tx.clone())
            .filter(|tx| matches!(tx.body().payload, goodwill_ledger::Payload::ReportVoteEquivocation { .. }))
            .collect();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].body().sender, key.address());

        forge(&mut actor, 2);
        let head = actor.chain.store().block(&actor.chain.head().hash()).unwrap().unwrap();
        assert!(head.transactions.iter().any(|tx| tx.id() == reports[0].id()), "the next block carries it");
        let record = goodwill_ledger::state::read_forger(actor.chain.store(), 2, &offender.address())
            .unwrap()
            .unwrap();
        assert!(record.tickets.iter().all(|t| t.forfeited_from.is_some()), "{record:?}");
    }

    /// The attack: a stranger asks a main node for the same proofs of finality over and over,
    /// to keep its chain thread building them. The first answer builds each step once; later
    /// answers are read from the cache (shown by marking a cached step: the mark comes back).
    #[tokio::test]
    async fn a_stranger_asking_for_finality_steps_again_is_answered_from_the_cache() {
        let keys: Vec<goodwill_ledger::Keypair> =
            (0..3).map(|i| goodwill_ledger::Keypair::insecure_dev(&format!("steps-{i}"))).collect();
        let mut spec = testkit::spec();
        spec.forgers = keys
            .iter()
            .map(|k| goodwill_ledger::GenesisForger::for_key(k, goodwill_ledger::Amount(10)))
            .collect();
        spec.params.slots_per_epoch = 4;
        let chain = testkit::final_chain(spec.clone(), &keys, 20);
        let pool = PoolConfig::new(spec.pool.tx_expiry_slots, spec.params.min_fee);
        let (handle, thread) = spawn(chain, None, pool, Metrics::new());
        let first = handle.finality_steps(1).await.unwrap().unwrap();
        assert!(first.len() >= 5, "one step per epoch and the latest: {}", first.len());
        let cached = handle.steps.lock().unwrap().steps.len();
        assert_eq!(cached, first.len());
        // Mark the first cached step: an answer built again would not carry the mark.
        let block = first[0].proof.finalized.block;
        handle.steps.lock().unwrap().steps.get_mut(&block).unwrap().0.voters.clear();
        let again = handle.finality_steps(1).await.unwrap().unwrap();
        assert!(again[0].voters.is_empty(), "the step was built again");
        assert_eq!(again[1..], first[1..]);
        assert_eq!(handle.steps.lock().unwrap().steps.len(), cached);
        drop(handle);
        thread.join().unwrap();
    }

    /// The attack: a forger with the cheapest ticket signs a block for a slot far ahead (the
    /// open rank lets anyone sign a slot nobody else took). Imported, its slot would make every
    /// honest forger decline the slots up to it.
    #[test]
    fn a_block_for_a_future_slot_is_neither_imported_nor_relayed() {
        let mut actor = actor();
        let generator = ChainGenerator::new(4, 1);
        // Slots far past genesis: after epochs without blocks, the first block is signed at
        // the open rank.
        let forge_at = |slot: u64| {
            let open = generator.chain.spec().params.fallback_ranks;
            let time = testkit::slot_time(generator.chain.spec(), slot, open);
            let builder = generator.chain.builder(&testkit::forger(), slot, time).unwrap();
            builder.seal(&testkit::forger()).unwrap().block
        };
        let now_slot = actor.chain.spec().slot_at(crate::now_ms());
        let drift_slots =
            goodwill_ledger::spec::MAX_CLOCK_DRIFT_MS / actor.chain.spec().params.slot_duration_ms;
        let ahead = forge_at(now_slot + drift_slots + 2);
        assert_eq!(actor.import(ahead.clone(), false), ImportOutcome::FromTheFuture);
        assert_eq!(ImportOutcome::FromTheFuture.verdict(), Verdict::Ignore, "a future block is not relayed");
        assert_eq!(actor.chain.head().header().height, 0);
        assert!(!actor.chain.knows(&ahead.hash()).unwrap(), "not kept aside either");
        // The same forger's block for the last slot is taken (its open rank is stamped near the
        // slot's end, which for the current slot may still lie more than the drift ahead).
        assert_eq!(actor.import(forge_at(now_slot - 1), false), ImportOutcome::Applied);
    }

    #[test]
    fn submission_reports_the_pool_reason() {
        let mut actor = actor();
        let a = testkit::account(0);
        let tx = testkit::transfer(&a, &testkit::account(1), 0, 5, 10);
        assert_eq!(submit(&mut actor, tx.clone()).unwrap(), tx.id());
        assert!(matches!(
            submit(&mut actor, testkit::transfer(&a, &testkit::account(2), 0, 5, 10)),
            Err(SubmitError::Pool(PoolError::ReplacementUnderpriced { nonce: 0, .. }))
        ));
        assert!(matches!(
            submit(&mut actor, testkit::transfer(&a, &testkit::account(1), 0, 5, 1)),
            Err(SubmitError::Rejected(TxError::FeeTooLow { .. }))
        ));
    }
}
