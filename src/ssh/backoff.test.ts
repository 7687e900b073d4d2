import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff.js";

const policy = { baseMs: 500, maxMs: 30_000 };

describe("backoffDelay", () => {
  it("is 0 before any failure: the first reconnect after a drop is immediate", () => {
    expect(backoffDelay(0, policy, () => 0.5)).toBe(0);
  });

  it("doubles from base, between half and all of the exponential step", () => {
    const table: Array<[number, number]> = [
      [1, 500],
      [2, 1_000],
      [3, 2_000],
      [4, 4_000],
      [7, 30_000], // 32 s capped at 30 s
      [100, 30_000],
    ];
    for (const [failures, step] of table) {
      expect(backoffDelay(failures, policy, () => 0)).toBe(step / 2);
      expect(backoffDelay(failures, policy, () => 0.999999)).toBe(step);
    }
  });

  it("spreads hosts that failed together", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, policy)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(4_000);
  });
});
