# Sourced by scripts/package.sh and scripts/package-check.sh: the cross build for 64-bit ARM
# (Raspberry Pi OS, Debian arm64) from x86_64. Rustup cannot fetch another target's standard
# library here, so the build uses Debian's Rust (rustc-web, which ships one for arm64 through
# multiarch), GNU's aarch64 cross compilers for the C and C++ (RocksDB, blake3, ring), and
# qemu-user to run the result. Installs what is missing (as root).
need=()
for package in rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu \
    libc6-dev-arm64-cross qemu-user-static libclang-dev; do
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's compiler, not rustup's: only it has the arm64 standard library. Its own target folder
# (another compiler's artefacts), where RocksDB is compiled for the board.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR="$GOODWILL_CACHE/target-arm64"
unset ROCKSDB_LIB_DIR ROCKSDB_STATIC
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu"
# Where qemu-user finds the board's dynamic loader and libraries: the arm64 libc6 that multiarch
# installed beside Rust's arm64 standard library. Not the cross compilers' copy in
# /usr/aarch64-linux-gnu: the loader would read the host's ld.so.cache, which names multiarch's
# libc of another build, and a loader and libc of two builds hang in the first thread spawn.
export QEMU_LD_PREFIX=/
