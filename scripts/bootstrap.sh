#!/usr/bin/env bash
# Installs the system packages Goodwill's build needs, if they are missing. With --test, also
# what the tests drive: Chromium and chromedriver for the explorer's end-to-end test.
# RocksDB's Rust bindings run bindgen, which needs libclang and clang's own headers (stdbool.h):
# `libclang1-*` alone is not enough.
set -euo pipefail

need=()
have_libclang() {
  # bindgen looks for libclang.so in the usual places; clang's resource headers come with libclang-common.
  compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null &&
    compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stdbool.h" >/dev/null
}
have_libclang || need+=(libclang-dev)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
if [ "${1:-}" = "--test" ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
fi

if ((${#need[@]})); then
  echo "bootstrap: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "bootstrap: cargo is missing; install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi
