#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# xmllint validates the xdomea export against the official XSD; chromium + chromedriver read the
# docs site in the browser tests (tests fail, never skip, without them).
missing=""
command -v xmllint >/dev/null 2>&1 || missing="$missing libxml2-utils"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq $missing
fi
# mdBook builds the docs site (tests/browser); from crates.io, once.
command -v mdbook >/dev/null 2>&1 || cargo install mdbook --version "^0.4" --locked
cargo fmt --all --check
# One profile for everything: wasmtime is built once (release) and shared by all steps.
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace
# The end-to-end suite again on PostgreSQL: a fresh database per test on the server in
# EFILE_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres, trust auth; the
# user must be allowed to CREATE DATABASE). Without a reachable server this fails, never skips.
# (`--workspace --test NAME`, not `-p`: the same features as above, so the same binaries and no
# second build of wasmtime.)
EFILE_TEST_BACKEND=postgres cargo test --release --locked --workspace --test e2e
EFILE_TEST_BACKEND=postgres cargo test --release --locked --workspace --test cli -- commands crash
EFILE_TEST_BACKEND=postgres cargo test --release --locked --workspace --test browser console
# Benchmarks must keep compiling; their figures are reported, never asserted.
cargo bench --locked --workspace --no-run
