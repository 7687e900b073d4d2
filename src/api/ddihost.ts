import { z } from "zod";
import {
  type KindDefinition,
  ageColumn,
  commonStatusFields,
  hostAddress,
  interfaceName,
  readyColumn,
  reasonColumn,
  secretRef,
  withCrossFieldRules,
} from "./common.js";

/** An OpenSSH public key line: `ssh-ed25519 AAAA… comment`. */
export const HOST_KEY_RE =
  /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) [A-Za-z0-9+/]+={0,3}( [A-Za-z0-9@._+-]{0,128})?$/;

export const ddiHostSpecSchema = withCrossFieldRules(
  z
    .strictObject({
      address: hostAddress("spec.address").describe("IP address or DNS name the operator reaches the host at over SSH."),
      port: z.number().int().min(1).max(65535).default(22).describe("SSH port."),
      user: z
        .string()
        .max(32)
        .regex(/^[a-z_][a-z0-9_-]*$/, "must be a Linux user name (lower-case letters, digits, '_' and '-')")
        .default("root")
        .describe("SSH user. A non-root user needs sudo: true and passwordless sudo rights."),
      sudo: z.boolean().default(false).describe("Run commands through `sudo -n` (for a non-root user)."),
      credentialsSecretRef: secretRef(
        "Secret in the same namespace holding `privateKey` (OpenSSH or PEM) and optionally `passphrase`.",
      ),
      hostKey: z
        .string()
        .max(1024)
        .regex(HOST_KEY_RE, "must be one OpenSSH public key line such as 'ssh-ed25519 AAAA…' (from `ssh-keyscan -t ed25519 HOST`)")
        .optional()
        .describe("The host's SSH public key line, e.g. `ssh-ed25519 AAAA…`. Required with hostKeyPolicy Pinned."),
      hostKeyPolicy: z
        .enum(["Pinned", "TrustOnFirstUse"])
        .default("Pinned")
        .describe(
          "Pinned: only spec.hostKey is accepted. TrustOnFirstUse: the first key seen is recorded in status and pinned from then on. A changed key is always refused.",
        ),
      osFamily: z
        .enum(["Debian", "RHEL"])
        .optional()
        .describe("Distribution family, used for file locations such as Kea's hooks directory. Discovered when unset; rendering offline assumes Debian."),
      maintenance: z
        .boolean()
        .optional()
        .describe(
          "true: take the host out of service gracefully. keepalived on it gives every VIP away at once (a priority-0 advert), Kea's partner is told with ha-maintenance-start, and dhcpd's partner goes to partner-down only if the DhcpFailoverPeer says maintenancePartnerDown. Remove the field (or set false) to bring the host back.",
        ),
    })
    .describe("A bare-metal Linux server running DNS/DHCP daemons, reached only over SSH."),
  [
    {
      cel: "self.hostKeyPolicy != 'Pinned' || has(self.hostKey)",
      message:
        "spec.hostKey is required when spec.hostKeyPolicy is Pinned: paste the host's key line (ssh-keyscan -t ed25519 HOST), or set hostKeyPolicy: TrustOnFirstUse",
      fieldPath: ".hostKey",
      holds: (s) => s.hostKeyPolicy !== "Pinned" || s.hostKey !== undefined,
    },
    {
      cel: "self.user == 'root' || self.sudo",
      message: "spec.sudo must be true when spec.user is not root: the operator writes files under /etc and reloads services",
      fieldPath: ".sudo",
      holds: (s) => s.user === "root" || s.sudo,
    },
  ],
);
export type DDIHostSpec = z.output<typeof ddiHostSpecSchema>;

export const SERVICE_NAMES = [
  "keepalived",
  "named",
  "isc-dhcp-server",
  "isc-dhcp-server6",
  "kea-dhcp4",
  "kea-dhcp6",
  "kea-ctrl-agent",
] as const;

export const ddiHostStatusSchema = z
  .strictObject({
    ...commonStatusFields,
    hostKeyFingerprint: z.string().optional().describe("SHA256 fingerprint of the host key seen (SHA256:…)."),
    observedHostKey: z.string().optional().describe("The host key line recorded under TrustOnFirstUse."),
    os: z.string().optional().describe("Operating system (PRETTY_NAME from /etc/os-release)."),
    kernel: z.string().optional().describe("Kernel release (uname -r)."),
    clockOffsetSeconds: z.number().optional().describe("Host clock minus operator clock, corrected by RTT/2."),
    ntpSynchronized: z.boolean().optional().describe("Whether the host reports its clock as NTP-synchronized."),
    services: z
      .array(
        z.strictObject({
          name: z.enum(SERVICE_NAMES).describe("Service name."),
          unit: z.string().describe("systemd unit."),
          installed: z.boolean().describe("Whether the unit exists."),
          active: z.boolean().describe("Whether the unit is active."),
          version: z.string().optional().describe("Daemon version."),
        }),
      )
      .optional()
      .describe("DNS/DHCP services discovered on the host."),
    interfaces: z
      .array(
        z.strictObject({
          name: interfaceName().describe("Interface name."),
          addresses: z.array(z.string()).describe("Addresses in CIDR form."),
        }),
      )
      .optional()
      .describe("Network interfaces and their addresses."),
  })
  .describe("Observed state of the host.");
export type DDIHostStatus = z.output<typeof ddiHostStatusSchema>;

export const ddiHostKind: KindDefinition = {
  kind: "DDIHost",
  plural: "ddihosts",
  singular: "ddihost",
  shortNames: ["ddih"],
  description: "DDIHost is a bare-metal Linux server running DNS/DHCP, reached over SSH with a verified host key.",
  spec: ddiHostSpecSchema,
  status: ddiHostStatusSchema,
  printerColumns: [
    { name: "Address", type: "string", jsonPath: ".spec.address", description: "SSH address." },
    readyColumn,
    { name: "OS", type: "string", jsonPath: ".status.os", description: "Operating system.", priority: 1 },
    { name: "Clock-Offset", type: "number", jsonPath: ".status.clockOffsetSeconds", description: "Clock offset in seconds." },
    reasonColumn,
    ageColumn,
  ],
};
