// The host lock with the real flock(1), on this machine through a local session.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HostLockError, KeyedMutex, acquireHostLock, groupKillArgv, hostLockArgv } from "./host-lock.js";
import { localHostSession } from "./local-session.js";

describe("KeyedMutex", () => {
  it("runs holders of one key one after another, in arrival order", async () => {
    const mutex = new KeyedMutex();
    const events: string[] = [];
    const work = async (name: string, ms: number) => {
      const release = await mutex.acquire("h1");
      events.push(`${name} in`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`${name} out`);
      release();
    };
    await Promise.all([work("a", 30), work("b", 1), work("c", 1)]);
    expect(events).toEqual(["a in", "a out", "b in", "b out", "c in", "c out"]);
    expect(mutex.isBusy("h1")).toBe(false);
  });

  it("lets different keys run at the same time", async () => {
    const mutex = new KeyedMutex();
    const releaseA = await mutex.acquire("h1");
    const gotB = await Promise.race([mutex.acquire("h2").then(() => "acquired"), new Promise((r) => setTimeout(() => r("blocked"), 50))]);
    expect(gotB).toBe("acquired");
    releaseA();
  });

  it("ignores a second release", async () => {
    const mutex = new KeyedMutex();
    const release = await mutex.acquire("h1");
    release();
    const next = await mutex.acquire("h1");
    release(); // must not free `next`'s hold
    const third = await Promise.race([mutex.acquire("h1").then(() => "acquired"), new Promise((r) => setTimeout(() => r("blocked"), 50))]);
    expect(third).toBe("blocked");
    next();
  });
});

describe("acquireHostLock (flock on this machine)", () => {
  let dir: string;
  let path: string;
  const session = localHostSession("h1");
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "ddi-ha-lock-"));
    path = join(dir, "apply.lock");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes holder and path as arguments to a constant script", () => {
    const argv = hostLockArgv({ waitMs: 2500, maxHoldMs: 60_000, holder: "op; rm -rf /\nx", path: "/run/lock/x.lock" });
    expect(argv.slice(0, 8)).toEqual(["flock", "-w", "3", "-E", "75", "/run/lock/x.lock", "timeout", "60"]);
    expect(argv.slice(-3)).toEqual(["ddi-ha-lock", "op; rm -rf / x", "/run/lock/x.lock"]);
    expect(argv[10]).not.toContain("rm -rf");
  });

  it("ends the holder's process group with an argv kill(1) reads as a group id, however small", async () => {
    // Group 59 exists on no machine running this test (a PID namespace's first processes aside):
    // the real kill(1) must say it found no such process, not print its usage. Its `-s TERM --`
    // form did the latter for ids like this one, which containers hand out.
    const r = await session.run(groupKillArgv(59));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no such process/i);
    expect(r.stderr).not.toMatch(/usage/i);
  });

  it("makes a second holder wait, tells it who holds the lock, and lets it in after release", async () => {
    const first = await acquireHostLock(session, { waitMs: 5_000, maxHoldMs: 60_000, holder: "first apply", path });
    const started = Date.now();
    const err = await acquireHostLock(session, { waitMs: 1_000, maxHoldMs: 60_000, holder: "second apply", path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostLockError);
    expect((err as Error).message).toMatch(/DDIHost h1 is being changed by another apply \(.*apply\.lock held by first apply\); waited 1 s/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await first.release();
    const second = await acquireHostLock(session, { waitMs: 5_000, maxHoldMs: 60_000, holder: "second apply", path });
    expect(second.lost).toBe(false);
    await second.release();
  });

  it("is released by the kernel when the holding connection goes away, and the holder learns it lost the lock", async () => {
    // A second session whose stream we cut without release(), like a dropped SSH connection.
    let cut: (() => Promise<void>) | undefined;
    const cuttable = {
      ...session,
      async stream(argv: readonly string[], onLine: (line: string) => void) {
        const s = await session.stream(argv, onLine);
        cut = s.stop;
        return s;
      },
    };
    const held = await acquireHostLock(cuttable, { waitMs: 5_000, maxHoldMs: 60_000, holder: "doomed", path });
    await cut!();
    const next = await acquireHostLock(session, { waitMs: 5_000, maxHoldMs: 60_000, holder: "next", path });
    await new Promise((r) => setTimeout(r, 100));
    expect(held.lost).toBe(true);
    await next.release();
  });

  it("drops a lock held longer than maxHoldMs", async () => {
    const held = await acquireHostLock(session, { waitMs: 5_000, maxHoldMs: 1_000, holder: "wedged", path });
    const next = await acquireHostLock(session, { waitMs: 5_000, maxHoldMs: 60_000, holder: "next", path });
    // The holder's process ends before the next one gets the lock, but its end reaches us through
    // another pipe: on a loaded machine `next` can be told first. Give that report 2 s.
    for (let waited = 0; !held.lost && waited < 2_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(held.lost).toBe(true);
    await next.release();
    await held.release();
  });
});
