// One round trip per host per resync: a single SSH exec returns everything the statuses of a
// host and its relationships need (facts, addresses, unit states, keepalived's notify records,
// dhcpd's pool lines, a clock sample) plus the SHA-256 of every file the operator manages there.
// The script is a constant; what varies (paths, units) travels as argv and is only ever quoted
// by the shell ("$2"), never spliced into the script. See docs/adr/0015-per-object-controller.md.
import { createHash } from "node:crypto";
import type { HostSession } from "../exec/host-io.js";
import {
  type HostFacts,
  type UnitShow,
  hostFactsScript,
  parseDateSecondsNanos,
  parseHostFactsOutput,
  parseSystemctlShowBlocks,
  preciseNowMs,
  splitFactSections,
} from "./host-facts.js";

/** What to look at besides the facts. Paths are absolute; units are systemd unit names. */
export interface HostProbeRequest {
  /** Files whose SHA-256 is wanted (the managed files: drift is a hash that differs). */
  hash?: readonly string[];
  /** Files whose whole content is wanted (render inputs, patched files, notify records). */
  read?: readonly string[];
  /** Journal tails: the newest `lines` lines of `unit` that match `pattern` (journalctl --grep), newest first. */
  journals?: readonly { unit: string; lines: number; pattern: string }[];
}

export interface ProbedFile {
  exists: boolean;
  /** Hex SHA-256 of the content (also computed here for files read in full). */
  sha256?: string;
  /** The content, for files asked for with `read`. */
  content?: string;
}

export interface HostProbe {
  host: string;
  /** When the answer arrived (our clock). */
  at: Date;
  facts: HostFacts;
  /** `ip -j addr show` of every interface, for the VIP of each pair on the host. */
  ipJson: string;
  /** `systemctl show` of every DDI unit candidate (keepalived.service, isc-dhcp-server.service, …). */
  units: UnitShow[];
  files: Map<string, ProbedFile>;
  /** Journal tails by unit, newest line first. */
  journals: Map<string, string>;
}

const MARK = "@@ddi-ha-probe";
/** Anything but a plain absolute path is refused before it goes anywhere near a root shell. */
const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]+$/;
const SAFE_UNIT = /^[A-Za-z0-9@._-]+\.service$/;

/**
 * The probe's items after the facts: `hash PATH`, `read PATH`, `journal UNIT LINES PATTERN`, each
 * printed under its own marker with its argument on the marker line's next line. Contents are
 * base64 so that no file can forge a marker.
 */
const ITEMS_SCRIPT = [
  `echo '${MARK} clock-start'; date +%s.%N`,
  'while [ "$#" -gt 0 ]; do',
  '  case "$1" in',
  `    hash) echo '${MARK} hash'; printf '%s\\n' "$2"; if [ -f "$2" ]; then sha256sum < "$2" | cut -d' ' -f1; else echo missing; fi; shift 2 ;;`,
  `    read) echo '${MARK} read'; printf '%s\\n' "$2"; if [ -f "$2" ]; then base64 -w0 < "$2"; echo; else echo missing; fi; shift 2 ;;`,
  `    journal) echo '${MARK} journal'; printf '%s\\n' "$2"; journalctl -u "$2" -o cat -r -n "$3" --grep "$4" --no-pager 2>/dev/null | base64 -w0; echo; shift 4 ;;`,
  `    *) echo "unknown probe item" >&2; exit 2 ;;`,
  "  esac",
  "done",
  `echo '${MARK} clock-end'; date +%s.%N`,
  "exit 0",
].join("\n");

/** The one script: the host-facts script (constants only), then the argv-driven items. */
export function hostProbeScript(): string {
  return `${hostFactsScript().replace(/\nexit 0$/, "")}\n${ITEMS_SCRIPT}`;
}

/** argv for `sh -c SCRIPT ddi-ha-probe ITEMS…`; throws on a path or unit that is not plain. */
export function hostProbeArgv(request: HostProbeRequest): string[] {
  const items: string[] = [];
  const path = (p: string) => {
    if (!SAFE_PATH.test(p) || p.includes("/../")) throw new Error(`refusing to probe "${p}": not a plain absolute path`);
    return p;
  };
  for (const p of new Set(request.hash ?? [])) items.push("hash", path(p));
  for (const p of new Set(request.read ?? [])) items.push("read", path(p));
  for (const j of request.journals ?? []) {
    if (!SAFE_UNIT.test(j.unit)) throw new Error(`refusing to probe unit "${j.unit}"`);
    if (!Number.isInteger(j.lines) || j.lines < 1 || j.lines > 10_000) throw new Error(`bad journal line count ${j.lines}`);
    items.push("journal", j.unit, String(j.lines), j.pattern);
  }
  return ["sh", "-c", hostProbeScript(), "ddi-ha-probe", ...items];
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/** The items' part of the output: marker sections in order (several `hash` sections, so a list). */
function itemSections(output: string): { name: string; lines: string[] }[] {
  const sections: { name: string; lines: string[] }[] = [];
  for (const line of output.split("\n")) {
    if (line.startsWith(`${MARK} `)) sections.push({ name: line.slice(MARK.length + 1).trim(), lines: [] });
    else sections.at(-1)?.lines.push(line);
  }
  return sections;
}

export interface ProbeTiming {
  /** Our clock when the command was sent and when its answer was complete (ms since epoch). */
  sentMs: number;
  receivedMs: number;
}

/**
 * The host's clock minus ours, NTP-style: the host read its clock at the start and at the end of
 * the script; assuming the network delay is the same both ways, the middle of the two readings
 * is the middle of our round trip. The error is at most half of the time on the wire.
 */
export function clockFromProbe(startMs: number | undefined, endMs: number | undefined, timing: ProbeTiming): { offsetSeconds: number; uncertaintySeconds: number } | undefined {
  if (startMs === undefined || endMs === undefined || endMs < startMs) return undefined;
  const offsetMs = (startMs + endMs) / 2 - (timing.sentMs + timing.receivedMs) / 2;
  const wireMs = Math.max(0, timing.receivedMs - timing.sentMs - (endMs - startMs));
  const round6 = (n: number) => Math.round(n * 1e6) / 1e6;
  return { offsetSeconds: round6(offsetMs / 1000), uncertaintySeconds: round6(wireMs / 2000) };
}

/** Parses the probe's whole stdout. Pure. */
export function parseHostProbeOutput(host: string, output: string, timing: ProbeTiming): HostProbe {
  const markAt = output.indexOf(`${MARK} `);
  const factsPart = markAt < 0 ? output : output.slice(0, markAt);
  const facts = parseHostFactsOutput(factsPart);
  const factSections = splitFactSections(factsPart);
  const files = new Map<string, ProbedFile>();
  const journals = new Map<string, string>();
  let clockStart: number | undefined;
  let clockEnd: number | undefined;
  for (const { name, lines } of itemSections(markAt < 0 ? "" : output.slice(markAt))) {
    const [arg = "", value = ""] = lines;
    if (name === "clock-start") clockStart = parseDateSecondsNanos(arg);
    else if (name === "clock-end") clockEnd = parseDateSecondsNanos(arg);
    else if (name === "hash") files.set(arg, value.trim() === "missing" ? { exists: false } : { exists: true, sha256: value.trim() });
    else if (name === "read") {
      if (value.trim() === "missing") files.set(arg, { exists: false });
      else {
        const content = Buffer.from(value.trim(), "base64").toString("utf8");
        files.set(arg, { exists: true, content, sha256: sha256(content) });
      }
    } else if (name === "journal") journals.set(arg, Buffer.from(value.trim(), "base64").toString("utf8"));
  }
  const clock = clockFromProbe(clockStart, clockEnd, timing);
  return {
    host,
    at: new Date(timing.receivedMs),
    facts: { ...facts, ...(clock ? { clockOffsetSeconds: clock.offsetSeconds, clockOffsetUncertaintySeconds: clock.uncertaintySeconds } : {}) },
    ipJson: factSections.get("ip") ?? "[]",
    units: parseSystemctlShowBlocks(factSections.get("systemctl") ?? ""),
    files,
    journals,
  };
}

/**
 * Runs the probe: exactly one exec channel. Throws what the session throws (unreachable, host
 * key, sudo) and when the script fails, so the caller can tell an unreachable host.
 */
export async function probeHost(session: HostSession, request: HostProbeRequest, options: { timeoutMs?: number; now?: () => number } = {}): Promise<HostProbe> {
  const now = options.now ?? preciseNowMs;
  const argv = hostProbeArgv(request);
  const sentMs = now();
  const res = await session.run(argv, { timeoutMs: options.timeoutMs ?? 30_000 });
  const receivedMs = now();
  if (res.code !== 0) throw new Error(`probing ${session.hostName} failed (exit ${res.code}): ${res.stderr.trim() || res.stdout.trim().slice(-300)}`);
  return parseHostProbeOutput(session.hostName, res.stdout, { sentMs, receivedMs });
}

/** Whether a unit (exactly this name) is active in the probe. */
export function probedUnitActive(probe: HostProbe, unit: string): boolean {
  return probe.units.some((u) => u.id === unit && u.activeState === "active");
}

/** The hash a file's content would have on the host, to compare with ProbedFile.sha256. */
export const contentSha256 = sha256;
