import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { TransitionEvent } from "../status/transition-events.js";
import { KubeConfig } from "@kubernetes/client-node";
import { type EventBody, EventRecorder, type EventSink, KubeEventSink, fitNote } from "./events.js";

/** The recorder's side of the API server: what was created and patched, in order. */
class RecordingSink implements EventSink {
  readonly calls: string[] = [];
  readonly events = new Map<string, EventBody>();
  failNext = 0;
  async create(event: EventBody): Promise<void> {
    if (this.failNext-- > 0) throw Object.assign(new Error("HTTP 500"), { code: 500 });
    this.calls.push(`create ${event.reason} ${event.series?.count ?? 1}`);
    this.events.set(event.metadata.name, structuredClone(event));
  }
  async patchSeries(_namespace: string, name: string, series: { count: number; lastObservedTime: Date }): Promise<void> {
    const event = this.events.get(name);
    if (!event) throw Object.assign(new Error("not found"), { code: 404 });
    this.calls.push(`patch ${event.reason} ${series.count}`);
    event.series = series;
  }
}

const regarding = { apiVersion: "ddi-ha.io/v1alpha1", kind: "HAPair", name: "vip", namespace: "ns", uid: "u1" };
const over: TransitionEvent = { type: "Warning", reason: "FailedOver", action: "Observe", note: "198.18.0.10 moved from the primary h1 to the secondary h2" };
const back: TransitionEvent = { type: "Normal", reason: "FailedBack", action: "Observe", note: "198.18.0.10 moved back" };

function recorder(sink: EventSink, clock: { t: number }, extra: Partial<ConstructorParameters<typeof EventRecorder>[0]> = {}) {
  const registry = new Registry();
  const r = new EventRecorder({ sink, reportingInstance: "pod-a_1234", log: pino({ level: "silent" }), registry, now: () => new Date(clock.t), ...extra });
  const count = async (result: string) =>
    ((await registry.getSingleMetric("ddi_ha_events_total")!.get()).values.filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0));
  return { r, count };
}

describe("EventRecorder", () => {
  it("creates an Event the first time, then patches its series for repeats (count, lastObservedTime)", async () => {
    const sink = new RecordingSink();
    const clock = { t: Date.parse("2026-01-01T00:00:00Z") };
    const { r, count } = recorder(sink, clock);
    r.record(regarding, over);
    await r.idle();
    clock.t += 10_000;
    r.record(regarding, back);
    r.record(regarding, over);
    await r.idle();
    clock.t += 10_000;
    r.record(regarding, over);
    await r.idle();
    expect(sink.calls).toEqual(["create FailedOver 1", "create FailedBack 1", "patch FailedOver 2", "patch FailedOver 3"]);
    const failedOver = [...sink.events.values()].find((e) => e.reason === "FailedOver")!;
    expect(failedOver).toMatchObject({ regarding, reportingController: "ddi-ha.io/controller", reportingInstance: "pod-a_1234", type: "Warning", action: "Observe" });
    expect(failedOver.eventTime.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(failedOver.series!.lastObservedTime.toISOString()).toBe("2026-01-01T00:00:20.000Z");
    expect(failedOver.metadata.name).toMatch(/^vip\.[0-9a-f]+$/);
    expect(await count("created")).toBe(2);
    expect(await count("series")).toBe(2);
  });

  it("a different note, object or reporter is another Event; a repeat after the window starts a new one", async () => {
    const sink = new RecordingSink();
    const clock = { t: 0 };
    const { r } = recorder(sink, clock, { seriesWindowMs: 60_000 });
    r.record(regarding, over);
    r.record(regarding, { ...over, note: "another note" });
    r.record({ ...regarding, name: "other" }, over);
    await r.idle();
    clock.t += 61_000;
    r.record(regarding, over);
    await r.idle();
    expect(sink.calls).toEqual(["create FailedOver 1", "create FailedOver 1", "create FailedOver 1", "create FailedOver 1"]);
  });

  it("repeats queued before a write are written together: one create (or patch) with their count", async () => {
    const sink = new RecordingSink();
    const { r } = recorder(sink, { t: 0 });
    r.record(regarding, over);
    r.record(regarding, over);
    r.record(regarding, over);
    await r.idle();
    r.record(regarding, over);
    r.record(regarding, over);
    await r.idle();
    expect(sink.calls).toEqual(["create FailedOver 3", "patch FailedOver 5"]);
  });

  it("never throws: a failed write is logged and counted, and the next occurrence tries again", async () => {
    const sink = new RecordingSink();
    sink.failNext = 1;
    const { r, count } = recorder(sink, { t: 0 });
    expect(() => r.record(regarding, over)).not.toThrow();
    await r.idle();
    expect(sink.calls).toEqual([]);
    expect(await count("failed")).toBe(1);
    r.record(regarding, over);
    await r.idle();
    expect(sink.calls).toEqual(["create FailedOver 2"]);
  });

  it("idle(timeout) does not wait for a write that hangs", async () => {
    const hanging: EventSink = { create: () => new Promise(() => undefined), patchSeries: () => new Promise(() => undefined) };
    const { r } = recorder(hanging, { t: 0 });
    r.record(regarding, over);
    const started = Date.now();
    await r.idle(50);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("an Event deleted on the API server (TTL) continues its series in a new one", async () => {
    const sink = new RecordingSink();
    const { r } = recorder(sink, { t: 0 });
    r.record(regarding, over);
    await r.idle();
    sink.events.clear();
    r.record(regarding, over);
    await r.idle();
    expect(sink.calls).toEqual(["create FailedOver 1", "create FailedOver 2"]);
  });

  it("rate-limits new Events per object (a burst, then one per refill) and keeps its caches bounded", async () => {
    const sink = new RecordingSink();
    const clock = { t: 0 };
    const { r, count } = recorder(sink, clock, { burst: 2, refillMs: 1_000, maxCached: 3 });
    for (const note of ["a", "b", "c"]) r.record(regarding, { ...over, note });
    await r.idle();
    expect(sink.calls).toHaveLength(2);
    expect(await count("dropped")).toBe(1);
    // Another object has its own bucket.
    r.record({ ...regarding, name: "other" }, over);
    clock.t += 1_000;
    r.record(regarding, { ...over, note: "d" });
    await r.idle();
    expect(sink.calls).toHaveLength(4);
    // Only the 3 newest keys are remembered: "a" was evicted, so it is a new Event (and needs a token).
    clock.t += 1_000;
    r.record(regarding, { ...over, note: "a" });
    await r.idle();
    expect(sink.calls.at(-1)).toBe("create FailedOver 1");
    const internals = r as unknown as { series: Map<string, unknown>; buckets: Map<string, unknown> };
    expect(internals.series.size).toBeLessThanOrEqual(3);
    expect(internals.buckets.size).toBeLessThanOrEqual(3);
  });

  it("cuts a note to the API server's 1 kB on a character boundary", () => {
    expect(fitNote("short")).toBe("short");
    const long = fitNote("é".repeat(2000));
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(1024);
    expect(long.endsWith("…")).toBe(true);
    expect(long).not.toContain("\uFFFD");
  });
});

describe("KubeEventSink", () => {
  it("waits for the controller's rate gate before each request it sends", async () => {
    // No API server behind 127.0.0.1:9 (discard): the request fails, but only after the gate.
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:9", skipTLSVerify: true }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
    const order: string[] = [];
    let open!: () => void;
    const gate = () => {
      order.push("gate");
      return new Promise<void>((r) => (open = r));
    };
    const sink = new KubeEventSink(kc, gate);
    const event = { metadata: { name: "e", namespace: "ns" }, eventTime: new Date() } as unknown as EventBody;
    const created = sink.create(event).then(() => order.push("sent"), () => order.push("sent"));
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual(["gate"]);
    open();
    await created;
    const patched = sink.patchSeries("ns", "e", { count: 2, lastObservedTime: new Date() }).catch(() => undefined);
    expect(order).toEqual(["gate", "sent", "gate"]);
    open();
    await patched;
  });
});
