// Renders an HAPair into keepalived files for both hosts. Pure: spec in, RenderedFile[] out.
// Layout (docs/adr/0004-keepalived-file-ownership.md): each pair owns one file in a directory
// beside the node's configPath; the main file only holds host-neutral global_defs and an include
// of that directory, so it is identical whichever pair renders it and pairs come and go alone.
import { isIP, isIPv4 } from "node:net";
import { posix } from "node:path";
import { type DDIHost, type HAPair, type HAPairNodeSpec, type HAPairSpec, durationToMs } from "../../api/index.js";
import type { RenderedFile } from "../../render/types.js";

const SERVICE = "keepalived.service" as const;
const CHECK = { kind: "keepalived" } as const;

/** Directory beside the main file that holds one file per HAPair. */
export const PAIR_DIR_NAME = "ddi-ha.d";
/** keepalived runs it on every VRRP state change (`notify`); it leaves the state for the observer. */
export const NOTIFY_SCRIPT_PATH = "/usr/local/libexec/ddi-ha/keepalived-notify";
/** Where the notify script leaves `<instance>.state` files (a tmpfs: nothing stale survives a reboot). */
export const KEEPALIVED_STATE_DIR = "/run/ddi-ha/keepalived";

/**
 * The host's maintenance flag (DDIHost spec.maintenance): "1" puts every instance on the host in
 * FAULT through a track_file of weight 0, and keepalived leaving MASTER for FAULT sends a
 * priority-0 advert, so the partner takes the VIP after its skew time (about 0.6 s at priority
 * 100) instead of three missed adverts. keepalived follows the file by inotify: no reload. It lives
 * on disk, not in /run, so a host rebooted in maintenance comes back still handing the VIP away.
 */
export const MAINTENANCE_FLAG_PATH = "/var/lib/ddi-ha/keepalived-maintenance";
export const MAINTENANCE_TRACK_FILE = "ddi_ha_maintenance";

/** keepalived's limits (keepalived.conf(5), confirmed with `keepalived -t` 2.2.7). */
export const TRACK_WEIGHT_LIMIT = 253;
export const PREEMPT_DELAY_MAX_SECONDS = 1000;
export const VRRPV3_ADVERT_MAX_MS = 40_950;

/** A spec that validates but cannot be rendered; `field` is the spec path to fix. */
export class KeepalivedRenderError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "KeepalivedRenderError";
  }
}

export type PairRole = "primary" | "secondary";

/** `namespace/name`, the owner of every file the pair renders. */
export function keepalivedOwner(pair: HAPair): string {
  return `${pair.metadata.namespace ?? "default"}/${pair.metadata.name}`;
}

// Namespace and name are RFC 1123 (no '_'), so '_' separates them unambiguously: the identifiers
// are unique per pair and hold only [A-Za-z0-9_.-] (safe as keepalived words and as file names).
function pairIdentifier(pair: HAPair): string {
  return `ddiha_${pair.metadata.namespace ?? "default"}_${pair.metadata.name}`;
}

/** The vrrp_instance names of a pair: the same on both nodes (the observer reads `<instance>.state`). */
export function keepalivedInstanceNames(pair: HAPair): { ipv4: string; ipv6?: string } {
  // spec.instanceName keeps an adopted instance's own name (`ddi-ha import`, ADR 0027).
  const ipv4 = pair.spec.instanceName ?? `${pairIdentifier(pair)}_v4`;
  const ipv6 = pair.spec.instanceName !== undefined ? `${pair.spec.instanceName}_v6` : `${pairIdentifier(pair)}_v6`;
  return { ipv4, ...(pair.spec.virtualIPv6 !== undefined ? { ipv6 } : {}) };
}

/** The per-pair include directory for a main config file. */
export function keepalivedPairDir(configPath: string): string {
  return posix.join(posix.dirname(configPath), PAIR_DIR_NAME);
}

/** The file a pair owns on one node (what removing the pair deletes there). */
export function keepalivedPairFilePath(pair: HAPair, role: PairRole): string {
  const node = pair.spec[role];
  return posix.join(keepalivedPairDir(node.configPath), `${pair.metadata.namespace ?? "default"}_${pair.metadata.name}.conf`);
}

/**
 * What deleting a pair removes from its nodes: under deletionPolicy Remove its own file on each
 * node (the shared main file stays for the other pairs); under Retain nothing.
 */
export function keepalivedPairRemovals(pair: HAPair): { host: string; path: string; service: typeof SERVICE; ownership: "owned"; owner: string }[] {
  if (pair.spec.deletionPolicy === "Retain") return [];
  return (["primary", "secondary"] as const).map((role) => ({
    host: pair.spec[role].host,
    path: keepalivedPairFilePath(pair, role),
    service: SERVICE,
    ownership: "owned" as const,
    owner: keepalivedOwner(pair),
  }));
}

/** The main file: host-neutral global_defs and the include of the per-pair directory. */
export function renderKeepalivedMain(configPath: string): string {
  const dir = keepalivedPairDir(configPath);
  return `# Managed by ddi-ha-operator. Shared by every HAPair on this host: each pair's VRRP
# instances live in their own file in ${dir}/.
# Do not edit: the operator rewrites this file.

global_defs {
  # Track and notify scripts run as root, and only if no non-root user can change their path.
  enable_script_security
  script_user root
}

# The host's maintenance flag (DDIHost spec.maintenance): 1 puts every instance here in FAULT,
# which hands each VIP to the partner with a priority-0 advert. keepalived watches the file itself.
track_file ${MAINTENANCE_TRACK_FILE} {
  file ${MAINTENANCE_FLAG_PATH}
  weight 0
  init_file 0
}

include ${dir}/*.conf
`;
}

/**
 * The notify hook. keepalived calls it with `INSTANCE|GROUP NAME STATE PRIORITY` and may run
 * several at once, so each record carries a stamp taken first thing, writes are serialised with
 * flock, and a record that lost the race does not replace the newer one. The write is temp +
 * rename, so a reader sees the old record or the new one, never half of one.
 */
export function renderKeepalivedNotifyScript(stateDir = KEEPALIVED_STATE_DIR): string {
  return `#!/bin/sh
# Managed by ddi-ha-operator: keepalived's notify hook for the HAPair instances.
# Leaves "<STATE> <priority> <epoch seconds.nanoseconds>" in ${stateDir}/<instance>.state.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
stamp=$(date +%s.%N)
set -eu
[ "$#" -ge 4 ] || exit 0
shift $(($# - 4))
kind=$1 name=$2 state=$3 priority=$4
[ "$kind" = INSTANCE ] || exit 0
case "$name" in '' | .* | *[!A-Za-z0-9_.-]*) exit 0 ;; esac
case "$priority" in '' | *[!0-9]*) priority=0 ;; esac
dir=${stateDir}
mkdir -p "$dir"
exec 9>>"$dir/.lock"
flock 9
file="$dir/$name.state"
if [ "$state" = DELETED ]; then
  rm -f "$file"
  exit 0
fi
case "$state" in MASTER | BACKUP | FAULT | STOP) ;; *) exit 0 ;; esac
# A record stamped less than 2 s after ours is a later transition whose hook finished first:
# keep it. (Further ahead means the clock was stepped back, and ours is the news.)
if [ -f "$file" ] && read -r _ _ last <"$file"; then
  if awk -v a="$last" -v b="$stamp" 'BEGIN { d = a - b; exit !(d > 0 && d < 2) }'; then exit 0; fi
fi
tmp="$dir/.$name.state.$$"
printf '%s %s %s\\n' "$state" "$priority" "$stamp" >"$tmp"
mv -f "$tmp" "$file"
`;
}

interface ServiceTrack {
  /** Suffix of the vrrp_script name. */
  id: string;
  unit: string;
}

/** The systemd units the pair tracks, from spec.services. */
export function trackedUnits(services: HAPairSpec["services"]): ServiceTrack[] {
  const tracks: ServiceTrack[] = [];
  if (services.dns) tracks.push({ id: "dns", unit: "named.service" });
  if (services.dhcp === "DHCPv4" || services.dhcp === "Both") {
    tracks.push({ id: "dhcp4", unit: services.dhcpv4Server === "kea-dhcp4" ? "kea-dhcp4-server.service" : "isc-dhcp-server.service" });
  }
  if (services.dhcp === "DHCPv6" || services.dhcp === "Both") {
    tracks.push({ id: "dhcp6", unit: services.dhcpv6Server === "kea-dhcp6" ? "kea-dhcp6-server.service" : "isc-dhcp-server6.service" });
  }
  return tracks;
}

/**
 * The track_script weight. With nopreempt it must be 0 (the instance goes to FAULT), or the VIP
 * never leaves a master whose service died. With preempt, a failure must drop the primary below
 * the secondary: |weight| > priority gap. When the gap is too large for keepalived's ±253, FAULT
 * is the only way to move the VIP.
 */
export function trackWeight(spec: Pick<HAPairSpec, "preempt" | "primary" | "secondary">): number {
  if (!spec.preempt) return 0;
  const gap = spec.primary.priority - spec.secondary.priority;
  const wanted = gap + 10;
  if (gap + 1 > TRACK_WEIGHT_LIMIT) return 0;
  return -Math.min(wanted, TRACK_WEIGHT_LIMIT);
}

interface AdvertSettings {
  /** keepalived's advert_int value. */
  advertInt: string;
  /** VRRP version to render on the IPv4 instance. */
  version: 2 | 3;
}

function formatSeconds(ms: number): string {
  return (ms / 1000).toFixed(3).replace(/\.?0+$/, "");
}

/** advert_int for the IPv4 instance: whole seconds stay VRRPv2; fractions need VRRPv3 (centiseconds). */
export function advertSettings(advertInterval: string): AdvertSettings {
  const ms = durationToMs(advertInterval);
  if (ms % 1000 === 0) return { advertInt: String(ms / 1000), version: 2 };
  checkVrrpv3Advert(ms, advertInterval);
  return { advertInt: formatSeconds(ms), version: 3 };
}

function checkVrrpv3Advert(ms: number, advertInterval: string): void {
  if (ms % 10 !== 0) {
    throw new KeepalivedRenderError(
      "spec.advertInterval",
      `spec.advertInterval ${JSON.stringify(advertInterval)} needs VRRPv3, which counts in units of 10ms: use e.g. "500ms" or "1s"`,
    );
  }
  if (ms > VRRPV3_ADVERT_MAX_MS) {
    throw new KeepalivedRenderError(
      "spec.advertInterval",
      `spec.advertInterval ${JSON.stringify(advertInterval)} is above VRRPv3's 40.95s: use whole seconds up to 40s (or up to 255s without virtualIPv6 and with a whole number of seconds)`,
    );
  }
}

function lookupHost(pair: HAPair, hosts: ReadonlyMap<string, DDIHost>, role: PairRole): DDIHost {
  const name = pair.spec[role].host;
  const host = hosts.get(name);
  if (!host) {
    throw new KeepalivedRenderError(
      `spec.${role}.host`,
      `spec.${role}.host names DDIHost ${JSON.stringify(name)}, which does not exist in namespace ${pair.metadata.namespace ?? "default"}: create it or fix the name`,
    );
  }
  return host;
}

/** The node's own address for unicast: spec.<role>.address, else the DDIHost address if it is an IP. */
export function unicastAddress(node: HAPairNodeSpec, host: DDIHost, role: PairRole): string {
  if (node.address !== undefined) return node.address;
  if (isIP(host.spec.address) !== 0) return host.spec.address;
  throw new KeepalivedRenderError(
    `spec.${role}.address`,
    `spec.unicast needs each node's own IP address, and DDIHost ${host.metadata.name} is reached by the name ${JSON.stringify(host.spec.address)}: set spec.${role}.address to the node's IPv4 address on ${node.interface}`,
  );
}

interface InstanceInput {
  name: string;
  family: 4 | 6;
  state: "MASTER" | "BACKUP";
  node: HAPairNodeSpec;
  /** The node's priority after spec.preferredNode (swapped with the partner's for a switchover). */
  priority: number;
  vip: string;
  version: 2 | 3;
  advertInt: string;
  scripts: string[];
  weight: number;
  nopreempt: boolean;
  preemptDelay?: string;
  authPass?: string;
  unicast?: { self: string; peer: string };
  vrid: number;
}

function renderInstance(i: InstanceInput): string {
  const lines: string[] = [];
  lines.push(`vrrp_instance ${i.name} {`);
  lines.push(`  state ${i.state}`);
  if (i.nopreempt) lines.push("  nopreempt");
  if (i.preemptDelay !== undefined) lines.push(`  preempt_delay ${i.preemptDelay}`);
  lines.push(`  interface ${i.node.interface}`);
  lines.push(`  virtual_router_id ${i.vrid}`);
  lines.push(`  priority ${i.priority}`);
  if (i.version === 3) lines.push("  version 3");
  lines.push(`  advert_int ${i.advertInt}`);
  if (i.authPass !== undefined) {
    lines.push("  authentication {", "    auth_type PASS", `    auth_pass ${i.authPass}`, "  }");
  }
  if (i.unicast) {
    lines.push(`  unicast_src_ip ${i.unicast.self}`, "  unicast_peer {", `    ${i.unicast.peer}`, "  }");
    // Without it, an empty peer list silently falls back to multicast (keepalived >= 2.2.5).
    lines.push("  unicast_fault_no_peer");
  }
  // Re-announce the VIP every minute: switches and ARP caches that missed the takeover burst converge.
  lines.push("  garp_master_refresh 60");
  lines.push("  track_file {", `    ${MAINTENANCE_TRACK_FILE} weight 0`, "  }");
  if (i.scripts.length > 0) {
    lines.push("  track_script {");
    for (const s of i.scripts) lines.push(`    ${s} weight ${i.weight}`);
    lines.push("  }");
  }
  lines.push("  virtual_ipaddress {", `    ${i.vip} dev ${i.node.interface}`, "  }");
  lines.push(`  notify ${NOTIFY_SCRIPT_PATH}`);
  // Report DELETED (not FAULT) when a reload drops the instance, so the hook removes its state file.
  lines.push("  notify_deleted");
  lines.push("}");
  return lines.join("\n");
}

function renderPairFile(pair: HAPair, role: PairRole, hosts: ReadonlyMap<string, DDIHost>): string {
  const spec = pair.spec;
  const node = spec[role];
  const partnerRole: PairRole = role === "primary" ? "secondary" : "primary";
  const partner = spec[partnerRole];
  const names = keepalivedInstanceNames(pair);
  const owner = keepalivedOwner(pair);
  const self = lookupHost(pair, hosts, role);
  const other = lookupHost(pair, hosts, partnerRole);

  const advert = advertSettings(spec.advertInterval);
  if (spec.authPass !== undefined && advert.version === 3) {
    throw new KeepalivedRenderError(
      "spec.authPass",
      `spec.authPass needs VRRPv2, but spec.advertInterval ${JSON.stringify(spec.advertInterval)} is a fraction of a second, which needs VRRPv3 (no authentication): remove authPass or use whole seconds`,
    );
  }
  let unicast: { self: string; peer: string } | undefined;
  if (spec.unicast) {
    if (spec.virtualIPv6 !== undefined) {
      throw new KeepalivedRenderError(
        "spec.virtualIPv6",
        "spec.unicast with spec.virtualIPv6 needs each node's IPv6 address for the IPv6 instance, and a node has one address (spec.primary.address): remove virtualIPv6 or set unicast: false",
      );
    }
    unicast = { self: unicastAddress(node, self, role), peer: unicastAddress(partner, other, partnerRole) };
    if (unicast.self === unicast.peer) {
      throw new KeepalivedRenderError(
        "spec.secondary.address",
        `spec.unicast: both nodes would use ${unicast.self} (spec.primary.address / spec.secondary.address or their DDIHost addresses): give each node its own address`,
      );
    }
    for (const [r, address] of [[role, unicast.self], [partnerRole, unicast.peer]] as const) {
      if (!isIPv4(address)) {
        throw new KeepalivedRenderError(
          `spec.${r}.address`,
          `spec.${r}.address ${address} is not IPv4, but the unicast adverts of the IPv4 VIP ${spec.virtualIP} go between IPv4 addresses: set spec.${r}.address to the node's IPv4 address on ${spec[r].interface}`,
        );
      }
    }
  }

  let preemptDelay: string | undefined;
  if (spec.preempt && spec.preemptDelay !== undefined) {
    const ms = durationToMs(spec.preemptDelay);
    if (ms > PREEMPT_DELAY_MAX_SECONDS * 1000) {
      throw new KeepalivedRenderError("spec.preemptDelay", `spec.preemptDelay ${JSON.stringify(spec.preemptDelay)} is above keepalived's 1000s: use at most "1000s"`);
    }
    preemptDelay = formatSeconds(ms);
  }
  // keepalived ignores nopreempt and preempt_delay unless the instance starts as BACKUP.
  const state = role === spec.preferredNode && spec.preempt && preemptDelay === undefined ? "MASTER" : "BACKUP";
  const tracks = trackedUnits(spec.services);
  const id = pairIdentifier(pair);
  const scriptNames = tracks.map((t) => `${id}_${t.id}`);
  const weight = trackWeight(spec);

  const parts: string[] = [];
  parts.push(
    `# Managed by ddi-ha-operator for HAPair ${owner}: the ${role} node (DDIHost ${node.host}), partner DDIHost ${partner.host}.`,
    `# The HAPair owns this file: edit the HAPair, not this file. Deleting the HAPair deletes it (deletionPolicy ${spec.deletionPolicy}).`,
  );
  if (tracks.length > 0) {
    parts.push(
      weight === 0
        ? "# A failed service check puts the instance in FAULT, so the VIP leaves this node."
        : `# A failed service check lowers the priority by ${-weight}, more than the ${spec.primary.priority - spec.secondary.priority} between the nodes, so the VIP moves.`,
    );
  }
  parts.push("");
  tracks.forEach((t, n) => {
    parts.push(
      `vrrp_script ${scriptNames[n]} {`,
      `  script "/usr/bin/systemctl is-active --quiet ${t.unit}"`,
      "  interval 2",
      "  timeout 5",
      "  fall 2",
      "  rise 2",
      "}",
      "",
    );
  });
  const common = {
    state,
    node,
    priority: effectivePriority(spec, role),
    scripts: scriptNames,
    weight,
    nopreempt: !spec.preempt,
    ...(preemptDelay !== undefined ? { preemptDelay } : {}),
    vrid: spec.virtualRouterID,
  } as const;
  parts.push(
    renderInstance({
      ...common,
      name: names.ipv4,
      family: 4,
      vip: spec.virtualIP,
      version: advert.version,
      advertInt: advert.advertInt,
      ...(spec.authPass !== undefined ? { authPass: spec.authPass } : {}),
      ...(unicast ? { unicast } : {}),
    }),
  );
  if (spec.virtualIPv6 !== undefined && names.ipv6 !== undefined) {
    const ms = durationToMs(spec.advertInterval);
    checkVrrpv3Advert(ms, spec.advertInterval);
    parts.push(
      "",
      "# IPv6 addresses cannot share a virtual_ipaddress block with IPv4: their own instance, VRRPv3 (no authentication).",
      renderInstance({ ...common, name: names.ipv6, family: 6, vip: spec.virtualIPv6, version: 3, advertInt: formatSeconds(ms) }),
    );
  }
  return `${parts.join("\n")}\n`;
}

/**
 * The keepalived files of one HAPair on both its hosts: per host the pair's own file, the shared
 * main file at configPath and the shared notify script. Throws KeepalivedRenderError naming the
 * field when the spec cannot be rendered (e.g. a missing DDIHost).
 */
export function renderKeepalivedPair(pair: HAPair, hosts: ReadonlyMap<string, DDIHost>): RenderedFile[] {
  const owner = keepalivedOwner(pair);
  const files: RenderedFile[] = [];
  for (const role of ["primary", "secondary"] as const) {
    const node = pair.spec[role];
    const base = { host: node.host, service: SERVICE, check: CHECK, owner };
    files.push(
      { ...base, path: keepalivedPairFilePath(pair, role), content: renderPairFile(pair, role, hosts), mode: 0o644, ownership: "owned" },
      { ...base, path: node.configPath, content: renderKeepalivedMain(node.configPath), mode: 0o644, ownership: "shared" },
      { ...base, path: NOTIFY_SCRIPT_PATH, content: renderKeepalivedNotifyScript(), mode: 0o755, ownership: "shared" },
      {
        ...base,
        path: MAINTENANCE_FLAG_PATH,
        content: renderMaintenanceFlag(hosts.get(node.host)),
        mode: 0o644,
        ownership: "shared",
        check: { kind: "none" },
        followedByDaemon: true,
      },
    );
  }
  return files;
}

/** The flag file on one host: "1" while its DDIHost is in maintenance. Identical for every pair on the host. */
export function renderMaintenanceFlag(host: DDIHost | undefined): string {
  return host?.spec.maintenance ? "1\n" : "0\n";
}

/**
 * A node's priority after spec.preferredNode: for a planned switchover the two priorities swap,
 * so the preferred node outranks the other and, with preempt, takes the VIP while the other still
 * holds it (no moment without a holder). The track weights depend on the gap only, which stays.
 */
export function effectivePriority(spec: Pick<HAPairSpec, "preferredNode" | "primary" | "secondary">, role: PairRole): number {
  if (spec.preferredNode !== "secondary") return spec[role].priority;
  return spec[role === "primary" ? "secondary" : "primary"].priority;
}

/** The nodes of the given pairs that sit on `host`. */
function nodesOn(host: string, pairs: readonly HAPair[]): { pair: HAPair; role: PairRole }[] {
  return pairs.flatMap((pair) => (["primary", "secondary"] as const).filter((role) => pair.spec[role].host === host).map((role) => ({ pair, role })));
}

/**
 * All keepalived files of one host from every HAPair touching it: the shared main file and notify
 * script once, plus one owned file per pair. Refuses what keepalived would silently get wrong with
 * several pairs: main files at different paths (the unit reads only one) and two pairs with the
 * same VRID on the same interface.
 */
export function renderKeepalivedHost(host: string, pairs: readonly HAPair[], hosts: ReadonlyMap<string, DDIHost>): RenderedFile[] {
  const nodes = nodesOn(host, pairs);
  const configPaths = new Set(nodes.map((n) => n.pair.spec[n.role].configPath));
  if (configPaths.size > 1) {
    const list = nodes.map((n) => `HAPair ${keepalivedOwner(n.pair)} uses ${n.pair.spec[n.role].configPath}`).join(", ");
    throw new KeepalivedRenderError("spec.primary.configPath", `DDIHost ${host} would get several keepalived main files (${list}); keepalived reads one: give every HAPair on this host the same configPath`);
  }
  const vrids = new Map<string, string>();
  for (const { pair, role } of nodes) {
    const key = `${pair.spec[role].interface}/${pair.spec.virtualRouterID}`;
    const seen = vrids.get(key);
    if (seen !== undefined) {
      throw new KeepalivedRenderError(
        "spec.virtualRouterID",
        `HAPairs ${seen} and ${keepalivedOwner(pair)} both use virtual_router_id ${pair.spec.virtualRouterID} on ${pair.spec[role].interface} of DDIHost ${host}: give one of them another VRID`,
      );
    }
    vrids.set(key, keepalivedOwner(pair));
  }
  const byPath = new Map<string, RenderedFile>();
  for (const pair of [...new Set(nodes.map((n) => n.pair))]) {
    for (const file of renderKeepalivedPair(pair, hosts)) {
      if (file.host !== host) continue;
      const existing = byPath.get(file.path);
      if (existing && !(existing.ownership === "shared" && file.ownership === "shared" && existing.content === file.content)) {
        throw new KeepalivedRenderError("metadata.name", `${file.path} on DDIHost ${host} is rendered by both ${existing.owner} and ${file.owner}`);
      }
      if (!existing) byPath.set(file.path, file);
    }
  }
  return [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
}
