#!/usr/bin/env bash
# Kills a serving host with SIGKILL at random points under load, N times (default 100), and
# checks after every restart that no acknowledged message was lost or processed twice.
# Usage: scripts/kill-loop.sh [CYCLES] [SEED]   (EFILE_TEST_BACKEND=postgres: on PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
export KILL_CYCLES="${1:-100}"
[ -n "${2:-}" ] && export KILL_SEED="$2"
cargo test --release --locked -p efile-bridge-cli --test cli crash -- --nocapture 2>&1 | grep -E "kill loop|cycle|test result|panicked|FAILED"
