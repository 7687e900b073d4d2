// Two applies must never write one host at the same time. Inside one process a keyed mutex
// orders them; across processes (a second operator replica, `ddi-ha apply` from a laptop) a
// flock(1) on the host does, held by a long-running command on its own SSH channel for the
// whole apply. The kernel drops the lock when that command dies, so a crashed operator or a cut
// connection never leaves a stale lock behind. See docs/adr/0008-safe-apply-protocol.md.
import type { CommandStream, HostSession } from "../exec/host-io.js";

/** Serialises async work per key, in arrival order. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Resolves with a release function once every earlier holder of `key` released. */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** Whether anyone holds or waits for `key`. */
  isBusy(key: string): boolean {
    return this.tails.has(key);
  }
}

// /run/lock exists on every systemd host, is a tmpfs (no lock file survives a reboot) and is root's.
export const HOST_LOCK_PATH = "/run/lock/ddi-ha-apply.lock";
const ACQUIRED = "ddi-ha-lock-acquired";
/** flock's exit code when -w runs out (EX_TEMPFAIL), distinct from its other errors. */
const LOCK_BUSY_EXIT = 75;

// Constant script; holder and path arrive as $1 and $2. It records the holder for whoever waits,
// announces the lock with its process group ($PPID: timeout(1) leads its own group), then writes
// a line every half second: once the SSH connection is gone a write fails (SIGPIPE) and the
// group, and with it the lock, goes away. release() ends the group with one `kill`, because
// sshd neither delivers signals to a root session nor drops the pipe promptly when the channel
// closes (measured: 5 s).
const HOLD_SCRIPT = `printf '%s\\n' "$1" >"$2"; echo ${ACQUIRED} $PPID; while sleep 0.5; do echo held || exit 0; done`;

export class HostLockError extends Error {}

export interface HostLock {
  /** True once the holding command ended before release (connection cut, max hold reached). */
  readonly lost: boolean;
  release(): Promise<void>;
}

export interface HostLockOptions {
  /** How long to wait for another holder. */
  waitMs: number;
  /** After this the lock is dropped on the host whatever happens, so a wedged holder cannot block forever. */
  maxHoldMs: number;
  /** Who holds the lock, shown to anyone who waits (one line). */
  holder: string;
  /** Lock file (default HOST_LOCK_PATH; tests use their own). */
  path?: string;
}

export function hostLockArgv(options: HostLockOptions): string[] {
  const holder = options.holder.replace(/[\r\n]+/g, " ");
  const path = options.path ?? HOST_LOCK_PATH;
  return [
    "flock",
    "-w",
    String(Math.max(1, Math.ceil(options.waitMs / 1000))),
    "-E",
    String(LOCK_BUSY_EXIT),
    path,
    "timeout",
    String(Math.max(1, Math.ceil(options.maxHoldMs / 1000))),
    "sh",
    "-c",
    HOLD_SCRIPT,
    "ddi-ha-lock",
    holder,
    path,
  ];
}

/**
 * SIGTERM to a process group. `-TERM`, not `-s TERM`: procps-ng's kill(1) (Debian bookworm) reads
 * `kill -s TERM -- -59` as a usage error for small group ids, which are what a host with few
 * processes (a container) hands out; the lock then stayed held until the stream's 10 s of bounds.
 */
export function groupKillArgv(group: number): string[] {
  return ["kill", "-TERM", "--", `-${group}`];
}

export async function acquireHostLock(session: HostSession, options: HostLockOptions): Promise<HostLock> {
  let resolveAcquired!: () => void;
  const acquired = new Promise<void>((resolve) => (resolveAcquired = resolve));
  let group: number | undefined;
  const stream: CommandStream = await session.stream(hostLockArgv(options), (line) => {
    const m = new RegExp(`^${ACQUIRED} (\\d+)$`).exec(line.trim());
    if (!m) return;
    group = Number(m[1]);
    resolveAcquired();
  });
  let releasing = false;
  let lost = false;
  const ended = stream.done.then(
    (result) => {
      if (!releasing) lost = true;
      return result;
    },
    (err: unknown) => {
      if (!releasing) lost = true;
      return { code: -1, stdout: "", stderr: String(err) };
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    acquired.then(() => "acquired" as const),
    ended.then((r) => r),
    new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), options.waitMs + 15_000))),
  ]);
  clearTimeout(timer);
  if (outcome === "acquired") {
    return {
      get lost() {
        return lost;
      },
      async release() {
        const stillHeld = !lost;
        releasing = true;
        // The group is ours and alive until `ended`; after that its id is not touched again.
        if (stillHeld && group && group > 1) {
          await session.run(groupKillArgv(group), { timeoutMs: 10_000 }).catch(() => undefined);
        }
        // Bounded: over a dead connection the channel may never report its close.
        const bound = () => new Promise((r) => setTimeout(r, 5_000));
        await Promise.race([ended, bound()]);
        await Promise.race([stream.stop().catch(() => undefined), bound()]);
      },
    };
  }
  releasing = true;
  await Promise.race([stream.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 5_000))]);
  const host = session.hostName;
  const path = options.path ?? HOST_LOCK_PATH;
  if (outcome === "timeout") throw new HostLockError(`DDIHost ${host}: no answer from flock on ${path} within ${Math.round(options.waitMs / 1000) + 15} s`);
  if (outcome.code === LOCK_BUSY_EXIT) {
    const holder = (await session.readFile(path).catch(() => undefined))?.trim();
    throw new HostLockError(
      `DDIHost ${host} is being changed by another apply (${path} held by ${holder || "an unknown holder"}); waited ${Math.round(options.waitMs / 1000)} s`,
    );
  }
  if (outcome.code === 127) throw new HostLockError(`DDIHost ${host} has no flock(1) (util-linux); the operator needs it to lock the host`);
  throw new HostLockError(`DDIHost ${host}: taking ${path} failed (exit ${outcome.code}): ${outcome.stderr.trim()}`);
}
