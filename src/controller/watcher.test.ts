import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { KubeClient } from "./kube-client.js";
import { isApiUnreachable } from "./kube-client.js";
import { ResourceWatcher } from "./watcher.js";

type Callback = (type: string, object: unknown) => void;

/** A client whose every watch delivers `events` and then ends cleanly, as the API server does after an ERROR. */
function fakeClient(events: (n: number) => { type: string; object: unknown }[]) {
  const calls: string[] = [];
  let lists = 0;
  let watches = 0;
  const client = {
    list: async () => {
      calls.push(`list`);
      return { items: [], resourceVersion: String(100 + ++lists) };
    },
    watch: {
      watch: async (_path: string, params: { resourceVersion: string }, callback: Callback, done: (err: unknown) => void) => {
        const n = ++watches;
        calls.push(`watch rv=${params.resourceVersion}`);
        setTimeout(() => {
          for (const e of events(n)) callback(e.type, e.object);
          done(null);
        }, 10);
        return new AbortController();
      },
    },
  };
  return { client: client as unknown as KubeClient, calls };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("ResourceWatcher", () => {
  it("an ERROR event (not 410) backs off 1 s, 2 s, 4 s and re-lists, instead of re-watching from the same resourceVersion at once", async () => {
    const { client, calls } = fakeClient(() => [{ type: "ERROR", object: { kind: "Status", code: 500, message: "etcd is sad" } }]);
    const restarts: string[] = [];
    const synced = vi.fn();
    const w = new ResourceWatcher({ client, kind: "DDIHost", log: pino({ level: "silent" }), onChange: () => {}, onRestart: (r) => restarts.push(r), onSynced: synced });
    w.start();
    await vi.advanceTimersByTimeAsync(7_500);
    w.stop();
    // Lists at 0, ~1 s, ~3 s, ~7 s; each watch follows a fresh list.
    expect(calls).toEqual(["list", "watch rv=101", "list", "watch rv=102", "list", "watch rv=103", "list", "watch rv=104"]);
    expect(restarts).toEqual(["error", "error", "error", "error"]);
    expect(synced).toHaveBeenCalledTimes(1);
  });

  it("an ERROR 410 re-lists at once; events in between reset the backoff", async () => {
    const { client, calls } = fakeClient((n) =>
      n === 1
        ? [{ type: "ERROR", object: { kind: "Status", code: 410, message: "too old resource version" } }]
        : [{ type: "BOOKMARK", object: { metadata: { resourceVersion: `20${n}` } } }],
    );
    const restarts: string[] = [];
    const w = new ResourceWatcher({ client, kind: "DDIHost", log: pino({ level: "silent" }), onChange: () => {}, onRestart: (r) => restarts.push(r) });
    w.start();
    await vi.advanceTimersByTimeAsync(35);
    w.stop();
    // 410 → list again at once; then clean ends resume from the bookmark's resourceVersion.
    expect(calls.slice(0, 5)).toEqual(["list", "watch rv=101", "list", "watch rv=102", "watch rv=202"]);
    expect(restarts).toEqual(["expired"]);
  });

  it("an API server that cannot be reached is waited for and the watch resumes from its resourceVersion, no re-list; a 410 then re-lists", async () => {
    const refused = () => Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" }) });
    const calls: string[] = [];
    let watches = 0;
    const client = {
      list: async () => {
        calls.push("list");
        return { items: [], resourceVersion: "100" };
      },
      watch: {
        watch: async (_path: string, params: { resourceVersion: string }, callback: Callback, done: (err: unknown) => void) => {
          const n = ++watches;
          calls.push(`watch rv=${params.resourceVersion}`);
          setTimeout(() => {
            // 1: a bookmark, then the server goes away; 2, 3: refused; 4: back, with a fresh cache: 410.
            if (n === 1) callback("BOOKMARK", { metadata: { resourceVersion: "150" } });
            if (n === 4) callback("ERROR", { kind: "Status", code: 410, message: "too old resource version: 150 (211)" });
            done(n === 1 ? Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) : n <= 3 ? refused() : null);
          }, 10);
          return new AbortController();
        },
      },
    };
    const restarts: string[] = [];
    const w = new ResourceWatcher({ client: client as unknown as KubeClient, kind: "HAPair", log: pino({ level: "silent" }), onChange: () => {}, onRestart: (r) => restarts.push(r) });
    w.start();
    // 10 ms, then 1 s (the bookmark reset the failures), 2 s, 4 s of backoff.
    await vi.advanceTimersByTimeAsync(7_100);
    w.stop();
    expect(calls.slice(0, 6)).toEqual(["list", "watch rv=100", "watch rv=150", "watch rv=150", "watch rv=150", "list"]);
    expect(restarts).toEqual(["unreachable", "unreachable", "unreachable", "expired"]);
  });

  it("noteWrite: the cache takes our own write at once, without an onChange; an object it does not have is left out", async () => {
    const item = (rv: string, status: Record<string, unknown>) => ({ apiVersion: "ddi-ha.io/v1alpha1", kind: "HAPair", metadata: { namespace: "ns", name: "p", resourceVersion: rv, generation: 2 }, status });
    const client = {
      list: async () => ({ items: [item("10", { observedGeneration: 1 })], resourceVersion: "10" }),
      watch: { watch: async () => new AbortController() },
    };
    const changes: string[] = [];
    const w = new ResourceWatcher({ client: client as unknown as KubeClient, kind: "HAPair", log: pino({ level: "silent" }), onChange: (i, type) => changes.push(`${type} ${i.metadata.resourceVersion}`) });
    w.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(changes).toEqual(["added 10"]);
    w.noteWrite(item("11", { observedGeneration: 2 }));
    w.noteWrite({ apiVersion: "ddi-ha.io/v1alpha1", kind: "HAPair", metadata: { namespace: "ns", name: "deleted-meanwhile", resourceVersion: "12" } });
    w.stop();
    expect(w.list().map((i) => [i.metadata.name, i.metadata.resourceVersion, i.status])).toEqual([["p", "11", { observedGeneration: 2 }]]);
    expect(changes).toEqual(["added 10"]);
  });

  it("a watch that stayed up longer than the longest backoff starts the backoff over, although its kind had no event", async () => {
    // 1-6: refused at once (backoff climbs to 30 s); 7: up for 60 s, then the server goes away; 8: refused.
    const calls = await watchAttemptTimes((n) => ({ err: refused(), afterMs: n === 7 ? 60_000 : 10 }), 125_000);
    // 0, +1, +2, +4, +8, +16, +30 (up 60 s), then +1 s: not +30 again.
    expect(calls.slice(0, 9)).toEqual([0, 1, 3, 7, 15, 31, 61, 122, 124]);
  });

  it("the first answer after an outage (503, 429 while a restarted API server warms up) starts the backoff over", async () => {
    const answer = (statusCode: number) => Object.assign(new Error(`HTTP ${statusCode}`), { statusCode });
    // 1-5: refused; 6: 503; 7, 8: 429; then refused again.
    const calls = await watchAttemptTimes((n) => ({ err: n <= 5 || n > 8 ? refused() : answer(n === 6 ? 503 : 429), afterMs: 10 }), 40_000);
    // Refused at 0, 1, 3, 7, 15 s (+16); the 503 at 31 s starts over: +1, +2 (429s), +4 (refused again).
    expect(calls.slice(0, 9)).toEqual([0, 1, 3, 7, 15, 31, 32, 34, 38]);
  });
});

const refused = () => Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("refused"), { code: "ECONNREFUSED" }) });

/** The seconds at which a watcher of an empty kind asked for its watch, each attempt ending as `outcome` says, over `forMs`. */
async function watchAttemptTimes(outcome: (attempt: number) => { err: unknown; afterMs: number }, forMs: number): Promise<number[]> {
  const calls: number[] = [];
  let watches = 0;
  const start = Date.now();
  const client = {
    list: async () => ({ items: [], resourceVersion: "100" }),
    watch: {
      watch: async (_path: string, _params: unknown, _callback: Callback, done: (err: unknown) => void) => {
        calls.push(Math.round((Date.now() - start) / 1000));
        const { err, afterMs } = outcome(++watches);
        setTimeout(() => done(err), afterMs);
        return new AbortController();
      },
    },
  };
  const w = new ResourceWatcher({ client: client as unknown as KubeClient, kind: "KeaHACluster", log: pino({ level: "silent" }), onChange: () => {}, livenessTimeoutMs: 3_600_000 });
  w.start();
  await vi.advanceTimersByTimeAsync(forMs);
  w.stop();
  return calls;
}

describe("isApiUnreachable", () => {
  it("is true for a refused or broken connection and 429/503, false for answers about the request", () => {
    const cause = (code: string) => Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error(code), { code }) });
    expect(isApiUnreachable(cause("ECONNREFUSED"))).toBe(true);
    expect(isApiUnreachable(cause("ECONNRESET"))).toBe(true);
    expect(isApiUnreachable(Object.assign(new Error("terminated"), { cause: cause("UND_ERR_SOCKET") }))).toBe(true);
    expect(isApiUnreachable(Object.assign(new Error("Too Many Requests"), { statusCode: 429 }))).toBe(true);
    expect(isApiUnreachable(Object.assign(new Error("Service Unavailable"), { statusCode: 503 }))).toBe(true);
    expect(isApiUnreachable(Object.assign(new Error("Forbidden"), { statusCode: 403 }))).toBe(false);
    expect(isApiUnreachable(Object.assign(new Error("Internal Server Error"), { statusCode: 500 }))).toBe(false);
    expect(isApiUnreachable(cause("ENOTFOUND"))).toBe(false);
    expect(isApiUnreachable(new Error("some parse error"))).toBe(false);
    expect(isApiUnreachable(undefined)).toBe(false);
  });
});
