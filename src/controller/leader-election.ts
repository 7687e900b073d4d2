// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics
// (k8s.io/client-go/tools/leaderelection): a candidate takes the Lease when its holder is empty or
// has not renewed it for leaseDuration as measured on OUR clock, from the moment we saw the record
// last change (so clock skew between replicas does not matter); the leader renews every
// retryPeriod, and stops leading when it has not renewed for renewDeadline. Because renewDeadline
// is shorter than leaseDuration, a leader stops writing before anyone else may take the Lease.
// Every update carries the resourceVersion read, so two candidates never both win. See ADR 0023.
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { kubeErrorMessage, statusCodeOf } from "./kube-client.js";

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
export const DEFAULT_LEASE_NAME = "ddi-ha-operator";
/** client-go's JitterFactor: a candidate retries after retryPeriod × [1, 1.2). */
const JITTER_FACTOR = 1.2;

export interface ElectionTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** The Lease's spec as the election reads and writes it. */
export interface LeaseRecord {
  /** Empty: released, anyone may take it at once. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: Date | undefined;
  renewTime?: Date | undefined;
  leaseTransitions: number;
}

export interface StoredLease {
  record: LeaseRecord;
  resourceVersion: string;
}

/** The Lease on the API server: the only I/O of the election. `update` fails with a 409 when the resourceVersion is stale. */
export interface LeaseStore {
  readonly description: string;
  get(): Promise<StoredLease | undefined>;
  create(record: LeaseRecord): Promise<StoredLease>;
  update(record: LeaseRecord, resourceVersion: string): Promise<StoredLease>;
  /**
   * Optional: every change of the Lease as it happens, until the returned stop is called. A
   * follower that sees each renewal at once counts leaseDuration from the renewal itself, not from
   * its next poll, and takes over a dead leader's Lease up to a retryPeriod sooner.
   */
  watch?(onChange: (lease: StoredLease) => void): () => void;
}

/** client-go's own checks of the three durations; the message names the flag and the fix. */
export function timingsProblem(t: ElectionTimings): string | undefined {
  if (!(t.retryPeriodMs > 0)) return "--leader-elect-retry-period must be more than 0";
  if (t.leaseDurationMs % 1000 !== 0) return `--leader-elect-lease-duration must be whole seconds (the Lease stores seconds), not ${t.leaseDurationMs} ms`;
  if (!(t.leaseDurationMs > t.renewDeadlineMs))
    return `--leader-elect-lease-duration (${t.leaseDurationMs / 1000}s) must be longer than --leader-elect-renew-deadline (${t.renewDeadlineMs / 1000}s), or a leader could still write after another took the Lease`;
  if (!(t.renewDeadlineMs > t.retryPeriodMs * JITTER_FACTOR))
    return `--leader-elect-renew-deadline (${t.renewDeadlineMs / 1000}s) must be longer than 1.2 × --leader-elect-retry-period (${t.retryPeriodMs / 1000}s), or a leader gets no second try to renew`;
  return undefined;
}

/** What the last read showed and when (our monotonic clock) its content last changed. */
export interface Observation {
  key: string;
  atMs: number;
  record: LeaseRecord;
}

export type Attempt =
  | { action: "create"; record: LeaseRecord }
  | { action: "update"; record: LeaseRecord; resourceVersion: string }
  | { action: "wait"; holder: string };

const recordKey = (r: LeaseRecord) => JSON.stringify([r.holderIdentity, r.leaseDurationSeconds, r.acquireTime?.getTime(), r.renewTime?.getTime(), r.leaseTransitions]);

/** The observation after reading `lease` at `nowMs`: its time moves only when the record changed. */
export function observe(previous: Observation | undefined, lease: StoredLease, nowMs: number): Observation {
  const key = recordKey(lease.record);
  return previous?.key === key ? previous : { key, atMs: nowMs, record: lease.record };
}

/**
 * client-go's tryAcquireOrRenew as a decision over what was read: create a missing Lease; wait
 * while another holder's Lease is valid (it changed less than its leaseDuration ago, by our
 * clock); else write ourselves in (keeping acquireTime when renewing, counting a transition when taking over).
 */
export function planAttempt(args: {
  identity: string;
  lease: StoredLease | undefined;
  observation: Observation | undefined;
  nowMs: number;
  now: Date;
  leaseDurationSeconds: number;
}): Attempt {
  const { identity, lease, observation, nowMs, now, leaseDurationSeconds } = args;
  const fresh: LeaseRecord = { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 };
  if (!lease) return { action: "create", record: fresh };
  const old = lease.record;
  const heldByUs = old.holderIdentity === identity;
  const valid = observation !== undefined && observation.atMs + old.leaseDurationSeconds * 1000 > nowMs;
  if (old.holderIdentity !== "" && !heldByUs && valid) return { action: "wait", holder: old.holderIdentity };
  const record: LeaseRecord = heldByUs
    ? { ...fresh, acquireTime: old.acquireTime ?? now, leaseTransitions: old.leaseTransitions }
    : { ...fresh, leaseTransitions: old.leaseTransitions + 1 };
  return { action: "update", record, resourceVersion: lease.resourceVersion };
}

/** The record a leader that stops on purpose leaves: no holder, so a follower takes over at its next retry. */
export function releasedRecord(old: LeaseRecord, now: Date): LeaseRecord {
  return { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: old.leaseTransitions };
}

export interface LeaderElectorOptions extends ElectionTimings {
  store: LeaseStore;
  identity: string;
  log: Logger;
  onStartedLeading(): void;
  onStoppedLeading(): void;
  /** Monotonic milliseconds (tests); default performance.now. */
  nowMs?: () => number;
}

/** Sleeps `ms`, or less when `signal` aborts or `wake` is called. */
function sleep(ms: number, signal: AbortSignal, wakeUp?: { wake?: () => void }): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      if (wakeUp) wakeUp.wake = undefined;
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
    if (wakeUp) wakeUp.wake = done;
  });
}

/** A request that may hang (a half-open connection to a restarting API server) counts as failed after `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class LeaderElector {
  private observation: Observation | undefined;
  /** When (monotonic ms) the last successful acquire or renew was SENT: the lease counts from then. */
  private renewedAtMs = Number.NEGATIVE_INFINITY;
  private holding = false;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private readonly nowMs: () => number;
  /** Wakes a sleeping candidate: the watch saw the Lease released. */
  private readonly candidate: { wake?: () => void } = {};
  private stopWatch: (() => void) | undefined;

  constructor(private readonly options: LeaderElectorOptions) {
    const problem = timingsProblem(options);
    if (problem) throw new Error(problem);
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  get identity(): string {
    return this.options.identity;
  }

  /**
   * True while we hold the Lease AND renewed it less than renewDeadline ago. Checked before every
   * write: a leader whose renewals fail stops writing at renewDeadline even if the loop has not
   * noticed yet, which is before leaseDuration, the earliest another candidate may take over.
   */
  isLeader(): boolean {
    return this.holding && this.nowMs() - this.renewedAtMs < this.options.renewDeadlineMs;
  }

  /** The holder as last read (ours included); undefined before the first read. */
  get observedHolder(): string | undefined {
    return this.observation?.record.holderIdentity;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops campaigning; a leader releases the Lease so a follower takes over at its next retry, not after leaseDuration. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.stopWatch?.();
    await this.running;
    if (!this.holding) return;
    this.setHolding(false);
    try {
      const lease = await withTimeout(this.options.store.get(), this.options.retryPeriodMs, "reading the Lease");
      if (lease?.record.holderIdentity === this.identity) {
        await withTimeout(this.options.store.update(releasedRecord(lease.record, new Date()), lease.resourceVersion), this.options.retryPeriodMs, "releasing the Lease");
        this.options.log.info({ lease: this.options.store.description, identity: this.identity }, "leader election: Lease released");
      }
    } catch (err) {
      this.options.log.warn({ lease: this.options.store.description, err: kubeErrorMessage(err) }, "leader election: could not release the Lease; a follower takes over when it expires");
    }
  }

  private setHolding(holding: boolean): void {
    if (holding === this.holding) return;
    this.holding = holding;
    if (holding) this.options.onStartedLeading();
    else this.options.onStoppedLeading();
  }

  private async loop(): Promise<void> {
    const { log, store, retryPeriodMs, renewDeadlineMs, leaseDurationMs } = this.options;
    const signal = this.abort.signal;
    let lastWaitingFor: string | undefined;
    this.stopWatch = store.watch?.((lease) => {
      this.observation = observe(this.observation, lease, this.nowMs());
      if (lease.record.holderIdentity === "") this.candidate.wake?.();
    });
    while (!signal.aborted) {
      // Candidate: try every retryPeriod (jittered, so candidates do not collide).
      const attempt = await this.tryAcquireOrRenew(retryPeriodMs);
      if (signal.aborted) break;
      if (attempt !== true) {
        if (attempt.holder !== lastWaitingFor) log.info({ lease: store.description, holder: attempt.holder, identity: this.identity }, "leader election: following");
        lastWaitingFor = attempt.holder;
        // The next try at the jittered retry period, or right when the holder's Lease expires if sooner.
        const jittered = retryPeriodMs * (1 + Math.random() * (JITTER_FACTOR - 1));
        const untilExpiry = this.observation ? this.observation.atMs + leaseDurationMs - this.nowMs() + 5 : jittered;
        await sleep(Math.min(jittered, Math.max(untilExpiry, 50)), signal, this.candidate);
        continue;
      }
      lastWaitingFor = undefined;
      log.info({ lease: store.description, identity: this.identity }, "leader election: leading");
      this.setHolding(true);
      // Leader: renew every retryPeriod; give up when renewDeadline passed since the last renewal.
      while (!signal.aborted) {
        await sleep(retryPeriodMs, signal);
        if (signal.aborted) break;
        const leftMs = this.renewedAtMs + renewDeadlineMs - this.nowMs();
        const result = leftMs > 0 ? await this.tryAcquireOrRenew(Math.min(leftMs, retryPeriodMs)) : undefined;
        if (result === true) continue;
        // Someone else holds it (we were cut off for longer than leaseDuration): stop at once.
        const takenBy = result && result.holder !== this.identity && result.holder !== "" ? result.holder : undefined;
        if (!takenBy && this.renewedAtMs + renewDeadlineMs - this.nowMs() > 0) continue; // still time for another try
        log.warn(
          { lease: store.description, identity: this.identity, renewDeadlineMs, ...(takenBy ? { holder: takenBy } : {}) },
          takenBy ? "leader election: the Lease is held by another; stopped leading" : "leader election: Lease not renewed within the renew deadline; stopped leading",
        );
        this.setHolding(false);
        break;
      }
    }
  }

  /** One read and at most one write. True: we hold the Lease now. Otherwise who holds it. */
  private async tryAcquireOrRenew(timeoutMs: number): Promise<true | { holder: string }> {
    const { store, log } = this.options;
    const sentAtMs = this.nowMs();
    try {
      const lease = await withTimeout(store.get(), timeoutMs, "reading the Lease");
      if (lease) this.observation = observe(this.observation, lease, this.nowMs());
      const attempt = planAttempt({
        identity: this.identity,
        lease,
        observation: this.observation,
        nowMs: this.nowMs(),
        now: new Date(),
        leaseDurationSeconds: this.options.leaseDurationMs / 1000,
      });
      if (attempt.action === "wait") return { holder: attempt.holder };
      const left = Math.max(1, timeoutMs - (this.nowMs() - sentAtMs));
      const written =
        attempt.action === "create"
          ? await withTimeout(store.create(attempt.record), left, "creating the Lease")
          : await withTimeout(store.update(attempt.record, attempt.resourceVersion), left, "updating the Lease");
      this.observation = observe(this.observation, written, this.nowMs());
      this.renewedAtMs = sentAtMs;
      return true;
    } catch (err) {
      // 409: another candidate wrote first (or our own slow write landed); 404 on create races likewise.
      const code = statusCodeOf(err);
      if (code !== 409) log.warn({ lease: store.description, err: kubeErrorMessage(err) }, "leader election: Lease read or write failed");
      return { holder: this.observation?.record.holderIdentity ?? "" };
    }
  }
}

const toDate = (value: unknown): Date | undefined => (value === undefined || value === null ? undefined : new Date(value as string | Date));

/** The Lease through client-node's CoordinationV1Api. MicroTime fields go out with microseconds, as the API server requires. */
export class KubeLeaseStore implements LeaseStore {
  private readonly api: CoordinationV1Api;
  private readonly watcher: Watch;
  readonly description: string;

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly name: string,
  ) {
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
    this.watcher = new Watch(kubeConfig);
    this.description = `${namespace}/${name}`;
  }

  async get(): Promise<StoredLease | undefined> {
    try {
      return KubeLeaseStore.stored(await this.api.readNamespacedLease({ namespace: this.namespace, name: this.name }));
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord): Promise<StoredLease> {
    return KubeLeaseStore.stored(await this.api.createNamespacedLease({ namespace: this.namespace, body: this.body(record) }));
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<StoredLease> {
    return KubeLeaseStore.stored(await this.api.replaceNamespacedLease({ namespace: this.namespace, name: this.name, body: this.body(record, resourceVersion) }));
  }

  private body(record: LeaseRecord, resourceVersion?: string): V1Lease {
    const micro = (d: Date | undefined) => (d ? new V1MicroTime(d.getTime()) : undefined);
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.name, namespace: this.namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        leaseTransitions: record.leaseTransitions,
        ...(record.acquireTime ? { acquireTime: micro(record.acquireTime) } : {}),
        ...(record.renewTime ? { renewTime: micro(record.renewTime) } : {}),
      },
    };
  }

  /** A watch of this one Lease, restarted a second after it ends or fails; stop() ends it for good. */
  watch(onChange: (lease: StoredLease) => void): () => void {
    let stopped = false;
    let abort: AbortController | undefined;
    let retry: NodeJS.Timeout | undefined;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
    const again = () => {
      if (stopped) return;
      retry = setTimeout(start, 1_000);
      retry.unref?.();
    };
    const start = () => {
      if (stopped) return;
      this.watcher
        .watch(
          path,
          { fieldSelector: `metadata.name=${this.name}`, timeoutSeconds: 300 },
          (type: string, object: V1Lease) => {
            if (type === "ADDED" || type === "MODIFIED") onChange(KubeLeaseStore.stored(object));
          },
          () => again(),
        )
        .then(
          (a) => {
            abort = a;
            if (stopped) a.abort();
          },
          () => again(),
        );
    };
    start();
    return () => {
      stopped = true;
      clearTimeout(retry);
      abort?.abort();
    };
  }

  private static stored(lease: V1Lease): StoredLease {
    const spec = lease.spec ?? {};
    return {
      resourceVersion: lease.metadata?.resourceVersion ?? "",
      record: {
        holderIdentity: spec.holderIdentity ?? "",
        leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
        acquireTime: toDate(spec.acquireTime),
        renewTime: toDate(spec.renewTime),
        leaseTransitions: spec.leaseTransitions ?? 0,
      },
    };
  }
}

/** client-go's default identity: the pod name when the chart passes it, else hostname_uuid (two processes on one host differ). */
export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME ? `${env.POD_NAME}_${randomUUID().slice(0, 8)}` : `${hostname()}_${randomUUID()}`;
}

/** The Lease's namespace when no flag names one: the pod's own (downward API or service account), else "default". */
export function defaultLeaseNamespace(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    return readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim() || "default";
  } catch {
    return "default";
  }
}
