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

/** The manifests `ddi-ha apply` takes: the SSH Secret, one DDIHost per host, one HAPair per pair. */
export function fleetManifestText(hosts: readonly FleetHost[], pairs: readonly FleetPair[], privateKey: string, prefixLength: number): string {
  const meta = (name: string) => ({ name, namespace: FLEET_NAMESPACE });
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
        primary: { host: p.primary.name, interface: p.primary.interface },
        secondary: { host: p.secondary.name, interface: p.secondary.interface },
        virtualIP: `${p.vip}/${prefixLength}`,
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
