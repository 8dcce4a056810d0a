//! The testnet crate's integration tests, one binary (one link) for all: each module is one
//! file of tests, named after what it proves.

mod ancestors;
mod api;
mod bench_load;
mod cli;
mod common;
mod contracts;
mod dev_node;
mod explorer;
mod hostile_contracts;
mod light;
mod misbehaving_peer;
mod netns;
mod partition;
mod scenario;
mod sync;
mod testnet;
mod three_nodes;
mod wallet;
