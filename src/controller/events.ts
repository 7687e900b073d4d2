// Kubernetes Events (events.k8s.io/v1) with client-go's series semantics, kept small: the first
// occurrence of (regarding object, type, reason, action, note, reporter) creates an Event, a
// repeat within SERIES_WINDOW_MS patches that Event's series (count, lastObservedTime) instead of
// creating another. The cache of those keys is an LRU; new Events per object are rate-limited by
// a token bucket (client-go's spam filter). Writes run in the background, one chain per key, and
// never fail a reconcile: a failed write is logged and counted. See ADR 0024.
import { EventsV1Api, type KubeConfig, PatchStrategy, V1MicroTime, setHeaderOptions } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { KubeItem } from "../engine/kube-status.js";
import type { RateGate } from "../exec/rate-limit.js";
import type { TransitionEvent } from "../status/transition-events.js";
import { kubeErrorMessage, statusCodeOf } from "./kube-client.js";

/** events.k8s.io/v1 reportingController of every Event this operator writes. */
export const REPORTING_CONTROLLER = "ddi-ha.io/controller";
/** A repeat after this long starts a new Event (client-go finishes a series after 6 minutes). */
export const SERIES_WINDOW_MS = 6 * 60_000;
/** Keys remembered for aggregation, and objects remembered for rate limiting. */
export const MAX_CACHED = 4096;
/** New Events per object: a burst, then one per refill interval (client-go: 25, then one per 5 min). */
export const EVENT_BURST = 25;
export const EVENT_REFILL_MS = 5 * 60_000;
/** The API server refuses a longer note (1 kB) or reportingInstance (128). */
const NOTE_MAX_BYTES = 1024;
const INSTANCE_MAX = 128;

/** The object an Event is about (events.k8s.io/v1 `regarding`). */
export interface EventObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
}

/** The regarding reference of a cached object: what `kubectl describe` searches Events by (kind, name, namespace, uid). */
export function regardingOf(item: KubeItem): EventObjectRef {
  return {
    apiVersion: item.apiVersion,
    kind: item.kind,
    name: item.metadata.name,
    namespace: item.metadata.namespace ?? "default",
    ...(item.metadata.uid ? { uid: item.metadata.uid } : {}),
    ...(item.metadata.resourceVersion ? { resourceVersion: item.metadata.resourceVersion } : {}),
  };
}

export interface EventBody {
  metadata: { name: string; namespace: string };
  eventTime: Date;
  type: string;
  reason: string;
  action: string;
  note: string;
  regarding: EventObjectRef;
  reportingController: string;
  reportingInstance: string;
  series?: { count: number; lastObservedTime: Date };
}

/** Where Events go: the API server (KubeEventSink) in the controller. */
export interface EventSink {
  create(event: EventBody): Promise<void>;
  /** Rejects with a 404 (statusCodeOf) when the Event is gone (the API server's event TTL). */
  patchSeries(namespace: string, name: string, series: { count: number; lastObservedTime: Date }): Promise<void>;
}

const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const micro = (d: Date) => new V1MicroTime(d.getTime());

/** events.k8s.io/v1 through client-node: create, and a merge patch of `series`. Nothing else. */
export class KubeEventSink implements EventSink {
  private readonly api: EventsV1Api;
  /** `gate`: the controller's client-side rate limit (KubeClient.gate), shared with its other requests. */
  constructor(
    kubeConfig: KubeConfig,
    private readonly gate: RateGate = async () => undefined,
  ) {
    this.api = kubeConfig.makeApiClient(EventsV1Api);
  }

  async create(event: EventBody): Promise<void> {
    await this.gate();
    const { series, eventTime, ...rest } = event;
    await this.api.createNamespacedEvent({
      namespace: event.metadata.namespace,
      body: { ...rest, eventTime: micro(eventTime), ...(series ? { series: { count: series.count, lastObservedTime: micro(series.lastObservedTime) } } : {}) },
    });
  }

  async patchSeries(namespace: string, name: string, series: { count: number; lastObservedTime: Date }): Promise<void> {
    await this.gate();
    await this.api.patchNamespacedEvent({ namespace, name, body: { series: { count: series.count, lastObservedTime: micro(series.lastObservedTime) } } }, MERGE_PATCH);
  }
}

interface Series {
  event: EventBody;
  /** Occurrences seen, and how many of them the API server has. */
  count: number;
  written: number;
  /** Whether the Event exists on the API server (its create succeeded). */
  created: boolean;
  lastObserved: Date;
  chain: Promise<void>;
}

/** An LRU on a Map's insertion order: a touched key moves to the end, the oldest goes first. */
function touch<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value!);
}

/** The note cut to the API server's 1 kB, on a character boundary. */
export function fitNote(note: string): string {
  if (Buffer.byteLength(note) <= NOTE_MAX_BYTES) return note;
  let cut = note.slice(0, NOTE_MAX_BYTES - 3);
  while (Buffer.byteLength(cut) > NOTE_MAX_BYTES - 3) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** client-go's Event name: the object's name and the time in nanoseconds, hex (unique enough with a counter). */
function eventName(regarding: string, at: Date, seq: number): string {
  const suffix = (BigInt(at.getTime()) * 1_000_000n + BigInt(seq % 1_000_000)).toString(16);
  return `${regarding.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** The process's identity (leader election's), for reportingInstance. */
  reportingInstance: string;
  reportingController?: string;
  log: Logger;
  /** Where ddi_ha_events_total goes; none: not counted. */
  registry?: Registry;
  now?: () => Date;
  seriesWindowMs?: number;
  maxCached?: number;
  burst?: number;
  refillMs?: number;
}

export type EventResult = "created" | "series" | "dropped" | "failed";

export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly counter: Counter<"reason" | "result"> | undefined;
  private readonly now: () => Date;
  private readonly controller: string;
  private readonly instance: string;
  private seq = 0;

  constructor(private readonly options: EventRecorderOptions) {
    this.now = options.now ?? (() => new Date());
    this.controller = options.reportingController ?? REPORTING_CONTROLLER;
    this.instance = options.reportingInstance.slice(0, INSTANCE_MAX);
    const registry = options.registry;
    const name = "ddi_ha_events_total";
    this.counter = registry
      ? ((registry.getSingleMetric(name) as Counter<"reason" | "result"> | undefined) ??
        new Counter({ name, help: "Kubernetes Events by reason and result: created, series (a repeat patched into an Event), dropped (rate limit), failed.", labelNames: ["reason", "result"], registers: [registry] }))
      : undefined;
  }

  /** Records one Event about `regarding`. Never throws and never waits: the write runs in the background. */
  record(regarding: EventObjectRef, event: TransitionEvent): void {
    try {
      this.recordNow(regarding, event);
    } catch (err) {
      this.failed(event.reason, err, "event not recorded");
    }
  }

  /** Resolves once every write started so far has finished (shutdown, tests), or after `timeoutMs`. */
  async idle(timeoutMs = Infinity): Promise<void> {
    const drained = (async () => {
      while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    })();
    if (!Number.isFinite(timeoutMs)) return drained;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]).finally(() => clearTimeout(timer));
  }

  private recordNow(regarding: EventObjectRef, event: TransitionEvent): void {
    const note = fitNote(event.note);
    const key = JSON.stringify([regarding.namespace, regarding.kind, regarding.name, regarding.uid ?? "", event.type, event.reason, event.action, note, this.controller, this.instance]);
    const now = this.now();
    const max = this.options.maxCached ?? MAX_CACHED;
    const existing = this.series.get(key);
    if (existing && now.getTime() - existing.lastObserved.getTime() <= (this.options.seriesWindowMs ?? SERIES_WINDOW_MS)) {
      existing.count++;
      existing.lastObserved = now;
      touch(this.series, key, existing, max);
      this.write(existing);
      return;
    }
    if (!this.takeToken(`${regarding.namespace}/${regarding.kind}/${regarding.name}`, now.getTime())) {
      this.counter?.inc({ reason: event.reason, result: "dropped" });
      this.options.log.debug({ kind: regarding.kind, name: regarding.name, reason: event.reason }, "event dropped: rate limit of the object");
      return;
    }
    const body: EventBody = {
      metadata: { name: eventName(regarding.name, now, this.seq++), namespace: regarding.namespace },
      eventTime: now,
      type: event.type,
      reason: event.reason,
      action: event.action,
      note,
      regarding,
      reportingController: this.controller,
      reportingInstance: this.instance,
    };
    const entry: Series = { event: body, count: 1, written: 0, created: false, lastObserved: now, chain: Promise.resolve() };
    touch(this.series, key, entry, max);
    this.write(entry);
  }

  /** client-go's EventSourceObjectSpamFilter: a token bucket per object. */
  private takeToken(object: string, at: number): boolean {
    const burst = this.options.burst ?? EVENT_BURST;
    const refill = this.options.refillMs ?? EVENT_REFILL_MS;
    const bucket = this.buckets.get(object) ?? { tokens: burst, at };
    const tokens = Math.min(burst, bucket.tokens + (at - bucket.at) / refill);
    const allowed = tokens >= 1;
    touch(this.buckets, object, { tokens: allowed ? tokens - 1 : tokens, at }, this.options.maxCached ?? MAX_CACHED);
    return allowed;
  }

  /** Queues a write of the entry's current count behind the key's earlier writes: a create, then series patches. */
  private write(entry: Series): void {
    const run = entry.chain.then(() => this.flush(entry));
    entry.chain = run;
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private async flush(entry: Series): Promise<void> {
    const { event } = entry;
    // Several repeats queued while an earlier write ran: the first flush writes them all.
    if (entry.created && entry.written >= entry.count) return;
    const count = entry.count;
    const series = count > 1 ? { count, lastObservedTime: entry.lastObserved } : undefined;
    try {
      if (!entry.created) {
        await this.options.sink.create({ ...event, ...(series ? { series } : {}) });
        entry.created = true;
        this.counter?.inc({ reason: event.reason, result: "created" });
      } else {
        try {
          await this.options.sink.patchSeries(event.metadata.namespace, event.metadata.name, series!);
        } catch (err) {
          // Gone (the API server's event TTL, or someone deleted it): the series goes on in a new Event.
          if (statusCodeOf(err) !== 404) throw err;
          event.metadata.name = eventName(event.regarding.name, entry.lastObserved, this.seq++);
          await this.options.sink.create({ ...event, ...(series ? { series } : {}) });
        }
        this.counter?.inc({ reason: event.reason, result: "series" });
      }
      entry.written = count;
    } catch (err) {
      // The next occurrence tries again (a create, if this was one).
      this.failed(event.reason, err, `event ${event.reason} about ${event.regarding.kind} ${event.regarding.name} not written`);
    }
  }

  private failed(reason: string, err: unknown, what: string): void {
    this.counter?.inc({ reason, result: "failed" });
    this.options.log.warn({ err: kubeErrorMessage(err) }, what);
  }
}
