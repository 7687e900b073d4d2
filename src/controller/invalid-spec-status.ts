// The status of an object whose spec the API server admitted but the operator's own validation
// refuses (a rule CEL cannot express, e.g. a Kea key Kea would write back unescaped): it never
// becomes a resource of the pass, so without this its old status (Ready at an older generation)
// would stand and nothing would say why the new spec is not applied.
import type { ValidationProblem } from "../validation/model.js";
import { setConditions } from "../status/index.js";
import type { Condition } from "../api/index.js";

export interface InvalidSpecItem {
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number };
  status?: unknown;
}

/** The problems of this item that keep it out of the pass, as `path: message` lines; none: it is not refused. */
export function invalidSpecLines(item: InvalidSpecItem, problems: readonly ValidationProblem[]): string[] {
  const resource = `${item.kind} ${item.metadata.namespace ?? "default"}/${item.metadata.name}`;
  return problems.filter((p) => p.severity === "error" && p.resource === resource).map((p) => `${p.path}: ${p.message}`);
}

/** Ready False, Stalled True and ConfigApplied False, reason InvalidSpec, at the item's generation; other fields kept. */
export function invalidSpecStatus(item: InvalidSpecItem, lines: readonly string[], now: Date): Record<string, unknown> {
  const previous = (item.status ?? {}) as { conditions?: Condition[] };
  const message = `the spec is refused, nothing is applied: ${lines.join("; ")}`;
  const generation = item.metadata.generation ?? 0;
  const inputs = (["Ready", "Stalled", "ConfigApplied"] as const).map((type) => ({ type, status: type === "Stalled" ? ("True" as const) : ("False" as const), reason: "InvalidSpec", message }));
  const conditions = setConditions(previous.conditions, inputs, generation, now);
  return { ...previous, observedGeneration: generation, conditions };
}
