//! A cluster scenario in the testnet crate's scenario language, with real processes: a node that
//! crashes and one that stops cleanly come back and catch up, and a partition heals into one
//! chain.

#![allow(clippy::unwrap_used)]

use crate::common;

use goodwill_testnet::scenario::Scenario;

#[test]
fn crash_restart_partition_heal() {
    let scenario = Scenario::parse(
        "start 4
         wait height 3
         kill 1            # a crash: the other three keep forging
         wait 3 blocks
         restart 1
         stop 2
         restart 2
         one head
         partition 0 1 | 2 3
         wait 2 blocks
         wait apart        # each half forged a branch of its own
         heal
         wait 2 blocks
         one head",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = std::path::Path::new(common::GOODWILL);
    scenario.run(binary, dir.path(), 1_000, |step| eprintln!("scenario: {step}")).unwrap();
}
