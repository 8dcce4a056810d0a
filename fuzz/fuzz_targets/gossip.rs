//! A gossiped message of either kind, read as a lane's consumer reads it.
#![no_main]

use goodwill_protocol::behaviour::GossipKind;
use goodwill_protocol::service::decode_gossip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let kind = if first % 2 == 0 { GossipKind::Blocks } else { GossipKind::Transactions };
    let _ = decode_gossip(kind, rest.to_vec());
});
