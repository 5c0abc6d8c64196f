#!/usr/bin/env bash
# Fuzzes the intake check (and the SDK's XML reader) with libFuzzer for SECONDS each
# (default 1800). Seeds: the golden fixtures and the KoSIT samples. Crashes land in
# fuzz/artifacts/<target>/; reproduce one with `cargo fuzz run <target> <file>`.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1800}"; shift || true
targets=("${@:-intake}")
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  for f in plugins/adapters/xmeld/tests/fixtures/*/input.xml schemas/xmeld-25.11a/samples/kosit-testsuite/*.xml; do
    cp "$f" "fuzz/corpus/$t/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  cargo fuzz run "$t" --release -- -max_total_time="$secs" -max_len=65536 -timeout=5 -rss_limit_mb=2048
done
