//! Chain specs: the JSON file that defines a chain's genesis and its rules.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Address, Amount, Hash, Keypair};

/// A chain's definition. Everything but `name` and `bootnodes` is committed to by the genesis
/// hash, so nodes that disagree on a rule cannot share a genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// Human-readable name.
    pub name: String,
    /// Identifier bound into every transaction signature, for example `goodwill-dev`.
    pub chain_id: String,
    /// Start of slot 0, Unix milliseconds.
    pub genesis_time_ms: u64,
    /// Consensus parameters.
    pub params: ChainParams,
    /// Initial balances.
    pub balances: Vec<GenesisBalance>,
    /// Forgers allowed from genesis.
    pub forgers: Vec<GenesisForger>,
    /// Associations eligible from genesis to receive ticket money.
    #[serde(default)]
    pub associations: Vec<GenesisAssociation>,
    /// libp2p multiaddrs of nodes to join through.
    #[serde(default)]
    pub bootnodes: Vec<String>,
    /// Transaction-pool policy shared by the network's nodes. Not consensus: the genesis hash
    /// does not commit to it, and a node may run another policy without forking.
    #[serde(default)]
    pub pool: PoolParams,
}

/// Transaction-pool policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolParams {
    /// Slots a transaction may wait in a pool before it is dropped: this is how transactions
    /// nobody wants to include (too cheap, or waiting on a nonce that never comes) go away.
    pub tx_expiry_slots: u64,
}

impl Default for PoolParams {
    fn default() -> Self {
        // An hour of two-second slots.
        PoolParams { tx_expiry_slots: 1_800 }
    }
}

/// Consensus parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    /// Length of a slot.
    pub slot_duration_ms: u64,
    /// New coins paid to the forger of each block.
    pub block_reward: Amount,
    /// Smallest fee a transaction may pay.
    pub min_fee: Amount,
    /// Most transactions in one block.
    pub max_block_transactions: u32,
    /// Most bytes of transactions in one block.
    pub max_block_bytes: u32,
    /// Most bytes in one signed transaction.
    pub max_transaction_bytes: u32,
    /// Slots in an epoch; lottery seeds and rosters change per epoch.
    pub slots_per_epoch: u64,
    /// Drawn lottery ranks per slot before the open rank.
    pub fallback_ranks: u32,
    /// Smallest ticket price.
    pub min_ticket_price: Amount,
    /// Longest ticket span, in epochs.
    pub max_ticket_epochs: u32,
    /// Epochs an association registration stays open for votes.
    pub vote_window_epochs: u64,
    /// Most gas the contract transactions of one block may bring, summed over their gas
    /// limits: a block above it is invalid. Sized so that a block at the limit running the
    /// costliest programs imports within a quarter of a slot on a small board
    /// (docs/benchmarks.md).
    ///
    /// Left out of the JSON (and so of the genesis commitment) when it has the default value:
    /// chains made before the field existed keep their genesis hash.
    #[serde(default = "default_max_block_gas", skip_serializing_if = "is_default_max_block_gas")]
    pub max_block_gas: u64,
    /// Smallest fee of an association's registration: every registration is a record forgers
    /// must consider and that stays in the state while its vote is open, so making one costs
    /// far more than a transfer. Left out of the JSON when it has the default value, as
    /// `max_block_gas` is.
    #[serde(
        default = "default_min_registration_fee",
        skip_serializing_if = "is_default_min_registration_fee"
    )]
    pub min_registration_fee: Amount,
}

fn default_min_registration_fee() -> Amount {
    ChainParams::default().min_registration_fee
}

fn is_default_min_registration_fee(fee: &Amount) -> bool {
    *fee == default_min_registration_fee()
}

fn default_max_block_gas() -> u64 {
    ChainParams::default().max_block_gas
}

fn is_default_max_block_gas(gas: &u64) -> bool {
    *gas == default_max_block_gas()
}

/// An initial balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisBalance {
    /// Account.
    pub address: Address,
    /// Its balance at genesis.
    pub balance: Amount,
}

/// A forger that holds forging weight from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisForger {
    /// The forger's address.
    pub address: Address,
    /// Forging weight of its genesis ticket, which never expires.
    pub ticket: Amount,
    /// Commitment to its first reveal (`Keypair::reveal_commitment(0)`).
    pub commitment: Hash,
}

impl GenesisForger {
    /// The genesis entry for `key` with a ticket of `weight`.
    pub fn for_key(key: &Keypair, weight: Amount) -> GenesisForger {
        GenesisForger { address: key.address(), ticket: weight, commitment: key.reveal_commitment(0) }
    }
}

/// An association eligible from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAssociation {
    /// Its name.
    pub name: String,
    /// The address donations go to.
    pub address: Address,
}

/// A chain spec is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Not JSON, or not a chain spec's shape.
    #[error("the chain spec is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// A rule of chain specs is broken.
    #[error("the chain spec is not valid: {0}")]
    Invalid(String),
}

/// The part of the spec the genesis hash commits to.
#[derive(Serialize)]
struct Consensus<'a> {
    chain_id: &'a str,
    genesis_time_ms: u64,
    params: &'a ChainParams,
    balances: &'a [GenesisBalance],
    forgers: &'a [GenesisForger],
    associations: &'a [GenesisAssociation],
}

/// Domain tag of the spec commitment that genesis names as its parent.
const SPEC_DOMAIN: &[u8] = b"goodwill/chain-spec/v1";

/// The slot that `time_ms` falls in, on a chain whose slot 0 starts at `genesis_time_ms` and
/// whose slots last `slot_duration_ms`: the one slot clock every part of a node reads (times
/// before genesis are slot 0; a zero duration, which no valid spec has, is read as 1 ms).
pub fn slot_at(genesis_time_ms: u64, slot_duration_ms: u64, time_ms: u64) -> u64 {
    time_ms.saturating_sub(genesis_time_ms) / slot_duration_ms.max(1)
}

/// How far ahead of a node's clock a block's timestamp may be and the block still be imported
/// or relayed: clocks of honest nodes disagree by this much at most (NTP keeps them within tens
/// of milliseconds; a second leaves room for a machine without it). A block stamped later than
/// that is refused on every path (gossip, sync, ancestor fetch, light peer) until the clock
/// reaches it, so that a forger cannot take future slots from the honest ones (docs/security.md).
pub const MAX_CLOCK_DRIFT_MS: u64 = 1_000;

/// Whether a block stamped `timestamp_ms` is ahead of the clock reading `now_ms` by more than
/// [`MAX_CLOCK_DRIFT_MS`].
pub fn from_the_future(timestamp_ms: u64, now_ms: u64) -> bool {
    timestamp_ms > now_ms.saturating_add(MAX_CLOCK_DRIFT_MS)
}

impl ChainSpec {
    /// Parses and validates a spec.
    pub fn from_json(text: &str) -> Result<ChainSpec, SpecError> {
        let spec: ChainSpec = serde_json::from_str(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the rules every spec must follow.
    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |why: String| Err(SpecError::Invalid(why));
        let id_ok = !self.chain_id.is_empty()
            && self.chain_id.len() <= 64
            && self.chain_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return invalid(format!(
                "chain_id {:?} must be 1 to 64 characters of a-z, 0-9 and '-'",
                self.chain_id
            ));
        }
        let p = &self.params;
        if p.slot_duration_ms == 0 {
            return invalid("params.slot_duration_ms must be positive".into());
        }
        if p.max_block_transactions == 0 || p.max_block_bytes == 0 || p.max_transaction_bytes == 0 {
            return invalid("params.max_* limits must be positive".into());
        }
        if p.slots_per_epoch == 0 || p.max_ticket_epochs == 0 || p.vote_window_epochs == 0 {
            return invalid(
                "params.slots_per_epoch, max_ticket_epochs and vote_window_epochs must be positive".into(),
            );
        }
        if self.pool.tx_expiry_slots == 0 {
            return invalid("pool.tx_expiry_slots must be positive".into());
        }
        if p.fallback_ranks > 16 {
            return invalid("params.fallback_ranks must be at most 16".into());
        }
        if p.max_block_gas < crate::contract::MAX_TRANSACTION_GAS {
            return invalid(format!(
                "params.max_block_gas must be at least one transaction's most gas, {}",
                crate::contract::MAX_TRANSACTION_GAS
            ));
        }
        if p.max_transaction_bytes > p.max_block_bytes {
            return invalid("params.max_transaction_bytes exceeds params.max_block_bytes".into());
        }
        let mut seen = BTreeSet::new();
        let mut supply = Amount::ZERO;
        for entry in &self.balances {
            if !seen.insert(entry.address) {
                return invalid(format!("balances lists {} twice", entry.address));
            }
            supply = match supply.checked_add(entry.balance) {
                Some(sum) => sum,
                None => return invalid("the initial balances add up to more than 2^64 base units".into()),
            };
        }
        if self.forgers.is_empty() {
            return invalid("forgers must name at least one genesis forger".into());
        }
        let mut forgers = BTreeSet::new();
        for forger in &self.forgers {
            if !forgers.insert(forger.address) {
                return invalid(format!("forgers lists {} twice", forger.address));
            }
            if forger.ticket == Amount::ZERO {
                return invalid(format!("forger {} has a zero ticket", forger.address));
            }
        }
        Ok(())
    }

    /// What genesis names as its parent: a commitment to every consensus field of the spec.
    pub fn commitment(&self) -> Hash {
        let consensus = Consensus {
            chain_id: &self.chain_id,
            genesis_time_ms: self.genesis_time_ms,
            params: &self.params,
            balances: &self.balances,
            forgers: &self.forgers,
            associations: &self.associations,
        };
        let bytes = serde_json::to_vec(&consensus).unwrap_or_default();
        Hash::tagged(SPEC_DOMAIN, &bytes)
    }

    /// Replaces the genesis forgers by fresh keys with the same weights and balances, writing
    /// each key to `dir/forger-N.key` (never overwriting a file). Returns the files and keys.
    pub fn replace_forgers(
        &mut self,
        dir: &std::path::Path,
    ) -> Result<Vec<(std::path::PathBuf, Keypair)>, crate::KeyError> {
        let mut written = Vec::with_capacity(self.forgers.len());
        for (i, forger) in self.forgers.iter_mut().enumerate() {
            let key = Keypair::generate()?;
            let path = dir.join(format!("forger-{i}.key"));
            key.write_file(&path)?;
            for balance in self.balances.iter_mut().filter(|b| b.address == forger.address) {
                balance.address = key.address();
            }
            *forger = GenesisForger::for_key(&key, forger.ticket);
            written.push((path, key));
        }
        Ok(written)
    }

    /// Start of `slot` in Unix milliseconds, or `None` past the year 584 million.
    pub fn slot_start_ms(&self, slot: u64) -> Option<u64> {
        slot.checked_mul(self.params.slot_duration_ms)?.checked_add(self.genesis_time_ms)
    }

    /// The slot the time `time_ms` (ms since the Unix epoch) falls in; see [`slot_at`].
    pub fn slot_at(&self, time_ms: u64) -> u64 {
        slot_at(self.genesis_time_ms, self.params.slot_duration_ms, time_ms)
    }

    /// The single-node development chain: `dev` forges, `dev` and `dev2` are funded.
    /// Its keys are public: never use it for anything of value.
    pub fn dev(genesis_time_ms: u64) -> ChainSpec {
        let forger = Keypair::insecure_dev("dev");
        ChainSpec {
            name: "Goodwill development chain".into(),
            chain_id: "goodwill-dev".into(),
            genesis_time_ms,
            params: ChainParams::default(),
            balances: dev_balances(),
            forgers: vec![GenesisForger::for_key(&forger, Amount::coins(1_000))],
            associations: vec![dev_association()],
            bootnodes: vec![],
            pool: PoolParams::default(),
        }
    }

    /// The local cluster chain: `forgers` well-known forger keys (`local-forger-0`, ...), `dev`
    /// and `dev2` funded. Its keys are public: never use it for anything of value.
    pub fn local(genesis_time_ms: u64, forgers: usize) -> ChainSpec {
        let forger_keys: Vec<Keypair> =
            (0..forgers.max(1)).map(|i| Keypair::insecure_dev(&format!("local-forger-{i}"))).collect();
        let mut balances = dev_balances();
        balances.extend(
            forger_keys
                .iter()
                .map(|key| GenesisBalance { address: key.address(), balance: Amount::coins(10_000) }),
        );
        ChainSpec {
            name: "Goodwill local cluster".into(),
            chain_id: "goodwill-local".into(),
            genesis_time_ms,
            params: ChainParams::default(),
            balances,
            forgers: forger_keys
                .iter()
                .map(|key| GenesisForger::for_key(key, Amount::coins(1_000)))
                .collect(),
            associations: vec![dev_association()],
            bootnodes: vec![],
            pool: PoolParams::default(),
        }
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            slot_duration_ms: 2_000,
            block_reward: Amount::coins(10),
            min_fee: Amount(1_000),
            max_block_transactions: 10_000,
            max_block_bytes: 4 * 1024 * 1024,
            max_transaction_bytes: 16 * 1024,
            slots_per_epoch: 30,
            fallback_ranks: 2,
            min_ticket_price: Amount::coins(10),
            max_ticket_epochs: 10_000,
            vote_window_epochs: 100,
            max_block_gas: 4 * crate::contract::MAX_TRANSACTION_GAS,
            min_registration_fee: Amount::coins(100),
        }
    }
}

fn dev_balances() -> Vec<GenesisBalance> {
    ["dev", "dev2"]
        .into_iter()
        .map(|name| GenesisBalance {
            address: Keypair::insecure_dev(name).address(),
            balance: Amount::coins(1_000_000),
        })
        .collect()
}

fn dev_association() -> GenesisAssociation {
    GenesisAssociation {
        name: "Development good cause (insecure)".into(),
        address: Keypair::insecure_dev("dev-association").address(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_specs_are_valid_and_round_trip() {
        for spec in [ChainSpec::dev(1), ChainSpec::local(1, 4)] {
            spec.validate().unwrap();
            assert_eq!(ChainSpec::from_json(&spec.to_json()).unwrap(), spec);
        }
    }

    #[test]
    fn every_consensus_field_changes_the_commitment() {
        let base = ChainSpec::dev(1);
        let mut changed = vec![base.clone(); 5];
        changed[0].chain_id = "other".into();
        changed[1].genesis_time_ms = 2;
        changed[2].params.min_fee = Amount(7);
        changed[3].balances[0].balance = Amount(1);
        changed[4].forgers[0].ticket = Amount(1);
        for spec in changed {
            assert_ne!(spec.commitment(), base.commitment());
        }
        let mut cosmetic = base.clone();
        cosmetic.name = "renamed".into();
        cosmetic.bootnodes.push("/ip4/127.0.0.1/tcp/1".into());
        assert_eq!(cosmetic.commitment(), base.commitment());
    }

    #[test]
    fn broken_specs_are_refused_with_a_reason() {
        type Breaker = fn(&mut ChainSpec);
        let cases: Vec<(&str, Breaker)> = vec![
            ("chain_id", |s| s.chain_id = "Has Spaces".into()),
            ("slot_duration_ms", |s| s.params.slot_duration_ms = 0),
            ("twice", |s| s.balances.push(s.balances[0].clone())),
            ("2^64", |s| s.balances[0].balance = Amount(u64::MAX)),
            ("at least one", |s| s.forgers.clear()),
        ];
        for (needle, break_it) in cases {
            let mut spec = ChainSpec::dev(1);
            break_it(&mut spec);
            let error = spec.validate().unwrap_err().to_string();
            assert!(error.contains(needle), "{error:?} should mention {needle:?}");
        }
        let error = ChainSpec::from_json("{\"name\": 1}").unwrap_err();
        assert!(matches!(error, SpecError::Json(_)));
        let unknown = ChainSpec::dev(1).to_json().replacen('{', "{\"surprise\": 1,", 1);
        assert!(ChainSpec::from_json(&unknown).is_err(), "unknown fields must be refused");
    }
}
