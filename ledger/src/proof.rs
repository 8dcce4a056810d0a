//! Proofs of an account against a state root, for peers that keep no state (light peers).
//!
//! A main node answers an account query with the account's leaf value (the `AccountState`
//! protobuf, which names the address; nothing for an account never touched) and a Merkle proof
//! of that leaf, or of its absence, in the state tree at a height. Whoever knows the state root
//! of that height (from a header it verified) checks the answer with [`verify_account`]: a main
//! node that makes up a balance cannot make the proof match.
//!
//! The proof is jmt's `SparseMerkleProof` in its borsh encoding (jmt 0.12): the leaf it ends in
//! (key hash and value hash, if any) and the sibling hashes from the leaf up to the root, hashed
//! with the state tree's BLAKE3 hasher.

use jmt::proof::SparseMerkleProof;
use jmt::{JellyfishMerkleTree, RootHash};

use crate::codec::decode_account;
use crate::hash::StateHasher;
use crate::state::{Account, account_key};
use crate::store::StoreError;
use crate::{Address, Hash};

/// Largest encoded proof accepted: 256 levels of siblings at most, each a tag and 32 bytes, plus
/// the leaf. Anything longer is refused before it is decoded.
pub const MAX_PROOF_BYTES: usize = 16 * 1024;

/// Why an account proof was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// The proof bytes are too long.
    #[error("the proof is {0} bytes, more than {MAX_PROOF_BYTES}")]
    TooLong(usize),
    /// The proof bytes do not decode.
    #[error("the proof does not decode: {0}")]
    Malformed(String),
    /// The proof does not lead from this account to this root.
    #[error("the proof does not match the state root: {0}")]
    Mismatch(String),
    /// The proven leaf decodes, but not as this address's account.
    #[error("the proven state is not {address}'s account: {reason}")]
    WrongAccount {
        /// The address asked about.
        address: Address,
        /// What is wrong.
        reason: String,
    },
}

/// `address`'s leaf value at `version` (none if the account was never touched) and the encoded
/// proof of it against that version's state root.
pub fn prove_account<R: jmt::storage::TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    address: &Address,
) -> Result<(Option<Vec<u8>>, Vec<u8>), StoreError> {
    prove_value(reader, version, account_key(address))
}

/// Checks that `state` (the leaf value a node sent; `None` if it says the account was never
/// touched) is `address`'s account in the tree whose root is `root`, and returns the account.
pub fn verify_account(
    root: &Hash,
    address: &Address,
    state: Option<&[u8]>,
    proof: &[u8],
) -> Result<Account, ProofError> {
    verify_value(root, account_key(address), state, proof)?;
    match state {
        None => Ok(Account::default()),
        Some(bytes) => {
            let wrong = |reason: String| ProofError::WrongAccount { address: *address, reason };
            let (named, account) = decode_account(bytes).map_err(|e| wrong(e.to_string()))?;
            if named != *address {
                return Err(wrong(format!("it names {named}")));
            }
            Ok(account)
        }
    }
}

/// `key`'s leaf value at `version` (if any) and the encoded proof of it.
fn prove_value<R: jmt::storage::TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    key: jmt::KeyHash,
) -> Result<(Option<Vec<u8>>, Vec<u8>), StoreError> {
    let reader = crate::state::sized(reader);
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
    let (value, proof) = tree.get_with_proof(key, version).map_err(|e| StoreError::Tree(e.to_string()))?;
    let proof = borsh::to_vec(&proof).map_err(|e| StoreError::Tree(e.to_string()))?;
    Ok((value, proof))
}

/// Checks that `value` is `key`'s leaf (or that `key` has none) under `root`.
fn verify_value(
    root: &Hash,
    key: jmt::KeyHash,
    value: Option<&[u8]>,
    proof: &[u8],
) -> Result<(), ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLong(proof.len()));
    }
    let proof: SparseMerkleProof<StateHasher> =
        borsh::from_slice(proof).map_err(|e| ProofError::Malformed(e.to_string()))?;
    proof.verify(RootHash(root.0), key, value).map_err(|e| ProofError::Mismatch(e.to_string()))
}

/// A leaf value (if any) and its encoded proof.
pub type ProvenLeaf = (Option<Vec<u8>>, Vec<u8>);

/// The lottery's inputs in the state at `version`, proven: the consensus record, the registry,
/// and the record of every forger the registry lists, in its order. With them a peer that keeps
/// no state checks that a child of that block was forged by the lottery's rightful winner
/// ([`LotteryState`]).
pub fn prove_lottery<R: jmt::storage::TreeReader + ?Sized>(
    reader: &R,
    version: u64,
) -> Result<LotteryProof, StoreError> {
    let consensus = prove_value(reader, version, crate::state::consensus_key())?;
    let registry = prove_value(reader, version, crate::state::registry_key())?;
    let forgers = crate::state::read_registry(reader, version)?
        .forgers
        .iter()
        .map(|address| prove_value(reader, version, crate::state::forger_key(address)))
        .collect::<Result<_, _>>()?;
    Ok(LotteryProof { consensus, registry, forgers })
}

/// What [`prove_lottery`] proves, each leaf with its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotteryProof {
    /// The consensus record.
    pub consensus: ProvenLeaf,
    /// The registry.
    pub registry: ProvenLeaf,
    /// Each forger's record, in the registry's order.
    pub forgers: Vec<ProvenLeaf>,
}

/// The lottery's inputs after a block, verified against its state root.
#[derive(Debug, Clone)]
pub struct LotteryState {
    consensus: crate::state::ConsensusState,
    forgers: Vec<(Address, Option<crate::state::ForgerState>)>,
}

impl LotteryState {
    /// Verifies what [`prove_lottery`] made against `root`: the consensus record, the registry,
    /// and exactly one leaf (or proof of absence) for each forger the registry lists.
    pub fn verify(root: &Hash, proof: &LotteryProof) -> Result<LotteryState, ProofError> {
        let (value, leaf_proof) = &proof.consensus;
        verify_value(root, crate::state::consensus_key(), value.as_deref(), leaf_proof)?;
        let bytes = value
            .as_deref()
            .ok_or_else(|| ProofError::Mismatch("the state has no consensus record".into()))?;
        let consensus =
            crate::codec::decode_consensus(bytes).map_err(|e| ProofError::Malformed(e.to_string()))?;
        let (value, leaf_proof) = &proof.registry;
        verify_value(root, crate::state::registry_key(), value.as_deref(), leaf_proof)?;
        let bytes =
            value.as_deref().ok_or_else(|| ProofError::Mismatch("the state has no registry".into()))?;
        let registry =
            crate::codec::decode_registry(bytes).map_err(|e| ProofError::Malformed(e.to_string()))?;
        if proof.forgers.len() != registry.forgers.len() {
            return Err(ProofError::Mismatch(format!(
                "{} forger records for {} forgers",
                proof.forgers.len(),
                registry.forgers.len()
            )));
        }
        let mut states = Vec::with_capacity(proof.forgers.len());
        for (address, (value, leaf_proof)) in registry.forgers.iter().zip(&proof.forgers) {
            verify_value(root, crate::state::forger_key(address), value.as_deref(), leaf_proof)?;
            let state = value
                .as_deref()
                .map(crate::codec::decode_forger)
                .transpose()
                .map_err(|e| ProofError::Malformed(e.to_string()))?;
            states.push((*address, state));
        }
        Ok(LotteryState { consensus, forgers: states })
    }

    /// Checks what a child block's header claims about the lottery, as a main node does before
    /// applying it: its forger won its slot at its rank (with this state's roster and seed), it
    /// is stamped no earlier than that rank's window, and its reveal opens the forger's
    /// commitment.
    pub fn check(&self, spec: &crate::ChainSpec, header: &crate::Header) -> Result<(), String> {
        use crate::lottery::{Lottery, Roster, epoch_of, epoch_seed, rank_offset_ms, reveal_commitment};
        let params = &spec.params;
        let epoch = epoch_of(header.slot, params.slots_per_epoch);
        let seed = if self.consensus.seed_epoch == epoch {
            self.consensus.seed
        } else {
            epoch_seed(epoch, &self.consensus.mix)
        };
        let roster = Roster::new(
            self.forgers
                .iter()
                .filter_map(|(address, state)| state.as_ref().map(|s| (*address, s.weight_in(epoch)))),
        );
        let lottery = Lottery { roster: &roster, seed, fallback_ranks: params.fallback_ranks };
        if !lottery.may_sign(header.slot, &header.forger, header.rank) {
            return Err(format!(
                "{} did not win slot {} at rank {}",
                header.forger, header.slot, header.rank
            ));
        }
        let earliest = spec
            .slot_start_ms(header.slot)
            .map(|start| start + rank_offset_ms(params.slot_duration_ms, params.fallback_ranks, header.rank));
        if earliest.is_none_or(|earliest| header.timestamp_ms < earliest) {
            return Err(format!("stamped before rank {}'s window", header.rank));
        }
        let forger = self.forgers.iter().find(|(a, _)| *a == header.forger).and_then(|(_, s)| s.as_ref());
        match forger {
            Some(state) if reveal_commitment(&header.reveal) == state.commitment => Ok(()),
            _ => Err("its reveal does not open the forger's commitment".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, ChainGenerator};
    use crate::{Chain, MemoryStore, Store};

    #[test]
    fn the_lottery_state_proves_who_may_sign_the_next_block() {
        let spec = testkit::spec();
        let mut chain = Chain::open(MemoryStore::new(), spec.clone()).unwrap();
        let mut generator = ChainGenerator::new(4, 1);
        for _ in 0..3 {
            chain.import(generator.next_block_with(vec![])).unwrap();
        }
        let parent = chain.head().clone();
        let next = generator.next_block_with(vec![]);
        let proof = prove_lottery(chain.store(), parent.header().height).unwrap();
        let root = parent.header().state_root;
        let state = LotteryState::verify(&root, &proof).unwrap();
        state.check(&spec, next.header()).unwrap();

        // Another forger, another rank, or a wrong reveal: refused.
        let mut other = next.header().clone();
        other.forger = testkit::account(3).address();
        if other.forger == next.header().forger {
            other.forger = testkit::account(2).address();
        }
        assert!(state.check(&spec, &other).is_err());
        let mut reveal = next.header().clone();
        reveal.reveal = Hash::default();
        assert!(state.check(&spec, &reveal).is_err());
        // A forger record left out, a registry with one forger less, or proofs against another
        // root: refused.
        let mut short = proof.clone();
        short.forgers.remove(0);
        assert!(LotteryState::verify(&root, &short).is_err());
        let mut registry = crate::codec::decode_registry(proof.registry.0.as_deref().unwrap()).unwrap();
        registry.forgers.remove(0);
        short.registry.0 = Some(crate::codec::encode_registry(&registry));
        assert!(LotteryState::verify(&root, &short).is_err());
        let genesis_root = chain.store().header(&chain.genesis_hash()).unwrap().unwrap().header().state_root;
        assert!(LotteryState::verify(&genesis_root, &proof).is_err());
    }

    #[test]
    fn proofs_of_present_and_absent_accounts_verify_and_lies_do_not() {
        let spec = testkit::spec();
        let mut chain = Chain::open(MemoryStore::new(), spec).unwrap();
        let mut generator = ChainGenerator::new(4, 1);
        let (alice, bob) = (testkit::account(0), testkit::account(1));
        let block = generator.next_block_with(vec![testkit::transfer(&alice, &bob, 0, 1_234, 10)]);
        chain.import(block).unwrap();
        let height = chain.head().header().height;
        let root = chain.head().header().state_root;
        let store = chain.store();

        // Present: the proof gives back exactly the stored account.
        let (state, proof) = prove_account(store, height, &bob.address()).unwrap();
        let account = verify_account(&root, &bob.address(), state.as_deref(), &proof).unwrap();
        assert_eq!(account, chain.account(&bob.address()).unwrap());

        // Absent: a never-touched address is proven empty.
        let nobody = crate::Keypair::generate().unwrap().address();
        let (none, absent) = prove_account(store, height, &nobody).unwrap();
        assert!(none.is_none());
        assert_eq!(verify_account(&root, &nobody, None, &absent).unwrap(), Account::default());

        // A made-up balance, Bob's leaf passed off as someone else's, a claim that Bob does not
        // exist, another root, and garbage: each is refused, none panics.
        let mut inflated = state.clone().unwrap();
        let last = inflated.len() - 1;
        inflated[last] ^= 1;
        assert!(matches!(
            verify_account(&root, &bob.address(), Some(&inflated), &proof),
            Err(ProofError::Mismatch(_))
        ));
        assert!(verify_account(&root, &nobody, state.as_deref(), &proof).is_err());
        assert!(verify_account(&root, &bob.address(), None, &proof).is_err());
        let genesis_root = store.header(&chain.genesis_hash()).unwrap().unwrap().header().state_root;
        assert!(verify_account(&genesis_root, &bob.address(), state.as_deref(), &proof).is_err());
        assert!(matches!(
            verify_account(&root, &bob.address(), state.as_deref(), b"garbage"),
            Err(ProofError::Malformed(_))
        ));
        assert_eq!(
            verify_account(&root, &bob.address(), None, &vec![0; MAX_PROOF_BYTES + 1]),
            Err(ProofError::TooLong(MAX_PROOF_BYTES + 1))
        );
    }
}
