# The host-lab image recipe: what goes into the rootfs and how it is configured.
# Sourced by hack/build-host-image.sh. The image tag is a hash of THIS file (and the suite), so
# any change here builds a new image, and changes elsewhere do not.
# shellcheck shell=bash

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
#   tcpdump                       watching VRRP adverts and DHCP by hand in a demo
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
  tcpdump
)

# Units the operator starts itself. They are installed but not enabled, like on a host where
# the packages were installed and the operator has not been applied yet.
OPERATOR_UNITS=(keepalived.service isc-dhcp-server.service kea-dhcp4-server.service
  kea-ctrl-agent.service named.service)

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
  echo "ddi-ha-lab-host $RECIPE_HASH" >"$root/etc/ddi-ha-lab-release"
}
