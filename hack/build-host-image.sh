#!/usr/bin/env bash
# Build the host-lab image: a Debian bookworm root filesystem with systemd as PID 1, sshd and
# the three HA daemons (installed, not running), made with debootstrap and `docker import`.
# No container registry is involved. See docs/testing.md ("The host lab") and
# docs/adr/0003-host-lab-debootstrap-systemd-containers.md.
#
# Usage: hack/build-host-image.sh [--print-tag] [--force]
#   prints the image reference (ddi-ha-lab-host:<recipe-hash>) as the last line on stdout.
#   --print-tag  only print the reference, build nothing
#   --force      rebuild the rootfs even if it is cached
#
# Cache, keyed by a hash of hack/lab-image/recipe.sh (the package list and every configuration
# step), so editing this file does not rebuild the image:
#   1. `docker image inspect` finds the tag           -> done (about 0.1 s)
#   2. $CACHE/images/<hash>.tar exists                 -> `docker import` it (seconds)
#   3. otherwise debootstrap into a scratch dir, configure, tar, import (about a minute or two)
# Downloaded .debs are kept in $CACHE/debs, so a changed recipe does not download everything again.
#
# Environment: DDI_HA_CACHE (default ~/.cache/ddi-ha-operator), LAB_DEBIAN_MIRROR (default:
# debootstrap's own default mirror), LAB_SUITE (default bookworm).
set -euo pipefail

SUITE="${LAB_SUITE:-bookworm}"
MIRROR="${LAB_DEBIAN_MIRROR:-}"
CACHE_DIR="${DDI_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ddi-ha-operator}"
IMAGE_REPO="ddi-ha-lab-host"

log() { printf 'build-host-image: %s\n' "$*" >&2; }

print_only=0
force=0
for arg in "$@"; do
  case "$arg" in
    --print-tag) print_only=1 ;;
    --force) force=1 ;;
    *) log "unknown argument: $arg"; exit 2 ;;
  esac
done

RECIPE="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lab-image/recipe.sh"
# shellcheck source-path=SCRIPTDIR source=lab-image/recipe.sh
. "$RECIPE"
HASH="$( { cat "$RECIPE"; printf '%s\n' "$SUITE"; } | sha256sum | cut -c1-16)"
# shellcheck disable=SC2034 # read by configure_rootfs in recipe.sh
RECIPE_HASH="$HASH"
TAG="$IMAGE_REPO:$HASH"

if [ "$print_only" -eq 1 ]; then
  echo "$TAG"
  exit 0
fi

if [ "$force" -eq 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi
# Fail before minutes of debootstrap, not at the import after them.
if ! docker info >/dev/null 2>&1; then
  log "the Docker engine does not answer; run hack/ensure-docker.sh first"
  exit 1
fi

mkdir -p "$CACHE_DIR/images" "$CACHE_DIR/debs"
# Concurrent test runs must not debootstrap twice into the same place.
exec 9>"$CACHE_DIR/images/build.lock"
flock 9
if [ "$force" -eq 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi

TARBALL="$CACHE_DIR/images/$HASH.tar"

build_rootfs() {
  if [ "$(id -u)" -ne 0 ]; then
    log "debootstrap needs root"
    exit 1
  fi
  local root
  root="$(mktemp -d "$CACHE_DIR/images/rootfs.XXXXXX")"
  # debootstrap and chroot leave /proc and /sys mounted when interrupted.
  cleanup() {
    local m
    for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$root"
  }
  trap cleanup EXIT

  local include
  include="$(IFS=,; echo "${PACKAGES[*]}")"
  log "debootstrap $SUITE (minbase + ${#PACKAGES[@]} packages) into $root"
  local start=$SECONDS
  # shellcheck disable=SC2086 # MIRROR is empty or one word
  debootstrap --variant=minbase --include="$include" --cache-dir="$CACHE_DIR/debs" \
    "$SUITE" "$root" $MIRROR >"$CACHE_DIR/images/debootstrap.log" 2>&1 || {
      log "debootstrap failed; see $CACHE_DIR/images/debootstrap.log"
      tail -n 20 "$CACHE_DIR/images/debootstrap.log" >&2
      exit 1
    }
  log "debootstrap took $((SECONDS - start)) s"

  configure_rootfs "$root"

  log "writing $TARBALL"
  tar -C "$root" --numeric-owner --one-file-system -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  cleanup
  trap - EXIT
}

if [ "$force" -eq 1 ] || [ ! -s "$TARBALL" ]; then
  build_rootfs
fi

log "importing $TARBALL as $TAG"
docker import \
  --change 'ENV container=docker' \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --message "ddi-ha-operator host lab, recipe $HASH" \
  "$TARBALL" "$TAG" >/dev/null
docker tag "$TAG" "$IMAGE_REPO:latest"
# Untag the images of older recipes (an image still used by a running lab stays until it stops),
# and keep only the two newest rootfs tarballs (switching between two branches stays cheap).
docker image ls --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" |
  grep -v -e ":$HASH\$" -e ':latest$' | xargs -r docker image rm >/dev/null 2>&1 || true
# shellcheck disable=SC2012 # the names are <hex>.tar
ls -t "$CACHE_DIR"/images/*.tar 2>/dev/null | tail -n +3 | xargs -r rm -f
echo "$TAG"
