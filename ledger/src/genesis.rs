//! The genesis block a chain spec makes, and the state it starts from.

use std::collections::BTreeMap;

use crate::codec::{encode_association, encode_consensus, encode_forger, encode_registry, encode_rosters};
use crate::execute::AppliedBlock;
use crate::lottery::{Roster, epoch_seed};
use crate::state::{
    AssociationState, ConsensusState, EmptyTree, ForgerState, Registry, Rosters, Ticket, account_values,
    association_key, consensus_key, forger_key, registry_key, rosters_key, update_state,
};
use crate::store::StoreError;
use crate::{Account, Address, Amount, Block, ChainSpec, Hash, Header};

/// The genesis block of `spec` and the state it creates: balances, genesis forgers with
/// tickets that never expire, eligible genesis associations, the registry of both, and the
/// consensus record whose mix starts from the spec's commitment.
pub fn genesis(spec: &ChainSpec) -> Result<AppliedBlock, StoreError> {
    let commitment = spec.commitment();
    let accounts: BTreeMap<Address, Account> = spec
        .balances
        .iter()
        .map(|entry| (entry.address, Account { balance: entry.balance, nonce: 0 }))
        .collect();
    let mut entries = account_values(&accounts);
    for forger in &spec.forgers {
        let record = ForgerState {
            commitment: forger.commitment,
            blocks_forged: 0,
            tickets: vec![Ticket {
                weight: forger.ticket,
                first_epoch: 0,
                last_epoch: u64::MAX,
                forfeited_from: None,
            }],
        };
        entries.insert(forger_key(&forger.address), encode_forger(&forger.address, &record));
    }
    for association in &spec.associations {
        let record = AssociationState {
            name: association.name.clone(),
            proof_url: String::new(),
            document_hash: Hash::ZERO,
            registered_epoch: 0,
            voters: Vec::new(),
            eligible: true,
            received: Amount::ZERO,
        };
        entries
            .insert(association_key(&association.address), encode_association(&association.address, &record));
    }
    let mut forgers: Vec<Address> = spec.forgers.iter().map(|f| f.address).collect();
    forgers.sort();
    let mut associations: Vec<Address> = spec.associations.iter().map(|a| a.address).collect();
    associations.sort();
    let consensus = ConsensusState { mix: commitment, seed_epoch: 0, seed: epoch_seed(0, &commitment) };
    entries.insert(consensus_key(), encode_consensus(&consensus));
    entries.insert(registry_key(), encode_registry(&Registry { forgers, associations }));
    entries.insert(rosters_key(), encode_rosters(&genesis_rosters(spec)));
    let state = update_state(&EmptyTree, 0, entries)?;
    let header = Header {
        parent_hash: commitment,
        height: 0,
        slot: 0,
        timestamp_ms: spec.genesis_time_ms,
        transactions_root: Hash::ZERO,
        state_root: state.root,
        forger: Address::ZERO,
        transaction_count: 0,
        rank: 0,
        reveal: Hash::ZERO,
        next_commitment: Hash::ZERO,
        receipts_root: Hash::ZERO,
    };
    let block = Block { header: header.seal_unsigned(), transactions: Vec::new() };
    Ok(AppliedBlock { block, receipts: Vec::new(), state })
}

/// The roster commitments genesis holds: genesis tickets never expire, so epochs 0 and 1 draw
/// from the same roster.
pub fn genesis_rosters(spec: &ChainSpec) -> Rosters {
    let roster = Roster::new(spec.forgers.iter().map(|f| (f.address, f.ticket)));
    Rosters { commitments: vec![roster.commitment(0), roster.commitment(1)] }
}
