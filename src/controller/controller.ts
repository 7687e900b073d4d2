// The in-cluster controller: a watcher per kind feeds object keys (kind/namespace/name) into the
// work queue; each pass is reconcileObject over the watchers' caches. Resync is per host: a
// DDIHost's pass takes its host's one probe and requeues the relationships on it, which reuse
// that probe. A stream per host (address changes) makes a VIP move reach status at once. See ADR 0015.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type DDIHost, RELATIONSHIP_KINDS } from "../api/index.js";
import { DrillController } from "../drill/controller.js";
import type { ApplyOptions } from "../apply/index.js";
import { DoubtDeadlines, HostProbes, hostKeyOf, probeRequestFor } from "../engine/host-probes.js";
import { type KubeItem, itemsAsDocuments, kubeItemKey } from "../engine/kube-status.js";
import { type ComputedStatus, newPassMemory } from "../engine/reconcile-pass.js";
import type { SessionProvider } from "../engine/render-inputs.js";
import { DEFAULT_KUBE_API_RATE, DEFAULT_SSH_CONNECT_RATE, type RateLimit } from "../exec/rate-limit.js";
import { type AddressWatch, probeHost, watchHostEvents } from "../observe/index.js";
import { SshTransport } from "../ssh/index.js";
import { type ValidatedSet, validateObjects } from "../validation/validate.js";
import { jittered } from "./backoff.js";
import { EventRecorder, KubeEventSink } from "./events.js";
import { KubeClient, kubeErrorMessage } from "./kube-client.js";
import { ControllerMetrics, type ReconcileResultLabel } from "./metrics.js";
import { hostNamesOfItem, reconcileObject } from "./reconcile-object.js";
import { SecretReads } from "./secret-reads.js";
import { ResourceWatcher } from "./watcher.js";
import { type WorkResult, WorkQueue } from "./work-queue.js";

/** The `controller` label of metrics and logs: one controller, keyed by object. */
export const CONTROLLER_NAME = "object";
export const DEFAULT_RESYNC_MS = 60_000;
export const DEFAULT_WORKERS = 4;
/** How often Kea HA and dhcpd failover states are asked (through the forwards: no exec). */
export const DEFAULT_POLL_MS = 5_000;
/** How long a Secret read from the API server is reused. */
const SECRET_TTL_MS = 30_000;
/**
 * After an address change on a host, the passes it starts wait at most this long for the peers'
 * probes: a frozen peer (still holding the VIP on its interface, answering nothing) is reported in
 * doubt instead of holding the move out of status until its SSH session is declared dead. Normal
 * probes answer in tens to hundreds of ms.
 */
const IN_DOUBT_AFTER_MS = 1_000;
/** How long after the address change its passes keep that short wait. */
const URGENT_WINDOW_MS = 5_000;

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** Watch one namespace only; undefined: all. */
  namespace?: string | undefined;
  /** Each host's full check (one probe, drift included), jittered by up to 10 %. */
  resyncMs?: number;
  /** Kea HA and dhcpd failover state polling. */
  pollMs?: number;
  /** Objects reconciled at once. */
  workers?: number;
  log: Logger;
  metrics?: ControllerMetrics;
  transport?: SshTransport;
  livenessTimeoutMs?: number;
  applyOptions?: ApplyOptions;
  /** Stream each host's address changes into the queue (default true). */
  hostStreams?: boolean;
  /** Client-side limit of API requests (watches aside). Default QPS 20, burst 30, as controller-runtime. */
  kubeApiRate?: RateLimit;
  /** Client-side limit of new SSH connections, when the controller makes its own transport. Default 20/s, burst 40. */
  sshConnectRate?: RateLimit;
  /**
   * Leader election: while this says false the controller keeps its caches warm but reconciles
   * nothing and writes nothing. Call `leadershipChanged()` when it flips.
   */
  isLeader?: () => boolean;
  /** How often a FailoverDrill run observes its hosts (default 200 ms). */
  drillPollMs?: number;
  /** The process's identity (leader election's): reportingInstance of its Events. Default: the host name. */
  identity?: string;
}

/**
 * A change worth a pass: anything but an update that touched only status (our own writes among
 * them), which would otherwise make every status write cost one more round of SSH observation.
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

/**
 * The keys a change to `item` must requeue besides its own: the objects a cross-object rule ties
 * it to. A DDIHost: every relationship that names it. A relationship: the DDIHosts it names (their
 * in-use finalizer) and every other relationship on those hosts (VRID collisions, one Kea cluster
 * or failover peer per host, files two resources fight over).
 */
export function relatedKeys(item: KubeItem, namespaceItems: readonly KubeItem[]): string[] {
  const own = kubeItemKey(item);
  const hosts = new Set(item.kind === "DDIHost" ? [item.metadata.name] : hostNamesOfItem(item));
  const keys = new Set<string>();
  for (const other of namespaceItems) {
    const key = kubeItemKey(other);
    if (key === own) continue;
    if (other.kind === "DDIHost") {
      if (hosts.has(other.metadata.name)) keys.add(key);
    } else if (hostNamesOfItem(other).some((h) => hosts.has(h))) {
      keys.add(key);
    }
  }
  return [...keys].sort();
}

export class Controller {
  readonly metrics: ControllerMetrics;
  /** Each host's latest probe: what a no-op resync costs (one exec per host). */
  readonly probes = new HostProbes();
  private readonly client: KubeClient;
  private readonly transport: SshTransport;
  private readonly ownsTransport: boolean;
  private readonly watchers: ResourceWatcher[];
  /** FailoverDrills: their own watcher, outside the relationships' caches (ADR 0031). */
  private readonly drillWatcher: ResourceWatcher;
  private readonly drills: DrillController;
  private readonly queue: WorkQueue;
  private readonly memory = newPassMemory();
  private readonly secretCache = new Map<string, KubeItem>();
  private readonly secretReads: SecretReads;
  /**
   * Each namespace's objects validated (no Secrets), dropped on any change but a status-only one:
   * every pass and probe request of the namespace shares it, so a pass costs O(its own objects),
   * not O(namespace) (ADR 0032).
   */
  private readonly namespaceValidations = new Map<string, ValidatedSet>();
  /** The last status computed for each object, for the namespace's gauges. */
  private readonly lastStatuses = new Map<string, ComputedStatus>();
  private readonly streams = new Map<string, AddressWatch>();
  /** Keys an address change on a peer requeued, until when their probes of the other hosts wait only IN_DOUBT_AFTER_MS. */
  private readonly urgentUntil = new Map<string, { until: number; eventHost: string }>();
  /** When a probe those passes wait for is in doubt: IN_DOUBT_AFTER_MS after the first wait for it. */
  private readonly doubt = new DoubtDeadlines(IN_DOUBT_AFTER_MS);
  private readonly resyncMs: number;
  private readonly pollMs: number;
  private readonly log: Logger;
  /** Transition Events (events.k8s.io/v1), written by the leader's passes only. */
  private readonly events: EventRecorder;
  private stopped = false;

  constructor(private readonly options: ControllerOptions) {
    this.metrics = options.metrics ?? new ControllerMetrics();
    this.client = new KubeClient(options.kubeConfig, options.kubeApiRate ?? DEFAULT_KUBE_API_RATE);
    this.ownsTransport = !options.transport;
    this.transport = options.transport ?? new SshTransport({ logger: options.log, connectRate: options.sshConnectRate ?? DEFAULT_SSH_CONNECT_RATE });
    this.resyncMs = options.resyncMs ?? DEFAULT_RESYNC_MS;
    this.pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    this.log = options.log.child({ controller: CONTROLLER_NAME });
    this.events = new EventRecorder({ sink: new KubeEventSink(options.kubeConfig, this.client.gate), reportingInstance: options.identity ?? hostname(), log: this.log, registry: this.metrics.registry });
    this.secretReads = new SecretReads({ read: (ns, name) => this.client.readSecret(ns, name), ttlMs: SECRET_TTL_MS, log: this.log });
    this.queue = new WorkQueue({
      workers: options.workers ?? DEFAULT_WORKERS,
      handle: (key) => this.reconcile(key),
      onUnexpectedError: (key, err) => this.log.error({ key, err }, "reconcile threw"),
      metrics: this.metrics.forQueue(CONTROLLER_NAME),
      // No pass before every kind is listed: a pass would see an HAPair without its DDIHosts.
      paused: true,
    });
    this.watchers = RELATIONSHIP_KINDS.map(
      ({ kind }) =>
        new ResourceWatcher({
          client: this.client,
          kind,
          namespace: options.namespace,
          log: this.log,
          ...(options.livenessTimeoutMs ? { livenessTimeoutMs: options.livenessTimeoutMs } : {}),
          onChange: (item, type, previous) => this.onChange(item, type, previous),
          onRestart: this.metrics.forWatcher(kind),
          onSynced: () => this.resumeWhenSynced(),
        }),
    );
    this.drillWatcher = new ResourceWatcher({
      client: this.client,
      kind: "FailoverDrill",
      namespace: options.namespace,
      log: this.log,
      ...(options.livenessTimeoutMs ? { livenessTimeoutMs: options.livenessTimeoutMs } : {}),
      onChange: (item, type, previous) => {
        if (type === "modified" && !isWorthAPass(item, previous)) return;
        this.queue.add(kubeItemKey(item));
      },
      onRestart: this.metrics.forWatcher("FailoverDrill"),
      onSynced: () => this.resumeWhenSynced(),
    });
    this.drills = new DrillController({
      client: this.client,
      transport: this.transport,
      drillsIn: (ns) => this.drillWatcher.list(ns),
      objectsIn: (ns) => this.objectsIn(ns),
      readSecret: (ns, n) => this.secretReads.read(ns, n),
      canWrite: () => this.leading && !this.stopped,
      requeue: (key) => this.queue.add(key),
      metrics: this.metrics,
      log: this.log,
      ...(options.drillPollMs ? { pollIntervalMs: options.drillPollMs } : {}),
    });
  }

  private resumeWhenSynced(): void {
    if (this.ready) {
      this.log.info("every kind listed: reconciling");
      this.queue.resume();
    }
  }

  /** True once every watcher has listed its kind: /readyz. */
  get ready(): boolean {
    return this.watchers.every((w) => w.hasSynced) && this.drillWatcher.hasSynced;
  }

  private get leading(): boolean {
    return this.options.isLeader?.() ?? true;
  }

  start(): void {
    this.log.info({ namespace: this.options.namespace ?? "(all)", resyncMs: this.resyncMs, pollMs: this.pollMs }, "controller starting");
    for (const w of this.watchers) w.start();
    this.drillWatcher.start();
  }

  /** Stops watching, lets the passes in flight finish, closes the streams and SSH connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.watchers) w.stop();
    this.drillWatcher.stop();
    await this.queue.shutdown();
    // A drill run in progress sees stopped, undoes its break and ends.
    await this.drills.stop();
    // An API server that went away must not hold the shutdown (and the Lease's release) for long.
    await this.events.idle(5_000);
    await Promise.all([...this.streams.values()].map((s) => s.stop().catch(() => undefined)));
    this.streams.clear();
    if (this.ownsTransport) await this.transport.closeAll();
    this.log.info("controller stopped");
  }

  /**
   * Leadership flipped. A new leader looks at everything at once, from caches the watchers kept
   * warm while it followed (no re-list). A demoted one closes its host streams and forgets its
   * probes: the next leader has its own, and this process would only act on stale ones.
   */
  async leadershipChanged(): Promise<void> {
    if (this.leading) {
      for (const item of [...this.allItems(), ...this.drillWatcher.list()]) this.queue.add(kubeItemKey(item));
      return;
    }
    const streams = [...this.streams.entries()];
    this.streams.clear();
    for (const [hostKey] of streams) this.probes.forget(hostKey);
    await Promise.all(streams.map(([, s]) => s.stop().catch(() => undefined)));
  }

  /** The SSH channels opened per host so far (exec, stream, forward). */
  channelsOpened() {
    return this.transport.channelsOpened();
  }

  private allItems(): KubeItem[] {
    return this.watchers.flatMap((w) => w.list());
  }

  private objectsIn(namespace: string): KubeItem[] {
    return this.watchers.flatMap((w) => w.list(namespace));
  }

  private onChange(item: KubeItem, type: string, previous: KubeItem | undefined): void {
    const namespace = item.metadata.namespace ?? "default";
    // Our own status writes come back here too: they change nothing validation reads.
    if (type === "modified" && !isWorthAPass(item, previous)) return;
    this.namespaceValidations.delete(namespace);
    const key = kubeItemKey(item);
    this.queue.add(key);
    for (const related of relatedKeys(item, this.objectsIn(namespace))) this.queue.add(related);
    // A relationship may have moved off a host: the hosts it used before are requeued too.
    if (previous) for (const related of relatedKeys(previous, this.objectsIn(namespace))) this.queue.add(related);
  }

  private namespaceValidation(namespace: string): ValidatedSet {
    let validated = this.namespaceValidations.get(namespace);
    if (!validated) {
      validated = validateObjects(itemsAsDocuments(this.objectsIn(namespace), "kube-apiserver"));
      this.namespaceValidations.set(namespace, validated);
    }
    return validated;
  }

  /** The probe a pass of `key` uses for `host`: a DDIHost's own pass takes a new one, the others reuse it. */
  private probeFor(key: string, host: DDIHost, sessionOf: SessionProvider): Promise<ReturnType<typeof probeHost> extends Promise<infer P> ? P : never> {
    const ownHostPass = key === kubeItemKey(host);
    // Within one resync (plus its jitter) a relationship's pass reuses its hosts' probes.
    const maxAgeMs = ownHostPass ? 1_000 : Math.round(this.resyncMs * 1.25);
    const probe = this.probes.get(hostKeyOf(host), maxAgeMs, async () => {
      const session = await sessionOf(host);
      this.ensureStream(host, session);
      return probeHost(session, probeRequestFor(this.namespaceValidation(host.metadata.namespace ?? "default").set, host));
    });
    const urgent = this.urgentUntil.get(key);
    if (ownHostPass || !urgent || urgent.until < Date.now() || urgent.eventHost === hostKeyOf(host)) return probe;
    return this.doubt.within(probe, host.metadata.name, () => this.queue.add(key));
  }

  /**
   * One long-lived host-events stream per host on its pooled session: an address change (a VIP
   * moving), a DDI unit's state change or a VRRP transition in the journal invalidates the host's
   * probe and requeues the relationships on it, so the change is in status within a round trip.
   * A restarted stream may have missed changes: full resync of the host.
   */
  private ensureStream(host: DDIHost, session: Parameters<typeof watchHostEvents>[0]): void {
    if (this.options.hostStreams === false || this.stopped) return;
    const hostKey = hostKeyOf(host);
    if (this.streams.has(hostKey)) return;
    const namespace = host.metadata.namespace ?? "default";
    const requeueHost = (why: string, peersToo: boolean) => {
      this.probes.invalidate(hostKey);
      const items = this.objectsIn(namespace);
      const item = items.find((i) => i.kind === "DDIHost" && i.metadata.name === host.metadata.name);
      if (!item) return;
      this.log.debug({ host: hostKey, why }, "host event: requeueing its objects");
      const related = relatedKeys(item, items);
      // A VIP that moved here moved from a peer, whose cached probe still shows it holding the VIP
      // (and a frozen peer's stream says nothing): probe the peers again too, or status would call
      // the move a split brain until the peers' next resync.
      if (peersToo)
        for (const key of related) {
          const relationship = key.startsWith("DDIHost/") ? undefined : items.find((i) => kubeItemKey(i) === key);
          for (const peer of relationship ? hostNamesOfItem(relationship) : []) this.probes.invalidate(hostKeyOf({ metadata: { namespace, name: peer } }));
        }
      if (peersToo) {
        const now = Date.now();
        for (const [key, urgent] of this.urgentUntil) if (urgent.until < now) this.urgentUntil.delete(key);
        for (const key of related) this.urgentUntil.set(key, { until: now + URGENT_WINDOW_MS, eventHost: hostKey });
      }
      for (const key of [kubeItemKey(item), ...related]) this.queue.add(key);
    };
    const watch = watchHostEvents(session, (event) => {
      if (event.type === "add" || event.type === "delete") requeueHost(`address ${event.type} ${event.address}`, true);
      // A unit stopped or a VRRP transition without an address change (a backup going to FAULT, a
      // tracked service dying on the backup): this host's state changed, its peers' did not.
      else if (event.type === "unit") requeueHost(`journal: ${event.message}`, false);
      else if (event.type === "watching" && event.restarts > 0) requeueHost("stream restarted", false);
    });
    this.streams.set(hostKey, watch);
  }

  private async forgetHost(hostKey: string, name: string, namespace: string): Promise<void> {
    this.probes.forget(hostKey);
    const stream = this.streams.get(hostKey);
    this.streams.delete(hostKey);
    await stream?.stop().catch(() => undefined);
    await this.transport.release({ metadata: { name, namespace } } as DDIHost);
    this.log.debug({ namespace, name }, "DDIHost gone: stream stopped, SSH session released");
  }

  private publish(namespace: string): void {
    const prefix = new RegExp(`^[^/]+/${namespace.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/`);
    this.metrics.publishNamespace(namespace, [...this.lastStatuses].filter(([k]) => prefix.test(k)).map(([, s]) => s));
  }

  private async reconcile(key: string): Promise<WorkResult> {
    if (!this.leading) return {};
    const [kind, namespace = "default", name = ""] = key.split("/");
    if (kind === "FailoverDrill") return this.drills.reconcile(key);
    const log = this.log.child({ kind, namespace, name, reconcileID: randomUUID() });
    const started = performance.now();
    let result: ReconcileResultLabel = "error";
    try {
      const outcome = await reconcileObject(key, {
        client: this.client,
        transport: this.transport,
        objectsIn: (ns) => this.objectsIn(ns),
        validated: (ns) => this.namespaceValidation(ns),
        memory: this.memory,
        canWrite: () => this.leading && !this.stopped,
        readSecret: (ns, n) => this.secretReads.read(ns, n),
        probeOf: (host, sessionOf) => this.probeFor(key, host, sessionOf),
        onHostApplied: (host) => this.probes.invalidate(hostKeyOf(host)),
        onWritten: (item) => this.watchers.find((w) => w.kind === item.kind)?.noteWrite(item),
        secretCache: this.secretCache,
        metrics: this.metrics,
        events: this.events,
        log,
        ...(this.options.applyOptions ? { applyOptions: this.options.applyOptions } : {}),
      });
      const elapsedMs = Math.round(performance.now() - started);
      if (!outcome.exists) {
        // Deleted: its series go; a host's stream and session are closed.
        this.lastStatuses.delete(key);
        this.publish(namespace);
        if (kind === "DDIHost") await this.forgetHost(`${namespace}/${name}`, name, namespace);
        result = "success";
        log.debug({ elapsedMs }, "object gone");
        return {};
      }
      if (outcome.computed) {
        // Without its recompute closure: that holds the whole pass (its item snapshots, index,
        // validated set), and 1,000 objects' last passes held 280 MB of heap (issue 11).
        this.lastStatuses.set(key, { resource: outcome.computed.resource, status: outcome.computed.status });
        this.publish(namespace);
      }
      if (outcome.drift?.corrected) this.metrics.driftCorrections.inc({ kind: kind! });
      // A DDIHost's pass took the host's probe of this resync: the relationships on it use it now.
      if (kind === "DDIHost" && outcome.computed) {
        const item = this.objectsIn(namespace).find((i) => kubeItemKey(i) === key);
        if (item) for (const related of relatedKeys(item, this.objectsIn(namespace))) if (!related.startsWith("DDIHost/")) this.queue.add(related);
      }
      if (outcome.errors.length > 0) {
        log.error({ errors: outcome.errors, elapsedMs }, "reconcile failed; retrying with backoff");
        return { retry: true };
      }
      if (outcome.waiting.length > 0) {
        result = "requeue";
        log.info({ waiting: outcome.waiting, statusesWritten: outcome.statusesWritten, elapsedMs }, "not settled yet; looking again soon");
        return { retry: true, maxRetryDelayMs: Math.min(this.resyncMs, kind === "DDIHost" ? this.resyncMs : this.pollMs * 2) };
      }
      result = "success";
      // Info when something was written; a quiet resync is debug (one per object and resync).
      (outcome.statusesWritten > 0 ? log.info.bind(log) : log.debug.bind(log))({ statusesWritten: outcome.statusesWritten, elapsedMs }, "reconciled");
      // The resync is the host's; Kea and dhcpd states are polled (their probes are reused).
      if (kind === "DDIHost") return { requeueAfterMs: jittered(this.resyncMs) };
      if (kind === "KeaHACluster" || kind === "DhcpFailoverPeer") return { requeueAfterMs: this.pollMs };
      return {};
    } catch (err) {
      log.error({ err: kubeErrorMessage(err), elapsedMs: Math.round(performance.now() - started) }, "reconcile failed; retrying with backoff");
      return { retry: true };
    } finally {
      this.metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result });
      if (result === "error") this.metrics.reconcileErrors.inc({ controller: CONTROLLER_NAME });
      this.metrics.reconcileTime.observe({ controller: CONTROLLER_NAME }, (performance.now() - started) / 1000);
    }
  }
}
