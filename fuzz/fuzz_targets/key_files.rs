//! Key files and keystore files, as a user may be handed them: read, checked, and (when cheap
//! enough to open a thousand times a second) opened, without panicking or costing more than the
//! limits allow.
#![no_main]

use goodwill_ledger::Keypair;
use goodwill_node::keystore::Sealed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Keypair::from_file_text(text);
    if let Ok(sealed) = Sealed::parse(text) {
        let params = sealed.params();
        if params.memory_kib <= 64 && params.iterations <= 2 && params.parallelism <= 2 {
            // Any passphrase: the tag or the address check refuses what is not this file's key.
            if let Ok(key) = sealed.open(b"passphrase") {
                assert_eq!(key.address(), sealed.address());
            }
        }
    }
});
