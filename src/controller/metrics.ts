// Prometheus metrics with controller-runtime's names under ddi_ha_, in a registry of their own
// (several controllers in one process, as in tests, do not collide), plus gauges of what each
// pass computed into the statuses, which the alert rules in the chart read (ADR 0013).
import { Counter, Gauge, Histogram, type LabelValues, Registry, collectDefaultMetrics } from "prom-client";
import type { DDIHostStatus, DhcpFailoverPeerStatus, HAPairStatus, KeaHAClusterStatus } from "../api/index.js";
import type { ResourceStatus } from "../engine/reconcile-pass.js";
import { type ApplyOutcome, findCondition, isTrue } from "../status/index.js";
import type { WatchRestartReason } from "./watcher.js";
import type { WorkQueueMetrics } from "./work-queue.js";
import { type DrillGauges, drillGauges } from "../drill/metrics.js";

/** One host's apply: files written or removed, all in place already, or failed (rolled back, unreachable). */
export type ApplyResultLabel = "changed" | "unchanged" | "failed";
const APPLY_RESULTS: readonly ApplyResultLabel[] = ["changed", "unchanged", "failed"];
const RELATIONSHIP_KINDS = ["HAPair", "KeaHACluster", "DhcpFailoverPeer"] as const;
const WATCH_RESTART_REASONS: readonly WatchRestartReason[] = ["expired", "error", "unreachable", "silent"];

/**
 * One label per host a pass's apply went to. Only an outcome with `results` was an apply: a
 * drift check that could not read a host has `errors` alone, and a refused spec never left the
 * controller; neither counts.
 */
export function applyResultLabels(outcome: ApplyOutcome): ApplyResultLabel[] {
  if (outcome.results === undefined) return [];
  return [
    ...outcome.results.map((r): ApplyResultLabel => (!r.ok ? "failed" : r.changed.length > 0 || r.removed.length > 0 ? "changed" : "unchanged")),
    ...(outcome.errors ?? []).map((): ApplyResultLabel => "failed"),
  ];
}

export type ReconcileResultLabel = "success" | "requeue" | "error";
const RESULTS: readonly ReconcileResultLabel[] = ["success", "requeue", "error"];

/** What a pass computed for one object: the engine's ComputedStatus, of which the kind and name are read. */
export interface PublishedStatus {
  resource: { kind: string; metadata: { name: string } };
  status: ResourceStatus;
}

interface Series<L extends string> {
  labels: LabelValues<L>;
  value: number;
}

/**
 * A gauge whose series belong to namespaces. A namespace is published whole after each pass:
 * the series it had and no longer has (an object deleted, a state left) are removed, so nothing
 * reads a deleted pair or a state that has passed.
 */
export class NamespacedGauge<L extends string> {
  readonly gauge: Gauge<L | "namespace">;
  private readonly labelNames: readonly (L | "namespace")[];
  private readonly published = new Map<string, Map<string, LabelValues<L | "namespace">>>();

  /** `labelNames` includes `namespace`, in the order the series print their labels. */
  constructor(config: { name: string; help: string; labelNames: readonly (L | "namespace")[] }, registers: Registry[]) {
    this.labelNames = config.labelNames;
    this.gauge = new Gauge({ name: config.name, help: config.help, labelNames: config.labelNames, registers });
  }

  publish(namespace: string, series: readonly Series<L>[]): void {
    const now = new Map<string, LabelValues<L | "namespace">>();
    for (const s of series) {
      const all = { ...s.labels, namespace } as LabelValues<L | "namespace">;
      // prom-client prints labels in the object's order.
      const labels = Object.fromEntries(this.labelNames.map((l) => [l, all[l]])) as LabelValues<L | "namespace">;
      now.set(JSON.stringify(Object.values(labels)), labels);
      this.gauge.set(labels, s.value);
    }
    for (const [key, labels] of this.published.get(namespace) ?? new Map()) {
      if (!now.has(key)) this.gauge.remove(labels);
    }
    if (now.size > 0) this.published.set(namespace, now);
    else this.published.delete(namespace);
  }
}

/** The namespace's series per status gauge, gathered from one pass's statuses. */
type StatusSeries = { [G in keyof StatusGauges]: StatusGauges[G] extends NamespacedGauge<infer L> ? Series<L>[] : never };

interface StatusGauges {
  resourceReady: NamespacedGauge<"kind" | "name">;
  resourceStalled: NamespacedGauge<"kind" | "name">;
  resourceInMaintenance: NamespacedGauge<"kind" | "name">;
  configDrift: NamespacedGauge<"kind" | "name">;
  hapairSplitBrain: NamespacedGauge<"name">;
  hapairActiveNode: NamespacedGauge<"name" | "node">;
  hapairPreferredNode: NamespacedGauge<"name" | "node">;
  hapairFailoverCount: NamespacedGauge<"name">;
  dhcpFailoverState: NamespacedGauge<"name" | "side" | "state">;
  dhcpPoolLeases: NamespacedGauge<"name" | "subnet" | "kind">;
  keaHealth: NamespacedGauge<"name" | "health">;
  keaPeerState: NamespacedGauge<"name" | "peer" | "state">;
  hostReachable: NamespacedGauge<"name">;
  hostClockOffset: NamespacedGauge<"name">;
  hostNtpSynchronized: NamespacedGauge<"name">;
}

const bool = (b: boolean) => (b ? 1 : 0);

/** Ready=False reasons that mean "out of service on purpose, and nothing else wrong". */
const MAINTENANCE_READY_REASONS = new Set(["Maintenance", "HandingOver", "InMaintenance"]);

/**
 * Whether alerts about the object are silenced: a DDIHost with its Maintenance condition True, or
 * a relationship whose Ready is False only because of a maintenance (a real fault beside it names
 * another reason, and still pages).
 */
export function inMaintenanceOnPurpose(kind: string, conditions: Parameters<typeof findCondition>[0]): boolean {
  if (kind === "DDIHost") return findCondition(conditions, "Maintenance")?.status === "True";
  const ready = findCondition(conditions, "Ready");
  return ready?.status === "False" && MAINTENANCE_READY_REASONS.has(ready.reason);
}

function addHAPair(out: StatusSeries, name: string, s: HAPairStatus): void {
  if (s.activeNode !== undefined) {
    out.hapairSplitBrain.push({ labels: { name }, value: bool(s.activeNode === "both") });
    out.hapairActiveNode.push({ labels: { name, node: s.activeNode }, value: 1 });
  }
  if (s.failoverCount !== undefined) out.hapairFailoverCount.push({ labels: { name }, value: s.failoverCount });
}

function addDhcpFailoverPeer(out: StatusSeries, name: string, s: DhcpFailoverPeerStatus): void {
  for (const [side, state] of [["primary", s.primaryState], ["secondary", s.secondaryState]] as const) {
    if (state !== undefined) out.dhcpFailoverState.push({ labels: { name, side, state }, value: 1 });
  }
  // One subnet is one series per kind: should dhcpd ever log two pools of one subnet, they add up.
  const bySubnet = new Map<string, { total: number; free: number; backup: number }>();
  for (const p of s.pools ?? []) {
    const sum = bySubnet.get(p.subnet) ?? { total: 0, free: 0, backup: 0 };
    bySubnet.set(p.subnet, { total: sum.total + p.total, free: sum.free + p.free, backup: sum.backup + p.backup });
  }
  for (const [subnet, counts] of bySubnet) {
    for (const kind of ["total", "free", "backup"] as const) out.dhcpPoolLeases.push({ labels: { name, subnet, kind }, value: counts[kind] });
  }
}

function addKeaHACluster(out: StatusSeries, name: string, s: KeaHAClusterStatus): void {
  if (s.health !== undefined) out.keaHealth.push({ labels: { name, health: s.health }, value: 1 });
  for (const p of s.peers ?? []) out.keaPeerState.push({ labels: { name, peer: p.name, state: p.state }, value: 1 });
}

function addDDIHost(out: StatusSeries, name: string, s: DDIHostStatus): void {
  const reachable = findCondition(s.conditions, "Reachable")?.status;
  if (reachable === "True" || reachable === "False") out.hostReachable.push({ labels: { name }, value: bool(reachable === "True") });
  // An unreachable host keeps its last facts in status; a gauge of them would look current.
  if (reachable !== "True") return;
  const clock = findCondition(s.conditions, "ClockSynchronized")?.status;
  if (s.clockOffsetSeconds !== undefined && clock !== "Unknown") out.hostClockOffset.push({ labels: { name }, value: s.clockOffsetSeconds });
  if (s.ntpSynchronized !== undefined) out.hostNtpSynchronized.push({ labels: { name }, value: bool(s.ntpSynchronized) });
}

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly driftCorrections: Counter<"kind">;
  readonly reconcileTime: Histogram<"controller">;
  readonly workqueueDepth: Gauge<"name">;
  readonly workqueueAdds: Counter<"name">;
  readonly workqueueRetries: Counter<"name">;
  /** 1 while this process leads (always 1 without leader election), 0 while it follows. */
  readonly leader: Gauge<"identity">;
  readonly applies: Counter<"kind" | "result">;
  readonly watchRestarts: Counter<"kind" | "reason">;
  readonly status: StatusGauges;
  /** FailoverDrill results (src/drill/metrics.ts). */
  readonly drills: DrillGauges;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.reconcileTotal = new Counter({ name: "ddi_ha_reconcile_total", help: "Reconcile passes, by result.", labelNames: ["controller", "result"], registers });
    this.reconcileErrors = new Counter({ name: "ddi_ha_reconcile_errors_total", help: "Reconcile passes that failed.", labelNames: ["controller"], registers });
    this.driftCorrections = new Counter({
      name: "ddi_ha_drift_corrections_total",
      help: "Resyncs that found a managed file changed on a host and re-applied it (spec.driftPolicy Correct), by kind.",
      labelNames: ["kind"],
      registers,
    });
    for (const kind of ["HAPair", "KeaHACluster", "DhcpFailoverPeer"]) this.driftCorrections.inc({ kind }, 0);
    this.reconcileTime = new Histogram({
      name: "ddi_ha_reconcile_time_seconds",
      help: "Duration of one reconcile pass (apply, observe, status).",
      labelNames: ["controller"],
      // A pass is SSH round trips plus, when applying, daemon checks and a settle time: seconds, not ms.
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120],
      registers,
    });
    this.workqueueDepth = new Gauge({ name: "ddi_ha_workqueue_depth", help: "Keys waiting in the work queue.", labelNames: ["name"], registers });
    this.workqueueAdds = new Counter({ name: "ddi_ha_workqueue_adds_total", help: "Keys added to the work queue.", labelNames: ["name"], registers });
    this.workqueueRetries = new Counter({ name: "ddi_ha_workqueue_retries_total", help: "Keys re-added with backoff.", labelNames: ["name"], registers });
    this.leader = new Gauge({
      name: "ddi_ha_leader",
      help: "1 while this controller process holds the leader Lease and may write to hosts and status; 0 while it follows.",
      labelNames: ["identity"],
      registers,
    });
    this.applies = new Counter({
      name: "ddi_ha_applies_total",
      help: "Applies of a relationship to one of its hosts, by kind and result: changed (files written or removed, daemons reloaded), unchanged (everything was in place: nothing touched), failed. A quiet controller adds nothing here; a resync, a re-list or an API server restart must not either.",
      labelNames: ["kind", "result"],
      registers,
    });
    for (const kind of RELATIONSHIP_KINDS) for (const result of APPLY_RESULTS) this.applies.inc({ kind, result }, 0);
    this.watchRestarts = new Counter({
      name: "ddi_ha_watch_restarts_total",
      help: "Watches of a kind started again, by reason: expired (410 Gone, e.g. after an etcd compaction: listed again), error (listed again after a backoff), unreachable (API server away: the watch resumed from its resourceVersion after a backoff), silent (no event for too long: listed again).",
      labelNames: ["kind", "reason"],
      registers,
    });
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly (L | "namespace")[]) => new NamespacedGauge<L>({ name, help, labelNames }, registers);
    this.drills = drillGauges(registers);
    this.status = {
      resourceReady: gauge("ddi_ha_resource_ready", "1 when the resource's Ready condition is True, else 0.", ["kind", "namespace", "name"]),
      configDrift: gauge(
        "ddi_ha_config_drift",
        "1 while a file the relationship manages on a host differs from what its spec renders and spec.driftPolicy Report leaves it so (ConfigInSync=False, reason DriftDetected), else 0.",
        ["kind", "namespace", "name"],
      ),
      resourceInMaintenance: gauge(
        "ddi_ha_resource_in_maintenance",
        "1 while the object is out of service on purpose: a DDIHost with spec.maintenance, or a relationship whose only problem is that maintenance (Ready reason Maintenance, HandingOver or Kea's InMaintenance); the alert rules do not page for it. Else 0.",
        ["kind", "namespace", "name"],
      ),
      resourceStalled: gauge("ddi_ha_resource_stalled", "1 when the resource is Stalled (its spec cannot succeed until it changes), else 0.", ["kind", "namespace", "name"]),
      hapairSplitBrain: gauge("ddi_ha_hapair_split_brain", "1 while both nodes of the HAPair hold its VIP (status.activeNode both), else 0.", ["namespace", "name"]),
      hapairActiveNode: gauge(
        "ddi_ha_hapair_active_node",
        "1 for the node that holds the HAPair's VIP now (status.activeNode: primary, secondary, none, or both in split brain); the other values have no series.",
        ["namespace", "name", "node"],
      ),
      hapairPreferredNode: gauge(
        "ddi_ha_hapair_preferred_node",
        "1 for the node the HAPair wants the VIP on when both are healthy (spec.preferredNode: primary, or secondary for a planned switchover); DDIHAFailedOver compares it with ddi_ha_hapair_active_node.",
        ["namespace", "name", "node"],
      ),
      hapairFailoverCount: gauge(
        "ddi_ha_hapair_failover_count",
        "VIP moves between the HAPair's nodes, as counted in status.failoverCount. A gauge, not a counter: the count lives in the object's status and outlasts controller restarts, so it is copied, not counted here; it only goes up, so delta() or changes() over a window tell the moves in it.",
        ["namespace", "name"],
      ),
      dhcpFailoverState: gauge(
        "ddi_ha_dhcp_failover_state",
        "1 for each side's current dhcpd failover state (status.primaryState, status.secondaryState); unknown while its dhcpd is stopped or its host unreachable.",
        ["namespace", "name", "side", "state"],
      ),
      dhcpPoolLeases: gauge(
        "ddi_ha_dhcp_pool_leases",
        "Addresses in the failover pools of a subnet: total, free (free leases the primary may hand out) and backup (those the secondary may), from dhcpd's pool balance lines (status.pools).",
        ["namespace", "name", "subnet", "kind"],
      ),
      keaHealth: gauge("ddi_ha_kea_health", "1 for the KeaHACluster's current health: OK (every peer serving), Impaired (a peer unreachable or not serving) or Down (none serving).", ["namespace", "name", "health"]),
      keaPeerState: gauge("ddi_ha_kea_peer_state", "1 for each Kea peer's current HA state, as its status-get reports it (status.peers[].state).", ["namespace", "name", "peer", "state"]),
      hostReachable: gauge("ddi_ha_host_reachable", "1 when the last pass reached the DDIHost over SSH with the expected host key (its Reachable condition), else 0.", ["namespace", "name"]),
      hostClockOffset: gauge(
        "ddi_ha_host_clock_offset_seconds",
        "The DDIHost's clock minus the operator's, measured on the last pass (corrected by RTT/2); no series while the host cannot be read.",
        ["namespace", "name"],
      ),
      hostNtpSynchronized: gauge("ddi_ha_host_ntp_synchronized", "1 when the DDIHost reports its clock NTP-synchronized (timedatectl), else 0; no series while unknown.", ["namespace", "name"]),
    };
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "ddi_ha_" });
  }

  /**
   * The queue is named after its controller, as in controller-runtime, which also starts the
   * controller's reconcile counters at 0 here: rate() and absent() then see a controller that has
   * had nothing to reconcile yet.
   */
  forQueue(name: string): WorkQueueMetrics {
    for (const result of RESULTS) this.reconcileTotal.inc({ controller: name, result }, 0);
    this.reconcileErrors.inc({ controller: name }, 0);
    this.workqueueDepth.set({ name }, 0);
    this.workqueueAdds.inc({ name }, 0);
    this.workqueueRetries.inc({ name }, 0);
    return {
      added: () => this.workqueueAdds.inc({ name }),
      retried: () => this.workqueueRetries.inc({ name }),
      depth: (n) => this.workqueueDepth.set({ name }, n),
    };
  }

  /** Counts what a pass's apply of one relationship did on each of its hosts. */
  recordApplies(kind: string, outcome: ApplyOutcome): void {
    for (const result of applyResultLabels(outcome)) this.applies.inc({ kind, result });
  }

  /** The watcher of `kind`'s restart callback; its series start at 0. */
  forWatcher(kind: string): (reason: WatchRestartReason) => void {
    for (const reason of WATCH_RESTART_REASONS) this.watchRestarts.inc({ kind, reason }, 0);
    return (reason) => this.watchRestarts.inc({ kind, reason });
  }

  /** Sets the namespace's status gauges to exactly what this pass computed: gone objects and left states lose their series. */
  publishNamespace(namespace: string, statuses: readonly PublishedStatus[]): void {
    const out = Object.fromEntries(Object.keys(this.status).map((k) => [k, []])) as unknown as StatusSeries;
    for (const { resource, status } of statuses) {
      const { kind } = resource;
      const name = resource.metadata.name;
      out.resourceReady.push({ labels: { kind, name }, value: bool(isTrue(status.conditions, "Ready")) });
      out.resourceStalled.push({ labels: { kind, name }, value: bool(isTrue(status.conditions, "Stalled")) });
      out.resourceInMaintenance.push({ labels: { kind, name }, value: bool(inMaintenanceOnPurpose(kind, status.conditions)) });
      if (kind !== "DDIHost") {
        const inSync = findCondition(status.conditions, "ConfigInSync");
        out.configDrift.push({ labels: { kind, name }, value: bool(inSync?.status === "False" && inSync.reason === "DriftDetected") });
      }
      // The engine computed each kind's own status, so the kind says which it is.
      if (kind === "HAPair") {
        addHAPair(out, name, status as HAPairStatus);
        const preferred = (resource as { spec?: { preferredNode?: string } }).spec?.preferredNode ?? "primary";
        out.hapairPreferredNode.push({ labels: { name, node: preferred }, value: 1 });
      }
      else if (kind === "DhcpFailoverPeer") addDhcpFailoverPeer(out, name, status as DhcpFailoverPeerStatus);
      else if (kind === "KeaHACluster") addKeaHACluster(out, name, status as KeaHAClusterStatus);
      else if (kind === "DDIHost") addDDIHost(out, name, status as DDIHostStatus);
    }
    for (const key of Object.keys(this.status) as (keyof StatusGauges)[]) {
      (this.status[key] as NamespacedGauge<string>).publish(namespace, out[key]);
    }
  }
}
