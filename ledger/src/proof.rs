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
    let reader = crate::state::sized(reader);
    let tree = JellyfishMerkleTree::<_, StateHasher>::new(&reader);
    let (value, proof) =
        tree.get_with_proof(account_key(address), version).map_err(|e| StoreError::Tree(e.to_string()))?;
    let proof = borsh::to_vec(&proof).map_err(|e| StoreError::Tree(e.to_string()))?;
    Ok((value, proof))
}

/// Checks that `state` (the leaf value a node sent; `None` if it says the account was never
/// touched) is `address`'s account in the tree whose root is `root`, and returns the account.
pub fn verify_account(
    root: &Hash,
    address: &Address,
    state: Option<&[u8]>,
    proof: &[u8],
) -> Result<Account, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLong(proof.len()));
    }
    let proof: SparseMerkleProof<StateHasher> =
        borsh::from_slice(proof).map_err(|e| ProofError::Malformed(e.to_string()))?;
    proof
        .verify(RootHash(root.0), account_key(address), state)
        .map_err(|e| ProofError::Mismatch(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, ChainGenerator};
    use crate::{Chain, MemoryStore, Store};

    #[test]
    fn proofs_of_present_and_absent_accounts_verify_and_lies_do_not() {
        let spec = testkit::spec(4);
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
