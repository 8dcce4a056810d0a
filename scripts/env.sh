# Sourced by the project's scripts: where builds and caches live.
#
# One target directory outside the clone, so that every checkout (yours, CI's fresh clone) reuses
# the same warm build. RocksDB's C++ is 87% of a clean build: it is compiled once, optimised, into
# a cache keyed by the exact librocksdb-sys version (scripts/rocksdb-prebuilt.sh), and every build
# profile links that archive instead of compiling it again.
GOODWILL_CACHE=${GOODWILL_CACHE:-$HOME/.cache/goodwill}
export GOODWILL_CACHE
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$GOODWILL_CACHE/target}

# Link the prebuilt RocksDB (scripts/rocksdb-prebuilt.sh makes it) instead of compiling it.
goodwill_rocksdb_version=$(awk '/^name = "librocksdb-sys"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
  "$(dirname "${BASH_SOURCE[0]}")/../Cargo.lock")
export ROCKSDB_LIB_DIR="$GOODWILL_CACHE/rocksdb/$goodwill_rocksdb_version"
export ROCKSDB_STATIC=1
unset goodwill_rocksdb_version
