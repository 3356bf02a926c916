#!/usr/bin/env bash
# Install what ferry's build, tests, demo and benches need on Debian 12.
# Idempotent; run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(iproute2 iputils-ping nftables iptables containernetworking-plugins iperf3 procps kmod ca-certificates gcc
      frr frr-pythontools containerd runc podman busybox-static protobuf-compiler curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "ferry needs a Rust toolchain (1.89 or newer): install it with rustup, then re-run." >&2
  exit 1
fi
