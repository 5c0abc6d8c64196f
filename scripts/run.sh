#!/usr/bin/env bash
# Builds everything and runs the host on the embedded default (SQLite under ./efile-data,
# HTTP on 127.0.0.1:8080, drop folder ./efile-data/drop). Extra arguments go to `serve`,
# e.g. `scripts/run.sh --listen 127.0.0.1:9000`.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo build --release --locked -p efile-bridge-cli
./target/release/efile-bridge plugin build plugins/adapters/xmeld
./target/release/efile-bridge check
exec ./target/release/efile-bridge serve "$@"
