import { z } from "zod";
import {
  type KindDefinition,
  IPV4_RE,
  ageColumn,
  commonStatusFields,
  configPathUnder,
  configIdentifier,
  duration,
  durationToMs,
  interfaceName,
  objectName,
  readyColumn,
  reasonColumn,
  withCrossFieldRules,
  withFieldRule,
  driftPolicy,
  hostOwnAddressRule,
} from "./common.js";
import { isCelIP } from "../net/ip.js";

export const KEA_MODES = ["load-balancing", "hot-standby", "passive-backup"] as const;
export type KeaMode = (typeof KEA_MODES)[number];
export const KEA_ROLES = ["primary", "secondary", "standby", "backup"] as const;
export type KeaRole = (typeof KEA_ROLES)[number];

const PORT_RE = "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
/**
 * Kea 2.2 refuses a hostname here at HA configuration time; `kea-dhcp4 -t` does not notice.
 * Plain http only: the operator renders a Control Agent without TLS. The bracket content is
 * checked to be an IPv6 literal by the field's rule.
 */
export const KEA_PEER_URL_RE = new RegExp(`^http://(${IPV4_RE}|\\[[0-9a-fA-F:]+\\]):${PORT_RE}/?$`);

const peerSchema = z.strictObject({
  name: configIdentifier().describe("The peer's name in the HA configuration; this peer's own this-server-name."),
  host: objectName().describe("Name of the DDIHost in the same namespace running this peer's kea-dhcp4."),
  role: z.enum(KEA_ROLES).describe("primary, secondary (load-balancing), standby (hot-standby) or backup."),
  url: withFieldRule(
    z
      .string()
      .max(64)
      .regex(KEA_PEER_URL_RE, "must be http://<IP literal>:<port>/ with an IP literal (IPv6 in brackets) and a port 1-65535; Kea 2.2 does not resolve host names, and the Control Agent is rendered without TLS"),
    KEA_PEER_URL_RE,
    [
      {
        cel: "!self.contains('[') || isIP(self.substring(self.indexOf('[') + 1, self.indexOf(']')))",
        message: "spec.peers[].url must have an IPv6 address in its brackets, such as http://[fd00::10]:8000/",
        holds: (url) => !url.includes("[") || isCelIP(url.slice(url.indexOf("[") + 1, url.indexOf("]"))),
      },
      // The peers reach each other at this address: it must be the peer host's own.
      hostOwnAddressRule(
        "spec.peers[].url",
        "(self.contains('[') ? self.substring(self.indexOf('[') + 1, self.indexOf(']')) : self.substring(7, self.lastIndexOf(':')))",
        (url) => (url.includes("[") ? url.slice(url.indexOf("[") + 1, url.indexOf("]")) : url.slice(7, url.lastIndexOf(":"))),
      ),
    ],
  )
    .optional()
    .describe("The peer's Control Agent URL with an IP literal. Defaults to http://<DDIHost address>:8000/."),
  autoFailover: z.boolean().default(true).describe("Whether this peer's partners move to partner-down on their own when it fails."),
  interface: interfaceName().optional().describe("Interface kea-dhcp4 listens on for DHCP on this peer (interfaces-config). Defaults to all."),
});
export type KeaPeerSpec = z.output<typeof peerSchema>;

const roleCount = (peers: KeaPeerSpec[], role: KeaRole) => peers.filter((p) => p.role === role).length;

/** Role rules per mode, from the Kea ARM "hooks-ha" chapter. */
export function rolesFitMode(mode: KeaMode, peers: KeaPeerSpec[]): boolean {
  const onlyRoles = (allowed: KeaRole[]) => peers.every((p) => allowed.includes(p.role));
  switch (mode) {
    case "load-balancing":
      return roleCount(peers, "primary") === 1 && roleCount(peers, "secondary") === 1 && onlyRoles(["primary", "secondary", "backup"]);
    case "hot-standby":
      return roleCount(peers, "primary") === 1 && roleCount(peers, "standby") === 1 && onlyRoles(["primary", "standby", "backup"]);
    case "passive-backup":
      return roleCount(peers, "primary") === 1 && onlyRoles(["primary", "backup"]);
  }
}

const UINT16_MS = 65_535;

/** Any JSON object, kept as written (the API server prunes nothing inside it). */
const anyObject = () => z.object({}).meta({ "x-kubernetes-preserve-unknown-fields": true });

/**
 * The first key (at any depth) that Kea 2.2 would write back unescaped into broken or different
 * JSON: its MapElement::toJSON quotes keys without escaping them (values are escaped). Measured:
 * config-get of a key `"}, "hooks-libraries": [...], "y": {"` returns that text raw.
 */
export function unsafeKeaKey(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = unsafeKeaKey(v);
      if (found !== undefined) return found;
    }
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      // eslint-disable-next-line no-control-regex
      if (/["\\\u0000-\u001f\u007f]/.test(k)) return k;
      const found = unsafeKeaKey(v);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Dhcp4 keys the operator owns; a spec that set them could load arbitrary code as root. */
export const OPERATOR_MANAGED_DHCP4_KEYS = ["hooks-libraries", "control-socket", "interfaces-config"] as const;

export const keaHAClusterSpecSchema = withCrossFieldRules(
  z
    .strictObject({
      mode: z.enum(KEA_MODES).describe("HA mode: load-balancing, hot-standby or passive-backup."),
      peers: z
        .array(peerSchema)
        .min(2)
        .max(16)
        .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
        .describe("The Kea servers in the relationship; each gets its own this-server-name."),
      heartbeatDelay: duration().default("10s").describe("heartbeat-delay: interval between heartbeats (at most 65535ms)."),
      maxResponseDelay: duration()
        .default("60s")
        .describe("max-response-delay: silence after which the partner is considered unreachable; must exceed heartbeatDelay, ideally by several heartbeats."),
      maxAckDelay: duration().default("10s").describe("max-ack-delay: how long a client may wait unanswered before it counts as unacked."),
      maxUnackedClients: z.number().int().min(0).max(65535).default(10).describe("max-unacked-clients: unacked clients before partner-down; 0 means at once."),
      syncTimeout: duration().default("60s").describe("sync-timeout: timeout of the lease database synchronization."),
      syncPageLimit: z.number().int().min(1).max(1_000_000).default(10000).describe("sync-page-limit: leases fetched per page during synchronization."),
      sendLeaseUpdates: z.boolean().default(true).describe("send-lease-updates: send lease updates to the partner."),
      syncLeases: z.boolean().default(true).describe("sync-leases: synchronize the lease database on startup."),
      waitBackupAck: z.boolean().optional().describe("wait-backup-ack: passive-backup only; wait for backups before answering clients."),
      delayedUpdatesLimit: z.number().int().min(0).max(65535).optional().describe("delayed-updates-limit: load-balancing only."),
      preferredPrimary: configIdentifier()
        .optional()
        .describe(
          "Planned switchover (mode hot-standby only): the name of the peer that should serve as primary. Naming the standby peer swaps the roles of the primary and standby peers on the hosts: the operator first hands every client to that peer (ha-maintenance-start), then applies the swapped configs, the old primary first, and reports it in the Switchover condition with the seconds it took. Remove the field (or name the primary) to switch back the same way (ADR 0033).",
        ),
      configSync: z
        .enum(["PrimaryIsSourceOfTruth", "HAOnly"])
        .default("PrimaryIsSourceOfTruth")
        .describe("PrimaryIsSourceOfTruth: the primary's DHCP config is copied to the other peers with their own this-server-name. HAOnly: only the HA hook section is managed."),
      configPath: configPathUnder(["/etc/kea"], "/etc/kea/kea-dhcp4.conf").describe("kea-dhcp4 config file on every peer, under /etc/kea/."),
      driftPolicy: driftPolicy(),
      controlAgentConfigPath: configPathUnder(["/etc/kea"], "/etc/kea/kea-ctrl-agent.conf").describe("kea-ctrl-agent config file on every peer, under /etc/kea/."),
      deletionPolicy: z
        .enum(["Remove", "Retain"])
        .default("Remove")
        .describe(
          "What deleting the resource does to the peers. Remove: take the HA hook out of every peer's kea-dhcp4 config and bind the Control Agent to 127.0.0.1 again; the primary keeps serving standalone, the other peers' kea-dhcp4 is stopped and disabled (ADR 0028). Retain: leave files and daemons as they are.",
        ),
      dhcp4: withCrossFieldRules(
        z.looseObject({
          // Declared only so that CEL can see them (and refuse them); typed loosely on purpose.
          "hooks-libraries": z.array(anyObject()).optional().describe("Managed by the operator; must not be set here."),
          "control-socket": anyObject().optional().describe("Managed by the operator; must not be set here."),
          "interfaces-config": anyObject().optional().describe("Managed by the operator (spec.peers[].interface); must not be set here."),
        }),
        [
          {
            // CEL names a property with dashes as __dash__.
            cel: "!has(self.hooks__dash__libraries) && !has(self.control__dash__socket) && !has(self.interfaces__dash__config)",
            message:
              "spec.dhcp4 must not set hooks-libraries, control-socket or interfaces-config: the operator manages them (use spec.peers[].interface for the listening interface)",
            holds: (d) => !OPERATOR_MANAGED_DHCP4_KEYS.some((k) => d[k] !== undefined),
          },
          {
            // No CEL: it cannot walk JSON of any depth. The operator refuses it (Stalled), before any host.
            message:
              "spec.dhcp4 must not have a key (at any depth) containing '\"', '\\' or a control character: Kea writes keys back unescaped (config-get, config-write), so such a key would change the structure of the config Kea reports and saves; rename the key",
            holds: (d) => unsafeKeaKey(d) === undefined,
          },
        ],
      )
        .meta({ "x-kubernetes-preserve-unknown-fields": true })
        .optional()
        .describe(
          "Optional Dhcp4 settings (subnet4, option-data, valid-lifetime…) applied to every peer. hooks-libraries, control-socket and interfaces-config are managed by the operator.",
        ),
    })
    .describe("A Kea DHCPv4 High Availability relationship (libdhcp_ha.so with libdhcp_lease_cmds.so)."),
  [
    {
      cel: "self.mode != 'load-balancing' || (self.peers.filter(p, p.role == 'primary').size() == 1 && self.peers.filter(p, p.role == 'secondary').size() == 1 && self.peers.all(p, p.role in ['primary', 'secondary', 'backup']))",
      message: "spec.peers roles do not fit mode load-balancing: use exactly one primary and one secondary; any others must be backup",
      fieldPath: ".peers",
      holds: (s) => s.mode !== "load-balancing" || rolesFitMode(s.mode, s.peers),
    },
    {
      cel: "self.mode != 'hot-standby' || (self.peers.filter(p, p.role == 'primary').size() == 1 && self.peers.filter(p, p.role == 'standby').size() == 1 && self.peers.all(p, p.role in ['primary', 'standby', 'backup']))",
      message: "spec.peers roles do not fit mode hot-standby: use exactly one primary and one standby (not secondary); any others must be backup",
      fieldPath: ".peers",
      holds: (s) => s.mode !== "hot-standby" || rolesFitMode(s.mode, s.peers),
    },
    {
      cel: "!has(self.preferredPrimary) || self.mode == 'hot-standby'",
      message: "spec.preferredPrimary is allowed only in mode hot-standby (a planned switchover swaps the primary and standby roles); remove it",
      fieldPath: ".preferredPrimary",
      holds: (s) => s.preferredPrimary === undefined || s.mode === "hot-standby",
    },
    {
      cel: "!has(self.preferredPrimary) || self.peers.exists(p, p.name == self.preferredPrimary && p.role in ['primary', 'standby'])",
      message: "spec.preferredPrimary must name the primary or the standby peer in spec.peers (a backup peer never serves clients): use one of those peers' names",
      fieldPath: ".preferredPrimary",
      holds: (s) => s.preferredPrimary === undefined || s.peers.some((p) => p.name === s.preferredPrimary && (p.role === "primary" || p.role === "standby")),
    },
    {
      cel: "self.mode != 'passive-backup' || (self.peers.filter(p, p.role == 'primary').size() == 1 && self.peers.all(p, p.role in ['primary', 'backup']))",
      message: "spec.peers roles do not fit mode passive-backup: use exactly one primary; all others must be backup",
      fieldPath: ".peers",
      holds: (s) => s.mode !== "passive-backup" || rolesFitMode(s.mode, s.peers),
    },
    {
      // The list-map key refuses this at admission too; `ddi-ha validate` needs the rule itself.
      cel: "self.peers.all(p, self.peers.filter(q, q.name == p.name).size() == 1)",
      message: "spec.peers[].name must be unique: two peers have the same name (each is its server's this-server-name); rename one",
      fieldPath: ".peers",
      holds: (s) => new Set(s.peers.map((p) => p.name)).size === s.peers.length,
    },
    {
      cel: "self.configPath != self.controlAgentConfigPath",
      message: "spec.controlAgentConfigPath must differ from spec.configPath: kea-dhcp4 and kea-ctrl-agent each need their own file (defaults /etc/kea/kea-dhcp4.conf and /etc/kea/kea-ctrl-agent.conf)",
      fieldPath: ".controlAgentConfigPath",
      holds: (s) => s.configPath !== s.controlAgentConfigPath,
    },
    {
      cel: "self.peers.all(p, self.peers.filter(q, q.host == p.host).size() == 1)",
      message: "spec.peers must each use a different host: the same DDIHost appears twice in one relationship",
      fieldPath: ".peers",
      holds: (s) => new Set(s.peers.map((p) => p.host)).size === s.peers.length,
    },
    {
      cel: "duration(self.heartbeatDelay) >= duration('100ms')",
      message: "spec.heartbeatDelay must be at least 100ms",
      fieldPath: ".heartbeatDelay",
      holds: (s) => durationToMs(s.heartbeatDelay) >= 100,
    },
    {
      cel: "duration(self.maxResponseDelay) > duration(self.heartbeatDelay)",
      message: "spec.maxResponseDelay must be greater than spec.heartbeatDelay (several heartbeats, e.g. heartbeatDelay 10s and maxResponseDelay 60s)",
      fieldPath: ".maxResponseDelay",
      holds: (s) => durationToMs(s.maxResponseDelay) > durationToMs(s.heartbeatDelay),
    },
    ...(["heartbeatDelay", "maxResponseDelay", "maxAckDelay"] as const).map((field) => ({
      cel: `duration(self.${field}) <= duration('${UINT16_MS}ms')`,
      message: `spec.${field} must be at most 65535ms: Kea stores it as a uint16 of milliseconds`,
      fieldPath: `.${field}`,
      holds: (s: { [k in typeof field]: string }) => durationToMs(s[field]) <= UINT16_MS,
    })),
    {
      cel: "!has(self.waitBackupAck) || self.mode == 'passive-backup'",
      message: "spec.waitBackupAck is allowed only in mode passive-backup; remove it",
      fieldPath: ".waitBackupAck",
      holds: (s) => s.waitBackupAck === undefined || s.mode === "passive-backup",
    },
    {
      cel: "!has(self.delayedUpdatesLimit) || self.mode == 'load-balancing'",
      message: "spec.delayedUpdatesLimit is allowed only in mode load-balancing; remove it",
      fieldPath: ".delayedUpdatesLimit",
      holds: (s) => s.delayedUpdatesLimit === undefined || s.mode === "load-balancing",
    },
    {
      cel: "self.peers.filter(p, has(p.url) && p.url.contains('://[')).size() == 0 || self.peers.all(p, has(p.url) && p.url.contains('://['))",
      message: "spec.peers[].url must all be of one address family: give every peer an IPv6 URL, or none",
      fieldPath: ".peers",
      holds: (s) => {
        const v6 = s.peers.filter((p) => p.url?.includes("://[")).length;
        return v6 === 0 || v6 === s.peers.length;
      },
    },
  ],
);
export type KeaHAClusterSpec = z.output<typeof keaHAClusterSpecSchema>;

export const KEA_STATES = [
  "waiting",
  "syncing",
  "ready",
  "load-balancing",
  "hot-standby",
  "communication-recovery",
  "partner-down",
  "partner-in-maintenance",
  "in-maintenance",
  "passive-backup",
  "backup",
  "terminated",
  "unavailable",
  "unknown",
] as const;

export const keaHAClusterStatusSchema = z
  .strictObject({
    ...commonStatusFields,
    health: z.enum(["OK", "Impaired", "Down"]).optional().describe("OK: all peers serving; Impaired: a peer unreachable or not serving; Down: all down."),
    peers: z
      .array(
        z.strictObject({
          name: z.string().describe("Peer name."),
          host: z.string().describe("DDIHost name."),
          role: z.string().describe("Role."),
          state: z.string().describe("HA state reported by the peer (status-get)."),
          inTouch: z.boolean().optional().describe("Whether the peer is in touch with its partner."),
          unackedClients: z.number().int().optional().describe("Unacked clients the peer reports about its partner."),
          reachable: z.boolean().describe("Whether the operator reached the peer."),
        }),
      )
      .optional()
      .describe("Per-peer observed state."),
  })
  .describe("Observed state of the relationship.");
export type KeaHAClusterStatus = z.output<typeof keaHAClusterStatusSchema>;

export const keaHAClusterKind: KindDefinition = {
  kind: "KeaHACluster",
  plural: "keahaclusters",
  singular: "keahacluster",
  shortNames: ["kha"],
  description: "KeaHACluster is a Kea DHCPv4 High Availability relationship between DDIHosts.",
  spec: keaHAClusterSpecSchema,
  status: keaHAClusterStatusSchema,
  printerColumns: [
    { name: "Mode", type: "string", jsonPath: ".spec.mode", description: "HA mode." },
    { name: "Health", type: "string", jsonPath: ".status.health", description: "OK, Impaired or Down." },
    readyColumn,
    reasonColumn,
    ageColumn,
  ],
};
