//! Proof of Good-Will's ledger rules: tickets pay associations, activate two epochs later and
//! buy lottery weight; votes need an active ticket and pass at 75% of the weight; blocks must be
//! signed by the lottery's pick.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::finality::{BlockId, Checkpoint, SignedVote, Vote};
use goodwill_ledger::lottery::epoch_of;
use goodwill_ledger::proof::LotteryState;
use goodwill_ledger::state::{read_association, read_forger, read_roster, read_rosters};
use goodwill_ledger::testkit::{self, CHAIN_ID};
use goodwill_ledger::{
    Address, Amount, ApplyError, Block, BlockError, Chain, ChainError, ChainSpec, GenesisForger, Hash,
    Keypair, MemoryStore, Payload, Store, Transaction, TransactionBody, TxError,
};

/// A chain of several genesis forgers with given weights, plus funded accounts.
struct Net {
    chain: Chain<MemoryStore>,
    keys: Vec<Keypair>,
    nonces: Vec<u64>,
}

fn forger_key(i: usize) -> Keypair {
    Keypair::insecure_dev(&format!("good-will-forger-{i}"))
}

impl Net {
    fn new(weights: &[u64]) -> Net {
        Net::with_vote_window(weights, ChainSpec::dev(0).params.vote_window_epochs)
    }

    fn with_vote_window(weights: &[u64], vote_window_epochs: u64) -> Net {
        let mut spec: ChainSpec = testkit::spec();
        spec.params.vote_window_epochs = vote_window_epochs;
        spec.forgers = weights
            .iter()
            .enumerate()
            .map(|(i, w)| GenesisForger::for_key(&forger_key(i), Amount(*w)))
            .collect();
        spec.params.min_ticket_price = Amount(10);
        spec.params.min_registration_fee = Amount(REGISTRATION_FEE);
        // Forgers pay fees for their votes before they have forged anything.
        spec.balances.extend((0..weights.len()).map(|i| goodwill_ledger::GenesisBalance {
            address: forger_key(i).address(),
            balance: Amount::coins(1),
        }));
        let chain = Chain::open(MemoryStore::new(), spec).unwrap();
        let keys: Vec<Keypair> =
            (0..weights.len()).map(forger_key).chain((0..4).map(testkit::account)).collect();
        let nonces = vec![0; keys.len()];
        Net { chain, keys, nonces }
    }

    fn height(&self) -> u64 {
        self.chain.head().header().height
    }

    fn epoch(&self) -> u64 {
        epoch_of(self.chain.head().header().slot, self.chain.spec().params.slots_per_epoch)
    }

    /// A signed transaction from key `who` with the next nonce.
    fn tx(&mut self, who: usize, payload: Payload) -> Transaction {
        let key = &self.keys[who];
        let tx = TransactionBody {
            chain_id: CHAIN_ID.into(),
            sender: key.address(),
            nonce: self.nonces[who],
            fee: Amount(if matches!(payload, Payload::RegisterAssociation { .. }) {
                REGISTRATION_FEE
            } else {
                10
            }),
            payload,
        }
        .sign(key, &self.chain.genesis_hash());
        self.nonces[who] += 1;
        tx
    }

    /// The key among ours that signs `slot` on the head first, and its rank.
    fn first_in(&self, slot: u64) -> (&Keypair, u32) {
        self.keys
            .iter()
            .filter_map(|k| Some((k, self.chain.rank_of(&k.address(), slot).unwrap()?)))
            .min_by_key(|(_, rank)| *rank)
            .expect("one of our keys holds a ticket")
    }

    /// Forges the next slot's block, by the first of our keys to be allowed (the primary
    /// forger, unless its draw is void), with `transactions`.
    fn forge(&mut self, transactions: Vec<Transaction>) -> Result<Block, TxError> {
        let slot = self.chain.head().header().slot + 1;
        let (forger, rank) = self.first_in(slot);
        let time = testkit::slot_time(self.chain.spec(), slot, rank);
        let mut builder = self.chain.builder(forger, slot, time).unwrap();
        for tx in transactions {
            match builder.push(tx) {
                Ok(()) => {}
                Err(ApplyError::Invalid(error)) => return Err(error),
                Err(other) => panic!("{other}"),
            }
        }
        let applied = builder.seal(forger).unwrap();
        let block = applied.block.clone();
        self.chain.commit(applied).unwrap();
        Ok(block)
    }

    /// Bytes of state values the next slot's block writes with no transactions (it is
    /// committed).
    fn empty_block_writes(&mut self) -> usize {
        let slot = self.chain.head().header().slot + 1;
        let forger =
            self.keys.iter().find(|k| self.chain.rank_of(&k.address(), slot).unwrap() == Some(0)).unwrap();
        let time = testkit::slot_time(self.chain.spec(), slot, 0);
        let applied = self.chain.builder(forger, slot, time).unwrap().seal(forger).unwrap();
        let written = applied.state.value_bytes();
        self.chain.commit(applied).unwrap();
        written
    }

    /// Forges one transaction alone and returns the rejection, if any; a refused transaction's
    /// nonce is given back.
    fn submit(&mut self, who: usize, payload: Payload) -> Result<(), TxError> {
        let tx = self.tx(who, payload);
        let result = self.forge(vec![tx]).map(|_| ());
        if result.is_err() {
            self.nonces[who] -= 1;
            self.forge(vec![]).unwrap();
        }
        result
    }

    fn forge_until_epoch(&mut self, epoch: u64) {
        while self.epoch() < epoch {
            self.forge(vec![]).unwrap();
        }
    }

    fn weight(&self, address: &Address, epoch: u64) -> u128 {
        read_roster(self.chain.store(), self.height(), epoch).unwrap().weight(address)
    }

    fn eligible(&self, association: &Address) -> bool {
        read_association(self.chain.store(), self.height(), association).unwrap().is_some_and(|a| a.eligible)
    }
}

const BUYER: usize = 3; // testkit account 0, behind three genesis forgers
/// What registering an association costs on these chains.
const REGISTRATION_FEE: u64 = 500;

fn buy(association: Address, price: u64, commitment: Option<Hash>) -> Payload {
    Payload::BuyTicket { association, price: Amount(price), epochs: 5, commitment }
}

fn register() -> Payload {
    Payload::RegisterAssociation {
        name: "Clean Rivers".into(),
        proof_url: "https://example.org/clean-rivers.pdf".into(),
        document_hash: Hash([5; 32]),
    }
}

#[test]
fn ticket_money_lands_at_the_named_association() {
    let mut net = Net::new(&[10, 10, 10]);
    let association = testkit::association().address();
    let buyer = net.keys[BUYER].address();
    let (buyer_before, association_before) =
        (net.chain.account(&buyer).unwrap().balance, net.chain.account(&association).unwrap().balance);
    let commitment = net.keys[BUYER].reveal_commitment(0);
    net.submit(BUYER, buy(association, 500, Some(commitment))).unwrap();

    assert_eq!(net.chain.account(&association).unwrap().balance, Amount(association_before.0 + 500));
    assert_eq!(net.chain.account(&buyer).unwrap().balance, Amount(buyer_before.0 - 500 - 10));
    let record = read_association(net.chain.store(), net.height(), &association).unwrap().unwrap();
    assert_eq!(record.received, Amount(500));
    let ticket = read_forger(net.chain.store(), net.height(), &buyer).unwrap().unwrap().tickets[0];
    assert_eq!(
        (ticket.weight, ticket.first_epoch, ticket.last_epoch),
        (Amount(500), net.epoch() + 2, net.epoch() + 6)
    );
}

/// The attack: an approved association buys tickets naming itself, so the price comes back to
/// it and it gains forging weight for the fee alone. A ticket must pay someone else.
#[test]
fn a_ticket_that_pays_its_own_buyer_is_refused() {
    let mut net = Net::new(&[10, 10, 10]);
    let association = testkit::association();
    net.keys.push(testkit::association());
    net.nonces.push(0);
    let me = net.keys.len() - 1;
    let before = net.chain.account(&association.address()).unwrap();
    let commitment = association.reveal_commitment(0);
    assert_eq!(
        net.submit(me, buy(association.address(), 500, Some(commitment))),
        Err(TxError::TicketPaysBuyer)
    );
    assert_eq!(net.chain.account(&association.address()).unwrap(), before);
    assert!(read_forger(net.chain.store(), net.height(), &association.address()).unwrap().is_none());
}

/// The attack: registrations cost the minimum fee, so anyone can fill the state with them. A
/// registration costs the chain's registration fee.
#[test]
fn registering_an_association_costs_the_registration_fee() {
    let mut net = Net::new(&[10]);
    let key = &net.keys[BUYER + 1];
    let sender = key.address();
    let cheap = TransactionBody {
        chain_id: CHAIN_ID.into(),
        sender,
        nonce: 0,
        fee: Amount(REGISTRATION_FEE - 1),
        payload: register(),
    }
    .sign(key, &net.chain.genesis_hash());
    assert_eq!(
        net.forge(vec![cheap]).unwrap_err(),
        TxError::RegistrationFeeTooLow { min: Amount(REGISTRATION_FEE), got: Amount(REGISTRATION_FEE - 1) }
    );
    let before = net.chain.account(&sender).unwrap().balance;
    net.submit(BUYER + 1, register()).unwrap();
    assert_eq!(net.chain.account(&sender).unwrap().balance, Amount(before.0 - REGISTRATION_FEE));
}

#[test]
fn tickets_only_pay_eligible_associations_and_need_a_first_commitment() {
    let mut net = Net::new(&[10]);
    let stranger = Keypair::insecure_dev("stranger").address();
    let commitment = Some(net.keys[BUYER].reveal_commitment(0));
    assert_eq!(net.submit(BUYER, buy(stranger, 100, commitment)), Err(TxError::NotEligible(stranger)));
    // Registered but not yet voted in.
    let candidate = net.keys[BUYER + 1].address();
    net.submit(BUYER + 1, register()).unwrap();
    assert_eq!(net.submit(BUYER, buy(candidate, 100, commitment)), Err(TxError::NotEligible(candidate)));
    let association = testkit::association().address();
    assert_eq!(net.submit(BUYER, buy(association, 100, None)), Err(TxError::MissingCommitment));
    assert!(matches!(
        net.submit(BUYER, buy(association, 9, commitment)),
        Err(TxError::TicketTooCheap { .. })
    ));
    net.submit(BUYER, buy(association, 100, commitment)).unwrap();
    assert_eq!(net.submit(BUYER, buy(association, 100, commitment)), Err(TxError::CommitmentAlreadySet));
    net.submit(BUYER, buy(association, 100, None)).unwrap();
}

#[test]
fn a_ticket_counts_from_two_epochs_after_its_purchase_and_then_wins_slots() {
    let mut net = Net::new(&[10]);
    let association = testkit::association().address();
    let buyer = net.keys[BUYER].address();
    let commitment = Some(net.keys[BUYER].reveal_commitment(0));
    net.submit(BUYER, buy(association, 1_000, commitment)).unwrap();
    let bought_in = net.epoch();
    assert_eq!(net.weight(&buyer, bought_in), 0);
    assert_eq!(net.weight(&buyer, bought_in + 1), 0);
    assert_eq!(net.weight(&buyer, bought_in + 2), 1_000);
    assert_eq!(net.weight(&buyer, bought_in + 7), 0, "the ticket spans 5 epochs");
    // With 99% of the weight from epoch + 2, the buyer forges most blocks there.
    net.forge_until_epoch(bought_in + 2);
    let before = read_forger(net.chain.store(), net.height(), &buyer).unwrap().unwrap().blocks_forged;
    for _ in 0..20 {
        net.forge(vec![]).unwrap();
    }
    let forged =
        read_forger(net.chain.store(), net.height(), &buyer).unwrap().unwrap().blocks_forged - before;
    assert!(forged >= 15, "the buyer forged {forged} of 20 blocks with 99% of the weight");
}

/// Registers `net.keys[BUYER + 1]` as an association and has forgers `voters` vote for it.
fn vote_outcome(weights: &[u64], voters: &[usize]) -> bool {
    let mut net = Net::new(weights);
    let candidate = net.keys[BUYER + 1].address();
    net.submit(BUYER + 1, register()).unwrap();
    for &voter in voters {
        assert!(!net.eligible(&candidate));
        net.submit(voter, Payload::VoteAssociation { association: candidate }).unwrap();
    }
    net.eligible(&candidate)
}

#[test]
fn the_vote_passes_at_exactly_75_percent_of_the_weight() {
    assert!(vote_outcome(&[30, 45, 25], &[0, 1]), "30 + 45 of 100 is 75%");
    assert!(vote_outcome(&[1, 1, 1, 1], &[0, 1, 2]), "three of four equal forgers");
}

#[test]
fn the_vote_fails_just_below_75_percent() {
    assert!(!vote_outcome(&[30, 44, 26], &[0, 1]), "30 + 44 of 100 is 74%");
    assert!(!vote_outcome(&[3000, 4499, 2501], &[0, 1]), "74.99%");
}

#[test]
fn only_forgers_with_an_active_ticket_vote_once_within_the_window() {
    let mut net = Net::new(&[10, 10, 10, 10]);
    let candidate = net.keys[BUYER + 2].address();
    net.submit(BUYER + 2, register()).unwrap();
    let outsider = net.keys[BUYER + 1].address();
    let vote = Payload::VoteAssociation { association: candidate };
    assert_eq!(net.submit(BUYER + 1, vote.clone()), Err(TxError::NoActiveTicket(outsider)));
    // A ticket not yet active does not give a vote either.
    let commitment = Some(net.keys[BUYER + 1].reveal_commitment(0));
    net.submit(BUYER + 1, buy(testkit::association().address(), 100, commitment)).unwrap();
    assert_eq!(net.submit(BUYER + 1, vote.clone()), Err(TxError::NoActiveTicket(outsider)));
    net.submit(0, vote.clone()).unwrap();
    let voter = net.keys[0].address();
    assert_eq!(net.submit(0, vote.clone()), Err(TxError::AlreadyVoted { voter, association: candidate }));
    let unknown = Keypair::insecure_dev("unknown").address();
    assert_eq!(
        net.submit(1, Payload::VoteAssociation { association: unknown }),
        Err(TxError::UnknownAssociation(unknown))
    );
    // After the window the registration has expired, and may be made again.
    let window = net.chain.spec().params.vote_window_epochs;
    let registered = net.epoch();
    net.forge_until_epoch(registered + window + 1);
    assert_eq!(net.submit(1, vote.clone()), Err(TxError::UnknownAssociation(candidate)));
    net.submit(BUYER + 2, register()).unwrap();
    net.submit(1, vote).unwrap();
}

/// The attack: registrations that no one approves pile up in the state for good, each a record
/// every node keeps and a place in the registry. Once its vote window closes
/// unapproved, a registration leaves the state at the next epoch's first block.
#[test]
fn an_unapproved_registration_expires_and_leaves_the_state() {
    let mut net = Net::with_vote_window(&[10], 3);
    let candidate = net.keys[BUYER - 1].address();
    net.submit(BUYER - 1, register()).unwrap();
    let registered = net.epoch();
    let listed = |net: &Net| {
        goodwill_ledger::state::read_registry(net.chain.store(), net.height())
            .unwrap()
            .associations
            .contains(&candidate)
    };
    assert!(listed(&net));
    let window = net.chain.spec().params.vote_window_epochs;
    net.forge_until_epoch(registered + window);
    assert!(listed(&net), "still open for votes in the window's last epoch");
    net.forge_until_epoch(registered + window + 1);
    assert!(!listed(&net), "gone from the registry");
    assert!(
        read_association(net.chain.store(), net.height(), &candidate).unwrap().is_none(),
        "and from the state"
    );
    // The genesis association, eligible, stays.
    assert!(net.eligible(&testkit::association().address()));
}

/// The attack: register many forgers and associations, each for a fee, so that every later
/// block rewrites a record listing them all. What a block without transactions writes is the
/// same on a chain of 2 forgers and one of 200, before and after 20 registrations.
#[test]
fn many_registrations_do_not_grow_what_every_block_writes() {
    let mut few = Net::new(&[10; 2]);
    let mut many = Net::new(&[10; 200]);
    let baseline = few.empty_block_writes();
    assert_eq!(many.empty_block_writes(), baseline, "200 forgers against 2");
    for _ in 0..20 {
        let candidate = Keypair::generate().unwrap();
        let payload = Payload::Transfer { to: candidate.address(), amount: Amount(REGISTRATION_FEE * 2) };
        many.submit(BUYER, payload).unwrap();
        many.keys.push(candidate);
        many.nonces.push(0);
        let last = many.keys.len() - 1;
        many.submit(last, register()).unwrap();
    }
    let registered = goodwill_ledger::state::read_registry(many.chain.store(), many.height()).unwrap();
    assert_eq!(registered.associations.len(), 21);
    assert!(many.empty_block_writes() <= baseline + 8, "after 20 registrations");
}

#[test]
fn a_block_signed_out_of_turn_is_rejected_and_the_open_rank_fills_a_slot() {
    let mut net = Net::new(&[10, 10]);
    let (a, b) = (forger_key(0), forger_key(1));
    // A slot whose primary is `a`.
    let slot = (1..).find(|&s| net.chain.rank_of(&a.address(), s).unwrap() == Some(0)).unwrap();
    let b_rank = net.chain.rank_of(&b.address(), slot).unwrap().unwrap();
    assert!(b_rank > 0);
    // `b` forges the slot claiming rank 0: rejected.
    let honest = net
        .chain
        .builder(&a, slot, testkit::slot_time(net.chain.spec(), slot, 0))
        .unwrap()
        .seal(&a)
        .unwrap()
        .block;
    let mut header = honest.header().clone();
    header.forger = b.address();
    header.reveal = b.reveal_secret(0);
    header.next_commitment = b.reveal_commitment(1);
    let stolen = Block { header: header.sign(&b, &net.chain.genesis_hash()), transactions: vec![] };
    let error = net.chain.import(stolen).unwrap_err();
    assert!(matches!(error, ChainError::Invalid(BlockError::NotEntitled { rank: 0, .. })), "{error}");
    // `b` at its own rank, inside that rank's window: valid (the primary was absent).
    let time = testkit::slot_time(net.chain.spec(), slot, b_rank);
    let fallback = net.chain.builder(&b, slot, time).unwrap().seal(&b).unwrap().block;
    assert_eq!(fallback.header().rank, b_rank);
    net.chain.import(fallback).unwrap();
    assert_eq!(net.chain.head().header().forger, b.address());
}

/// Two blocks `forger` signs for the same `slot`, differing in their timestamps.
fn two_blocks(net: &Net, forger: &Keypair, slot: u64, rank: u32) -> (Block, Block) {
    let time = testkit::slot_time(net.chain.spec(), slot, rank);
    let one = net.chain.builder(forger, slot, time).unwrap().seal(forger).unwrap().block;
    let two = net.chain.builder(forger, slot, time + 1).unwrap().seal(forger).unwrap().block;
    assert_ne!(one.hash(), two.hash());
    (one, two)
}

/// Whether `result` refused a report as no equivocation, for a reason mentioning `why`.
fn not(why: &str) -> impl Fn(Result<(), TxError>) -> bool + '_ {
    move |result| matches!(result, Err(TxError::NotEquivocation(reason)) if reason.contains(why))
}

fn report(first: &Block, second: &Block) -> Payload {
    Payload::ReportEquivocation {
        first: Box::new(first.header.clone()),
        second: Box::new(second.header.clone()),
    }
}

/// The attack: sign two blocks for one slot, and keep forging. The report takes the offender's
/// right to sign from the next epoch on: that epoch's roster was fixed (and committed) before
/// the report, so the offender's draws there are void and the next rank fills its slots; from
/// the epoch after, its tickets are off the roster.
#[test]
fn an_equivocating_forger_loses_its_draws_from_the_next_epoch_and_its_tickets_after() {
    let mut net = Net::new(&[10, 10, 10]);
    let offender = forger_key(0);
    let slot = (1..).find(|&s| net.chain.rank_of(&offender.address(), s).unwrap() == Some(0)).unwrap();
    let (one, two) = two_blocks(&net, &offender, slot, 0);
    assert_eq!(net.weight(&offender.address(), net.epoch()), 10);

    net.submit(BUYER, report(&one, &two)).unwrap();

    let epoch = net.epoch();
    let record = read_forger(net.chain.store(), net.height(), &offender.address()).unwrap().unwrap();
    assert!(record.tickets.iter().all(|t| t.forfeited_from == Some(epoch + 1)), "{record:?}");
    assert_eq!(net.weight(&offender.address(), epoch), 10, "this epoch's roster is unchanged");
    assert_eq!(net.weight(&offender.address(), epoch + 1), 10, "the next epoch's roster was fixed");
    assert!(!record.signs_in(epoch + 1));
    assert_eq!(net.weight(&offender.address(), epoch + 2), 0, "then its tickets are off the roster");
    let slots = net.chain.spec().params.slots_per_epoch;
    for slot in (epoch + 1) * slots..(epoch + 3) * slots {
        assert_eq!(net.chain.rank_of(&offender.address(), slot).unwrap(), None, "slot {slot}");
    }
    // The same offence cannot be punished twice.
    assert_eq!(net.submit(BUYER, report(&two, &one)), Err(TxError::NothingToForfeit(offender.address())));

    // In the next epoch, a slot drawn for the offender at rank 0 has no primary: a block it
    // signs there is refused, and the next rank fills the slot.
    net.forge_until_epoch(epoch + 1);
    let others: Vec<Address> = (1..3).map(|i| forger_key(i).address()).collect();
    let void = (net.chain.head().header().slot + 1..(epoch + 2) * slots)
        .find(|&s| others.iter().all(|a| net.chain.rank_of(a, s).unwrap() != Some(0)))
        .expect("the offender holds a third of the roster: some slot draws it first");
    while net.chain.head().header().slot + 1 < void {
        net.forge(vec![]).unwrap();
    }
    let (filler, rank) = net.first_in(void);
    assert!(rank > 0, "the void draw's slot is filled at a later rank");
    let filler = (1..3).map(forger_key).find(|k| k.address() == filler.address()).unwrap();
    let filled = net.chain.builder(&filler, void, testkit::slot_time(net.chain.spec(), void, rank)).unwrap();
    let filled = filled.seal(&filler).unwrap().block;
    let mut header = filled.header().clone();
    header.forger = offender.address();
    header.rank = 0;
    header.timestamp_ms = testkit::slot_time(net.chain.spec(), void, 0);
    let record = read_forger(net.chain.store(), net.height(), &offender.address()).unwrap().unwrap();
    header.reveal = offender.reveal_secret(record.blocks_forged);
    header.next_commitment = offender.reveal_commitment(record.blocks_forged + 1);
    let voided = Block { header: header.sign(&offender, &net.chain.genesis_hash()), transactions: vec![] };
    let error = net.chain.import(voided).unwrap_err();
    assert!(matches!(error, ChainError::Invalid(BlockError::NotEntitled { rank: 0, .. })), "{error}");
    net.chain.import(filled).unwrap();
    assert_eq!(net.chain.head().header().slot, void);
}

#[test]
fn reports_that_are_not_equivocations_are_refused() {
    let mut net = Net::new(&[10, 10]);
    let (a, b) = (forger_key(0), forger_key(1));
    let slot_a = (1..).find(|&s| net.chain.rank_of(&a.address(), s).unwrap() == Some(0)).unwrap();
    let (one, two) = two_blocks(&net, &a, slot_a, 0);

    assert!(not("same block")(net.submit(BUYER, report(&one, &one))));
    // Another forger's block for the same slot (at its own rank) is not an equivocation.
    let b_rank = net.chain.rank_of(&b.address(), slot_a).unwrap().unwrap();
    let (other, _) = two_blocks(&net, &b, slot_a, b_rank);
    assert!(not("same forger and slot")(net.submit(BUYER, report(&one, &other))));
    // Headers signed for another chain prove nothing here.
    let elsewhere = Hash([8; 32]);
    let resign =
        |block: &Block| Block { header: block.header().clone().sign(&a, &elsewhere), transactions: vec![] };
    assert!(not("for this chain")(net.submit(BUYER, report(&resign(&one), &resign(&two)))));
    assert_eq!(net.weight(&a.address(), net.epoch()), 10, "nothing was forfeited");
    net.submit(BUYER, report(&one, &two)).unwrap();
    let record = read_forger(net.chain.store(), net.height(), &a.address()).unwrap().unwrap();
    assert!(!record.signs_in(net.epoch() + 1), "forfeited from the next epoch");
}

fn vote_report(first: SignedVote, second: SignedVote) -> Payload {
    Payload::ReportVoteEquivocation { first: Box::new(first), second: Box::new(second) }
}

/// The attack on finality: a forger votes for two targets in one round (or surrounds an earlier
/// vote with a later one), which is what a third of the weight must do to finalize conflicting
/// blocks. Either pair, reported by anyone, forfeits its tickets as two blocks in one slot do;
/// pairs that break no rule, or were signed for another chain, are refused.
#[test]
fn a_forger_that_signs_conflicting_votes_is_reported_and_forfeits_its_tickets() {
    let mut net = Net::new(&[10, 10]);
    let (a, b) = (forger_key(0), forger_key(1));
    let genesis = net.chain.genesis_hash();
    let block = |height: u64, byte: u8| BlockId { height, hash: Hash([byte; 32]) };
    let source = Checkpoint { round: 0, block: block(0, 0) };
    let vote = |key: &Keypair, round: u64, source: Checkpoint, target: BlockId| {
        Vote { round, source, target }.sign(key, &genesis)
    };
    let one = vote(&a, 5, source, block(4, 1));
    let two = vote(&a, 5, source, block(4, 2));

    assert!(not("same voter")(net.submit(BUYER, vote_report(one, vote(&b, 5, source, block(4, 2))))));
    assert!(not("the same")(net.submit(BUYER, vote_report(one, one))));
    // Consecutive votes, each from the last justified checkpoint: what honest forgers sign.
    let later = vote(&a, 6, Checkpoint { round: 5, block: block(4, 1) }, block(5, 1));
    assert!(not("neither share a round")(net.submit(BUYER, vote_report(one, later))));
    let elsewhere = Hash([8; 32]);
    let resigned = |v: SignedVote| v.vote.sign(&a, &elsewhere);
    assert!(not("for this chain")(net.submit(BUYER, vote_report(resigned(one), resigned(two)))));
    assert_eq!(net.weight(&a.address(), net.epoch()), 10, "nothing was forfeited");

    // Two votes in one round.
    net.submit(BUYER, vote_report(one, two)).unwrap();
    let record = read_forger(net.chain.store(), net.height(), &a.address()).unwrap().unwrap();
    assert!(!record.signs_in(net.epoch() + 1), "forfeited from the next epoch");
    assert_eq!(net.submit(BUYER, vote_report(two, one)), Err(TxError::NothingToForfeit(a.address())));

    // A vote whose span (source round 1 to round 9) surrounds another's (3 to 4).
    let inner = vote(&b, 4, Checkpoint { round: 3, block: block(2, 3) }, block(3, 3));
    let outer = vote(&b, 9, Checkpoint { round: 1, block: block(1, 3) }, block(8, 3));
    net.submit(BUYER, vote_report(inner, outer)).unwrap();
    let record = read_forger(net.chain.store(), net.height(), &b.address()).unwrap().unwrap();
    assert!(!record.signs_in(net.epoch() + 1));
}

/// After every block, each roster commitment the state holds equals the roster its records give
/// for that epoch, and a peer that keeps no state, checking the block with the lottery proof of
/// its parent, agrees with the chain that applied it.
fn rosters_agree(net: &Net) {
    let (store, height) = (net.chain.store(), net.height());
    let rosters = read_rosters(store, height).unwrap();
    assert_eq!(rosters.commitments.len(), 2, "height {height}: {rosters:?}");
    for commitment in &rosters.commitments {
        let roster = read_roster(store, height, commitment.epoch).unwrap();
        assert_eq!(*commitment, roster.commitment(commitment.epoch), "height {height}");
    }
    let head = net.chain.head().clone();
    let parent = store.header(&head.header().parent_hash).unwrap().unwrap();
    let (forger, slot) = (head.header().forger, head.header().slot);
    let proof = net.chain.lottery_proof(&parent, &forger, slot).unwrap();
    let epoch = epoch_of(slot, net.chain.spec().params.slots_per_epoch);
    let state = LotteryState::verify(&parent.header().state_root, &forger, epoch, &proof).unwrap();
    state.check(net.chain.spec(), head.header()).unwrap();
}

/// The attack: time a ticket purchase or an equivocation report so that an epoch's roster
/// changes after the state committed to it, so that light peers (which check draws against the
/// commitment) and main nodes (which draw from the records) part ways, or the report's
/// inclusion steers the draws. Neither can: a purchase counts two epochs later, and a report
/// made late in an epoch voids the offender's draws in the next one instead of changing it.
#[test]
fn a_late_report_or_purchase_cannot_change_a_committed_roster() {
    let mut net = Net::new(&[10, 10, 10]);
    let slots = net.chain.spec().params.slots_per_epoch;
    let association = testkit::association().address();
    let commitment = net.keys[BUYER].reveal_commitment(0);
    net.submit(BUYER, buy(association, 10, Some(commitment))).unwrap();
    rosters_agree(&net);
    // To the second-to-last slot of epoch 1: the roster of epoch 2 is committed already.
    while net.chain.head().header().slot + 2 < 2 * slots {
        net.forge(vec![]).unwrap();
        rosters_agree(&net);
    }
    let offender = forger_key(1);
    let slot = net.chain.head().header().slot + 1;
    let rank = net.chain.rank_of(&offender.address(), slot).unwrap().unwrap();
    let (one, two) = two_blocks(&net, &offender, slot, rank);
    net.submit(BUYER, report(&one, &two)).unwrap();
    assert_eq!(net.epoch(), 1, "reported in the epoch's last slot");
    rosters_agree(&net);
    let mut voided = 0;
    while net.epoch() < 5 {
        let next = net.chain.head().header().slot + 1;
        if epoch_of(next, slots) == 2 {
            let drawn_first = (0..3).chain([BUYER]).all(|i| {
                net.keys[i].address() == offender.address()
                    || net.chain.rank_of(&net.keys[i].address(), next).unwrap() != Some(0)
            });
            voided += u64::from(drawn_first);
        }
        net.forge(vec![]).unwrap();
        rosters_agree(&net);
        assert_ne!(net.chain.head().header().forger, offender.address(), "the offender signed");
    }
    assert!(voided > 0, "no slot of epoch 2 drew the offender first");
    // The buyer's ticket, bought in epoch 0, weighs from epoch 2.
    assert_eq!(net.weight(&net.keys[BUYER].address(), 2), 10);
}

/// After a whole epoch without blocks, the state holds no commitment to the roster of the next
/// one: its first block is signed at the open rank, writes the commitments, and the drawn ranks
/// come back with the block after.
#[test]
fn after_an_epoch_without_blocks_the_first_block_is_signed_at_the_open_rank() {
    let mut net = Net::new(&[10, 10]);
    net.forge(vec![]).unwrap();
    let params = net.chain.spec().params.clone();
    let slot = 2 * params.slots_per_epoch + 1;
    let forgers = [forger_key(0), forger_key(1)];
    for forger in &forgers {
        assert_eq!(net.chain.rank_of(&forger.address(), slot).unwrap(), Some(params.fallback_ranks));
    }
    let open_time = testkit::slot_time(net.chain.spec(), slot, params.fallback_ranks);
    let open = net.chain.builder(&forgers[0], slot, open_time).unwrap().seal(&forgers[0]).unwrap().block;
    // The same block claiming rank 0: refused, whoever the roster would draw.
    let mut header = open.header().clone();
    header.rank = 0;
    header.timestamp_ms = testkit::slot_time(net.chain.spec(), slot, 0);
    let early = Block { header: header.sign(&forgers[0], &net.chain.genesis_hash()), transactions: vec![] };
    let error = net.chain.import(early).unwrap_err();
    assert!(matches!(error, ChainError::Invalid(BlockError::NotEntitled { rank: 0, .. })), "{error}");

    net.chain.import(open).unwrap();
    let epochs: Vec<u64> =
        read_rosters(net.chain.store(), net.height()).unwrap().commitments.iter().map(|c| c.epoch).collect();
    assert_eq!(epochs, [2, 3]);
    rosters_agree(&net);
    let next = slot + 1;
    assert!(forgers.iter().any(|f| net.chain.rank_of(&f.address(), next).unwrap() == Some(0)));
    net.forge(vec![]).unwrap();
    rosters_agree(&net);
}
