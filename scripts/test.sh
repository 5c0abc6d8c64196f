#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
# One profile for everything: wasmtime is built once (release) and shared by all steps.
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace
# Benchmarks must keep compiling; their figures are reported, never asserted.
cargo bench --locked --workspace --no-run
