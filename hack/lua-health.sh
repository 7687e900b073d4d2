#!/usr/bin/env bash
# Build the Argo CD health-script runner (hack/lua-health/: gopher-lua as Argo CD runs it, from the
# Go module proxy) and print the binary's path:
#
#   $ hack/lua-health.sh
#   /home/me/.cache/ddi-ha-operator/lua-health/3f2a…/lua-health
#   $ "$(hack/lua-health.sh)" manifests/argocd/health.lua object.json
#   {"status":"Healthy","message":"…"}
#
# The binary is cached in ${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator/lua-health/<hash>/, the
# hash being that of the module's go.mod, go.sum and main.go; with a warm cache this script only
# hashes three small files and runs no go command. A build writes to a temporary name and
# renames, under a lock, so parallel callers and an interrupted build never see a half binary.
#
# Environment: DDI_HA_LUA_HEALTH_CACHE overrides the cache root. GOCACHE, GOMODCACHE and GOPROXY
# are honoured as usual.
set -euo pipefail

module_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lua-health"
hash="$(cd "$module_dir" && cat go.mod go.sum main.go | sha256sum | cut -c1-16)"
cache_root="${DDI_HA_LUA_HEALTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator/lua-health}"
bin_dir="$cache_root/$hash"
bin="$bin_dir/lua-health"

if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi

mkdir -p "$bin_dir"
exec 9>"$bin_dir/.lock"
flock 9
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "lua-health: go is not installed (need the version in $module_dir/go.mod or newer)" >&2; exit 1; }
echo "lua-health: building the gopher-lua runner into $bin_dir" >&2
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
  cd "$module_dir"
  CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags "-s -w" -o "$tmp" .
)
mv -f "$tmp" "$bin"
echo "$bin"
