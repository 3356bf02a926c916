#!/usr/bin/env bash
# The README's main job: the seed's 3-node lab in network namespaces.
# Installs what is needed, builds, runs `ferry-lab up --routing ospf` (nodes,
# router, internet host, API server, ferryd and FRR per node, pods made
# through the installed conflist), prints the table, and checks every path:
# pod <-> pod across nodes, pod <-> node, pod -> internet (masqueraded).
#   ./scripts/demo.sh [direct|ospf|bgp]
#   ./scripts/demo.sh kubernetes     the same lab on a real Kubernetes v1.20.2
#                                    (built from Debian's source the first time,
#                                    ~10 min; cached in /var/cache/ferry)
# The lab stays up to explore; `target/release/ferry-lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (the lab uses network namespaces)" >&2; exit 1; fi
. ./scripts/deps.sh   # sourced: it may put a fresh rustup toolchain on PATH
cargo build --release --locked -p ferry-plugin -p ferryd -p ferry-apiserver -p ferry-lab
lab=target/release/ferry-lab
$lab down >/dev/null 2>&1 || true
if [ "${1:-}" = kubernetes ]; then
  kube_bin=$(./scripts/kubernetes.sh cluster | tail -1)
  # ferry's image holds statically linked binaries (FROM scratch).
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p ferry-plugin -p ferryd -p ferry-wireguard-userspace
  $lab up --kubernetes --routing direct --pods-per-node 2
  $lab check
  echo
  KUBECONFIG=$($lab kubeconfig) "$kube_bin/kubectl" get nodes,pods -A -o wide
  cat <<TXT

The lab runs a real Kubernetes. Look around, e.g.:
  export KUBECONFIG=$($lab kubeconfig) PATH=$kube_bin:\$PATH
  kubectl -n kube-system logs ds/ferry -c ferryd
  kubectl -n ferry-lab exec deploy/toolbox -- ping -c 3 <a pod IP on another node>
  $lab scenario all      # upgrade (zero lost pings), node-restart, pod-churn
  $lab down              # remove everything
TXT
  exit 0
fi
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
