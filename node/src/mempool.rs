//! The transaction pool: transactions waiting for a block.
//!
//! - Bounded in count and in bytes. When full, a new transaction first pushes out a transaction
//!   waiting behind a nonce gap (it cannot go into a block; a waiting newcomer must pay more per
//!   byte), then the one paying the least per byte, but only from the end of its sender's queue
//!   (evicting from the middle would strand the sender's later nonces), and only if it pays more
//!   per byte itself.
//! - Per sender, transactions are kept by nonce. Those that follow the account's nonce without a
//!   gap are ready; the rest wait behind the gap until it fills, at most
//!   [`PoolConfig::max_nonce_ahead`] nonces ahead, and at most [`PoolConfig::max_gapped`] of them
//!   in all. Waiting transactions never pay a fee, so without that bound a few accounts could
//!   fill the pool with transactions no block can take, and keep it full until they expire.
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
    /// Most transactions held behind a nonce gap, over all senders.
    pub max_gapped: usize,
    /// Slots a transaction may wait.
    pub expiry_slots: u64,
    /// This node's minimum fee; at least the chain's.
    pub min_fee: Amount,
    /// This node's minimum gas price for contract transactions (the chain's is 1).
    pub min_gas_price: u64,
}

impl PoolConfig {
    /// Default bounds with the chain's expiry and this node's minimum fee.
    pub fn new(expiry_slots: u64, min_fee: Amount) -> PoolConfig {
        PoolConfig {
            // A few slots of a busy chain (about 6,000 transfers a second here): a block that comes
            // late must not make the pool refuse, which opens nonce gaps for every sender refused.
            max_count: 32_768,
            max_bytes: 32 * 1024 * 1024,
            max_nonce_ahead: 64,
            max_gapped: 2_048,
            expiry_slots,
            min_fee,
            min_gas_price: 1,
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
    /// A contract transaction offering less per unit of gas than this node takes.
    #[error("the gas price {got} (fee / gas limit) is below this node's minimum of {min}")]
    GasPriceBelowNodeMinimum {
        /// This node's minimum.
        min: u64,
        /// The transaction's price.
        got: u64,
    },
    /// Another transaction has this nonce, and this one does not pay enough more to replace it.
    #[error(
        "a transaction with nonce {nonce} is pending with fee {fee}; a replacement must pay at least {min} ({REPLACEMENT_BUMP_PERCENT}% more)"
    )]
    ReplacementUnderpriced {
        /// The nonce.
        nonce: u64,
        /// The pending transaction's fee.
        fee: Amount,
        /// The least fee that replaces it.
        min: Amount,
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
    /// Too many transactions already wait behind nonce gaps, each paying at least as much.
    #[error(
        "nonce {got} leaves a gap after the account's next nonce {next}, and the pool holds as many such transactions as it may; send the missing nonces first"
    )]
    TooManyGapped {
        /// The account's next nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
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

/// How much more than the pending transaction a replacement must pay, in percent. Each
/// replacement is gossiped to every node for free; a higher step makes a stream of them cost
/// what it costs the network (geth and Bitcoin Core ask 10% too, and at least one unit more).
pub const REPLACEMENT_BUMP_PERCENT: u64 = 10;

/// The least fee that replaces a pending transaction paying `fee`.
fn replacement_floor(fee: Amount) -> Amount {
    let bump = (u128::from(fee.0) * u128::from(REPLACEMENT_BUMP_PERCENT)).div_ceil(100).max(1);
    Amount(u64::try_from(u128::from(fee.0) + bump).unwrap_or(u64::MAX))
}

/// Fee per byte, scaled so that ordering is exact enough for any fee a u64 can hold.
type FeeRate = u128;

fn fee_rate(tx: &Transaction) -> FeeRate {
    (sure_fee(tx) << 20) / tx.encoded_len().max(1) as u128
}

/// What `tx` is sure to pay. A contract transaction's fee is only the most it may pay (what its
/// run does not use is refunded), so it ranks by its gas price times the least gas any run of it
/// uses: a call that offers a large fee for a large gas limit it will not use ranks no higher
/// than its price says.
fn sure_fee(tx: &Transaction) -> u128 {
    use goodwill_ledger::contract::gas;
    let body = tx.body();
    let least_gas = match &body.payload {
        Payload::DeployContract { code, .. } => {
            gas::BASE + (gas::CODE_BYTE + gas::DEPLOY_BYTE) * code.len() as u64
        }
        Payload::CallContract { .. } => gas::BASE,
        _ => return u128::from(body.fee.0),
    };
    let gas_limit = body.payload.gas_limit().unwrap_or(1).max(1);
    let price = body.fee.0 / gas_limit;
    u128::from(price) * u128::from(least_gas.min(gas_limit))
}

/// The most a transaction can take from its sender's balance.
fn spend(tx: &Transaction) -> u128 {
    let body = tx.body();
    let moved = match &body.payload {
        Payload::Transfer { amount, .. } => amount.0,
        Payload::BuyTicket { price, .. } => price.0,
        Payload::CallContract { value, .. } => value.0,
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
    /// The transactions behind a nonce gap, by fee rate: evicted first.
    gapped: BTreeSet<(FeeRate, Hash)>,
    /// Each sender's account nonce, as last seen: where its run of ready transactions starts.
    next_nonce: HashMap<Address, u64>,
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
            gapped: BTreeSet::new(),
            next_nonce: HashMap::new(),
            bytes: 0,
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// How many transactions wait behind a nonce gap, as of the account nonces last seen.
    pub fn gapped(&self) -> usize {
        self.gapped.len()
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
        if let Payload::DeployContract { gas_limit, .. } | Payload::CallContract { gas_limit, .. } =
            &body.payload
        {
            let price = body.fee.0 / (*gas_limit).max(1);
            if price < self.config.min_gas_price {
                return Err(PoolError::GasPriceBelowNodeMinimum {
                    min: self.config.min_gas_price,
                    got: price,
                });
            }
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
        if let Some(old) = replaced.and_then(|old| self.entries.get(&old)) {
            let (fee, min) = (old.tx.body().fee, replacement_floor(old.tx.body().fee));
            if body.fee < min {
                return Err(PoolError::ReplacementUnderpriced { nonce, fee, min });
            }
        }
        let earlier: u128 = queue
            .map(|q| q.range(account.nonce..nonce).map(|(_, id)| spend(&self.entries[id].tx)).sum())
            .unwrap_or(0);
        let needed = earlier + spend(&tx);
        if needed > u128::from(account.balance.0) {
            return Err(PoolError::InsufficientBalance { balance: account.balance, needed });
        }
        let (size, rate) = (tx.encoded_len(), fee_rate(&tx));
        // Every nonce from the account's up to this one is pending: it can go into a block.
        let ready =
            queue.map_or(0, |q| q.range(account.nonce..nonce).count()) as u64 == nonce - account.nonce;
        let mut victims = Vec::new();
        if !ready && replaced.is_none() && self.gapped.len() >= self.config.max_gapped {
            match self.cheapest_gapped(&sender, rate, &[]) {
                Some(victim) => victims.push(victim),
                None => return Err(PoolError::TooManyGapped { next: account.nonce, got: nonce }),
            }
        }
        self.victims_for(&sender, replaced, size, rate, ready, &mut victims)?;
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
        self.next_nonce.insert(sender, account.nonce);
        self.regap(&sender);
        Ok(replaced.map_or(Admitted::New, Admitted::Replaced))
    }

    /// The cheapest transaction behind a gap that is not `sender`'s or already chosen, if it
    /// pays less per byte than `rate`.
    fn cheapest_gapped(&self, sender: &Address, rate: FeeRate, chosen: &[Hash]) -> Option<Hash> {
        let (victim_rate, victim) = self
            .gapped
            .iter()
            .find(|(_, id)| self.entries[id].tx.body().sender != *sender && !chosen.contains(id))?;
        (*victim_rate < rate).then_some(*victim)
    }

    /// Re-derives which of `sender`'s transactions wait behind a gap after its queue or its
    /// account nonce changed.
    fn regap(&mut self, sender: &Address) {
        let Some(queue) = self.senders.get(sender) else {
            self.next_nonce.remove(sender);
            return;
        };
        let mut expected = self.next_nonce.get(sender).copied().unwrap_or(0);
        let mut in_run = true;
        for (nonce, id) in queue {
            if in_run && *nonce == expected {
                expected += 1;
            } else {
                in_run = false;
            }
            let key = (self.entries[id].rate, *id);
            if in_run {
                self.gapped.remove(&key);
            } else {
                self.gapped.insert(key);
            }
        }
    }

    /// Adds to `victims` what must leave for a transaction of `size` bytes paying `rate` to
    /// fit: transactions behind a gap first (any, for a `ready` newcomer; cheaper ones for one
    /// that waits itself), then the cheapest tails; `Full` if that would drop anything paying
    /// as much.
    fn victims_for(
        &self,
        sender: &Address,
        replaced: Option<Hash>,
        size: usize,
        rate: FeeRate,
        ready: bool,
        victims: &mut Vec<Hash>,
    ) -> Result<(), PoolError> {
        let freed = replaced.map_or(0, |id| self.entries[&id].size)
            + victims.iter().map(|id| self.entries[id].size).sum::<usize>();
        let mut count = self.entries.len() + 1 - usize::from(replaced.is_some()) - victims.len();
        let mut bytes = self.bytes + size - freed;
        let over =
            |count: usize, bytes: usize| count > self.config.max_count || bytes > self.config.max_bytes;
        while over(count, bytes) {
            let bar = if ready { FeeRate::MAX } else { rate };
            // (Never the newcomer's sender's own, so never the transaction it replaces.)
            let Some(victim) = self.cheapest_gapped(sender, bar, victims) else { break };
            count -= 1;
            bytes -= self.entries[&victim].size;
            victims.push(victim);
        }
        if !ready && over(count, bytes) {
            // A transaction that cannot go into a block yet never pushes out one that can.
            return Err(PoolError::Full);
        }
        let mut candidates = self.by_rate.iter().filter(|(_, id)| !victims.contains(id));
        let mut tails = Vec::new();
        while over(count, bytes) {
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
                    tails.push(*victim);
                }
                _ => return Err(PoolError::Full),
            }
        }
        victims.extend(tails);
        Ok(())
    }

    /// Removes `id`; returns it if it was held.
    pub fn remove(&mut self, id: &Hash) -> Option<Transaction> {
        let entry = self.entries.remove(id)?;
        self.bytes -= entry.size;
        self.by_rate.remove(&(entry.rate, *id));
        self.gapped.remove(&(entry.rate, *id));
        let body = entry.tx.body();
        if let Some(queue) = self.senders.get_mut(&body.sender) {
            queue.remove(&body.nonce);
            if queue.is_empty() {
                self.senders.remove(&body.sender);
            }
        }
        self.regap(&body.sender);
        Some(entry.tx)
    }

    /// Drops `sender`'s transactions whose nonce is below `next_nonce` (a block used those
    /// nonces). Returns how many left.
    pub fn drop_used(&mut self, sender: &Address, next_nonce: u64) -> usize {
        let used: Vec<Hash> = match self.senders.get(sender) {
            Some(queue) => queue.range(..next_nonce).map(|(_, id)| *id).collect(),
            None => return 0,
        };
        self.next_nonce.insert(*sender, next_nonce);
        for id in &used {
            self.remove(id);
        }
        self.regap(sender);
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
}

#[cfg(test)]
mod tests {
    use goodwill_ledger::{Keypair, TransactionBody};

    use super::*;

    /// The pool does not verify signatures (that is done before, see `actor::Checked`): any
    /// chain will do.
    const CHAIN: Hash = Hash::ZERO;

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
        .sign(key, &CHAIN)
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
            pool.insert(rival.sign(&alice, &CHAIN), &rich(), 0),
            Err(PoolError::ReplacementUnderpriced { nonce: 0, fee: Amount(2_000), min: Amount(2_200) })
        );
        let better = transfer(&alice, 0, 3_000);
        assert_eq!(pool.insert(better.clone(), &rich(), 0), Ok(Admitted::Replaced(first.id())));
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(&better.id()) && !pool.contains(&first.id()));
        assert_eq!(pool.bytes(), better.encoded_len());
    }

    /// The attack: replace one pending transaction again and again, each time a unit dearer,
    /// so that every node relays and re-ranks a new transaction for nearly nothing. Each
    /// replacement must pay 10% more than the one before, so n of them cost the fee times 1.1^n.
    #[test]
    fn replacement_spam_costs_ten_percent_more_each_time() {
        let mut pool = pool();
        let alice = key("alice");
        let mut fee = 1_000;
        pool.insert(transfer(&alice, 0, fee), &rich(), 0).unwrap();
        for _ in 0..20 {
            let min = replacement_floor(Amount(fee)).0;
            assert_eq!(min, fee + (fee * 10).div_ceil(100));
            assert!(matches!(
                pool.insert(transfer(&alice, 0, min - 1), &rich(), 0),
                Err(PoolError::ReplacementUnderpriced { min: floor, .. }) if floor.0 == min
            ));
            assert!(matches!(pool.insert(transfer(&alice, 0, min), &rich(), 0), Ok(Admitted::Replaced(_))));
            fee = min;
        }
        assert!(fee > 6_700, "twenty replacements cost {fee}, more than 1.1^20 times the first fee");
        assert_eq!(pool.len(), 1);
        assert_eq!(replacement_floor(Amount(1)), Amount(2), "at least one unit more");
        assert_eq!(replacement_floor(Amount(u64::MAX)), Amount(u64::MAX));
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
        // A contract call below this node's gas price: 5,000 for 2,000 gas is a price of 2.
        pool.config.min_gas_price = 3;
        let call = TransactionBody {
            chain_id: "goodwill-dev".into(),
            sender: alice.address(),
            nonce: 1,
            fee: Amount(5_000),
            payload: Payload::CallContract {
                contract: key("contract").address(),
                function: "f".into(),
                args: "[]".into(),
                value: Amount::ZERO,
                gas_limit: 2_000,
            },
        }
        .sign(&alice, &CHAIN);
        assert_eq!(
            pool.insert(call, &rich(), 0),
            Err(PoolError::GasPriceBelowNodeMinimum { min: 3, got: 2 })
        );
        assert_eq!((pool.len(), pool.bytes()), before);
    }

    #[test]
    fn a_contract_call_ranks_by_what_it_is_sure_to_pay_not_by_its_fee() {
        let mut pool = pool();
        let (alice, bob) = (key("alice"), key("bob"));
        // A fee of 1,000,000 for 1,000,000 gas: a price of 1, sure to pay only for the least
        // gas a call uses (2,000), though its fee looks 200 times the transfer's.
        let call = TransactionBody {
            chain_id: "goodwill-dev".into(),
            sender: alice.address(),
            nonce: 0,
            fee: Amount(1_000_000),
            payload: Payload::CallContract {
                contract: key("contract").address(),
                function: "f".into(),
                args: "[]".into(),
                value: Amount::ZERO,
                gas_limit: 1_000_000,
            },
        }
        .sign(&alice, &CHAIN);
        pool.insert(call, &rich(), 0).unwrap();
        pool.insert(transfer(&bob, 0, 5_000), &rich(), 0).unwrap();
        let order: Vec<Address> = pool.ready(|_| Some(0)).iter().map(|tx| tx.body().sender).collect();
        assert_eq!(order, vec![bob.address(), alice.address()]);
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
        assert_eq!(pool.gapped(), 1);
        // The gap fills: Carol's transactions become ready, highest rate first.
        pool.insert(transfer(&carol, 0, 20_000), &rich(), 0).unwrap();
        let first = pool.ready(|_| Some(0))[0].body().clone();
        assert_eq!((first.sender, first.nonce), (carol.address(), 0));
        assert_eq!(pool.gapped(), 0);
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
    fn transactions_behind_a_gap_are_bounded_and_evicted_first() {
        let mut config = PoolConfig::new(100, Amount(1_000));
        config.max_count = 4;
        config.max_gapped = 2;
        let mut pool = Mempool::new(config);
        let (alice, bob, carol, dave) = (key("alice"), key("bob"), key("carol"), key("dave"));
        pool.insert(transfer(&alice, 0, 1_000), &rich(), 0).unwrap();
        pool.insert(transfer(&bob, 3, 50_000), &rich(), 0).unwrap();
        pool.insert(transfer(&bob, 4, 40_000), &rich(), 0).unwrap();
        assert_eq!(pool.gapped(), 2);
        // The bound on waiting transactions: a third needs to pay more than one of them.
        let before = (pool.len(), pool.bytes());
        assert_eq!(
            pool.insert(transfer(&carol, 7, 30_000), &rich(), 0),
            Err(PoolError::TooManyGapped { next: 0, got: 7 })
        );
        assert_eq!((pool.len(), pool.bytes()), before);
        assert_eq!(pool.insert(transfer(&carol, 7, 45_000), &rich(), 0), Ok(Admitted::New));
        assert!(!pool.contains(&transfer(&bob, 4, 40_000).id()), "the cheapest waiting one went");
        assert_eq!(pool.gapped(), 2);
        // Ready transactions are not bounded by it, and the pool fills.
        pool.insert(transfer(&alice, 1, 1_000), &rich(), 0).unwrap();
        assert_eq!(pool.len(), 4);
        // Full: a ready newcomer pushes out the cheapest waiting transaction, even one paying
        // more than itself...
        assert_eq!(pool.insert(transfer(&dave, 0, 1_500), &rich(), 0), Ok(Admitted::New));
        assert!(!pool.contains(&transfer(&carol, 7, 45_000).id()));
        assert!(pool.contains(&transfer(&alice, 1, 1_000).id()));
        assert_eq!(pool.gapped(), 1);
        // ...a waiting newcomer pushes out only a cheaper waiting one, never a ready one.
        let before = (pool.len(), pool.bytes());
        assert_eq!(pool.insert(transfer(&key("erin"), 2, 20_000), &rich(), 0), Err(PoolError::Full));
        assert_eq!((pool.len(), pool.bytes()), before);
        // A block uses Bob's nonces 0 to 2: his nonce 3 is ready now.
        assert_eq!(pool.drop_used(&bob.address(), 3), 0);
        assert_eq!(pool.gapped(), 0);
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
