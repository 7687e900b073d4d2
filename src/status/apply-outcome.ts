// What this reconcile pass did to the hosts, and what that means for ConfigApplied, Stalled and
// Reconciling. Shared by the three relationship kinds.
import type { ApplyResult } from "../apply/index.js";
import type { Condition } from "../api/index.js";
import { type ConditionInput, findCondition } from "./conditions.js";

export interface ApplyOutcome {
  /** Per-host results of this pass's apply. */
  results?: readonly ApplyResult[];
  /** Hosts where the apply could not even start (unreachable, host key refused), with why. */
  errors?: readonly { host: string; message: string }[];
  /**
   * Why the spec cannot succeed until it is changed: semantic validation (a VRID
   * collision, one machine named twice), a renderer refusal. Makes the object Stalled.
   */
  specProblems?: readonly string[];
  /**
   * Objects the spec names that are not there yet (a DDIHost): the spec may be right, and it
   * applies once they appear, so this is retried (ReferenceNotFound), not Stalled.
   */
  unresolvedReferences?: readonly string[];
  /**
   * This pass compared the hash of every file the resource manages on its hosts with what the
   * spec renders (one probe per host). `differing` are `host:path`; with policy Correct the pass
   * then re-applied them (results), with Report it changed nothing.
   */
  drift?: { checkedHosts: readonly string[]; differing: readonly string[]; policy: "Correct" | "Report"; pendingReload?: readonly string[] };
  /**
   * The apply was held on purpose this pass (a Kea switchover waiting for its hand-over, ADR
   * 0033): ConfigApplied False with this reason, retried by the next pass (not stalling).
   */
  deferred?: { reason: string; message: string };
}

/** ConfigApplied's reason while spec.driftPolicy Report leaves a drifted file alone (needsApply skips it). */
export const DRIFT_DETECTED = "DriftDetected";

/** What judgeApply needs of the status before this pass. */
export interface PreviousApply {
  conditions?: readonly Condition[];
  observedGeneration?: number;
}

/** ConfigApplied reasons that stall the object until its spec changes (needsApply skips them). */
export const STALLING_REASONS: ReadonlySet<string> = new Set(["InvalidSpec", "ConfigRejected"]);

export interface ApplyVerdict {
  /** undefined: this pass did not apply; keep the previous ConfigApplied. */
  configApplied?: ConditionInput;
  /** Whether the hosts' files were found matching the spec in this pass (undefined: not checked). */
  configInSync?: ConditionInput;
  stalled?: ConditionInput;
  reconciling?: ConditionInput;
  /**
   * The problem Ready names first, before what the hosts say: the spec's refusal (with Stalled)
   * or its missing references. Its message is ConfigApplied's, so it is not listed twice.
   */
  blocking?: { reason: string; message: string };
  /** Files changed on some host in this pass (services were reloaded). */
  changed: boolean;
}

/**
 * Reads an apply outcome. A daemon checker that rejected the rendered config (stage validate) or
 * a spec problem stalls the object: retrying the same spec cannot succeed. A busy host lock
 * means work is still in progress. A reference to an object that is not there yet, and any
 * other failure, is transient and retried with backoff.
 *
 * Without an outcome (this pass did not apply), a refusal of this same generation stands: the
 * operator skips the apply because of it (needsApply), so Stalled and ConfigApplied stay as the
 * refusing pass set them, `previous` and `generation` tell which.
 */
export function judgeApply(outcome: ApplyOutcome | undefined, kind: string, previous?: PreviousApply, generation?: number): ApplyVerdict {
  if (!outcome) return previousRefusal(previous, generation) ?? { changed: false };
  const specProblems = outcome.specProblems ?? [];
  if (specProblems.length > 0) {
    const message = `the ${kind} spec cannot be applied until it is changed: ${specProblems.join("; ")}`;
    return {
      configApplied: { type: "ConfigApplied", status: "False", reason: "InvalidSpec", message },
      stalled: { type: "Stalled", status: "True", reason: "InvalidSpec", message },
      blocking: { reason: "InvalidSpec", message },
      changed: false,
    };
  }
  if (outcome.deferred) {
    const { reason, message } = outcome.deferred;
    return { configApplied: { type: "ConfigApplied", status: "False", reason, message: `not applied yet: ${message}` }, changed: false };
  }
  const references = outcome.unresolvedReferences ?? [];
  if (references.length > 0) {
    const message = `the ${kind} names objects that do not exist (yet): ${references.join("; ")}; the operator applies it once they appear`;
    return {
      configApplied: { type: "ConfigApplied", status: "False", reason: "ReferenceNotFound", message },
      blocking: { reason: "ReferenceNotFound", message },
      changed: false,
    };
  }
  const results = outcome.results ?? [];
  const drift = outcome.drift;
  if (drift && drift.differing.length > 0 && drift.policy === "Report" && results.length === 0) {
    const message = `${drift.differing.join(", ")} ${drift.differing.length === 1 ? "differs" : "differ"} from what the spec renders, and spec.driftPolicy is Report, so the operator left ${drift.differing.length === 1 ? "it" : "them"} alone: undo the change on the host, or set spec.driftPolicy to Correct`;
    return {
      configApplied: { type: "ConfigApplied", status: "False", reason: "DriftDetected", message },
      configInSync: { type: "ConfigInSync", status: "False", reason: "DriftDetected", message },
      changed: false,
    };
  }
  const pending = drift?.pendingReload ?? [];
  if (pending.length > 0 && results.length === 0) {
    const message = `an apply was cut off after replacing files and before it verified ${pending.join(", ")}, so the daemon may still run the previous config; the next apply reloads it (or rolls the files back)`;
    return {
      configApplied: { type: "ConfigApplied", status: "False", reason: "ReloadPending", message },
      configInSync: { type: "ConfigInSync", status: "False", reason: "ReloadPending", message },
      changed: false,
    };
  }
  const changed = results.some((r) => r.changed.length > 0 || r.removed.length > 0);
  const rejected = results.filter((r) => r.failure?.stage === "validate");
  if (rejected.length > 0) {
    const message = rejected
      .map((r) => `${r.host}: ${r.failure!.message}${r.failure!.checkerOutput ? ` (${firstLine(r.failure!.checkerOutput)})` : ""}`)
      .join("; ");
    const full = `the daemon's own check rejected the rendered config, so nothing was changed; fix the spec: ${message}`;
    return {
      configApplied: { type: "ConfigApplied", status: "False", reason: "ConfigRejected", message: full },
      stalled: { type: "Stalled", status: "True", reason: "ConfigRejected", message: full },
      blocking: { reason: "ConfigRejected", message: full },
      changed,
    };
  }
  const unreachable = outcome.errors ?? [];
  const failed = results.filter((r) => !r.ok && r.failure?.stage !== "lock");
  if (unreachable.length > 0 || failed.length > 0) {
    const parts = [
      ...unreachable.map((e) => `${e.host}: ${e.message}`),
      ...failed.map((r) => {
        const rollback = r.rolledBack ? ` (${r.rolledBack.ok ? "rolled back" : "ROLLBACK FAILED"}: ${r.rolledBack.message})` : "";
        return `${r.host}: ${r.failure!.stage} failed: ${r.failure!.message}${rollback}`;
      }),
    ];
    const configApplied: ConditionInput = {
      type: "ConfigApplied",
      status: "False",
      reason: unreachable.length > 0 && failed.length === 0 ? "HostUnreachable" : "ApplyFailed",
      message: `${parts.join("; ")}; the operator retries with backoff`,
    };
    return {
      configApplied,
      // Rolled back or never reached: the hosts do not carry this spec, whatever an earlier pass found.
      configInSync: { ...configApplied, type: "ConfigInSync" },
      changed,
    };
  }
  const busy = results.filter((r) => r.failure?.stage === "lock");
  if (busy.length > 0) {
    return {
      reconciling: {
        type: "Reconciling",
        status: "True",
        reason: "HostBusy",
        message: `waiting for another apply to finish on ${busy.map((r) => r.host).join(", ")}`,
      },
      changed,
    };
  }
  const hostNames = results.length > 0 ? results.map((r) => r.host) : [...(drift?.checkedHosts ?? [])];
  if (hostNames.length === 0) return { changed: false };
  // The message stays the same whether this pass changed files or found them current, so that
  // lastTransitionTime marks when the config last started or stopped matching (files go to events).
  const hosts = [...hostNames].sort().join(", ");
  const inSync: ConditionInput = { type: "ConfigInSync", status: "True", reason: "HostsMatchSpec", message: `every file the operator manages on ${hosts} has the content the spec renders` };
  if (drift && drift.differing.length > 0) {
    return {
      configApplied: {
        type: "ConfigApplied",
        status: "True",
        reason: "DriftCorrected",
        message: `${drift.differing.join(", ")} differed from the spec (changed on the host) and ${drift.differing.length === 1 ? "was" : "were"} re-applied; the config on ${hosts} matches the spec`,
      },
      configInSync: inSync,
      changed,
    };
  }
  return {
    configApplied: { type: "ConfigApplied", status: "True", reason: "Applied", message: `the config on ${hosts} matches the spec` },
    configInSync: inSync,
    changed,
  };
}

/** The previous refusal of this generation, re-stated, or undefined when there is none. */
function previousRefusal(previous: PreviousApply | undefined, generation: number | undefined): ApplyVerdict | undefined {
  const applied = findCondition(previous?.conditions, "ConfigApplied");
  if (!applied || applied.status !== "False" || !STALLING_REASONS.has(applied.reason)) return undefined;
  const observed = applied.observedGeneration ?? previous?.observedGeneration;
  if (generation === undefined || observed !== generation) return undefined;
  const stalled = findCondition(previous?.conditions, "Stalled");
  const keep = (c: Condition): ConditionInput => ({ type: c.type, status: c.status, reason: c.reason, message: c.message });
  return {
    configApplied: keep(applied),
    stalled: stalled?.status === "True" ? keep(stalled) : { type: "Stalled", status: "True", reason: applied.reason, message: applied.message },
    blocking: { reason: applied.reason, message: applied.message },
    changed: false,
  };
}

function firstLine(text: string): string {
  return text.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
}
