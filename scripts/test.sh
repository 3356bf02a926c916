#!/usr/bin/env bash
# The README's test command: every check CI runs. Root is required: the
# integration tests build real namespaces, veths and routes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (the tests use network namespaces)" >&2; exit 1; fi
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked -- --test-threads=4
# Nothing a test made may be left behind.
left=$(ip netns list | awk '{print $1}' | grep '^ft[0-9]' || true)
if [ -n "$left" ]; then echo "tests left network namespaces behind: $left" >&2; exit 1; fi
