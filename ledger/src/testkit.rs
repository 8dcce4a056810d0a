//! Deterministic chains for tests and benchmarks (feature `testkit`).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use std::sync::OnceLock;

use crate::lottery::rank_offset_ms;
use crate::{
    Amount, Block, Chain, ChainParams, ChainSpec, GenesisAssociation, GenesisBalance, GenesisForger, Hash,
    Keypair, MemoryStore, Payload, Transaction, TransactionBody,
};

/// Chain id of test chains.
pub const CHAIN_ID: &str = "goodwill-test";
/// Accounts funded at genesis: `account(0)` to `account(FUNDED_ACCOUNTS - 1)`.
pub const FUNDED_ACCOUNTS: usize = 64;

/// The forger of test chains.
pub fn forger() -> Keypair {
    Keypair::insecure_dev("testkit-forger")
}

/// Key of test account `i`.
pub fn account(i: usize) -> Keypair {
    Keypair::insecure_dev(&format!("testkit-account-{i}"))
}

/// The eligible association of test chains.
pub fn association() -> Keypair {
    Keypair::insecure_dev("testkit-association")
}

/// The earliest valid timestamp for a block of `rank` in `slot`.
pub fn slot_time(spec: &ChainSpec, slot: u64, rank: u32) -> u64 {
    let params = &spec.params;
    spec.slot_start_ms(slot).expect("slot in range")
        + rank_offset_ms(params.slot_duration_ms, params.fallback_ranks, rank)
}

/// The test chain's spec: [`FUNDED_ACCOUNTS`] funded accounts, one forger and one association;
/// slot 0 starts at time 0.
pub fn spec() -> ChainSpec {
    spec_funding(FUNDED_ACCOUNTS)
}

/// The test chain's spec with `accounts` funded accounts (another genesis unless it is
/// [`FUNDED_ACCOUNTS`]): for benchmarks that need many senders.
pub fn spec_funding(accounts: usize) -> ChainSpec {
    ChainSpec {
        name: "test".into(),
        chain_id: CHAIN_ID.into(),
        genesis_time_ms: 0,
        params: ChainParams { min_fee: Amount(10), block_reward: Amount(1_000), ..ChainParams::default() },
        balances: (0..accounts)
            .map(|i| GenesisBalance { address: account(i).address(), balance: Amount::coins(1_000) })
            .collect(),
        forgers: vec![GenesisForger::for_key(&forger(), Amount(1))],
        associations: vec![GenesisAssociation {
            name: "test cause".into(),
            address: association().address(),
        }],
        bootnodes: vec![],
        pool: Default::default(),
    }
}

/// The test chain's genesis hash, which its transactions are signed for.
pub fn genesis_hash() -> Hash {
    static GENESIS: OnceLock<Hash> = OnceLock::new();
    *GENESIS.get_or_init(|| crate::genesis(&spec()).expect("the test spec is valid").block.hash())
}

/// A signed transfer on the test chain.
pub fn transfer(from: &Keypair, to: &Keypair, nonce: u64, amount: u64, fee: u64) -> Transaction {
    transfer_on(&genesis_hash(), from, to, nonce, amount, fee)
}

/// A signed transfer on the chain whose genesis hash is `genesis`.
fn transfer_on(
    genesis: &Hash,
    from: &Keypair,
    to: &Keypair,
    nonce: u64,
    amount: u64,
    fee: u64,
) -> Transaction {
    TransactionBody {
        chain_id: CHAIN_ID.into(),
        sender: from.address(),
        nonce,
        fee: Amount(fee),
        payload: Payload::Transfer { to: to.address(), amount: Amount(amount) },
    }
    .sign(from, genesis)
}

/// A chain of `slots` empty blocks, one per slot, forged by `keys` (genesis forgers of
/// `spec`), on which every key votes for the head in each slot: blocks become final one round
/// after they are justified, and the chain stores the proofs, as a live network's would.
pub fn final_chain(spec: ChainSpec, keys: &[Keypair], slots: u64) -> Chain<MemoryStore> {
    final_chain_pruning(spec, keys, slots, crate::StatePruning::Archive)
}

/// [`final_chain`], pruning old states as blocks become final.
pub fn final_chain_pruning(
    spec: ChainSpec,
    keys: &[Keypair],
    slots: u64,
    pruning: crate::StatePruning,
) -> Chain<MemoryStore> {
    use crate::chain::FinalityView;
    use crate::finality::{BlockId, Finality, Vote};
    let addresses: Vec<crate::Address> = keys.iter().map(Keypair::address).collect();
    let mut chain = Chain::open(MemoryStore::new(), spec).expect("a valid spec");
    chain.set_pruning(pruning);
    let mut finality = Finality::new(chain.genesis_hash(), chain.spec().params.slots_per_epoch);
    for slot in 1..=slots {
        let ranks = chain.ranks(slot, &addresses).expect("a memory store");
        let (i, rank) = ranks
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, (*r)?)))
            .min_by_key(|(_, r)| *r)
            .expect("the open rank lets every forger sign");
        let time = slot_time(chain.spec(), slot, rank);
        let applied = chain.builder(&keys[i], slot, time).and_then(|b| Ok(b.seal(&keys[i])?));
        chain.commit(applied.expect("a winner forges")).expect("its own block applies");
        let head = BlockId { height: chain.head().header().height, hash: chain.head().hash() };
        let progress = {
            let view = FinalityView::new(&chain);
            let source = finality.source_for(&head, &view);
            let votes = keys
                .iter()
                .map(|k| Vote { round: slot, source, target: head }.sign(k, &chain.genesis_hash()));
            finality.add_votes(votes, slot, &view, &view, &mut Vec::new())
        };
        if let Some(checkpoint) = progress.finalized {
            chain.finalize(checkpoint, progress.proof.as_ref()).expect("a checkpoint of this chain");
        }
    }
    chain
}

/// Builds a valid chain of random transfers on a memory store, block by block.
pub struct ChainGenerator {
    /// The chain built so far.
    pub chain: Chain<MemoryStore>,
    keys: Vec<Keypair>,
    nonces: Vec<u64>,
    forger: Keypair,
    rng: StdRng,
}

impl ChainGenerator {
    /// A generator of transfers among `accounts` funded accounts, seeded: on the test chain
    /// ([`spec`]) for up to [`FUNDED_ACCOUNTS`], on one funding more otherwise.
    pub fn new(accounts: usize, seed: u64) -> ChainGenerator {
        let spec = spec_funding(accounts.max(FUNDED_ACCOUNTS));
        let chain = Chain::open(MemoryStore::new(), spec).expect("test spec is valid");
        ChainGenerator {
            chain,
            keys: (0..accounts).map(account).collect(),
            nonces: vec![0; accounts],
            forger: forger(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Signs `count` random transfers between the accounts, valid in sequence on the head.
    pub fn transfers(&mut self, count: usize) -> Vec<Transaction> {
        let genesis = self.chain.genesis_hash();
        (0..count)
            .map(|_| {
                let from = self.rng.random_range(0..self.keys.len());
                let to = self.rng.random_range(0..self.keys.len());
                let amount = self.rng.random_range(1..1_000);
                let fee = self.rng.random_range(10..20);
                let tx =
                    transfer_on(&genesis, &self.keys[from], &self.keys[to], self.nonces[from], amount, fee);
                self.nonces[from] += 1;
                tx
            })
            .collect()
    }

    /// Forges the next block (next slot) with `transactions`, commits it, and returns it.
    pub fn next_block_with(&mut self, transactions: Vec<Transaction>) -> Block {
        let slot = self.chain.head().header().slot + 1;
        let timestamp = slot_time(self.chain.spec(), slot, 0);
        let mut builder =
            self.chain.builder(&self.forger, slot, timestamp).expect("the test forger holds all the weight");
        for tx in transactions {
            builder.push(tx).expect("generated transactions are valid");
        }
        let applied = builder.seal(&self.forger).expect("sealing a valid block");
        let block = applied.block.clone();
        self.chain.commit(applied).expect("memory commit");
        block
    }

    /// Forges the next block with `count` random transfers.
    pub fn next_block(&mut self, count: usize) -> Block {
        let transactions = self.transfers(count);
        self.next_block_with(transactions)
    }
}
