#!/usr/bin/env bash
# The test command: installs what is missing, then formatting, lints, every test, and a short
# fuzzing run of every decoder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh --test
source scripts/env.sh
bash scripts/rocksdb-prebuilt.sh >/dev/null
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The light peer's own build: the ledger and node crates without their `node` feature, which
# must leave RocksDB and the contract engine out of its dependency graph.
cargo clippy -p goodwill-ledger -p goodwill-node --no-default-features --lib --bins --locked -- -D warnings
if cargo tree -p goodwill-node --no-default-features --edges normal --prefix none --locked |
    grep -E '^(rocksdb|librocksdb-sys|starlark) '; then
    echo "goodwill-light's build links the crates above; it must not (node/Cargo.toml, feature node)" >&2
    exit 1
fi
cargo test --workspace --locked -- --skip netns::
# The multi-host tests (network namespaces, partitions of 70 slots) one at a time, after the
# rest: their heals are timed, and on two cores the other clusters' load stretched them past
# their bounds in some runs.
cargo test -p goodwill-testnet --test it --locked -- netns:: --test-threads=1
# Every decoder a stranger's bytes reach, fuzzed briefly (longer: scripts/fuzz.sh SECONDS).
bash scripts/fuzz.sh 10
