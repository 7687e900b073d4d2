// Conditions as data, the fluxcd way: one setter that keeps lastTransitionTime unless status,
// reason or message changed, and the kstatus rule that Reconciling, Stalled and the abnormal
// kind-specific conditions exist only while they are true.
import type { Condition } from "../api/index.js";

export type ConditionStatus = Condition["status"];

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  /** CamelCase, machine-readable. */
  reason: string;
  /** Names the service/field and the fix. */
  message: string;
}

export const READY = "Ready";
export const RECONCILING = "Reconciling";
export const STALLED = "Stalled";

/**
 * Conditions that are present only while True (kstatus for Reconciling/Stalled; the same rule
 * for the abnormal states, so `kubectl get -o yaml` shows them only when something is wrong).
 */
export const PRESENT_ONLY_WHILE_TRUE: ReadonlySet<string> = new Set([RECONCILING, STALLED, "SplitBrain", "PartnerDown", "CommunicationsInterrupted"]);

/** Kubernetes wants RFC 3339 with whole seconds in metav1.Time. */
export function rfc3339(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

const MAX_MESSAGE = 32_768;

/**
 * Sets one condition in a copy of `conditions`. lastTransitionTime moves only when status, reason
 * or message change; observedGeneration is always stamped. A condition in
 * PRESENT_ONLY_WHILE_TRUE that is not True is removed instead.
 */
export function setCondition(conditions: readonly Condition[] | undefined, input: ConditionInput, generation: number, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === input.type);
  if (PRESENT_ONLY_WHILE_TRUE.has(input.type) && input.status !== "True") {
    if (index >= 0) list.splice(index, 1);
    return list;
  }
  const message = input.message.length > MAX_MESSAGE ? `${input.message.slice(0, MAX_MESSAGE - 1)}…` : input.message;
  const previous = index >= 0 ? list[index] : undefined;
  const unchanged = previous !== undefined && previous.status === input.status && previous.reason === input.reason && previous.message === message;
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration: generation,
    lastTransitionTime: unchanged ? previous.lastTransitionTime : rfc3339(now),
    reason: input.reason,
    message,
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

/** Removes a condition (for one that no longer applies at all). */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/** Applies several conditions in order; the Ready condition is conventionally first in the list. */
export function setConditions(conditions: readonly Condition[] | undefined, inputs: readonly ConditionInput[], generation: number, now: Date): Condition[] {
  let list = [...(conditions ?? [])];
  for (const input of inputs) list = setCondition(list, input, generation, now);
  const order = (c: Condition) => (c.type === READY ? 0 : 1);
  return list.sort((a, b) => order(a) - order(b));
}
