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
# Cache, keyed by a hash of this file (the package list and every configuration step are in it):
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

# Keep this list small: every package costs build time and image size.
#   systemd, systemd-sysv, dbus   PID 1, and `systemctl`/`journalctl` as on a real host
#   openssh-server, sudo          the operator's transport; sudo for the non-root-user tests
#   keepalived                    VRRP
#   isc-dhcp-server               dhcpd and omshell (omshell ships in isc-dhcp-server)
#   kea-dhcp4-server, kea-ctrl-agent   Kea 2.2 with the HA and lease_cmds hooks (kea-common)
#   bind9                         DNS, for later
#   iproute2, iputils-ping, procps, iptables   observing VIPs, reachability, cutting links
#   curl                          talking to the Kea control agent from the host itself
#   isc-dhcp-client               dhclient, so a lab host can act as a DHCP client
PACKAGES=(
  systemd systemd-sysv dbus
  openssh-server sudo
  keepalived
  isc-dhcp-server
  kea-dhcp4-server kea-ctrl-agent
  bind9
  iproute2 iputils-ping procps iptables
  curl
  isc-dhcp-client
)

# Units the operator starts itself. They are installed but not enabled, like on a host where
# the packages were installed and the operator has not been applied yet.
OPERATOR_UNITS=(keepalived.service isc-dhcp-server.service kea-dhcp4-server.service
  kea-ctrl-agent.service named.service)

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

SCRIPT_PATH="$(readlink -f "${BASH_SOURCE[0]}")"
HASH="$( { cat "$SCRIPT_PATH"; printf '%s\n' "$SUITE"; } | sha256sum | cut -c1-16)"
TAG="$IMAGE_REPO:$HASH"

if [ "$print_only" -eq 1 ]; then
  echo "$TAG"
  exit 0
fi

if [ "$force" -eq 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
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

configure_rootfs() {
  local root="$1"
  in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

  # The operator starts these; nothing else should.
  in_root systemctl disable "${OPERATOR_UNITS[@]}" >/dev/null 2>&1 || true
  # A sysv script is also started from its rc links; isc-dhcp-server has only a sysv script.
  in_root update-rc.d isc-dhcp-server disable >/dev/null 2>&1 || true
  # Timers and units that only cost time (or fail) in a container.
  in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    e2scrub_reap.service fstrim.timer systemd-remount-fs.service getty@tty1.service \
    console-getty.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    >/dev/null 2>&1 || true

  # Debian's default (both variables empty) starts dhcpd for v4 AND v6, and the v6 one fails
  # without a dhcpd6.conf, so the unit fails. Every real host sets INTERFACESv4; the lab's one
  # interface is eth0. A test that wants the stock file can rewrite it.
  cat >"$root/etc/default/isc-dhcp-server" <<'EOF'
# Set by the ddi-ha-operator host lab (hack/build-host-image.sh).
INTERFACESv4="eth0"
INTERFACESv6=""
EOF

  # sshd: key only, root allowed by key. Host keys are generated per container by the lab
  # harness (test/lab/lab.ts) and copied in before boot; lab-ssh-hostkey.service makes one only
  # when a container was started without (by hand, say).
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/ssh/sshd_config.d/ddi-ha-lab.conf" <<'EOF'
# ddi-ha-operator host lab
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
# The lab's test key is copied to /etc/ssh/authorized_keys/<user> (root-owned, so sshd's
# StrictModes accepts it for every user); ~/.ssh/authorized_keys works as usual.
AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u
UseDNS no
EOF
  mkdir -p "$root/etc/ssh/authorized_keys"
  cat >"$root/etc/systemd/system/lab-ssh-hostkey.service" <<'EOF'
[Unit]
Description=Generate an sshd host key when the lab harness did not provide one
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
EOF
  in_root systemctl enable lab-ssh-hostkey.service ssh.service >/dev/null 2>&1

  # Users: root (key), ddi (passwordless sudo), nosudo (no sudo right at all).
  # Password '*' rather than '!': OpenSSH refuses key logins to accounts it sees as locked.
  in_root useradd --create-home --shell /bin/bash ddi
  in_root useradd --create-home --shell /bin/bash nosudo
  in_root usermod -p '*' ddi
  in_root usermod -p '*' nosudo
  in_root usermod -p '*' root
  echo 'ddi ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/ddi"
  chmod 0440 "$root/etc/sudoers.d/ddi"

  # A keepalived unit with an empty/missing config does not start (ConditionFileNotEmpty), which
  # is what the operator must cope with on a fresh host; leave it absent.
  rm -f "$root/etc/keepalived/keepalived.conf"

  # Empty machine-id: systemd makes a transient one per container at boot (no first-boot presets).
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"

  # Size: the lab needs no docs, man pages, translations or apt lists.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/var/log/apt/*
  echo "ddi-ha-lab-host $HASH" >"$root/etc/ddi-ha-lab-release"
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
# Drop the images of older recipes; their tarballs stay in the cache until removed by hand.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" |
  grep -v -e ":$HASH\$" -e ':latest$' | xargs -r docker image rm >/dev/null 2>&1 || true
echo "$TAG"
