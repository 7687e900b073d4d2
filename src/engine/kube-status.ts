// What the lab and the controller share about objects read from the API server: the object shape,
// finding the object a resource came from, turning them into manifest documents for validation,
// TrustOnFirstUse pins from their status, whether one needs an apply, and the status merge patch
// (or none, when nothing changed).
import { isDeepStrictEqual } from "node:util";
import type { DDIHostStatus } from "../api/index.js";
import type { ManifestDocument } from "../manifests/load.js";
import { type HostKeyPins, statusHostKeyPins } from "./sessions.js";
import { DRIFT_DETECTED, STALLING_REASONS } from "../status/apply-outcome.js";

export interface KubeItem {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    resourceVersion?: string;
    uid?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    [k: string]: unknown;
  };
  spec?: unknown;
  status?: Record<string, unknown>;
  [k: string]: unknown;
}

type Named = { kind: string; metadata: { name: string; namespace?: string | undefined } };

/** `Kind/namespace/name`: one key for an API object and the resource validated from it. */
export const kubeItemKey = (r: Named): string => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;

/** The API object each validated resource came from. */
export function indexItems(items: readonly KubeItem[]): (resource: Named) => KubeItem | undefined {
  const byKey = new Map(items.map((i) => [kubeItemKey(i), i]));
  return (resource) => byKey.get(kubeItemKey(resource));
}

/** TrustOnFirstUse pins as the API contract keeps them: in each DDIHost's status.observedHostKey. */
export function pinsFromStatus(itemOf: (resource: Named) => KubeItem | undefined): HostKeyPins {
  return statusHostKeyPins((host) => (itemOf(host)?.status as DDIHostStatus | undefined)?.observedHostKey);
}

/** API objects as manifest documents, so the same validation the CLI runs builds the set. */
export function itemsAsDocuments(items: readonly KubeItem[], server: string): ManifestDocument[] {
  return items.map((item) => ({
    source: `${server} ${item.kind} ${item.metadata.namespace ?? "default"}/${item.metadata.name}`,
    object: item as unknown as Record<string, unknown>,
  }));
}

/** Whether the operator would apply this object now, judged from what the API server holds. */
export function needsApply(item: Pick<KubeItem, "metadata" | "status"> | undefined): boolean {
  if (!item) return false;
  const status = (item.status ?? {}) as { observedGeneration?: number; conditions?: { type: string; status: string; reason?: string }[] };
  if (status.observedGeneration !== item.metadata.generation) return true;
  const applied = status.conditions?.find((c) => c.type === "ConfigApplied");
  if (applied?.status === "True") return false;
  // spec.driftPolicy Report: the drift check of every resync reports it; only a new spec applies.
  if (applied?.reason === DRIFT_DETECTED) return false;
  // A spec the daemon's check or the renderer refused fails the same way until it changes (Stalled).
  // Anything else is retried: a host that did not answer, a DDIHost that does not exist yet.
  return applied?.reason === undefined || !STALLING_REASONS.has(applied.reason);
}

/**
 * A JSON merge patch (RFC 7386) that turns `previous` into `next` at the top level: keys that
 * disappeared become null. Arrays (conditions, nodes) are replaced whole by a merge patch, which
 * is what makes a condition that is no longer true (Reconciling, Stalled) go away.
 */
export function statusMergePatch(previous: Record<string, unknown> | undefined, next: object): { status: Record<string, unknown> } {
  const status: Record<string, unknown> = { ...(next as Record<string, unknown>) };
  for (const key of Object.keys(previous ?? {})) if (!(key in status)) status[key] = null;
  return { status };
}

/** The merge patch that writes `computed` over `current`, or undefined when they are equal. */
export function statusPatchIfChanged(current: Record<string, unknown> | undefined, computed: object): { status: Record<string, unknown> } | undefined {
  // Through JSON: the API server stores JSON, so undefined fields must not count as a change.
  const next = JSON.parse(JSON.stringify(computed)) as Record<string, unknown>;
  if (isDeepStrictEqual(current ?? {}, next)) return undefined;
  return statusMergePatch(current, next);
}
