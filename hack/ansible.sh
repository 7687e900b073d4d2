#!/usr/bin/env bash
# Installs Debian's ansible package (the baseline bench/fleet.ts compares ddi-ha against) if
# ansible-playbook is missing. Debian bookworm ships ansible 7.7 (ansible-core 2.14).
set -euo pipefail
if command -v ansible-playbook >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "hack/ansible.sh: needs root for apt-get (or install ansible yourself)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ansible >/dev/null
command -v ansible-playbook >/dev/null
