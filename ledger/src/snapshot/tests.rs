use super::*;
use crate::finality::FinalityProof;
use crate::light::FinalityStep;
use crate::{Amount, testkit};
use crate::{
    Chain, ChainSpec, GenesisForger, Imported, Keypair, MemoryStore, RocksStore, StatePruning, Store,
};

/// Enough funded accounts for the state to take several chunks.
const ACCOUNTS: usize = 2 * MAX_CHUNK_ENTRIES + 100;

fn keys() -> Vec<Keypair> {
    (0..3).map(|i| Keypair::insecure_dev(&format!("snapshot-forger-{i}"))).collect()
}

fn spec() -> ChainSpec {
    let mut spec = testkit::spec_funding(ACCOUNTS);
    spec.forgers = keys().iter().map(|k| GenesisForger::for_key(k, Amount(10))).collect();
    spec.params.slots_per_epoch = 4;
    spec
}

/// A final chain that pruned what it could, and its last final block's proof with its step.
fn source() -> (Chain<MemoryStore>, FinalityProof, FinalityStep) {
    let chain = testkit::final_chain_pruning(spec(), &keys(), 24, StatePruning::Keep(0));
    let proof = chain.store().latest_finality_proof().unwrap().unwrap();
    assert_eq!(proof.finalized, chain.finalized());
    let step = chain.finality_step(proof.clone()).unwrap().unwrap();
    (chain, proof, step)
}

/// The chunks a node on `chain` serves for its final block's state.
fn chunks(chain: &Chain<MemoryStore>) -> Vec<StateChunk> {
    let version = chain.finalized().block.height;
    let mut chunks = Vec::new();
    let mut next = Some(KeyHash([0; 32]));
    while let Some(start) = next {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let chunk = state_chunk(chain.store(), version, start, deadline).unwrap().unwrap();
        next = if chunk.last { None } else { next_key(&chunk.entries.last().unwrap().0) };
        chunks.push(chunk);
    }
    chunks
}

fn base_header(chain: &Chain<MemoryStore>) -> crate::SealedHeader {
    chain.store().header(&chain.finalized().block.hash).unwrap().unwrap()
}

/// Restores from `chunks`, stopping at the first refused; returns how it ended.
fn restore(
    dir: &std::path::Path,
    base: crate::SealedHeader,
    chunks: Vec<StateChunk>,
) -> Result<StateRestore, RestoreError> {
    let mut restore = StateRestore::start(dir, base).unwrap();
    for chunk in chunks {
        if restore.add_chunk(chunk)? {
            return Ok(restore);
        }
    }
    Err(RestoreError::Invalid("the chunks ran out".into()))
}

#[test]
fn a_node_started_from_a_final_blocks_state_goes_on_as_one_that_replayed_the_chain() {
    let (chain, proof, step) = source();
    let chunks = chunks(&chain);
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    let dir = tempfile::tempdir().unwrap();
    let restored = restore(dir.path(), base_header(&chain), chunks).unwrap();
    assert!(restored.entries() > ACCOUNTS as u64);
    let block = chain.store().block(&proof.finalized.block.hash).unwrap().unwrap();
    let store = restored.finish(chain.spec(), block, proof.finalized, &step).unwrap();
    let mut synced = Chain::open(store, spec()).unwrap();
    let base = proof.finalized.block.height;
    assert_eq!(synced.head().hash(), proof.finalized.block.hash);
    assert_eq!(synced.finalized(), proof.finalized);
    assert_eq!((synced.store().base_height(), synced.store().pruned_below()), (base, base));
    for i in [0, 1, ACCOUNTS / 2, ACCOUNTS - 1] {
        let address = testkit::account(i).address();
        assert_eq!(
            synced.account(&address).unwrap(),
            crate::state::read_account(chain.store(), base, &address).unwrap()
        );
    }
    // It imports the blocks after its base as any node does, and serves its base's step.
    for height in base + 1..=chain.head().header().height {
        let hash = chain.store().canonical_hash(height).unwrap().unwrap();
        let block = chain.store().block(&hash).unwrap().unwrap();
        assert!(matches!(synced.import(block).unwrap(), Imported::Extended(_)));
    }
    assert_eq!(synced.head(), chain.head());
    assert_eq!(synced.finality_step(proof.clone()).unwrap(), Some(step));
    // The blocks below its base are not there; asking for them is no error.
    assert_eq!(synced.store().canonical_hash(base - 1).unwrap(), None);
    // Its finality gadget reads the rosters of the base's epoch and of those after it.
    let base_epoch = crate::lottery::epoch_of(proof.finalized.round, 4);
    let view = crate::chain::FinalityView::new(&synced);
    for epoch in base_epoch..=crate::lottery::epoch_of(synced.head().header().slot, 4) {
        use crate::finality::Weights;
        assert!(view.total(epoch) > 0, "epoch {epoch}");
    }
    drop(view);
    // And it starts again from its database.
    drop(synced);
    let reopened = Chain::open_stored(RocksStore::open(dir.path()).unwrap()).unwrap();
    assert_eq!(reopened.head(), chain.head());
}

#[test]
fn a_peer_that_changes_one_value_of_the_state_is_caught_at_that_chunk() {
    let (chain, ..) = source();
    let mut chunks = chunks(&chain);
    chunks[1].entries[7].1.push(0);
    let dir = tempfile::tempdir().unwrap();
    let error = restore(dir.path(), base_header(&chain), chunks).unwrap_err();
    assert!(matches!(error, RestoreError::Invalid(_)), "{error}");
}

#[test]
fn a_peer_that_leaves_out_a_leaf_is_caught() {
    let (chain, ..) = source();
    let mut chunks = chunks(&chain);
    chunks[1].entries.remove(0);
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(restore(dir.path(), base_header(&chain), chunks), Err(RestoreError::Invalid(_))));
    // Nor can it slip an extra one in.
    let mut chunks = self::chunks(&chain);
    let (key, value) = chunks[0].entries[3].clone();
    let mut extra = key.0;
    extra[31] ^= 1;
    chunks[0].entries.insert(4, (KeyHash(extra), value));
    chunks[0].entries.sort_by_key(|(key, _)| *key);
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(restore(dir.path(), base_header(&chain), chunks), Err(RestoreError::Invalid(_))));
}

#[test]
fn a_peer_that_calls_a_chunk_the_last_too_early_is_caught() {
    let (chain, ..) = source();
    let mut chunks = chunks(&chain);
    chunks[0].last = true;
    let dir = tempfile::tempdir().unwrap();
    let error = restore(dir.path(), base_header(&chain), chunks).unwrap_err();
    assert!(error.to_string().contains("root"), "{error}");
}

#[test]
fn a_peer_that_sends_chunks_out_of_order_or_made_up_proofs_cannot_stop_the_node() {
    let (chain, ..) = source();
    let dir = tempfile::tempdir().unwrap();
    let good = chunks(&chain);
    // The second chunk first.
    let error = restore(dir.path(), base_header(&chain), vec![good[1].clone()]).unwrap_err();
    assert!(matches!(error, RestoreError::Invalid(_)), "{error}");
    // Proofs of another chunk, of nothing, of junk, of an absurd length.
    for proof in [good[1].proof.clone(), Vec::new(), vec![0xff; 64], {
        let mut long = vec![0u8; 4];
        long[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        long
    }] {
        let dir = tempfile::tempdir().unwrap();
        let mut chunk = good[0].clone();
        chunk.proof = proof;
        assert!(restore(dir.path(), base_header(&chain), vec![chunk]).is_err());
    }
    // Keys out of order within a chunk, an empty chunk, one too long.
    let mut shuffled = good[0].clone();
    shuffled.entries.swap(0, 1);
    let mut long = good[0].clone();
    long.entries.extend(good[1].entries.iter().cloned());
    for chunk in [shuffled, StateChunk { entries: Vec::new(), proof: Vec::new(), last: false }, long] {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            restore(dir.path(), base_header(&chain), vec![chunk]),
            Err(RestoreError::Invalid(_))
        ));
    }
}

#[test]
fn the_key_after_the_last_is_none() {
    assert_eq!(next_key(&KeyHash([0xff; 32])), None);
    let mut key = [0u8; 32];
    key[31] = 0xff;
    let mut after = [0u8; 32];
    after[30] = 1;
    assert_eq!(next_key(&KeyHash(key)), Some(KeyHash(after)));
}
