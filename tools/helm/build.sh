#!/usr/bin/env bash
# Builds helm from the module pinned beside this script (the tests lint and render charts/ironlb
# with it; nothing is downloaded but Go modules). The binary lands in a cache keyed by the pinned
# go.mod/go.sum, so a second run builds nothing. Prints the binary's path on the last line of
# stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${IRONLB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ironlb}
key=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -c1-16)
bin="$cache_root/helm-$key/bin"
start=$(date +%s)
step() { printf '[helm-build %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

mkdir -p "$cache_root"
exec 9>"$cache_root/helm-build.lock"
flock 9
if [ -x "$bin/helm" ]; then
  step "helm cached in $bin"
else
  version=$(awk '$1=="require" && $2=="helm.sh/helm/v3" {print $3}' "$here/go.mod")
  step "building helm $version (cold: ~3-5 min on 2 cores)"
  mkdir -p "$bin.tmp"
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" -o "$bin.tmp/helm" helm.sh/helm/v3/cmd/helm)
  mkdir -p "$bin"
  mv "$bin.tmp/helm" "$bin/helm"
  rmdir "$bin.tmp" 2>/dev/null || true
  step "built helm"
fi
echo "$bin/helm"
