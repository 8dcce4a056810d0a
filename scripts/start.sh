#!/usr/bin/env bash
# The main command: installs what is missing, builds `goodwill`, and brings up a local cluster of
# main nodes (4 unless told otherwise: any `goodwill testnet up` option passes through, e.g.
# `--nodes 3`, `--fresh`, `--detach`). Ctrl-C stops every node cleanly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
bash scripts/rocksdb-prebuilt.sh >/dev/null
cargo build --release --locked -p goodwill-testnet --bin goodwill
bin="$CARGO_TARGET_DIR/release/goodwill"
echo "built $bin"
exec "$bin" testnet up "$@"
