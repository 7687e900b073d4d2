// The drill gauges, read by the DDIHADrillFailed and DDIHADrillMissedObjective alerts: one series
// set per FailoverDrill, from its status (the last run), published per namespace.
import type { Registry } from "prom-client";
import type { DrillRun } from "../api/index.js";
import { NamespacedGauge } from "../controller/metrics.js";

/** The last run's result as the alerts read it: a missed objective is a Failed run, told apart. */
export const DRILL_RESULT_LABELS = ["Succeeded", "MissedObjective", "Failed", "Aborted"] as const;

export interface DrillGauges {
  recoverySeconds: NamespacedGauge<"name" | "target">;
  objectiveSeconds: NamespacedGauge<"name" | "target">;
  lastResult: NamespacedGauge<"name" | "target" | "result">;
}

export function drillGauges(registers: Registry[]): DrillGauges {
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly (L | "namespace")[]) => new NamespacedGauge<L>({ name, help, labelNames }, registers);
  return {
    recoverySeconds: gauge(
      "ddi_ha_drill_recovery_seconds",
      "The last FailoverDrill run's measured recovery time: seconds from the break until the service answered on the VIP (with spec.serviceCheck), else until the VIP was on the peer. No series before a run measured it.",
      ["namespace", "name", "target"],
    ),
    objectiveSeconds: gauge("ddi_ha_drill_objective_seconds", "The FailoverDrill's spec.objective in seconds.", ["namespace", "name", "target"]),
    lastResult: gauge(
      "ddi_ha_drill_last_result",
      "1 for the last FailoverDrill run's result (Succeeded, MissedObjective, Failed or Aborted), 0 for the other three; no series before the first run.",
      ["namespace", "name", "target", "result"],
    ),
  };
}

export interface DrillSeriesInput {
  name: string;
  target: string;
  objectiveSeconds: number;
  last?: DrillRun | undefined;
}

/** Publishes one namespace's drills; drills gone since the last call lose their series. */
export function publishDrills(gauges: DrillGauges, namespace: string, drills: readonly DrillSeriesInput[]): void {
  gauges.objectiveSeconds.publish(namespace, drills.map((d) => ({ labels: { name: d.name, target: d.target }, value: d.objectiveSeconds })));
  gauges.recoverySeconds.publish(
    namespace,
    drills.flatMap((d) => (d.last?.recoverySeconds === undefined ? [] : [{ labels: { name: d.name, target: d.target }, value: d.last.recoverySeconds }])),
  );
  gauges.lastResult.publish(
    namespace,
    drills.flatMap((d) => {
      if (!d.last) return [];
      const result = d.last.reason === "MissedObjective" ? "MissedObjective" : d.last.result;
      return DRILL_RESULT_LABELS.map((r) => ({ labels: { name: d.name, target: d.target, result: r }, value: r === result ? 1 : 0 }));
    }),
  );
}
