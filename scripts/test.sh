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
cargo test --workspace --locked
# Every decoder a stranger's bytes reach, fuzzed briefly (longer: scripts/fuzz.sh SECONDS).
bash scripts/fuzz.sh 10
