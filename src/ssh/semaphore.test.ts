import { describe, expect, it } from "vitest";
import { Semaphore } from "./semaphore.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("Semaphore", () => {
  it("never lets more than `limit` holders run, and serves waiters first come, first served", async () => {
    const sem = new Semaphore(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const gates: Array<() => void> = [];
    const jobs = Array.from({ length: 6 }, (_, i) =>
      sem.use(async () => {
        order.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
      }),
    );
    await tick();
    expect(order).toEqual([0, 1]);
    expect(sem.running).toBe(2);
    expect(sem.waiting).toBe(4);
    while (gates.length) {
      gates.shift()!();
      await tick();
      await tick();
    }
    await Promise.all(jobs);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(sem.running).toBe(0);
  });

  it("releases the slot when the job throws", async () => {
    const sem = new Semaphore(1);
    await expect(sem.use(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(sem.running).toBe(0);
    await expect(sem.use(async () => 42)).resolves.toBe(42);
  });

  it("ignores a second release of the same slot", async () => {
    const sem = new Semaphore(1);
    const release = await sem.acquire();
    const next = sem.acquire();
    release();
    release();
    const releaseNext = await next;
    expect(sem.running).toBe(1);
    // A third acquirer still waits: the double release did not free a phantom slot.
    let third = false;
    void sem.acquire().then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    releaseNext();
    await tick();
    expect(third).toBe(true);
  });

  it.each([0, -1, 1.5, Number.NaN])("rejects the limit %s", (limit) => {
    expect(() => new Semaphore(limit)).toThrow(/positive integer/);
  });
});
