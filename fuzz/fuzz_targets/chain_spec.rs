//! A chain spec, as a user downloads it (and, later, as a bootnode serves it).
#![no_main]

use goodwill_ledger::ChainSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = ChainSpec::from_json(text) {
        let again = ChainSpec::from_json(&spec.to_json()).expect("a written spec reads");
        assert_eq!(again, spec);
    }
});
