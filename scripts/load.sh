#!/usr/bin/env bash
# Load test with wrk: the real 0201 fixture, a fresh UUID per request, the embedded default
# (SQLite, fsync per group commit, the XMeld adapter in the sandbox), on 127.0.0.1.
#  1. saturation: 2 wrk threads, 64 connections, DURATION seconds: sustained msg/s and latency;
#  2. about 1 000 msg/s: 10 connections pausing 10 ms between requests: latency percentiles.
# Then it checks that every accepted message was processed and that `verify` passes.
# Usage: scripts/load.sh [DURATION_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
command -v wrk >/dev/null || { sudo -n apt-get install -y wrk 2>/dev/null || apt-get install -y wrk; }
rustup target add wasm32-wasip2 >/dev/null
cargo build --release --locked -p efile-bridge-cli
./target/release/efile-bridge plugin build plugins/adapters/xmeld >/dev/null
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/efile-bridge.toml" <<TOML
data_dir = "data"
listen = "127.0.0.1:18080"
[auth]
mode = "open"
[[adapter]]
name = "xmeld"
component = "$PWD/target/adapters/wasm32-wasip2/release/efile_adapter_xmeld.wasm"
[[tenant]]
ags = "09162000"
name = "München"
adapters = ["xmeld"]
TOML
EFILE_BRIDGE_LOG=warn ./target/release/efile-bridge --config "$work/efile-bridge.toml" serve &
pid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done
export WRK_MESSAGE="$PWD/plugins/adapters/xmeld/tests/fixtures/anmeldung-0201-single-person/input.xml"
echo "== saturation: 64 connections, ${secs} s"
WRK_RUN=1 WRK_DELAY_MS=0 wrk -t2 -c64 -d"${secs}s" -s scripts/load/post.lua http://127.0.0.1:18080 | grep -E "latency p50|requests .* req/s"
echo "== about 1000 msg/s: 10 connections, 10 ms pause each, ${secs} s"
WRK_RUN=2 WRK_DELAY_MS=10 wrk -t2 -c10 -d"${secs}s" -s scripts/load/post.lua http://127.0.0.1:18080 | grep -E "latency p50|requests .* req/s"
# Let the workers finish what was accepted before stopping.
for _ in $(seq 1 600); do
  [ "$(curl -s 'http://127.0.0.1:18080/v1/admin/messages?state=accepted&limit=1')" = "[]" ] && break
  sleep 0.1
done
curl -s http://127.0.0.1:18080/metrics | grep -E '^efile_(adapter|journal_commit)_seconds_(sum|count)'
kill -TERM "$pid"; wait "$pid" || true
echo "== after the run"
EFILE_BRIDGE_LOG=warn ./target/release/efile-bridge --config "$work/efile-bridge.toml" verify --quiet
