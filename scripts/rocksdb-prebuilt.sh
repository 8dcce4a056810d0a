#!/usr/bin/env bash
# Prints the folder holding a prebuilt librocksdb.a for the librocksdb-sys version in Cargo.lock,
# building it first if the cache lacks it. Progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/env.sh"

version=$(awk '/^name = "librocksdb-sys"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")
if [ -z "$version" ]; then
  echo "rocksdb-prebuilt: librocksdb-sys is not in Cargo.lock" >&2
  exit 1
fi
lib_dir="$GOODWILL_CACHE/rocksdb/$version"
if [ -f "$lib_dir/librocksdb.a" ]; then
  echo "$lib_dir"
  exit 0
fi

echo "rocksdb-prebuilt: compiling RocksDB $version once (about 25 minutes on 2 cores)..." >&2
build_dir="$GOODWILL_CACHE/rocksdb-build"
(
  cd "$root"
  unset ROCKSDB_LIB_DIR ROCKSDB_STATIC
  CARGO_PROFILE_RELEASE_DEBUG=false cargo build --locked --release -p librocksdb-sys \
    --target-dir "$build_dir" >&2
)
archive=$(find "$build_dir/release/build" -path "*librocksdb-sys-*/out/librocksdb.a" -newer "$root/Cargo.lock" | head -n 1)
[ -n "$archive" ] || archive=$(find "$build_dir/release/build" -path "*librocksdb-sys-*/out/librocksdb.a" | head -n 1)
if [ -z "$archive" ]; then
  echo "rocksdb-prebuilt: the build left no librocksdb.a" >&2
  exit 1
fi
mkdir -p "$lib_dir.tmp"
cp "$archive" "$lib_dir.tmp/librocksdb.a"
mv "$lib_dir.tmp" "$lib_dir"
rm -rf "$build_dir"
echo "$lib_dir"
