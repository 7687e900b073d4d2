import { describe, expect, it } from "vitest";
import { ControllerMetrics } from "./metrics.js";

describe("ControllerMetrics", () => {
  it("publishes controller-runtime's names under ddi_ha_", async () => {
    const m = new ControllerMetrics();
    m.reconcileTotal.inc({ controller: "namespace", result: "success" });
    m.forQueue("namespace").added();
    const text = await m.registry.metrics();
    for (const name of [
      "ddi_ha_reconcile_total",
      "ddi_ha_reconcile_errors_total",
      "ddi_ha_reconcile_time_seconds",
      "ddi_ha_workqueue_depth",
      "ddi_ha_workqueue_adds_total",
      "ddi_ha_workqueue_retries_total",
      "ddi_ha_resource_ready",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('ddi_ha_reconcile_total{controller="namespace",result="success"} 1');
  });

  it("resource_ready follows the namespace's objects: a deleted one loses its series", async () => {
    const m = new ControllerMetrics();
    m.setNamespaceReadiness("ns", [
      { kind: "HAPair", name: "vip", ready: true },
      { kind: "DDIHost", name: "h1", ready: false },
    ]);
    m.setNamespaceReadiness("other", [{ kind: "HAPair", name: "vip", ready: true }]);
    m.setNamespaceReadiness("ns", [{ kind: "DDIHost", name: "h1", ready: true }]);
    const text = await m.registry.metrics();
    expect(text).toContain('ddi_ha_resource_ready{kind="DDIHost",namespace="ns",name="h1"} 1');
    expect(text).not.toContain('ddi_ha_resource_ready{kind="HAPair",namespace="ns",name="vip"}');
    expect(text).toContain('ddi_ha_resource_ready{kind="HAPair",namespace="other",name="vip"} 1');
  });
});
