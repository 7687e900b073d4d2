import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, jittered, RECONCILE_BACKOFF } from "./backoff.js";
import { type WorkResult, WorkQueue } from "./work-queue.js";

/** A handler whose passes the test finishes by hand, recording which keys ran and how many at once. */
function controllableHandler() {
  const started: string[] = [];
  const pending = new Map<string, (r: WorkResult) => void>();
  let running = 0;
  let maxRunning = 0;
  const runningPerKey = new Map<string, number>();
  let maxPerKey = 0;
  const handle = (key: string) =>
    new Promise<WorkResult>((resolve) => {
      started.push(key);
      running++;
      maxRunning = Math.max(maxRunning, running);
      runningPerKey.set(key, (runningPerKey.get(key) ?? 0) + 1);
      maxPerKey = Math.max(maxPerKey, runningPerKey.get(key)!);
      pending.set(key, (r) => {
        running--;
        runningPerKey.set(key, runningPerKey.get(key)! - 1);
        pending.delete(key);
        resolve(r);
      });
    });
  return {
    handle,
    started,
    finish: async (key: string, r: WorkResult = {}) => {
      const f = pending.get(key);
      if (!f) throw new Error(`${key} is not running (running: ${[...pending.keys()].join(", ")})`);
      f(r);
      await vi.advanceTimersByTimeAsync(0);
    },
    get maxRunning() {
      return maxRunning;
    },
    get maxPerKey() {
      return maxPerKey;
    },
    running: () => [...pending.keys()],
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("WorkQueue", () => {
  it("coalesces adds of a key that is still waiting into one pass", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 1, handle: h.handle });
    q.add("busy");
    q.add("a");
    q.add("a");
    q.add("a");
    await h.finish("busy");
    await h.finish("a");
    expect(h.started).toEqual(["busy", "a"]);
    expect(q.length).toBe(0);
  });

  it("a paused queue takes keys but runs none until resume(), then runs each once", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 2, handle: h.handle, paused: true });
    q.add("a");
    q.add("b");
    q.add("a");
    q.addAfter("c", 10);
    await vi.advanceTimersByTimeAsync(20);
    expect(h.started).toEqual([]);
    expect(q.length).toBe(3);
    q.resume();
    expect(h.started).toEqual(["a", "b"]);
    await h.finish("a");
    expect(h.started).toEqual(["a", "b", "c"]);
  });

  it("runs one pass per key at a time; adds during a pass make exactly one more pass after it", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 4, handle: h.handle });
    q.add("ns");
    q.add("ns");
    q.add("ns");
    expect(h.running()).toEqual(["ns"]);
    await h.finish("ns");
    expect(h.started).toEqual(["ns", "ns"]);
    await h.finish("ns");
    await vi.runAllTimersAsync();
    expect(h.started).toEqual(["ns", "ns"]);
    expect(h.maxPerKey).toBe(1);
  });

  it("runs at most `workers` keys at once, in the order they were added", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 2, handle: h.handle });
    for (const k of ["a", "b", "c", "d"]) q.add(k);
    expect(h.running()).toEqual(["a", "b"]);
    expect(q.length).toBe(2);
    await h.finish("b");
    expect(h.running()).toEqual(["a", "c"]);
    await h.finish("a");
    await h.finish("c");
    await h.finish("d");
    expect(h.started).toEqual(["a", "b", "c", "d"]);
    expect(h.maxRunning).toBe(2);
  });

  it("retries with per-key exponential backoff, and forgets the failures after a success", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 1, handle: h.handle });
    q.add("ns");
    const startedAt: number[] = [];
    for (let i = 0; i < 4; i++) {
      startedAt.push(Date.now());
      await h.finish("ns", { retry: true });
      await vi.advanceTimersByTimeAsync(backoffDelay(RECONCILE_BACKOFF, i) - 1);
      expect(h.running()).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(h.running()).toEqual(["ns"]);
    }
    expect(q.numRequeues("ns")).toBe(4);
    expect(startedAt.slice(1).map((t, i) => t - startedAt[i]!)).toEqual([1_000, 2_000, 4_000]);
    await h.finish("ns");
    expect(q.numRequeues("ns")).toBe(0);
  });

  it("a retry may cap its delay below the backoff", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 1, handle: h.handle });
    q.add("ns");
    // 1 s, 2 s, then 2.5 s instead of 4 s.
    for (const delay of [1_000, 2_000, 2_500]) {
      await h.finish("ns", { retry: true, maxRetryDelayMs: 2_500 });
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(h.running()).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(h.running()).toEqual(["ns"]);
    }
  });

  it("caps the backoff at 5 minutes", () => {
    expect([0, 1, 2, 8, 9, 50, 5000].map((n) => backoffDelay(RECONCILE_BACKOFF, n))).toEqual([1_000, 2_000, 4_000, 256_000, 300_000, 300_000, 300_000]);
  });

  it("a handler that throws is retried with backoff and reported", async () => {
    const errors: string[] = [];
    let calls = 0;
    const q = new WorkQueue({
      workers: 1,
      handle: async () => {
        calls++;
        if (calls === 1) throw new Error("boom");
        return {};
      },
      onUnexpectedError: (key, err) => errors.push(`${key}: ${(err as Error).message}`),
    });
    q.add("ns");
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual(["ns: boom"]);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(2);
  });

  it("requeueAfterMs schedules the next pass; the earliest of several delayed adds wins", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 1, handle: h.handle });
    q.add("ns");
    await h.finish("ns", { requeueAfterMs: 60_000 });
    q.addAfter("ns", 90_000);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(h.running()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.running()).toEqual(["ns"]);
    await h.finish("ns");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.started).toEqual(["ns", "ns"]);
  });

  it("shutdown waits for the passes in flight, drops what waits, and ignores later adds", async () => {
    const h = controllableHandler();
    const q = new WorkQueue({ workers: 1, handle: h.handle });
    q.add("a");
    q.add("b");
    q.addAfter("c", 1_000);
    let done = false;
    const shutdown = q.shutdown().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    q.add("d");
    await h.finish("a", { requeueAfterMs: 10 });
    await shutdown;
    await vi.runAllTimersAsync();
    expect(h.started).toEqual(["a"]);
    expect(q.length).toBe(0);
  });

  it("reports depth, adds and retries to its metrics", async () => {
    const h = controllableHandler();
    const seen = { added: 0, retried: 0, depth: [] as number[] };
    const q = new WorkQueue({
      workers: 1,
      handle: h.handle,
      metrics: { added: () => seen.added++, retried: () => seen.retried++, depth: (n) => seen.depth.push(n) },
    });
    q.add("a");
    q.add("b");
    q.add("b");
    await h.finish("a", { retry: true });
    expect(seen).toEqual({ added: 2, retried: 1, depth: [1, 0, 1, 0] });
  });
});

describe("jittered", () => {
  it("stretches by up to the factor, never shortens", () => {
    expect(jittered(60_000, 0.1, () => 0)).toBe(60_000);
    expect(jittered(60_000, 0.1, () => 0.5)).toBe(63_000);
    expect(jittered(60_000, 0.1, () => 0.999)).toBeLessThan(66_000);
  });
});
