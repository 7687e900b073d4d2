// kea-dhcp4.conf of running Kea HA peers (Micetro's hook section, seed 001: libdhcp_ha.so with one
// high-availability relationship, each peer its own this-server-name) → a KeaHACluster. The
// relationship is matched across hosts by its peer names; each host is the peer it names itself.
import { isRecord } from "../daemons/kea/config-text.js";
import { HA_LIBRARY, hookLibraryName, KeaConfigSyntaxError, parseKeaConfigText, stableStringify } from "../daemons/kea/index.js";
import { API_VERSION, type DaemonImport, type ImportHost, type ManifestObject, msToDuration, rfc1123Name, type Unrepresentable } from "./types.js";

export const KEA_DHCP4_CONF = "/etc/kea/kea-dhcp4.conf";
export const KEA_CTRL_AGENT_CONF = "/etc/kea/kea-ctrl-agent.conf";

const MS_FIELDS: [string, string][] = [
  ["heartbeat-delay", "heartbeatDelay"],
  ["max-response-delay", "maxResponseDelay"],
  ["max-ack-delay", "maxAckDelay"],
  ["sync-timeout", "syncTimeout"],
];
const PLAIN_FIELDS: [string, string][] = [
  ["max-unacked-clients", "maxUnackedClients"],
  ["sync-page-limit", "syncPageLimit"],
  ["send-lease-updates", "sendLeaseUpdates"],
  ["sync-leases", "syncLeases"],
  ["wait-backup-ack", "waitBackupAck"],
  ["delayed-updates-limit", "delayedUpdatesLimit"],
];
/** Control Agent keys the operator renders itself (controlAgentConfig); the rest are lost on the first apply. */
const AGENT_KEYS = new Set(["http-host", "http-port", "control-sockets", "loggers"]);

interface KeaPeerConfig {
  host: ImportHost;
  dhcp4: Record<string, unknown>;
  relationship: Record<string, unknown>;
  self: string;
}

/** The Dhcp4 with what differs per peer by design blanked: its own name, its interfaces. */
function sharedPart(dhcp4: Record<string, unknown>): string {
  const copy = structuredClone(dhcp4);
  if (isRecord(copy["interfaces-config"])) delete copy["interfaces-config"].interfaces;
  for (const h of Array.isArray(copy["hooks-libraries"]) ? copy["hooks-libraries"] : []) {
    if (!isRecord(h) || typeof h.library !== "string" || hookLibraryName(h.library) !== HA_LIBRARY || !isRecord(h.parameters)) continue;
    for (const r of Array.isArray(h.parameters["high-availability"]) ? h.parameters["high-availability"] : []) if (isRecord(r)) delete r["this-server-name"];
  }
  return stableStringify(copy);
}

function readPeer(host: ImportHost, lost: Unrepresentable[]): KeaPeerConfig | undefined {
  const text = host.files.get(KEA_DHCP4_CONF);
  if (text === undefined) return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = parseKeaConfigText(text, `${host.name}:${KEA_DHCP4_CONF}`);
  } catch (err) {
    if (!(err instanceof KeaConfigSyntaxError)) throw err;
    lost.push({ host: host.name, file: KEA_DHCP4_CONF, what: "the whole file", why: `not JSON Kea reads: ${err.message}` });
    return undefined;
  }
  const dhcp4 = parsed.Dhcp4;
  if (!isRecord(dhcp4)) return undefined;
  const hooks = Array.isArray(dhcp4["hooks-libraries"]) ? dhcp4["hooks-libraries"] : [];
  const ha = hooks.find((h) => isRecord(h) && typeof h.library === "string" && hookLibraryName(h.library) === HA_LIBRARY);
  if (!isRecord(ha) || !isRecord(ha.parameters)) return undefined;
  const relationships = Array.isArray(ha.parameters["high-availability"]) ? ha.parameters["high-availability"].filter(isRecord) : [];
  relationships.slice(1).forEach((r, i) => {
    lost.push({ host: host.name, file: KEA_DHCP4_CONF, path: `Dhcp4.hooks-libraries[${HA_LIBRARY}].parameters.high-availability[${i + 1}]`, what: `relationship of ${String(r["this-server-name"])}`, why: "a KeaHACluster is one relationship (Kea 2.2 has no hub-and-spoke); the first apply drops the others" });
  });
  const relationship = relationships[0];
  if (!relationship || typeof relationship["this-server-name"] !== "string") return undefined;
  return { host, dhcp4, relationship, self: relationship["this-server-name"] };
}

/** KeaHACluster resources from the given hosts' kea-dhcp4 configs. */
export function importKea(hosts: readonly ImportHost[], namespace: string): DaemonImport {
  const lost: Unrepresentable[] = [];
  const notes: string[] = [];
  const manifests: ManifestObject[] = [];
  const peers = hosts.map((h) => readPeer(h, lost)).filter((p): p is KeaPeerConfig => p !== undefined);
  const peerList = (p: KeaPeerConfig) => (Array.isArray(p.relationship.peers) ? p.relationship.peers.filter(isRecord) : []);
  const groups = new Map<string, KeaPeerConfig[]>();
  for (const p of peers) {
    const key = peerList(p).map((x) => String(x.name)).sort().join(",");
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  for (const group of groups.values()) {
    const primaryName = peerList(group[0]!).find((x) => x.role === "primary")?.name;
    const source = group.find((p) => p.self === primaryName) ?? group[0]!;
    const rel = source.relationship;
    const where = (p: KeaPeerConfig) => ({ host: p.host.name, file: KEA_DHCP4_CONF, path: `Dhcp4.hooks-libraries[${HA_LIBRARY}].parameters.high-availability[0]` });
    const specPeers: Record<string, unknown>[] = [];
    for (const peer of peerList(source)) {
      const on = group.find((p) => p.self === peer.name);
      if (!on) {
        lost.push({ ...where(source), what: `peer ${String(peer.name)} (${String(peer.url)})`, why: "no --host names itself this peer: a KeaHACluster peer needs its DDIHost. Pass its --host to keep it; the first apply drops it from every peer's relationship" });
        continue;
      }
      const interfaces = isRecord(on.dhcp4["interfaces-config"]) && Array.isArray(on.dhcp4["interfaces-config"].interfaces) ? on.dhcp4["interfaces-config"].interfaces : [];
      if (interfaces.length > 1) lost.push({ ...where(on), path: "Dhcp4.interfaces-config.interfaces", what: JSON.stringify(interfaces), why: "a KeaHACluster peer has one interface: the first apply keeps the first" });
      const iface = typeof interfaces[0] === "string" && interfaces[0] !== "*" ? interfaces[0] : undefined;
      const defaultUrl = `http://${on.host.address}:8000/`;
      specPeers.push({
        name: peer.name,
        host: on.host.name,
        role: peer.role,
        ...(peer.url !== defaultUrl ? { url: peer.url } : {}),
        ...(peer["auto-failover"] === false ? { autoFailover: false } : {}),
        ...(iface ? { interface: iface.split("/")[0] } : {}),
      });
    }
    if (specPeers.length < 2) {
      lost.push({ ...where(source), what: `relationship of ${source.self}`, why: "fewer than two of its peers are on the given --host's: a KeaHACluster needs at least two; pass the partners' --host too" });
      continue;
    }
    for (const p of group) {
      if (p === source) continue;
      for (const [key] of [...MS_FIELDS, ...PLAIN_FIELDS, ["mode"]] as [string][]) {
        if (stableStringify(p.relationship[key]) !== stableStringify(rel[key])) {
          lost.push({ ...where(p), what: `${key} ${JSON.stringify(p.relationship[key])} (the primary has ${JSON.stringify(rel[key])})`, why: "a KeaHACluster has one value for every peer: the first apply gives this peer the primary's" });
        }
      }
    }
    const shared = group.every((p) => sharedPart(p.dhcp4) === sharedPart(source.dhcp4));
    if (!shared) notes.push(`Kea relationship of ${group.map((p) => p.self).join(", ")}: the peers' Dhcp4 configs differ beyond this-server-name and interfaces, so it is imported as configSync: HAOnly (each peer keeps its own Dhcp4; only the HA hook section is managed)`);
    const spec: Record<string, unknown> = { mode: rel.mode, peers: specPeers, configSync: shared ? "PrimaryIsSourceOfTruth" : "HAOnly" };
    for (const [key, field] of MS_FIELDS) if (typeof rel[key] === "number") spec[field] = msToDuration(rel[key]);
    for (const [key, field] of PLAIN_FIELDS) if (rel[key] !== undefined) spec[field] = rel[key];
    const name = rfc1123Name(`kea-${String(source.self)}`, "kea-ha");
    manifests.push({ apiVersion: API_VERSION, kind: "KeaHACluster", metadata: { name, namespace }, spec });
    for (const p of group) agentLosses(p.host, lost);
  }
  return { manifests, unrepresentable: lost, notes };
}

/** The Control Agent settings the operator does not render (it writes the agent's whole file). */
function agentLosses(host: ImportHost, lost: Unrepresentable[]): void {
  const text = host.files.get(KEA_CTRL_AGENT_CONF);
  if (text === undefined) return;
  let agent: unknown;
  try {
    agent = parseKeaConfigText(text, `${host.name}:${KEA_CTRL_AGENT_CONF}`)["Control-agent"];
  } catch {
    lost.push({ host: host.name, file: KEA_CTRL_AGENT_CONF, what: "the whole file", why: "not JSON Kea reads; the operator rewrites it" });
    return;
  }
  if (!isRecord(agent)) return;
  for (const key of Object.keys(agent)) {
    if (!AGENT_KEYS.has(key)) lost.push({ host: host.name, file: KEA_CTRL_AGENT_CONF, path: `Control-agent.${key}`, what: key, why: "the operator writes the Control Agent's whole file (http-host/port from the peer URL, the control sockets, loggers to stdout); the first apply drops it" });
  }
}
