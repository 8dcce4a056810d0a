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
use crate::lottery::{
    RosterEntry, drawn_ranks_open, epoch_of, epoch_seed, rank_offset_ms, reveal_commitment,
};
use crate::state::{Account, ConsensusState, ForgerState, RosterCommitment, account_key};
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

/// Checks that `leaf` is `address`'s forger record (or its absence) in the tree whose root is
/// `root`, and returns the record.
pub fn verify_forger(
    root: &Hash,
    address: &Address,
    leaf: &ProvenLeaf,
) -> Result<Option<ForgerState>, ProofError> {
    let (value, proof) = leaf;
    verify_value(root, crate::state::forger_key(address), value.as_deref(), proof)?;
    value
        .as_deref()
        .map(crate::codec::decode_forger)
        .transpose()
        .map_err(|e| ProofError::Malformed(e.to_string()))
}

/// `key`'s leaf value at `version` (if any) and the encoded proof of it.
pub(crate) fn prove_value<R: jmt::storage::TreeReader + ?Sized>(
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
pub(crate) fn verify_value(
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

/// What a peer that keeps no state needs to check that `forger` may sign a child of the block
/// whose state is at `version`, proven against that state: the consensus record (the seed),
/// the roster commitments, the forger's record, and, if the forger is on the child's epoch's
/// roster, its entry there with the Merkle path (`entry`, from the roster main nodes keep).
/// Its size grows with the logarithm of the number of forgers, not with the number.
pub fn prove_lottery<R: jmt::storage::TreeReader + ?Sized>(
    reader: &R,
    version: u64,
    forger: &Address,
    entry: Option<RosterEntry>,
) -> Result<LotteryProof, StoreError> {
    Ok(LotteryProof {
        consensus: prove_value(reader, version, crate::state::consensus_key())?,
        rosters: prove_value(reader, version, crate::state::rosters_key())?,
        forger: prove_value(reader, version, crate::state::forger_key(forger))?,
        entry,
    })
}

/// What [`prove_lottery`] proves, each leaf with its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotteryProof {
    /// The consensus record.
    pub consensus: ProvenLeaf,
    /// The roster commitments.
    pub rosters: ProvenLeaf,
    /// The forger's record (none if it has none).
    pub forger: ProvenLeaf,
    /// Its entry on the epoch's roster, if it is on it.
    pub entry: Option<RosterEntry>,
}

/// The lottery's inputs after a block for one forger and one epoch, verified against the
/// block's state root.
#[derive(Debug, Clone)]
pub struct LotteryState {
    consensus: ConsensusState,
    forger: Address,
    epoch: u64,
    record: Option<ForgerState>,
    /// The epoch's roster commitment and the forger's verified entry on it, when drawn ranks
    /// are open and the forger may sign.
    drawn: Option<(RosterCommitment, RosterEntry)>,
    /// The roster commitments the state holds.
    rosters: Vec<RosterCommitment>,
}

impl LotteryState {
    /// Verifies what [`prove_lottery`] made for `forger` and `epoch` against `root`: every leaf,
    /// and the roster entry whenever the forger's check needs it (a node that leaves it out is
    /// refused, so that it cannot make a rightful winner look like a cheat).
    pub fn verify(
        root: &Hash,
        forger: &Address,
        epoch: u64,
        proof: &LotteryProof,
    ) -> Result<LotteryState, ProofError> {
        let malformed = |e: crate::codec::DecodeError| ProofError::Malformed(e.to_string());
        let (value, leaf_proof) = &proof.consensus;
        verify_value(root, crate::state::consensus_key(), value.as_deref(), leaf_proof)?;
        let bytes = value
            .as_deref()
            .ok_or_else(|| ProofError::Mismatch("the state has no consensus record".into()))?;
        let consensus = crate::codec::decode_consensus(bytes).map_err(malformed)?;
        let (value, leaf_proof) = &proof.rosters;
        verify_value(root, crate::state::rosters_key(), value.as_deref(), leaf_proof)?;
        let bytes = value
            .as_deref()
            .ok_or_else(|| ProofError::Mismatch("the state has no roster commitments".into()))?;
        let rosters = crate::codec::decode_rosters(bytes).map_err(malformed)?;
        let (value, leaf_proof) = &proof.forger;
        verify_value(root, crate::state::forger_key(forger), value.as_deref(), leaf_proof)?;
        let record = value.as_deref().map(crate::codec::decode_forger).transpose().map_err(malformed)?;
        let signs = record.as_ref().is_some_and(|r| r.signs_in(epoch));
        let drawn = if signs && drawn_ranks_open(consensus.seed_epoch, epoch) {
            let commitment = *rosters.get(epoch).ok_or_else(|| {
                ProofError::Mismatch(format!("the state commits to no roster for epoch {epoch}"))
            })?;
            let entry = proof.entry.clone().ok_or_else(|| {
                ProofError::Mismatch(format!("{forger} holds a ticket, but its roster entry is missing"))
            })?;
            entry.verify(forger, &commitment).map_err(ProofError::Mismatch)?;
            Some((commitment, entry))
        } else {
            None
        };
        Ok(LotteryState { consensus, forger: *forger, epoch, record, drawn, rosters: rosters.commitments })
    }

    /// The roster commitments the block's state holds (of its epoch and the next), proven.
    pub fn rosters(&self) -> &[RosterCommitment] {
        &self.rosters
    }

    /// Checks what a child block's header claims about the lottery, as a main node does before
    /// applying it: its forger may sign in the epoch and won its slot at its rank (with this
    /// state's roster commitment and seed), it is stamped no earlier than that rank's window,
    /// and its reveal opens the forger's commitment.
    pub fn check(&self, spec: &crate::ChainSpec, header: &crate::Header) -> Result<(), String> {
        let params = &spec.params;
        let epoch = epoch_of(header.slot, params.slots_per_epoch);
        if header.forger != self.forger || epoch != self.epoch {
            return Err(format!("the lottery state is for {} in epoch {}", self.forger, self.epoch));
        }
        let record = self
            .record
            .as_ref()
            .filter(|r| r.signs_in(epoch))
            .ok_or_else(|| format!("{} holds no ticket that signs in epoch {epoch}", header.forger))?;
        let won = match header.rank.cmp(&params.fallback_ranks) {
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => self.drawn.as_ref().is_some_and(|(commitment, entry)| {
                let seed = if self.consensus.seed_epoch == epoch {
                    self.consensus.seed
                } else {
                    epoch_seed(epoch, &self.consensus.mix)
                };
                entry.wins(&seed, header.slot, header.rank, commitment.total_weight)
            }),
        };
        if !won {
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
        if reveal_commitment(&header.reveal) != record.commitment {
            return Err("its reveal does not open the forger's commitment".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, ChainGenerator};
    use crate::{Chain, MemoryStore, Store};

    /// A chain of `forgers` genesis forgers of equal weight, one epoch long, and their keys.
    fn chain_of(forgers: usize) -> (Chain<MemoryStore>, Vec<crate::Keypair>) {
        let keys: Vec<crate::Keypair> =
            (0..forgers).map(|i| crate::Keypair::insecure_dev(&format!("proof-forger-{i}"))).collect();
        let mut spec = testkit::spec();
        spec.forgers = keys.iter().map(|k| crate::GenesisForger::for_key(k, crate::Amount(10))).collect();
        let mut chain = Chain::open(MemoryStore::new(), spec).unwrap();
        for slot in 1..=chain.spec().params.slots_per_epoch + 2 {
            let (key, rank) = primary(&chain, &keys, slot);
            let time = testkit::slot_time(chain.spec(), slot, rank);
            let applied = chain.builder(key, slot, time).unwrap().seal(key).unwrap();
            chain.commit(applied).unwrap();
        }
        (chain, keys)
    }

    /// Who signs `slot` on the head first, and at which rank.
    fn primary<'k>(
        chain: &Chain<MemoryStore>,
        keys: &'k [crate::Keypair],
        slot: u64,
    ) -> (&'k crate::Keypair, u32) {
        let addresses: Vec<Address> = keys.iter().map(crate::Keypair::address).collect();
        let ranks = chain.ranks(slot, &addresses).unwrap();
        let (i, rank) =
            ranks.iter().enumerate().filter_map(|(i, r)| Some((i, (*r)?))).min_by_key(|(_, r)| *r).unwrap();
        (&keys[i], rank)
    }

    /// The next block's header on the head, signed by the slot's primary forger.
    fn next_header(chain: &Chain<MemoryStore>, keys: &[crate::Keypair]) -> crate::Header {
        let slot = chain.head().header().slot + 1;
        let (key, rank) = primary(chain, keys, slot);
        let time = testkit::slot_time(chain.spec(), slot, rank);
        chain.builder(key, slot, time).unwrap().seal(key).unwrap().block.header().clone()
    }

    fn encoded_size(proof: &LotteryProof) -> usize {
        let leaf = |(value, proof): &ProvenLeaf| value.as_ref().map_or(0, Vec::len) + proof.len();
        leaf(&proof.consensus)
            + leaf(&proof.rosters)
            + leaf(&proof.forger)
            + proof.entry.as_ref().map_or(0, |e| 40 + 32 * e.path.len())
    }

    #[test]
    fn the_lottery_state_proves_who_may_sign_the_next_block() {
        let (chain, keys) = chain_of(16);
        let spec = chain.spec().clone();
        let parent = chain.head().clone();
        let next = next_header(&chain, &keys);
        let epoch = epoch_of(next.slot, spec.params.slots_per_epoch);
        let root = parent.header().state_root;
        let proof = chain.lottery_proof(&parent, &next.forger, next.slot).unwrap();
        let state = LotteryState::verify(&root, &next.forger, epoch, &proof).unwrap();
        state.check(&spec, &next).unwrap();

        // Another forger on this forger's proof, another rank, or a wrong reveal: refused.
        let mut other = next.clone();
        other.forger = keys.iter().map(crate::Keypair::address).find(|a| *a != next.forger).unwrap();
        assert!(state.check(&spec, &other).is_err());
        let mut rank = next.clone();
        rank.rank = (next.rank + 1) % spec.params.fallback_ranks;
        assert!(state.check(&spec, &rank).is_err());
        let mut reveal = next.clone();
        reveal.reveal = Hash::default();
        assert!(state.check(&spec, &reveal).is_err());
        // The other forger, on a proof of its own, did not win this slot at this rank either.
        let theirs = chain.lottery_proof(&parent, &other.forger, other.slot).unwrap();
        let state = LotteryState::verify(&root, &other.forger, epoch, &theirs).unwrap();
        assert!(state.check(&spec, &other).unwrap_err().contains("did not win"));

        // A proof without the entry, with another forger's entry, with a moved interval, or
        // against another root: refused.
        let mut missing = proof.clone();
        missing.entry = None;
        assert!(LotteryState::verify(&root, &next.forger, epoch, &missing).is_err());
        let mut swapped = proof.clone();
        swapped.entry = theirs.entry.clone();
        assert!(LotteryState::verify(&root, &next.forger, epoch, &swapped).is_err());
        let mut moved = proof.clone();
        if let Some(entry) = moved.entry.as_mut() {
            entry.end += 1;
        }
        assert!(LotteryState::verify(&root, &next.forger, epoch, &moved).is_err());
        let genesis_root = chain.store().header(&chain.genesis_hash()).unwrap().unwrap().header().state_root;
        assert!(LotteryState::verify(&genesis_root, &next.forger, epoch, &proof).is_err());
    }

    #[test]
    fn a_lottery_proof_does_not_grow_with_the_number_of_forgers() {
        let sizes: Vec<usize> = [4, 1_024]
            .into_iter()
            .map(|forgers| {
                let (chain, keys) = chain_of(forgers);
                let parent = chain.head().clone();
                let next = next_header(&chain, &keys);
                let proof = chain.lottery_proof(&parent, &next.forger, next.slot).unwrap();
                assert!(proof.entry.is_some());
                encoded_size(&proof)
            })
            .collect();
        // 256 times the forgers, eight doublings: each adds at most a level (32 bytes, 64 with
        // the state tree's encoding) to each of the four paths, never a record per forger (a
        // thousand records would be 100 KiB). Measured: 1,755 and 2,854 bytes.
        assert!(sizes[1] < sizes[0] + 8 * 4 * 64, "{sizes:?}");
        assert!(sizes[1] < 4_096, "{sizes:?}");
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
