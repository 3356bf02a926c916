#!/usr/bin/env bash
# Install what ferry's build, tests, demo and benches need on Debian 12.
# Idempotent; run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(iproute2 iputils-ping nftables iptables containernetworking-plugins iperf3 procps kmod ca-certificates gcc
      frr frr-pythontools containerd runc podman busybox-static protobuf-compiler curl
      conntrack openssl util-linux tini netcat-openbsd wget python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Rust: Debian 12's own rustc is too old (ferry needs 1.89+), so on a
# machine without cargo, install the stable toolchain with rustup.
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "no cargo: installing the stable Rust toolchain with rustup" >&2
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy >&2
  export PATH="$HOME/.cargo/bin:$PATH"
fi
