//! The ledger crate's integration tests, one binary (one link) for all: each module is one
//! file of tests, named after what it proves.

mod contract_fuzz;
mod contracts;
mod crash_safety;
mod example_contracts;
mod finality;
mod fork_choice;
mod good_will;
mod junk_blocks_cost_a_ticket_and_blame_only_their_sender;
mod long_partitions;
mod lottery_simulation;
mod migration;
mod network_simulation;
mod properties;
mod pruning;
mod rocks_store;
mod transaction_rules;
