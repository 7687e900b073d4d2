// One kind's list+watch with a cache, restarted on every error. client-node's ListWatch gives up
// on any error but 410 and has no liveness check, so the loop is our own around its Watch:
//   list → cache, then watch from the list's resourceVersion; a clean end or a client-side
//   timeout re-watches from the last resourceVersion; 410 Gone re-lists; an API server that
//   cannot be reached (refused, reset; 429, 503) is waited for (1 s doubling to 30 s) and then
//   watched from the last resourceVersion again, as client-go's reflector does, so a restarted
//   API server costs no re-list unless it answers 410; any other error (a failed request or an
//   ERROR event in the stream) waits the same way and re-lists; no event or bookmark for
//   `livenessTimeoutMs` re-lists. See ADR 0026.
import type { Logger } from "pino";
import type { KubeItem } from "../engine/kube-status.js";
import { type BackoffPolicy, backoffDelay } from "./backoff.js";
import { type KubeClient, collectionPath, isApiUnreachable, kubeErrorMessage, statusCodeOf } from "./kube-client.js";

export const WATCH_RESTART_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 30_000 };
export const DEFAULT_LIVENESS_TIMEOUT_MS = 5 * 60_000;

export type WatchEventType = "added" | "modified" | "deleted";
/**
 * Why a watch was started again: `expired` (410 Gone: re-list), `error` (re-list after a
 * backoff), `unreachable` (the same watch resumed after a backoff), `silent` (the liveness check).
 */
export type WatchRestartReason = "expired" | "error" | "unreachable" | "silent";

export interface ResourceWatcherOptions {
  client: KubeClient;
  kind: string;
  /** Undefined: every namespace. */
  namespace?: string | undefined;
  /** Called after the cache has the change (for a deletion: no longer has the object); `previous` is what the cache held. */
  onChange(item: KubeItem, type: WatchEventType, previous?: KubeItem): void;
  log: Logger;
  livenessTimeoutMs?: number;
  onRestart?(reason: WatchRestartReason): void;
  /** Called once, after the first list is in the cache. */
  onSynced?(): void;
}

type RawEvent = { type: string; object: KubeItem & { code?: number; message?: string; reason?: string } };

const cacheKey = (item: KubeItem) => `${item.metadata.namespace ?? ""}/${item.metadata.name}`;

export class ResourceWatcher {
  private readonly cache = new Map<string, KubeItem>();
  private resourceVersion = "";
  private abort: AbortController | undefined;
  private stopped = false;
  private failures = 0;
  /** The last failure had no answer from the API server (refused, reset): it was away. */
  private lastFailureUnanswered = false;
  /** When the current watch was asked for. */
  private watchStartedAt = 0;
  private lastActivity = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private synced = false;
  /** The Status of an ERROR event on the current watch, until the stream ends. */
  private watchError: RawEvent["object"] | undefined;
  private readonly livenessTimeoutMs: number;
  /** Bumped on every (re)start, so that callbacks of a watch we abandoned are ignored. */
  private generation = 0;

  constructor(private readonly options: ResourceWatcherOptions) {
    this.livenessTimeoutMs = options.livenessTimeoutMs ?? DEFAULT_LIVENESS_TIMEOUT_MS;
  }

  get kind(): string {
    return this.options.kind;
  }

  /** True once the first list is in the cache. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** The cached objects of one namespace, or of all. */
  list(namespace?: string): KubeItem[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((i) => i.metadata.namespace === namespace);
  }

  /**
   * An object this process just wrote, as the API server answered the write: the cache takes it
   * at once. Otherwise a pass queued meanwhile would run on the copy from before our own write
   * (its watch event a few ms behind) and, seeing no status for the new generation, apply the
   * same spec again. Only over an object the cache has (a deletion is not undone here); no
   * onChange: the watch event of the same write follows and finds nothing new.
   */
  noteWrite(item: KubeItem): void {
    const key = cacheKey(item);
    if (this.stopped || !this.cache.has(key)) return;
    this.cache.set(key, { ...item, kind: item.kind ?? this.kind });
  }

  start(): void {
    this.stopped = false;
    const period = Math.max(1_000, Math.floor(this.livenessTimeoutMs / 4));
    this.watchdog = setInterval(() => this.checkLiveness(), period);
    this.watchdog.unref?.();
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    this.abort?.abort();
    this.abort = undefined;
  }

  private checkLiveness(): void {
    if (this.stopped || Date.now() - this.lastActivity < this.livenessTimeoutMs) return;
    this.options.log.warn({ kind: this.kind, silentForMs: Date.now() - this.lastActivity }, "watch silent for too long: listing again");
    this.restart("silent", 0);
  }

  /** Abandons the current watch and lists again after `delayMs`. */
  private restart(reason: WatchRestartReason, delayMs: number): void {
    const generation = ++this.generation;
    this.abort?.abort();
    this.abort = undefined;
    clearTimeout(this.retryTimer);
    this.options.onRestart?.(reason);
    // Until the new list (or watch) lands, silence is expected: do not let the watchdog fire again.
    this.lastActivity = Date.now() + delayMs;
    // Resuming keeps the cache and the resourceVersion: a 410 on the new watch still re-lists.
    const next = reason === "unreachable" ? () => void this.watchFromLast(generation) : () => void this.relist();
    this.retryTimer = setTimeout(next, delayMs);
    this.retryTimer.unref?.();
  }

  private failed(err: unknown, during: "list" | "watch"): void {
    // A watch that stayed up longer than the longest backoff was healthy, event or not: a quiet
    // kind (no objects, no bookmark yet) must not inherit the backoff of an outage long past.
    if (during === "watch" && Date.now() - this.watchStartedAt >= WATCH_RESTART_BACKOFF.maxMs) this.failures = 0;
    // The first answer after an outage (a restarted API server says 503, then 429 until its watch
    // cache is ready) starts the backoff over: the outage's backoff would only add to the wait.
    const answered = statusCodeOf(err) !== undefined;
    if (answered && this.lastFailureUnanswered) this.failures = 0;
    this.lastFailureUnanswered = !answered;
    const delay = backoffDelay(WATCH_RESTART_BACKOFF, this.failures++);
    // A watch whose API server went away (restarted, say) resumes from where it was: after an
    // outage, every watcher of every controller re-listing at once is the burst to avoid.
    const resume = during === "watch" && this.resourceVersion !== "" && isApiUnreachable(err);
    this.options.log.warn({ kind: this.kind, err: kubeErrorMessage(err), retryInMs: delay, resume }, `${during} failed: retrying`);
    this.restart(resume ? "unreachable" : "error", delay);
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    const generation = ++this.generation;
    let listed;
    try {
      listed = await this.options.client.list(this.kind, this.options.namespace);
    } catch (err) {
      if (generation === this.generation) this.failed(err, "list");
      return;
    }
    if (generation !== this.generation || this.stopped) return;
    // `failures` is reset by the first watch event, not here: a list that works followed by a
    // watch that fails at once must still back off further each time.
    this.lastActivity = Date.now();
    this.replaceCache(listed.items);
    this.resourceVersion = listed.resourceVersion;
    if (!this.synced) {
      this.synced = true;
      this.options.onSynced?.();
    }
    await this.watchFromLast(generation);
  }

  /** The list is the truth: objects that changed or vanished while we did not watch are reported. */
  private replaceCache(items: KubeItem[]): void {
    const fresh = new Map(items.map((i) => [cacheKey(i), i]));
    for (const [key, old] of this.cache) {
      if (!fresh.has(key)) {
        this.cache.delete(key);
        this.options.onChange(old, "deleted");
      }
    }
    for (const [key, item] of fresh) {
      const old = this.cache.get(key);
      this.cache.set(key, item);
      if (!old) this.options.onChange(item, "added");
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.options.onChange(item, "modified", old);
    }
  }

  private async watchFromLast(generation: number): Promise<void> {
    const path = collectionPath(this.kind, this.options.namespace);
    // The server ends the watch after timeoutSeconds (spread so watchers do not reconnect at once).
    const timeoutSeconds = 240 + Math.floor(Math.random() * 120);
    this.watchError = undefined;
    this.watchStartedAt = Date.now();
    try {
      const abort = await this.options.client.watch.watch(
        path,
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        (type: string, object: RawEvent["object"]) => {
          if (generation === this.generation) this.onEvent({ type, object });
        },
        (err: unknown) => {
          if (generation === this.generation) this.onDone(err, generation);
        },
      );
      if (generation === this.generation && !this.stopped) this.abort = abort;
      else abort.abort();
    } catch (err) {
      if (generation === this.generation) this.failed(err, "watch");
    }
  }

  private onEvent({ type, object }: RawEvent): void {
    if (type === "ERROR") {
      // The API server ends the stream after an ERROR. 410: the resourceVersion is too old, onDone
      // re-lists at once. Any other: onDone goes through the failure path (backoff, then a
      // re-list), not straight back to a watch from the same resourceVersion. Neither is activity.
      this.watchError = object;
      this.resourceVersion = "";
      return;
    }
    this.lastActivity = Date.now();
    this.failures = 0;
    if (object.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
    if (type === "BOOKMARK") return;
    const item = { ...object, kind: object.kind ?? this.kind };
    if (type === "DELETED") {
      this.cache.delete(cacheKey(item));
      this.options.onChange(item, "deleted");
    } else if (type === "ADDED" || type === "MODIFIED") {
      const previous = this.cache.get(cacheKey(item));
      this.cache.set(cacheKey(item), item);
      this.options.onChange(item, previous ? "modified" : "added", previous);
    }
  }

  private onDone(err: unknown, generation: number): void {
    this.abort = undefined;
    if (this.stopped) return;
    const watchError = this.watchError;
    this.watchError = undefined;
    const code = statusCodeOf(err) ?? watchError?.code;
    const timedOut = (err as { name?: string } | null)?.name === "TimeoutError";
    if (code === 410 || (!err && !watchError && this.resourceVersion === "")) {
      this.restart("expired", 0);
    } else if (watchError && !err) {
      // An ERROR event is an answer of the API server: its code goes with it (see failed()).
      const error = new Error(`watch ERROR event${watchError.code ? ` ${watchError.code}` : ""}: ${watchError.message ?? watchError.reason ?? "no message"}`);
      this.failed(watchError.code ? Object.assign(error, { statusCode: watchError.code }) : error, "watch");
    } else if (err && !timedOut) {
      this.failed(err, "watch");
    } else {
      // A clean end (the server's timeoutSeconds) or client-node's inactivity timeout: resume.
      void this.watchFromLast(generation);
    }
  }
}
