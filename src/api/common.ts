// Building blocks shared by the four kinds. Every string that can reach a host (a shell
// command or a config file) is constrained here by a pattern with no shell metacharacters,
// so the same rule is enforced by the API server (the CRD pattern) and by `ddi-ha validate`.
import { z } from "zod";
import { isCelIP, isGlobalUnicastIP } from "../net/ip.js";

export const API_GROUP = "ddi-ha.io";
export const API_VERSION = "v1alpha1";
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

const IPV4_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
export const IPV4_RE = `${IPV4_OCTET}(\\.${IPV4_OCTET}){3}`;
// Loose on purpose: the shape keeps metacharacters out; isIP() in CEL and isCelIP() in TypeScript check the rest.
export const IPV6_RE = "[0-9a-fA-F:]*:[0-9a-fA-F:.]*";
const DNS_NAME_RE = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*";

export const ipv4 = () =>
  z.string().max(15).regex(new RegExp(`^${IPV4_RE}$`), "must be an IPv4 address such as 198.18.0.10");

/**
 * A rule on one string field's own value, enforced twice like a CrossFieldRule: as a CEL
 * `x-kubernetes-validations` entry with `self` bound to the string, and as a zod refinement.
 * `holds` is only asked about values that match the field's pattern (the pattern's own message
 * covers the rest), and the CEL expression must not fail on such values.
 */
type FieldRule = { cel: string; message: string; holds: (value: string) => boolean };
export function withFieldRule(schema: z.ZodString, pattern: RegExp, ruleOrRules: FieldRule | readonly FieldRule[]): z.ZodString {
  const rules = Array.isArray(ruleOrRules) ? (ruleOrRules as readonly FieldRule[]) : [ruleOrRules as FieldRule];
  let refined = schema;
  for (const rule of rules) refined = refined.refine((v) => !pattern.test(v) || rule.holds(v), rule.message);
  return refined.meta({ "x-kubernetes-validations": rules.map((rule) => ({ rule: rule.cel, message: rule.message })) });
}

/**
 * The rule for any address that must be a host's own (a node's, a peer's): Go's IsGlobalUnicast,
 * which CEL's ip().isGlobalUnicast() is. `celIP` is a CEL expression of the address text.
 */
export function hostOwnAddressRule(field: string, celIP: string, ipOf: (value: string) => string | undefined): FieldRule {
  return {
    cel: `!isIP(${celIP}) || ip(${celIP}).isGlobalUnicast()`,
    message: `${field} must be a host's own address: not unspecified (0.0.0.0, ::), loopback (127.0.0.0/8, ::1), multicast (224.0.0.0/4, ff00::/8), link-local (169.254.0.0/16, fe80::/10) or 255.255.255.255`,
    holds: (v) => {
      const ip = ipOf(v);
      return ip === undefined || !isCelIP(ip) || isGlobalUnicastIP(ip);
    },
  };
}

const IPV4_ONLY_RE = new RegExp(`^${IPV4_RE}$`);
/** An IPv4 literal that must be a host's own address; `field` names it in the message. */
export const hostIPv4 = (field: string) => withFieldRule(ipv4(), IPV4_ONLY_RE, hostOwnAddressRule(field, "self", (v) => v));

const IP_ADDRESS_RE = new RegExp(`^(${IPV4_RE}|${IPV6_RE})$`);
/** An IPv4 or IPv6 literal; `field` (e.g. "spec.primary.address") names it in the message. */
export const ipAddress = (field: string) =>
  withFieldRule(z.string().max(45).regex(IP_ADDRESS_RE, "must be an IPv4 or IPv6 address"), IP_ADDRESS_RE, [
    {
      cel: "isIP(self)",
      message: `${field} must be an IPv4 or IPv6 address such as 198.18.0.10 or fd00::10 (no zone, not IPv4-mapped)`,
      holds: isCelIP,
    },
    hostOwnAddressRule(field, "self", (v) => v),
  ]);
export const IPV4_CIDR_RE = new RegExp(`^${IPV4_RE}/([0-9]|[12][0-9]|3[0-2])$`);
export const IPV6_CIDR_RE = new RegExp(`^${IPV6_RE}/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$`);
export const ipv4Cidr = () => z.string().max(18).regex(IPV4_CIDR_RE, "must be an IPv4 CIDR such as 10.71.17.86/24");
export const ipv6Cidr = () => z.string().max(49).regex(IPV6_CIDR_RE, "must be an IPv6 CIDR such as fd00::86/64");

const HOST_ADDRESS_RE = new RegExp(`^(${IPV4_RE}|${IPV6_RE}|${DNS_NAME_RE})$`);
/** An SSH address: an IP literal or a DNS name; `field` names it in the message. */
export const hostAddress = (field: string) =>
  withFieldRule(
    z.string().min(1).max(253).regex(HOST_ADDRESS_RE, "must be an IP address or a DNS name (letters, digits, '-' and '.')"),
    HOST_ADDRESS_RE,
    {
      // A DNS name has no ':', so anything with one must be a real IPv6 literal.
      cel: "!self.contains(':') || isIP(self)",
      message: `${field} must be an IPv6 address such as fd00::10 when it contains ':', or else an IPv4 address or a DNS name`,
      holds: (v) => !v.includes(":") || isCelIP(v),
    },
  );

/** A Linux interface name (IFNAMSIZ is 16 including the NUL). */
export const interfaceName = () =>
  z
    .string()
    .min(1)
    .max(15)
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "must be a Linux interface name such as eth0, enp1s0 or br0 (letters, digits, '_', '.', '-')");

/** One path segment: no shell metacharacters, and no leading '.', so never '.' or '..'. */
const PATH_SEGMENT = "[A-Za-z0-9_-][A-Za-z0-9._-]*";

/**
 * A daemon config file the operator overwrites as root, confined to that daemon's config
 * directories (e.g. ["/etc/keepalived"]) so that a spec cannot aim it at /etc/shadow.
 */
export const configPathUnder = (directories: readonly string[], example: string) =>
  z
    .string()
    .max(255)
    .regex(
      new RegExp(`^(${directories.map((d) => d.replace(/[.]/g, "\\.")).join("|")})/(${PATH_SEGMENT}/)*${PATH_SEGMENT}$`),
      `must be a file under ${directories.map((d) => `${d}/`).join(" or ")} (path segments of letters, digits, '.', '_' and '-', not starting with '.'; no '..'), e.g. ${example}`,
    )
    .default(example);

/** A Kubernetes object name (RFC 1123 subdomain, kept short enough for config identifiers). */
export const objectName = () =>
  z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, "must be a Kubernetes object name (lower-case letters, digits, '-' and '.')");

/** A name that is written into a daemon config (failover peer name, Kea server name). */
export const configIdentifier = () =>
  z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "must be letters, digits, '_', '.' and '-' and start with a letter or digit");

export const DURATION_RE = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
/** A Kubernetes-style duration such as "1s", "500ms" or "1m30s". */
export const duration = () => z.string().max(32).regex(DURATION_RE, 'must be a duration such as "500ms", "1s" or "30s"');

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Milliseconds in a duration that already matched DURATION_RE. */
export function durationToMs(d: string): number {
  let total = 0;
  for (const m of d.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(total);
}

/** What a relationship does when a managed file on a host no longer matches what its spec renders. */
export const driftPolicy = () =>
  z
    .enum(["Correct", "Report"])
    .default("Correct")
    .describe(
      "What the operator does when a file it manages on a host differs from what this spec renders (a hand edit, another tool, a restored backup), which it checks on every resync. Correct: re-apply it through the safe-apply protocol (Event and condition reason DriftCorrected). Report: change nothing; ConfigInSync=False names the host and file, and the DDIHAConfigDrift alert fires.",
    );

export const secretRef = (what: string) =>
  z
    .strictObject({ name: objectName().describe("Name of a Secret in the same namespace.") })
    .describe(what);

export const conditionSchema = z
  .strictObject({
    type: z.string().max(316).describe("Type of the condition: Ready, Reconciling, Stalled, and kind-specific types."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition."),
    observedGeneration: z.number().int().min(0).optional().describe("metadata.generation the condition was computed for."),
    lastTransitionTime: z.string().describe("When the status last changed (RFC 3339)."),
    reason: z.string().max(1024).describe("CamelCase machine-readable reason."),
    message: z.string().max(32768).describe("Human-readable explanation, naming the field and the fix where relevant."),
  })
  .describe("A metav1.Condition.");
export type Condition = z.infer<typeof conditionSchema>;

export const commonStatusFields = {
  observedGeneration: z.number().int().min(0).optional().describe("The metadata.generation the status was computed for."),
  conditions: z.array(conditionSchema).optional().describe("Conditions in metav1.Condition shape (kstatus)."),
};

/**
 * One cross-field rule, written once and enforced twice: as a CEL `x-kubernetes-validations`
 * entry at admission, and as a zod refinement in `ddi-ha validate` (for users without a cluster
 * and for the operator's own defence in depth).
 */
export interface CrossFieldRule<T> {
  /** CEL expression evaluated with `self` bound to the object; absent where CEL cannot express the rule. */
  cel?: string;
  /** Shown to the user; names the field and the fix. */
  message: string;
  /** The field the error is reported on, relative to the object, e.g. ".secondary.host". */
  fieldPath?: string;
  /** The same rule in TypeScript; returns true when the object is valid. */
  holds: (self: T) => boolean;
}

export function withCrossFieldRules<S extends z.ZodObject>(schema: S, rules: CrossFieldRule<z.output<S>>[]): S {
  const refined = schema.superRefine((self, ctx) => {
    for (const rule of rules) {
      if (rule.holds(self as z.output<S>)) continue;
      const path = rule.fieldPath ? rule.fieldPath.replace(/^\./, "").split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : p)) : [];
      ctx.addIssue({ code: "custom", message: rule.message, path });
    }
  });
  return refined.meta({
    "x-kubernetes-validations": rules.flatMap((r) => (r.cel === undefined ? [] : [{
      rule: r.cel,
      message: r.message,
      ...(r.fieldPath ? { fieldPath: r.fieldPath } : {}),
    }])),
  }) as S;
}

/** Printer column shown by `kubectl get`. */
export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

export const readyColumn: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the hosts match the spec and observed health is good.",
};
export const reasonColumn: PrinterColumn = {
  name: "Reason",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
  description: "Reason of the Ready condition.",
  priority: 1,
};
export const ageColumn: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the resource was created.",
};

/** Everything the CRD generator and the validator need to know about one kind. */
export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodObject;
  status: z.ZodObject;
  printerColumns: PrinterColumn[];
}
