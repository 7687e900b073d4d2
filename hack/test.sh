#!/usr/bin/env bash
# The one test command (README's, and CI's via .ci/run). On a fresh machine it installs what the
# tests need, then runs every test: unit tests (renderers checked by the real daemons) and
# integration tests (a real kube-apiserver, and real systemd hosts reached over SSH).
#
#   hack/test.sh              everything
#   hack/test.sh --unit       unit tests only (no docker, no control plane)
#   hack/test.sh -- ARGS      extra arguments for vitest (e.g. a file filter)
#
# Slow builds are cached under ~/.cache/ddi-ha-operator/ (the kube-apiserver binaries, keyed by
# version; the host image, keyed by its recipe), so later runs on the same machine reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."

unit_only=false
vitest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --unit) unit_only=true ;;
    --) shift; vitest_args=("$@"); break ;;
    *) echo "usage: hack/test.sh [--unit] [-- vitest args]" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*" >&2; }
timed() { local start=$SECONDS; "$@"; printf '    (%ss)\n' "$((SECONDS - start))" >&2; }

step "Debian packages (daemons, checkers, docker, debootstrap)"
timed bash hack/install-deps.sh

step "npm dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  timed npm ci --no-audit --no-fund
fi

if $unit_only; then
  step "unit tests"
  exec npx vitest run --project unit "${vitest_args[@]}"
fi

step "docker engine"
timed bash hack/ensure-docker.sh

step "control-plane binaries (kube-apiserver, etcd, kubectl; built from Go modules, cached)"
testbin_env="$(bash hack/testbin.sh)"
eval "$testbin_env"
export DDI_HA_TESTBIN_DIR KUBE_APISERVER ETCD KUBECTL K8S_VERSION

step "host-lab image (debootstrap, cached by recipe)"
DDI_HA_LAB_IMAGE="$(bash hack/build-host-image.sh | tail -n 1)"
export DDI_HA_LAB_IMAGE TESTCONTAINERS_RYUK_DISABLED=true

step "tests"
exec npx vitest run "${vitest_args[@]}"
