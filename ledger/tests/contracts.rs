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

const NFT: &str = include_str!("../../examples/contracts/nft.star");

struct Net {
    chain: Chain<MemoryStore>,
    /// Another node that imports every block.
    replica: Chain<MemoryStore>,
    nonces: Vec<u64>,
}

impl Net {
    fn new() -> Net {
        let open = || Chain::open(MemoryStore::new(), testkit::spec(4)).unwrap();
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
        .sign(&key);
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
