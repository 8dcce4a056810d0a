#!/usr/bin/env bash
# The main command: installs what is missing, builds `goodwill`, and starts what Goodwill can run
# today. (The local multi-node cluster with its explorer replaces this once the network lands.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
bash scripts/rocksdb-prebuilt.sh >/dev/null
cargo build --release --locked -p goodwill-node
bin="$CARGO_TARGET_DIR/release/goodwill"
echo "built $bin"
"$bin" --help
