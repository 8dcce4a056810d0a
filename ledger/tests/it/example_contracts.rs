//! The example contracts in `examples/contracts/`, deployed and called in blocks of a real
//! chain (each call its own transaction, fees charged as gas), each rule they promise tried and
//! broken: a refused call fails in its block and changes nothing but its sender's fee.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use goodwill_ledger::contract::contract_address;
use goodwill_ledger::state::read_contract;
use goodwill_ledger::testkit::{self, CHAIN_ID};
use goodwill_ledger::{
    Address, Amount, Chain, Keypair, MemoryStore, Payload, Receipt, Store, Transaction, TransactionBody,
};

/// Gas per call, at a price of 1.
const GAS: u64 = 2_000_000;
/// What the bank gives each party before its first transaction.
const FUNDS: u64 = 1_000_000_000;

fn who(name: &str) -> Address {
    Keypair::insecure_dev(name).address()
}

/// One contract on a chain of its own, called by named parties.
struct Contract {
    chain: Chain<MemoryStore>,
    address: Address,
    nonces: HashMap<String, u64>,
    /// Fees and attached coins each party spent.
    spent: HashMap<String, u64>,
}

impl Contract {
    fn deploy(code: &str, args: &str, owner: &str) -> Contract {
        let chain = Chain::open(MemoryStore::new(), testkit::spec()).unwrap();
        let mut contract =
            Contract { chain, address: Address::ZERO, nonces: HashMap::new(), spent: HashMap::new() };
        contract.address = contract_address(&who(owner), 0);
        let receipt = contract.send(
            owner,
            Payload::DeployContract { code: code.into(), args: args.into(), gas_limit: GAS },
            0,
        );
        assert!(receipt.contract.as_ref().unwrap().result.is_ok(), "deploy: {receipt:?}");
        contract
    }

    /// Forges the next block with `transactions`; all must be valid.
    fn forge(&mut self, transactions: Vec<Transaction>) -> Vec<Receipt> {
        let slot = self.chain.head().header().slot + 1;
        let forger = testkit::forger();
        let time = testkit::slot_time(self.chain.spec(), slot, 0);
        let mut builder = self.chain.builder(&forger, slot, time).unwrap();
        for tx in transactions {
            builder.push(tx).unwrap();
        }
        let applied = builder.seal(&forger).unwrap();
        let hash = applied.block.hash();
        self.chain.commit(applied).unwrap();
        self.chain.store().receipts(&hash).unwrap().unwrap()
    }

    /// Sends `payload` from `name` (funding it first if it is new), in a block of its own.
    fn send(&mut self, name: &str, payload: Payload, value: u64) -> Receipt {
        let mut transactions = Vec::new();
        if !self.nonces.contains_key(name) {
            let bank = testkit::account(0);
            let nonce = self.chain.account(&bank.address()).unwrap().nonce;
            let fund = TransactionBody {
                chain_id: CHAIN_ID.into(),
                sender: bank.address(),
                nonce,
                fee: Amount(10),
                payload: Payload::Transfer { to: who(name), amount: Amount(FUNDS) },
            };
            transactions.push(fund.sign(&bank, &testkit::genesis_hash()));
            self.nonces.insert(name.to_string(), 0);
        }
        let key = Keypair::insecure_dev(name);
        let nonce = self.nonces[name];
        let body = TransactionBody {
            chain_id: CHAIN_ID.into(),
            sender: key.address(),
            nonce,
            fee: Amount(GAS),
            payload,
        };
        transactions.push(body.sign(&key, &testkit::genesis_hash()));
        *self.nonces.get_mut(name).unwrap() += 1;
        let receipt = self.forge(transactions).pop().unwrap();
        let kept_value = receipt.contract.as_ref().is_some_and(|c| c.result.is_ok());
        *self.spent.entry(name.to_string()).or_default() +=
            receipt.fee.0 + if kept_value { value } else { 0 };
        receipt
    }

    fn call(&mut self, caller: &str, function: &str, args: &str, value: u64) -> Result<String, String> {
        let payload = Payload::CallContract {
            contract: self.address,
            function: function.into(),
            args: args.into(),
            value: Amount(value),
            gas_limit: GAS,
        };
        self.send(caller, payload, value).contract.unwrap().result
    }

    fn ok(&mut self, caller: &str, function: &str, args: &str, value: u64) -> String {
        self.call(caller, function, args, value).unwrap_or_else(|e| panic!("{function}{args}: {e}"))
    }

    /// What a refusal may not change: the contract's record and balance, and every party's
    /// balance but the caller's (who pays the fee).
    fn snapshot(&self, caller: &str) -> (String, u64, Vec<(String, u64)>) {
        let height = self.chain.head().header().height;
        let record = read_contract(self.chain.store(), height, &self.address).unwrap();
        let mut parties: Vec<(String, u64)> = self
            .nonces
            .keys()
            .filter(|name| name.as_str() != caller)
            .map(|name| (name.clone(), self.balance(name)))
            .collect();
        parties.sort();
        (format!("{record:?}"), self.contract_balance(), parties)
    }

    /// Fails in its block with a message containing `needle`, and changes nothing else.
    fn refused(&mut self, caller: &str, function: &str, args: &str, value: u64, needle: &str) {
        let before = self.snapshot(caller);
        let fee_payer_before = self.nonces.contains_key(caller).then(|| self.balance(caller));
        match self.call(caller, function, args, value) {
            Err(message) => assert!(message.contains(needle), "{function}: {message}"),
            Ok(result) => panic!("{function}{args}: expected a refusal containing {needle:?}, got {result}"),
        }
        assert_eq!(before, self.snapshot(caller), "{function} changed state");
        if let Some(before) = fee_payer_before {
            let fee = before - self.balance(caller);
            assert!(fee > 0 && fee < GAS, "{caller} paid {fee} for a refused call, its attached coins back");
        }
    }

    fn balance(&self, name: &str) -> u64 {
        self.chain.account(&who(name)).unwrap().balance.0
    }

    fn contract_balance(&self) -> u64 {
        self.chain.account(&self.address).unwrap().balance.0
    }

    /// What `name` received from the contract.
    fn paid(&self, name: &str) -> u64 {
        let funded = if self.nonces.contains_key(name) { FUNDS } else { 0 };
        self.balance(name) + self.spent.get(name).copied().unwrap_or(0) - funded
    }

    /// Forges empty blocks until the next block has height `height`.
    fn next_block_is(&mut self, height: u64) {
        assert!(self.chain.head().header().height < height, "already past height {height}");
        while self.chain.head().header().height + 1 < height {
            self.forge(vec![]);
        }
    }

    fn height(&self) -> u64 {
        self.chain.head().header().height
    }

    /// Whether deploying `code` with `args` fails.
    fn deploy_fails(code: &str, args: &str) -> bool {
        let chain = Chain::open(MemoryStore::new(), testkit::spec()).unwrap();
        let mut contract =
            Contract { chain, address: Address::ZERO, nonces: HashMap::new(), spent: HashMap::new() };
        let payload = Payload::DeployContract { code: code.into(), args: args.into(), gas_limit: GAS };
        contract.send("o", payload, 0).contract.unwrap().result.is_err()
    }
}

#[test]
fn a_will_pays_the_heirs_only_after_the_owner_falls_silent() {
    let code = include_str!("../../../examples/contracts/will.star");
    let (anna, ben) = (who("anna"), who("ben"));
    let silence = 20;
    let heirs = format!(r#"[{{"{anna}": 60, "{ben}": 40}}, {silence}]"#);
    let mut will = Contract::deploy(code, &heirs, "owner");
    let deployed = will.height();
    assert!(Contract::deploy_fails(code, &format!(r#"[{{"{anna}": 60, "{ben}": 30}}, {silence}]"#)));

    will.ok("owner", "deposit", "[]", 1_000);
    will.refused("anna", "deposit", "[]", 5, "only the owner");
    // Within the silence, nobody claims; the owner's check-in moves it.
    will.next_block_is(deployed + silence);
    will.refused("anna", "claim", "[]", 0, &format!("claims open at block {}", deployed + silence + 1));
    will.ok("owner", "check_in", "[]", 0);
    let seen = will.height();
    will.next_block_is(seen + silence);
    will.refused("anna", "claim", "[]", 0, &format!("claims open at block {}", seen + silence + 1));
    // Silent long enough: each heir claims once, from the same estate; strangers get nothing.
    will.refused("stranger", "claim", "[]", 0, "is not an heir");
    assert_eq!(will.ok("anna", "claim", "[]", 0), "600");
    will.refused("anna", "claim", "[]", 0, "already claimed");
    will.refused("owner", "check_in", "[]", 0, "too late");
    assert_eq!(will.ok("ben", "claim", "[]", 0), "400");
    assert_eq!((will.paid("anna"), will.paid("ben")), (600, 400));
    assert_eq!(will.contract_balance(), 0);
}

#[test]
fn an_nft_is_unique_has_one_owner_and_sells_for_its_price() {
    let code = include_str!("../../../examples/contracts/nft.star");
    let mut nft = Contract::deploy(code, r#"["Goodwill Birds"]"#, "artist");
    assert_eq!(nft.ok("artist", "mint", r#"["robin", "ipfs://robin"]"#, 0), r#""robin""#);
    nft.refused("artist", "mint", r#"["robin", "ipfs://copy"]"#, 0, "already exists");
    nft.refused("mallory", "mint", r#"["crow", "ipfs://crow"]"#, 0, "only the creator");
    let artist = who("artist").to_string();
    assert_eq!(nft.ok("bob", "owner_of", r#"["robin"]"#, 0), format!("\"{artist}\""));
    // Only the owner offers; a buyer attaches exactly the price, which the seller receives.
    nft.refused("mallory", "offer", r#"["robin", 500]"#, 0, "only the owner");
    nft.ok("artist", "offer", r#"["robin", 500]"#, 0);
    nft.refused("bob", "buy", r#"["robin"]"#, 499, "attach exactly 500");
    nft.ok("bob", "buy", r#"["robin"]"#, 500);
    assert_eq!(nft.paid("artist"), 500);
    let bob = who("bob").to_string();
    assert_eq!(nft.ok("carol", "owner_of", r#"["robin"]"#, 0), format!("\"{bob}\""));
    // The sale closed the offer; the old owner can neither sell nor give it again.
    nft.refused("carol", "buy", r#"["robin"]"#, 500, "not for sale");
    nft.refused("artist", "give", &format!(r#"["robin", "{artist}"]"#), 0, "only the owner");
    let carol = who("carol").to_string();
    nft.ok("bob", "give", &format!(r#"["robin", "{carol}"]"#), 0);
    assert_eq!(nft.ok("anyone", "owner_of", r#"["robin"]"#, 0), format!("\"{carol}\""));
    nft.refused("anyone", "owner_of", r#"["sparrow"]"#, 0, "no token sparrow");
}

#[test]
fn a_capped_game_asset_holds_its_supply_and_price_caps() {
    let code = include_str!("../../../examples/contracts/game_asset.star");
    let mut gold = Contract::deploy(code, r#"["Gold", 100, 50]"#, "studio");
    gold.refused("studio", "set_price", "[51]", 0, "above the cap of 50");
    gold.refused("player", "set_price", "[10]", 0, "only the issuer");
    gold.ok("studio", "set_price", "[40]", 0);
    gold.refused("ann", "buy", "[10]", 399, "attach exactly 400");
    assert_eq!(gold.ok("ann", "buy", "[10]", 400), "10");
    assert_eq!(gold.paid("studio"), 400);
    gold.ok("bob", "buy", "[90]", 3_600);
    // The supply is exhausted: no more units, whatever is paid.
    gold.refused("carl", "buy", "[1]", 40, "only 0 units are left");
    // Players trade, never above the cap.
    gold.refused("ann", "list_units", "[5, 60]", 0, "above the cap");
    gold.refused("ann", "list_units", "[11, 50]", 0, "you hold 10 units");
    gold.ok("ann", "list_units", "[5, 50]", 0);
    let ann = who("ann").to_string();
    gold.refused("carl", "buy_listed", &format!(r#"["{ann}", 6]"#), 300, "does not offer 6 units");
    gold.ok("carl", "buy_listed", &format!(r#"["{ann}", 5]"#), 250);
    assert_eq!(gold.paid("ann"), 250);
    let supply: serde_json::Value = serde_json::from_str(&gold.ok("x", "info", "[]", 0)).unwrap();
    assert_eq!(supply["supply"], 100);
    let held: u64 = ["ann", "bob", "carl"]
        .iter()
        .map(|p| gold.ok("x", "balance_of", &format!(r#"["{}"]"#, who(p)), 0).parse::<u64>().unwrap())
        .sum();
    assert_eq!(held, 100, "units are only moved, never made outside `buy`");
}

#[test]
fn a_splitter_shares_every_payment_by_weight_without_leftovers() {
    let code = include_str!("../../../examples/contracts/splitter.star");
    let (a, b, c) = (who("a"), who("b"), who("c"));
    let mut split = Contract::deploy(code, &format!(r#"[{{"{a}": 2, "{b}": 1, "{c}": 1}}]"#), "organiser");
    split.ok("payer", "pay", "[]", 1_001);
    split.ok("payer", "pay", "[]", 3);
    let total = split.paid("a") + split.paid("b") + split.paid("c");
    assert_eq!(total, 1_004, "nothing stays in the splitter");
    assert_eq!(split.contract_balance(), 0);
    assert!(split.paid("a") >= 500 && split.paid("b") >= 250 && split.paid("c") >= 250);
    split.refused("payer", "pay", "[]", 0, "attach the coins");
    assert!(Contract::deploy_fails(code, &format!(r#"[{{"{a}": 0}}]"#)));
}
