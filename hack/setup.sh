#!/usr/bin/env bash
# Set-up steps shared by hack/test.sh and hack/lab.sh: install what the tests and the lab need,
# and export where it is. Source it, then call the steps you need:
#
#   source hack/setup.sh
#   setup_packages      Debian packages (daemons, checkers, docker, debootstrap) and npm ci
#   setup_lab_tools     docker engine, control-plane binaries (exports KUBECTL, KUBE_APISERVER,
#                       ETCD, DDI_HA_TESTBIN_DIR, K8S_VERSION) and the host-lab image (exports
#                       DDI_HA_LAB_IMAGE, TESTCONTAINERS_RYUK_DISABLED)
#
# Slow builds are cached under ~/.cache/ddi-ha-operator/ (the kube-apiserver binaries, keyed by
# version; the host image, keyed by its recipe), so later runs on the same machine reuse them.
# Progress goes to stderr. Expects the repository root as the working directory.

step() { printf '\n==> %s\n' "$*" >&2; }
timed() { local start=$SECONDS; "$@"; printf '    (%ss)\n' "$((SECONDS - start))" >&2; }

setup_packages() {
  step "Debian packages (daemons, checkers, docker, debootstrap)"
  timed bash hack/install-deps.sh

  step "npm dependencies"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    timed npm ci --no-audit --no-fund
  fi
}

setup_lab_tools() {
  step "docker engine"
  timed bash hack/ensure-docker.sh

  step "control-plane binaries (kube-apiserver, etcd, kubectl; built from Go modules, cached)"
  local testbin_env
  testbin_env="$(bash hack/testbin.sh)"
  eval "$testbin_env"
  export DDI_HA_TESTBIN_DIR KUBE_APISERVER ETCD KUBECTL K8S_VERSION

  step "helm (built from Go modules, cached)"
  local helm_env; helm_env="$(bash hack/helm.sh)"; eval "$helm_env"; export HELM

  step "host-lab image (debootstrap, cached by recipe)"
  DDI_HA_LAB_IMAGE="$(bash hack/build-host-image.sh | tail -n 1)"
  export DDI_HA_LAB_IMAGE TESTCONTAINERS_RYUK_DISABLED=true
}
