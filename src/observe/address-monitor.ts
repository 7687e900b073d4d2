// Host events as they happen, on one long-lived stream per host. The kernel tells us about every
// address added or removed (`ip -o monitor address`), and the journal about every state change of
// a DDI unit and every VRRP transition keepalived logs, so a failover, a stopped service or a
// backup going to FAULT is seen within the stream's latency (well under a second) instead of at
// the next resync.
import type { CommandStream, HostSession } from "../exec/host-io.js";
import { type BackoffPolicy, backoffDelay } from "../ssh/backoff.js";
import { SERVICE_UNIT_CANDIDATES } from "./host-facts.js";

export interface AddressChange {
  type: "add" | "delete";
  ifindex: number;
  interface: string;
  family: "inet" | "inet6";
  /** The address in CIDR form, as `ip` prints it: "198.18.0.200/24". */
  address: string;
}

export type AddressEvent =
  | (AddressChange & { host: string; at: Date })
  /** The monitor runs (again): changes made while it was down were missed, so re-read the state now. */
  | { type: "watching"; host: string; at: Date; restarts: number }
  /** The monitor ended; it is restarted after `retryInMs`. */
  | { type: "interrupted"; host: string; at: Date; reason: string; retryInMs: number };

/** An address change, or a journal line about a DDI unit (systemd's state changes, keepalived's VRRP transitions). */
export type HostEvent = AddressEvent | { type: "unit"; host: string; at: Date; message: string };

/**
 * One line of `ip -o monitor address`, e.g.
 * `91: eth0    inet 198.18.137.200/24 scope global secondary eth0\       valid_lft forever …`
 * or the same prefixed with `Deleted `. Optional `[ADDR]` and timestamp prefixes are skipped.
 */
export function parseAddressMonitorLine(line: string): AddressChange | undefined {
  const m = /^(?:Timestamp:[^\n]*?\s{2,})?(?:\[ADDR\]\s*)?(Deleted\s+)?(\d+):\s+(\S+?)\s+(inet6?)\s+(\S+)(\s+peer\s+(\S+))?/.exec(line.trim());
  if (!m) return undefined;
  // With a point-to-point peer, ip prints `inet LOCAL peer PEER/LEN`: the prefix belongs to the peer.
  const local = m[5]!;
  const prefix = m[7]?.split("/")[1];
  const address = local.includes("/") || prefix === undefined ? local : `${local}/${prefix}`;
  return {
    type: m[1] ? "delete" : "add",
    ifindex: Number(m[2]),
    interface: m[3]!.replace(/@.*$/, ""),
    family: m[4] as "inet" | "inet6",
    address,
  };
}

/** Same address, ignoring the prefix length and IPv6 spelling differences in case. */
export function sameAddress(a: string, b: string): boolean {
  return a.split("/")[0]!.toLowerCase() === b.split("/")[0]!.toLowerCase();
}

export interface WatchAddressesOptions {
  /** Restart spacing after the monitor ends; the failure count resets once a monitor ran 30 s. Default 0.5 s doubling to 15 s. */
  backoff?: BackoffPolicy;
  /** For tests: the random source of the backoff jitter. */
  random?: () => number;
}

export interface AddressWatch {
  /** Stops the monitor for good (no restart). */
  stop(): Promise<void>;
  /** How many times the monitor was started again after it ended. */
  readonly restarts: number;
}

const MONITOR_ARGV = ["ip", "-o", "monitor", "address"] as const;
const HEALTHY_RUN_MS = 30_000;
const STOP_WAIT_MS = 5_000;

/** Every unit the probe reads (host-facts' candidates), as journal matches for systemd's own lines about it. */
const UNIT_MATCHES = Object.values(SERVICE_UNIT_CANDIDATES)
  .flat()
  .map((u) => `UNIT=${u}`)
  .join(" ");

/**
 * The host-events stream: a constant script, no argv. Each source's lines get a one-letter prefix
 * (A: ip monitor, J: journal). `-n 0` starts the journal at its end: only what happens from now.
 * Journal matches: PID 1's lines about a DDI unit (Started, Stopped, Failed, Reloaded...), or
 * keepalived's VRRP process (Entering MASTER/BACKUP/FAULT STATE, track script changes); never the
 * daemons' own chatter (a busy dhcpd logs every lease). Stopping the stream signals our shell,
 * which takes its process group (the monitor, journalctl, the seds) with it.
 */
export const HOST_EVENTS_SCRIPT = [
  "trap 'trap - TERM HUP INT; kill 0' TERM HUP INT",
  "ip -o monitor address | sed -u 's/^/A /' &",
  `journalctl -f -n 0 -q -o cat _PID=1 ${UNIT_MATCHES} + SYSLOG_IDENTIFIER=Keepalived_vrrp 2>/dev/null | sed -u 's/^/J /' &`,
  "wait",
].join("\n");

const HOST_EVENTS_ARGV = ["sh", "-c", HOST_EVENTS_SCRIPT, "ddi-ha-events"] as const;

/** One line of the host-events stream as an event (undefined: not one we act on). Pure. */
export function parseHostEventLine(line: string): (AddressChange | { type: "unit"; message: string }) | undefined {
  if (line.startsWith("A ")) return parseAddressMonitorLine(line.slice(2));
  if (line.startsWith("J ")) {
    const message = line.slice(2).trim();
    return message ? { type: "unit", message } : undefined;
  }
  return undefined;
}

/**
 * Streams address changes of one host to `onEvent` until stopped, restarting the monitor with
 * backoff whenever it ends (connection lost, host rebooted, `ip` killed). Every (re)start is
 * announced with a `watching` event so the caller can re-read what it may have missed.
 */
export function watchAddresses(session: HostSession, onEvent: (event: AddressEvent) => void, options: WatchAddressesOptions = {}): AddressWatch {
  return watchStream(session, MONITOR_ARGV, "ip monitor", parseAddressMonitorLine, onEvent as (event: HostEvent) => void, options);
}

/**
 * watchAddresses plus the journal's lines about the DDI units, on the same one stream per host:
 * what the controller feeds its queue with (issue 9: address changes, keepalived's state and
 * tracked service state changes).
 */
export function watchHostEvents(session: HostSession, onEvent: (event: HostEvent) => void, options: WatchAddressesOptions = {}): AddressWatch {
  return watchStream(session, HOST_EVENTS_ARGV, "host events stream", parseHostEventLine, onEvent, options);
}

function watchStream(
  session: HostSession,
  argv: readonly string[],
  what: string,
  parse: (line: string) => (AddressChange | { type: "unit"; message: string }) | undefined,
  onEvent: (event: HostEvent) => void,
  options: WatchAddressesOptions,
): AddressWatch {
  const policy = options.backoff ?? { baseMs: 500, maxMs: 15_000 };
  let stopped = false;
  let current: CommandStream | undefined;
  let restarts = 0;
  let failures = 0;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const host = session.hostName;

  const emit = (event: HostEvent) => {
    try {
      onEvent(event);
    } catch {
      // The caller's handler must not stop the watch; it logs its own errors.
    }
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });

  const loop = async () => {
    for (let first = true; !stopped; first = false) {
      if (!first) restarts++;
      const startedAt = Date.now();
      let reason: string;
      try {
        current = await session.stream(argv, (line) => {
          const change = parse(line);
          if (change) emit({ ...change, host, at: new Date() });
        });
        if (stopped) {
          await current.stop();
          break;
        }
        emit({ type: "watching", host, at: new Date(), restarts });
        const result = await current.done;
        reason = `${what} ended with exit ${result.code}${result.stderr.trim() ? `: ${result.stderr.trim()}` : ""}`;
      } catch (err) {
        reason = `${what} could not start: ${(err as Error).message}`;
      }
      current = undefined;
      if (stopped) break;
      failures = Date.now() - startedAt >= HEALTHY_RUN_MS ? 1 : failures + 1;
      const retryInMs = backoffDelay(failures, policy, options.random);
      emit({ type: "interrupted", host, at: new Date(), reason, retryInMs });
      await sleep(retryInMs);
    }
  };
  const running = loop();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
      // A channel on a connection that died silently may never report its close: give up
      // waiting after a while rather than hang the caller's shutdown.
      let giveUp: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([current?.stop().catch(() => undefined), running]),
        new Promise<void>((resolve) => {
          giveUp = setTimeout(resolve, STOP_WAIT_MS);
        }),
      ]);
      clearTimeout(giveUp);
    },
    get restarts() {
      return restarts;
    },
  };
}
