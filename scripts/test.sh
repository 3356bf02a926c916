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

# The lab on a real Kubernetes (v1.20.2 built from Debian's source, cached
# outside the clone): ferry's image from static release binaries, installed
# with `kubectl apply -f deploy/ferry.yaml`, checked, removed; the host as
# it was before (sysctls, mounts, CNI dirs, cgroups).
echo "== lab: real Kubernetes, direct"
./scripts/kubernetes.sh all >/dev/null   # the cluster's binaries and e2e.test, ginkgo, agnhost
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target x86_64-unknown-linux-gnu -p ferry-plugin -p ferryd -p ferry-wireguard-userspace
host_state() {
  for k in vm/overcommit_memory kernel/panic kernel/panic_on_oops net/ipv4/ip_forward \
           net/ipv4/conf/all/route_localnet net/netfilter/nf_conntrack_max; do
    echo "$k=$(cat /proc/sys/$k 2>/dev/null)"
  done
  awk '{print $2, $3}' /proc/self/mounts | grep -v '^/run/netns/' | sort
  ls -a /etc/cni/net.d /opt /var/lib /sys/fs/bpf 2>&1   # /sys/fs/bpf: no pins left on the host
  ls /sys/fs/cgroup/*/ 2>/dev/null | sort | uniq -c
}
before=$(host_state)
$lab up --kubernetes --routing direct --pods-per-node 2
$lab check
$lab scenario all     # upgrade (no lost ping), node-restart, pod-churn (60 pods twice)
# Kubernetes' own e2e tests on it, 4 cases at a time (ginkgo -nodes=4;
# none of these is [Serial]): the `ci` subset, every Granular Check
# (pod↔pod, node↔pod, HTTP and UDP, intra- and inter-node; Services:
# ClusterIP, NodePort, session affinity, endpoints, hostNetwork endpoints)
# and every Services case that runs here: 31 cases in ≈ 5.5 min (19 min one
# at a time). The whole `network` suite runs through the same command by
# hand (docs/conformance.md).
$lab conformance --suite ci --parallel 4 --out target/conformance-ci
# And four of the NetworkPolicy suite's cases (ingress by pod selector,
# default-deny ingress, egress by named port, egress ipBlock with except;
# the whole suite by hand, docs/conformance.md).
$lab conformance --suite netpol --parallel 3 --out target/conformance-netpol \
  --focus 'NetworkPolicy between server and client should (support a .default-deny-ingress. policy|allow egress access on one named port|enforce policy to allow traffic from pods within server namespace based on PodSelector|enforce except clause while egress access to server in CIDR block)'
$lab scenario uninstall   # the install guide's Uninstall: nothing of ferry's left on the nodes
$lab down
$lab leftovers
echo "== lab: real Kubernetes, down after a crash of up"
timeout -s KILL 30 $lab -q up --kubernetes --routing direct >/dev/null 2>&1 || true
$lab down
$lab leftovers
for mode in ospf bgp; do
  echo "== lab: real Kubernetes, $mode"   # FRR beside ferryd, images made from Debian's FRR
  $lab -q up --kubernetes --routing $mode >/dev/null
  $lab check
  if [ $mode = ospf ]; then
    # Two upgrades in a row (four rollouts): ferryd is ready only once
    # ospfd's graceful restart is over, so no node restarts while the one
    # before it still helps nobody (docs/install.md, Upgrading).
    $lab scenario upgrade
    $lab scenario upgrade
  fi
  $lab down
  $lab leftovers
done
# Nodes on two subnets behind the router (which routes node addresses
# only): deploy/ferry.yaml's default --encapsulation cross-subnet tunnels
# exactly the other subnet's pods through ferry.vxlan.
echo "== lab: real Kubernetes, direct, nodes on two subnets (VXLAN)"
$lab -q up --kubernetes --routing direct --subnets 2 --pods-per-node 2 >/dev/null
$lab check
$lab down
$lab leftovers
# The same with deploy/ferry-wireguard.yaml: every pod between nodes through
# WireGuard (the userspace ferry-wg here: this kernel has none, in the
# ferry-wireguard DaemonSet). ferry's rollouts lose no ping (ferry-wg
# is not in ferry's pod); a rollout of ferry-wireguard itself is measured.
echo "== lab: real Kubernetes, direct, two subnets, WireGuard"
$lab -q up --kubernetes --routing direct --subnets 2 --pods-per-node 2 \
  --manifest deploy/ferry-wireguard.yaml >/dev/null
$lab check
$lab scenario upgrade
$lab scenario wireguard-rollout
$lab scenario uninstall   # also: no ferry.dev/wireguard-public-key or ferry.wg left on a Node
$lab down
$lab leftovers
after=$(host_state)
if [ "$before" != "$after" ]; then
  echo "the Kubernetes lab changed the host:" >&2; diff <(echo "$before") <(echo "$after") >&2; exit 1
fi

# Nothing any test made may be left behind.
left=$(comm -13 <(echo "$netns_before") <(ip netns list | awk '{print $1}' | sort))
if [ -n "$left" ]; then echo "tests left network namespaces behind: $left" >&2; exit 1; fi
if ls /etc/frr /var/run/frr 2>/dev/null | grep -qE '^(fl-|ft)'; then echo "FRR state left behind" >&2; exit 1; fi
echo "all checks passed"
