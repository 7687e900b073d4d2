#!/usr/bin/env bash
# Build the binaries of the integration-test control plane from the Go module proxy
# (no binary downloads) and print where they are:
#
#   $ hack/testbin.sh
#   DDI_HA_TESTBIN_DIR=/home/me/.cache/ddi-ha-operator/testbin/v1.36.3
#   KUBE_APISERVER=/home/me/.cache/ddi-ha-operator/testbin/v1.36.3/kube-apiserver
#   ETCD=/home/me/.cache/ddi-ha-operator/testbin/v1.36.3/etcd
#   KUBECTL=/home/me/.cache/ddi-ha-operator/testbin/v1.36.3/kubectl
#   K8S_VERSION=v1.36.3
#
# The output is shell syntax: eval "$(hack/testbin.sh)". Progress goes to stderr.
# The Kubernetes version and every dependency are pinned by hack/testbin/go.mod and go.sum
# (regenerate them with hack/testbin/regen-gomod.sh vX.Y.Z). Binaries are cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator/testbin/<version>/ together with a hash of
# the wrapper module; with a warm cache this script only checks that hash. A build writes to
# a temporary directory and renames, so an interrupted build never leaves a half binary.
#
# Environment: DDI_HA_TESTBIN_CACHE overrides the cache root. GOCACHE, GOMODCACHE and
# GOPROXY are honoured as usual.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module_dir="$here/testbin"
binaries=(kube-apiserver etcd kubectl)
declare -A packages=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [etcd]=ddi-ha-operator/hack/testbin/cmd/etcd
)

version="$(sed -n 's#^[[:space:]]*k8s.io/kubernetes \(v[0-9][0-9.]*\)\( //.*\)\{0,1\}$#\1#p' "$module_dir/go.mod")"
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || { echo "testbin: cannot read the k8s.io/kubernetes version from $module_dir/go.mod" >&2; exit 1; }
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"

cache_root="${DDI_HA_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator/testbin}"
bin_dir="$cache_root/$version"
mkdir -p "$bin_dir"

version_pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${version_pkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

# Everything that decides the binaries' content: the wrapper module and the link flags. A change
# to either means a rebuild.
inputs_hash="$( (cd "$module_dir" && cat go.mod go.sum cmd/etcd/main.go; printf '%s\n' "$ldflags") | sha256sum | cut -d' ' -f1)"

print_paths() {
  printf 'DDI_HA_TESTBIN_DIR=%q\n' "$bin_dir"
  printf 'KUBE_APISERVER=%q\n' "$bin_dir/kube-apiserver"
  printf 'ETCD=%q\n' "$bin_dir/etcd"
  printf 'KUBECTL=%q\n' "$bin_dir/kubectl"
  printf 'K8S_VERSION=%q\n' "$version"
}

up_to_date() {
  [[ "$(cat "$bin_dir/.inputs" 2>/dev/null)" == "$inputs_hash" ]] || return 1
  local b
  for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
}

if up_to_date; then print_paths; exit 0; fi

# One build at a time per version (several test runs may start together).
exec 9>"$bin_dir/.lock"
flock 9
if up_to_date; then print_paths; exit 0; fi

command -v go >/dev/null || { echo "testbin: go is not installed (need the version in $module_dir/go.mod or newer)" >&2; exit 1; }

missing=()
if [[ "$(cat "$bin_dir/.inputs" 2>/dev/null)" == "$inputs_hash" ]]; then
  for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || missing+=("$b"); done
else
  missing=("${binaries[@]}")
fi

rm -rf "$bin_dir"/.build.* # left by a build that was killed outright; we hold the lock
tmp="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
pkgs=()
for b in "${missing[@]}"; do pkgs+=("${packages[$b]}"); done

echo "testbin: building ${missing[*]} $version into $bin_dir (a cold build takes several minutes)" >&2
start=$SECONDS
(
  cd "$module_dir"
  CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"
)
for b in "${missing[@]}"; do mv -f "$tmp/$b" "$bin_dir/$b"; done
echo "$inputs_hash" >"$bin_dir/.inputs.tmp" && mv -f "$bin_dir/.inputs.tmp" "$bin_dir/.inputs"
echo "testbin: built in $((SECONDS - start)) s" >&2
print_paths
