import { z } from "zod";
import {
  type KindDefinition,
  configPathUnder,
  ageColumn,
  commonStatusFields,
  configIdentifier,
  duration,
  durationToMs,
  ipv4,
  ipv4Cidr,
  objectName,
  readyColumn,
  reasonColumn,
  secretRef,
  withCrossFieldRules,
  driftPolicy,
  hostIPv4,
} from "./common.js";
import { ipv4InCidr, ipv4ToNumber } from "../net/ipv4.js";

const failoverSide = (role: "primary" | "secondary", defaultPort: number) =>
  z
    .strictObject({
      host: objectName().describe("Name of the DDIHost in the same namespace."),
      address: hostIPv4(`spec.${role}.address`).describe(`The ${role}'s IPv4 address the failover protocol uses (the partner's peer address).`),
      port: z.number().int().min(1).max(65535).default(defaultPort).describe(`TCP port the ${role} listens on for failover; the partner's peer port.`),
    })
    .describe(`The ${role} dhcpd server.`);

const WHOLE_SECONDS_RE = /^([0-9]+(h|m|s))+$/;
const HBA_RE = /^([0-9a-f]{2}:){31}[0-9a-f]{2}$/;

const poolSchema = withCrossFieldRules(z.strictObject({
  range: z
    .array(ipv4())
    .length(2)
    .describe("First and last address of the pool, e.g. [192.168.200.100, 192.168.200.254]."),
  maxLeaseTime: duration().optional().describe("max-lease-time for the pool (whole seconds, minutes or hours)."),
}), [
  {
    cel: "!has(self.maxLeaseTime) || self.maxLeaseTime.matches('^([0-9]+(h|m|s))+$')",
    message: 'spec.subnets[].pools[].maxLeaseTime must be whole seconds, minutes or hours such as "1800s" or "30m" (dhcpd counts in seconds)',
    fieldPath: ".maxLeaseTime",
    holds: (p) => p.maxLeaseTime === undefined || WHOLE_SECONDS_RE.test(p.maxLeaseTime),
  },
]);

const subnetSchema = withCrossFieldRules(
  z.strictObject({
    subnet: ipv4Cidr().describe("The subnet in CIDR form, e.g. 192.168.200.0/24."),
    options: z
      .strictObject({
        routers: z.array(ipv4()).max(8).optional().describe("option routers."),
        domainNameServers: z.array(ipv4()).max(8).optional().describe("option domain-name-servers."),
        domainName: z
          .string()
          .max(253)
          .regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/, "must be a DNS domain name")
          .optional()
          .describe("option domain-name."),
        broadcastAddress: ipv4().optional().describe("option broadcast-address."),
      })
      .default({})
      .describe("DHCP options for the subnet."),
    pools: z.array(poolSchema).min(1).max(64).describe("Address pools served with failover; identical on both peers."),
  }),
  [
    {
      cel: "self.pools.all(p, cidr(self.subnet).containsIP(p.range[0]) && cidr(self.subnet).containsIP(p.range[1]))",
      message: "spec.subnets[].pools[].range must be two addresses inside spec.subnets[].subnet",
      fieldPath: ".pools",
      holds: (s) => s.pools.every((p) => ipv4InCidr(p.range[0]!, s.subnet) && ipv4InCidr(p.range[1]!, s.subnet)),
    },
    {
      // CEL has no ordering on IP addresses, so only `ddi-ha validate` and the operator check this.
      message: "spec.subnets[].pools[].range must list the first address before the last",
      fieldPath: ".pools",
      holds: (s) => s.pools.every((p) => ipv4ToNumber(p.range[0]!) <= ipv4ToNumber(p.range[1]!)),
    },
  ],
);

export const dhcpFailoverPeerSpecSchema = withCrossFieldRules(
  z
    .strictObject({
      peerName: configIdentifier().optional().describe("The failover peer's name in dhcpd.conf. Defaults to metadata.name."),
      primary: failoverSide("primary", 647),
      secondary: failoverSide("secondary", 647),
      maxResponseDelay: duration().default("60s").describe("max-response-delay (whole seconds), rendered on both sides."),
      maxUnackedUpdates: z.number().int().min(1).max(65535).default(10).describe("max-unacked-updates, rendered on both sides."),
      loadBalanceMaxSeconds: z
        .number()
        .int()
        .min(0)
        .max(255)
        .default(3)
        .describe("load balance max seconds, rendered on both sides (0 silently disables load balancing)."),
      mclt: duration().default("1h").describe("Maximum Client Lead Time (whole seconds), rendered on the primary only."),
      split: z.number().int().min(0).max(256).optional().describe("split 0-256 (primary only). Exactly one of split or hba."),
      hba: z
        .string()
        .regex(HBA_RE, "must be 32 colon-separated lower-case hex bytes")
        .optional()
        .describe("hba bitmap, 32 colon-separated hex bytes (primary only). Exactly one of split or hba."),
      omapi: z
        .strictObject({
          port: z.number().int().min(1).max(65535).default(7911).describe("omapi-port on both peers."),
          keySecretRef: secretRef("Secret holding the OMAPI HMAC-SHA256 key in `secret` (base64). Generated when unset.").optional(),
        })
        .default({ port: 7911 })
        .describe("OMAPI control channel, used by the operator to read failover state."),
      maintenancePartnerDown: z
        .boolean()
        .default(false)
        .describe(
          "While one side's DDIHost has spec.maintenance: true moves that side to shutdown through OMAPI, so that its partner goes to partner-down at once (or, when that side is already silent, sets the partner's local-state to partner-down). false (default): dhcpd is left alone, and the partner goes to communications-interrupted once dhcpd on the host in maintenance stops, serving only its own free leases. MCLT: in partner-down the partner may hand out the other side's free leases only after MCLT has passed, and leases it gives meanwhile are held for MCLT; when the maintenance ends the side returns through recover and recover-done (the operator moves it to recover; dhcpd skips recover-wait for a server shut down on purpose) before both are normal again.",
        ),
      subnets: z.array(subnetSchema).min(1).max(256).describe("Subnets and pools served with failover, rendered identically on both peers."),
      configPath: configPathUnder(["/etc/dhcp", "/etc/dhcpd"], "/etc/dhcp/dhcpd.conf").describe(
        "Main dhcpd config, under /etc/dhcp/ or /etc/dhcpd/; the operator adds one marked include line to it.",
      ),
      driftPolicy: driftPolicy(),
      deletionPolicy: z
        .enum(["Remove", "Retain"])
        .default("Remove")
        .describe(
          "What deleting the resource does to both hosts. Remove: delete the include file and its line from dhcpd.conf; a dhcpd left with no subnet declaration is stopped and disabled (ADR 0028). Retain: leave files and dhcpd as they are.",
        ),
    })
    .describe("An ISC dhcpd failover relationship between two DDIHosts."),
  [
    {
      cel: "self.primary.host != self.secondary.host",
      message: "spec.secondary.host must differ from spec.primary.host: failover needs two different DDIHosts",
      fieldPath: ".secondary.host",
      holds: (s) => s.primary.host !== s.secondary.host,
    },
    {
      cel: "self.primary.address != self.secondary.address",
      message: "spec.secondary.address must differ from spec.primary.address",
      fieldPath: ".secondary.address",
      holds: (s) => s.primary.address !== s.secondary.address,
    },
    {
      cel: "self.omapi.port != self.primary.port && self.omapi.port != self.secondary.port",
      message: "spec.omapi.port must differ from the failover ports spec.primary.port and spec.secondary.port",
      fieldPath: ".omapi.port",
      holds: (s) => s.omapi.port !== s.primary.port && s.omapi.port !== s.secondary.port,
    },
    {
      cel: "self.subnets.all(s, self.subnets.filter(t, t.subnet == s.subnet).size() == 1)",
      message: "spec.subnets must not list the same subnet twice: merge their pools into one entry",
      fieldPath: ".subnets",
      holds: (s) => new Set(s.subnets.map((n) => n.subnet)).size === s.subnets.length,
    },
    {
      cel: "has(self.split) != has(self.hba)",
      message: "set exactly one of spec.split or spec.hba: dhcpd forbids both, and the primary needs one (split: 128 shares clients evenly)",
      fieldPath: ".split",
      holds: (s) => (s.split === undefined) !== (s.hba === undefined),
    },
    ...(["maxResponseDelay", "mclt"] as const).map((field) => ({
      cel: `self.${field}.matches('^([0-9]+(h|m|s))+$') && duration(self.${field}) >= duration('1s')`,
      message: `spec.${field} must be whole seconds, minutes or hours such as "30s" or "1h", at least 1s (dhcpd counts in seconds)`,
      fieldPath: `.${field}`,
      holds: (s: { [k in typeof field]: string }) => WHOLE_SECONDS_RE.test(s[field]) && durationToMs(s[field]) >= 1000,
    })),
  ],
);
export type DhcpFailoverPeerSpec = z.output<typeof dhcpFailoverPeerSpecSchema>;
export type DhcpSubnetSpec = DhcpFailoverPeerSpec["subnets"][number];

export const FAILOVER_STATES = [
  "startup",
  "normal",
  "communications-interrupted",
  "partner-down",
  "potential-conflict",
  "recover",
  "paused",
  "shutdown",
  "recover-done",
  "resolution-interrupted",
  "conflict-done",
  "recover-wait",
  "unknown",
] as const;

export const dhcpFailoverPeerStatusSchema = z
  .strictObject({
    ...commonStatusFields,
    primaryState: z.string().optional().describe("The primary's own failover state."),
    secondaryState: z.string().optional().describe("The secondary's own failover state."),
    pools: z
      .array(
        z.strictObject({
          subnet: z.string().describe("Subnet."),
          total: z.number().int().describe("Addresses in the pool."),
          free: z.number().int().describe("Free addresses owned by the primary."),
          backup: z.number().int().describe("Free addresses owned by the secondary."),
        }),
      )
      .optional()
      .describe("Pool balance."),
  })
  .describe("Observed state of the failover relationship.");
export type DhcpFailoverPeerStatus = z.output<typeof dhcpFailoverPeerStatusSchema>;

export const dhcpFailoverPeerKind: KindDefinition = {
  kind: "DhcpFailoverPeer",
  plural: "dhcpfailoverpeers",
  singular: "dhcpfailoverpeer",
  shortNames: ["dfp"],
  description: "DhcpFailoverPeer is an ISC dhcpd failover relationship between two DDIHosts.",
  spec: dhcpFailoverPeerSpecSchema,
  status: dhcpFailoverPeerStatusSchema,
  printerColumns: [
    { name: "Primary", type: "string", jsonPath: ".status.primaryState", description: "Primary's failover state." },
    { name: "Secondary", type: "string", jsonPath: ".status.secondaryState", description: "Secondary's failover state." },
    readyColumn,
    reasonColumn,
    ageColumn,
  ],
};
