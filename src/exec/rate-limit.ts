// Client-side rate limits, as client-go's QPS and burst: a token bucket per kind of call, so a
// controller that starts with 1,000 objects opens SSH connections and writes to the API server at
// a steady pace instead of all at once (issue 9). The bucket starts full: the first `burst` calls
// go at once, the rest at `perSecond`. Callers wait in FIFO order (limiter's request queue).
import { TokenBucket } from "limiter";

export interface RateLimit {
  /** Calls per second once the burst is spent. */
  perSecond: number;
  /** Calls allowed at once after a quiet period. */
  burst: number;
}

/** Waits for a token; resolves at once without a limit. */
export type RateGate = () => Promise<void>;

/** controller-runtime's defaults for its API client (QPS 20, burst 30). */
export const DEFAULT_KUBE_API_RATE: RateLimit = { perSecond: 20, burst: 30 };
/** New SSH connections (reconnects too): a thousand hosts connect over about 50 s, not in one instant. */
export const DEFAULT_SSH_CONNECT_RATE: RateLimit = { perSecond: 20, burst: 40 };

export function rateLimitProblem(limit: RateLimit): string | undefined {
  if (!Number.isFinite(limit.perSecond) || limit.perSecond <= 0) return `the rate must be a positive number per second (got ${limit.perSecond})`;
  if (!Number.isInteger(limit.burst) || limit.burst < 1) return `the burst must be a whole number of at least 1 (got ${limit.burst})`;
  return undefined;
}

export function rateGate(limit: RateLimit | undefined): RateGate {
  if (!limit) return async () => undefined;
  const problem = rateLimitProblem(limit);
  if (problem) throw new RangeError(problem);
  // One token per 1/perSecond s, so fractional rates (0.5/s) work too.
  const bucket = new TokenBucket({ bucketSize: limit.burst, tokensPerInterval: 1, interval: 1000 / limit.perSecond });
  bucket.content = limit.burst;
  return async () => {
    await bucket.removeTokens(1);
  };
}
