// A FailoverDrill's conditions, pure: Ready says whether the last run succeeded within its
// objective (Argo CD's health reads it), Succeeded is the last run's result, Reconciling is
// present while a run is in progress.
import type { Condition, DrillPhase, FailoverDrillStatus } from "../api/index.js";
import { setCondition } from "../status/conditions.js";

/** Status with its conditions set from `phase`, `runs` and `next` (the next scheduled run). */
export function drillStatus(
  previous: FailoverDrillStatus | undefined,
  update: Omit<FailoverDrillStatus, "conditions" | "observedGeneration"> & { phase: DrillPhase },
  generation: number,
  now: Date,
  invalid?: string,
): FailoverDrillStatus {
  let conditions: Condition[] = previous?.conditions ?? [];
  const last = update.runs?.[0];
  const running = update.phase === "Checking" || update.phase === "Running" || update.phase === "Restoring";
  conditions = setCondition(
    conditions,
    { type: "Reconciling", status: running ? "True" : "False", reason: "Progressing", message: `a drill run is in progress: phase ${update.phase}` },
    generation,
    now,
  );
  conditions = setCondition(
    conditions,
    { type: "Stalled", status: invalid ? "True" : "False", reason: "InvalidSpec", message: invalid ?? "" },
    generation,
    now,
  );
  if (invalid) {
    conditions = setCondition(conditions, { type: "Ready", status: "False", reason: "InvalidSpec", message: invalid }, generation, now);
  } else if (last) {
    const ok = last.result === "Succeeded";
    conditions = setCondition(conditions, { type: "Ready", status: ok ? "True" : "False", reason: ok ? "Succeeded" : last.reason, message: `last run: ${last.message}` }, generation, now);
    conditions = setCondition(conditions, { type: "Succeeded", status: ok ? "True" : "False", reason: last.reason, message: last.message }, generation, now);
  } else {
    const message = update.nextScheduleTime ? `no run yet; the first is at ${update.nextScheduleTime}` : "no run yet";
    conditions = setCondition(conditions, { type: "Ready", status: "True", reason: "Scheduled", message }, generation, now);
  }
  return { ...update, observedGeneration: generation, conditions };
}
