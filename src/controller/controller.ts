// The in-cluster controller: a watcher per kind feeds namespace keys into the work queue, and
// each pass is reconcileNamespace over the watchers' caches. See ADR 0011.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type DDIHost, KINDS } from "../api/index.js";
import type { ApplyOptions } from "../apply/index.js";
import type { KubeItem } from "../engine/kube-status.js";
import { type PassMemory, newPassMemory } from "../engine/reconcile-pass.js";
import { SshTransport } from "../ssh/index.js";
import { jittered } from "./backoff.js";
import { KubeClient, kubeErrorMessage } from "./kube-client.js";
import { ControllerMetrics, type ReconcileResultLabel } from "./metrics.js";
import { reconcileNamespace } from "./reconcile-namespace.js";
import { ResourceWatcher } from "./watcher.js";
import { type WorkResult, WorkQueue } from "./work-queue.js";

/** The `controller` label of metrics and logs: one controller, keyed by namespace. */
export const CONTROLLER_NAME = "namespace";
export const DEFAULT_RESYNC_MS = 60_000;
export const DEFAULT_WORKERS = 4;

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** Watch one namespace only; undefined: all. */
  namespace?: string | undefined;
  /** Drift check after a pass that settled, jittered by up to 10 %. */
  resyncMs?: number;
  /** Namespaces reconciled at once. */
  workers?: number;
  log: Logger;
  metrics?: ControllerMetrics;
  transport?: SshTransport;
  livenessTimeoutMs?: number;
  applyOptions?: ApplyOptions;
}

/**
 * A change worth a pass: anything but an update that touched only status (our own writes among
 * them), which would otherwise make every status write cost one more round of SSH observation.
 * Drift in status edits by others is caught by the periodic resync.
 */
export function isWorthAPass(item: KubeItem, previous: KubeItem | undefined): boolean {
  if (!previous) return true;
  const a = previous.metadata;
  const b = item.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.finalizers ?? []) !== JSON.stringify(b.finalizers ?? []) ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {})
  );
}

export class Controller {
  readonly metrics: ControllerMetrics;
  private readonly client: KubeClient;
  private readonly transport: SshTransport;
  private readonly ownsTransport: boolean;
  private readonly watchers: ResourceWatcher[];
  private readonly queue: WorkQueue;
  private readonly memories = new Map<string, PassMemory>();
  /** The last value read of each Secret the objects name (`namespace/name`): cleanups after a bulk delete use it. */
  private readonly secretCache = new Map<string, KubeItem>();
  /** The DDIHosts each namespace's passes have seen, to release the SSH sessions of those that left. */
  private readonly hostsSeen = new Map<string, Set<string>>();
  private readonly resyncMs: number;
  private readonly log: Logger;

  constructor(private readonly options: ControllerOptions) {
    this.metrics = options.metrics ?? new ControllerMetrics();
    this.client = new KubeClient(options.kubeConfig);
    this.ownsTransport = !options.transport;
    this.transport = options.transport ?? new SshTransport({ logger: options.log });
    this.resyncMs = options.resyncMs ?? DEFAULT_RESYNC_MS;
    this.log = options.log.child({ controller: CONTROLLER_NAME });
    this.queue = new WorkQueue({
      workers: options.workers ?? DEFAULT_WORKERS,
      handle: (namespace) => this.reconcile(namespace),
      onUnexpectedError: (namespace, err) => this.log.error({ namespace, err }, "reconcile threw"),
      metrics: this.metrics.forQueue(CONTROLLER_NAME),
      // No pass before every kind is listed: a pass would see an HAPair without its DDIHosts.
      paused: true,
    });
    this.watchers = KINDS.map(
      ({ kind }) =>
        new ResourceWatcher({
          client: this.client,
          kind,
          namespace: options.namespace,
          log: this.log,
          ...(options.livenessTimeoutMs ? { livenessTimeoutMs: options.livenessTimeoutMs } : {}),
          onChange: (item, type, previous) => {
            if (type === "modified" && !isWorthAPass(item, previous)) return;
            this.queue.add(item.metadata.namespace ?? "default");
          },
          onSynced: () => {
            if (this.ready) {
              this.log.info("every kind listed: reconciling");
              this.queue.resume();
            }
          },
        }),
    );
  }

  /** True once every watcher has listed its kind: /readyz. */
  get ready(): boolean {
    return this.watchers.every((w) => w.hasSynced);
  }

  start(): void {
    this.log.info({ namespace: this.options.namespace ?? "(all)", resyncMs: this.resyncMs }, "controller starting");
    for (const w of this.watchers) w.start();
  }

  /** Stops watching, lets the passes in flight finish, closes the SSH connections. */
  async stop(): Promise<void> {
    for (const w of this.watchers) w.stop();
    await this.queue.shutdown();
    if (this.ownsTransport) await this.transport.closeAll();
    this.log.info("controller stopped");
  }

  private objectsIn(namespace: string): KubeItem[] {
    return this.watchers.flatMap((w) => w.list(namespace));
  }

  /**
   * Closes the pooled SSH sessions of the namespace's DDIHosts that left the cache (deleted, or
   * the namespace emptied): no keepalives to a host we no longer manage, no key kept for it.
   * Runs in the namespace's own pass, so no pass is using those sessions.
   */
  private async releaseHostsGone(namespace: string): Promise<void> {
    const now = new Set(this.objectsIn(namespace).filter((i) => i.kind === "DDIHost").map((i) => i.metadata.name));
    for (const name of this.hostsSeen.get(namespace) ?? []) {
      if (now.has(name)) continue;
      await this.transport.release({ metadata: { name, namespace } } as DDIHost);
      this.log.debug({ namespace, name }, "DDIHost gone: SSH session released");
    }
    if (now.size > 0) this.hostsSeen.set(namespace, now);
    else this.hostsSeen.delete(namespace);
  }

  private memoryOf(namespace: string): PassMemory {
    let memory = this.memories.get(namespace);
    if (!memory) this.memories.set(namespace, (memory = newPassMemory()));
    return memory;
  }

  private async reconcile(namespace: string): Promise<WorkResult> {
    const log = this.log.child({ namespace, reconcileID: randomUUID() });
    const started = performance.now();
    let result: ReconcileResultLabel = "error";
    try {
      const outcome = await reconcileNamespace(namespace, {
        client: this.client,
        transport: this.transport,
        objectsIn: (ns) => this.objectsIn(ns),
        memoryOf: (ns) => this.memoryOf(ns),
        secretCache: this.secretCache,
        metrics: this.metrics,
        log,
        ...(this.options.applyOptions ? { applyOptions: this.options.applyOptions } : {}),
      });
      const elapsedMs = Math.round(performance.now() - started);
      if (outcome.resources === 0) {
        // The namespace's last object is gone: nothing to check again until an event.
        this.memories.delete(namespace);
        result = "success";
        log.debug({ elapsedMs }, "namespace empty");
        return {};
      }
      if (outcome.errors.length > 0) {
        log.error({ errors: outcome.errors, elapsedMs }, "reconcile failed; retrying with backoff");
        return { retry: true };
      }
      if (outcome.waiting.length > 0) {
        result = "requeue";
        log.info({ waiting: outcome.waiting, statusesWritten: outcome.statusesWritten, elapsedMs }, "not settled yet; looking again soon");
        return { retry: true, maxRetryDelayMs: this.resyncMs };
      }
      result = "success";
      log.info({ resources: outcome.resources, statusesWritten: outcome.statusesWritten, elapsedMs }, "reconciled");
      return { requeueAfterMs: jittered(this.resyncMs) };
    } catch (err) {
      log.error({ err: kubeErrorMessage(err), elapsedMs: Math.round(performance.now() - started) }, "reconcile failed; retrying with backoff");
      return { retry: true };
    } finally {
      this.metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result });
      if (result === "error") this.metrics.reconcileErrors.inc({ controller: CONTROLLER_NAME });
      this.metrics.reconcileTime.observe({ controller: CONTROLLER_NAME }, (performance.now() - started) / 1000);
      await this.releaseHostsGone(namespace).catch((err: unknown) => log.warn({ err: kubeErrorMessage(err) }, "releasing SSH sessions failed"));
    }
  }
}
