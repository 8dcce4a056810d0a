//! The protocol crate's integration tests, one binary (one link) for all: each module is one
//! file of tests, named after what it proves.

mod service;
mod two_swarms;
