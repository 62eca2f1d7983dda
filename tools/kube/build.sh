#!/usr/bin/env bash
# Builds the lab's Kubernetes from the Go modules pinned beside this script:
#   k8s/  -> kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, and for real
#            nodes kubelet and kube-proxy (k8s.io/kubernetes)
#   etcd/ -> etcd (go.etcd.io/etcd/server/v3)
# The binaries land in a cache keyed by the pinned go.mod/go.sum, so a second run builds nothing.
# Prints the cache's bin directory on the last line of stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${IRONLB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb}
key=$(cat "$here"/k8s/go.mod "$here"/k8s/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum "$0" | sha256sum | cut -c1-16)
bin="$cache_root/kube-$key/bin"
start=$(date +%s)
step() { printf '[kube-build %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

kube_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$here/k8s/go.mod")
minor=$(echo "$kube_version" | cut -d. -f2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube_version \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$kube_version"

# Concurrent callers (parallel tests on a cold machine) wait for one build instead of racing.
mkdir -p "$cache_root"
exec 9>"$cache_root/build.lock"
flock 9
mkdir -p "$bin.tmp"
k8s_cmds="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy"
missing=""
for c in $k8s_cmds; do [ -x "$bin/$c" ] || missing="$missing $c"; done
if [ -n "$missing" ]; then
  step "building$missing $kube_version (cold: ~10-20 min on 2 cores)"
  pkgs=""
  for c in $missing; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  (cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp/" $pkgs)
  mkdir -p "$bin"
  for c in $missing; do mv "$bin.tmp/$c" "$bin/$c"; done
  step "built$missing"
else
  step "kubernetes $kube_version binaries cached in $bin"
fi
if [ ! -x "$bin/etcd" ]; then
  etcd_version=$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$here/etcd/go.mod")
  step "building etcd $etcd_version"
  (cd "$here/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" go.etcd.io/etcd/server/v3)
  mkdir -p "$bin"
  mv "$bin.tmp/etcd" "$bin/etcd"
  step "built etcd"
else
  step "etcd cached in $bin"
fi
rmdir "$bin.tmp" 2>/dev/null || true
echo "$bin"
