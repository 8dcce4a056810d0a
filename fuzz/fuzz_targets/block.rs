//! A block, as a peer gossips it or serves it in a sync range: read whole, and read as a
//! received block (header in full, transactions by their framing).
#![no_main]

use bytes::Bytes;
use goodwill_ledger::{Block, ReceivedBlock};
use libfuzzer_sys::fuzz_target;

/// The gossip limit.
const LIMIT: usize = 5 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let whole = Block::decode(Bytes::copy_from_slice(data), LIMIT);
    let received = ReceivedBlock::decode(Bytes::copy_from_slice(data), LIMIT)
        .and_then(|received| received.into_block(|_, _| None));
    // The two readings agree on what is a block.
    match (&whole, &received) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("the two readings disagree: {:?} / {:?}", whole.is_ok(), received.is_ok()),
    }
    if let Ok(block) = whole {
        let again = Block::decode(Bytes::from(block.encode()), LIMIT).expect("a re-encoded block decodes");
        assert_eq!(again, block);
    }
});
