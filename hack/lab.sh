#!/usr/bin/env bash
# Runs the operator's main job on an embedded default: a local lab with a real kube-apiserver and
# real host containers. It installs what it needs (as hack/test.sh does), starts etcd +
# kube-apiserver on 127.0.0.1 and four systemd hosts on a 198.18.0.0/15 docker network, installs
# the CRDs, writes the default manifest set to .lab/<name>/manifests/, applies it with
# `kubectl apply --server-side`, then runs the real controller in-process against it (applies to
# the hosts over SSH, observes them, writes every resource's status). See docs/testing.md, "The lab command".
#
#   hack/lab.sh                  set up, then print each status change until Ctrl-C;
#                                Ctrl-C removes the lab and stops the control plane
#   hack/lab.sh --once           set up, wait until every resource is Ready, print, tear down
#   hack/lab.sh --keep           leave the lab and the control plane running on exit
#   hack/lab.sh --hosts N        N lab hosts (at least 4; the default set uses h1..h4)
#   hack/lab.sh --name NAME      lab name (default "default"): .lab/NAME/, containers ddi-ha-lab-NAME-h*
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
name=default
demo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --once) demo_args+=(--once) ;;
    --keep) keep=true; demo_args+=(--keep) ;;
    --hosts) [ $# -ge 2 ] || { echo "hack/lab.sh: --hosts needs a number" >&2; exit 2; }; demo_args+=(--hosts "$2"); shift ;;
    --name) [ $# -ge 2 ] || { echo "hack/lab.sh: --name needs a value" >&2; exit 2; }; name="$2"; demo_args+=(--name "$2"); shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: hack/lab.sh [--once] [--keep] [--hosts N] [--name NAME]" >&2; exit 2 ;;
  esac
  shift
done
[[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || { echo "hack/lab.sh: --name must be lower-case letters, digits and '-'" >&2; exit 2; }

# shellcheck source=hack/setup.sh
source hack/setup.sh
setup_packages
setup_lab_tools

# Exit status of the demo when it stopped before keeping anything (the lab name is taken, the lab
# did not start): then the control plane started below for --keep is stopped again.
nothing_kept=3

if $keep; then
  pidfile=".lab/$name/control-plane.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "hack/lab.sh: a kept lab \"$name\" is still running; remove it first:" >&2
    echo "  kill \$(cat $pidfile) && npx tsx test/lab/cli.ts down --name $name      (or pass --name)" >&2
    exit 1
  fi
  # A control plane that outlives this script: its own session, so Ctrl-C here does not reach
  # it, and its own process, since the harness stops etcd and kube-apiserver when its Node exits.
  step "control plane that stays (--keep)"
  mkdir -p ".lab/$name"
  log=".lab/$name/control-plane.log"
  setsid node --import tsx test/harness/control-plane.ts >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  kubeconfig=""
  for _ in $(seq 1 240); do
    kubeconfig="$(sed -n 's/^export KUBECONFIG=//p' "$log")"
    [ -n "$kubeconfig" ] && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.25
  done
  [ -n "$kubeconfig" ] || { echo "hack/lab.sh: the control plane did not start; see $log" >&2; exit 1; }
  echo "    $(head -n 1 "$log")" >&2
  demo_args+=(--kubeconfig "$kubeconfig")

  step "lab"
  rc=0
  node --import tsx test/lab/demo.ts "${demo_args[@]}" || rc=$?
  if [ "$rc" -eq "$nothing_kept" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile" "$log"
  fi
  exit "$rc"
fi

step "lab"
exec node --import tsx test/lab/demo.ts "${demo_args[@]}"
