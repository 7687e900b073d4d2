// What a drill does on a host: fixed scripts, every value passed as argv ("$1", "$2") and checked
// again by the script itself. Each break arms a host-side restore first (a transient systemd
// timer) and does nothing when arming fails, so a controller that dies mid-drill never leaves a
// host broken for longer than the timer. See ADR 0031.
import type { DrillMethod } from "../api/index.js";
import type { CommandStream, HostSession } from "../exec/host-io.js";
import type { DrillObservation } from "./machine.js";

/** The host-side restore timer of a run: ddi-ha-drill-<runID>.timer. */
export const RUN_ID_RE = /^[a-z0-9]{1,32}$/;
export const restoreUnitOf = (runID: string): string => {
  if (!RUN_ID_RE.test(runID)) throw new Error(`drill run ID ${JSON.stringify(runID)} is not 1-32 lower-case letters and digits`);
  return `ddi-ha-drill-${runID}`;
};

/** The iptables chain a CutHostNetwork run hangs on INPUT and OUTPUT of the VIP's interface. */
export const CUT_CHAIN = "DDIHA-DRILL";

const ARG_CHECKS = `
case "$iface" in ''|-*|*[!A-Za-z0-9_.-]*) echo "bad interface name" >&2; exit 2;; esac
`;

/**
 * Observations in a loop, one block every `interval` seconds until `max` seconds have passed (so
 * that a lost controller leaves nothing running): `vip=yes|no` and `keepalived=<systemctl
 * is-active>`, or with a name only `dns=yes|no` (a loop of its own: a query that gets no answer
 * takes its whole second, which must not slow the VIP's rounds), then `obs=end`. A stream, not an exec per round: it holds no command
 * slot (the controller's own passes do not delay it) and each block arrives one trip after it was
 * seen. The DNS query is one UDP datagram over bash's /dev/udp (dig is not on every host:
 * bind9-dnsutils is a package of its own), answered when a reply with our ID, NOERROR and an
 * answer comes within 1 s. Args: interface, VIP (IPv4, no prefix), DNS name or "", interval, max.
 */
export const OBSERVE_SCRIPT = `set -u
iface=$1 vip=$2 name=$3 interval=$4 max=$5
${ARG_CHECKS}
case "$vip" in ''|*[!0-9.]*) echo "bad VIP" >&2; exit 2;; esac
case "$name" in *[!A-Za-z0-9.-]*) echo "bad DNS name" >&2; exit 2;; esac
case "$interval$max" in *[!0-9.]*) echo "bad interval" >&2; exit 2;; esac
answers() {
  local id=$((RANDOM % 65536)) q l reply flags labels
  q=$(printf '\\\\x%02x\\\\x%02x\\\\x01\\\\x00\\\\x00\\\\x01\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00' $((id >> 8)) $((id & 255)))
  IFS=. read -ra labels <<<"\${name%.}"
  for l in "\${labels[@]}"; do q+=$(printf '\\\\x%02x' "\${#l}")$l; done
  q+='\\x00\\x00\\x01\\x00\\x01'
  exec 3<>"/dev/udp/$vip/53" || return 1
  printf '%b' "$q" >&3
  reply=$(timeout 1 od -An -tx1 -N 12 <&3 2>/dev/null | tr -d ' \\n')
  exec 3<&-
  [ "\${#reply}" = 24 ] && [ "\${reply:0:4}" = "$(printf %04x "$id")" ] || return 1
  flags=$((16#\${reply:4:4}))
  (( (flags & 0x8000) && (flags & 0xf) == 0 && 16#\${reply:12:4} > 0 ))
}
while [ "$SECONDS" -lt "\${max%.*}" ]; do
  if [ -n "$name" ]; then
    if answers; then echo dns=yes; else echo dns=no; fi
  else
    if ip -o -4 addr show dev "$iface" 2>/dev/null | grep -qF " $vip/"; then echo vip=yes; else echo vip=no; fi
    echo "keepalived=$(systemctl is-active keepalived.service 2>/dev/null)"
  fi
  echo obs=end
  sleep "$interval"
done
`;

/** Arms the restore timer, then stops keepalived. Args: unit, seconds. */
const STOP_DAEMON_SCRIPT = `set -eu
systemd-run --quiet --unit="$1" --on-active="$2" --timer-property=AccuracySec=1s /bin/systemctl start keepalived.service
systemctl stop keepalived.service
`;
/** Starts keepalived, then disarms the timer. Args: unit. */
const START_DAEMON_SCRIPT = `set -eu
systemctl start keepalived.service
systemctl stop "$1.timer" 2>/dev/null || true
`;

/** Undoes a cut, whatever part of it is in place; fails only if the chain is still there. Args: interface. */
export const UNCUT_SCRIPT = `iface=$1
while iptables -w -D INPUT -i "$iface" -j ${CUT_CHAIN} 2>/dev/null; do :; done
while iptables -w -D OUTPUT -o "$iface" -j ${CUT_CHAIN} 2>/dev/null; do :; done
iptables -w -F ${CUT_CHAIN} 2>/dev/null
iptables -w -X ${CUT_CHAIN} 2>/dev/null
! iptables -w -n -L ${CUT_CHAIN} >/dev/null 2>&1
`;

/**
 * Arms the restore timer (running UNCUT_SCRIPT), then drops every IPv4 packet in and out of the
 * interface except TCP to and from sshd's own ports, so that the operator keeps its session.
 * Args: unit, seconds, interface, UNCUT_SCRIPT.
 */
const CUT_SCRIPT = `set -eu
unit=$1 secs=$2 iface=$3 uncut=$4
${ARG_CHECKS}
if iptables -w -n -L ${CUT_CHAIN} >/dev/null 2>&1; then echo "chain ${CUT_CHAIN} exists: another drill is cutting this host" >&2; exit 3; fi
ports=$(sshd -T 2>/dev/null | awk '$1 == "port" { print $2 }' | sort -u | paste -sd, -)
case "$ports" in ''|*[!0-9,]*) ports=22;; esac
systemd-run --quiet --unit="$unit" --on-active="$secs" --timer-property=AccuracySec=1s /bin/sh -c "$uncut" sh "$iface"
iptables -w -N ${CUT_CHAIN}
iptables -w -A ${CUT_CHAIN} -p tcp -m multiport --dports "$ports" -j RETURN
iptables -w -A ${CUT_CHAIN} -p tcp -m multiport --sports "$ports" -j RETURN
iptables -w -A ${CUT_CHAIN} -j DROP
iptables -w -I INPUT 1 -i "$iface" -j ${CUT_CHAIN}
iptables -w -I OUTPUT 1 -o "$iface" -j ${CUT_CHAIN}
`;
/** Args: unit, interface, UNCUT_SCRIPT. */
const RESTORE_CUT_SCRIPT = `set -eu
/bin/sh -c "$3" sh "$2"
systemctl stop "$1.timer" 2>/dev/null || true
`;

export interface BreakTarget {
  method: DrillMethod;
  runID: string;
  /** The VIP's interface on the broken host. */
  interface: string;
  /** When the host undoes the break by itself. */
  safetySeconds: number;
}

/** The argv that breaks the host. */
export function breakArgv(t: BreakTarget): string[] {
  const unit = restoreUnitOf(t.runID);
  const secs = `${Math.ceil(t.safetySeconds)}s`;
  switch (t.method) {
    case "StopPrimaryDaemon":
      return ["sh", "-c", STOP_DAEMON_SCRIPT, "sh", unit, secs];
    case "CutHostNetwork":
      return ["sh", "-c", CUT_SCRIPT, "sh", unit, secs, t.interface, UNCUT_SCRIPT];
    default:
      throw new Error(`method ${t.method} is not implemented for an HAPair`);
  }
}

/** The argv that undoes the break (idempotent: also after a restart, or when the break half failed). */
export function restoreArgv(t: Omit<BreakTarget, "safetySeconds">): string[] {
  const unit = restoreUnitOf(t.runID);
  switch (t.method) {
    case "StopPrimaryDaemon":
      return ["sh", "-c", START_DAEMON_SCRIPT, "sh", unit];
    case "CutHostNetwork":
      return ["sh", "-c", RESTORE_CUT_SCRIPT, "sh", unit, t.interface, UNCUT_SCRIPT];
    default:
      throw new Error(`method ${t.method} is not implemented for an HAPair`);
  }
}

export function observeArgv(iface: string, vip: string, dnsName: string | undefined, intervalMs: number, maxSeconds: number): string[] {
  return ["bash", "-c", OBSERVE_SCRIPT, "bash", iface, vip, dnsName ?? "", (intervalMs / 1000).toFixed(3), String(Math.ceil(maxSeconds))];
}

export interface HostView {
  reachable: boolean;
  vip: boolean;
  keepalivedActive: boolean;
  dns?: boolean | undefined;
}

export function parseObserve(lines: readonly string[]): Omit<HostView, "reachable"> {
  const kv = new Map(lines.flatMap((l) => (/^(\w+)=(.*)$/.test(l) ? [l.split("=", 2) as [string, string]] : [])));
  return { vip: kv.get("vip") === "yes", keepalivedActive: kv.get("keepalived") === "active", ...(kv.has("dns") ? { dns: kv.get("dns") === "yes" } : {}) };
}

const UNREACHABLE: HostView = { reachable: false, vip: false, keepalivedActive: false };

/**
 * One host's observation stream. `view(now)` is its latest block, or unreachable when the stream
 * ended or has said nothing for `staleMs` (a host whose SSH session is gone).
 */
export class HostObserver {
  private latest: { view: HostView; atMs: number; sinceMs: number } | undefined;
  private block: string[] = [];
  private ended = false;
  private waiters: (() => void)[] = [];
  private stream: CommandStream | undefined;
  private readonly startedMs: number;

  private constructor(
    private readonly now: () => number,
    private readonly staleMs: number,
  ) {
    this.startedMs = now();
  }

  static async start(
    session: Pick<HostSession, "stream">,
    args: { iface: string; vip: string; dnsName: string | undefined; intervalMs: number; maxSeconds: number },
    now: () => number,
    staleMs = 5_000,
  ): Promise<HostObserver> {
    const o = new HostObserver(now, staleMs);
    try {
      o.stream = await session.stream(observeArgv(args.iface, args.vip, args.dnsName, args.intervalMs, args.maxSeconds), (line) => o.onLine(line));
      void o.stream.done.then(() => o.end());
    } catch {
      o.end();
    }
    return o;
  }

  private onLine(line: string): void {
    if (line !== "obs=end") {
      this.block.push(line);
      return;
    }
    // The block was begun after the previous one arrived (or the stream started).
    this.latest = { view: { reachable: true, ...parseObserve(this.block) }, atMs: this.now(), sinceMs: this.latest?.atMs ?? this.startedMs };
    this.block = [];
    this.wake();
  }

  private end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves at the next block (or the stream's end), or after `timeoutMs`. */
  next(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The latest block and when it arrived; undefined before the first. */
  view(nowMs: number): { view: HostView; atMs: number; sinceMs: number } | undefined {
    if (this.ended || nowMs - (this.latest?.atMs ?? this.startedMs) > this.staleMs) return { view: UNREACHABLE, atMs: nowMs, sinceMs: nowMs };
    return this.latest;
  }

  async stop(): Promise<void> {
    await this.stream?.stop().catch(() => undefined);
  }
}

/** Both hosts' views as the machine reads them; the DNS query is the peer's. */
export function combine(active: HostView, peer: HostView, dns: HostView | undefined, dnsSinceMs?: number): DrillObservation {
  return {
    activeReachable: active.reachable,
    peerReachable: peer.reachable,
    vipOnActive: active.vip,
    vipOnPeer: peer.vip,
    keepalivedActiveOnActive: active.keepalivedActive,
    keepalivedActiveOnPeer: peer.keepalivedActive,
    ...(dns ? { serviceAnswers: dns.reachable && dns.dns === true, serviceCheckedSinceMs: dnsSinceMs } : {}),
  };
}
