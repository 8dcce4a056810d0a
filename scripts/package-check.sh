#!/usr/bin/env bash
# Checks a package of scripts/package.sh.
#
#   bash scripts/package-check.sh        # this machine's (amd64) .deb, as root: installs it,
#       checks the user, the unit, the config and the data folder it sets up, starts a
#       development node as the user `goodwill` (as the unit would, without systemd) and reads
#       its API, then purges the package (the check's data folder goes too).
#   bash scripts/package-check.sh arm64  # the arm64 package's binaries under qemu-user:
#       `--version` of both, then a development node for 30 seconds, which must forge; prints
#       its resident memory (qemu's own included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=${1:-$(dpkg --print-architecture)}
deb="$GOODWILL_CACHE/package/goodwill_${version}_${arch}.deb"
[ -f "$deb" ] || { echo "no package at $deb: run scripts/package.sh $arch first" >&2; exit 1; }

# The API address the node writing $log announces, waiting for it up to $1 times 0.2 s; fails
# with the log if it never does.
api_url() {
    for _ in $(seq 1 "$1"); do
        grep -q "HTTP API listening on" "$log" && break
        sleep 0.2
    done
    url=$(sed -n 's/^HTTP API listening on //p' "$log")
    [ -n "$url" ] || { cat "$log" >&2; return 1; }
    echo "$url"
}

if [ "$arch" = arm64 ]; then
    source scripts/cross-arm64.sh
    root=$(mktemp -d)
    log=$(mktemp)
    trap 'kill -INT "${node:-0}" 2>/dev/null; wait "${node:-0}" 2>/dev/null; rm -rf "$root" "$log"' EXIT
    dpkg-deb -x "$deb" "$root"
    file "$root/usr/bin/goodwill" | grep -q "ARM aarch64" || { file "$root/usr/bin/goodwill" >&2; exit 1; }
    qemu-aarch64-static "$root/usr/bin/goodwill" --version
    qemu-aarch64-static "$root/usr/bin/goodwill-light" --version
    qemu-aarch64-static "$root/usr/bin/goodwill" node --dev --base-path "$root/data" \
        --http 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 >"$log" 2>&1 &
    node=$!
    url=$(api_url 300)  # a minute: qemu translates every instruction
    started=$(date +%s)
    sleep 30
    height=$(curl -sf "$url/api/v1/status" | sed -n 's/.*"head":{[^}]*"height":\([0-9]*\).*/\1/p')
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$node/status")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$node/status")
    echo "arm64 dev node under qemu-user: head height ${height:-?} after $(($(date +%s) - started)) s," \
        "resident $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB, qemu's own included)"
    [ "${height:-0}" -gt 0 ] || { echo "the arm64 node forged nothing" >&2; tail -20 "$log" >&2; exit 1; }
    exit 0
fi

[ "$(id -u)" = 0 ] || { echo "run as root: it installs a package" >&2; exit 1; }

log=$(mktemp)
cleanup() {
    # runuser does not pass SIGINT on: the node, its child, is stopped itself.
    [ -n "${node:-}" ] && pkill -INT -P "$node" 2>/dev/null && wait "$node" 2>/dev/null || true
    dpkg --purge goodwill >/dev/null 2>&1 || true
    rm -rf /var/lib/goodwill/check "$log"
}
trap cleanup EXIT

dpkg -i "$deb" >/dev/null
getent passwd goodwill >/dev/null || { echo "no user goodwill" >&2; exit 1; }
[ "$(stat -c %U /var/lib/goodwill)" = goodwill ] || { echo "/var/lib/goodwill is not the node's" >&2; exit 1; }
[ "$(stat -c %G:%a /etc/goodwill/config.toml)" = goodwill:640 ] || { echo "config permissions" >&2; exit 1; }
[ -f /lib/systemd/system/goodwill.service ] || { echo "no systemd unit" >&2; exit 1; }
/usr/bin/goodwill --version
/usr/bin/goodwill-light --version
# The installed config, as the unit runs it, refuses to start until a network is configured.
if runuser -u goodwill -- /usr/bin/goodwill node --config /etc/goodwill/config.toml 2>"$log"; then
    echo "the unconfigured node started" >&2; exit 1
fi
grep -q "genesis-hash" "$log" || { cat "$log" >&2; exit 1; }
# A development node as the user goodwill, its data under /var/lib/goodwill.
runuser -u goodwill -- /usr/bin/goodwill node --dev --base-path /var/lib/goodwill/check \
    --http 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 >"$log" 2>&1 &
node=$!
url=$(api_url 100)
curl -sf "$url/api/v1/status" | grep -q '"chain_id":"goodwill-dev"'
[ "$(stat -c %U /var/lib/goodwill/check/db)" = goodwill ]
echo "package check passed: installed, started as goodwill with its data in /var/lib/goodwill, API at $url"
