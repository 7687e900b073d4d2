import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { rateGate, rateLimitProblem } from "./rate-limit.js";

describe("rateGate", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("lets the burst through at once, then one call per 1/perSecond, in order", async () => {
    const gate = rateGate({ perSecond: 10, burst: 3 });
    const passed: { call: number; at: number }[] = [];
    const start = Date.now();
    const calls = [0, 1, 2, 3, 4, 5].map((call) => gate().then(() => passed.push({ call, at: Date.now() - start })));
    await vi.advanceTimersByTimeAsync(0);
    expect(passed.map((p) => p.call)).toEqual([0, 1, 2]);
    await vi.advanceTimersByTimeAsync(350);
    await Promise.all(calls);
    expect(passed.map((p) => p.call)).toEqual([0, 1, 2, 3, 4, 5]);
    // The three after the burst came about 100 ms apart.
    const after = passed.slice(3).map((p) => p.at);
    expect(after[0]).toBeGreaterThanOrEqual(90);
    expect(after[1]! - after[0]!).toBeGreaterThanOrEqual(90);
    expect(after[2]! - after[1]!).toBeGreaterThanOrEqual(90);
  });

  it("refills while idle, up to the burst", async () => {
    const gate = rateGate({ perSecond: 10, burst: 2 });
    await gate();
    await gate();
    await vi.advanceTimersByTimeAsync(5_000);
    let n = 0;
    for (let i = 0; i < 3; i++) void gate().then(() => n++);
    await vi.advanceTimersByTimeAsync(0);
    expect(n).toBe(2);
  });

  it("without a limit, never waits", async () => {
    const gate = rateGate(undefined);
    let n = 0;
    for (let i = 0; i < 1000; i++) void gate().then(() => n++);
    await vi.advanceTimersByTimeAsync(0);
    expect(n).toBe(1000);
  });

  it.each([
    [{ perSecond: 0, burst: 1 }, /positive number per second/],
    [{ perSecond: Number.NaN, burst: 1 }, /positive number per second/],
    [{ perSecond: 5, burst: 0 }, /burst must be a whole number/],
    [{ perSecond: 5, burst: 1.5 }, /burst must be a whole number/],
  ])("refuses %j", (limit, message) => {
    expect(rateLimitProblem(limit)).toMatch(message);
    expect(() => rateGate(limit)).toThrow(message);
  });
});
