// Spacing of reconnect attempts to a host whose connections keep failing.

export interface BackoffPolicy {
  /** Delay after the first failure (ms). */
  baseMs: number;
  /** Upper bound of any delay (ms). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

/**
 * Delay before the next connect attempt after `failures` consecutive failures: 0 after none,
 * then base·2^(n-1) capped at max, with "equal jitter" (half fixed, half random) so that many
 * hosts that dropped together do not reconnect in lockstep but each still waits at least half.
 */
export function backoffDelay(failures: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  if (failures <= 0) return 0;
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}
