#!/usr/bin/env bash
# Builds the release packages into $CARGO_TARGET_DIR/package: a .deb (`goodwill` and
# `goodwill-light` in /usr/bin, a systemd unit running the node as the user `goodwill` with its
# data in /var/lib/goodwill, a default /etc/goodwill/config.toml), and a Docker build context
# holding the same binaries (scripts/package/Dockerfile).
#
#   bash scripts/package.sh            # this machine's architecture (x86_64: amd64)
#   bash scripts/package.sh arm64      # 64-bit Raspberry Pi OS, cross-compiled from x86_64
#   bash scripts/package-check.sh      # installs the amd64 .deb here, starts the node as its user
#   bash scripts/package-check.sh arm64  # runs the arm64 binaries under qemu-user
#
# The arm64 build uses Debian's Rust (rustc-web, with its aarch64 standard library) and GNU
# cross compilers, which scripts/cross-arm64.sh installs; RocksDB is compiled for the board in
# its own target folder. Times and sizes: docs/benchmarks.md, "Packages".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=${1:-$(dpkg --print-architecture)}
case "$arch" in
    "$(dpkg --print-architecture)")
        cargo=(cargo)
        target_args=()
        bin_dir="$CARGO_TARGET_DIR"
        strip=strip
        bash scripts/rocksdb-prebuilt.sh >/dev/null
        ;;
    arm64)
        source scripts/cross-arm64.sh
        cargo=(/usr/bin/cargo)
        target_args=(--target aarch64-unknown-linux-gnu)
        bin_dir="$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu"
        strip=aarch64-linux-gnu-strip
        ;;
    *) echo "package.sh: no build for $arch (amd64 here, or arm64)" >&2; exit 1 ;;
esac
out="$GOODWILL_CACHE/package"
root="$out/goodwill_${version}_${arch}"

"${cargo[@]}" build --release --locked "${target_args[@]}" -p goodwill-testnet --bin goodwill
# The light peer's own build: no RocksDB, no contract engine, optimised for size.
"${cargo[@]}" build --profile light --locked "${target_args[@]}" -p goodwill-node --no-default-features \
    --bin goodwill-light

rm -rf "$root" "$out/context-$arch"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/goodwill" \
    "$root/usr/share/doc/goodwill" "$out/context-$arch"
install -m 0755 "$bin_dir/release/goodwill" "$bin_dir/light/goodwill-light" "$root/usr/bin/"
# Line tables and symbols are for developers' backtraces; the package ships the code alone, as
# Debian's own packages do (a board's storage is small).
"$strip" --strip-all "$root/usr/bin/goodwill" "$root/usr/bin/goodwill-light"
install -m 0644 scripts/package/goodwill.service "$root/lib/systemd/system/goodwill.service"
install -m 0640 scripts/package/config.toml "$root/etc/goodwill/config.toml"
install -m 0755 scripts/package/postinst scripts/package/prerm scripts/package/postrm "$root/DEBIAN/"
install -m 0644 README.md ARCHITECTURE.md "$root/usr/share/doc/goodwill/"
echo /etc/goodwill/config.toml >"$root/DEBIAN/conffiles"
size=$(du -sk "$root/usr" "$root/lib" "$root/etc" | awk '{s += $1} END {print s}')
cat >"$root/DEBIAN/control" <<CONTROL
Package: goodwill
Version: $version
Architecture: $arch
Maintainer: Goodwill developers <dev@goodwill-chain.org>
Depends: adduser, libc6 (>= 2.34), libgcc-s1, libstdc++6
Section: net
Priority: optional
Installed-Size: $size
Homepage: https://github.com/goodwill-chain/goodwill
Description: Goodwill blockchain node (Proof of Good-Will)
 A peer-to-peer node of a Goodwill chain: forging by ticket lottery, finality by the forgers'
 votes, an HTTP API and web explorer. goodwill-light is the light peer alone, for small devices.
CONTROL
deb="$out/goodwill_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
cp "$root/usr/bin/goodwill" "$root/usr/bin/goodwill-light" "$out/context-$arch/"
echo "built $deb ($(du -h "$deb" | cut -f1))"
echo "Docker context: $out/context-$arch (docker build -f scripts/package/Dockerfile $out/context-$arch)"
