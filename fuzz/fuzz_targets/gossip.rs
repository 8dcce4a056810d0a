//! A gossiped message of any kind (blocks, transactions, votes), read as a lane's consumer reads
//! it; a decoded vote's signature is checked too.
#![no_main]

use goodwill_ledger::Hash;
use goodwill_protocol::behaviour::GossipKind;
use goodwill_protocol::service::{GossipMessage, decode_gossip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let kind = GossipKind::ALL[usize::from(first) % GossipKind::ALL.len()];
    if let Ok(GossipMessage::Votes(votes)) = decode_gossip(kind, rest.to_vec()) {
        for vote in votes {
            let _ = vote.verify(&Hash([0; 32]));
        }
    }
});
