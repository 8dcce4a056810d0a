//! The testnet crate's integration tests, one binary (one link) for all: each module is one
//! file of tests, named after what it proves; they run real `goodwill` processes on 127.0.0.1.

mod a_cluster_comes_up_agrees_and_stops;
mod a_dev_node_commits_what_users_send;
mod a_forger_without_peers_waits_for_one;
mod a_hostile_peer_cannot_slow_or_split_a_loaded_cluster;
mod ancestors;
mod bench_load;
mod common;
mod contracts;
mod crashed_stopped_and_partitioned_nodes_heal;
mod explorer;
mod finality;
mod hostile_contracts;
mod joining_by_genesis_hash;
mod late_and_killed_nodes_catch_up;
mod launching_a_public_network;
mod light;
mod live_events;
mod lying_claims_never_pause_forging;
mod misbehaving_peer;
mod netns;
mod offline_commands_work_as_a_user_runs_them;
mod partition;
mod state_sync;
mod the_api_shows_the_ledger_and_refuses_bad_input;
mod three_nodes_agree_and_refuse_another_chain;
mod wallet;
