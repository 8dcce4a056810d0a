//! Merkle proofs a main node sends a light peer: an account, the lottery state and a roster
//! entry, checked against a root. Whatever the bytes, a check ends in an answer, never a panic.
#![no_main]

use goodwill_ledger::lottery::{MAX_ROSTER_PATH, RosterEntry};
use goodwill_ledger::proof::{LotteryProof, LotteryState, verify_account};
use goodwill_ledger::state::RosterCommitment;
use goodwill_ledger::{Address, Hash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 66 {
        return;
    }
    let root = Hash(data[..32].try_into().expect("32 bytes"));
    let address = Address(data[32..64].try_into().expect("32 bytes"));
    let split = 66 + usize::from(u16::from_le_bytes([data[64], data[65]])) % (data.len() - 65);
    let (state, proof) = data[66..].split_at((split - 66).min(data.len() - 66));
    let _ = verify_account(&root, &address, Some(state), proof);
    let _ = verify_account(&root, &address, None, proof);
    let leaf = (Some(state.to_vec()), proof.to_vec());
    // A roster entry and a commitment made of the same bytes: any index, interval, leaf count
    // and path (up to the wire's limit).
    let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    let entry = RosterEntry {
        index: word(32),
        start: u128::from(word(40)),
        end: u128::from(word(48)),
        path: proof.chunks_exact(32).take(MAX_ROSTER_PATH).map(|c| Hash(c.try_into().expect("32"))).collect(),
    };
    let commitment =
        RosterCommitment { epoch: 0, total_weight: u128::from(word(56)), forgers: word(24), root };
    let _ = entry.verify(&address, &commitment);
    let lottery = LotteryProof {
        consensus: leaf.clone(),
        rosters: leaf.clone(),
        forger: (None, proof.to_vec()),
        entry: Some(entry),
    };
    let _ = LotteryState::verify(&root, &address, word(0), &lottery);
});
