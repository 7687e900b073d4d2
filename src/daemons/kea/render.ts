// Renders a KeaHACluster into each peer's kea-dhcp4 and kea-ctrl-agent configs. Pure: the
// primary's on-host config (PrimaryIsSourceOfTruth) or each host's own config (HAOnly) comes in
// through the options, already parsed.
import { isIP } from "node:net";
import { type DDIHost, type KeaHACluster, type KeaPeerSpec, durationToMs } from "../../api/index.js";
import type { RenderedFile } from "../../render/types.js";
import { isRecord, stableStringify } from "./config-text.js";
import { effectivePeers } from "./switchover.js";
import {
  HA_LIBRARY,
  KEA_AGENT_OTHER_SOCKETS,
  KEA_CONFIG_FILE_MODE,
  KEA_CTRL_AGENT_DEFAULT_PORT,
  KEA_CTRL_AGENT_UNIT,
  KEA_DHCP4_CONTROL_SOCKET,
  KEA_DHCP4_UNIT,
  LEASE_CMDS_LIBRARY,
  type OsFamily,
  hookLibraryName,
  keaHooksDir,
  osFamilyOf,
  relocateHookLibrary,
} from "./platform.js";

export type Dhcp4Settings = Record<string, unknown>;

export interface RenderKeaOptions {
  /**
   * The Dhcp4 object every peer starts from under PrimaryIsSourceOfTruth. The engine passes the
   * primary's on-host config when spec.dhcp4 is unset. Defaults to spec.dhcp4, then a minimal config.
   */
  baseDhcp4?: Dhcp4Settings;
  /** Under HAOnly: each host's current Dhcp4 object, by DDIHost name; only the HA parts are changed. */
  currentDhcp4ByHost?: ReadonlyMap<string, Dhcp4Settings>;
}

/** A minimal Dhcp4 when neither the primary nor the spec gives one: Debian's lease database and timers. */
export const MINIMAL_DHCP4: Dhcp4Settings = {
  "valid-lifetime": 3600,
  "renew-timer": 900,
  "rebind-timer": 1800,
};

const DEFAULT_LEASE_DATABASE = { type: "memfile", "lfc-interval": 3600 };

/** Keys of the HA relationship that the spec owns; anything else in a base section (TLS, MT, auth) is kept. */
const MANAGED_RELATIONSHIP_KEYS = [
  "this-server-name",
  "mode",
  "heartbeat-delay",
  "max-response-delay",
  "max-ack-delay",
  "max-unacked-clients",
  "sync-timeout",
  "sync-page-limit",
  "send-lease-updates",
  "sync-leases",
  "wait-backup-ack",
  "delayed-updates-limit",
  "peers",
] as const;
const MANAGED_PEER_KEYS = ["name", "url", "role", "auto-failover"] as const;

export class KeaRenderError extends Error {}

function describe(cluster: KeaHACluster): string {
  return `KeaHACluster ${cluster.metadata.namespace ?? "default"}/${cluster.metadata.name}`;
}

function hostOf(cluster: KeaHACluster, hosts: ReadonlyMap<string, DDIHost>, index: number): DDIHost {
  const peer = cluster.spec.peers[index]!;
  const host = hosts.get(peer.host);
  if (!host) {
    throw new KeaRenderError(`${describe(cluster)}: spec.peers[${index}].host names DDIHost "${peer.host}", which does not exist in the namespace: create it or fix the name`);
  }
  return host;
}

/** spec.peers[i].url, or http://<DDIHost address>:8000/ when the address is an IP literal. */
export function peerUrl(cluster: KeaHACluster, hosts: ReadonlyMap<string, DDIHost>, index: number): string {
  const peer = cluster.spec.peers[index]!;
  if (peer.url) return peer.url;
  const address = hostOf(cluster, hosts, index).spec.address;
  const family = isIP(address);
  if (family === 0) {
    throw new KeaRenderError(
      `${describe(cluster)}: spec.peers[${index}].url is unset and DDIHost "${peer.host}" has the DNS name ${address}; Kea needs an IP literal in peer URLs: set spec.peers[${index}].url, e.g. http://<ip>:${KEA_CTRL_AGENT_DEFAULT_PORT}/`,
    );
  }
  return family === 6 ? `http://[${address}]:${KEA_CTRL_AGENT_DEFAULT_PORT}/` : `http://${address}:${KEA_CTRL_AGENT_DEFAULT_PORT}/`;
}

/** The address and port the peer's Control Agent must listen on: the ones in its peer URL. */
export function agentEndpoint(url: string): { host: string; port: number; tls: boolean } {
  const parsed = new URL(url);
  const tls = parsed.protocol === "https:";
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = parsed.port === "" ? (tls ? 443 : 80) : Number(parsed.port);
  return { host, port, tls };
}

/** The `high-availability` relationship for one peer: the spec's values, this peer's own name. */
export function buildHARelationship(
  cluster: KeaHACluster,
  hosts: ReadonlyMap<string, DDIHost>,
  thisPeer: KeaPeerSpec,
  base?: Record<string, unknown>,
): Record<string, unknown> {
  const spec = cluster.spec;
  const kept = base ? omit(base, MANAGED_RELATIONSHIP_KEYS) : {};
  const basePeers = base && Array.isArray(base.peers) ? base.peers.filter(isRecord) : [];
  const relationship: Record<string, unknown> = {
    ...kept,
    // Its own name on every peer: copying the primary's verbatim breaks HA (seed 001).
    "this-server-name": thisPeer.name,
    mode: spec.mode,
    "heartbeat-delay": durationToMs(spec.heartbeatDelay),
    "max-response-delay": durationToMs(spec.maxResponseDelay),
    "max-ack-delay": durationToMs(spec.maxAckDelay),
    "max-unacked-clients": spec.maxUnackedClients,
    "sync-timeout": durationToMs(spec.syncTimeout),
    "sync-page-limit": spec.syncPageLimit,
    "send-lease-updates": spec.sendLeaseUpdates,
    "sync-leases": spec.syncLeases,
    // After a planned switchover (spec.preferredPrimary) the primary and standby roles are swapped.
    peers: effectivePeers(spec).map((peer, i) => {
      const basePeer = basePeers.find((p) => p.name === peer.name);
      return {
        ...(basePeer ? omit(basePeer, MANAGED_PEER_KEYS) : {}),
        name: peer.name,
        url: peerUrl(cluster, hosts, i),
        role: peer.role,
        "auto-failover": peer.autoFailover,
      };
    }),
  };
  if (spec.waitBackupAck !== undefined) relationship["wait-backup-ack"] = spec.waitBackupAck;
  if (spec.delayedUpdatesLimit !== undefined) relationship["delayed-updates-limit"] = spec.delayedUpdatesLimit;
  return relationship;
}

function omit(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

/**
 * The hooks-libraries list with lease_cmds + ha managed: they replace any existing entries (at the
 * first one's position, so the user's hook order survives), other hooks are kept and moved to this
 * peer's hooks directory when they came from another family's.
 */
function managedHooks(
  cluster: KeaHACluster,
  hosts: ReadonlyMap<string, DDIHost>,
  peer: KeaPeerSpec,
  family: OsFamily,
  baseHooks: unknown,
): unknown[] {
  const hooks = Array.isArray(baseHooks) ? baseHooks : [];
  const isManaged = (h: unknown) =>
    isRecord(h) && typeof h.library === "string" && [LEASE_CMDS_LIBRARY, HA_LIBRARY].includes(hookLibraryName(h.library));
  const baseHa = hooks.find((h) => isRecord(h) && typeof h.library === "string" && hookLibraryName(h.library) === HA_LIBRARY) as
    | Record<string, unknown>
    | undefined;
  const baseParams = isRecord(baseHa?.parameters) ? baseHa.parameters : {};
  const baseRelationships = Array.isArray(baseParams["high-availability"]) ? baseParams["high-availability"] : [];
  const baseRelationship = baseRelationships.find(isRecord);
  const dir = keaHooksDir(family);
  const ours = [
    { library: dir + LEASE_CMDS_LIBRARY },
    {
      library: dir + HA_LIBRARY,
      parameters: { ...baseParams, "high-availability": [buildHARelationship(cluster, hosts, peer, baseRelationship)] },
    },
  ];
  const firstManaged = hooks.findIndex(isManaged);
  const others = hooks
    .filter((h) => !isManaged(h))
    .map((h) => (isRecord(h) && typeof h.library === "string" ? { ...h, library: relocateHookLibrary(h.library, family) } : h));
  const at = firstManaged === -1 ? others.length : hooks.slice(0, firstManaged).filter((h) => !isManaged(h)).length;
  return [...others.slice(0, at), ...ours, ...others.slice(at)];
}

/**
 * configSync HAOnly: the host's own Dhcp4 with only lease_cmds + the HA section managed. A
 * control socket is added only if the host has none (HA traffic reaches kea-dhcp4 through it).
 */
export function withManagedHASection(
  currentDhcp4: Dhcp4Settings,
  cluster: KeaHACluster,
  hosts: ReadonlyMap<string, DDIHost>,
  peerName: string,
): Dhcp4Settings {
  const { peer, host } = findPeer(cluster, hosts, peerName);
  const dhcp4: Dhcp4Settings = { ...currentDhcp4 };
  if (!isRecord(dhcp4["control-socket"])) dhcp4["control-socket"] = { "socket-type": "unix", "socket-name": KEA_DHCP4_CONTROL_SOCKET };
  dhcp4["hooks-libraries"] = managedHooks(cluster, hosts, peer, osFamilyOf(host), currentDhcp4["hooks-libraries"]);
  return dhcp4;
}

/** configSync PrimaryIsSourceOfTruth: the shared base plus every operator-managed part for one peer. */
export function dhcp4ForPeer(base: Dhcp4Settings, cluster: KeaHACluster, hosts: ReadonlyMap<string, DDIHost>, peerName: string): Dhcp4Settings {
  const { peer, host } = findPeer(cluster, hosts, peerName);
  const dhcp4: Dhcp4Settings = { ...base };
  // The primary's interface names mean nothing on the other hosts; keep its other socket settings.
  const baseInterfaces = isRecord(base["interfaces-config"]) ? base["interfaces-config"] : {};
  dhcp4["interfaces-config"] = { ...baseInterfaces, interfaces: [peer.interface ?? "*"] };
  dhcp4["control-socket"] = { "socket-type": "unix", "socket-name": KEA_DHCP4_CONTROL_SOCKET };
  if (!isRecord(base["lease-database"])) dhcp4["lease-database"] = DEFAULT_LEASE_DATABASE;
  dhcp4["hooks-libraries"] = managedHooks(cluster, hosts, peer, osFamilyOf(host), base["hooks-libraries"]);
  return dhcp4;
}

function findPeer(cluster: KeaHACluster, hosts: ReadonlyMap<string, DDIHost>, peerName: string): { peer: KeaPeerSpec; host: DDIHost } {
  const index = cluster.spec.peers.findIndex((p) => p.name === peerName);
  if (index === -1) throw new KeaRenderError(`${describe(cluster)}: no peer named "${peerName}" in spec.peers`);
  return { peer: cluster.spec.peers[index]!, host: hostOf(cluster, hosts, index) };
}

/** The Control Agent config: bound to the peer-facing address (bookworm's default is 127.0.0.1). */
export function controlAgentConfig(url: string, dhcp4SocketName: string): Record<string, unknown> {
  const { host, port } = agentEndpoint(url);
  return {
    "Control-agent": {
      "http-host": host,
      "http-port": port,
      "control-sockets": {
        dhcp4: { "socket-type": "unix", "socket-name": dhcp4SocketName },
        ...Object.fromEntries(Object.entries(KEA_AGENT_OTHER_SOCKETS).map(([service, socket]) => [service, { "socket-type": "unix", "socket-name": socket }])),
      },
      // As Debian ships it: to stdout, i.e. the journal.
      loggers: [{ name: "kea-ctrl-agent", output_options: [{ output: "stdout", pattern: "%-5p %m\n" }], severity: "INFO", debuglevel: 0 }],
    },
  };
}

/** One kea-dhcp4 config and one kea-ctrl-agent config per peer, each with its own this-server-name. */
export function renderKeaCluster(cluster: KeaHACluster, hosts: ReadonlyMap<string, DDIHost>, options: RenderKeaOptions = {}): RenderedFile[] {
  const spec = cluster.spec;
  const owner = `${cluster.metadata.namespace ?? "default"}/${cluster.metadata.name}`;
  const sharedBase = options.baseDhcp4 ?? spec.dhcp4 ?? MINIMAL_DHCP4;
  const files: RenderedFile[] = [];
  spec.peers.forEach((peer, i) => {
    const url = peerUrl(cluster, hosts, i);
    if (agentEndpoint(url).tls) {
      throw new KeaRenderError(
        `${describe(cluster)}: spec.peers[${i}].url uses https, but the operator renders a plain-HTTP Control Agent (no TLS settings in the spec yet): use http:// in spec.peers[${i}].url`,
      );
    }
    const current = spec.configSync === "HAOnly" ? options.currentDhcp4ByHost?.get(peer.host) : undefined;
    const dhcp4 = current ? withManagedHASection(current, cluster, hosts, peer.name) : dhcp4ForPeer(sharedBase, cluster, hosts, peer.name);
    const socket = isRecord(dhcp4["control-socket"]) && typeof dhcp4["control-socket"]["socket-name"] === "string"
      ? dhcp4["control-socket"]["socket-name"]
      : KEA_DHCP4_CONTROL_SOCKET;
    const common = { host: peer.host, mode: KEA_CONFIG_FILE_MODE, ownership: "owned", owner } as const;
    files.push({ ...common, path: spec.configPath, content: stableStringify({ Dhcp4: dhcp4 }), service: KEA_DHCP4_UNIT, check: { kind: "kea-dhcp4" } });
    files.push({
      ...common,
      path: spec.controlAgentConfigPath,
      content: stableStringify(controlAgentConfig(url, socket)),
      service: KEA_CTRL_AGENT_UNIT,
      check: { kind: "kea-ctrl-agent" },
    });
  });
  return files;
}
