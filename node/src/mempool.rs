//! The transaction pool: transactions waiting for a block.
//!
//! - Bounded in count and in bytes. When full, a new transaction may push out the one paying the
//!   least per byte, but only from the end of its sender's queue (evicting from the middle would
//!   strand the sender's later nonces), and only if it pays more per byte itself.
//! - Per sender, transactions are kept by nonce. Those that follow the account's nonce without a
//!   gap are ready; the rest wait in the future queue until the gap fills, at most
//!   [`PoolConfig::max_nonce_ahead`] nonces ahead.
//! - One transaction per (sender, nonce): a replacement must pay a strictly higher fee.
//! - A sender must be able to pay for everything it has pending up to each nonce.
//! - Transactions expire [`PoolConfig::expiry_slots`] slots after they arrived.
//! - Blocks take ready transactions highest fee per byte first, each sender's in nonce order.
//!
//! The pool does not read the ledger: callers pass the sender's account, so every rule here is
//! testable without a store.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use goodwill_ledger::{Account, Address, Amount, Hash, Payload, Transaction};

/// The pool's bounds and policy.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most transactions held.
    pub max_count: usize,
    /// Most bytes of transactions held.
    pub max_bytes: usize,
    /// How far ahead of a sender's next nonce transactions are held.
    pub max_nonce_ahead: u64,
    /// Slots a transaction may wait.
    pub expiry_slots: u64,
    /// This node's minimum fee; at least the chain's.
    pub min_fee: Amount,
}

impl PoolConfig {
    /// Default bounds with the chain's expiry and this node's minimum fee.
    pub fn new(expiry_slots: u64, min_fee: Amount) -> PoolConfig {
        PoolConfig {
            max_count: 10_000,
            max_bytes: 32 * 1024 * 1024,
            max_nonce_ahead: 64,
            expiry_slots,
            min_fee,
        }
    }
}

/// Why the pool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Below this node's minimum fee (which may be above the chain's).
    #[error("the fee {got} is below this node's minimum fee of {min}")]
    FeeBelowNodeMinimum {
        /// This node's minimum.
        min: Amount,
        /// The transaction's fee.
        got: Amount,
    },
    /// The nonce was used already.
    #[error("nonce {got} was already used; the account's next nonce is {next}")]
    StaleNonce {
        /// The account's next nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// Too far ahead of the account's nonce to hold.
    #[error(
        "nonce {got} is too far ahead: the account's next nonce is {next}, and the pool holds at most {ahead} ahead"
    )]
    NonceTooFarAhead {
        /// The account's next nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
        /// The pool's bound.
        ahead: u64,
    },
    /// Another transaction has this nonce and at least this fee.
    #[error("a transaction with nonce {nonce} is pending with fee {fee}; a replacement must pay more")]
    ReplacementUnderpriced {
        /// The nonce.
        nonce: u64,
        /// The pending transaction's fee.
        fee: Amount,
    },
    /// The sender cannot pay for this and its earlier pending transactions.
    #[error(
        "the balance {balance} cannot pay {needed} for this and the sender's earlier pending transactions"
    )]
    InsufficientBalance {
        /// The sender's balance.
        balance: Amount,
        /// What its pending transactions up to this one spend.
        needed: u128,
    },
    /// The pool is full of transactions paying at least as much per byte.
    #[error(
        "the pool is full, and every transaction it could drop pays at least as much per byte; raise the fee or retry after the next block"
    )]
    Full,
}

/// Where an admitted transaction went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// New in the pool.
    New,
    /// It was here already.
    Known,
    /// It replaced a transaction with the same nonce.
    Replaced(Hash),
}

/// Fee per byte, scaled so that ordering is exact enough for any fee a u64 can hold.
type FeeRate = u128;

fn fee_rate(tx: &Transaction) -> FeeRate {
    (u128::from(tx.body().fee.0) << 20) / tx.encoded_len().max(1) as u128
}

/// The most a transaction can take from its sender's balance.
fn spend(tx: &Transaction) -> u128 {
    let body = tx.body();
    let moved = match &body.payload {
        Payload::Transfer { amount, .. } => amount.0,
        Payload::BuyTicket { price, .. } => price.0,
        _ => 0,
    };
    u128::from(body.fee.0) + u128::from(moved)
}

struct Entry {
    tx: Transaction,
    size: usize,
    rate: FeeRate,
    arrived_slot: u64,
}

/// The pool. See the module documentation for its rules.
pub struct Mempool {
    config: PoolConfig,
    entries: HashMap<Hash, Entry>,
    /// Each sender's transactions by nonce.
    senders: HashMap<Address, BTreeMap<u64, Hash>>,
    /// Every transaction by fee rate, for eviction.
    by_rate: BTreeSet<(FeeRate, Hash)>,
    bytes: usize,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Mempool {
        Mempool {
            config,
            entries: HashMap::new(),
            senders: HashMap::new(),
            by_rate: BTreeSet::new(),
            bytes: 0,
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of transactions held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every sender with transactions in the pool.
    pub fn senders(&self) -> Vec<Address> {
        self.senders.keys().copied().collect()
    }

    /// Up to `limit` of the pool's transactions, highest fee per byte first, with the slot each
    /// arrived in.
    pub fn best(&self, limit: usize) -> Vec<(&Transaction, u64)> {
        self.by_rate
            .iter()
            .rev()
            .filter_map(|(_, id)| self.entries.get(id))
            .take(limit)
            .map(|entry| (&entry.tx, entry.arrived_slot))
            .collect()
    }

    /// A transaction the pool holds, with the slot it arrived in.
    pub fn get(&self, id: &Hash) -> Option<(&Transaction, u64)> {
        self.entries.get(id).map(|entry| (&entry.tx, entry.arrived_slot))
    }

    /// How many transactions from `sender` the pool holds.
    pub fn count_from(&self, sender: &Address) -> usize {
        self.senders.get(sender).map_or(0, BTreeMap::len)
    }

    /// Whether the pool holds `id`.
    pub fn contains(&self, id: &Hash) -> bool {
        self.entries.contains_key(id)
    }

    /// The pool's policy.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Admits `tx` from a sender whose account is `account`, in slot `slot`. A refusal changes
    /// nothing.
    pub fn insert(&mut self, tx: Transaction, account: &Account, slot: u64) -> Result<Admitted, PoolError> {
        let id = tx.id();
        if self.entries.contains_key(&id) {
            return Ok(Admitted::Known);
        }
        let body = tx.body();
        let (sender, nonce) = (body.sender, body.nonce);
        if body.fee < self.config.min_fee {
            return Err(PoolError::FeeBelowNodeMinimum { min: self.config.min_fee, got: body.fee });
        }
        if nonce < account.nonce {
            return Err(PoolError::StaleNonce { next: account.nonce, got: nonce });
        }
        if nonce >= account.nonce.saturating_add(self.config.max_nonce_ahead) {
            return Err(PoolError::NonceTooFarAhead {
                next: account.nonce,
                got: nonce,
                ahead: self.config.max_nonce_ahead,
            });
        }
        let queue = self.senders.get(&sender);
        let replaced = queue.and_then(|q| q.get(&nonce)).copied();
        if let Some(old) = replaced.and_then(|old| self.entries.get(&old))
            && old.tx.body().fee >= body.fee
        {
            return Err(PoolError::ReplacementUnderpriced { nonce, fee: old.tx.body().fee });
        }
        let earlier: u128 = queue
            .map(|q| q.range(account.nonce..nonce).map(|(_, id)| spend(&self.entries[id].tx)).sum())
            .unwrap_or(0);
        let needed = earlier + spend(&tx);
        if needed > u128::from(account.balance.0) {
            return Err(PoolError::InsufficientBalance { balance: account.balance, needed });
        }
        let (size, rate) = (tx.encoded_len(), fee_rate(&tx));
        let victims = self.victims_for(&sender, replaced, size, rate)?;
        for victim in victims {
            self.remove(&victim);
        }
        if let Some(old) = replaced {
            self.remove(&old);
        }
        self.bytes += size;
        self.by_rate.insert((rate, id));
        self.senders.entry(sender).or_default().insert(nonce, id);
        self.entries.insert(id, Entry { tx, size, rate, arrived_slot: slot });
        Ok(replaced.map_or(Admitted::New, Admitted::Replaced))
    }

    /// What must leave for a transaction of `size` bytes paying `rate` to fit, cheapest first;
    /// `Full` if that would drop anything paying as much.
    fn victims_for(
        &self,
        sender: &Address,
        replaced: Option<Hash>,
        size: usize,
        rate: FeeRate,
    ) -> Result<Vec<Hash>, PoolError> {
        let freed = replaced.map_or(0, |id| self.entries[&id].size);
        let mut count = self.entries.len() + 1 - usize::from(replaced.is_some());
        let mut bytes = self.bytes + size - freed;
        let mut victims = Vec::new();
        let mut candidates = self.by_rate.iter();
        while count > self.config.max_count || bytes > self.config.max_bytes {
            // Only the last of a sender's queue, never the sender's own (it would open a gap
            // before the newcomer), never the transaction being replaced.
            let next = candidates.find(|(_, id)| {
                let entry = &self.entries[id];
                let body = entry.tx.body();
                Some(*id) != replaced
                    && body.sender != *sender
                    && self.senders[&body.sender].last_key_value().map(|(_, last)| last) == Some(id)
            });
            match next {
                Some((victim_rate, victim)) if *victim_rate < rate => {
                    count -= 1;
                    bytes -= self.entries[victim].size;
                    victims.push(*victim);
                }
                _ => return Err(PoolError::Full),
            }
        }
        Ok(victims)
    }

    /// Removes `id`; returns it if it was held.
    pub fn remove(&mut self, id: &Hash) -> Option<Transaction> {
        let entry = self.entries.remove(id)?;
        self.bytes -= entry.size;
        self.by_rate.remove(&(entry.rate, *id));
        let body = entry.tx.body();
        if let Some(queue) = self.senders.get_mut(&body.sender) {
            queue.remove(&body.nonce);
            if queue.is_empty() {
                self.senders.remove(&body.sender);
            }
        }
        Some(entry.tx)
    }

    /// Drops `sender`'s transactions whose nonce is below `next_nonce` (a block used those
    /// nonces). Returns how many left.
    pub fn drop_used(&mut self, sender: &Address, next_nonce: u64) -> usize {
        let used: Vec<Hash> = match self.senders.get(sender) {
            Some(queue) => queue.range(..next_nonce).map(|(_, id)| *id).collect(),
            None => return 0,
        };
        for id in &used {
            self.remove(id);
        }
        used.len()
    }

    /// Drops transactions that arrived more than `expiry_slots` before `slot`. Returns how many.
    pub fn expire(&mut self, slot: u64) -> usize {
        let expiry = self.config.expiry_slots;
        let old: Vec<Hash> = self
            .entries
            .iter()
            .filter(|(_, e)| e.arrived_slot.saturating_add(expiry) < slot)
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            self.remove(id);
        }
        old.len()
    }

    /// Ready transactions, highest fee per byte first, each sender's in nonce order.
    /// `next_nonce` gives each sender's account nonce; a sender whose first pending nonce is not
    /// that one has nothing ready.
    pub fn ready(&self, mut next_nonce: impl FnMut(&Address) -> Option<u64>) -> Vec<&Transaction> {
        let mut heap = BinaryHeap::new();
        for (sender, queue) in &self.senders {
            let Some(next) = next_nonce(sender) else { continue };
            if let Some(id) = queue.get(&next) {
                heap.push((self.entries[id].rate, std::cmp::Reverse(*id), *sender, next));
            }
        }
        let mut out = Vec::with_capacity(self.entries.len());
        while let Some((_, std::cmp::Reverse(id), sender, nonce)) = heap.pop() {
            out.push(&self.entries[&id].tx);
            if let Some(next) = self.senders[&sender].get(&(nonce + 1)) {
                heap.push((self.entries[next].rate, std::cmp::Reverse(*next), sender, nonce + 1));
            }
        }
        out
    }

    /// How many transactions wait behind a nonce gap, given each sender's account nonce.
    pub fn queued(&self, mut next_nonce: impl FnMut(&Address) -> Option<u64>) -> usize {
        self.senders
            .iter()
            .map(|(sender, queue)| {
                let Some(mut expected) = next_nonce(sender) else { return queue.len() };
                let mut ready = 0;
                for nonce in queue.keys() {
                    if *nonce != expected {
                        break;
                    }
                    ready += 1;
                    expected += 1;
                }
                queue.len() - ready
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use goodwill_ledger::{Keypair, TransactionBody};

    use super::*;

    fn key(name: &str) -> Keypair {
        Keypair::insecure_dev(name)
    }

    fn transfer(key: &Keypair, nonce: u64, fee: u64) -> Transaction {
        TransactionBody {
            chain_id: "goodwill-dev".into(),
            sender: key.address(),
            nonce,
            fee: Amount(fee),
            payload: Payload::Transfer { to: Keypair::insecure_dev("dev2").address(), amount: Amount(10) },
        }
        .sign(key)
    }

    fn rich() -> Account {
        Account { balance: Amount::coins(1_000), nonce: 0 }
    }

    fn pool() -> Mempool {
        Mempool::new(PoolConfig::new(100, Amount(1_000)))
    }

    #[test]
    fn replacement_needs_a_higher_fee() {
        let mut pool = pool();
        let alice = key("alice");
        let first = transfer(&alice, 0, 2_000);
        assert_eq!(pool.insert(first.clone(), &rich(), 0), Ok(Admitted::New));
        assert_eq!(pool.insert(first.clone(), &rich(), 0), Ok(Admitted::Known));
        // Signing is deterministic: the same body is the same transaction.
        assert_eq!(pool.insert(transfer(&alice, 0, 2_000), &rich(), 0), Ok(Admitted::Known));
        let mut rival = first.body().clone();
        rival.payload = Payload::Transfer { to: alice.address(), amount: Amount(1) };
        assert_eq!(
            pool.insert(rival.sign(&alice), &rich(), 0),
            Err(PoolError::ReplacementUnderpriced { nonce: 0, fee: Amount(2_000) })
        );
        let better = transfer(&alice, 0, 3_000);
        assert_eq!(pool.insert(better.clone(), &rich(), 0), Ok(Admitted::Replaced(first.id())));
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(&better.id()) && !pool.contains(&first.id()));
        assert_eq!(pool.bytes(), better.encoded_len());
    }

    #[test]
    fn every_refusal_names_its_reason_and_changes_nothing() {
        let mut pool = pool();
        let alice = key("alice");
        pool.insert(transfer(&alice, 0, 2_000), &rich(), 0).unwrap();
        let before = (pool.len(), pool.bytes());
        assert_eq!(
            pool.insert(transfer(&alice, 1, 999), &rich(), 0),
            Err(PoolError::FeeBelowNodeMinimum { min: Amount(1_000), got: Amount(999) })
        );
        let used = Account { balance: Amount::coins(1), nonce: 5 };
        assert_eq!(
            pool.insert(transfer(&alice, 4, 2_000), &used, 0),
            Err(PoolError::StaleNonce { next: 5, got: 4 })
        );
        assert!(matches!(
            pool.insert(transfer(&alice, 64, 2_000), &rich(), 0),
            Err(PoolError::NonceTooFarAhead { next: 0, got: 64, ahead: 64 })
        ));
        // Two transfers of 10 plus fees of 2,000: a balance of 4,019 pays for one, not both.
        let poor = Account { balance: Amount(4_019), nonce: 0 };
        assert!(matches!(
            pool.insert(transfer(&alice, 1, 2_000), &poor, 0),
            Err(PoolError::InsufficientBalance { needed: 4_020, .. })
        ));
        assert_eq!((pool.len(), pool.bytes()), before);
    }

    #[test]
    fn ready_transactions_come_by_fee_and_in_nonce_order() {
        let mut pool = pool();
        let (alice, bob, carol) = (key("alice"), key("bob"), key("carol"));
        pool.insert(transfer(&alice, 0, 1_000), &rich(), 0).unwrap();
        pool.insert(transfer(&alice, 1, 9_000), &rich(), 0).unwrap();
        pool.insert(transfer(&bob, 0, 5_000), &rich(), 0).unwrap();
        // Carol's nonce 1 waits behind a gap.
        pool.insert(transfer(&carol, 1, 50_000), &rich(), 0).unwrap();
        let order: Vec<(Address, u64)> =
            pool.ready(|_| Some(0)).iter().map(|tx| (tx.body().sender, tx.body().nonce)).collect();
        // Bob pays more than Alice's first; Alice's second comes only after her first.
        assert_eq!(order, vec![(bob.address(), 0), (alice.address(), 0), (alice.address(), 1)]);
        assert_eq!(pool.queued(|_| Some(0)), 1);
        // The gap fills: Carol's transactions become ready, highest rate first.
        pool.insert(transfer(&carol, 0, 20_000), &rich(), 0).unwrap();
        let first = pool.ready(|_| Some(0))[0].body().clone();
        assert_eq!((first.sender, first.nonce), (carol.address(), 0));
        assert_eq!(pool.queued(|_| Some(0)), 0);
    }

    #[test]
    fn a_full_pool_evicts_the_cheapest_tail_for_a_better_payer_only() {
        let mut config = PoolConfig::new(100, Amount(1_000));
        config.max_count = 3;
        let mut pool = Mempool::new(config);
        let (alice, bob, carol) = (key("alice"), key("bob"), key("carol"));
        pool.insert(transfer(&alice, 0, 1_000), &rich(), 0).unwrap();
        pool.insert(transfer(&alice, 1, 8_000), &rich(), 0).unwrap();
        pool.insert(transfer(&bob, 0, 2_000), &rich(), 0).unwrap();
        // Alice's nonce 0 is the cheapest but not a tail: Bob's goes.
        let dave = key("dave");
        assert_eq!(pool.insert(transfer(&dave, 0, 3_000), &rich(), 0), Ok(Admitted::New));
        assert_eq!(pool.len(), 3);
        assert!(!pool.contains(&transfer(&bob, 0, 2_000).id()));
        assert!(pool.contains(&transfer(&alice, 0, 1_000).id()));
        // Nothing cheaper than 2,500 is left at a tail: refused, and nothing changed.
        assert_eq!(pool.insert(transfer(&carol, 0, 2_500), &rich(), 0), Err(PoolError::Full));
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn byte_bound_holds() {
        let mut config = PoolConfig::new(100, Amount(1_000));
        let size = transfer(&key("x"), 0, 1_000).encoded_len();
        config.max_bytes = size * 2 + size / 2;
        let mut pool = Mempool::new(config);
        for (i, fee) in [1_000, 2_000, 3_000].into_iter().enumerate() {
            pool.insert(transfer(&key(&format!("s{i}")), 0, fee), &rich(), 0).unwrap();
            assert!(pool.bytes() <= pool.config().max_bytes);
        }
        assert_eq!(pool.len(), 2);
        assert!(!pool.contains(&transfer(&key("s0"), 0, 1_000).id()), "the cheapest went");
    }

    #[test]
    fn transactions_expire_and_used_nonces_leave() {
        let mut pool = pool();
        let (alice, bob) = (key("alice"), key("bob"));
        pool.insert(transfer(&alice, 0, 1_000), &rich(), 10).unwrap();
        pool.insert(transfer(&alice, 1, 1_000), &rich(), 10).unwrap();
        pool.insert(transfer(&bob, 0, 1_000), &rich(), 50).unwrap();
        assert_eq!(pool.expire(110), 0, "exactly 100 slots old is still in time");
        assert_eq!(pool.expire(111), 2);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.drop_used(&bob.address(), 1), 1);
        assert_eq!(pool.len(), 0);
        assert_eq!(pool.bytes(), 0);
    }
}
