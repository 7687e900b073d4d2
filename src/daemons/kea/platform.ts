// Every Kea fact that depends on the Kea version or the Linux distribution lives here, so that
// supporting Kea 2.4/3.0 or another distribution means editing this file and its tests only.
// Checked against Debian bookworm's kea 2.2.0 (see docs/shared domain facts and ADR 0006).
import type { DDIHost } from "../../api/index.js";

export type OsFamily = "Debian" | "RHEL";

/** Where each family's kea packages put the hook libraries (seed 001 has these two swapped). */
export const KEA_HOOKS_DIR: Readonly<Record<OsFamily, string>> = {
  Debian: "/usr/lib/x86_64-linux-gnu/kea/hooks/",
  RHEL: "/usr/lib64/kea/hooks/",
};

/** Offline rendering assumes Debian, like the DDIHost schema says. */
export function osFamilyOf(host: DDIHost): OsFamily {
  return host.spec.osFamily ?? "Debian";
}

export function keaHooksDir(family: OsFamily): string {
  return KEA_HOOKS_DIR[family];
}

export const LEASE_CMDS_LIBRARY = "libdhcp_lease_cmds.so";
export const HA_LIBRARY = "libdhcp_ha.so";

/** The file name of a hook library path, e.g. `libdhcp_ha.so`. */
export function hookLibraryName(library: string): string {
  return library.slice(library.lastIndexOf("/") + 1);
}

/**
 * A hook library from one family's directory moved to another family's directory, so that a
 * Debian primary's extra hooks still load on a RHEL secondary. Paths outside the known
 * directories are the user's own and are left alone.
 */
export function relocateHookLibrary(library: string, family: OsFamily): string {
  for (const dir of Object.values(KEA_HOOKS_DIR)) {
    if (library.startsWith(dir)) return keaHooksDir(family) + library.slice(dir.length);
  }
  return library;
}

/** The unix control socket of kea-dhcp4 that the Control Agent forwards to (both families). */
export const KEA_DHCP4_CONTROL_SOCKET = "/run/kea/kea4-ctrl-socket";
/** The agent's other sockets as Debian ships them; kept so a host's kea-dhcp6/D2 stay reachable. */
export const KEA_AGENT_OTHER_SOCKETS: Readonly<Record<string, string>> = {
  dhcp6: "/run/kea/kea6-ctrl-socket",
  d2: "/run/kea/kea-ddns-ctrl-socket",
};
export const KEA_CTRL_AGENT_DEFAULT_PORT = 8000;

/**
 * Debian ships /etc/kea/*.conf as root:root 0644 and runs the daemons as `_kea`, so the files
 * must stay world-readable for the daemon to read them.
 */
export const KEA_CONFIG_FILE_MODE = 0o644;

export const KEA_DHCP4_UNIT = "kea-dhcp4-server.service";
export const KEA_CTRL_AGENT_UNIT = "kea-ctrl-agent.service";

/** Ports for the scratch server: unprivileged and in a private network namespace anyway. */
export const KEA_SCRATCH_SERVER_PORT = 10067;
export const KEA_SCRATCH_CLIENT_PORT = 10068;

/** What a Kea version can do, for the parts of the operator that must behave differently. */
export interface KeaCapabilities {
  /** `kea-dhcp4 -T` loads hooks and so validates the HA section (2.4+). 2.2 needs the scratch server. */
  hookValidatingCheck: boolean;
  /** A failed config-set keeps the running config (2.3.6+). On 2.2 the server loses its HA section. */
  configSetRollback: boolean;
  /** HA+MT's dedicated HTTP listener is on by default (2.4+): peers talk to kea-dhcp4, not the agent. */
  haDedicatedListenerDefault: boolean;
  /** The Control Agent is deprecated (3.0+). */
  controlAgentDeprecated: boolean;
  /** How many HA relationships one server may have (hub-and-spoke arrived in 2.6). */
  maxRelationships: number;
}

/** Parses "2.2.0" (or `kea-dhcp4 -v` output) into [major, minor, patch]. */
export function parseKeaVersion(version: string): [number, number, number] {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
  if (!m) throw new Error(`cannot read a Kea version from "${version}": expected e.g. 2.2.0`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

export function keaCapabilities(version: string): KeaCapabilities {
  const [major, minor, patch] = parseKeaVersion(version);
  const atLeast = (a: number, b: number, c = 0) => major > a || (major === a && (minor > b || (minor === b && patch >= c)));
  return {
    hookValidatingCheck: atLeast(2, 4),
    configSetRollback: atLeast(2, 3, 6),
    haDedicatedListenerDefault: atLeast(2, 4),
    controlAgentDeprecated: atLeast(3, 0),
    maxRelationships: atLeast(2, 6) ? Number.POSITIVE_INFINITY : 1,
  };
}

/** The version the operator is tested against; used when the host's version is not known yet. */
export const KEA_TESTED_VERSION = "2.2.0";
