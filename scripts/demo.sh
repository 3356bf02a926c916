#!/usr/bin/env bash
# The README's main job: the seed's 3-node lab in network namespaces.
# Installs what is needed, builds, runs `ferry-lab up --routing ospf` (nodes,
# router, internet host, API server, ferryd and FRR per node, pods made
# through the installed conflist), prints the table, and checks every path:
# pod <-> pod across nodes, pod <-> node, pod -> internet (masqueraded).
#   ./scripts/demo.sh [direct|ospf|bgp]
# The lab stays up to explore; `target/release/ferry-lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (the lab uses network namespaces)" >&2; exit 1; fi
. ./scripts/deps.sh   # sourced: it may put a fresh rustup toolchain on PATH
cargo build --release --locked -p ferry-plugin -p ferryd -p ferry-apiserver -p ferry-lab
lab=target/release/ferry-lab
$lab down >/dev/null 2>&1 || true
$lab up --routing "${1:-ospf}"
$lab check
cat <<TXT

The lab is up. Look around, e.g.:
  ip netns list                          # fl-switch, fl-router, fl-k8s-master, ...
  ip netns exec fl-k8s-master ip route   # routes learnt from the other nodes
  ip netns exec fl-k8s-master vtysh -N fl-k8s-master -c 'show ip ospf neighbor'
  $lab scenario pod-churn   # or node-join, node-leave, agent-restart, frr-restart, api-outage
  $lab down                  # remove everything
TXT
