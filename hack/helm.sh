#!/usr/bin/env bash
# Build helm v3 from the Go module proxy (no binary downloads) and print where it is:
#
#   $ hack/helm.sh
#   HELM=/home/me/.cache/ddi-ha-operator/helm/v3.22.0/helm
#
# The output is shell syntax: eval "$(hack/helm.sh)". Progress goes to stderr.
# The Helm version and every dependency are pinned by hack/helm/go.mod and go.sum (regenerate
# them with hack/helm/regen-gomod.sh v3.Y.Z). The binary is cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator/helm/<version>/ together with a hash of the
# wrapper module and the link flags; with a warm cache this script only checks that hash. A
# build writes to a temporary directory and renames, so an interrupted build never leaves a
# half binary.
#
# Environment: DDI_HA_HELM_CACHE overrides the cache root. GOCACHE, GOMODCACHE and GOPROXY are
# honoured as usual.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module_dir="$here/helm"

version="$(sed -n 's#^[[:space:]]*helm.sh/helm/v3 \(v3\.[0-9][0-9.]*\)\( //.*\)\{0,1\}$#\1#p' "$module_dir/go.mod")"
[[ "$version" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || { echo "helm: cannot read the helm.sh/helm/v3 version from $module_dir/go.mod" >&2; exit 1; }
# Helm's default .Capabilities.KubeVersion and its deprecation lint follow the client-go it is
# built with (as Helm's Makefile does): client-go v0.37.x is Kubernetes 1.37.
client_go="$(sed -n 's#^[[:space:]]*k8s.io/client-go \(v0\.[0-9][0-9.]*\)\( //.*\)\{0,1\}$#\1#p' "$module_dir/go.mod")"
[[ "$client_go" =~ ^v0\.([0-9]+)\.[0-9]+$ ]] || { echo "helm: cannot read the k8s.io/client-go version from $module_dir/go.mod" >&2; exit 1; }
k8s_minor="${BASH_REMATCH[1]}"

cache_root="${DDI_HA_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator/helm}"
bin_dir="$cache_root/$version"
mkdir -p "$bin_dir"

# `helm version` then says what it is: the release, a clean tree (the module proxy's zip is
# the tagged tree), no "+unreleased" metadata. The commit is not known from the proxy, so it
# stays empty rather than made up.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.metadata= -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
done

# Everything that decides the binary's content: the wrapper module and the link flags.
inputs_hash="$( (cd "$module_dir" && cat go.mod go.sum; printf '%s\n' "$ldflags") | sha256sum | cut -d' ' -f1)"

print_paths() { printf 'HELM=%q\n' "$bin_dir/helm"; }
up_to_date() { [[ "$(cat "$bin_dir/.inputs" 2>/dev/null)" == "$inputs_hash" && -x "$bin_dir/helm" ]]; }

if up_to_date; then print_paths; exit 0; fi

# One build at a time per version (several test runs may start together).
exec 9>"$bin_dir/.lock"
flock 9
if up_to_date; then print_paths; exit 0; fi

command -v go >/dev/null || { echo "helm: go is not installed (need the version in $module_dir/go.mod or newer)" >&2; exit 1; }

rm -rf "$bin_dir"/.build.* # left by a build that was killed outright; we hold the lock
tmp="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "helm: building helm $version into $bin_dir (a cold build takes a few minutes)" >&2
start=$SECONDS
(
  cd "$module_dir"
  CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm
)
mv -f "$tmp/helm" "$bin_dir/helm"
echo "$inputs_hash" >"$bin_dir/.inputs.tmp" && mv -f "$bin_dir/.inputs.tmp" "$bin_dir/.inputs"
echo "helm: built in $((SECONDS - start)) s" >&2
print_paths
