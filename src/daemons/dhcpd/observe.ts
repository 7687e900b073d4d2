// Pure readers of what dhcpd tells about failover: the leases file, omshell output and the
// pool-balance journal lines. The observer runs the commands; these only parse their text.
import type { DhcpdOmapiKey } from "./render.js";

/** dhcpd's failover state codes as OMAPI reports them (failover.h, enum failover_state). */
export const FAILOVER_STATE_CODES: Readonly<Record<number, string>> = {
  1: "startup",
  2: "normal",
  3: "communications-interrupted",
  4: "partner-down",
  5: "potential-conflict",
  6: "recover",
  7: "paused",
  8: "shutdown",
  9: "recover-done",
  10: "resolution-interrupted",
  11: "conflict-done",
  254: "recover-wait",
};

export function failoverStateName(code: number): string {
  return FAILOVER_STATE_CODES[code] ?? "unknown";
}

export interface LeasesFailoverState {
  myState: string;
  partnerState: string;
  /** When each side entered its state, as written (`0 2026/11/22 07:53:13` is UTC; `epoch N` with db-time-format local). */
  myStateSince?: Date;
  partnerStateSince?: Date;
  /** The secondary records the primary's MCLT here. */
  mclt?: number;
}

function parseLeaseTime(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const epoch = /^epoch\s+(\d+)/.exec(text);
  if (epoch) return new Date(Number(epoch[1]) * 1000);
  const m = /^\d\s+(\d{4})\/(\d{2})\/(\d{2})\s+(\d{2}):(\d{2}):(\d{2})/.exec(text);
  if (!m) return undefined;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/**
 * The last `failover peer "NAME" state { … }` block of a dhcpd.leases file. dhcpd appends a new
 * block on every change and rewrites the file lazily, so the last block is the newest.
 */
export function parseFailoverStateFromLeases(leasesText: string, peerName: string): LeasesFailoverState | undefined {
  const re = /failover\s+peer\s+"((?:[^"\\]|\\.)*)"\s+state\s*\{([^}]*)\}/g;
  let last: string | undefined;
  for (const m of leasesText.matchAll(re)) if (m[1] === peerName) last = m[2];
  if (last === undefined) return undefined;
  const my = /my\s+state\s+([a-z-]+)(?:\s+at\s+([^;]+))?;/.exec(last);
  const partner = /partner\s+state\s+([a-z-]+)(?:\s+at\s+([^;]+))?;/.exec(last);
  const mclt = /\bmclt\s+(\d+);/.exec(last);
  if (!my || !partner) return undefined;
  return {
    myState: my[1]!,
    partnerState: partner[1]!,
    myStateSince: parseLeaseTime(my[2]?.trim()),
    partnerStateSince: parseLeaseTime(partner[2]?.trim()),
    ...(mclt ? { mclt: Number(mclt[1]) } : {}),
  };
}

/**
 * The omshell script that opens the failover-state object. omshell assumes HMAC-MD5 unless told
 * otherwise, so the algorithm is always written out.
 */
export function omshellFailoverScript(peerName: string, key: DhcpdOmapiKey, port: number): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(peerName)) throw new Error(`failover peer name ${JSON.stringify(peerName)} is not a plain identifier`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(key.name)) throw new Error(`OMAPI key name ${JSON.stringify(key.name)} is not a plain identifier`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key.secret)) throw new Error(`OMAPI key ${key.name}: the secret must be base64`);
  return [
    "server 127.0.0.1",
    `port ${port}`,
    `key-algorithm ${key.algorithm}`,
    `key ${key.name} ${key.secret}`,
    "connect",
    "new failover-state",
    `set name = "${peerName}"`,
    "open",
    "",
  ].join("\n");
}

export type OmshellFailoverState =
  | {
      ok: true;
      localState: string;
      partnerState: string;
      localStateCode: number;
      partnerStateCode: number;
      /** Other integer attributes omshell printed (mclt, max-response-delay, load-balance-max-secs, …). */
      values: Record<string, number>;
    }
  | { ok: false; error: string };

/** omshell prints integers as big-endian hex bytes (`00:00:00:02`); accept plain decimals too. */
function omshellInteger(value: string): number | undefined {
  if (/^[0-9a-f]{2}(:[0-9a-f]{2}){0,7}$/i.test(value)) return value.split(":").reduce((acc, b) => acc * 256 + parseInt(b, 16), 0);
  if (/^\d+$/.test(value)) return Number(value);
  return undefined;
}

/**
 * Reads `local-state` and `partner-state` from omshell's output. omshell exits 0 even when it
 * could not connect, so a missing state is reported with omshell's own complaint.
 */
export function parseOmshellFailoverState(output: string): OmshellFailoverState {
  const values: Record<string, number> = {};
  for (const m of output.matchAll(/^(?:>\s*)*([a-z-]+) = (\S+)\s*$/gm)) {
    const n = omshellInteger(m[2]!);
    if (n !== undefined && !/-(address|hba)$/.test(m[1]!)) values[m[1]!] = n;
  }
  const local = values["local-state"];
  const partner = values["partner-state"];
  if (local === undefined || partner === undefined) {
    const complaints = [
      ...new Set(
        output
          .split("\n")
          .map((l) => l.replace(/^(>\s*)+/, "").trim())
          .filter((l) => /not connected|not found|no open object|can't|invalid|error|denied|unknown/i.test(l)),
      ),
    ];
    const hint = /dhcpctl_connect: not found/.test(output)
      ? " (dhcpd refused the key: check the key name, secret and key-algorithm against omapi-key in dhcpd.conf)"
      : "";
    return {
      ok: false,
      error: `omshell printed no failover state${complaints.length ? `: ${complaints.join("; ")}` : ""}${hint}`,
    };
  }
  return { ok: true, localState: failoverStateName(local), partnerState: failoverStateName(partner), localStateCode: local, partnerStateCode: partner, values };
}

export interface PoolBalance {
  /** dhcpd's internal pool id (a pointer). */
  poolId: string;
  /** The shared network's name: for a plain subnet, the subnet in CIDR form. */
  network: string;
  total: number;
  free: number;
  backup: number;
  lts: number;
  /** "balancing" (before moving leases), "balanced" or "imbalanced" (after; dhcpd logs the latter as an error), "pool" (older dhcpd). */
  phase: "balancing" | "balanced" | "imbalanced" | "pool";
}

/**
 * One pool-balance journal line, e.g. dhcpd 4.4's
 * `balanced pool 55f7984fc050 198.18.0.0/24  total 100  free 50  backup 50  lts 0  max-misbal 15`
 * (also `balancing pool …` and `IMBALANCED pool …`, failover.c dhcp_failover_pool_dobalance)
 * or the older `pool 98e82b8 192.168.200.0/24 total 155 free 38 backup 37 lts 0`.
 * Syslog prefixes before the message are ignored.
 */
export function parsePoolBalanceLog(line: string): PoolBalance | undefined {
  const m = /(?:^|\s|:)(balancing pool|balanced pool|IMBALANCED pool|pool)\s+([0-9a-f]+)\s+(\S*)\s+total\s+(\d+)\s+free\s+(\d+)\s+backup\s+(\d+)\s+lts\s+(-?\d+)/.exec(line);
  if (!m) return undefined;
  return {
    phase: m[1]!.split(" ")[0]!.toLowerCase() as PoolBalance["phase"],
    poolId: m[2]!,
    network: m[3]!,
    total: Number(m[4]),
    free: Number(m[5]),
    backup: Number(m[6]),
    lts: Number(m[7]),
  };
}

/** `failover peer NAME: I move from A to B`, the line every state change writes. */
export function parseFailoverTransitionLog(line: string): { peer: string; from: string; to: string } | undefined {
  const m = /failover peer (\S+): I move from (\S+) to (\S+)/.exec(line);
  return m ? { peer: m[1]!, from: m[2]!, to: m[3]! } : undefined;
}
