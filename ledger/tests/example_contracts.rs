//! The example contracts in `examples/contracts/`, run the way the ledger runs calls (attached
//! coins credited first and returned on failure, effects applied only on success), each rule
//! they promise tried and broken.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::contract::{ContractError, Entry, Scratch};
use goodwill_ledger::{Address, Amount, Keypair};

const GAS: u64 = 5_000_000;

fn who(name: &str) -> Address {
    Keypair::insecure_dev(name).address()
}

struct Contract(Scratch);

impl Contract {
    fn deploy(code: &str, args: &str, owner: &str) -> Contract {
        let mut scratch = Scratch::new(code, who("contract"));
        let outcome = scratch.run(Entry::Deploy, args, who(owner), Amount::ZERO, GAS);
        assert!(outcome.result.is_ok(), "deploy: {:?}", outcome.result);
        Contract(scratch)
    }

    fn call(
        &mut self,
        caller: &str,
        function: &str,
        args: &str,
        value: u64,
    ) -> Result<String, ContractError> {
        self.0.run(Entry::Call(function), args, who(caller), Amount(value), GAS).result
    }

    fn ok(&mut self, caller: &str, function: &str, args: &str, value: u64) -> String {
        self.call(caller, function, args, value).unwrap_or_else(|e| panic!("{function}{args}: {e}"))
    }

    /// Fails with a message containing `needle`, and changes nothing.
    fn refused(&mut self, caller: &str, function: &str, args: &str, value: u64, needle: &str) {
        let before = (self.0.storage.clone(), self.0.balance, self.0.paid.clone());
        match self.call(caller, function, args, value) {
            Err(ContractError::Failed(message)) => assert!(message.contains(needle), "{function}: {message}"),
            other => panic!("{function}{args}: expected a refusal containing {needle:?}, got {other:?}"),
        }
        assert_eq!(
            before,
            (self.0.storage.clone(), self.0.balance, self.0.paid.clone()),
            "{function} changed state"
        );
    }

    fn paid(&self, name: &str) -> u64 {
        self.0.paid.get(&who(name)).map_or(0, |a| a.0)
    }
}

#[test]
fn a_will_pays_the_heirs_only_after_the_owner_falls_silent() {
    let code = include_str!("../../examples/contracts/will.star");
    let (anna, ben) = (who("anna"), who("ben"));
    let heirs = format!(r#"[{{"{anna}": 60, "{ben}": 40}}, 100]"#);
    let mut will = Contract::deploy(code, &heirs, "owner");
    let mut bad = Scratch::new(code, who("contract"));
    let uneven = format!(r#"[{{"{anna}": 60, "{ben}": 30}}, 100]"#);
    assert!(bad.run(Entry::Deploy, &uneven, who("owner"), Amount::ZERO, GAS).result.is_err());

    will.ok("owner", "deposit", "[]", 1_000);
    will.refused("anna", "deposit", "[]", 5, "only the owner");
    // Within the silence, nobody claims; the owner's check-in moves it.
    will.0.height = 101;
    will.refused("anna", "claim", "[]", 0, "claims open at block 102");
    will.ok("owner", "check_in", "[]", 0);
    will.0.height = 201;
    will.refused("anna", "claim", "[]", 0, "claims open at block 202");
    // Silent long enough: each heir claims once, from the same estate; strangers get nothing.
    will.0.height = 202;
    will.refused("stranger", "claim", "[]", 0, "is not an heir");
    assert_eq!(will.ok("anna", "claim", "[]", 0), "600");
    will.refused("anna", "claim", "[]", 0, "already claimed");
    will.refused("owner", "check_in", "[]", 0, "too late");
    assert_eq!(will.ok("ben", "claim", "[]", 0), "400");
    assert_eq!((will.paid("anna"), will.paid("ben")), (600, 400));
    assert_eq!(will.0.balance, Amount::ZERO);
}

#[test]
fn an_nft_is_unique_has_one_owner_and_sells_for_its_price() {
    let code = include_str!("../../examples/contracts/nft.star");
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
    let code = include_str!("../../examples/contracts/game_asset.star");
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
    let code = include_str!("../../examples/contracts/splitter.star");
    let (a, b, c) = (who("a"), who("b"), who("c"));
    let mut split = Contract::deploy(code, &format!(r#"[{{"{a}": 2, "{b}": 1, "{c}": 1}}]"#), "organiser");
    split.ok("payer", "pay", "[]", 1_001);
    split.ok("payer", "pay", "[]", 3);
    let total = split.paid("a") + split.paid("b") + split.paid("c");
    assert_eq!(total, 1_004, "nothing stays in the splitter");
    assert_eq!(split.0.balance, Amount::ZERO);
    assert!(split.paid("a") >= 500 && split.paid("b") >= 250 && split.paid("c") >= 250);
    split.refused("payer", "pay", "[]", 0, "attach the coins");
    let mut bad = Scratch::new(code, who("contract"));
    assert!(
        bad.run(Entry::Deploy, &format!(r#"[{{"{a}": 0}}]"#), who("o"), Amount::ZERO, GAS).result.is_err()
    );
}
