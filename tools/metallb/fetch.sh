#!/usr/bin/env bash
# Fetches MetalLB's source at the version pinned in ./version through the Go module proxy (the
# only way in here) and prints the module's directory on the last line of stdout. The tests read
# MetalLB's own files from it (its chart's values.yaml, its CRDs) as an oracle; nothing of it is
# copied into ironlb. A newer MetalLB is a one-line change of ./version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(tr -d '[:space:]' < "$here/version")
export PATH="/usr/local/go/bin:$PATH"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
go mod init fetch.invalid >/dev/null 2>&1
GOFLAGS=-mod=mod go mod download -json "go.universe.tf/metallb@$version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
