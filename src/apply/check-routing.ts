// Which checker batch a file belongs to, where its candidates may be staged on the host, and the
// check a patched file gets after its line is removed. Pure, so it is tested without daemons.
import type { FileCheck, ServiceUnit } from "../render/types.js";
import type { CheckKind } from "./types.js";

/** Check kinds whose files one checker call must see together. */
export function checkBatchKey(kind: CheckKind): string {
  return kind === "kea-dhcp4" || kind === "kea-ctrl-agent" ? "kea" : kind;
}

/**
 * Where the private check directory is created. Debian's AppArmor profile lets dhcpd read
 * /etc/dhcp/** but not /run or /tmp, so dhcpd candidates are staged below /etc/dhcp; the others
 * go to /run (a tmpfs: nothing survives a reboot).
 */
export function checkDirParent(kind: CheckKind, override: string | undefined): string {
  if (override) return override;
  return kind === "dhcpd" ? "/etc/dhcp" : "/run";
}

/** The check a patched file gets after its marked line is removed, when the caller named none. */
export function defaultCheckForService(service: ServiceUnit): FileCheck {
  switch (service) {
    case "keepalived.service":
      return { kind: "keepalived" };
    case "isc-dhcp-server.service":
      return { kind: "dhcpd" };
    case "kea-dhcp4-server.service":
      return { kind: "kea-dhcp4" };
    case "kea-ctrl-agent.service":
      return { kind: "kea-ctrl-agent" };
  }
}
