// The Kubernetes Events one reconcile pass owes: computed from the object's status before and
// after the pass, and from what the pass did to the hosts. Pure. An Event marks a transition (a
// condition turning, the VIP moving) or an action on a host (files applied, drift corrected, a
// rollback); a resync that changes nothing owes none. Notes are steady for one situation (no
// times, no counts), so the recorder can fold repeats into one Event's series. See ADR 0024.
import type { ApplyOutcome } from "./apply-outcome.js";
import { findCondition } from "./conditions.js";
import type { Condition } from "../api/index.js";

export type EventType = "Normal" | "Warning";

export const EVENT_REASONS = [
  "Applied",
  "ApplyFailed",
  "RolledBack",
  "DriftCorrected",
  "FailedOver",
  "FailedBack",
  "SplitBrain",
  "PartnerDown",
  "KeaImpaired",
  "HostUnreachable",
  "HostKeyRejected",
  "Stalled",
] as const;
export type EventReason = (typeof EVENT_REASONS)[number];

export interface TransitionEvent {
  type: EventType;
  reason: EventReason;
  /** events.k8s.io/v1 `action`: what the controller did or saw. */
  action: "Apply" | "Rollback" | "CorrectDrift" | "Observe";
  /** Names the host, file or field, and what to do. */
  note: string;
}

/** What the pure core reads of the object: its kind, generation and the spec fields notes name. */
export interface EventSubject {
  kind: string;
  name: string;
  generation?: number | undefined;
  spec?: unknown;
}

type StatusLike = {
  conditions?: readonly Condition[];
  activeNode?: string;
  failoverCount?: number;
  health?: string;
  peers?: readonly { name: string; host?: string; role?: string; state?: string }[];
};

const asStatus = (s: unknown): StatusLike => (s && typeof s === "object" ? (s as StatusLike) : {});

/** The condition turned to `status` (with `reason`, if given): it was not so before the pass. */
function turned(previous: StatusLike, next: StatusLike, type: string, status: Condition["status"], reasons?: (reason: string) => boolean): Condition | undefined {
  const now = findCondition(next.conditions, type);
  if (!now || now.status !== status || (reasons && !reasons(now.reason))) return undefined;
  const before = findCondition(previous.conditions, type);
  if (before && before.status === status && before.reason === now.reason) return undefined;
  return now;
}

const HOST_KEY_MISMATCH = "HostKeyMismatch";

/** Events from what this pass did on the hosts: an action each time it happens. */
function actionEvents(subject: EventSubject, outcome: ApplyOutcome | undefined): TransitionEvent[] {
  const results = outcome?.results ?? [];
  if (results.length === 0) return [];
  const events: TransitionEvent[] = [];
  const ok = results.every((r) => r.ok);
  const drift = outcome?.drift;
  if (ok && drift && drift.policy === "Correct" && drift.differing.length > 0) {
    events.push({
      type: "Warning",
      reason: "DriftCorrected",
      action: "CorrectDrift",
      note: `${drift.differing.join(", ")} differed from the spec (changed on the host) and ${drift.differing.length === 1 ? "was" : "were"} re-applied; change the spec, not the file, or set spec.driftPolicy: Report`,
    });
  } else if (ok) {
    const changed = results.filter((r) => r.changed.length > 0 || r.removed.length > 0);
    if (changed.length > 0) {
      const files = changed.map((r) => `${r.host} (${[...r.changed, ...r.removed.map((p) => `${p} removed`)].join(", ")})`).join(", ");
      events.push({ type: "Normal", reason: "Applied", action: "Apply", note: `generation ${subject.generation ?? 0} applied to ${files}` });
    }
  }
  for (const r of results.filter((x) => x.rolledBack)) {
    const back = r.rolledBack!;
    events.push({
      type: "Warning",
      reason: "RolledBack",
      action: "Rollback",
      note: `${r.host}: ${r.failure ? `${r.failure.stage} failed: ${r.failure.message}; ` : ""}${back.ok ? "the previous files were restored" : `ROLLBACK FAILED: ${back.message}; restore the files on ${r.host} by hand`}`,
    });
  }
  return events;
}

type PairSpec = { virtualIP?: string; preferredNode?: string; primary?: { host?: string }; secondary?: { host?: string } };

/** HAPair: the VIP moved (status.failoverCount grew), or both nodes hold it. */
function haPairEvents(subject: EventSubject, previous: StatusLike, next: StatusLike): TransitionEvent[] {
  const events: TransitionEvent[] = [];
  const spec = (subject.spec ?? {}) as PairSpec;
  const to = next.activeNode;
  if ((next.failoverCount ?? 0) > (previous.failoverCount ?? 0) && (to === "primary" || to === "secondary")) {
    const from = to === "primary" ? "secondary" : "primary";
    const hostOf = (role: string) => (role === "primary" ? spec.primary?.host : spec.secondary?.host) ?? "?";
    const preferred = spec.preferredNode ?? "primary";
    const moved = `${spec.virtualIP ?? "the VIP"} moved from the ${from} ${hostOf(from)} to the ${to} ${hostOf(to)}`;
    events.push(
      to === preferred
        ? { type: "Normal", reason: "FailedBack", action: "Observe", note: `${moved}, its preferred node (spec.preferredNode)` }
        : {
            type: "Warning",
            reason: "FailedOver",
            action: "Observe",
            note: `${moved}: keepalived on ${hostOf(from)} stopped, failed or gave it away; see the pair's Ready condition and journalctl -u keepalived on ${hostOf(from)}`,
          },
    );
  }
  const split = turned(previous, next, "SplitBrain", "True");
  if (split) events.push({ type: "Warning", reason: "SplitBrain", action: "Observe", note: split.message });
  return events;
}

/** KeaHACluster: its health left OK, or a peer entered partner-down. */
function keaEvents(previous: StatusLike, next: StatusLike): TransitionEvent[] {
  const events: TransitionEvent[] = [];
  if (next.health && next.health !== "OK" && next.health !== previous.health) {
    const ready = findCondition(next.conditions, "Ready");
    events.push({ type: "Warning", reason: "KeaImpaired", action: "Observe", note: ready?.message || `health ${next.health}` });
  }
  for (const peer of next.peers ?? []) {
    const before = previous.peers?.find((p) => p.name === peer.name);
    if (peer.state === "partner-down" && before?.state !== "partner-down") {
      events.push({
        type: "Warning",
        reason: "PartnerDown",
        action: "Observe",
        note: `${peer.name} (${peer.role ?? "peer"} on ${peer.host ?? "?"}) is in partner-down: it serves its partner's clients too; bring the partner's kea-dhcp4-server back`,
      });
    }
  }
  return events;
}

/** DhcpFailoverPeer: a side entered partner-down. */
function failoverPeerEvents(previous: StatusLike, next: StatusLike): TransitionEvent[] {
  const now = findCondition(next.conditions, "PartnerDown");
  if (now?.status !== "True") return [];
  const before = findCondition(previous.conditions, "PartnerDown");
  if (before?.status === "True" && before.message === now.message) return [];
  return [{ type: "Warning", reason: "PartnerDown", action: "Observe", note: now.message }];
}

/** DDIHost: the host stopped answering, or answered with another host key. */
function hostEvents(previous: StatusLike, next: StatusLike): TransitionEvent[] {
  const reachable = turned(previous, next, "Reachable", "False");
  if (!reachable) return [];
  if (reachable.reason === HOST_KEY_MISMATCH) return [{ type: "Warning", reason: "HostKeyRejected", action: "Observe", note: reachable.message }];
  return [{ type: "Warning", reason: "HostUnreachable", action: "Observe", note: `${reachable.reason}: ${reachable.message}` }];
}

/**
 * The Events of one pass over one object, in the order they happened: what was done to the hosts,
 * then what the new status shows. `previous` is the status the new one was computed over (the one
 * the status write replaced), `outcome` what the pass applied (undefined: it only observed).
 */
export function transitionEvents(subject: EventSubject, previousStatus: unknown, nextStatus: unknown, outcome?: ApplyOutcome): TransitionEvent[] {
  const previous = asStatus(previousStatus);
  const next = asStatus(nextStatus);
  const events = actionEvents(subject, outcome);

  const applyFailed = turned(previous, next, "ConfigApplied", "False", (r) => r === "ApplyFailed" || r === "HostUnreachable");
  if (applyFailed) {
    events.push(
      applyFailed.reason === "ApplyFailed"
        ? { type: "Warning", reason: "ApplyFailed", action: "Apply", note: applyFailed.message }
        : { type: "Warning", reason: "HostUnreachable", action: "Apply", note: `cannot apply to ${applyFailed.message}` },
    );
  }
  if (subject.kind === "HAPair") events.push(...haPairEvents(subject, previous, next));
  else if (subject.kind === "KeaHACluster") events.push(...keaEvents(previous, next));
  else if (subject.kind === "DhcpFailoverPeer") events.push(...failoverPeerEvents(previous, next));
  else if (subject.kind === "DDIHost") events.push(...hostEvents(previous, next));
  // A relationship whose node cannot be observed (Ready names it first among the problems).
  if (subject.kind !== "DDIHost" && !applyFailed) {
    const unreachable = turned(previous, next, "Ready", "False", (r) => r === "HostUnreachable");
    if (unreachable) events.push({ type: "Warning", reason: "HostUnreachable", action: "Observe", note: unreachable.message });
  }
  // A changed host key has its own reason (HostKeyRejected), whatever else it stalls.
  const stalled = turned(previous, next, "Stalled", "True", (r) => r !== HOST_KEY_MISMATCH);
  if (stalled) {
    events.push({ type: "Warning", reason: "Stalled", action: "Observe", note: `${stalled.reason}: ${stalled.message}` });
  }
  return events;
}
