import { isIPv4 } from "node:net";
import { z } from "zod";
import {
  type KindDefinition,
  ageColumn,
  commonStatusFields,
  configPathUnder,
  duration,
  durationToMs,
  interfaceName,
  ipAddress,
  ipv4Cidr,
  ipv6Cidr,
  objectName,
  readyColumn,
  reasonColumn,
  withCrossFieldRules,
  driftPolicy,
  IPV4_CIDR_RE,
  IPV6_CIDR_RE,
  withFieldRule,
} from "./common.js";
import { cidrFamily, ipv4NetworkOrBroadcast, isCelIP, isGlobalUnicastIP } from "../net/ip.js";

const haNode = (role: "primary" | "secondary", defaultPriority: number) =>
  z
    .strictObject({
      host: objectName().describe("Name of the DDIHost in the same namespace."),
      interface: interfaceName().describe("Interface that carries the VIP, e.g. enp1s0 or br0."),
      configPath: configPathUnder(["/etc/keepalived"], "/etc/keepalived/keepalived.conf").describe(
        "Main keepalived config file on this host, under /etc/keepalived/. The operator owns its instances in a directory beside it.",
      ),
      priority: z
        .number()
        .int()
        .min(1)
        .max(254)
        .default(defaultPriority)
        .describe("VRRP priority 1-254 (255 is reserved for the address owner). Keep about 50 between the nodes."),
      address: ipAddress(`spec.${role}.address`)
        .optional()
        .describe("This node's own address on the interface, used as unicast_src_ip in unicast mode. Defaults to the DDIHost address when that is an IP."),
    })
    .describe(`The ${role} node: the one that ${role === "primary" ? "holds the VIP under normal conditions" : "takes over the VIP when the primary fails"}.`);

/**
 * A duration with no part of a millisecond (seconds with at most three decimals), so that CEL's
 * getMilliseconds() (which truncates) and durationToMs() (which rounds) agree.
 */
const WHOLE_MS_DURATION_RE = /^([0-9]+(ms|m|h)|[0-9]+(\.[0-9]{1,3})?s)+$/;

/** CEL: the advertisement interval in milliseconds (getMilliseconds() is the whole duration's). */
const ADVERT_MS = "duration(self.advertInterval).getMilliseconds()";

export const haPairSpecSchema = withCrossFieldRules(
  z
    .strictObject({
      primary: haNode("primary", 150),
      secondary: haNode("secondary", 100),
      virtualIP: withFieldRule(ipv4Cidr(), IPV4_CIDR_RE, [
        {
          // keepalived would add it, and no host could answer on it: refused before any host sees it.
          cel: "!isCIDR(self) || cidr(self).ip().isGlobalUnicast()",
          message:
            "spec.virtualIP must be an address hosts can use: not unspecified, loopback (127.0.0.0/8), multicast (224.0.0.0/4), link-local (169.254.0.0/16) or 255.255.255.255; pick a free address in the hosts' subnet",
          holds: (v) => cidrFamily(v) !== 4 || isGlobalUnicastIP(v.split("/")[0]!),
        },
      ])
        // The network and broadcast addresses of its own prefix are the operator's rules (refused
        // in status): CEL has no broadcast address of a CIDR, and the API server prices
        // cidr().masked() far over the CRD's cost budget.
        .refine(
          (v) => cidrFamily(v) !== 4 || ipv4NetworkOrBroadcast(v) !== "network",
          "spec.virtualIP is the network address of its own prefix (e.g. 10.71.17.0/24): no host can answer on it; pick a free address inside the subnet, such as .86/24",
        )
        .refine(
          (v) => cidrFamily(v) !== 4 || ipv4NetworkOrBroadcast(v) !== "broadcast",
          "spec.virtualIP is the broadcast address of its own prefix (e.g. 10.71.17.255/24): no host can answer on it; pick a free address inside the subnet",
        )
        .describe('The IPv4 virtual IP in CIDR form, e.g. "10.71.17.86/24", in the subnet of both hosts\' interfaces.'),
      virtualIPv6: withFieldRule(ipv6Cidr(), IPV6_CIDR_RE, {
        cel: "!isCIDR(self) || cidr(self).ip().family() != 6 || cidr(self).ip().isGlobalUnicast()",
        message: "spec.virtualIPv6 must be an address hosts can use: not ::, ::1, multicast (ff00::/8) or link-local (fe80::/10); pick a free address in the hosts' prefix, such as fd00::86/64",
        holds: (v) => cidrFamily(v) !== 6 || isGlobalUnicastIP(v.split("/")[0]!),
      })
        .optional()
        .describe("Optional IPv6 virtual IP in CIDR form, served by its own VRRPv3 instance."),
      virtualRouterID: z
        .number()
        .int()
        .min(1)
        .max(255)
        .describe("VRRP virtual router ID 1-255, unique among the HAPairs whose VIPs share a subnet."),
      instanceName: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/, "must be letters, digits, '_', '.' or '-', not starting with '.'")
        .optional()
        .describe(
          "The keepalived vrrp_instance name of the IPv4 VIP (the IPv6 one gets _v6 appended). Default ddiha_<namespace>_<name>_v4. Set by `ddi-ha import` to a running instance's name: keepalived keeps the state of an instance whose name survives a reload, so adoption does not drop the VIP.",
        ),
      services: z
        .strictObject({
          dns: z.boolean().default(false).describe("Track the DNS server (named): the VIP leaves a node whose DNS server is down."),
          dhcp: z
            .enum(["None", "DHCPv4", "DHCPv6", "Both"])
            .default("None")
            .describe("Which DHCP servers are tracked for this VIP."),
          dhcpv4ClientMode: z
            .enum(["Unicast", "Multicast", "Broadcast"])
            .default("Unicast")
            .describe("How DHCPv4 clients reach the servers. Broadcast is refused: use a DhcpFailoverPeer instead."),
          dhcpv4Server: z
            .enum(["isc-dhcp-server", "kea-dhcp4"])
            .default("isc-dhcp-server")
            .describe("Which DHCPv4 daemon is tracked when dhcp covers DHCPv4."),
          dhcpv6Server: z
            .enum(["isc-dhcp-server6", "kea-dhcp6"])
            .default("isc-dhcp-server6")
            .describe("Which DHCPv6 daemon is tracked when dhcp covers DHCPv6."),
        })
        .describe("The services made highly available by this VIP. Each enabled service must run on both hosts."),
      advertInterval: z
        .string()
        .max(32)
        .regex(WHOLE_MS_DURATION_RE, 'must be a duration in whole milliseconds such as "500ms", "1.5s" or "2s"')
        .default("1s")
        .describe("VRRP advertisement interval in whole milliseconds; a fraction of a second is sent as VRRPv3 (in units of 10ms, at most 40.95s, no authPass)."),
      preferredNode: z
        .enum(["primary", "secondary"])
        .default("primary")
        .describe(
          "The node that holds the VIP when both are healthy. Set secondary for a planned switchover (patching the primary, say): the two nodes' priorities swap and the secondary takes the VIP while the primary still holds it, so the VIP is never dropped. Needs preempt.",
        ),
      preempt: z.boolean().default(true).describe("Whether the primary takes the VIP back when it recovers."),
      preemptDelay: duration().optional().describe("With preempt, wait this long after startup before preempting."),
      unicast: z.boolean().default(false).describe("Send VRRP adverts by unicast to the peer instead of multicast."),
      authPass: z
        .string()
        .min(1)
        .max(8)
        .regex(/^[A-Za-z0-9_-]+$/, "must be 1-8 letters, digits, '_' or '-' (VRRPv2 truncates at 8)")
        .optional()
        .describe("Optional VRRPv2 PASS authentication (at most 8 characters; ignored by VRRPv3)."),
      driftPolicy: driftPolicy(),
      deletionPolicy: z
        .enum(["Remove", "Retain"])
        .default("Remove")
        .describe("Remove: delete this pair's keepalived instance from the hosts when the resource is deleted. Retain: leave it."),
    })
    .describe("A keepalived VRRP virtual IP shared by two DDIHosts for DNS/DHCP."),
  [
    {
      cel: "self.primary.host != self.secondary.host",
      message: "spec.secondary.host must differ from spec.primary.host: a pair needs two different DDIHosts",
      fieldPath: ".secondary.host",
      holds: (s) => s.primary.host !== s.secondary.host,
    },
    {
      cel: "!(self.services.dhcp in ['DHCPv4', 'Both'] && self.services.dhcpv4ClientMode == 'Broadcast')",
      message:
        "spec.services.dhcpv4ClientMode Broadcast cannot use a VIP: both servers hear the broadcast and leases conflict; use a DhcpFailoverPeer for DHCPv4, or set services.dhcp to None or DHCPv6",
      fieldPath: ".services.dhcpv4ClientMode",
      holds: (s) => !((s.services.dhcp === "DHCPv4" || s.services.dhcp === "Both") && s.services.dhcpv4ClientMode === "Broadcast"),
    },
    {
      cel: "self.primary.priority > self.secondary.priority",
      message: "spec.primary.priority must be greater than spec.secondary.priority: the primary holds the VIP normally (keep about 50 between them, e.g. 150 and 100)",
      fieldPath: ".secondary.priority",
      holds: (s) => s.primary.priority > s.secondary.priority,
    },
    {
      cel: "isCIDR(self.virtualIP) && cidr(self.virtualIP).ip().family() == 4",
      message: "spec.virtualIP must be an IPv4 address in CIDR form such as 10.71.17.86/24; put an IPv6 VIP in spec.virtualIPv6",
      fieldPath: ".virtualIP",
      holds: (s) => cidrFamily(s.virtualIP) === 4,
    },
    {
      cel: "!has(self.virtualIPv6) || (isCIDR(self.virtualIPv6) && cidr(self.virtualIPv6).ip().family() == 6)",
      message: "spec.virtualIPv6 must be an IPv6 address in CIDR form such as fd00::86/64; put an IPv4 VIP in spec.virtualIP",
      fieldPath: ".virtualIPv6",
      holds: (s) => s.virtualIPv6 === undefined || cidrFamily(s.virtualIPv6) === 6,
    },
    {
      cel: "!(self.unicast && has(self.virtualIPv6))",
      message: "spec.unicast cannot be combined with spec.virtualIPv6: each node has one unicast address per family; use multicast for a dual-stack pair",
      fieldPath: ".unicast",
      holds: (s) => !(s.unicast && s.virtualIPv6 !== undefined),
    },
    {
      cel: "!has(self.preemptDelay) || duration(self.preemptDelay) <= duration('1000s')",
      message: "spec.preemptDelay must be at most 1000s (keepalived's limit)",
      fieldPath: ".preemptDelay",
      holds: (s) => s.preemptDelay === undefined || durationToMs(s.preemptDelay) <= 1_000_000,
    },
    {
      cel: "!has(self.virtualIPv6) || duration(self.advertInterval) <= duration('40950ms')",
      message: "spec.advertInterval must be at most 40.95s with spec.virtualIPv6 (VRRPv3 counts in centiseconds)",
      fieldPath: ".advertInterval",
      holds: (s) => s.virtualIPv6 === undefined || durationToMs(s.advertInterval) <= 40_950,
    },
    {
      cel: "self.preferredNode == 'primary' || self.preempt",
      message: "spec.preferredNode: secondary needs spec.preempt: true: without preempt keepalived never hands the VIP to the node with the higher priority; set preempt: true or keep preferredNode: primary",
      fieldPath: ".preferredNode",
      holds: (s) => s.preferredNode === "primary" || s.preempt,
    },
    {
      cel: "!has(self.preemptDelay) || self.preempt",
      message: "spec.preemptDelay needs spec.preempt: true; remove preemptDelay or enable preempt",
      fieldPath: ".preemptDelay",
      holds: (s) => s.preemptDelay === undefined || s.preempt,
    },
    {
      cel: "duration(self.advertInterval) >= duration('10ms') && duration(self.advertInterval) <= duration('255s')",
      message: "spec.advertInterval must be between 10ms and 255s (VRRP's range)",
      fieldPath: ".advertInterval",
      holds: (s) => durationToMs(s.advertInterval) >= 10 && durationToMs(s.advertInterval) <= 255_000,
    },
    {
      cel: `${ADVERT_MS} % 10 == 0`,
      message: 'spec.advertInterval must be whole seconds or a multiple of 10ms such as "500ms": a fraction of a second needs VRRPv3, which counts in units of 10ms',
      fieldPath: ".advertInterval",
      holds: (s) => durationToMs(s.advertInterval) % 10 === 0,
    },
    {
      cel: `${ADVERT_MS} % 1000 == 0 || ${ADVERT_MS} <= 40950`,
      message: "spec.advertInterval must be at most 40.95s when it is not whole seconds (a fraction of a second needs VRRPv3, which counts in centiseconds): use whole seconds for longer intervals",
      fieldPath: ".advertInterval",
      holds: (s) => durationToMs(s.advertInterval) % 1000 === 0 || durationToMs(s.advertInterval) <= 40_950,
    },
    {
      cel: `!has(self.authPass) || ${ADVERT_MS} % 1000 == 0`,
      message:
        "spec.authPass needs VRRPv2, but a spec.advertInterval that is a fraction of a second needs VRRPv3 (no authentication): remove authPass or use whole seconds",
      fieldPath: ".authPass",
      holds: (s) => s.authPass === undefined || durationToMs(s.advertInterval) % 1000 === 0,
    },
    ...(["primary", "secondary"] as const).map((role) => ({
      // An address that is not an IP at all is reported by the field's own rule.
      cel: `!self.unicast || !has(self.${role}.address) || !isIP(self.${role}.address) || ip(self.${role}.address).family() == 4`,
      message: `spec.${role}.address must be IPv4 with spec.unicast: the unicast adverts of the IPv4 VIP spec.virtualIP go between IPv4 addresses; set it to the node's IPv4 address on spec.${role}.interface`,
      fieldPath: `.${role}.address`,
      holds: (s: { unicast: boolean } & { [r in typeof role]: { address?: string | undefined } }) => {
        const address = s[role].address;
        return !s.unicast || address === undefined || !isCelIP(address) || isIPv4(address);
      },
    })),
  ],
);
export type HAPairSpec = z.output<typeof haPairSpecSchema>;
export type HAPairNodeSpec = HAPairSpec["primary"];

const nodeStatus = z.strictObject({
  host: z.string().describe("DDIHost name."),
  role: z.enum(["primary", "secondary"]).describe("Role in the pair."),
  vrrpState: z.enum(["MASTER", "BACKUP", "FAULT", "STOP", "INIT", "UNKNOWN"]).describe("VRRP state reported by keepalived."),
  holdsVIP: z.boolean().describe("Whether the VIP is configured on the node's interface."),
  servicesHealthy: z.boolean().describe("Whether every enabled service is active on the node."),
});

export const haPairStatusSchema = z
  .strictObject({
    ...commonStatusFields,
    activeNode: z.enum(["primary", "secondary", "none", "both"]).optional().describe("Which node holds the VIP; both means split brain."),
    nodes: z.array(nodeStatus).optional().describe("Per-node observed state."),
    failoverCount: z.number().int().min(0).optional().describe("Number of VIP moves observed."),
    lastFailoverTime: z.string().optional().describe("When the VIP last moved (RFC 3339)."),
  })
  .describe("Observed state of the pair.");
export type HAPairStatus = z.output<typeof haPairStatusSchema>;

export const haPairKind: KindDefinition = {
  kind: "HAPair",
  plural: "hapairs",
  singular: "hapair",
  shortNames: ["hap"],
  description: "HAPair is a keepalived VRRP virtual IP shared by two DDIHosts, tracking their DNS/DHCP services.",
  spec: haPairSpecSchema,
  status: haPairStatusSchema,
  printerColumns: [
    { name: "VIP", type: "string", jsonPath: ".spec.virtualIP", description: "Virtual IP." },
    { name: "VRID", type: "integer", jsonPath: ".spec.virtualRouterID", description: "VRRP virtual router ID." },
    { name: "Active", type: "string", jsonPath: ".status.activeNode", description: "Node holding the VIP." },
    readyColumn,
    reasonColumn,
    ageColumn,
  ],
};
