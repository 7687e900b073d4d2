#!/usr/bin/env bash
# The one test command (README's, and CI's via .ci/run). On a fresh machine it installs what the
# tests need, then runs every test: unit tests (renderers checked by the real daemons) and
# integration tests (a real kube-apiserver, and real systemd hosts reached over SSH).
#
#   hack/test.sh              everything, then the smoke runs of bench:fleet and bench:failover
#   hack/test.sh --unit       unit tests only (no docker, no control plane)
#   hack/test.sh -- ARGS      extra arguments for vitest (e.g. a file filter)
#
# The set-up steps live in hack/setup.sh (shared with hack/lab.sh). Slow builds are cached under
# ~/.cache/ddi-ha-operator/, so later runs on the same machine reuse them.
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

# shellcheck source=hack/setup.sh
source hack/setup.sh
setup_packages

if $unit_only; then
  step "unit tests"
  exec npx vitest run --project unit "${vitest_args[@]}"
fi

setup_lab_tools

step "tests"
if [ ${#vitest_args[@]} -gt 0 ]; then exec npx vitest run "${vitest_args[@]}"; fi
npx vitest run

# The benchmarks' small versions, so they cannot rot: ddi-ha against Ansible on 4 hosts (a no-op
# writes and reloads nothing; sshd and the transport agree on channels), and one round of
# failovers through the controller (each in status within the stream's bound).
step "benchmark smokes"
timed npm run -s bench:fleet -- --smoke
timed npm run -s bench:failover -- --smoke
