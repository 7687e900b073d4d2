// What a DDIHost is: OS, kernel, the DNS/DHCP services systemd knows, interfaces, and how far its
// clock is from ours. One batched command for the facts plus a few tiny clock samples, because
// every SSH round trip costs a channel open on a host that may be far away.
import { performance } from "node:perf_hooks";
import type { DDIHostStatus } from "../api/index.js";
import { SERVICE_NAMES } from "../api/index.js";
import type { HostSession } from "../exec/host-io.js";

export type ServiceName = (typeof SERVICE_NAMES)[number];
export type ServiceFact = NonNullable<DDIHostStatus["services"]>[number];
export type InterfaceFact = NonNullable<DDIHostStatus["interfaces"]>[number];

export interface HostFacts {
  os?: string;
  kernel?: string;
  services: ServiceFact[];
  interfaces: InterfaceFact[];
  clockOffsetSeconds?: number;
  /** How sure the offset is: half the round trip of the sample it came from. */
  clockOffsetUncertaintySeconds?: number;
  ntpSynchronized?: boolean;
}

/**
 * systemd units that may carry each service, most common first: Debian/Ubuntu names, then RHEL's.
 * `systemctl show` answers for all of them in one call; the first one systemd knows wins.
 */
export const SERVICE_UNIT_CANDIDATES: Readonly<Record<ServiceName, readonly string[]>> = {
  keepalived: ["keepalived.service"],
  named: ["named.service", "bind9.service"],
  "isc-dhcp-server": ["isc-dhcp-server.service", "dhcpd.service"],
  "isc-dhcp-server6": ["isc-dhcp-server6.service", "dhcpd6.service"],
  "kea-dhcp4": ["kea-dhcp4-server.service", "kea-dhcp4.service"],
  "kea-dhcp6": ["kea-dhcp6-server.service", "kea-dhcp6.service"],
  "kea-ctrl-agent": ["kea-ctrl-agent.service"],
};

/** The daemon binary and its version flag per service (both dhcpd services share one binary). */
const VERSION_COMMANDS: Readonly<Record<ServiceName, readonly [string, string]>> = {
  keepalived: ["keepalived", "--version"],
  named: ["named", "-v"],
  "isc-dhcp-server": ["dhcpd", "--version"],
  "isc-dhcp-server6": ["dhcpd", "--version"],
  "kea-dhcp4": ["kea-dhcp4", "-v"],
  "kea-dhcp6": ["kea-dhcp6", "-v"],
  "kea-ctrl-agent": ["kea-ctrl-agent", "-v"],
};

const SECTION = "@@ddi-ha-facts";
const UNIT_PROPERTIES = "Id,LoadState,ActiveState,SubState,UnitFileState";

/**
 * The one shell script that gathers the facts. Every word in it is a constant of this module
 * (no spec value, no host value), which is the only case where we allow `sh -c`: it saves six
 * round trips per host and per pass. PATH is set because sshd gives non-login shells a short one.
 */
export function hostFactsScript(): string {
  const units = SERVICE_NAMES.flatMap((s) => SERVICE_UNIT_CANDIDATES[s]);
  const binaries = [...new Map(SERVICE_NAMES.map((s) => [VERSION_COMMANDS[s][0], VERSION_COMMANDS[s]])).values()];
  return [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH",
    `echo '${SECTION} os-release'; cat /etc/os-release 2>/dev/null`,
    `echo '${SECTION} uname'; uname -r`,
    `echo '${SECTION} systemctl'; systemctl show --property=${UNIT_PROPERTIES} -- ${units.join(" ")} 2>&1`,
    `echo '${SECTION} ip'; ip -j addr show 2>/dev/null`,
    `echo '${SECTION} ntp'; timedatectl show -p NTPSynchronized --value 2>/dev/null`,
    ...binaries.map(([bin, flag]) => `echo '${SECTION} version ${bin}'; command -v ${bin} >/dev/null 2>&1 && ${bin} ${flag} 2>&1 | head -n 3`),
    "exit 0",
  ].join("\n");
}

/** Splits the script's output at its section markers: `os-release` → text, `version dhcpd` → text. */
export function splitFactSections(output: string): Map<string, string> {
  const sections = new Map<string, string>();
  let current: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    if (current !== undefined) sections.set(current, lines.join("\n").trim());
  };
  for (const line of output.split("\n")) {
    if (line.startsWith(`${SECTION} `)) {
      flush();
      current = line.slice(SECTION.length + 1).trim();
      lines = [];
    } else if (current !== undefined) {
      lines.push(line);
    }
  }
  flush();
  return sections;
}

/** PRETTY_NAME of an os-release file (shell-style quoting, as os-release(5) defines it). */
export function parseOsReleasePrettyName(text: string): string | undefined {
  for (const line of text.split("\n")) {
    const m = /^PRETTY_NAME=(.*)$/.exec(line.trim());
    if (!m) continue;
    const raw = m[1]!.trim();
    const quoted = /^(["'])(.*)\1$/.exec(raw);
    const value = quoted ? quoted[2]!.replace(/\\(["\\`$])/g, "$1") : raw;
    return value || undefined;
  }
  return undefined;
}

export interface UnitShow {
  id: string;
  loadState: string;
  activeState: string;
  subState: string;
  unitFileState: string;
}

/**
 * `systemctl show -p … UNIT…` prints one block per unit, in argument order, separated by blank
 * lines. Blocks are kept in order (an alias such as bind9.service reports Id=named.service).
 */
export function parseSystemctlShowBlocks(text: string): UnitShow[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => {
      const props = new Map<string, string>();
      for (const line of block.split("\n")) {
        const eq = line.indexOf("=");
        if (eq > 0) props.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
      }
      return props;
    })
    .filter((p) => p.has("LoadState"))
    .map((p) => ({
      id: p.get("Id") ?? "",
      loadState: p.get("LoadState") ?? "",
      activeState: p.get("ActiveState") ?? "",
      subState: p.get("SubState") ?? "",
      unitFileState: p.get("UnitFileState") ?? "",
    }));
}

/** The version number in a daemon's version banner, e.g. "Keepalived v2.2.7 (01/16,2022)" → "2.2.7". */
export function parseDaemonVersion(service: ServiceName, text: string): string | undefined {
  const first = text.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
  const patterns: Record<ServiceName, RegExp> = {
    keepalived: /^Keepalived v(\S+)/i,
    named: /^BIND (\S+)/,
    "isc-dhcp-server": /^isc-dhcpd-(\S+)/,
    "isc-dhcp-server6": /^isc-dhcpd-(\S+)/,
    "kea-dhcp4": /^(\d+\.\d+\.\d+\S*)/,
    "kea-dhcp6": /^(\d+\.\d+\.\d+\S*)/,
    "kea-ctrl-agent": /^(\d+\.\d+\.\d+\S*)/,
  };
  return patterns[service].exec(first)?.[1];
}

/**
 * One ServiceFact per service. The first candidate unit systemd knows is the service's unit;
 * when none is known the service is not installed and the first (Debian) name is reported.
 */
export function servicesFromUnits(units: readonly UnitShow[], versions: ReadonlyMap<ServiceName, string | undefined>): ServiceFact[] {
  return servicesFromUnitsFor(SERVICE_NAMES, units, versions);
}

/** servicesFromUnits for a subset of services; `units` holds their candidates' blocks in the same order. */
export function servicesFromUnitsFor(
  names: readonly ServiceName[],
  units: readonly UnitShow[],
  versions: ReadonlyMap<ServiceName, string | undefined>,
): ServiceFact[] {
  let i = 0;
  return names.map((name) => {
    const candidates = SERVICE_UNIT_CANDIDATES[name];
    const shown = candidates.map((unit) => ({ unit, show: units[i++] }));
    const found = shown.find((c) => c.show && c.show.loadState !== "" && c.show.loadState !== "not-found");
    const installed = found !== undefined;
    const version = installed ? versions.get(name) : undefined;
    return {
      name,
      unit: found?.unit ?? candidates[0]!,
      installed,
      active: found?.show?.activeState === "active",
      ...(version ? { version } : {}),
    };
  });
}

interface IpJsonInterface {
  ifname?: unknown;
  flags?: unknown;
  addr_info?: unknown;
}

/** `ip -j addr` → interfaces with their addresses in CIDR form; the loopback is left out. */
export function parseIpAddrJson(text: string): InterfaceFact[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const result: InterfaceFact[] = [];
  for (const entry of parsed as IpJsonInterface[]) {
    if (typeof entry?.ifname !== "string") continue;
    if (Array.isArray(entry.flags) && entry.flags.includes("LOOPBACK")) continue;
    const addresses = Array.isArray(entry.addr_info)
      ? (entry.addr_info as { local?: unknown; prefixlen?: unknown }[])
          .filter((a) => typeof a.local === "string" && typeof a.prefixlen === "number")
          .map((a) => `${a.local as string}/${a.prefixlen as number}`)
      : [];
    result.push({ name: entry.ifname, addresses });
  }
  return result;
}

/** `timedatectl show -p NTPSynchronized --value`: yes/no, or nothing where timedated is absent. */
export function parseNtpSynchronized(text: string | undefined): boolean | undefined {
  const v = text?.trim();
  if (v === "yes") return true;
  if (v === "no") return false;
  return undefined;
}

/** Everything but the clock offset, from the batched script's output. */
export function parseHostFactsOutput(output: string): Omit<HostFacts, "clockOffsetSeconds" | "clockOffsetUncertaintySeconds"> {
  const sections = splitFactSections(output);
  const versions = new Map<ServiceName, string | undefined>();
  for (const name of SERVICE_NAMES) {
    const text = sections.get(`version ${VERSION_COMMANDS[name][0]}`);
    versions.set(name, text ? parseDaemonVersion(name, text) : undefined);
  }
  const os = parseOsReleasePrettyName(sections.get("os-release") ?? "");
  const kernel = sections.get("uname")?.split("\n")[0]?.trim() || undefined;
  const ntp = parseNtpSynchronized(sections.get("ntp"));
  return {
    ...(os ? { os } : {}),
    ...(kernel ? { kernel } : {}),
    services: servicesFromUnits(parseSystemctlShowBlocks(sections.get("systemctl") ?? ""), versions),
    interfaces: parseIpAddrJson(sections.get("ip") ?? ""),
    ...(ntp !== undefined ? { ntpSynchronized: ntp } : {}),
  };
}

/** One clock reading: our clock before and after, and the host's `date +%s.%N` in between (all in ms). */
export interface ClockSample {
  localBeforeMs: number;
  remoteMs: number;
  localAfterMs: number;
}

/** `date +%s.%N` → epoch milliseconds, without losing the nanoseconds to float rounding first. */
export function parseDateSecondsNanos(text: string): number | undefined {
  const m = /^(\d+)\.(\d{1,9})\s*$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * 1000 + Number(m[2]!.padEnd(9, "0")) / 1e6;
}

/**
 * The host's clock minus ours, from the sample with the shortest round trip (the NTP rule: the
 * fastest exchange has the least room for asymmetric delay). The host read its clock somewhere in
 * the round trip; assuming the middle leaves an error of at most RTT/2.
 */
export function estimateClockOffset(samples: readonly ClockSample[]): { offsetSeconds: number; uncertaintySeconds: number } | undefined {
  let best: ClockSample | undefined;
  for (const s of samples) if (!best || s.localAfterMs - s.localBeforeMs < best.localAfterMs - best.localBeforeMs) best = s;
  if (!best) return undefined;
  const rttMs = best.localAfterMs - best.localBeforeMs;
  const offsetMs = best.remoteMs - (best.localBeforeMs + rttMs / 2);
  return { offsetSeconds: round(offsetMs / 1000, 6), uncertaintySeconds: round(rttMs / 2000, 6) };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Wall-clock milliseconds with sub-millisecond resolution (Date.now() has whole ms only). */
export function preciseNowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface ObserveHostFactsOptions {
  /** Clock samples to take; the one with the shortest round trip wins. Default 3. */
  clockSamples?: number;
  timeoutMs?: number;
  /** Injectable clock for tests; defaults to preciseNowMs. */
  now?: () => number;
}

/** Takes clock samples one after the other, each its own small command so its round trip is short. */
export async function sampleClock(session: HostSession, count = 3, now: () => number = preciseNowMs, timeoutMs = 10_000): Promise<ClockSample[]> {
  const samples: ClockSample[] = [];
  for (let i = 0; i < count; i++) {
    const localBeforeMs = now();
    const res = await session.run(["date", "+%s.%N"], { timeoutMs });
    const localAfterMs = now();
    const remoteMs = res.code === 0 ? parseDateSecondsNanos(res.stdout) : undefined;
    if (remoteMs !== undefined) samples.push({ localBeforeMs, remoteMs, localAfterMs });
  }
  return samples;
}

/**
 * The DDIHost status facts of one host: one batched command, then the clock samples.
 * Throws what the session throws (unreachable, host key, sudo): the caller turns that into the
 * Reachable condition.
 */
export async function observeHostFacts(session: HostSession, options: ObserveHostFactsOptions = {}): Promise<HostFacts> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const res = await session.run(["sh", "-c", hostFactsScript()], { timeoutMs });
  if (res.code !== 0) {
    throw new Error(`gathering host facts on ${session.hostName} failed (exit ${res.code}): ${res.stderr.trim() || res.stdout.trim()}`);
  }
  const facts = parseHostFactsOutput(res.stdout);
  const clock = estimateClockOffset(await sampleClock(session, options.clockSamples ?? 3, options.now, timeoutMs));
  return {
    ...facts,
    ...(clock ? { clockOffsetSeconds: clock.offsetSeconds, clockOffsetUncertaintySeconds: clock.uncertaintySeconds } : {}),
  };
}

/**
 * The unit state of some services only (for a pass that checks an HAPair's services without
 * the full facts): one `systemctl show` over their candidate units. Versions are not read.
 */
export async function observeServiceStates(session: HostSession, names: readonly ServiceName[]): Promise<ServiceFact[]> {
  if (names.length === 0) return [];
  const units = names.flatMap((n) => SERVICE_UNIT_CANDIDATES[n]);
  const res = await session.run(["systemctl", "show", `--property=${UNIT_PROPERTIES}`, "--", ...units], { timeoutMs: 15_000 });
  if (res.code !== 0) throw new Error(`systemctl show on ${session.hostName} failed (exit ${res.code}): ${res.stderr.trim()}`);
  const blocks = parseSystemctlShowBlocks(res.stdout);
  return servicesFromUnitsFor(names, blocks, new Map());
}
