// A keyed, level-triggered work queue with controller-runtime's semantics. Events only name a key;
// the handler reads the current state itself, so ten events for one key while it waits are one
// pass, and an event during a pass makes exactly one more pass after it.
import { type BackoffPolicy, RECONCILE_BACKOFF, backoffDelay } from "./backoff.js";

/** What the handler asks for after a pass. */
export interface WorkResult {
  /** Try again with this key's exponential backoff (the pass did not get everything done). */
  retry?: boolean;
  /** Caps this retry's delay (e.g. at the drift interval: a pass that is only waiting need not wait longer than a resync). */
  maxRetryDelayMs?: number;
  /** After a pass that did its work: look again after this long (drift that nothing can watch). */
  requeueAfterMs?: number;
}

export interface WorkQueueMetrics {
  added(): void;
  retried(): void;
  depth(keysWaiting: number): void;
}

export interface WorkQueueOptions {
  /** Keys processed at once at most (each key by one worker at a time). */
  workers: number;
  handle(key: string): Promise<WorkResult>;
  /** A handler that threw; the key is retried with backoff. The handler should report its own errors and return `retry`. */
  onUnexpectedError?(key: string, err: unknown): void;
  backoff?: BackoffPolicy;
  metrics?: WorkQueueMetrics;
  /** Keys are taken but none is processed until resume() (a controller waits for its caches to sync). */
  paused?: boolean;
}

export class WorkQueue {
  /** Keys waiting for a worker, oldest first. */
  private readonly waiting: string[] = [];
  /** Keys that need a pass: waiting, or added again while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private shuttingDown = false;
  private paused: boolean;

  constructor(private readonly options: WorkQueueOptions) {
    if (!(options.workers >= 1)) throw new Error(`workers must be at least 1, not ${options.workers}`);
    this.paused = options.paused ?? false;
  }

  /** Starts processing the keys added while paused, and every key after. */
  resume(): void {
    this.paused = false;
    this.dispatch();
  }

  /** Asks for a pass over `key`; coalesces with a pass already waiting. Ignored after shutdown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.options.metrics?.added();
    this.dirty.add(key);
    // A key being processed goes back to the queue when its pass ends (see finish).
    if (this.processing.has(key)) return;
    this.waiting.push(key);
    this.options.metrics?.depth(this.waiting.length);
    this.dispatch();
  }

  /** add(key) after `ms`; of several delayed adds for one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    // A pending drift check must not keep a finished process alive.
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /** add(key) after this key's next backoff delay (1 s, 2 s, 4 s … by default). Returns the delay. */
  addRateLimited(key: string, maxDelayMs = Infinity): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = Math.min(backoffDelay(this.options.backoff ?? RECONCILE_BACKOFF, failures), maxDelayMs);
    this.options.metrics?.retried();
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff after a pass that succeeded. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  get length(): number {
    return this.waiting.length;
  }

  /**
   * Stops taking keys and cancels delayed adds; the passes in flight finish (the promise waits
   * for them). Keys still waiting are dropped: a new process lists everything again anyway.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.waiting.length = 0;
    this.dirty.clear();
    this.options.metrics?.depth(0);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private dispatch(): void {
    while (!this.shuttingDown && !this.paused && this.processing.size < this.options.workers && this.waiting.length > 0) {
      const key = this.waiting.shift()!;
      this.options.metrics?.depth(this.waiting.length);
      this.dirty.delete(key);
      this.processing.add(key);
      const run = this.process(key).finally(() => {
        this.inFlight.delete(run);
        this.finish(key);
      });
      this.inFlight.add(run);
    }
  }

  private async process(key: string): Promise<void> {
    let result: WorkResult;
    try {
      result = await this.options.handle(key);
    } catch (err) {
      this.options.onUnexpectedError?.(key, err);
      result = { retry: true };
    }
    if (this.shuttingDown) return;
    if (result.retry) {
      this.addRateLimited(key, result.maxRetryDelayMs);
      return;
    }
    this.forget(key);
    if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
  }

  private finish(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.waiting.push(key);
      this.options.metrics?.depth(this.waiting.length);
    }
    this.dispatch();
  }
}
