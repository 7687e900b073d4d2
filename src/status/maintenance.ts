// The Maintenance condition's shape once a maintenance ends, shared by every relationship kind:
// Returning until the relationship is back to normal, then Returned with the seconds it took
// from the end of the maintenance (the condition's lastTransitionTime, to the second). Pure.
import type { ConditionInput } from "./conditions.js";

type PreviousMaintenance = { status: string; reason: string; lastTransitionTime?: string } | undefined;

/** Whether the last status said a maintenance was on or still returning (so there is something to undo or time). */
export function maintenanceWasOn(previous: PreviousMaintenance): boolean {
  return previous !== undefined && (previous.status === "True" || previous.reason === "Returning");
}

/**
 * The condition after a maintenance: undefined when there was none. `back` says whether the
 * relationship is normal again; `detail` is shown in both messages (what is awaited, or the
 * Ready reason it got back to).
 */
export function endedMaintenanceCondition(previous: PreviousMaintenance, back: boolean, detail: string, now: Date): ConditionInput | undefined {
  if (!maintenanceWasOn(previous)) return undefined;
  if (!back) return { type: "Maintenance", status: "False", reason: "Returning", message: `the maintenance ended; ${detail}` };
  const endedAt = previous!.status === "True" ? now.getTime() : Date.parse(previous!.lastTransitionTime ?? "");
  const seconds = Number.isFinite(endedAt) ? Math.max(0, Math.round((now.getTime() - endedAt) / 1000)) : 0;
  return { type: "Maintenance", status: "False", reason: "Returned", message: `back to normal ${seconds} s after the maintenance ended (${detail})` };
}
