// Prometheus metrics with controller-runtime's names under ddi_ha_, in a registry of their own
// (several controllers in one process, as in tests, do not collide).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { WorkQueueMetrics } from "./work-queue.js";

export type ReconcileResultLabel = "success" | "requeue" | "error";

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly workqueueDepth: Gauge<"name">;
  readonly workqueueAdds: Counter<"name">;
  readonly workqueueRetries: Counter<"name">;
  readonly resourceReady: Gauge<"kind" | "namespace" | "name">;
  /** The resource_ready series published per namespace, to remove those of deleted objects. */
  private readonly readySeries = new Map<string, Map<string, { kind: string; name: string }>>();

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.reconcileTotal = new Counter({ name: "ddi_ha_reconcile_total", help: "Reconcile passes, by result.", labelNames: ["controller", "result"], registers });
    this.reconcileErrors = new Counter({ name: "ddi_ha_reconcile_errors_total", help: "Reconcile passes that failed.", labelNames: ["controller"], registers });
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
    this.resourceReady = new Gauge({
      name: "ddi_ha_resource_ready",
      help: "1 when the resource's Ready condition is True, else 0.",
      labelNames: ["kind", "namespace", "name"],
      registers,
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "ddi_ha_" });
  }

  forQueue(name: string): WorkQueueMetrics {
    return {
      added: () => this.workqueueAdds.inc({ name }),
      retried: () => this.workqueueRetries.inc({ name }),
      depth: (n) => this.workqueueDepth.set({ name }, n),
    };
  }

  /** Sets the namespace's Ready gauges to exactly these resources: gone objects lose their series. */
  setNamespaceReadiness(namespace: string, ready: readonly { kind: string; name: string; ready: boolean }[]): void {
    const now = new Map(ready.map((r) => [`${r.kind}/${r.name}`, r]));
    for (const [key, { kind, name }] of this.readySeries.get(namespace) ?? new Map()) {
      if (!now.has(key)) this.resourceReady.remove({ kind, namespace, name });
    }
    for (const r of ready) this.resourceReady.set({ kind: r.kind, namespace, name: r.name }, r.ready ? 1 : 0);
    if (now.size > 0) this.readySeries.set(namespace, now);
    else this.readySeries.delete(namespace);
  }
}
