//! Merkle proofs a main node sends a light peer: an account and the lottery state, checked
//! against a root. Whatever the bytes, a check ends in an answer, never a panic.
#![no_main]

use goodwill_ledger::proof::{LotteryProof, LotteryState, verify_account};
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
    let lottery = LotteryProof {
        consensus: leaf.clone(),
        registry: leaf.clone(),
        forgers: vec![leaf, (None, proof.to_vec())],
    };
    let _ = LotteryState::verify(&root, &lottery);
});
