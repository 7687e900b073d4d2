import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type LeaseRecord, type LeaseStore, LeaderElector, type StoredLease, observe, planAttempt, releasedRecord, timingsProblem } from "./leader-election.js";

const t0 = new Date("2026-12-06T12:00:00Z");
const held = (holderIdentity: string, extra: Partial<LeaseRecord> = {}): StoredLease => ({
  resourceVersion: "7",
  record: { holderIdentity, leaseDurationSeconds: 15, acquireTime: t0, renewTime: t0, leaseTransitions: 3, ...extra },
});

describe("planAttempt (client-go's tryAcquireOrRenew)", () => {
  const base = { identity: "me", nowMs: 100_000, now: t0, leaseDurationSeconds: 15 };

  it("creates a missing Lease with us as holder and no transition yet", () => {
    expect(planAttempt({ ...base, lease: undefined, observation: undefined })).toEqual({
      action: "create",
      record: { holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: t0, renewTime: t0, leaseTransitions: 0 },
    });
  });

  it("waits while another holder changed the record less than its leaseDuration ago, by our clock", () => {
    const lease = held("other");
    const observation = observe(undefined, lease, 90_000);
    expect(planAttempt({ ...base, lease, observation })).toEqual({ action: "wait", holder: "other" });
  });

  it("takes over a Lease not seen to change for leaseDuration, counting a transition, whatever its renewTime says", () => {
    // renewTime is in the future (a skewed clock): only our own observation time counts.
    const lease = held("other", { renewTime: new Date(t0.getTime() + 3_600_000) });
    const observation = observe(undefined, lease, 84_000);
    const attempt = planAttempt({ ...base, lease, observation });
    expect(attempt).toEqual({ action: "update", resourceVersion: "7", record: expect.objectContaining({ holderIdentity: "me", leaseTransitions: 4, acquireTime: t0 }) });
  });

  it("takes a released Lease (no holder) at once", () => {
    const lease = held("", { leaseDurationSeconds: 1 });
    const attempt = planAttempt({ ...base, lease, observation: observe(undefined, lease, base.nowMs) });
    expect(attempt).toMatchObject({ action: "update", record: { holderIdentity: "me", leaseTransitions: 4 } });
  });

  it("renews our own Lease keeping acquireTime and the transition count", () => {
    const acquired = new Date(t0.getTime() - 60_000);
    const lease = held("me", { acquireTime: acquired });
    const attempt = planAttempt({ ...base, lease, observation: observe(undefined, lease, base.nowMs) });
    expect(attempt).toEqual({ action: "update", resourceVersion: "7", record: { holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: acquired, renewTime: t0, leaseTransitions: 3 } });
  });
});

describe("observe", () => {
  it("keeps the time the record last changed while it stays the same, and moves it when it changes", () => {
    const first = observe(undefined, held("other"), 1_000);
    expect(observe(first, held("other"), 9_000).atMs).toBe(1_000);
    expect(observe(first, held("other", { renewTime: new Date(t0.getTime() + 2_000) }), 9_000).atMs).toBe(9_000);
  });
});

describe("timingsProblem", () => {
  it("accepts client-go's defaults and names the flag when the order is wrong", () => {
    expect(timingsProblem({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toBeUndefined();
    expect(timingsProblem({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toMatch(/--leader-elect-lease-duration \(10s\) must be longer than --leader-elect-renew-deadline/);
    expect(timingsProblem({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toMatch(/--leader-elect-renew-deadline .* 1\.2 × --leader-elect-retry-period/);
    expect(timingsProblem({ leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toMatch(/whole seconds/);
  });
});

it("releasedRecord leaves no holder and keeps the transition count", () => {
  expect(releasedRecord(held("me").record, t0)).toEqual({ holderIdentity: "", leaseDurationSeconds: 1, acquireTime: t0, renewTime: t0, leaseTransitions: 3 });
});

/** An in-memory Lease with the API server's optimistic concurrency (409 on a stale resourceVersion); `down` fails every call. */
class MemoryLeaseStore implements LeaseStore {
  readonly description = "test/lease";
  lease: StoredLease | undefined;
  down = false;
  private version = 0;
  private check() {
    if (this.down) throw Object.assign(new Error("connection refused"), { code: 500 });
  }
  async get() {
    this.check();
    return this.lease;
  }
  async create(record: LeaseRecord) {
    this.check();
    if (this.lease) throw Object.assign(new Error("exists"), { code: 409 });
    return (this.lease = { record, resourceVersion: String(++this.version) });
  }
  async update(record: LeaseRecord, resourceVersion: string) {
    this.check();
    if (this.lease?.resourceVersion !== resourceVersion) throw Object.assign(new Error("conflict"), { code: 409 });
    return (this.lease = { record, resourceVersion: String(++this.version) });
  }
}

describe("LeaderElector over a Lease with optimistic concurrency", () => {
  const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
  const log = pino({ level: "silent" });
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  function elector(store: LeaseStore, identity: string, events: string[]) {
    return new LeaderElector({
      ...timings,
      store,
      identity,
      log,
      nowMs: () => Date.now(),
      onStartedLeading: () => events.push(`${identity} leads`),
      onStoppedLeading: () => events.push(`${identity} stops`),
    });
  }

  it("one of two candidates leads; a leader that stops releases the Lease and the follower takes over at its next retry", async () => {
    const store = new MemoryLeaseStore();
    const events: string[] = [];
    const a = elector(store, "a", events);
    a.start();
    await vi.advanceTimersByTimeAsync(100);
    const b = elector(store, "b", events);
    b.start();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(events).toEqual(["a leads"]);
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);

    await a.stop();
    expect(events).toEqual(["a leads", "a stops"]);
    // Released: b takes over at its next retry, not after leaseDuration.
    await vi.advanceTimersByTimeAsync(2_500);
    expect(events).toEqual(["a leads", "a stops", "b leads"]);
    expect(store.lease?.record).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    await b.stop();
  });

  it("a leader whose renewals fail stops leading within the renew deadline, and a follower takes over only after the lease duration", async () => {
    const shared = new MemoryLeaseStore();
    // a's view of the store can be cut off on its own.
    const aView = new (class implements LeaseStore {
      readonly description = shared.description;
      cut = false;
      private guard() {
        if (this.cut) throw new Error("connect ETIMEDOUT");
      }
      async get() {
        this.guard();
        return shared.get();
      }
      async create(r: LeaseRecord) {
        this.guard();
        return shared.create(r);
      }
      async update(r: LeaseRecord, v: string) {
        this.guard();
        return shared.update(r, v);
      }
    })();
    const events: string[] = [];
    const a = elector(aView, "a", events);
    a.start();
    await vi.advanceTimersByTimeAsync(100);
    const b = elector(shared, "b", events);
    b.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(events).toEqual(["a leads"]);

    aView.cut = true;
    const cutAt = Date.now();
    let aStoppedAt: number | undefined;
    let bLedAt: number | undefined;
    for (let i = 0; i < 300 && bLedAt === undefined; i++) {
      await vi.advanceTimersByTimeAsync(100);
      if (aStoppedAt === undefined && !a.isLeader()) aStoppedAt = Date.now();
      if (b.isLeader()) bLedAt = Date.now();
    }
    expect(aStoppedAt).toBeDefined();
    expect(bLedAt).toBeDefined();
    // a stops writing no later than renewDeadline after its last renewal (at most retryPeriod before the cut)...
    expect(aStoppedAt! - cutAt).toBeLessThanOrEqual(timings.renewDeadlineMs);
    // ...and b takes over no sooner than leaseDuration after it last saw the record change.
    expect(bLedAt! - cutAt).toBeGreaterThanOrEqual(timings.leaseDurationMs - timings.retryPeriodMs);
    expect(bLedAt!).toBeGreaterThan(aStoppedAt!);
    expect(events).toEqual(["a leads", "a stops", "b leads"]);
    await a.stop();
    await b.stop();
  });
});
