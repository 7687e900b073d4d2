// One side of an ISC dhcpd failover relationship: the failover state of both partners through
// dhcpd's OMAPI, and the pool balance dhcpd logs. OMAPI is spoken by the operator's own client
// (src/observe/omapi-client.ts) through an SSH port forward to 127.0.0.1:omapi-port on the host,
// so the port never has to be reachable from the operator and the host needs nothing but sshd.
// When the forward cannot carry the connection (sshd's AllowTcpForwarding no), omshell runs on
// the host instead; when OMAPI fails, the leases file tells the last recorded state.
// The parsing is the dhcpd module's; this file only runs the commands and the forward.
// See docs/adr/0010-omapi-over-ssh-forward.md.
import type { HostSession, PortForward } from "../exec/host-io.js";
import {
  type DhcpdOmapiKey,
  type OmapiConversationResult,
  type OmapiSettableState,
  type PoolBalance,
  omshellFailoverScript,
  parseFailoverStateFromLeases,
  parseOmshellFailoverState,
  parsePoolBalanceLog,
} from "../daemons/dhcpd/index.js";
import { type HostProbe, probedUnitActive } from "./host-probe.js";
import { OmapiNoAnswerError, queryOmapiFailoverState } from "./omapi-client.js";

/** What `journalctl --grep` keeps: every form of dhcpd's pool-balance line (parsePoolBalanceLog). */
export const POOL_LINE_PATTERN = "pool [0-9a-f]+ .*total +[0-9]+ +free +[0-9]+";

/** Debian's and RHEL's default leases files; the first that exists is read. */
export const DHCPD_LEASES_FILES = ["/var/lib/dhcp/dhcpd.leases", "/var/lib/dhcpd/dhcpd.leases"] as const;

export interface DhcpFailoverSideTarget {
  peerName: string;
  omapiPort: number;
  key: DhcpdOmapiKey;
  /** systemd unit whose journal carries the pool lines. Default isc-dhcp-server.service. */
  unit?: string;
  /** How many of the newest pool-balance journal lines to read. Default 50. */
  journalLines?: number;
  /** For the OMAPI connection and each of its answers. Default 10 s. */
  omapiTimeoutMs?: number;
  /**
   * The host's probe of this resync: dhcpd's unit state and pool lines come from it, so the side
   * costs no exec of its own (OMAPI goes through a port forward).
   */
  probe?: HostProbe;
}

/** The journal request the probe makes for a host with a dhcpd failover side. */
export function dhcpdPoolJournal(unit = "isc-dhcp-server.service", lines = 50): { unit: string; lines: number; pattern: string } {
  return { unit, lines, pattern: POOL_LINE_PATTERN };
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
  /**
   * "forward" when the states were read by the operator's own OMAPI client through an SSH port
   * forward to the host's 127.0.0.1. Absent with source "omapi" when omshell on the host read
   * them, the fallback when the forward could not carry the connection (see forwardError).
   */
  omapiVia?: "forward";
  /** Why OMAPI did not answer (a wrong key, dhcpd not running): dhcpd's own refusal when it has one. */
  omapiError?: string;
  /** Set with omapiError when the SSH port forward could not reach dhcpd, so omshell was tried. */
  forwardError?: string;
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

type ForwardedOmapi = { via: "forward"; state: OmapiConversationResult } | { via: "none"; forwardError: string };

/**
 * The failover state through the operator's OMAPI client and a port forward to 127.0.0.1 on the
 * host (dhcpd's OMAPI listens there; the forward's far end connects from the host itself).
 * `via: "none"` when no OMAPI conversation took place: the forward did not open, or closed before
 * dhcpd spoke (how a refused forward or a closed port looks from the local end).
 */
async function omapiThroughForward(session: HostSession, target: DhcpFailoverSideTarget, setLocalState?: OmapiSettableState): Promise<ForwardedOmapi> {
  let forward: PortForward | undefined;
  try {
    forward = await session.forward("127.0.0.1", target.omapiPort);
  } catch (err) {
    return { via: "none", forwardError: `no SSH port forward to 127.0.0.1:${target.omapiPort} on ${session.hostName}: ${(err as Error).message}` };
  }
  try {
    const state = await queryOmapiFailoverState({
      port: forward.localPort,
      peerName: target.peerName,
      key: target.key,
      timeoutMs: target.omapiTimeoutMs ?? 10_000,
      ...(setLocalState ? { setLocalState } : {}),
    });
    return { via: "forward", state };
  } catch (err) {
    if (err instanceof OmapiNoAnswerError) {
      return {
        via: "none",
        forwardError: `the SSH port forward to 127.0.0.1:${target.omapiPort} on ${session.hostName} closed before dhcpd answered (sshd refuses forwarding, e.g. AllowTcpForwarding no, or nothing listens on the port): ${err.message}`,
      };
    }
    return { via: "forward", state: { ok: false, error: (err as Error).message } };
  } finally {
    await forward.close().catch(() => undefined);
  }
}

/**
 * Both partners' states as this side sees them, and its pool balance. In parallel: OMAPI through
 * a port forward, `systemctl is-active`, and the journal tail. omshell on the host runs only when
 * the forward could not reach dhcpd; the leases file is read only when OMAPI did not answer.
 */
export async function observeDhcpFailoverSide(session: HostSession, target: DhcpFailoverSideTarget): Promise<DhcpFailoverSideObservation> {
  const unit = target.unit ?? "isc-dhcp-server.service";
  const base = { host: session.hostName };
  try {
    // Validates the peer and key names before anything runs (they go on omshell's stdin).
    const script = omshellFailoverScript(target.peerName, target.key, target.omapiPort);
    const probe = target.probe;
    const [forwarded, active, journal] = await Promise.all([
      omapiThroughForward(session, target),
      probe
        ? { stdout: probedUnitActive(probe, unit) ? "active" : "inactive" }
        : session.run(["systemctl", "is-active", "--", unit], { timeoutMs: 15_000 }),
      // Only the pool lines: on a busy server a plain tail is all DHCPDISCOVER/OFFER, and the
      // balance would go stale. Newest first (-r): bookworm's journalctl 252 prints `-n --grep`
      // newest first anyway, newer ones oldest first. (It exits 1 when nothing matches: no pools.)
      probe
        ? { stdout: probe.journals.get(unit) ?? "" }
        : session.run(["journalctl", "-u", unit, "-o", "cat", "-r", "-n", String(target.journalLines ?? 50), "--grep", POOL_LINE_PATTERN, "--no-pager"], { timeoutMs: 20_000 }),
    ]);
    const dhcpdActive = active.stdout.trim() === "active";
    const pools = latestPoolBalances(journal.stdout.split("\n").reverse().join("\n"));
    let omapiError: string;
    let forwardError: string | undefined;
    if (forwarded.via === "forward") {
      const state = forwarded.state;
      if (state.ok) {
        return { ...base, reachable: true, source: "omapi", omapiVia: "forward", localState: state.localState, partnerState: state.partnerState, dhcpdActive, pools };
      }
      // dhcpd answered and refused (or broke the protocol): omshell would hear the same.
      omapiError = state.error;
    } else {
      forwardError = forwarded.forwardError;
      const omshell = await session.run(["omshell"], { stdin: script, timeoutMs: 20_000 });
      const state = parseOmshellFailoverState(`${omshell.stdout}\n${omshell.stderr}`);
      if (state.ok) {
        return { ...base, reachable: true, source: "omapi", localState: state.localState, partnerState: state.partnerState, dhcpdActive, pools };
      }
      omapiError = omshell.code === 127 ? `omshell is not installed on ${session.hostName} (Debian ships it in isc-dhcp-server)` : state.error;
    }
    const failure = { omapiError, ...(forwardError ? { forwardError } : {}) };
    for (const path of DHCPD_LEASES_FILES) {
      const leases = await session.readFile(path);
      if (leases === undefined) continue;
      const fromLeases = parseFailoverStateFromLeases(leases, target.peerName);
      if (fromLeases) {
        return { ...base, reachable: true, source: "leases", localState: fromLeases.myState, partnerState: fromLeases.partnerState, ...failure, dhcpdActive, pools };
      }
    }
    return { ...base, reachable: true, source: "none", ...failure, dhcpdActive, pools };
  } catch (err) {
    return { ...base, reachable: false, error: (err as Error).message, source: "none", dhcpdActive: false, pools: [] };
  }
}

/**
 * Sets this side's own failover state through OMAPI (the operator's client over the SSH port
 * forward; no omshell fallback: an action, unlike a reading, is not retried another way behind
 * the user's back). Resolves with the state read just before (`set` when dhcpd took it), or
 * with why not. Never throws.
 */
export async function setDhcpFailoverLocalState(session: HostSession, target: DhcpFailoverSideTarget, state: OmapiSettableState): Promise<OmapiConversationResult> {
  const forwarded = await omapiThroughForward(session, target, state);
  return forwarded.via === "forward" ? forwarded.state : { ok: false, error: forwarded.forwardError };
}
