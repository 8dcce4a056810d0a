//! The open ledger's read queries: blocks, transactions, account histories, forgers, tickets,
//! associations and the pool. Each runs on the chain thread (see
//! [`ChainHandle::read`](crate::actor::ChainHandle::read)) against one consistent view, and
//! answers JSON or an [`ApiError`].

use std::collections::HashMap;

use axum::http::StatusCode;
use goodwill_ledger::lottery::epoch_of;
use goodwill_ledger::state::{
    AssociationState, ForgerState, Ticket, read_association, read_forger, read_registry,
};
use goodwill_ledger::{Address, Block, Chain, Hash, Store, StoreError, Transaction, TxLocation};
use serde_json::{Value, json};

use super::ApiError;
use crate::http::views;
use crate::mempool::Mempool;

/// Most blocks one page lists.
pub const MAX_BLOCK_PAGE: u64 = 100;
/// Most entries one history page lists.
pub const MAX_HISTORY_PAGE: usize = 100;
/// Most pool transactions one answer lists.
pub const MAX_POOL_PAGE: usize = 100;
/// Most recent blocks the forgers' shares are counted over.
pub const MAX_WINDOW: u64 = 1_000;
/// Most forgers or associations one list request reads records of: the chain thread does no
/// more per request, however many are registered.
pub const MAX_PAGE: usize = 500;

/// A page of a list ordered by address: those after `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    /// The last address of the previous page.
    pub after: Option<Address>,
    /// How many; at most [`MAX_PAGE`], which is also the default.
    pub limit: Option<usize>,
}

impl Page {
    /// The page's addresses among `sorted`, and the address to continue after if more follow.
    fn of<'a>(&self, sorted: &'a [Address]) -> (&'a [Address], Option<Address>) {
        let start = self.after.map_or(0, |after| sorted.partition_point(|a| *a <= after));
        let limit = self.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let end = start.saturating_add(limit).min(sorted.len());
        let page = &sorted[start..end];
        (page, (end < sorted.len()).then(|| page.last().copied()).flatten())
    }
}

fn storage(error: StoreError) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", error.to_string())
}

fn not_found(message: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not_found", message)
}

/// A block named by height or by hash.
#[derive(Debug, Clone, Copy)]
pub enum BlockId {
    Height(u64),
    Hash(Hash),
}

impl std::str::FromStr for BlockId {
    type Err = ApiError;

    fn from_str(text: &str) -> Result<BlockId, ApiError> {
        if !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().map(BlockId::Height).map_err(|_| {
                ApiError(StatusCode::BAD_REQUEST, "bad_block_id", format!("height {text} is too large"))
            });
        }
        text.parse().map(BlockId::Hash).map_err(|_| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "bad_block_id",
                format!("`{text}` is neither a height nor a 64-digit hex block hash"),
            )
        })
    }
}

/// A position in an account's history: a height and an index in that block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub u64, pub u32);

impl std::str::FromStr for Cursor {
    type Err = ApiError;

    fn from_str(text: &str) -> Result<Cursor, ApiError> {
        let bad = || {
            ApiError(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                format!("`{text}` is not a cursor (HEIGHT-INDEX, as returned in next_cursor)"),
            )
        };
        let (height, index) = text.split_once('-').ok_or_else(bad)?;
        Ok(Cursor(height.parse().map_err(|_| bad())?, index.parse().map_err(|_| bad())?))
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

fn canonical_block<S: Store>(chain: &Chain<S>, id: BlockId) -> Result<Option<Block>, ApiError> {
    let store = chain.store();
    let hash = match id {
        BlockId::Hash(hash) => hash,
        BlockId::Height(height) => match store.canonical_hash(height).map_err(storage)? {
            Some(hash) => hash,
            None => return Ok(None),
        },
    };
    store.block(&hash).map_err(storage)
}

/// One block with its transactions and receipts, and whether it is on the node's chain: read
/// on the chain thread, rendered ([`StoredBlock::view`]) after, off it (a full block's view
/// takes longer than reading it).
pub struct StoredBlock {
    block: Block,
    receipts: Vec<goodwill_ledger::Receipt>,
    canonical: bool,
    /// On the node's chain at or below its last final block: no fork choice can revert it.
    finalized: bool,
    next: Option<Hash>,
}

/// Reads one block for [`StoredBlock::view`].
pub fn block<S: Store>(chain: &Chain<S>, id: BlockId) -> Result<StoredBlock, ApiError> {
    let block = canonical_block(chain, id)?.ok_or_else(|| match id {
        BlockId::Height(height) => not_found(format!("no block at height {height} yet")),
        BlockId::Hash(hash) => not_found(format!("no block {hash}")),
    })?;
    let store = chain.store();
    let hash = block.hash();
    let receipts = store.receipts(&hash).map_err(storage)?.unwrap_or_default();
    let canonical = store.canonical_hash(block.header().height).map_err(storage)? == Some(hash);
    let next = store.canonical_hash(block.header().height + 1).map_err(storage)?;
    let finalized = canonical && block.header().height <= chain.finalized().block.height;
    Ok(StoredBlock { block, receipts, canonical, finalized, next })
}

impl StoredBlock {
    /// The block's view, with its transactions.
    pub fn view(&self) -> Value {
        let mut value = views::block(&self.block, &self.receipts, true);
        value["canonical"] = json!(self.canonical);
        value["final"] = json!(self.finalized);
        value["next_hash"] = json!(self.next.filter(|_| self.canonical));
        value
    }
}

/// A page of canonical blocks, read on the chain thread, rendered ([`BlockPage::view`]) off it.
pub struct BlockPage {
    head: u64,
    blocks: Vec<(Block, Vec<goodwill_ledger::Receipt>)>,
    next_before: Option<u64>,
}

/// A page of canonical blocks, newest first, strictly below `before` (the head's successor when
/// not given).
pub fn blocks<S: Store>(chain: &Chain<S>, before: Option<u64>, limit: u64) -> Result<BlockPage, ApiError> {
    let head = chain.head().header().height;
    let top = before.unwrap_or(head + 1).min(head + 1);
    let limit = limit.clamp(1, MAX_BLOCK_PAGE);
    let bottom = top.saturating_sub(limit);
    let store = chain.store();
    let mut blocks = Vec::with_capacity((top - bottom) as usize);
    for height in (bottom..top).rev() {
        let Some(block) = canonical_block(chain, BlockId::Height(height))? else { continue };
        let receipts = store.receipts(&block.hash()).map_err(storage)?.unwrap_or_default();
        blocks.push((block, receipts));
    }
    Ok(BlockPage { head, blocks, next_before: (bottom > 0).then_some(bottom) })
}

impl BlockPage {
    /// The page's view: each block without its transactions.
    pub fn view(&self) -> Value {
        let list: Vec<Value> =
            self.blocks.iter().map(|(block, receipts)| views::block(block, receipts, false)).collect();
        json!({ "head": self.head, "blocks": list, "next_before": self.next_before })
    }
}

/// A transaction as read on the chain thread, rendered ([`FoundTransaction::view`]) off it.
pub enum FoundTransaction {
    /// In the pool since a slot.
    Pending(Transaction, u64),
    /// In a canonical block, with its receipt.
    Committed(Transaction, TxLocation, Option<goodwill_ledger::Receipt>),
}

impl FoundTransaction {
    /// The transaction's view.
    pub fn view(&self) -> Value {
        match self {
            FoundTransaction::Pending(tx, arrived_slot) => {
                let mut value = views::transaction(tx);
                value["status"] = json!("pending");
                value["arrived_slot"] = json!(arrived_slot);
                value
            }
            FoundTransaction::Committed(tx, location, receipt) => {
                views::committed(tx, location, receipt.as_ref())
            }
        }
    }
}

/// A transaction: in the pool, or committed with its block and receipt.
pub fn transaction<S: Store>(
    chain: &Chain<S>,
    pool: &Mempool,
    id: Hash,
) -> Result<FoundTransaction, ApiError> {
    if let Some((tx, arrived_slot)) = pool.get(&id) {
        return Ok(FoundTransaction::Pending(tx.clone(), arrived_slot));
    }
    let store = chain.store();
    let location = store
        .transaction_location(&id)
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("no transaction {id} on this node's chain or in its pool")))?;
    let (tx, receipt) = committed(store, &location)?;
    Ok(FoundTransaction::Committed(tx, location, receipt))
}

/// The transaction at `location`, and its receipt.
fn committed<S: Store>(
    store: &S,
    location: &TxLocation,
) -> Result<(Transaction, Option<goodwill_ledger::Receipt>), ApiError> {
    let block = store.block(&location.block_hash).map_err(storage)?.ok_or_else(|| {
        storage(StoreError::Corrupt(format!("indexed block {} is missing", location.block_hash)))
    })?;
    let index = location.index as usize;
    let tx = block.transactions.into_iter().nth(index).ok_or_else(|| {
        storage(StoreError::Corrupt(format!("transaction index {index} past its block's end")))
    })?;
    let receipt =
        store.receipts(&location.block_hash).map_err(storage)?.unwrap_or_default().into_iter().nth(index);
    Ok((tx, receipt))
}

/// What a read on the chain thread returns: values, rendered to JSON after, off that thread.
pub trait Render: Send + 'static {
    /// The JSON view.
    fn view(&self) -> Value;
}

/// An account: balance and nonce at the head, and what else the address is.
pub struct AccountRead {
    address: Address,
    account: goodwill_ledger::Account,
    height: u64,
    pending: usize,
    is_forger: bool,
    is_association: bool,
}

impl Render for AccountRead {
    fn view(&self) -> Value {
        json!({
            "address": self.address,
            "balance": self.account.balance,
            "nonce": self.account.nonce,
            "height": self.height,
            "pending_transactions": self.pending,
            "is_forger": self.is_forger,
            "is_association": self.is_association,
        })
    }
}

/// An account: balance and nonce at the head, and what else the address is.
pub fn account<S: Store>(
    chain: &Chain<S>,
    pool: &Mempool,
    address: Address,
) -> Result<AccountRead, ApiError> {
    let store = chain.store();
    let head = chain.head().header();
    let account = chain.account(&address).map_err(storage)?;
    let forger = read_forger(store, head.height, &address).map_err(storage)?;
    let association = read_association(store, head.height, &address).map_err(storage)?;
    Ok(AccountRead {
        address,
        account,
        height: head.height,
        pending: pool.count_from(&address),
        is_forger: forger.is_some_and(|f| !f.tickets.is_empty()),
        is_association: association.is_some(),
    })
}

/// A page of an account's history, read on the chain thread, rendered ([`HistoryPage::view`]) off
/// it.
pub struct HistoryPage {
    address: Address,
    transactions: Vec<(Transaction, TxLocation, Option<goodwill_ledger::Receipt>)>,
    next_cursor: Option<String>,
}

impl HistoryPage {
    /// The page's view.
    pub fn view(&self) -> Value {
        let list: Vec<Value> = self
            .transactions
            .iter()
            .map(|(tx, location, receipt)| views::committed(tx, location, receipt.as_ref()))
            .collect();
        json!({ "address": self.address, "transactions": list, "next_cursor": self.next_cursor })
    }
}

/// A page of an account's committed transactions, newest first, before `cursor`.
pub fn history<S: Store>(
    chain: &Chain<S>,
    address: Address,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<HistoryPage, ApiError> {
    let store = chain.store();
    let limit = limit.clamp(1, MAX_HISTORY_PAGE);
    let entries = store.history(&address, cursor.map(|c| (c.0, c.1)), limit).map_err(storage)?;
    let mut blocks: HashMap<Hash, (Block, Vec<goodwill_ledger::Receipt>)> = HashMap::new();
    let mut transactions = Vec::with_capacity(entries.len());
    for entry in &entries {
        let location = entry.location;
        let (block, receipts) = match blocks.entry(location.block_hash) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let block = store.block(&location.block_hash).map_err(storage)?.ok_or_else(|| {
                    storage(StoreError::Corrupt(format!("indexed block {} is missing", location.block_hash)))
                })?;
                let receipts = store.receipts(&location.block_hash).map_err(storage)?.unwrap_or_default();
                entry.insert((block, receipts))
            }
        };
        let Some(tx) = block.transactions.get(location.index as usize) else {
            return Err(storage(StoreError::Corrupt(format!("history entry {} past its block", entry.id))));
        };
        transactions.push((tx.clone(), location, receipts.get(location.index as usize).cloned()));
    }
    let next_cursor = (entries.len() == limit)
        .then(|| entries.last().map(|e| Cursor(e.location.height, e.location.index).to_string()))
        .flatten();
    Ok(HistoryPage { address, transactions, next_cursor })
}

/// The epoch the head is in.
fn head_epoch<S: Store>(chain: &Chain<S>) -> u64 {
    epoch_of(chain.head().header().slot, chain.spec().params.slots_per_epoch)
}

/// Basis points (hundredths of a percent) of `part` in `whole`.
fn basis_points(part: u128, whole: u128) -> u64 {
    (part * 10_000).checked_div(whole).map_or(0, |bp| bp as u64)
}

/// A block the lottery's winner forged, for the recent-winners list.
struct Won {
    height: u64,
    slot: u64,
    forger: Address,
    rank: u32,
    hash: Hash,
}

/// Every forger with its weight and its blocks in a window, and the recent winners.
pub struct ForgersRead {
    epoch: u64,
    total_weight: u128,
    active_forgers: usize,
    blocks: u64,
    first_slot: u64,
    last_slot: u64,
    winners: Vec<Won>,
    /// Each forger of the page: its record, weight share (basis points) and blocks in the window.
    forgers: Vec<(Address, ForgerState, u64, u64)>,
    /// Where the next page starts, if there is one.
    next_after: Option<Address>,
}

impl Render for ForgersRead {
    fn view(&self) -> Value {
        let list: Vec<Value> = self
            .forgers
            .iter()
            .map(|(address, record, weight_bp, in_window)| {
                let mut value = views::forger(record, self.epoch);
                value["address"] = json!(address);
                value["share_of_weight_basis_points"] = json!(weight_bp);
                value["blocks_in_window"] = json!(in_window);
                value["share_of_window_basis_points"] =
                    json!(basis_points(u128::from(*in_window), u128::from(self.blocks)));
                value
            })
            .collect();
        let winners: Vec<Value> = self
            .winners
            .iter()
            .map(|w| json!({ "height": w.height, "slot": w.slot, "forger": w.forger, "rank": w.rank, "hash": w.hash }))
            .collect();
        let slots = if self.blocks == 0 { 0 } else { self.last_slot - self.first_slot + 1 };
        json!({
            "epoch": self.epoch,
            "total_weight": self.total_weight.to_string(),
            "active_forgers": self.active_forgers,
            "window": { "blocks": self.blocks, "first_slot": self.first_slot, "last_slot": self.last_slot, "slots": slots },
            "forgers": list,
            "next_after": self.next_after,
            "recent_winners": winners,
        })
    }
}

/// A page of forgers: weight this epoch, and share of the last `window` blocks; and the
/// lottery's recent winners.
pub fn forgers<S: Store>(chain: &Chain<S>, window: u64, page: Page) -> Result<ForgersRead, ApiError> {
    let store = chain.store();
    let head = chain.head().header();
    let epoch = head_epoch(chain);
    let registry = read_registry(store, head.height).map_err(storage)?;
    let roster = chain.roster(epoch).map_err(storage)?;
    let window = window.clamp(1, MAX_WINDOW).min(head.height);
    let mut won: HashMap<Address, u64> = HashMap::new();
    let mut winners = Vec::new();
    let mut first_slot = head.slot;
    for height in (head.height + 1 - window..=head.height).rev() {
        let Some(hash) = store.canonical_hash(height).map_err(storage)? else { continue };
        let Some(header) = store.header(&hash).map_err(storage)? else { continue };
        let h = header.header();
        *won.entry(h.forger).or_default() += 1;
        first_slot = h.slot;
        if winners.len() < 20 {
            winners.push(Won { height: h.height, slot: h.slot, forger: h.forger, rank: h.rank, hash });
        }
    }
    let blocks = if head.height == 0 { 0 } else { window };
    let (addresses, next_after) = page.of(&registry.forgers);
    let mut forgers = Vec::with_capacity(addresses.len());
    for address in addresses {
        let Some(record) = read_forger(store, head.height, address).map_err(storage)? else { continue };
        let in_window = won.get(address).copied().unwrap_or(0);
        let weight_bp = basis_points(roster.weight(address), roster.total_weight());
        forgers.push((*address, record, weight_bp, in_window));
    }
    Ok(ForgersRead {
        epoch,
        total_weight: roster.total_weight(),
        active_forgers: roster.len(),
        blocks,
        first_slot,
        last_slot: head.slot,
        winners,
        forgers,
        next_after,
    })
}

/// One forger's record, at an epoch.
pub struct ForgerRead {
    address: Address,
    record: ForgerState,
    epoch: u64,
}

impl Render for ForgerRead {
    fn view(&self) -> Value {
        let mut value = views::forger(&self.record, self.epoch);
        value["address"] = json!(self.address);
        value["epoch"] = json!(self.epoch);
        value
    }
}

/// One forger's record with its tickets.
pub fn forger<S: Store>(chain: &Chain<S>, address: Address) -> Result<ForgerRead, ApiError> {
    let head = chain.head().header();
    let record = read_forger(chain.store(), head.height, &address)
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("{address} has never held a ticket")))?;
    Ok(ForgerRead { address, record, epoch: head_epoch(chain) })
}

/// Tickets of every forger at an epoch, each with its status.
pub struct TicketsRead {
    epoch: u64,
    tickets: Vec<(Address, Ticket, &'static str)>,
    next_after: Option<Address>,
}

impl Render for TicketsRead {
    fn view(&self) -> Value {
        let list: Vec<Value> = self
            .tickets
            .iter()
            .map(|(address, ticket, state)| {
                json!({
                    "forger": address,
                    "weight": ticket.weight,
                    "first_epoch": ticket.first_epoch,
                    "last_epoch": ticket.last_epoch,
                    "status": state,
                })
            })
            .collect();
        json!({ "epoch": self.epoch, "tickets": list, "next_after": self.next_after })
    }
}

/// The tickets of a page of forgers, optionally only those with `status` (active, upcoming,
/// past).
pub fn tickets<S: Store>(
    chain: &Chain<S>,
    status: Option<&str>,
    page: Page,
) -> Result<TicketsRead, ApiError> {
    if let Some(status) = status
        && !["active", "upcoming", "past"].contains(&status)
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "bad_status",
            format!("status `{status}` is not one of active, upcoming, past"),
        ));
    }
    let store = chain.store();
    let head = chain.head().header();
    let epoch = head_epoch(chain);
    let registry = read_registry(store, head.height).map_err(storage)?;
    let mut tickets = Vec::new();
    let (addresses, next_after) = page.of(&registry.forgers);
    for address in addresses {
        let Some(record) = read_forger(store, head.height, address).map_err(storage)? else { continue };
        for ticket in &record.tickets {
            let state = views::ticket_status(ticket, epoch);
            if status.is_none_or(|s| s == state) {
                tickets.push((*address, *ticket, state));
            }
        }
    }
    Ok(TicketsRead { epoch, tickets, next_after })
}

/// Support for an association: its voters' share of the active ticket weight.
fn support(roster: &goodwill_ledger::lottery::Roster, voters: &[Address]) -> u64 {
    basis_points(voters.iter().map(|v| roster.weight(v)).sum(), roster.total_weight())
}

/// Associations with their records and support (basis points of the active weight).
pub struct AssociationsRead {
    vote_window_epochs: u64,
    associations: Vec<(Address, AssociationState, u64)>,
    next_after: Option<Address>,
}

fn association_view(address: &Address, record: &AssociationState, support: u64) -> Value {
    let mut value = views::association(record, support);
    value["address"] = json!(address);
    value
}

impl Render for AssociationsRead {
    fn view(&self) -> Value {
        let list: Vec<Value> = self
            .associations
            .iter()
            .map(|(address, record, support)| association_view(address, record, *support))
            .collect();
        json!({
            "eligibility_basis_points": goodwill_ledger::lottery::ELIGIBILITY_PERCENT * 100,
            "vote_window_epochs": self.vote_window_epochs,
            "associations": list,
            "next_after": self.next_after,
        })
    }
}

/// A page of associations with their votes, eligibility and donations received.
pub fn associations<S: Store>(chain: &Chain<S>, page: Page) -> Result<AssociationsRead, ApiError> {
    let store = chain.store();
    let head = chain.head().header();
    let registry = read_registry(store, head.height).map_err(storage)?;
    let roster = chain.roster(head_epoch(chain)).map_err(storage)?;
    let (addresses, next_after) = page.of(&registry.associations);
    let mut associations = Vec::with_capacity(addresses.len());
    for address in addresses {
        let Some(record) = read_association(store, head.height, address).map_err(storage)? else { continue };
        let support = support(&roster, &record.voters);
        associations.push((*address, record, support));
    }
    Ok(AssociationsRead {
        vote_window_epochs: chain.spec().params.vote_window_epochs,
        associations,
        next_after,
    })
}

/// One association, with its support.
pub struct AssociationRead(Address, AssociationState, u64);

impl Render for AssociationRead {
    fn view(&self) -> Value {
        association_view(&self.0, &self.1, self.2)
    }
}

/// One association.
pub fn association<S: Store>(chain: &Chain<S>, address: Address) -> Result<AssociationRead, ApiError> {
    let store = chain.store();
    let head = chain.head().header();
    let record = read_association(store, head.height, &address)
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("{address} is not a registered association")))?;
    let roster = chain.roster(head_epoch(chain)).map_err(storage)?;
    let support = support(&roster, &record.voters);
    Ok(AssociationRead(address, record, support))
}

/// The schedule queue at a slot.
pub struct SchedulesRead {
    slot: u64,
    queue: Vec<goodwill_ledger::state::ScheduledPayment>,
}

impl Render for SchedulesRead {
    fn view(&self) -> Value {
        json!({
            "slot": self.slot,
            "max_schedules": goodwill_ledger::execute::MAX_SCHEDULES,
            "schedules": self.queue,
        })
    }
}

/// Every active scheduled payment, in the order payments run.
pub fn schedules<S: Store>(chain: &Chain<S>) -> Result<SchedulesRead, ApiError> {
    let head = chain.head().header();
    let queue = goodwill_ledger::state::read_schedules(chain.store(), head.height).map_err(storage)?;
    Ok(SchedulesRead { slot: head.slot, queue })
}

/// A contract's record and balance at a height.
pub struct ContractRead {
    address: Address,
    record: goodwill_ledger::state::ContractRecord,
    balance: goodwill_ledger::Amount,
    height: u64,
}

impl Render for ContractRead {
    fn view(&self) -> Value {
        json!({
            "address": self.address,
            "creator": self.record.creator,
            "deployed_height": self.record.deployed_height,
            "storage_entries": self.record.storage_entries,
            "balance": self.balance,
            "code": self.record.code,
            "height": self.height,
        })
    }
}

/// A deployed contract: its record, balance and code.
pub fn contract<S: Store>(chain: &Chain<S>, address: Address) -> Result<ContractRead, ApiError> {
    let store = chain.store();
    let height = chain.head().header().height;
    let record = goodwill_ledger::state::read_contract(store, height, &address)
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("no contract at {address}")))?;
    let balance = chain.account(&address).map_err(storage)?.balance;
    Ok(ContractRead { address, record, balance, height })
}

/// One storage entry of a contract, as stored (JSON text).
pub struct EntryRead {
    address: Address,
    key: String,
    value: String,
    height: u64,
}

impl EntryRead {
    /// The entry's view; its stored text must be JSON.
    pub fn view(&self) -> Result<Value, ApiError> {
        let value: Value =
            serde_json::from_str(&self.value).map_err(|e| storage(StoreError::Corrupt(e.to_string())))?;
        Ok(json!({ "address": self.address, "key": self.key, "value": value, "height": self.height }))
    }
}

/// One storage entry of a contract.
pub fn contract_entry<S: Store>(
    chain: &Chain<S>,
    address: Address,
    key: &str,
) -> Result<EntryRead, ApiError> {
    let store = chain.store();
    let height = chain.head().header().height;
    goodwill_ledger::state::read_contract(store, height, &address)
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("no contract at {address}")))?;
    let value = goodwill_ledger::state::read_contract_entry(store, height, &address, key)
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("{address} has no storage entry {key:?}")))?;
    Ok(EntryRead { address, key: key.to_string(), value, height })
}

/// The pool's size and its best-paying transactions, copied on the chain thread and rendered
/// ([`PoolPage::view`]) off it.
pub struct PoolPage {
    count: usize,
    bytes: usize,
    min_fee: goodwill_ledger::Amount,
    transactions: Vec<(Transaction, u64)>,
}

/// The pool: its size and its best-paying transactions.
pub fn mempool(pool: &Mempool, limit: usize) -> PoolPage {
    let best = pool.best(limit.clamp(1, MAX_POOL_PAGE));
    PoolPage {
        count: pool.len(),
        bytes: pool.bytes(),
        min_fee: pool.config().min_fee,
        transactions: best.into_iter().map(|(tx, arrived_slot)| (tx.clone(), arrived_slot)).collect(),
    }
}

impl PoolPage {
    /// The page's view.
    pub fn view(&self) -> Value {
        let transactions: Vec<Value> = self
            .transactions
            .iter()
            .map(|(tx, arrived_slot)| {
                let mut value = views::transaction(tx);
                value["arrived_slot"] = json!(arrived_slot);
                value
            })
            .collect();
        json!({ "count": self.count, "bytes": self.bytes, "min_fee": self.min_fee, "transactions": transactions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_read_a_page_at_a_time() {
        let sorted: Vec<Address> = (0..1_200u16)
            .map(|i| {
                let mut bytes = [0u8; 32];
                bytes[..2].copy_from_slice(&i.to_be_bytes());
                Address(bytes)
            })
            .collect();
        let (first, next) = Page::default().of(&sorted);
        assert_eq!(first.len(), MAX_PAGE, "a request reads at most a page, whatever it asks");
        let (second, next) = Page { after: next, limit: Some(10_000) }.of(&sorted);
        assert_eq!((second.len(), second[0]), (MAX_PAGE, sorted[MAX_PAGE]));
        let (last, end) = Page { after: next, limit: None }.of(&sorted);
        assert_eq!(last.len(), 1_200 - 2 * MAX_PAGE);
        assert_eq!(end, None, "the last page says so");
        let (small, more) = Page { after: None, limit: Some(3) }.of(&sorted);
        assert_eq!((small.len(), more), (3, Some(sorted[2])));
    }
}
