//! A step of finality a main node sends a light peer: decoded, then checked against an anchor
//! (genesis of a four-forger chain with two-slot epochs, so that any round spans known and
//! unknown rosters). Whatever the bytes, the check ends in an answer, never a panic, and an
//! anchor it moves to keeps its bounds.
#![no_main]

use std::sync::OnceLock;

use goodwill_ledger::light::{Anchor, FinalityStep, MAX_ANCHOR_ROSTERS};
use goodwill_ledger::{Amount, ChainSpec, GenesisForger, Keypair};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let mut spec = ChainSpec::local(0, 4);
        spec.forgers = (0..4)
            .map(|i| GenesisForger::for_key(&Keypair::insecure_dev(&format!("fuzz-{i}")), Amount(10)))
            .collect();
        Anchor::genesis(&spec).expect("a valid spec")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = goodwill_proto::v1::FinalityStep::decode(data) else { return };
    let Ok(step) = FinalityStep::from_wire(&wire) else { return };
    if let Ok(next) = anchor().advance(&step, 2) {
        assert!(next.rosters.len() <= MAX_ANCHOR_ROSTERS);
        assert!(next.header.header().height > anchor().header.header().height);
    }
});
