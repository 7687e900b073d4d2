// Delays shared by the work queue (per-key retry) and the watchers (restart after an error).

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** Per-key retry after a failed reconcile: 1 s doubling to 5 min, as controller-runtime's default item limiter. */
export const RECONCILE_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 5 * 60_000 };

/** The delay before attempt `failures + 1`: base · 2^failures, capped. */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  // 2^failures overflows to Infinity long after the cap; min() keeps it finite.
  return Math.min(policy.baseMs * 2 ** Math.max(0, failures), policy.maxMs);
}

/**
 * `ms` stretched by up to `factor` at random (never shortened), so that many objects created at
 * once do not keep hitting their hosts in the same second.
 */
export function jittered(ms: number, factor = 0.1, random: () => number = Math.random): number {
  return Math.round(ms * (1 + factor * random()));
}
