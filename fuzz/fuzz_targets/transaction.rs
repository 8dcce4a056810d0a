//! A signed transaction, as a peer gossips it or a client posts it.
#![no_main]

use bytes::Bytes;
use goodwill_ledger::Transaction;
use libfuzzer_sys::fuzz_target;

/// The largest transaction any chain allows, as nodes decode them.
const LIMIT: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::decode(Bytes::copy_from_slice(data), LIMIT) {
        // What decodes encodes back to a transaction that decodes to the same one.
        let again =
            Transaction::decode(Bytes::from(tx.encode()), LIMIT).expect("a re-encoded transaction decodes");
        assert_eq!(again, tx);
        assert_eq!(again.id(), tx.id());
    }
});
