#!/bin/sh
# Recaptures what nft sends: capture.sh [BASE.nft] FILE.nft > nft-NAME.hex
# Loads BASE (if given) into a scratch netns, then FILE with
# `nft --debug=mnl`, prints one message a line (nlmsg type, hex of all
# after the nlmsghdr) and deletes the netns. Needs root and nft 1.0.6.
set -e
here=$(dirname "$0")
ns=ftnpn-cap-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
if [ $# -eq 2 ]; then ip netns exec "$ns" nft -f "$1"; shift; fi
ip netns exec "$ns" nft --debug=mnl -f "$1" 2>&1 | python3 "$here/mnl2hex.py"
