#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, for the host lab (see docs/testing.md).
#
# - installs docker.io and debootstrap with apt-get when they are missing;
# - starts the engine when `docker info` does not answer: through systemd when systemd is PID 1,
#   otherwise as a background `dockerd` that logs to $DDI_HA_CACHE/dockerd.log;
# - waits until `docker info` answers.
#
# Idempotent: when the engine already answers it returns in well under a second.
# Needs root (or passwordless sudo) only for the install and the start.
set -euo pipefail

CACHE_DIR="${DDI_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator}"
WAIT_SECONDS="${DOCKER_WAIT_SECONDS:-60}"

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

docker_answers() { docker info >/dev/null 2>&1; }

# Fast path: nothing to do.
if command -v docker >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && docker_answers; then
  exit 0
fi

mkdir -p "$CACHE_DIR"
# Two test runs may call this at the same moment; only one of them installs and starts.
exec 9>"$CACHE_DIR/ensure-docker.lock"
flock 9

missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker_answers; then
  exit 0
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  log "starting docker.service"
  as_root systemctl start docker.service
else
  LOG_FILE="$CACHE_DIR/dockerd.log"
  if pgrep -x dockerd >/dev/null 2>&1; then
    log "dockerd is running but does not answer yet; waiting (log: $LOG_FILE)"
  else
    log "starting dockerd in the background (log: $LOG_FILE)"
    # setsid: the engine must outlive the shell (and the test run) that started it.
    # 9>&-: the engine must not inherit (and hold forever) the lock.
    as_root setsid nohup dockerd >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
  fi
fi

for _ in $(seq 1 "$((WAIT_SECONDS * 4))"); do
  if docker_answers; then
    log "docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  sleep 0.25
done

log "docker info still fails after ${WAIT_SECONDS}s; last lines of the engine log:"
tail -n 20 "${LOG_FILE:-/dev/null}" >&2 || true
exit 1
