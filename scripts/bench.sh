#!/usr/bin/env bash
# Benchmarks, release build, as root. Prints medians and ratios against the
# reference plugins measured side by side in the same run.
#   ./scripts/bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (benchmarks use network namespaces)" >&2; exit 1; fi
. ./scripts/deps.sh   # sourced: it may put a fresh rustup toolchain on PATH
cargo build --release --locked -p ferry-plugin -p ferry-bench
./target/release/ferry-bench plugin "${1:-60}"
