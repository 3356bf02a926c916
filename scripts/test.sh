#!/usr/bin/env bash
# The README's test command: every check CI runs. Root is required: the
# integration tests build real namespaces, veths, routes, nftables, FRR
# daemons and container runtimes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (the tests use network namespaces)" >&2; exit 1; fi
. ./scripts/deps.sh   # sourced: it may put a fresh rustup toolchain on PATH
netns_before=$(ip netns list | awk '{print $1}' | sort)
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked -- --test-threads=4

# The lab end to end, in every routing mode, with the debug binaries the
# tests just built: up, check, every scenario, down, and nothing left.
lab=target/debug/ferry-lab
trap '$lab down >/dev/null 2>&1 || true' EXIT
for mode in direct ospf bgp; do
  echo "== lab: $mode"
  $lab -q up --routing "$mode" >/dev/null
  $lab check
  $lab scenario all
  $lab down
  $lab leftovers
done
echo "== lab: bgp, dual-stack"
$lab -q up --routing bgp --dual-stack --pods-per-node 2 >/dev/null
$lab check
$lab down
$lab leftovers

# Nothing any test made may be left behind.
left=$(comm -13 <(echo "$netns_before") <(ip netns list | awk '{print $1}' | sort))
if [ -n "$left" ]; then echo "tests left network namespaces behind: $left" >&2; exit 1; fi
if ls /etc/frr /var/run/frr 2>/dev/null | grep -qE '^(fl-|ft)'; then echo "FRR state left behind" >&2; exit 1; fi
echo "all checks passed"
