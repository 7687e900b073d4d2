// One side of an ISC dhcpd failover relationship, read on the host itself: the failover state of
// both partners through OMAPI (omshell against 127.0.0.1, so the OMAPI port never has to be
// reachable from the operator), and the pool balance dhcpd logs. The parsing is the dhcpd
// module's; this file only runs the commands.
import type { HostSession } from "../exec/host-io.js";
import {
  type DhcpdOmapiKey,
  type PoolBalance,
  omshellFailoverScript,
  parseFailoverStateFromLeases,
  parseOmshellFailoverState,
  parsePoolBalanceLog,
} from "../daemons/dhcpd/index.js";

/** Debian's and RHEL's default leases files; the first that exists is read. */
export const DHCPD_LEASES_FILES = ["/var/lib/dhcp/dhcpd.leases", "/var/lib/dhcpd/dhcpd.leases"] as const;

export interface DhcpFailoverSideTarget {
  peerName: string;
  omapiPort: number;
  key: DhcpdOmapiKey;
  /** systemd unit whose journal carries the pool lines. Default isc-dhcp-server.service. */
  unit?: string;
  /** How many journal lines to scan for pool balance. Default 200. */
  journalLines?: number;
}

export interface PoolBalanceFact {
  /** The subnet (dhcpd's shared-network name, the subnet in CIDR form for a plain subnet). */
  subnet: string;
  total: number;
  free: number;
  backup: number;
  /** Leases to send to the partner to balance (non-zero while dhcpd is rebalancing). */
  lts: number;
}

export interface DhcpFailoverSideObservation {
  host: string;
  reachable: boolean;
  error?: string;
  /** Where the states came from: OMAPI (live), the leases file (lazy, after an OMAPI failure) or nowhere. */
  source: "omapi" | "leases" | "none";
  localState?: string;
  partnerState?: string;
  /** omshell's complaint when OMAPI did not answer (a wrong key, dhcpd not running). */
  omapiError?: string;
  dhcpdActive: boolean;
  pools: PoolBalanceFact[];
}

/**
 * The newest balance figures per subnet from dhcpd's log lines, oldest line first. dhcpd logs
 * `balancing pool …` before it moves leases and `balanced pool …` right after, so the last line
 * is the result of the last round (or, mid-round, its starting point).
 */
export function latestPoolBalances(logText: string): PoolBalanceFact[] {
  const latest = new Map<string, PoolBalance>();
  for (const line of logText.split("\n")) {
    const pool = parsePoolBalanceLog(line);
    if (!pool) continue;
    latest.set(pool.network, pool);
  }
  return [...latest.values()].map((p) => ({ subnet: p.network, total: p.total, free: p.free, backup: p.backup, lts: p.lts }));
}

/**
 * Both partners' states as this side sees them, and its pool balance. Three argv commands in
 * parallel: omshell (script on stdin), `systemctl is-active`, and the journal tail. The leases
 * file is read only when OMAPI did not answer.
 */
export async function observeDhcpFailoverSide(session: HostSession, target: DhcpFailoverSideTarget): Promise<DhcpFailoverSideObservation> {
  const unit = target.unit ?? "isc-dhcp-server.service";
  const base = { host: session.hostName };
  try {
    const script = omshellFailoverScript(target.peerName, target.key, target.omapiPort);
    const [omshell, active, journal] = await Promise.all([
      session.run(["omshell"], { stdin: script, timeoutMs: 20_000 }),
      session.run(["systemctl", "is-active", "--", unit], { timeoutMs: 15_000 }),
      session.run(["journalctl", "-u", unit, "-o", "cat", "-n", String(target.journalLines ?? 200), "--no-pager"], { timeoutMs: 20_000 }),
    ]);
    const dhcpdActive = active.stdout.trim() === "active";
    const pools = latestPoolBalances(journal.stdout);
    const state = parseOmshellFailoverState(`${omshell.stdout}\n${omshell.stderr}`);
    if (state.ok) {
      return { ...base, reachable: true, source: "omapi", localState: state.localState, partnerState: state.partnerState, dhcpdActive, pools };
    }
    const omapiError =
      omshell.code === 127 ? `omshell is not installed on ${session.hostName} (Debian ships it in isc-dhcp-server)` : state.error;
    for (const path of DHCPD_LEASES_FILES) {
      const leases = await session.readFile(path);
      if (leases === undefined) continue;
      const fromLeases = parseFailoverStateFromLeases(leases, target.peerName);
      if (fromLeases) {
        return { ...base, reachable: true, source: "leases", localState: fromLeases.myState, partnerState: fromLeases.partnerState, omapiError, dhcpdActive, pools };
      }
    }
    return { ...base, reachable: true, source: "none", omapiError, dhcpdActive, pools };
  } catch (err) {
    return { ...base, reachable: false, error: (err as Error).message, source: "none", dhcpdActive: false, pools: [] };
  }
}
