// The fleet benchmark's manifest set and Ansible inventory, from a lab's inventory. Pure: the
// same input gives the same text, so both tools are driven from one description of the fleet.
import { stringify } from "yaml";
import { API_GROUP_VERSION } from "../api/index.js";

export const FLEET_NAMESPACE = "fleet";
export const FLEET_SSH_SECRET = "fleet-ssh";
/** VRIDs 10, 11, …: distinct per pair, since every pair shares one lab network (one VRRP domain). */
export const FIRST_VRID = 10;

export interface FleetHost {
  /** DDIHost name and Ansible inventory name. */
  name: string;
  address: string;
  interface: string;
  hostKeyLine: string;
}

export interface FleetPair {
  name: string;
  primary: FleetHost;
  secondary: FleetHost;
  vip: string;
  vrid: number;
  /** The nodes' interfaces and the VIP's prefix when not the hosts' own (`interface`) network. */
  link?: { primaryInterface: string; secondaryInterface: string; prefixLength: number };
}

/** One L2 segment every host is on: its interface name per host and the VIPs it has room for. */
export interface FleetSegment {
  /** host name -> interface name on this segment */
  interfaceOf: ReadonlyMap<string, string>;
  prefixLength: number;
  /** How many VIPs (and so VRIDs) the segment has room for; at most 255. */
  capacity: number;
  /** VIP number `i` (0-based) on this segment. */
  vip(i: number): string;
}

/** Pairs hosts (1,2), (3,4), …; `vipFor(i)` gives pair i's VIP (an address no host has). */
export function fleetPairs(hosts: readonly FleetHost[], vipFor: (i: number) => string): FleetPair[] {
  if (hosts.length < 2 || hosts.length % 2 !== 0) throw new Error(`the fleet needs an even number of hosts (at least 2), not ${hosts.length}`);
  const pairs: FleetPair[] = [];
  for (let i = 0; i < hosts.length / 2; i++) {
    const vrid = FIRST_VRID + i;
    if (vrid > 255) throw new Error(`pair ${i} would need VRID ${vrid}; VRRP has 1..255`);
    pairs.push({ name: `vip${i + 1}`, primary: hosts[2 * i]!, secondary: hosts[2 * i + 1]!, vip: vipFor(i), vrid });
  }
  return pairs;
}

/**
 * Many pairs on few hosts, for the controller's memory bench: hosts are coupled (1,2), (3,4), …
 * and `count` pairs are dealt round-robin over the couples and, per couple, over the segments
 * (each a separate L2, so VRIDs restart per segment: 1, 2, … in the order pairs land on it). The
 * primary alternates within a couple, so each host holds half its couple's VIPs.
 */
export function densePairs(hosts: readonly FleetHost[], segments: readonly FleetSegment[], count: number): FleetPair[] {
  if (hosts.length < 2 || hosts.length % 2 !== 0) throw new Error(`the fleet needs an even number of hosts (at least 2), not ${hosts.length}`);
  const room = segments.reduce((n, s) => n + Math.min(255, s.capacity), 0);
  if (count > room) throw new Error(`${count} pairs need ${count} VIPs and VRIDs; ${segments.length} segment(s) have room for ${room}`);
  const couples = hosts.length / 2;
  const used = segments.map(() => 0);
  const pairs: FleetPair[] = [];
  for (let i = 0; i < count; i++) {
    const c = i % couples;
    const round = Math.floor(i / couples);
    // The next segment with room, starting from this round's: spreads a couple's pairs over all segments.
    let k = round % segments.length;
    while (used[k]! >= Math.min(255, segments[k]!.capacity)) k = (k + 1) % segments.length;
    const segment = segments[k]!;
    const n = used[k]!++;
    const [a, b] = [hosts[2 * c]!, hosts[2 * c + 1]!];
    const [primary, secondary] = round % 2 === 0 ? [a, b] : [b, a];
    const interfaceOf = (h: FleetHost) => {
      const name = segment.interfaceOf.get(h.name);
      if (!name) throw new Error(`host ${h.name} has no interface on segment ${k}`);
      return name;
    };
    pairs.push({
      name: `vip${i + 1}`,
      primary,
      secondary,
      vip: segment.vip(n),
      vrid: n + 1,
      link: { primaryInterface: interfaceOf(primary), secondaryInterface: interfaceOf(secondary), prefixLength: segment.prefixLength },
    });
  }
  return pairs;
}

/** The manifests `ddi-ha apply` takes: the SSH Secret, one DDIHost per host, one HAPair per pair. */
export function fleetManifestText(hosts: readonly FleetHost[], pairs: readonly FleetPair[], privateKey: string, prefixLength: number, namespace = FLEET_NAMESPACE): string {
  const meta = (name: string) => ({ name, namespace });
  const docs: object[] = [
    { apiVersion: "v1", kind: "Secret", metadata: meta(FLEET_SSH_SECRET), type: "Opaque", stringData: { privateKey } },
    ...hosts.map((h) => ({
      apiVersion: API_GROUP_VERSION,
      kind: "DDIHost",
      metadata: meta(h.name),
      spec: { address: h.address, credentialsSecretRef: { name: FLEET_SSH_SECRET }, hostKey: h.hostKeyLine, hostKeyPolicy: "Pinned" },
    })),
    ...pairs.map((p) => ({
      apiVersion: API_GROUP_VERSION,
      kind: "HAPair",
      metadata: meta(p.name),
      spec: {
        primary: { host: p.primary.name, interface: p.link?.primaryInterface ?? p.primary.interface },
        secondary: { host: p.secondary.name, interface: p.link?.secondaryInterface ?? p.secondary.interface },
        virtualIP: `${p.vip}/${p.link?.prefixLength ?? prefixLength}`,
        virtualRouterID: p.vrid,
        // The lab's hosts run no named and no DHCP server: the pair tracks nothing but itself.
        services: { dns: false, dhcp: "None" },
      },
    })),
  ];
  return docs.map((d) => stringify(d)).join("---\n");
}

/** An INI inventory: every host with its address; root over SSH with the lab key. */
export function ansibleInventory(hosts: readonly FleetHost[], keyPath: string, knownHostsPath: string): string {
  const safe = /^[A-Za-z0-9_.\/-]+$/;
  for (const path of [keyPath, knownHostsPath]) {
    if (!safe.test(path)) throw new Error(`the path ${path} has characters an INI inventory cannot carry`);
  }
  const lines = ["[fleet]"];
  for (const h of hosts) {
    if (!safe.test(h.name) || !safe.test(h.address)) throw new Error(`host ${h.name} (${h.address}) is not a plain inventory name`);
    lines.push(`${h.name} ansible_host=${h.address}`);
  }
  lines.push("", "[fleet:vars]", "ansible_user=root", `ansible_ssh_private_key_file=${keyPath}`,
    // Host keys are verified, as ddi-ha verifies them (Pinned): the lab's known_hosts.
    `ansible_ssh_common_args=-o UserKnownHostsFile=${knownHostsPath} -o StrictHostKeyChecking=yes`, "ansible_python_interpreter=/usr/bin/python3", "");
  return lines.join("\n");
}
