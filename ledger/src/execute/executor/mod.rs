//! The state transition: transactions applied one by one on the state at the parent's version,
//! what they change kept in memory until [`Executor::finish`]. One module per payload kind:
//! [`transfer`], [`ticket`], [`association`], [`equivocation`], [`schedule`], [`contract`].

mod association;
mod contract;
mod equivocation;
mod schedule;
mod ticket;
mod transfer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jmt::storage::TreeReader;

use super::{ApplyError, BlockError, Receipt, TxError, check_stateless};
use crate::codec::{
    encode_association, encode_consensus, encode_contract, encode_contract_entry, encode_forger,
    encode_registry, encode_rosters, encode_schedules,
};
use crate::lottery::{
    Lottery, Roster, drawn_ranks_open, epoch_of, epoch_seed, mix_reveal, rank_offset_ms, reveal_commitment,
};
use crate::state::{
    Account, AssociationState, ConsensusState, ContractRecord, ForgerState, Registry, Rosters,
    ScheduledPayment, StateUpdate, account_values, association_key, consensus_key, contract_entry_key,
    contract_key, forger_key, read_account, read_association, read_consensus, read_contract, read_forger,
    read_registry, read_roster, read_rosters, read_schedules, registry_key, rosters_key, schedules_key,
    update_state_with,
};
use crate::store::StoreError;
use crate::{Address, Amount, ChainSpec, Hash, Header, Payload, Transaction};

use ticket::BuyTicket;

/// Applies transactions one by one on top of the state at a version, keeping what they change in
/// memory. A refused transaction changes nothing: every handler reads into locals, checks
/// everything, and only then writes.
pub struct Executor<'a, R: TreeReader + ?Sized> {
    reader: &'a R,
    pub(in crate::execute) spec: &'a ChainSpec,
    /// Genesis hash: what block signatures are bound to.
    pub(in crate::execute) genesis: Hash,
    version: u64,
    /// Epoch of the block being applied.
    epoch: u64,
    accounts: BTreeMap<Address, Account>,
    contracts: BTreeMap<Address, ContractRecord>,
    contract_entries: BTreeMap<(Address, String), Option<String>>,
    /// The block's timestamp, once [`Executor::begin_block`] has seen its header.
    time_ms: u64,
    /// The block's slot.
    slot: u64,
    /// The schedule queue, once read; `changed` once anything changed it.
    schedules: Option<Vec<ScheduledPayment>>,
    schedules_changed: bool,
    forgers: BTreeMap<Address, ForgerState>,
    associations: BTreeMap<Address, AssociationState>,
    /// Registrations whose vote window closed unapproved, removed from the state by this block.
    expired_associations: BTreeSet<Address>,
    consensus: Option<ConsensusState>,
    /// The registry once read; `changed` once a record joined or left it.
    registry: Option<Registry>,
    registry_changed: bool,
    roster: Option<Arc<Roster>>,
    /// The roster commitments, when this block is its epoch's first and rewrites them.
    rosters: Option<Rosters>,
    fees: Amount,
    receipts: Vec<Receipt>,
    /// Gas the block's contract transactions brought so far (their gas limits).
    block_gas: u64,
}

impl<'a, R: TreeReader + ?Sized> Executor<'a, R> {
    /// Starts on the state at `version` (the parent block's height), for a block in `slot` of
    /// the chain whose genesis hash is `genesis`.
    pub fn new(reader: &'a R, spec: &'a ChainSpec, genesis: Hash, version: u64, slot: u64) -> Self {
        Executor {
            reader,
            spec,
            genesis,
            version,
            epoch: epoch_of(slot, spec.params.slots_per_epoch),
            accounts: BTreeMap::new(),
            contracts: BTreeMap::new(),
            contract_entries: BTreeMap::new(),
            time_ms: 0,
            slot,
            schedules: None,
            schedules_changed: false,
            forgers: BTreeMap::new(),
            associations: BTreeMap::new(),
            expired_associations: BTreeSet::new(),
            consensus: None,
            registry: None,
            registry_changed: false,
            roster: None,
            rosters: None,
            fees: Amount::ZERO,
            receipts: Vec::new(),
            block_gas: 0,
        }
    }

    /// The slot of the block being applied.
    pub(crate) fn slot(&self) -> u64 {
        self.slot
    }

    /// An account as the transactions so far left it.
    pub fn account(&mut self, address: &Address) -> Result<Account, StoreError> {
        match self.accounts.get(address) {
            Some(account) => Ok(*account),
            None => read_account(self.reader, self.version, address),
        }
    }

    fn forger(&self, address: &Address) -> Result<Option<ForgerState>, StoreError> {
        match self.forgers.get(address) {
            Some(forger) => Ok(Some(forger.clone())),
            None => read_forger(self.reader, self.version, address),
        }
    }

    fn association(&self, address: &Address) -> Result<Option<AssociationState>, StoreError> {
        if self.expired_associations.contains(address) && !self.associations.contains_key(address) {
            return Ok(None);
        }
        match self.associations.get(address) {
            Some(association) => Ok(Some(association.clone())),
            None => read_association(self.reader, self.version, address),
        }
    }

    /// A contract as the transactions so far left it.
    pub fn contract(&self, address: &Address) -> Result<Option<ContractRecord>, StoreError> {
        match self.contracts.get(address) {
            Some(record) => Ok(Some(record.clone())),
            None => read_contract(self.reader, self.version, address),
        }
    }

    fn consensus(&mut self) -> Result<ConsensusState, StoreError> {
        if self.consensus.is_none() {
            self.consensus = Some(read_consensus(self.reader, self.version)?);
        }
        Ok(self.consensus.clone().expect("loaded above"))
    }

    /// The registry as the block so far left it.
    fn registry(&mut self) -> Result<Registry, StoreError> {
        if self.registry.is_none() {
            self.registry = Some(read_registry(self.reader, self.version)?);
        }
        Ok(self.registry.clone().expect("loaded above"))
    }

    /// The roster of the block's epoch. Tickets bought during the epoch start two epochs later,
    /// so it cannot change while the block is applied.
    fn roster(&mut self) -> Result<&Roster, StoreError> {
        Ok(self.shared_roster()?.as_ref())
    }

    /// [`Executor::roster`], shareable: read once (one record per forger), it serves every
    /// block of the epoch on the branch (see `Chain`'s roster cache).
    pub(crate) fn shared_roster(&mut self) -> Result<&Arc<Roster>, StoreError> {
        if self.roster.is_none() {
            self.roster = Some(Arc::new(read_roster(self.reader, self.version, self.epoch)?));
        }
        Ok(self.roster.as_ref().expect("loaded above"))
    }

    /// This executor, with the roster of its block's epoch given rather than read: the caller
    /// vouches that it is the roster this state records for that epoch.
    pub(crate) fn with_roster(mut self, roster: Arc<Roster>) -> Self {
        self.roster = Some(roster);
        self
    }

    /// The lottery seed of the block's epoch: stored once the epoch's first block is applied,
    /// otherwise derived from the mix the epoch starts with.
    fn seed(&mut self) -> Result<Hash, StoreError> {
        let consensus = self.consensus()?;
        Ok(if consensus.seed_epoch == self.epoch {
            consensus.seed
        } else {
            epoch_seed(self.epoch, &consensus.mix)
        })
    }

    /// The rank at which `forger` may sign `slot` (of the block's epoch), if any.
    pub fn rank_of(&mut self, slot: u64, forger: &Address) -> Result<Option<u32>, StoreError> {
        if !self.holds_ticket(forger)? {
            return Ok(None);
        }
        let fallback_ranks = self.spec.params.fallback_ranks;
        if !drawn_ranks_open(self.consensus()?.seed_epoch, self.epoch) {
            return Ok(Some(fallback_ranks));
        }
        let seed = self.seed()?;
        let roster = self.roster()?;
        Ok(Lottery { roster, seed, fallback_ranks }.rank_of(slot, forger))
    }

    /// Whether `header`'s forger won its slot at the rank it claims, on this state: the
    /// lottery of [`Executor::begin_block`] alone, without the reveal or the time window.
    pub fn entitled(&mut self, header: &Header) -> Result<bool, StoreError> {
        self.may_sign(header.slot, &header.forger, header.rank)
    }

    /// Whether `forger` may sign `slot` at `rank`: it holds a ticket that signs in the epoch
    /// (not forfeited), and the rank is open to all or drawn for it from the epoch's roster,
    /// drawn ranks being open only if the state commits to that roster ([`drawn_ranks_open`]).
    fn may_sign(&mut self, slot: u64, forger: &Address, rank: u32) -> Result<bool, StoreError> {
        let fallback_ranks = self.spec.params.fallback_ranks;
        if !self.holds_ticket(forger)?
            || (rank < fallback_ranks && !drawn_ranks_open(self.consensus()?.seed_epoch, self.epoch))
        {
            return Ok(false);
        }
        let seed = self.seed()?;
        let roster = self.roster()?;
        Ok(Lottery { roster, seed, fallback_ranks }.may_sign(slot, forger, rank))
    }

    /// Whether `forger` holds a ticket that lets it sign in the block's epoch, on this state:
    /// one record read, whatever the number of forgers.
    pub fn holds_ticket(&self, forger: &Address) -> Result<bool, StoreError> {
        Ok(self.forger(forger)?.is_some_and(|record| record.signs_in(self.epoch)))
    }

    /// Applies the block's consensus fields before its transactions: the forger must have won
    /// the slot at the rank it claims, stamped no earlier than that rank's window, and its reveal
    /// must open its commitment. The reveal joins the mix; the commitment moves on.
    pub fn begin_block(&mut self, header: &Header) -> Result<(), ApplyError<BlockError>> {
        self.time_ms = header.timestamp_ms;
        let params = &self.spec.params;
        let seed = self.seed()?;
        let (fallback_ranks, slot_duration) = (params.fallback_ranks, params.slot_duration_ms);
        if !self.may_sign(header.slot, &header.forger, header.rank)? {
            return Err(ApplyError::Invalid(BlockError::NotEntitled {
                forger: header.forger,
                slot: header.slot,
                rank: header.rank,
            }));
        }
        let earliest_ms = self
            .spec
            .slot_start_ms(header.slot)
            .map(|start| start + rank_offset_ms(slot_duration, fallback_ranks, header.rank))
            .unwrap_or(u64::MAX);
        if header.timestamp_ms < earliest_ms {
            return Err(ApplyError::Invalid(BlockError::TooEarlyForRank {
                rank: header.rank,
                earliest_ms,
                timestamp_ms: header.timestamp_ms,
            }));
        }
        let mut forger =
            self.forger(&header.forger)?.ok_or(ApplyError::Invalid(BlockError::NotEntitled {
                forger: header.forger,
                slot: header.slot,
                rank: header.rank,
            }))?;
        if reveal_commitment(&header.reveal) != forger.commitment {
            return Err(ApplyError::Invalid(BlockError::BadReveal));
        }
        forger.commitment = header.next_commitment;
        forger.blocks_forged += 1;
        let mut consensus = self.consensus()?;
        if consensus.seed_epoch != self.epoch {
            // The epoch's first block on this branch.
            self.expire_registrations()?;
            self.commit_rosters()?;
        }
        consensus.seed = seed;
        consensus.seed_epoch = self.epoch;
        consensus.mix = mix_reveal(&consensus.mix, &header.reveal);
        self.forgers.insert(header.forger, forger);
        self.consensus = Some(consensus);
        self.pay_due(header.slot)?;
        Ok(())
    }

    /// Writes the roster commitments of this epoch (if the state lacks it: the epoch before had
    /// no block) and of the next, and drops older ones. Both rosters are fixed already: an
    /// epoch's roster is the tickets active in it as of the end of the epoch two before
    /// ([`crate::state::Ticket::is_active`]). Run by an epoch's first block only, so a block
    /// writes one fixed-size record at most, whatever the number of forgers.
    fn commit_rosters(&mut self) -> Result<(), StoreError> {
        let epoch = self.epoch;
        let mut rosters = read_rosters(self.reader, self.version)?;
        rosters.commitments.retain(|c| c.epoch == epoch || c.epoch == epoch + 1);
        if rosters.get(epoch).is_none() {
            let current = self.roster()?.commitment(epoch);
            rosters.commitments.push(current);
        }
        if rosters.get(epoch + 1).is_none() {
            let next = read_roster(self.reader, self.version, epoch + 1)?.commitment(epoch + 1);
            rosters.commitments.push(next);
        }
        rosters.commitments.sort_by_key(|c| c.epoch);
        self.rosters = Some(rosters);
        Ok(())
    }

    /// The schedule queue as the block so far left it.
    fn schedules(&mut self) -> Result<Vec<ScheduledPayment>, StoreError> {
        if self.schedules.is_none() {
            self.schedules = Some(read_schedules(self.reader, self.version)?);
        }
        Ok(self.schedules.clone().expect("loaded above"))
    }

    /// Runs the payments due by `slot`, before the block's transactions: in queue order (due
    /// slot, then schedule id), each schedule at most once per block. A payment the owner's
    /// balance cannot cover is skipped and counted, never paid in part.
    fn pay_due(&mut self, slot: u64) -> Result<(), StoreError> {
        let queue = self.schedules()?;
        if queue.first().is_none_or(|s| s.next_slot > slot) {
            return Ok(());
        }
        let mut kept = Vec::with_capacity(queue.len());
        for mut schedule in queue {
            if schedule.next_slot > slot {
                kept.push(schedule);
                continue;
            }
            let mut owner = self.account(&schedule.owner)?;
            let mut paid = false;
            if let Some(left) = owner.balance.checked_sub(schedule.amount) {
                // Read the payee after the debit: paying oneself works.
                owner.balance = left;
                let before = self.accounts.insert(schedule.owner, owner);
                let mut payee = self.account(&schedule.to)?;
                match payee.balance.checked_add(schedule.amount) {
                    Some(balance) => {
                        payee.balance = balance;
                        self.accounts.insert(schedule.to, payee);
                        paid = true;
                    }
                    // The payee's balance would overflow: undo the debit and skip.
                    None => match before {
                        Some(account) => {
                            self.accounts.insert(schedule.owner, account);
                        }
                        None => {
                            self.accounts.remove(&schedule.owner);
                        }
                    },
                }
            }
            if paid {
                schedule.paid += 1;
            } else {
                schedule.skipped += 1;
            }
            schedule.remaining -= 1;
            if schedule.remaining > 0 {
                schedule.next_slot = schedule.next_slot.saturating_add(schedule.every_slots);
                kept.push(schedule);
            }
        }
        kept.sort_by_key(|s| (s.next_slot, s.id));
        self.schedules = Some(kept);
        self.schedules_changed = true;
        Ok(())
    }

    /// Checks `tx` fully (signature included) and applies it.
    pub fn apply(&mut self, tx: &Transaction) -> Result<&Receipt, ApplyError<TxError>> {
        check_stateless(tx, self.spec, &self.genesis).map_err(ApplyError::Invalid)?;
        self.apply_checked(tx)
    }

    /// Applies `tx`, whose stateless checks ([`check_stateless`]) have passed.
    pub fn apply_checked(&mut self, tx: &Transaction) -> Result<&Receipt, ApplyError<TxError>> {
        let body = tx.body();
        let invalid = ApplyError::Invalid;
        // The block's gas is the sum of what its contract transactions may use, known before
        // any of them runs: the cheapest check comes first.
        let block_gas = self.block_gas_with(tx).map_err(invalid)?;
        let mut sender = self.account(&body.sender)?;
        if body.nonce != sender.nonce {
            let (expected, got) = (sender.nonce, body.nonce);
            let error = if got < expected {
                TxError::StaleNonce { expected, got }
            } else {
                TxError::FutureNonce { expected, got }
            };
            return Err(invalid(error));
        }
        let spent = match &body.payload {
            Payload::Transfer { amount, .. } => *amount,
            Payload::BuyTicket { price, .. } => *price,
            Payload::CallContract { value, .. } => *value,
            Payload::RegisterAssociation { .. }
            | Payload::VoteAssociation { .. }
            | Payload::ReportEquivocation { .. }
            | Payload::ReportVoteEquivocation { .. }
            | Payload::DeployContract { .. }
            | Payload::SchedulePayment { .. }
            | Payload::CancelSchedule { .. } => Amount::ZERO,
        };
        let needed = spent.checked_add(body.fee).ok_or(invalid(TxError::BalanceOverflow))?;
        sender.balance = sender
            .balance
            .checked_sub(needed)
            .ok_or(invalid(TxError::InsufficientBalance { needed, available: sender.balance }))?;
        sender.nonce += 1;
        let mut fee = body.fee;
        let mut contract_receipt = None;

        // Each handler checks everything and returns what to write; nothing is written before.
        let mut writes = Writes::default();
        match &body.payload {
            Payload::SchedulePayment { to, amount, every_slots, times } => {
                let payment = (*to, *amount, *every_slots, *times);
                self.schedule_payment(tx, payment, &mut writes)?;
            }
            Payload::CancelSchedule { schedule } => {
                self.cancel_schedule(body.sender, schedule, &mut writes)?
            }
            Payload::DeployContract { .. } | Payload::CallContract { .. } => {
                let ran = self.run_contract(body, &mut sender, &mut writes)?;
                fee = ran.0;
                contract_receipt = Some(ran.1);
            }
            Payload::Transfer { to, amount } => {
                self.transfer(body.sender, sender, *to, *amount, &mut writes)?
            }
            Payload::BuyTicket { association, price, epochs, commitment } => {
                let ticket = BuyTicket {
                    association: *association,
                    price: *price,
                    epochs: *epochs,
                    commitment: *commitment,
                };
                self.buy_ticket(body.sender, sender, ticket, &mut writes)?;
            }
            Payload::RegisterAssociation { name, proof_url, document_hash } => {
                self.register_association(body.sender, name, proof_url, *document_hash, &mut writes)?;
            }
            Payload::VoteAssociation { association } => {
                self.vote_association(body.sender, association, &mut writes)?
            }
            Payload::ReportEquivocation { first, second } => {
                self.report_equivocation(first, second, &mut writes)?
            }
            Payload::ReportVoteEquivocation { first, second } => {
                self.report_vote_equivocation(first, second, &mut writes)?
            }
        }
        let fees = self.fees.checked_add(fee).ok_or(invalid(TxError::BalanceOverflow))?;
        // Every check has passed: only now does state change.
        self.accounts.insert(body.sender, sender);
        for (address, account) in writes.accounts {
            self.accounts.insert(address, account);
        }
        self.contracts.extend(writes.contracts);
        if let Some(queue) = writes.schedules {
            self.schedules = Some(queue);
            self.schedules_changed = true;
        }
        self.contract_entries.extend(writes.contract_entries);
        self.forgers.extend(writes.forgers);
        self.associations.extend(writes.associations);
        if let Some(registry) = writes.registry {
            self.registry = Some(registry);
            self.registry_changed = true;
        }
        self.fees = fees;
        self.block_gas = block_gas;
        self.receipts.push(Receipt { transaction_id: tx.id(), fee, contract: contract_receipt });
        Ok(self.receipts.last().expect("just pushed"))
    }

    /// The block's gas once `tx` is in it, or why it does not fit.
    pub(in crate::execute) fn block_gas_with(&self, tx: &Transaction) -> Result<u64, TxError> {
        let gas = tx.body().payload.gas_limit().unwrap_or(0);
        let max = self.spec.params.max_block_gas;
        match self.block_gas.checked_add(gas) {
            Some(total) if total <= max => Ok(total),
            _ => Err(TxError::BlockGasFull { gas, used: self.block_gas, max }),
        }
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
        let mut entries = account_values(&self.accounts);
        for (address, record) in &self.forgers {
            entries.insert(forger_key(address), encode_forger(address, record));
        }
        for (address, record) in &self.associations {
            entries.insert(association_key(address), encode_association(address, record));
        }
        let expired: Vec<Address> = self
            .expired_associations
            .iter()
            .filter(|a| !self.associations.contains_key(a))
            .copied()
            .collect();
        if let Some(consensus) = &self.consensus {
            entries.insert(consensus_key(), encode_consensus(consensus));
        }
        if let Some(registry) = self.registry.as_ref().filter(|_| self.registry_changed) {
            entries.insert(registry_key(), encode_registry(registry));
        }
        if let Some(rosters) = &self.rosters {
            entries.insert(rosters_key(), encode_rosters(rosters));
        }
        for (address, record) in &self.contracts {
            entries.insert(contract_key(address), encode_contract(address, record));
        }
        if self.schedules_changed {
            let queue = self.schedules.as_deref().unwrap_or_default();
            entries.insert(schedules_key(), encode_schedules(queue));
        }
        let mut entries: BTreeMap<_, _> = entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
        for address in &expired {
            entries.insert(association_key(address), None);
        }
        for ((contract, key), value) in &self.contract_entries {
            let leaf = value.as_ref().map(|value| encode_contract_entry(contract, key, value));
            entries.insert(contract_entry_key(contract, key), leaf);
        }
        let update = update_state_with(self.reader, self.version + 1, entries)?;
        Ok((update, self.receipts))
    }
}

/// What a transaction writes once all its checks pass.
#[derive(Default)]
struct Writes {
    accounts: Vec<(Address, Account)>,
    contracts: Vec<(Address, ContractRecord)>,
    contract_entries: Vec<((Address, String), Option<String>)>,
    schedules: Option<Vec<ScheduledPayment>>,
    forgers: Vec<(Address, ForgerState)>,
    associations: Vec<(Address, AssociationState)>,
    registry: Option<Registry>,
}

/// Inserts into a sorted list; false if already there.
fn insert_sorted(list: &mut Vec<Address>, address: Address) -> bool {
    match list.binary_search(&address) {
        Ok(_) => false,
        Err(at) => {
            list.insert(at, address);
            true
        }
    }
}
