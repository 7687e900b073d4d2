// IP literals and CIDRs of both families, accepted the way Kubernetes CEL's isIP()/isCIDR() accept
// them, so that `ddi-ha validate` and admission agree.
import { isIP } from "node:net";
import { ipv4ToNumber } from "./ipv4.js";

/** An IPv6 address (already accepted by node:net) as a 128-bit number. */
export function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    // A trailing dotted quad is the last two groups.
    const n = ipv4ToNumber(tail);
    text = `${text.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tailGroups] = text.includes("::") ? text.split("::") : [text, undefined];
  const before = head ? head.split(":") : [];
  const after = tailGroups ? tailGroups.split(":") : [];
  const zeros = tailGroups === undefined ? [] : Array<string>(8 - before.length - after.length).fill("0");
  return [...before, ...zeros, ...after].reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g || "0", 16)), 0n);
}

/**
 * Whether Kubernetes CEL's isIP() accepts the string: an IPv4 or IPv6 literal without a zone
 * ("%eth0") and not IPv4-mapped IPv6 ("::ffff:198.18.0.1").
 */
export function isCelIP(value: string): boolean {
  const family = isIP(value);
  if (family === 4) return true;
  if (family !== 6 || value.includes("%")) return false;
  return ipv6ToBigInt(value) >> 32n !== 0xffffn;
}

/** The address family of a CIDR that isCIDR() accepts, or 0. */
export function cidrFamily(cidr: string): 0 | 4 | 6 {
  const [ip, prefix, extra] = cidr.split("/");
  if (ip === undefined || prefix === undefined || extra !== undefined || !/^(0|[1-9][0-9]{0,2})$/.test(prefix) || !isCelIP(ip)) return 0;
  const family = isIP(ip) as 4 | 6;
  return Number(prefix) <= (family === 4 ? 32 : 128) ? family : 0;
}

/** A CIDR as numbers, parsed once for repeated overlap checks; undefined when isCIDR() would refuse it. */
export interface ParsedCidr {
  family: 4 | 6;
  value: bigint;
  prefix: number;
}

export function parseCidr(cidr: string): ParsedCidr | undefined {
  const family = cidrFamily(cidr);
  if (family === 0) return undefined;
  const [ip, prefix] = cidr.split("/") as [string, string];
  return { family, value: family === 4 ? BigInt(ipv4ToNumber(ip)) : ipv6ToBigInt(ip), prefix: Number(prefix) };
}

/** Whether two parsed CIDRs of one family share an address (CIDR blocks either nest or are disjoint). */
export function parsedCidrsOverlap(pa: ParsedCidr, pb: ParsedCidr): boolean {
  if (pa.family !== pb.family) return false;
  const shift = BigInt((pa.family === 4 ? 32 : 128) - Math.min(pa.prefix, pb.prefix));
  return pa.value >> shift === pb.value >> shift;
}

/** Whether two CIDRs of one family share an address; false when either is not a CIDR. */
export function cidrsOverlap(a: string, b: string): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  return pa !== undefined && pb !== undefined && parsedCidrsOverlap(pa, pb);
}

/**
 * Whether an IP literal (one isCelIP accepts) can be a host's own address, exactly as Go's
 * net.IP.IsGlobalUnicast (what Kubernetes CEL's ip().isGlobalUnicast() calls): not unspecified,
 * loopback, multicast, link-local or the IPv4 limited broadcast. Private ranges are fine.
 */
export function isGlobalUnicastIP(ip: string): boolean {
  if (isIP(ip) === 4) {
    const n = ipv4ToNumber(ip);
    const first = n >>> 24;
    return !(n === 0 || n === 0xffffffff || first === 127 || first >= 224 && first <= 239 || n >>> 16 === (169 << 8) + 254);
  }
  const v = ipv6ToBigInt(ip);
  return !(v === 0n || v === 1n || v >> 120n === 0xffn || v >> 118n === 0x3fan);
}

/** Why an IP literal cannot be a host's address ("the loopback address"), or undefined. */
export function nonHostAddressKind(ip: string): string | undefined {
  if (isGlobalUnicastIP(ip)) return undefined;
  if (isIP(ip) === 4) {
    const n = ipv4ToNumber(ip);
    const first = n >>> 24;
    if (n === 0) return "the unspecified address";
    if (n === 0xffffffff) return "the limited broadcast address";
    if (first === 127) return "a loopback address (127.0.0.0/8)";
    if (first >= 224) return "a multicast address (224.0.0.0/4)";
    return "a link-local address (169.254.0.0/16)";
  }
  const v = ipv6ToBigInt(ip);
  if (v === 0n) return "the unspecified address (::)";
  if (v === 1n) return "the loopback address (::1)";
  if (v >> 120n === 0xffn) return "a multicast address (ff00::/8)";
  return "a link-local address (fe80::/10)";
}

/** For an IPv4 CIDR with a prefix of at most /30: whether its address is the network or broadcast address of that prefix. */
export function ipv4NetworkOrBroadcast(cidr: string): "network" | "broadcast" | undefined {
  const [ip, prefixText] = cidr.split("/");
  const prefix = Number(prefixText);
  if (isIP(ip ?? "") !== 4 || !(prefix <= 30)) return undefined;
  const size = 2 ** (32 - prefix);
  const offset = ipv4ToNumber(ip!) % size;
  return offset === 0 ? "network" : offset === size - 1 ? "broadcast" : undefined;
}
