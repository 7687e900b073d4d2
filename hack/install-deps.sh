#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need: the daemons whose own config checkers
# the unit tests run (keepalived -t, dhcpd -t, kea-dhcp4 -t), promtool for the alert rules, and
# the tools behind the lab.
# Idempotent: a machine that has everything does nothing.
set -euo pipefail

packages=(
  keepalived isc-dhcp-server kea-dhcp4-server kea-ctrl-agent # the daemons' own checkers
  iproute2 util-linux openssl openssh-client                 # unshare -n, ip, keys, ssh
  nftables procps                                            # nft (dropping VRRP adverts in a netns), ps
  docker.io debootstrap                                      # the host lab
  etcd-server                                                # fallback etcd for the control plane
  prometheus                                                 # promtool check rules / test rules on the chart's alerts
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "hack/install-deps.sh: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The daemons' postinst scripts (prometheus's too) try to start services; on a machine without
# systemd that fails harmlessly, and the tests never use the machine's own instances.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
