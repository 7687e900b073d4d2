// Renders a DhcpFailoverPeer into dhcpd files for both hosts: the operator's own include file
// (OMAPI key, failover peer, subnets and pools) and one marked include line in the user's
// dhcpd.conf. Pure: spec in, RenderedFile[] out.
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import { type DDIHost, type DhcpFailoverPeer, type DhcpFailoverPeerSpec, type DhcpSubnetSpec, durationToMs } from "../../api/index.js";
import { parseIpv4Cidr } from "../../net/ipv4.js";
import type { RenderedFile } from "../../render/types.js";
import { ensureIncludeLine } from "./include-line.js";

export type OmapiAlgorithm = "hmac-md5" | "hmac-sha256";

export interface DhcpdOmapiKey {
  /** Key name, shared by dhcpd.conf (`key NAME { }`, `omapi-key NAME;`) and omshell (`key NAME SECRET`). */
  name: string;
  algorithm: OmapiAlgorithm;
  /** base64 */
  secret: string;
}

/**
 * Bookworm's /etc/dhcp/dhcpd.conf without its commented-out examples: the main file we patch when
 * rendering offline. On a real host the live file is patched instead (RenderedFile.patch).
 */
export const DEBIAN_DEFAULT_DHCPD_CONF = `# dhcpd.conf
#
# Sample configuration file for ISC dhcpd
#

# option definitions common to all supported networks...
option domain-name "example.org";
option domain-name-servers ns1.example.org, ns2.example.org;

default-lease-time 600;
max-lease-time 7200;

# The ddns-updates-style parameter controls whether or not the server will
# attempt to do a DNS update when a lease is confirmed. We default to the
# behavior of the version 2 packages ('none', since DHCP v2 didn't
# have support for DDNS.)
ddns-update-style none;
`;

const SERVICE = "isc-dhcp-server.service" as const;
// The key is `omapi-<peer name>` and a peer name may be 63 characters (spec.peerName, metadata.name):
// 69 must pass. dhcpd and omshell take a quoted key name of any length; 128 is a sane bound.
const KEY_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** A fresh OMAPI key. HMAC-SHA256: dhcpd 4.4.3 and its omshell accept it (omshell needs `key-algorithm`). */
export function generateOmapiKey(algorithm: OmapiAlgorithm = "hmac-sha256"): { algorithm: OmapiAlgorithm; secret: string } {
  // Key as long as the hash's block-size guidance: 32 bytes for SHA-256, 64 for MD5 (dnssec-keygen -b 512).
  return { algorithm, secret: randomBytes(algorithm === "hmac-sha256" ? 32 : 64).toString("base64") };
}

/** The failover peer name written into dhcpd.conf. */
export function failoverPeerName(peer: DhcpFailoverPeer): string {
  return peer.spec.peerName ?? peer.metadata.name;
}

/** `namespace/name` of the resource. */
export function failoverOwner(peer: DhcpFailoverPeer): string {
  return `${peer.metadata.namespace ?? "default"}/${peer.metadata.name}`;
}

/** The operator's include file: `<dir of configPath>/ddi-ha/<peerName>.conf` (inside AppArmor's /etc/dhcp/** on Debian). */
export function includeFilePath(spec: Pick<DhcpFailoverPeerSpec, "configPath">, peerName: string): string {
  return posix.join(posix.dirname(spec.configPath), "ddi-ha", `${peerName}.conf`);
}

/** The marker that identifies the operator's line in the user's dhcpd.conf. */
export function includeMarker(owner: string): string {
  return `# managed by ddi-ha-operator: ${owner}`;
}

export function includeLine(includePath: string, owner: string): string {
  return `include "${includePath}"; ${includeMarker(owner)}`;
}

function wholeSeconds(duration: string, field: string): number {
  const ms = durationToMs(duration);
  if (ms % 1000 !== 0 || ms < 1000) throw new Error(`${field} is ${JSON.stringify(duration)}: dhcpd counts whole seconds, write e.g. "30s" or "1h"`);
  return ms / 1000;
}

function requireHost(hosts: ReadonlyMap<string, DDIHost>, name: string, field: string, owner: string): DDIHost {
  const host = hosts.get(name);
  if (!host) {
    const namespace = owner.split("/")[0];
    throw new Error(`DhcpFailoverPeer ${owner}: ${field} refers to DDIHost "${name}", which does not exist in namespace ${namespace}: create it or fix ${field}`);
  }
  return host;
}

/** The subnets and pools, byte-identical on both peers (dhcpd.conf(5): never tell one peer a pool is failover and the other not). */
export function renderFailoverSubnets(peerName: string, subnets: readonly DhcpSubnetSpec[]): string {
  const out: string[] = [];
  subnets.forEach((s, si) => {
    const { network, netmask } = parseIpv4Cidr(s.subnet);
    out.push(`subnet ${network} netmask ${netmask} {`);
    const o = s.options;
    if (o.routers?.length) out.push(`  option routers ${o.routers.join(", ")};`);
    if (o.domainNameServers?.length) out.push(`  option domain-name-servers ${o.domainNameServers.join(", ")};`);
    if (o.domainName) out.push(`  option domain-name "${o.domainName}";`);
    if (o.broadcastAddress) out.push(`  option broadcast-address ${o.broadcastAddress};`);
    s.pools.forEach((p, pi) => {
      out.push("  pool {");
      out.push(`    failover peer "${peerName}";`);
      if (p.maxLeaseTime !== undefined) out.push(`    max-lease-time ${wholeSeconds(p.maxLeaseTime, `spec.subnets[${si}].pools[${pi}].maxLeaseTime`)};`);
      out.push(`    range ${p.range[0]} ${p.range[1]};`);
      out.push("  }");
    });
    out.push("}");
  });
  return out.join("\n") + "\n";
}

function renderOmapi(port: number, key: DhcpdOmapiKey): string {
  if (!KEY_NAME_RE.test(key.name)) throw new Error(`OMAPI key name ${JSON.stringify(key.name)} must be at most 128 letters, digits, '_', '.' and '-'`);
  if (!BASE64_RE.test(key.secret)) throw new Error(`OMAPI key ${key.name}: the secret must be base64 (A-Z, a-z, 0-9, '+', '/', '=')`);
  return [
    `omapi-port ${port};`,
    `key "${key.name}" {`,
    `  algorithm ${key.algorithm};`,
    `  secret "${key.secret}";`,
    "}",
    `omapi-key "${key.name}";`,
    "",
  ].join("\n");
}

function renderPeerBlock(spec: DhcpFailoverPeerSpec, peerName: string, role: "primary" | "secondary"): string {
  const me = spec[role];
  const partner = role === "primary" ? spec.secondary : spec.primary;
  const lines = [
    `failover peer "${peerName}" {`,
    `  ${role};`,
    `  address ${me.address};`,
    `  port ${me.port};`,
    `  peer address ${partner.address};`,
    `  peer port ${partner.port};`,
    `  max-response-delay ${wholeSeconds(spec.maxResponseDelay, "spec.maxResponseDelay")};`,
    `  max-unacked-updates ${spec.maxUnackedUpdates};`,
    `  load balance max seconds ${spec.loadBalanceMaxSeconds};`,
  ];
  if (role === "primary") {
    lines.push(`  mclt ${wholeSeconds(spec.mclt, "spec.mclt")};`);
    if (spec.split !== undefined) lines.push(`  split ${spec.split};`);
    else if (spec.hba !== undefined) lines.push(`  hba ${spec.hba};`);
    else throw new Error("spec.split or spec.hba must be set: the primary needs exactly one of them (split: 128 shares clients evenly)");
  }
  lines.push("}", "");
  return lines.join("\n");
}

/** The comment line that starts the shared part of the include file (tests cut both files there). */
export const SUBNETS_HEADER = "# Subnets and pools: byte-identical on both peers.";

export function renderDhcpFailover(peer: DhcpFailoverPeer, hosts: ReadonlyMap<string, DDIHost>, omapiKey: DhcpdOmapiKey): RenderedFile[] {
  const spec = peer.spec;
  const owner = failoverOwner(peer);
  const peerName = failoverPeerName(peer);
  if (spec.split !== undefined && spec.hba !== undefined) throw new Error(`DhcpFailoverPeer ${owner}: set only one of spec.split or spec.hba, dhcpd forbids both`);
  const includePath = includeFilePath(spec, peerName);
  const line = includeLine(includePath, owner);
  const marker = includeMarker(owner);
  const omapi = renderOmapi(spec.omapi.port, omapiKey);
  const subnets = renderFailoverSubnets(peerName, spec.subnets);
  const files: RenderedFile[] = [];
  for (const role of ["primary", "secondary"] as const) {
    const host = requireHost(hosts, spec[role].host, `spec.${role}.host`, owner);
    const hostName = host.metadata.name;
    const include = [
      `# Managed by ddi-ha-operator for DhcpFailoverPeer ${owner}; changes here are overwritten.`,
      `# Included from ${spec.configPath} on DDIHost ${hostName}, the ${role} of failover peer "${peerName}".`,
      "",
      "# OMAPI, for reading the failover state (omshell). The key makes this file mode 0640.",
      omapi,
      renderPeerBlock(spec, peerName, role),
      SUBNETS_HEADER,
      subnets,
    ].join("\n");
    files.push(
      { host: hostName, path: includePath, content: include, mode: 0o640, ownership: "owned", service: SERVICE, check: { kind: "dhcpd" }, owner },
      {
        host: hostName,
        path: spec.configPath,
        content: ensureIncludeLine(DEBIAN_DEFAULT_DHCPD_CONF, line, marker),
        mode: 0o644,
        ownership: "patched",
        patch: { marker, line },
        service: SERVICE,
        check: { kind: "dhcpd" },
        owner,
      },
    );
  }
  return files;
}
