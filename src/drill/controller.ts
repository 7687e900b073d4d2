// The FailoverDrill side of the controller: one reconcile per drill key from the controller's work
// queue (leader only). It decides whether a run is due (machine.ts), refuses one whose pair is not
// Ready, starts a run in the background (runner.ts) over the controller's pooled SSH sessions, and
// restores a run a previous process left half done (status.active). See ADR 0031.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import {
  type DrillPhase,
  type DrillRun,
  type FailoverDrillSpec,
  type FailoverDrillStatus,
  type HAPairSpec,
  type HAPairStatus,
  type KeaHAClusterSpec,
  type KeaHAClusterStatus,
  durationToMs,
  failoverDrillSpecSchema,
  haPairSpecSchema,
  keaHAClusterSpecSchema,
} from "../api/index.js";
import { peerUrl } from "../daemons/kea/index.js";
import type { KeaPeerTarget } from "../observe/kea-ha.js";
import { hostsInNamespace } from "../render/render-set.js";
import { type KubeItem, indexItems, itemsAsDocuments, kubeItemKey, pinsFromStatus, statusPatchIfChanged } from "../engine/kube-status.js";
import type { SessionProvider } from "../engine/render-inputs.js";
import { manifestSessionProvider } from "../engine/sessions.js";
import type { SshTransport } from "../ssh/index.js";
import { findCondition, rfc3339 } from "../status/index.js";
import { validateManifests } from "../validation/validate.js";
import type { KubeClient } from "../controller/kube-client.js";
import { kubeErrorMessage, statusCodeOf } from "../controller/kube-client.js";
import type { ControllerMetrics } from "../controller/metrics.js";
import type { WorkResult } from "../controller/work-queue.js";
import { type KeaClusterView, type KeaDrillPeers, type KeaRunState, keaPreflight } from "./kea-machine.js";
import { cancelKeaDrill, runKeaDrill } from "./kea-runner.js";
import { type RunEnd, breakTarget, restoreHost, runDrill } from "./runner.js";
import { type PairView, preflight, refusedRun, schedule, withRun } from "./machine.js";
import { publishDrills } from "./metrics.js";
import { drillStatus } from "./status.js";

/** The longest a scheduled drill waits in the queue before its schedule is looked at again. */
const MAX_REQUEUE_MS = 3_600_000;

export interface DrillControllerDeps {
  client: KubeClient;
  transport: SshTransport;
  /** The namespace's FailoverDrills, as the watcher's cache holds them. */
  drillsIn(namespace: string): KubeItem[];
  /** The namespace's DDIHosts and relationships, as the watchers' caches hold them. */
  objectsIn(namespace: string): KubeItem[];
  readSecret(namespace: string, name: string): Promise<KubeItem | undefined>;
  /** False on a follower, or once the controller stops: nothing is started or written. */
  canWrite(): boolean;
  /** Puts the key back in the work queue (a run ended). */
  requeue(key: string): void;
  metrics: ControllerMetrics;
  log: Logger;
  pollIntervalMs?: number;
}

const newRunID = () => randomBytes(5).toString("hex");

/** Whether a relationship's cached status says Ready for its current generation, and why not. */
function readiness(item: KubeItem | undefined, status: { conditions?: HAPairStatus["conditions"]; observedGeneration?: number }, exists: boolean) {
  const ready = findCondition(status.conditions, "Ready");
  const current = status.observedGeneration !== undefined && status.observedGeneration === item?.metadata.generation;
  return {
    exists,
    ready: ready?.status === "True" && current,
    readyMessage: !current && item ? "its status is not for its current generation yet" : ready?.message,
  };
}

function pairView(item: KubeItem | undefined, spec: HAPairSpec | undefined): PairView {
  const status = (item?.status ?? {}) as HAPairStatus;
  return {
    ...readiness(item, status, item !== undefined && spec !== undefined),
    activeNode: status.activeNode,
    nodes: status.nodes,
    primaryHost: spec?.primary.host ?? "",
    secondaryHost: spec?.secondary.host ?? "",
  };
}

function keaClusterView(item: KubeItem | undefined, spec: KeaHAClusterSpec | undefined): KeaClusterView {
  const status = (item?.status ?? {}) as KeaHAClusterStatus;
  return { ...readiness(item, status, item !== undefined && spec !== undefined), spec, peers: status.peers };
}

export class DrillController {
  /** Runs in progress in this process, by drill key. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** The latest object each key's status was written over (the cache may lag our own writes). */
  private readonly latest = new Map<string, KubeItem>();

  constructor(private readonly deps: DrillControllerDeps) {}

  /** Resolves when every run in progress has restored its host and ended. */
  async stop(): Promise<void> {
    await Promise.all(this.inFlight.values());
  }

  async reconcile(key: string): Promise<WorkResult> {
    const [, namespace = "default", name = ""] = key.split("/");
    const cached = this.deps.drillsIn(namespace).find((i) => i.metadata.name === name);
    this.publish(namespace);
    if (!cached) {
      this.latest.delete(key);
      return {};
    }
    if (this.inFlight.has(key) || !this.deps.canWrite()) return {};
    const item = this.freshest(key, cached);
    const status = (item.status ?? {}) as FailoverDrillStatus;
    const generation = item.metadata.generation ?? 0;
    const parsed = failoverDrillSpecSchema.safeParse(item.spec);
    if (!parsed.success) {
      const message = parsed.error.issues.map((i) => `spec.${i.path.join(".")}: ${i.message}`).join("; ");
      await this.write(key, item, drillStatus(status, { ...this.kept(status), phase: status.phase ?? "Pending" }, generation, new Date(), message));
      return {};
    }
    const spec = parsed.data;
    const pairItem = this.deps.objectsIn(namespace).find((i) => i.kind === spec.target.kind && i.metadata.name === spec.target.name);
    const kea = spec.target.kind === "KeaHACluster";
    const pairSpec = pairItem && !kea ? haPairSpecSchema.safeParse(pairItem.spec) : undefined;
    const keaParsed = pairItem && kea ? keaHAClusterSpecSchema.safeParse(pairItem.spec) : undefined;
    const keaSpec = keaParsed?.success ? keaParsed.data : undefined;
    let runs = status.runs;
    // A run a previous process (or leader) left mid-way: its break is undone here, once.
    if (status.active) {
      const interrupted = kea
        ? await this.cancelInterrupted(namespace, spec, status, pairItem, keaSpec)
        : await this.restoreInterrupted(namespace, spec, status, pairSpec?.success ? pairSpec.data : undefined);
      runs = withRun(runs, interrupted, spec.historyLimit);
    }
    const now = new Date();
    const created = new Date(String(item.metadata.creationTimestamp ?? now.toISOString()));
    const when = schedule(spec, created, status.lastScheduleTime, runs?.length ?? 0, now);
    const next = when.next ? rfc3339(when.next) : undefined;
    const base = { runs, lastScheduleTime: status.lastScheduleTime, nextScheduleTime: next };
    if (!when.due) {
      await this.write(key, item, drillStatus(status, { ...base, phase: phaseOf(runs) }, generation, now));
      return when.next ? { requeueAfterMs: Math.min(MAX_REQUEUE_MS, Math.max(1_000, when.next.getTime() - now.getTime())) } : {};
    }
    const runID = newRunID();
    const started = { ...base, lastScheduleTime: rfc3339(now) };
    const pair = pairSpec?.success ? pairSpec.data : undefined;
    const check = kea ? keaPreflight(spec.target.name, keaClusterView(pairItem, keaSpec)) : preflight(spec.target.name, pairView(pairItem, pair));
    if (!check.ok || (!kea && !pair)) {
      const message = check.ok ? `refused: HAPair ${spec.target.name} has an invalid spec; nothing was touched` : check.message;
      const run = refusedRun(spec, runID, now.getTime(), Date.now(), { reason: "TargetNotReady", message });
      const done = withRun(runs, run, spec.historyLimit);
      await this.write(key, item, drillStatus(status, { ...started, runs: done, phase: "Failed" }, generation, now));
      this.deps.log.warn({ drill: key, message }, "drill refused");
      this.publish(namespace);
      return when.next ? { requeueAfterMs: Math.min(MAX_REQUEUE_MS, Math.max(1_000, when.next.getTime() - now.getTime())) } : {};
    }
    const peerHost = "survivorHost" in check ? check.survivorHost : check.peerHost;
    await this.write(key, item, drillStatus(status, { ...started, phase: "Checking", active: { runID, startTime: rfc3339(now), activeHost: check.activeHost, peerHost } }, generation, now));
    const runInfo = { runID, activeHost: check.activeHost, peerHost, started, generation };
    const run = "survivorHost" in check ? this.startKea(key, namespace, spec, pairItem!, check, runInfo) : this.start(key, namespace, spec, pair!, runInfo);
    this.inFlight.set(
      key,
      run.finally(() => {
        this.inFlight.delete(key);
        this.deps.requeue(key);
      }),
    );
    return {};
  }

  private kept(status: FailoverDrillStatus) {
    return { runs: status.runs, lastScheduleTime: status.lastScheduleTime, nextScheduleTime: status.nextScheduleTime, active: status.active };
  }

  private freshest(key: string, cached: KubeItem): KubeItem {
    const written = this.latest.get(key);
    const version = (i: KubeItem) => Number(i.metadata.resourceVersion ?? 0);
    return written && written.metadata.uid === cached.metadata.uid && version(written) > version(cached) ? written : cached;
  }

  private async sessionsFor(namespace: string): Promise<SessionProvider> {
    const items = this.deps.objectsIn(namespace);
    const secretNames = [...new Set(items.flatMap((i) => (i.kind === "DDIHost" ? [(i.spec as { credentialsSecretRef?: { name?: string } })?.credentialsSecretRef?.name ?? ""] : [])).filter(Boolean))];
    const secrets = (await Promise.all(secretNames.map((n) => this.deps.readSecret(namespace, n).catch(() => undefined)))).filter((s): s is KubeItem => s !== undefined);
    const { set } = validateManifests(itemsAsDocuments([...items.filter((i) => i.kind === "DDIHost"), ...secrets], "kube-apiserver"));
    const pins = pinsFromStatus(indexItems(items));
    const sessions = manifestSessionProvider(set, this.deps.transport, pins, (ns, n) => `create Secret ${n} in namespace ${ns} with the SSH private key under privateKey`);
    return async (host) => sessions(host);
  }

  private async runnerFor(namespace: string, host: string) {
    const sessions = await this.sessionsFor(namespace);
    const item = this.deps.objectsIn(namespace).find((i) => i.kind === "DDIHost" && i.metadata.name === host);
    if (!item) throw new Error(`DDIHost ${host} is not in namespace ${namespace}`);
    const { set } = validateManifests(itemsAsDocuments([item], "kube-apiserver"));
    const ddiHost = [...set.hosts.values()][0];
    if (!ddiHost) throw new Error(`DDIHost ${host} has an invalid spec`);
    return sessions(ddiHost);
  }

  private start(key: string, namespace: string, spec: FailoverDrillSpec, pair: HAPairSpec, run: RunInfo): Promise<void> {
    return this.record(key, namespace, spec, run, async (hooks) => {
      const [active, peer] = await Promise.all([this.runnerFor(namespace, run.activeHost), this.runnerFor(namespace, run.peerHost)]);
      return runDrill({ spec, pair, runID: run.runID, activeHost: run.activeHost, peerHost: run.peerHost, active, peer, ...hooks });
    });
  }

  private startKea(key: string, namespace: string, spec: FailoverDrillSpec, clusterItem: KubeItem, peers: KeaDrillPeers, run: RunInfo): Promise<void> {
    return this.record(key, namespace, spec, run, async (hooks) => {
      const targets = this.keaTargets(namespace, clusterItem, peers);
      const [active, survivor] = await Promise.all([this.runnerFor(namespace, peers.activeHost), this.runnerFor(namespace, peers.survivorHost)]);
      return runKeaDrill({
        spec,
        runID: run.runID,
        peers,
        activeTarget: targets.active,
        survivorTarget: targets.survivor,
        active,
        survivor,
        ...hooks,
        report: (phase, state: KeaRunState) => hooks.report(phase, { ...state, peerHost: state.survivorHost }),
      });
    });
  }

  /** The Control Agents of the drill's two peers, as the renderer writes their URLs. */
  private keaTargets(namespace: string, clusterItem: KubeItem, peers: KeaDrillPeers): { active: KeaPeerTarget; survivor: KeaPeerTarget } {
    const items = this.deps.objectsIn(namespace).filter((i) => i.kind === "DDIHost");
    const { set } = validateManifests(itemsAsDocuments([...items, clusterItem], "kube-apiserver"));
    const cluster = set.keaClusters[0];
    if (!cluster) throw new Error(`KeaHACluster ${clusterItem.metadata.name} has an invalid spec`);
    const hosts = hostsInNamespace(set, namespace);
    const target = (name: string): KeaPeerTarget => {
      const index = cluster.spec.peers.findIndex((p) => p.name === name);
      if (index < 0) throw new Error(`KeaHACluster ${clusterItem.metadata.name} has no peer ${name}`);
      return { name, role: cluster.spec.peers[index]!.role, url: peerUrl(cluster, hosts, index) };
    };
    return { active: target(peers.activePeer), survivor: target(peers.survivorPeer) };
  }

  /** Runs one drill (`drive`) and writes its phases and its record into status. */
  private async record(key: string, namespace: string, spec: FailoverDrillSpec, run: RunInfo, drive: (hooks: DriveHooks) => Promise<RunEnd>): Promise<void> {
    const log = this.deps.log.child({ drill: key, runID: run.runID });
    const startMs = Date.now();
    const activeOf = (state: ActiveTimes) => ({
      runID: run.runID,
      startTime: rfc3339(new Date(state.startMs)),
      breakTime: new Date(state.breakMs).toISOString(),
      ...(state.restoreMs ? { restoreTime: new Date(state.restoreMs).toISOString() } : {}),
      activeHost: state.activeHost,
      peerHost: state.peerHost,
    });
    const writeRunning = async (phase: DrillPhase, extra: Partial<FailoverDrillStatus>) => {
      const item = this.freshest(key, this.deps.drillsIn(namespace).find((i) => i.metadata.name === key.split("/")[2]) ?? ({} as KubeItem));
      if (!item.metadata) throw new Error("the drill was deleted");
      const status = (item.status ?? {}) as FailoverDrillStatus;
      await this.write(key, item, drillStatus(status, { ...run.started, ...extra, phase }, run.generation, new Date()), true);
    };
    let result: DrillRun;
    try {
      log.info({ method: spec.method, activeHost: run.activeHost, peerHost: run.peerHost }, "drill starting");
      const end = await drive({
        mayContinue: () => this.deps.canWrite(),
        report: (phase, state) => writeRunning(phase, { active: activeOf(state) }),
        ...(this.deps.pollIntervalMs ? { pollIntervalMs: this.deps.pollIntervalMs } : {}),
      });
      if (!end.complete) {
        log.warn({ run: end.run }, "drill interrupted: the break was undone; the next leader records the run");
        return;
      }
      result = end.run;
    } catch (err) {
      result = refusedRun(spec, run.runID, startMs, Date.now(), { reason: "BreakFailed", message: `the run could not start: ${kubeErrorMessage(err)}; nothing was broken` }, {
        activeHost: run.activeHost,
        peerHost: run.peerHost,
      });
    }
    (result.result === "Succeeded" ? log.info.bind(log) : log.warn.bind(log))({ run: result }, "drill ended");
    const item = this.freshest(key, this.deps.drillsIn(namespace).find((i) => i.metadata.name === key.split("/")[2]) ?? ({} as KubeItem));
    if (!item.metadata) return;
    const status = (item.status ?? {}) as FailoverDrillStatus;
    const runs = withRun(status.runs, result, spec.historyLimit);
    await this.write(key, item, drillStatus(status, { ...run.started, runs, phase: result.result }, run.generation, new Date()));
    this.publish(namespace);
  }

  /** Cancels the Kea maintenance of a run this process does not own (a restart, a new leader) and records it. */
  private async cancelInterrupted(namespace: string, spec: FailoverDrillSpec, status: FailoverDrillStatus, clusterItem: KubeItem | undefined, cluster: KeaHAClusterSpec | undefined): Promise<DrillRun> {
    const active = status.active!;
    const startMs = Date.parse(active.startTime) || Date.now();
    const hosts = { ...(active.activeHost ? { activeHost: active.activeHost } : {}), ...(active.peerHost ? { peerHost: active.peerHost } : {}) };
    const primary = cluster?.peers.find((p) => p.host === active.activeHost);
    const survivor = cluster?.peers.find((p) => p.host === active.peerHost);
    if (!active.breakTime || !clusterItem || !cluster || !primary || !survivor) {
      return refusedRun(spec, active.runID, startMs, Date.now(), { reason: "Interrupted", message: "the controller restarted before the break; nothing was touched" }, hosts);
    }
    let undo: string | undefined;
    try {
      const peers: KeaDrillPeers = { activePeer: primary.name, activeHost: primary.host, survivorPeer: survivor.name, survivorHost: survivor.host, normalState: cluster.mode === "load-balancing" ? "load-balancing" : "hot-standby" };
      undo = await cancelKeaDrill(await this.runnerFor(namespace, survivor.host), this.keaTargets(namespace, clusterItem, peers).survivor, active.runID);
    } catch (err) {
      undo = (err as Error).message;
    }
    const how = undo === undefined ? "the maintenance was cancelled by the controller that took over" : `cancelling the maintenance failed (${undo}); the host's own timer cancels it`;
    this.deps.log.warn({ runID: active.runID, undo }, "drill interrupted by a controller restart");
    return { ...refusedRun(spec, active.runID, startMs, Date.now(), { reason: "Interrupted", message: `the controller restarted mid-run; ${how}` }, hosts), result: "Aborted" };
  }

  /** Undoes the break of a run this process does not own (a restart, a new leader) and records it. */
  private async restoreInterrupted(namespace: string, spec: FailoverDrillSpec, status: FailoverDrillStatus, pair: HAPairSpec | undefined): Promise<DrillRun> {
    const active = status.active!;
    const startMs = Date.parse(active.startTime) || Date.now();
    const hosts = { ...(active.activeHost ? { activeHost: active.activeHost } : {}), ...(active.peerHost ? { peerHost: active.peerHost } : {}) };
    if (!active.breakTime || !active.activeHost || !pair) {
      return refusedRun(spec, active.runID, startMs, Date.now(), { reason: "Interrupted", message: "the controller restarted before the break; nothing was touched" }, hosts);
    }
    let undo: string | undefined;
    try {
      const target = breakTarget({ spec, pair, runID: active.runID, activeHost: active.activeHost });
      undo = await restoreHost(await this.runnerFor(namespace, active.activeHost), target);
    } catch (err) {
      undo = (err as Error).message;
    }
    const how = undo === undefined ? "the break was undone by the controller that took over" : `undoing the break failed (${undo}); the host's own timer undoes it`;
    this.deps.log.warn({ runID: active.runID, undo }, "drill interrupted by a controller restart");
    return { ...refusedRun(spec, active.runID, startMs, Date.now(), { reason: "Interrupted", message: `the controller restarted mid-run; ${how}` }, hosts), result: "Aborted" };
  }

  private async write(key: string, item: KubeItem, status: FailoverDrillStatus, mustSucceed = false): Promise<void> {
    let current = item;
    for (let attempt = 0; attempt < 3; attempt++) {
      const patch = statusPatchIfChanged(current.status, status);
      if (!patch) return;
      if (!this.deps.canWrite()) {
        if (mustSucceed) throw new Error("not leading any more");
        return;
      }
      try {
        const written = await this.deps.client.patchStatus(current, patch);
        this.latest.set(key, written);
        return;
      } catch (err) {
        if (statusCodeOf(err) === 409) {
          const fresh = await this.deps.client.get(current).catch(() => undefined);
          if (fresh) {
            current = fresh;
            continue;
          }
        }
        this.deps.log.error({ drill: key, err: kubeErrorMessage(err) }, "drill status not written");
        if (mustSucceed) throw err;
        return;
      }
    }
  }

  /** The namespace's drill gauges, from the statuses in the cache (or just written). */
  publish(namespace: string): void {
    const drills = this.deps.drillsIn(namespace).map((cached) => {
      const item = this.freshest(kubeItemKey(cached), cached);
      const spec = item.spec as Partial<FailoverDrillSpec> | undefined;
      const objective = typeof spec?.objective === "string" ? durationToMs(spec.objective) / 1000 : 0;
      return {
        name: item.metadata.name,
        target: `${spec?.target?.kind ?? "HAPair"}/${spec?.target?.name ?? ""}`,
        objectiveSeconds: objective,
        last: ((item.status ?? {}) as FailoverDrillStatus).runs?.[0],
      };
    });
    publishDrills(this.deps.metrics.drills, namespace, drills);
  }
}

interface RunInfo {
  runID: string;
  activeHost: string;
  peerHost: string;
  started: Omit<FailoverDrillStatus, "conditions" | "observedGeneration" | "phase">;
  generation: number;
}

/** What status.active keeps of a run in progress. */
interface ActiveTimes {
  startMs: number;
  breakMs: number;
  restoreMs?: number | undefined;
  activeHost: string;
  peerHost: string;
}

interface DriveHooks {
  mayContinue(): boolean;
  report(phase: "Running" | "Restoring", state: ActiveTimes): Promise<void>;
  pollIntervalMs?: number;
}

function phaseOf(runs: readonly DrillRun[] | undefined): DrillPhase {
  return runs?.[0]?.result ?? "Pending";
}
