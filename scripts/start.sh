#!/usr/bin/env bash
# The main command: installs what is missing, builds `goodwill`, and starts a forging node on a
# fresh development chain with its HTTP API on 127.0.0.1:9933 (Ctrl-C stops it cleanly).
# (The local multi-node cluster with its explorer replaces this once the network lands.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
bash scripts/rocksdb-prebuilt.sh >/dev/null
cargo build --release --locked -p goodwill-node
bin="$CARGO_TARGET_DIR/release/goodwill"
cat <<MSG
built $bin
starting a development node; in another terminal, try:
  $bin tx transfer --key dev --to $("$bin" chain-spec build --chain dev | grep -o 'gw1[a-z0-9]*' | sed -n 2p) --amount 1000000000 --wait
  curl -s http://127.0.0.1:9933/api/v1/status
MSG
exec "$bin" node --dev "$@"
