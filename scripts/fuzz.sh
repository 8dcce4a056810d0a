#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets: every decoder a stranger's bytes reach) for SECONDS
# each: `bash scripts/fuzz.sh [SECONDS] [TARGET...]` (default 10 s, all targets; the test command
# runs it so). For a longer hunt: `bash scripts/fuzz.sh 3600 block`.
#
# cargo-fuzz drives libFuzzer without a sanitizer (`-s none`: the instrumentation for coverage is
# a stable compiler flag; sanitizers are not). The corpus grows in the build cache, outside the
# clone; a crash is written to fuzz/artifacts/TARGET/ and fails the run, with the command that
# replays it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/env.sh"
seconds=${1:-10}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# Instrumented builds go apart from the workspace's.
export CARGO_TARGET_DIR="$GOODWILL_CACHE/fuzz-target"
cd "$root/fuzz"
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  corpus="$GOODWILL_CACHE/fuzz-corpus/$target"
  mkdir -p "$corpus"
  status=0
  cargo fuzz run -s none --release "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 ||
    status=$?
  runs=$(awk '/^stat::number_of_executed_units/ { print $NF }' "$log")
  echo "fuzz: $target: ${runs:-0} inputs in $seconds s" >&2
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
done
