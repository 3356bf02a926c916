#!/usr/bin/env bash
# The README's demo: build ferry, make a node network namespace with two pod
# namespaces, call the plugin exactly as a container runtime does
# (environment + config on stdin), show what it made, ping, clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (the demo uses network namespaces)" >&2; exit 1; fi
./scripts/deps.sh
cargo build --release --locked -p ferry-plugin
bin=$PWD/target/release

p=fydemo$$
node=$p-node
state=$(mktemp -d /tmp/$p.XXXX)
cleanup() {
  for ns in $node-a $node-b $node; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$state"
}
trap cleanup EXIT

# The node: an uplink with an address and a default route, forwarding on.
ip netns add $node
ip -n $node link set lo up
ip -n $node link add uplink type veth peer name uplink-far
ip -n $node link set uplink up
ip -n $node link set uplink-far up
ip -n $node addr add 172.16.97.75/24 dev uplink
ip -n $node route add default via 172.16.97.1
ip netns exec $node sysctl -qw net.ipv4.ip_forward=1

conf='{"cniVersion":"1.1.0","name":"demo","type":"ferry","ipam":{"type":"ferry-ipam","ranges":[[{"subnet":"10.244.0.0/24"}]],"dataDir":"'$state'"}}'

cni() { # cni COMMAND CONTAINER-ID NETNS
  ip netns exec $node env CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=eth0 \
    CNI_PATH=$bin "$bin/ferry" <<<"$conf"
}

declare -A ip
for pod in a b; do
  ip netns add $node-$pod
  ip -n $node-$pod link set lo up
  result=$(cni ADD demo-$pod /run/netns/$node-$pod)
  ip[$pod]=$(sed -E 's/.*"address":"([0-9.]+)\/32".*/\1/' <<<"$result")
  echo "pod $pod: ADD -> $result"
done

echo
printf '%-6s %-14s %s\n' POD IP "ROUTES IN THE POD"
for pod in a b; do
  printf '%-6s %-14s %s\n' "$pod" "${ip[$pod]}" "$(ip -n $node-$pod route | paste -sd';')"
done
echo
echo "node routes (proto 200 = ferry's host routes to its pods):"
ip -n $node route | sed 's/^/  /'
echo
for pair in "a ${ip[b]}" "b ${ip[a]}"; do
  set -- $pair
  ip netns exec $node-$1 ping -c1 -W2 "$2" >/dev/null && echo "pod $1 -> $2: ok" || { echo "pod $1 -> $2: FAILED"; exit 1; }
done
ip netns exec $node ping -c1 -W2 "${ip[a]}" >/dev/null && echo "node -> pod a: ok" || { echo "node -> pod a: FAILED"; exit 1; }
for pod in a b; do cni DEL demo-$pod /run/netns/$node-$pod; done
echo "DEL done: $(ls "$state/demo" | grep -c '^10\.' || true) addresses still reserved"
