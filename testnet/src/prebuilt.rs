//! A chain forged ahead of time, so that a test or benchmark can start a node on hundreds of
//! blocks without waiting hundreds of slots.
//!
//! [`build`] writes, into a folder, a local chain spec with fresh forger keys
//! (`spec.json`, `forger-N.key`) and the database of node 0 (`n0/db`) holding `blocks` blocks,
//! one per slot, each signed by that slot's best-ranked forger and carrying `transfers`
//! transfers. Genesis is placed in the past so that the last block is a few slots before now:
//! a node started on the folder continues the chain at the current slot. With `finality`, every
//! forger votes for the head in each slot, so that blocks become final one slot after they are
//! justified and the chain stores their proofs, as a live network's would.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use eyre::{WrapErr, bail};
use goodwill_ledger::chain::FinalityView;
use goodwill_ledger::finality::{BlockId, Finality, Vote};
use goodwill_ledger::lottery::rank_offset_ms;
use goodwill_ledger::{
    Address, Amount, Chain, ChainSpec, Keypair, Payload, RocksStore, StatePruning, TransactionBody,
};

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// Genesis forgers.
    pub forgers: usize,
    /// Blocks after genesis.
    pub blocks: u64,
    /// Transfers in each block.
    pub transfers: usize,
    /// Slot length.
    pub slot_ms: u64,
    /// Slots in an epoch (the spec's default if `None`).
    pub slots_per_epoch: Option<u64>,
    /// Whether the forgers vote, making the chain final as it grows.
    pub finality: bool,
    /// Accounts the transfers go to, in turn (each its own state leaf); with 0, the two dev
    /// accounts pay each other.
    pub recipients: usize,
    /// Which states node 0's database keeps (pruned as blocks become final, with `finality`).
    pub pruning: StatePruning,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct Prebuilt {
    /// The chain spec file.
    pub spec: PathBuf,
    /// Each genesis forger's key file.
    pub keys: Vec<PathBuf>,
    /// Node 0's base path, holding the chain.
    pub base_path: PathBuf,
    /// Transactions in the chain.
    pub transactions: usize,
}

/// Builds the chain into `dir` (which must not hold a spec yet).
pub fn build(dir: &Path, options: &Options) -> eyre::Result<Prebuilt> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    let spec_path = dir.join("spec.json");
    if spec_path.exists() {
        bail!("{} exists already", spec_path.display());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let lead = options.blocks + 3;
    let genesis_time = now.saturating_sub(lead * options.slot_ms);
    let mut spec = ChainSpec::local(genesis_time, options.forgers);
    spec.params.slot_duration_ms = options.slot_ms;
    if let Some(slots) = options.slots_per_epoch {
        spec.params.slots_per_epoch = slots;
    }
    let keys: Vec<(PathBuf, Keypair)> = spec.replace_forgers(dir)?;
    spec.validate()?;
    std::fs::write(&spec_path, spec.to_json() + "\n")
        .wrap_err_with(|| format!("writing {}", spec_path.display()))?;

    let base_path = crate::node_dir(dir, 0);
    let store = RocksStore::open(&base_path.join("db"))?;
    let mut chain = Chain::open(store, spec.clone())?;
    chain.set_pruning(options.pruning);
    // The insecure dev accounts are funded in every local spec; they pay each other, or the
    // recipients.
    let senders = [Keypair::insecure_dev("dev"), Keypair::insecure_dev("dev2")];
    let recipients: Vec<Address> =
        (0..options.recipients).map(|i| Keypair::insecure_dev(&format!("recipient-{i}")).address()).collect();
    let mut nonces = [0u64; 2];
    let mut transactions = 0;
    let mut finality = Finality::new(chain.genesis_hash(), spec.params.slots_per_epoch);
    for slot in 1..=options.blocks {
        let forgers: Vec<_> = keys.iter().map(|(_, key)| key.address()).collect();
        let ranks = chain.ranks(slot, &forgers)?;
        let Some((index, rank)) =
            ranks.iter().enumerate().filter_map(|(i, r)| r.map(|r| (i, r))).min_by_key(|(_, r)| *r)
        else {
            bail!("no forger may sign slot {slot}");
        };
        let key = &keys[index].1;
        let timestamp = genesis_time
            + slot * options.slot_ms
            + rank_offset_ms(options.slot_ms, spec.params.fallback_ranks, rank);
        let mut builder = chain.builder(key, slot, timestamp)?;
        for i in 0..options.transfers {
            let (from, to) = (i % 2, (i + 1) % 2);
            let tx = TransactionBody {
                chain_id: spec.chain_id.clone(),
                sender: senders[from].address(),
                nonce: nonces[from],
                fee: spec.params.min_fee,
                payload: Payload::Transfer {
                    to: match recipients.is_empty() {
                        true => senders[to].address(),
                        false => recipients[transactions % recipients.len()],
                    },
                    amount: Amount(1),
                },
            }
            .sign(&senders[from], &chain.genesis_hash());
            builder.push(tx).wrap_err("a prebuilt transfer was refused")?;
            nonces[from] += 1;
            transactions += 1;
        }
        let applied = builder.seal(key)?;
        chain.commit(applied)?;
        if options.finality {
            vote(&mut chain, &mut finality, slot, &keys)?;
        }
    }
    Ok(Prebuilt {
        spec: spec_path,
        keys: keys.into_iter().map(|(path, _)| path).collect(),
        base_path,
        transactions,
    })
}

/// Every forger votes for `chain`'s head in `round`; what becomes final is recorded, with its
/// proof.
fn vote(
    chain: &mut Chain<RocksStore>,
    finality: &mut Finality,
    round: u64,
    keys: &[(PathBuf, Keypair)],
) -> eyre::Result<()> {
    let head = BlockId { height: chain.head().header().height, hash: chain.head().hash() };
    let genesis = chain.genesis_hash();
    let progress = {
        let view = FinalityView::new(chain);
        let source = finality.source_for(&head, &view);
        let votes = keys.iter().map(|(_, key)| Vote { round, source, target: head }.sign(key, &genesis));
        let mut refused = Vec::new();
        let progress = finality.add_votes(votes, round, &view, &view, &mut refused);
        if let Some((vote, reason)) = refused.first() {
            bail!("a prebuilt vote was refused ({vote:?}): {reason}");
        }
        progress
    };
    if let Some(checkpoint) = progress.finalized {
        chain.finalize(checkpoint, progress.proof.as_ref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_chain_a_node_can_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            forgers: 3,
            blocks: 20,
            transfers: 3,
            slot_ms: 500,
            slots_per_epoch: Some(4),
            finality: true,
            recipients: 0,
            pruning: StatePruning::Archive,
        };
        let built = build(dir.path(), &options).unwrap();
        assert_eq!(built.transactions, 60);
        assert_eq!(built.keys.len(), 3);
        let spec = ChainSpec::from_json(&std::fs::read_to_string(&built.spec).unwrap()).unwrap();
        let chain = Chain::open(RocksStore::open(&built.base_path.join("db")).unwrap(), spec).unwrap();
        assert_eq!(chain.head().header().height, 20);
        assert_eq!(chain.finalized().block.height, 19, "every forger voted in every slot");
        assert!(chain.finality_proofs(1, 16).unwrap().len() >= 5, "a proof per epoch and the latest");
        let dev = chain.account(&Keypair::insecure_dev("dev").address()).unwrap();
        assert_eq!(dev.nonce, 40, "two of every three transfers come from dev");
        assert!(build(dir.path(), &options).is_err(), "an existing spec is not overwritten");
    }
}
