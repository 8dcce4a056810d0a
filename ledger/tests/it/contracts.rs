//! Contracts through the real ledger: deployments and calls in blocks, the fee as gas, failed
//! calls that pay and change nothing else, and a second node that replays the same blocks to
//! the same state.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::contract::contract_address;
use goodwill_ledger::state::{read_contract, read_contract_entry};
use goodwill_ledger::testkit::{self, CHAIN_ID};
use goodwill_ledger::{
    Address, Amount, ApplyError, Block, Chain, Keypair, MemoryStore, Payload, Receipt, Store, Transaction,
    TransactionBody, TxError,
};

const NFT: &str = include_str!("../../../examples/contracts/nft.star");

struct Net {
    chain: Chain<MemoryStore>,
    /// Another node that imports every block.
    replica: Chain<MemoryStore>,
    nonces: Vec<u64>,
}

impl Net {
    fn new() -> Net {
        let open = || Chain::open(MemoryStore::new(), testkit::spec()).unwrap();
        Net { chain: open(), replica: open(), nonces: vec![0; 4] }
    }

    fn tx(&mut self, who: usize, fee: u64, payload: Payload) -> Transaction {
        let key = testkit::account(who);
        let tx = TransactionBody {
            chain_id: CHAIN_ID.into(),
            sender: key.address(),
            nonce: self.nonces[who],
            fee: Amount(fee),
            payload,
        }
        .sign(&key, &testkit::genesis_hash());
        self.nonces[who] += 1;
        tx
    }

    fn forge(&mut self, transactions: Vec<Transaction>) -> Result<Block, TxError> {
        let slot = self.chain.head().header().slot + 1;
        let forger = testkit::forger();
        let time = testkit::slot_time(self.chain.spec(), slot, 0);
        let mut builder = self.chain.builder(&forger, slot, time).unwrap();
        for tx in transactions {
            match builder.push(tx) {
                Ok(()) => {}
                Err(ApplyError::Invalid(error)) => return Err(error),
                Err(other) => panic!("{other}"),
            }
        }
        let applied = builder.seal(&forger).unwrap();
        let block = applied.block.clone();
        self.chain.commit(applied).unwrap();
        self.replica.import(block.clone()).unwrap();
        assert_eq!(self.replica.head().header().state_root, self.chain.head().header().state_root);
        Ok(block)
    }

    /// Commits one transaction and returns its receipt.
    fn run(&mut self, who: usize, fee: u64, payload: Payload) -> Receipt {
        let tx = self.tx(who, fee, payload);
        let block = self.forge(vec![tx]).unwrap();
        self.chain.store().receipts(&block.hash()).unwrap().unwrap().remove(0)
    }

    fn balance(&self, address: &Address) -> u64 {
        self.chain.account(address).unwrap().balance.0
    }

    fn entry(&self, contract: &Address, key: &str) -> Option<String> {
        read_contract_entry(self.chain.store(), self.chain.head().header().height, contract, key).unwrap()
    }
}

fn call(contract: Address, function: &str, args: &str, value: u64, gas_limit: u64) -> Payload {
    Payload::CallContract {
        contract,
        function: function.into(),
        args: args.into(),
        value: Amount(value),
        gas_limit,
    }
}

fn deploy(code: &str, args: &str, gas_limit: u64) -> Payload {
    Payload::DeployContract { code: code.into(), args: args.into(), gas_limit }
}

#[test]
fn an_nft_is_deployed_minted_and_sold_in_blocks() {
    let mut net = Net::new();
    let (artist, buyer) = (testkit::account(0).address(), testkit::account(1).address());
    let nft = contract_address(&artist, 0);
    let receipt = net.run(0, 500_000, deploy(NFT, r#"["Birds"]"#, 500_000));
    let deployed = receipt.contract.as_ref().unwrap();
    assert_eq!(deployed.contract, nft);
    assert_eq!(deployed.result, Ok("null".into()));
    // The fee is the gas used at a price of 1, and the rest went back.
    assert_eq!(receipt.fee.0, deployed.gas_used);
    let record = read_contract(net.chain.store(), net.chain.head().header().height, &nft).unwrap().unwrap();
    assert_eq!((record.creator, record.code.as_str(), record.storage_entries), (artist, NFT, 3));

    let receipt = net.run(0, 100_000, call(nft, "mint", r#"["robin", "ipfs://robin"]"#, 0, 100_000));
    assert_eq!(receipt.contract.as_ref().unwrap().events[0].name, "minted");
    net.run(0, 100_000, call(nft, "offer", r#"["robin", 5000]"#, 0, 100_000));

    let (artist_before, buyer_before) = (net.balance(&artist), net.balance(&buyer));
    let receipt = net.run(1, 100_000, call(nft, "buy", r#"["robin"]"#, 5_000, 100_000));
    let bought = receipt.contract.as_ref().unwrap();
    assert_eq!(bought.result, Ok(format!("\"{buyer}\"")));
    assert_eq!(net.balance(&artist), artist_before + 5_000, "the price went to the seller");
    assert_eq!(net.balance(&buyer), buyer_before - 5_000 - receipt.fee.0);
    assert_eq!(net.balance(&nft), 0, "the contract passed the price on");
    let token: serde_json::Value = serde_json::from_str(&net.entry(&nft, "token:robin").unwrap()).unwrap();
    assert_eq!(token["owner"], buyer.to_string());
    assert_eq!(net.entry(&nft, "offer:robin"), None, "the offer was deleted from the state tree");
}

#[test]
fn a_failed_call_pays_its_gas_and_changes_nothing_else() {
    let mut net = Net::new();
    let artist = testkit::account(0).address();
    let nft = contract_address(&artist, 0);
    net.run(0, 500_000, deploy(NFT, r#"["Birds"]"#, 500_000));
    net.run(0, 100_000, call(nft, "mint", r#"["robin", "ipfs://robin"]"#, 0, 100_000));
    let buyer = testkit::account(1).address();
    let before = (net.balance(&buyer), net.balance(&nft), net.entry(&nft, "token:robin"));
    let forger_before = net.balance(&testkit::forger().address());
    // Not for sale: the call fails; the buyer pays the gas it used, and keeps the 5,000.
    let receipt = net.run(1, 100_000, call(nft, "buy", r#"["robin"]"#, 5_000, 100_000));
    let failed = receipt.contract.as_ref().unwrap();
    assert!(failed.result.as_ref().unwrap_err().contains("not for sale"), "{failed:?}");
    assert!(failed.events.is_empty());
    assert!(receipt.fee.0 >= 10 && receipt.fee.0 < 100_000, "{receipt:?}");
    assert_eq!(
        (net.balance(&buyer), net.balance(&nft), net.entry(&nft, "token:robin")),
        (before.0 - receipt.fee.0, before.1, before.2)
    );
    let reward = net.chain.spec().params.block_reward.0;
    assert_eq!(net.balance(&testkit::forger().address()), forger_before + reward + receipt.fee.0);
    assert_eq!(net.chain.account(&buyer).unwrap().nonce, 1, "the failed call used its nonce");
}

#[test]
fn running_out_of_gas_costs_the_whole_fee() {
    let mut net = Net::new();
    let sender = testkit::account(2).address();
    let spin = "def spin():\n    for i in range(2000000000):\n        pass\n";
    net.run(2, 100_000, deploy(spin, "[]", 100_000));
    let contract = contract_address(&sender, 0);
    let before = net.balance(&sender);
    // A gas price of 2: 60,000 gas for a fee of 120,000.
    let receipt = net.run(2, 120_000, call(contract, "spin", "[]", 0, 60_000));
    assert_eq!(receipt.contract.as_ref().unwrap().gas_used, 60_000);
    assert!(receipt.contract.as_ref().unwrap().result.as_ref().unwrap_err().contains("out of gas"));
    assert_eq!(receipt.fee, Amount(120_000));
    assert_eq!(net.balance(&sender), before - 120_000);
}

#[test]
fn contract_transactions_that_cannot_run_are_refused() {
    let mut net = Net::new();
    let nobody = Keypair::insecure_dev("nobody").address();
    let cases = [
        (call(nobody, "f", "[]", 0, 1_000), 1_000, "no contract"),
        (deploy("def f(:\n", "[]", 1_000), 1_000, "invalid contract"),
        (deploy("def f():\n    pass\n", "{}", 1_000), 1_000, "JSON array"),
        (deploy("def f():\n    pass\n", "[]", 1_000), 999, "1 base unit per gas"),
        (call(nobody, "_private", "[]", 0, 1_000), 1_000, "public function"),
    ];
    for (payload, fee, needle) in cases {
        let tx = net.tx(3, fee, payload);
        let error = net.forge(vec![tx]).unwrap_err();
        assert!(error.to_string().contains(needle), "{error}");
        net.nonces[3] -= 1;
    }
    assert_eq!(net.chain.account(&testkit::account(3).address()).unwrap().nonce, 0);
}

// Native scheduled payments.

fn schedule(to: Address, amount: u64, every_slots: u64, times: u32) -> Payload {
    Payload::SchedulePayment { to, amount: Amount(amount), every_slots, times }
}

fn slot(net: &Net) -> u64 {
    net.chain.head().header().slot
}

fn schedules(net: &Net) -> Vec<goodwill_ledger::state::ScheduledPayment> {
    goodwill_ledger::state::read_schedules(net.chain.store(), net.chain.head().header().height).unwrap()
}

#[test]
fn scheduled_payments_run_at_their_slots_and_then_end() {
    let mut net = Net::new();
    let payee = Keypair::insecure_dev("landlord").address();
    let receipt = net.run(0, 10, schedule(payee, 100, 2, 3));
    let (id, start) = (receipt.transaction_id, slot(&net));
    assert_eq!(schedules(&net)[0].id, id);
    let mut paid_at = Vec::new();
    while slot(&net) < start + 10 {
        let before = net.balance(&payee);
        net.forge(vec![]).unwrap();
        if net.balance(&payee) > before {
            assert_eq!(net.balance(&payee), before + 100, "one payment at a time, never in part");
            paid_at.push(slot(&net) - start);
        }
    }
    assert_eq!(paid_at, [2, 4, 6]);
    assert!(schedules(&net).is_empty(), "a finished schedule leaves the queue");
}

/// The attack: one account takes every slot of the chain's schedule queue (1,024), so no one
/// else can schedule a payment. One account owns at most 16 active schedules; others still can.
#[test]
fn one_account_cannot_take_every_schedule() {
    let mut net = Net::new();
    let payee = Keypair::insecure_dev("payee").address();
    let per_account = goodwill_ledger::execute::MAX_SCHEDULES_PER_ACCOUNT;
    let mine: Vec<Transaction> =
        (0..per_account).map(|_| net.tx(0, 10, schedule(payee, 1, 1_000_000, 10))).collect();
    net.forge(mine).unwrap();
    let one_more = net.tx(0, 10, schedule(payee, 1, 1_000_000, 10));
    assert_eq!(net.forge(vec![one_more]).unwrap_err(), TxError::TooManySchedulesOfOwner { max: per_account });
    net.nonces[0] -= 1;
    assert_eq!(schedules(&net).len(), per_account);
    net.run(1, 10, schedule(payee, 1, 1_000_000, 10));
    assert_eq!(schedules(&net).len(), per_account + 1, "another account still schedules");
}

#[test]
fn an_underfunded_payment_is_skipped_and_counted() {
    let mut net = Net::new();
    let payee = Keypair::insecure_dev("payee").address();
    // More than the sender holds (testkit accounts start with 1,000 coins).
    let too_much = Amount::coins(2_000).0;
    net.run(2, 10, schedule(payee, too_much, 1, 2));
    net.forge(vec![]).unwrap();
    let record = &schedules(&net)[0];
    assert_eq!((record.paid, record.skipped, record.remaining), (0, 1, 1));
    assert_eq!(net.balance(&payee), 0);
    net.forge(vec![]).unwrap();
    assert!(schedules(&net).is_empty());
    assert_eq!(net.balance(&payee), 0);
}

#[test]
fn payments_due_together_run_in_id_order_and_cancelling_stops_a_schedule() {
    let mut net = Net::new();
    let owner = Keypair::insecure_dev("tenant");
    // An owner who can pay one of two payments due in the same slot.
    net.run(0, 10, Payload::Transfer { to: owner.address(), amount: Amount(150 + 30) });
    let (first, second) =
        (Keypair::insecure_dev("first").address(), Keypair::insecure_dev("second").address());
    let mut nonce = 0;
    let mut signed = |payload: Payload| {
        let tx = TransactionBody {
            chain_id: CHAIN_ID.into(),
            sender: owner.address(),
            nonce,
            fee: Amount(10),
            payload,
        }
        .sign(&owner, &testkit::genesis_hash());
        nonce += 1;
        tx
    };
    let (a, b) = (signed(schedule(first, 100, 1, 1)), signed(schedule(second, 100, 1, 1)));
    let lower = if a.id() < b.id() { first } else { second };
    net.forge(vec![a, b]).unwrap();
    net.forge(vec![]).unwrap();
    assert_eq!(net.balance(&lower), 100, "the lower schedule id paid");
    assert_eq!(net.balance(&first) + net.balance(&second), 100, "the other was skipped, not paid in part");

    // A long schedule, cancelled after two payments; only its owner may cancel it.
    let payee = Keypair::insecure_dev("gym").address();
    let receipt = net.run(1, 10, schedule(payee, 7, 1, 100));
    net.forge(vec![]).unwrap();
    net.forge(vec![]).unwrap();
    assert_eq!(net.balance(&payee), 14);
    let stranger = net.tx(3, 10, Payload::CancelSchedule { schedule: receipt.transaction_id });
    assert!(matches!(net.forge(vec![stranger]), Err(TxError::UnknownSchedule(_))));
    net.nonces[3] -= 1;
    net.run(1, 10, Payload::CancelSchedule { schedule: receipt.transaction_id });
    let paid = net.balance(&payee);
    net.forge(vec![]).unwrap();
    net.forge(vec![]).unwrap();
    assert_eq!(net.balance(&payee), paid, "no payment after the cancellation");
    assert!(schedules(&net).is_empty());
}

#[test]
fn the_new_transaction_kinds_survive_the_wire() {
    let mut net = Net::new();
    let to = Keypair::insecure_dev("to").address();
    let payloads = [
        deploy("def f():\n    return 1\n", "[1, \"two\"]", 12_345),
        call(to, "f", "[]", 7, 999),
        schedule(to, 5, 3, 4),
        Payload::CancelSchedule { schedule: goodwill_ledger::Hash([9; 32]) },
    ];
    for payload in payloads {
        let tx = net.tx(0, 20_000, payload);
        let decoded = Transaction::decode(bytes::Bytes::from(tx.encode()), 1 << 20).unwrap();
        assert_eq!(decoded.body(), tx.body());
        assert_eq!(decoded.id(), tx.id());
        assert!(decoded.verify_signature(&testkit::genesis_hash()));
    }
}

#[test]
fn a_transaction_above_the_gas_cap_breaks_a_stateless_rule() {
    let cap = goodwill_ledger::contract::MAX_TRANSACTION_GAS;
    let mut net = Net::new();
    let tx = net.tx(0, cap + 1, deploy("def f():\n    return 1\n", "[]", cap + 1));
    assert_eq!(
        goodwill_ledger::execute::check_stateless(&tx, net.chain.spec(), &net.chain.genesis_hash()),
        Err(TxError::GasLimitTooHigh { gas_limit: cap + 1, max: cap })
    );
    assert!(matches!(net.forge(vec![tx]), Err(TxError::GasLimitTooHigh { .. })));
}

#[test]
fn a_block_holds_contract_transactions_up_to_the_chains_gas_limit_and_no_more() {
    let cap = goodwill_ledger::contract::MAX_TRANSACTION_GAS;
    let mut net = Net::new();
    let max = net.chain.spec().params.max_block_gas;
    let fitting = max / cap;
    let txs: Vec<Transaction> =
        (0..=fitting).map(|_| net.tx(0, cap, deploy("def f():\n    return 1\n", "[]", cap))).collect();
    let transfer = net.tx(1, 10, Payload::Transfer { to: testkit::account(2).address(), amount: Amount(5) });
    // The forger's builder takes what fits and refuses the next.
    let forger = testkit::forger();
    let slot = net.chain.head().header().slot + 1;
    let time = testkit::slot_time(net.chain.spec(), slot, 0);
    let mut builder = net.chain.builder(&forger, slot, time).unwrap();
    for tx in &txs[..fitting as usize] {
        assert!(builder.fits(tx));
        builder.push(tx.clone()).unwrap();
    }
    let over = txs[fitting as usize].clone();
    assert!(!builder.fits(&over), "the block's gas is spent");
    assert!(matches!(builder.push(over.clone()), Err(ApplyError::Invalid(TxError::BlockGasFull { .. }))));
    // A transfer still fits: only contract transactions count against the gas.
    assert!(builder.fits(&transfer));
    let applied = builder.seal(&forger).unwrap();

    // A forger that ignores the limit: the same block with one more contract transaction,
    // signed again, is invalid on import, and changes nothing.
    let mut transactions = applied.block.transactions.clone();
    transactions.push(over);
    let leaves: Vec<_> = transactions.iter().map(Transaction::leaf).collect();
    let header = goodwill_ledger::Header {
        transactions_root: goodwill_ledger::transactions_root(&leaves),
        transaction_count: transactions.len() as u32,
        ..applied.block.header().clone()
    };
    let greedy = Block { header: header.sign(&forger, &net.chain.genesis_hash()), transactions };
    let head = net.replica.head().hash();
    let error = net.replica.import(greedy).unwrap_err().to_string();
    assert!(error.contains("gas"), "{error}");
    assert_eq!(net.replica.head().hash(), head);
}
