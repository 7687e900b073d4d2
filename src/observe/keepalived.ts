// Who holds an HAPair's VIP and what keepalived says about itself, per node; and the pair's
// summary (primary, secondary, none, or both = split brain). The kernel's address list is the
// truth about the VIP; keepalived's notify channel adds why (MASTER/BACKUP/FAULT).
import { isIPv6 } from "node:net";
import type { HAPairStatus } from "../api/index.js";
import type { HostSession } from "../exec/host-io.js";
import { keepalivedStateFilePath, parseKeepalivedStateFile } from "../daemons/keepalived/index.js";
import { parseCidr, parsedCidrsOverlap } from "../net/ip.js";
import { sameAddress } from "./address-monitor.js";
import { type HostProbe, probedUnitActive } from "./host-probe.js";

export type VrrpState = NonNullable<HAPairStatus["nodes"]>[number]["vrrpState"];
export type PairRole = "primary" | "secondary";
export type ActiveNode = NonNullable<HAPairStatus["activeNode"]>;

const VRRP_STATES = new Set(["MASTER", "BACKUP", "FAULT", "STOP", "INIT"]);

/**
 * The state in a notify-channel text. The keepalived module's notify hook leaves one record
 * `MASTER 150 1795335150.123456789` (state, priority, when) in `<instance>.state`, read with the
 * module's own parser; this also accepts what keepalived itself writes to a `vrrp_notify_fifo`
 * (`INSTANCE "VI_1" MASTER 100`) and a bare `MASTER`, the last record winning, for hosts whose
 * channel was set up by hand. Anything else is UNKNOWN.
 */
export function parseVrrpStateRecord(text: string, instance?: string): { state: VrrpState; priority?: number; since?: Date } {
  const record = parseKeepalivedStateFile(text);
  if (record) return { state: record.state, priority: record.priority, since: new Date(Math.floor(record.epochSeconds * 1000)) };
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const fifo = /^(?:\S+\s+)?INSTANCE\s+"?([^"\s]+)"?\s+([A-Z]+)(?:\s+(\d+))?$/.exec(line);
    if (fifo) {
      if (instance !== undefined && fifo[1] !== instance) continue;
      if (VRRP_STATES.has(fifo[2]!)) return { state: fifo[2] as VrrpState, ...(fifo[3] ? { priority: Number(fifo[3]) } : {}) };
      continue;
    }
    const record = /^([A-Z]+)(?:\s+(\d+))?(?:\s+(\d+)(?:\.(\d{1,9}))?)?$/.exec(line);
    if (record && VRRP_STATES.has(record[1]!)) {
      const since = record[3] ? new Date(Number(record[3]) * 1000 + Math.floor(Number((record[4] ?? "0").padEnd(9, "0")) / 1e6)) : undefined;
      return { state: record[1] as VrrpState, ...(record[2] ? { priority: Number(record[2]) } : {}), ...(since ? { since } : {}) };
    }
  }
  return { state: "UNKNOWN" };
}

interface IpAddrInfo {
  family?: unknown;
  local?: unknown;
  prefixlen?: unknown;
}

function addressesOf(ipJson: string): IpAddrInfo[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(ipJson);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((iface: { addr_info?: IpAddrInfo[] }) => (Array.isArray(iface?.addr_info) ? iface.addr_info : []));
}

/** Whether `vip` (CIDR or bare) is among the addresses of `ip -j addr show dev IFACE`. */
export function interfaceHoldsAddress(ipJson: string, vip: string): boolean {
  return addressesOf(ipJson).some((a) => typeof a.local === "string" && sameAddress(a.local, vip));
}

/**
 * Whether `vip` lies in the subnet of one of the interface's own addresses (the VIP itself
 * excluded), and those addresses. The seeds' rule: both servers and the VIP share one subnet;
 * a VIP outside it is announced by gratuitous ARP where none of its clients are.
 */
export function vipInInterfaceSubnet(ipJson: string, vip: string): { inSubnet: boolean; addresses: string[] } {
  const bare = vip.split("/")[0]!;
  const v6 = isIPv6(bare);
  const address = parseCidr(`${bare}/${v6 ? 128 : 32}`);
  const own = addressesOf(ipJson)
    .filter((a): a is { local: string; prefixlen: number } => typeof a.local === "string" && typeof a.prefixlen === "number" && (a.family === "inet6") === v6 && !sameAddress(a.local, vip))
    .map((a) => `${a.local}/${a.prefixlen}`);
  const inSubnet = address !== undefined && own.some((cidr) => {
    const subnet = parseCidr(cidr);
    return subnet !== undefined && parsedCidrsOverlap(subnet, address);
  });
  return { inSubnet, addresses: own };
}

export interface VipObservation {
  holdsVIP: boolean;
  /** False when the interface does not exist on the host (a spec error, or a renamed NIC). */
  interfaceFound: boolean;
  /** Whether the VIP is in the subnet of an address of the interface; absent when the interface is missing. */
  vipInSubnet?: boolean;
  /** The interface's own addresses (CIDR), for the message when it is not. */
  interfaceAddresses?: string[];
}

/** Whether the host has the VIP on `iface` right now (one `ip -j addr show dev IFACE`). */
export async function observeVip(session: HostSession, iface: string, vip: string): Promise<VipObservation> {
  const res = await session.run(["ip", "-j", "addr", "show", "dev", iface], { timeoutMs: 15_000 });
  if (res.code !== 0) {
    if (/does not exist|Cannot find device/i.test(res.stderr)) return { holdsVIP: false, interfaceFound: false };
    throw new Error(`ip addr show dev ${iface} on ${session.hostName} failed (exit ${res.code}): ${res.stderr.trim()}`);
  }
  const subnet = vipInInterfaceSubnet(res.stdout, vip);
  return { holdsVIP: interfaceHoldsAddress(res.stdout, vip), interfaceFound: true, vipInSubnet: subnet.inSubnet, interfaceAddresses: subnet.addresses };
}

export interface HAPairNodeTarget {
  role: PairRole;
  interface: string;
  /** The VIP in CIDR form (spec.virtualIP). */
  vip: string;
  /** The keepalived vrrp_instance name the keepalived module rendered for this pair. */
  instance: string;
}

export interface HAPairNodeObservation {
  host: string;
  role: PairRole;
  interface: string;
  /** False when the host could not be asked at all; then the other fields are guesses (UNKNOWN, false). */
  reachable: boolean;
  error?: string;
  keepalivedActive: boolean;
  vrrpState: VrrpState;
  priority?: number;
  /** When keepalived entered vrrpState, as its notify hook stamped it. */
  vrrpStateSince?: Date;
  holdsVIP: boolean;
  interfaceFound: boolean;
  /** See VipObservation. */
  vipInSubnet?: boolean;
  interfaceAddresses?: string[];
}

/**
 * One node of a pair: keepalived's unit state, its notify record and the VIP, asked in parallel
 * (three argv commands on the pooled connection: one round trip of latency). A stopped
 * keepalived is STOP whatever its last record says.
 */
export async function observeHAPairNode(session: HostSession, target: HAPairNodeTarget): Promise<HAPairNodeObservation> {
  const base = { host: session.hostName, role: target.role, interface: target.interface };
  try {
    const [active, record, vip] = await Promise.all([
      session.run(["systemctl", "is-active", "--", "keepalived.service"], { timeoutMs: 15_000 }),
      session.readFile(keepalivedStateFilePath(target.instance)),
      observeVip(session, target.interface, target.vip),
    ]);
    const keepalivedActive = active.stdout.trim() === "active";
    const parsed = record === undefined ? { state: "UNKNOWN" as VrrpState } : parseVrrpStateRecord(record, target.instance);
    return {
      ...base,
      reachable: true,
      keepalivedActive,
      vrrpState: keepalivedActive ? parsed.state : "STOP",
      ...(keepalivedActive && parsed.priority !== undefined ? { priority: parsed.priority } : {}),
      ...(keepalivedActive && "since" in parsed && parsed.since ? { vrrpStateSince: parsed.since } : {}),
      holdsVIP: vip.holdsVIP,
      interfaceFound: vip.interfaceFound,
      ...(vip.vipInSubnet === undefined ? {} : { vipInSubnet: vip.vipInSubnet, interfaceAddresses: vip.interfaceAddresses ?? [] }),
    };
  } catch (err) {
    return {
      ...base,
      reachable: false,
      error: (err as Error).message,
      keepalivedActive: false,
      vrrpState: "UNKNOWN",
      holdsVIP: false,
      interfaceFound: false,
    };
  }
}

/** The `ip -j addr` entries of one interface in a whole-host listing, or undefined when it has none. */
export function interfaceIpJson(ipJson: string, iface: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(ipJson);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const own = parsed.filter((entry: { ifname?: unknown }) => entry?.ifname === iface);
  return own.length > 0 ? JSON.stringify(own) : undefined;
}

/**
 * One node of a pair from its host's probe (no command of its own): keepalived's unit state,
 * its notify record (the probe reads `<instance>.state`) and the VIP in the host's addresses.
 * Pure; the same answer observeHAPairNode gives from three commands.
 */
export function haPairNodeFromProbe(probe: HostProbe, target: HAPairNodeTarget): HAPairNodeObservation {
  const keepalivedActive = probedUnitActive(probe, "keepalived.service");
  const record = probe.files.get(keepalivedStateFilePath(target.instance))?.content;
  const parsed = record === undefined ? { state: "UNKNOWN" as VrrpState } : parseVrrpStateRecord(record, target.instance);
  const ifaceJson = interfaceIpJson(probe.ipJson, target.interface);
  const subnet = ifaceJson === undefined ? undefined : vipInInterfaceSubnet(ifaceJson, target.vip);
  return {
    host: probe.host,
    role: target.role,
    interface: target.interface,
    reachable: true,
    keepalivedActive,
    vrrpState: keepalivedActive ? parsed.state : "STOP",
    ...(keepalivedActive && parsed.priority !== undefined ? { priority: parsed.priority } : {}),
    ...(keepalivedActive && "since" in parsed && parsed.since ? { vrrpStateSince: parsed.since } : {}),
    holdsVIP: ifaceJson !== undefined && interfaceHoldsAddress(ifaceJson, target.vip),
    interfaceFound: ifaceJson !== undefined,
    ...(subnet ? { vipInSubnet: subnet.inSubnet, interfaceAddresses: subnet.addresses } : {}),
  };
}

/**
 * Which node serves the VIP. Two holders is split brain; a node we could not reach counts as
 * not holding (we cannot see it, and its clients cannot either once the other node answers ARP).
 */
export function summarizePair(nodes: readonly { role: PairRole; holdsVIP: boolean; reachable?: boolean }[]): ActiveNode {
  const holders = new Set(nodes.filter((n) => n.holdsVIP && n.reachable !== false).map((n) => n.role));
  if (holders.size === 2) return "both";
  if (holders.has("primary")) return "primary";
  if (holders.has("secondary")) return "secondary";
  return "none";
}
