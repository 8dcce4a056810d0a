//! The chain actor: one thread owns the chain and its RocksDB store; everything else sends it
//! commands over a bounded channel and gets answers on `oneshot` channels.

use std::collections::{BTreeMap, HashSet};

use goodwill_ledger::execute::check_stateless;
use goodwill_ledger::lottery::epoch_of;
use goodwill_ledger::state::{AssociationState, ForgerState, read_association, read_forger};
use goodwill_ledger::{
    Account, Address, Amount, ApplyError, Chain, Hash, Keypair, RocksStore, SealedHeader, Store, Transaction,
    TxError, TxLocation,
};
use tokio::sync::{mpsc, oneshot};

/// Most transactions waiting for a block; more are refused until blocks drain them.
pub const MAX_PENDING: usize = 10_000;
/// How far ahead of a sender's next nonce the pool holds transactions, so that one sender cannot
/// fill it.
pub const MAX_NONCE_AHEAD: u64 = 64;
/// Most blocks in one range response.
pub const MAX_RANGE_BLOCKS: u32 = 64;
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
    pub pending: usize,
    pub slot_duration_ms: u64,
    pub genesis_time_ms: u64,
    pub slots_per_epoch: u64,
    pub fallback_ranks: u32,
    pub min_fee: goodwill_ledger::Amount,
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

/// What importing a block from a peer did, for gossip validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: relay it.
    Accept,
    /// Already known, or not useful yet: do not relay, do not blame the sender.
    Ignore,
    /// Invalid: do not relay, and penalise the sender.
    Reject,
}

enum Command {
    Status(oneshot::Sender<Status>),
    Account(Address, oneshot::Sender<Result<Account, String>>),
    Forger(Address, oneshot::Sender<Result<Option<ForgerState>, String>>),
    Association(Address, oneshot::Sender<Result<Option<AssociationState>, String>>),
    Transaction(Hash, oneshot::Sender<Result<Option<TxStatus>, String>>),
    Submit(Box<Transaction>, oneshot::Sender<Result<Hash, SubmitError>>),
    RankOf(Address, u64, oneshot::Sender<Result<Option<u32>, String>>),
    Forge { slot: u64, timestamp_ms: u64, reply: oneshot::Sender<Result<Option<Forged>, String>> },
    Import(Box<goodwill_ledger::Block>, oneshot::Sender<Verdict>),
    BlocksByRange(u64, u32, oneshot::Sender<Vec<goodwill_ledger::Block>>),
}

/// A cheap, cloneable handle to the chain actor.
#[derive(Clone)]
pub struct ChainHandle {
    commands: mpsc::Sender<Command>,
}

/// Why a submitted transaction was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction breaks a rule.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The pool holds as many transactions as it may; try again after the next blocks.
    #[error("the node holds {MAX_PENDING} pending transactions already; try again after the next block")]
    PoolFull,
    /// The node could not read its state.
    #[error("the node could not read its state: {0}")]
    Store(String),
}

/// The actor stopped (the node is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the chain actor has stopped")]
pub struct Stopped;

impl ChainHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    pub async fn status(&self) -> Result<Status, Stopped> {
        self.ask(Command::Status).await
    }

    pub async fn account(&self, address: Address) -> Result<Result<Account, String>, Stopped> {
        self.ask(|r| Command::Account(address, r)).await
    }

    pub async fn forger(&self, address: Address) -> Result<Result<Option<ForgerState>, String>, Stopped> {
        self.ask(|r| Command::Forger(address, r)).await
    }

    pub async fn association(
        &self,
        address: Address,
    ) -> Result<Result<Option<AssociationState>, String>, Stopped> {
        self.ask(|r| Command::Association(address, r)).await
    }

    pub async fn transaction(&self, id: Hash) -> Result<Result<Option<TxStatus>, String>, Stopped> {
        self.ask(|r| Command::Transaction(id, r)).await
    }

    pub async fn submit(&self, tx: Transaction) -> Result<Result<Hash, SubmitError>, Stopped> {
        self.ask(|r| Command::Submit(Box::new(tx), r)).await
    }

    pub async fn rank_of(&self, forger: Address, slot: u64) -> Result<Result<Option<u32>, String>, Stopped> {
        self.ask(|r| Command::RankOf(forger, slot, r)).await
    }

    pub async fn forge(
        &self,
        slot: u64,
        timestamp_ms: u64,
    ) -> Result<Result<Option<Forged>, String>, Stopped> {
        self.ask(|reply| Command::Forge { slot, timestamp_ms, reply }).await
    }

    pub async fn import(&self, block: goodwill_ledger::Block) -> Result<Verdict, Stopped> {
        self.ask(|r| Command::Import(Box::new(block), r)).await
    }

    pub async fn blocks_by_range(
        &self,
        start: u64,
        count: u32,
    ) -> Result<Vec<goodwill_ledger::Block>, Stopped> {
        self.ask(|r| Command::BlocksByRange(start, count, r)).await
    }
}

/// Starts the actor on its own thread. It stops when every handle is dropped; joining the
/// returned thread then guarantees the store is closed.
pub fn spawn(
    chain: Chain<RocksStore>,
    forger: Option<Keypair>,
) -> (ChainHandle, std::thread::JoinHandle<()>) {
    let (commands, mut inbox) = mpsc::channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("chain".into())
        .spawn(move || {
            let mut actor = Actor { chain, forger, pending: BTreeMap::new(), pending_ids: HashSet::new() };
            while let Some(command) = inbox.blocking_recv() {
                actor.handle(command);
            }
            tracing::debug!("chain actor stopped");
        })
        .expect("spawning the chain thread");
    (ChainHandle { commands }, thread)
}

struct Actor {
    chain: Chain<RocksStore>,
    forger: Option<Keypair>,
    /// Pending transactions by (sender, nonce): at most one per nonce, replaced only by a higher fee.
    pending: BTreeMap<(Address, u64), Transaction>,
    pending_ids: HashSet<Hash>,
}

impl Actor {
    fn handle(&mut self, command: Command) {
        // A dropped reply means the asker gave up; nothing to do about it.
        match command {
            Command::Status(reply) => {
                let spec = self.chain.spec();
                let _ = reply.send(Status {
                    chain_id: spec.chain_id.clone(),
                    genesis_hash: self.chain.genesis_hash(),
                    head: self.chain.head().clone(),
                    pending: self.pending.len(),
                    slot_duration_ms: spec.params.slot_duration_ms,
                    genesis_time_ms: spec.genesis_time_ms,
                    slots_per_epoch: spec.params.slots_per_epoch,
                    fallback_ranks: spec.params.fallback_ranks,
                    min_fee: spec.params.min_fee,
                });
            }
            Command::Account(address, reply) => {
                let _ = reply.send(self.chain.account(&address).map_err(|e| e.to_string()));
            }
            Command::Forger(address, reply) => {
                let height = self.chain.head().header().height;
                let _ =
                    reply.send(read_forger(self.chain.store(), height, &address).map_err(|e| e.to_string()));
            }
            Command::Association(address, reply) => {
                let height = self.chain.head().header().height;
                let _ = reply
                    .send(read_association(self.chain.store(), height, &address).map_err(|e| e.to_string()));
            }
            Command::Transaction(id, reply) => {
                let answer = if self.pending_ids.contains(&id) {
                    Ok(Some(TxStatus::Pending))
                } else {
                    self.chain
                        .store()
                        .transaction_location(&id)
                        .map(|l| l.map(TxStatus::Committed))
                        .map_err(|e| e.to_string())
                };
                let _ = reply.send(answer);
            }
            Command::Submit(tx, reply) => {
                let _ = reply.send(self.submit(*tx));
            }
            Command::RankOf(forger, slot, reply) => {
                let _ = reply.send(self.chain.rank_of(&forger, slot).map_err(|e| e.to_string()));
            }
            Command::Forge { slot, timestamp_ms, reply } => {
                let _ = reply.send(self.forge(slot, timestamp_ms));
            }
            Command::Import(block, reply) => {
                let _ = reply.send(self.import(*block));
            }
            Command::BlocksByRange(start, count, reply) => {
                let _ = reply.send(self.blocks_by_range(start, count));
            }
        }
    }

    /// Imports a block from a peer; included transactions leave the pool.
    fn import(&mut self, block: goodwill_ledger::Block) -> Verdict {
        let included: Vec<(Address, u64)> =
            block.transactions.iter().map(|tx| (tx.body().sender, tx.body().nonce)).collect();
        let hash = block.hash();
        match self.chain.import(block) {
            Ok(goodwill_ledger::Imported::Known) => Verdict::Ignore,
            Ok(outcome) => {
                tracing::debug!(%hash, ?outcome, "imported a block from a peer");
                for key in included {
                    if let Some(tx) = self.pending.remove(&key) {
                        self.pending_ids.remove(&tx.id());
                    }
                }
                Verdict::Accept
            }
            Err(goodwill_ledger::ChainError::Invalid(reason)) => {
                tracing::warn!(%hash, %reason, "rejected a block from a peer");
                Verdict::Reject
            }
            Err(
                goodwill_ledger::ChainError::TooDeep { .. } | goodwill_ledger::ChainError::TooFarAhead { .. },
            ) => Verdict::Ignore,
            Err(error) => {
                tracing::error!(%hash, %error, "could not import a block");
                Verdict::Ignore
            }
        }
    }

    /// Canonical blocks from `start`, at most `count` and about 4 MiB of them.
    fn blocks_by_range(&self, start: u64, count: u32) -> Vec<goodwill_ledger::Block> {
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        for height in start..start.saturating_add(u64::from(count.min(MAX_RANGE_BLOCKS))) {
            let Ok(Some(hash)) = self.chain.store().canonical_hash(height) else { break };
            let Ok(Some(block)) = self.chain.store().block(&hash) else { break };
            bytes += block.encode().len();
            if bytes > MAX_RANGE_BYTES && !blocks.is_empty() {
                break;
            }
            blocks.push(block);
        }
        blocks
    }

    /// Admits a transaction to the pending pool: stateless checks, not already used nonce,
    /// bounded pool, one per (sender, nonce) unless the fee is higher.
    fn submit(&mut self, tx: Transaction) -> Result<Hash, SubmitError> {
        check_stateless(&tx, self.chain.spec())?;
        let body = tx.body();
        let account = self.chain.account(&body.sender).map_err(|e| SubmitError::Store(e.to_string()))?;
        if body.nonce < account.nonce {
            return Err(TxError::StaleNonce { expected: account.nonce, got: body.nonce }.into());
        }
        if body.nonce >= account.nonce.saturating_add(MAX_NONCE_AHEAD) {
            return Err(TxError::FutureNonce { expected: account.nonce, got: body.nonce }.into());
        }
        let key = (body.sender, body.nonce);
        if let Some(existing) = self.pending.get(&key) {
            if existing.id() == tx.id() {
                return Ok(tx.id());
            }
            if existing.body().fee >= body.fee {
                // Replacing a pending transaction needs a higher fee.
                return Err(
                    TxError::FeeTooLow { min: Amount(existing.body().fee.0 + 1), got: body.fee }.into()
                );
            }
            self.pending_ids.remove(&existing.id());
        } else if self.pending.len() >= MAX_PENDING {
            return Err(SubmitError::PoolFull);
        }
        let id = tx.id();
        self.pending_ids.insert(id);
        self.pending.insert(key, tx);
        Ok(id)
    }

    /// Forges `slot` if this node's forger may sign it and the head is not already at or past it.
    fn forge(&mut self, slot: u64, timestamp_ms: u64) -> Result<Option<Forged>, String> {
        let Some(forger) = &self.forger else { return Ok(None) };
        if self.chain.head().header().slot >= slot {
            return Ok(None);
        }
        let mut builder = match self.chain.builder(forger, slot, timestamp_ms) {
            Ok(builder) => builder,
            Err(goodwill_ledger::ChainError::Invalid(_)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        // Pending transactions in (sender, nonce) order, so each sender's run applies in order.
        let mut dropped = Vec::new();
        for (key, tx) in &self.pending {
            if !builder.has_room(tx.encoded_len()) {
                break;
            }
            // Admission checked the signature: it is not verified again.
            match builder.push_admitted(tx.clone()) {
                Ok(()) => {}
                Err(ApplyError::Invalid(TxError::FutureNonce { .. })) => {}
                Err(ApplyError::Invalid(reason)) => {
                    tracing::debug!(id = %tx.id(), %reason, "dropping a pending transaction");
                    dropped.push(*key);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        let applied = builder.seal(forger).map_err(|e| e.to_string())?;
        let block = &applied.block;
        let forged = Forged {
            height: block.header().height,
            hash: block.hash(),
            transactions: block.transactions.len(),
            block: block.clone(),
        };
        let included: Vec<(Address, u64)> =
            block.transactions.iter().map(|tx| (tx.body().sender, tx.body().nonce)).collect();
        self.chain.commit(applied).map_err(|e| e.to_string())?;
        for key in included.into_iter().chain(dropped) {
            if let Some(tx) = self.pending.remove(&key) {
                self.pending_ids.remove(&tx.id());
            }
        }
        let spec = self.chain.spec();
        tracing::info!(
            height = forged.height,
            hash = %forged.hash,
            slot,
            epoch = epoch_of(slot, spec.params.slots_per_epoch),
            transactions = forged.transactions,
            "forged a block"
        );
        Ok(Some(forged))
    }
}

#[cfg(test)]
mod tests {
    use goodwill_ledger::{ChainSpec, Payload, TransactionBody};

    use super::*;

    fn actor(dir: &std::path::Path) -> Actor {
        let chain = Chain::open(RocksStore::open(dir).unwrap(), ChainSpec::dev(0)).unwrap();
        Actor { chain, forger: None, pending: BTreeMap::new(), pending_ids: HashSet::new() }
    }

    fn transfer(key: &Keypair, nonce: u64, fee: u64) -> Transaction {
        TransactionBody {
            chain_id: "goodwill-dev".into(),
            sender: key.address(),
            nonce,
            fee: Amount(fee),
            payload: Payload::Transfer { to: Keypair::insecure_dev("dev2").address(), amount: Amount(1) },
        }
        .sign(key)
    }

    #[test]
    fn the_pool_bounds_nonces_ahead_and_replaces_only_for_a_higher_fee() {
        let dir = tempfile::tempdir().unwrap();
        let mut actor = actor(dir.path());
        let dev = Keypair::insecure_dev("dev");
        let first = transfer(&dev, 0, 1_000);
        assert_eq!(actor.submit(first.clone()).unwrap(), first.id());
        assert_eq!(actor.submit(first.clone()).unwrap(), first.id(), "resubmitting is harmless");
        // Another transaction for the same nonce at the same fee does not replace the first.
        let mut rival = first.body().clone();
        rival.payload = Payload::Transfer { to: dev.address(), amount: Amount(2) };
        assert!(matches!(
            actor.submit(rival.sign(&dev)),
            Err(SubmitError::Rejected(TxError::FeeTooLow { .. }))
        ));
        let better = transfer(&dev, 0, 2_000);
        actor.submit(better.clone()).unwrap();
        assert_eq!(actor.pending.len(), 1);
        assert!(actor.pending_ids.contains(&better.id()) && !actor.pending_ids.contains(&first.id()));
        assert!(actor.submit(transfer(&dev, MAX_NONCE_AHEAD - 1, 1_000)).is_ok());
        assert!(matches!(
            actor.submit(transfer(&dev, MAX_NONCE_AHEAD, 1_000)),
            Err(SubmitError::Rejected(TxError::FutureNonce { .. }))
        ));
    }

    #[test]
    fn the_pool_refuses_transactions_beyond_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut actor = actor(dir.path());
        let senders = MAX_PENDING.div_ceil(MAX_NONCE_AHEAD as usize);
        let mut admitted = 0;
        'fill: for s in 0..senders {
            let key = Keypair::insecure_dev(&format!("pool-{s}"));
            for nonce in 0..MAX_NONCE_AHEAD {
                if admitted == MAX_PENDING {
                    break 'fill;
                }
                actor.submit(transfer(&key, nonce, 1_000)).unwrap();
                admitted += 1;
            }
        }
        assert_eq!(actor.pending.len(), MAX_PENDING);
        let late = Keypair::insecure_dev("late");
        assert!(matches!(actor.submit(transfer(&late, 0, 1_000)), Err(SubmitError::PoolFull)));
        assert_eq!(actor.pending.len(), MAX_PENDING);
    }
}
