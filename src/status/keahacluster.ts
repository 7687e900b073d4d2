// KeaHACluster status from every peer's status-get. Pure. Health is Micetro's OK/Impaired/Down,
// computed by the kea module's rule so that there is one definition of "serving".
import type { KeaHAClusterSpec, KeaHAClusterStatus } from "../api/index.js";
import { KEA_SERVING_STATES, type KeaMaintenancePlan, type KeaSwitchoverPlan, keaNormalState } from "../daemons/kea/index.js";
import { type KeaCommandOutcome, type KeaPeerObservation, keaClusterHealth } from "../observe/kea-ha.js";
import { type ApplyOutcome, judgeApply } from "./apply-outcome.js";
import { type ConditionInput, findCondition, setConditions } from "./conditions.js";
import { endedMaintenanceCondition } from "./maintenance.js";

export interface KeaHAClusterObservation {
  mode: KeaHAClusterSpec["mode"];
  configSync: KeaHAClusterSpec["configSync"];
  /** One per spec peer, in spec order. */
  peers: readonly KeaPeerObservation[];
  /** DDIHost spec.maintenance on the peers' hosts, and what the pass did about it. */
  maintenance?: KeaMaintenanceObservation;
  /** hot-standby: the planned switchover (spec.preferredPrimary, ADR 0033) as this pass left it. */
  switchover?: KeaSwitchoverObservation;
}

export interface KeaSwitchoverObservation {
  /** planKeaSwitchover over the states observed last. */
  plan: KeaSwitchoverPlan;
  /** Whether the spec swaps the roles (spec.preferredPrimary names the standby): SwitchedOver, else SwitchedBack. */
  swapped: boolean;
  /** The last command this pass sent for it (before the apply, or to finish), with Kea's answer. */
  sent?: KeaCommandOutcome;
  /** Why the apply of the swapped roles was held this pass. */
  held?: string;
  /** When this pass's step before the apply began, if it found a switchover to do (timing one that finishes in the same pass). */
  startedAt?: Date;
}

type PreviousCondition = { status: string; reason: string; message: string; lastTransitionTime?: string } | undefined;

/**
 * The Switchover condition: True (SwitchingOver, or SwitchoverFailed when Kea refused a command)
 * while the roles change; then False SwitchedOver (spec.preferredPrimary names the standby) or
 * SwitchedBack, with the seconds from the start (the True condition's lastTransitionTime).
 * Undefined when no switchover ever ran: the condition appears with the first one.
 */
export function keaSwitchoverCondition(sw: KeaSwitchoverObservation | undefined, previous: PreviousCondition, now: Date): ConditionInput | undefined {
  if (!sw || sw.plan.phase === "Idle") return previous && previous.status !== "True" ? { type: "Switchover", status: previous.status as ConditionInput["status"], reason: previous.reason, message: previous.message } : undefined;
  // When it started, carried in the True message: the first pass writes True only after its own
  // hand-over and restarts, so the condition's lastTransitionTime would be late by those.
  const startedBefore = previous?.status === "True" ? Date.parse(/\(started (\S+)\)$/.exec(previous.message)?.[1] ?? previous.lastTransitionTime ?? "") : NaN;
  const started = Number.isFinite(startedBefore) ? startedBefore : (sw.startedAt ?? now).getTime();
  if (sw.plan.phase !== "Done") {
    const failed = sw.sent && !sw.sent.ok;
    return { type: "Switchover", status: "True", reason: failed ? "SwitchoverFailed" : "SwitchingOver", message: `${sw.plan.why}${sentText(sw.sent)} (started ${new Date(started).toISOString()})` };
  }
  const reason = sw.swapped ? "SwitchedOver" : "SwitchedBack";
  // Already done: keep the message (and the seconds) the finishing pass wrote.
  if (previous && previous.status === "False" && previous.reason === reason) return { type: "Switchover", status: "False", reason, message: previous.message };
  const seconds = Math.max(0, Math.round((now.getTime() - started) / 1000));
  return { type: "Switchover", status: "False", reason, message: `${sw.plan.why}: done ${seconds} s after the switchover started` };
}


export interface KeaMaintenanceObservation {
  /** Names of the peers whose DDIHost has spec.maintenance. */
  peers: readonly string[];
  /** planKeaMaintenance over the states observed last (after the command, when one was sent). */
  plan: KeaMaintenancePlan;
  /** The command this pass sent, with Kea's answer. */
  sent?: KeaCommandOutcome;
}

/** Survivor states a maintenance puts there on purpose. */
const TAKING_OVER_STATES = new Set(["partner-in-maintenance", "partner-down"]);

function sentText(sent: KeaCommandOutcome | undefined): string {
  return sent ? `; sent ${sent.command} to ${sent.peer}: ${sent.ok ? "accepted" : "refused"}${sent.text ? ` (${sent.text})` : ""}` : "";
}

/**
 * The cluster's Maintenance condition: True while a peer's host is in maintenance (the plan's
 * phase, or HandOverFailed when Kea refused the command); after it, Returning and Returned.
 */
function keaMaintenanceCondition(
  observation: KeaHAClusterObservation,
  back: boolean,
  previous: { status: string; reason: string; lastTransitionTime?: string } | undefined,
  now: Date,
): ConditionInput | undefined {
  const m = observation.maintenance;
  if (m && m.peers.length > 0) {
    return { type: "Maintenance", status: "True", reason: m.sent && !m.sent.ok ? "HandOverFailed" : m.plan.phase, message: `${m.plan.why}${sentText(m.sent)}` };
  }
  const detail = back ? observation.peers.map((p) => `${p.name} ${p.state}`).join(", ") : `${m?.plan.why ?? "waiting for every peer to serve again"}${sentText(m?.sent)}`;
  return endedMaintenanceCondition(previous, back, detail, now);
}

/** States Kea passes through on its own on the way to serving. */
const CONVERGING_STATES = new Set(["waiting", "syncing", "ready", "communication-recovery"]);

function peerLabel(p: KeaPeerObservation): string {
  return `${p.name} (${p.role} on ${p.host})`;
}

function peerProblem(p: KeaPeerObservation): { reason: string; message: string } | undefined {
  if (!p.reachable) {
    return {
      reason: "PeerUnreachable",
      message: `${peerLabel(p)} does not answer: ${p.error ?? "no answer"}; check that kea-dhcp4-server and kea-ctrl-agent run on ${p.host}`,
    };
  }
  if (p.state === "terminated") {
    return {
      reason: "PeerTerminated",
      message: `${peerLabel(p)} is terminated: HA stopped (clock skew above 60 s?); fix the clocks (see the DDIHost ClockSynchronized condition) and restart kea-dhcp4-server on every peer`,
    };
  }
  if (p.state === "unknown") return { reason: "HANotConfigured", message: p.error ?? `${peerLabel(p)} reports no HA relationship` };
  if (p.state === "partner-down") {
    return { reason: "PartnerDown", message: `${peerLabel(p)} is in partner-down: it serves its partner's clients too until the partner returns` };
  }
  if (p.state === "in-maintenance" || p.state === "partner-in-maintenance") {
    return { reason: "InMaintenance", message: `${peerLabel(p)} is in ${p.state}: end it with ha-maintenance-cancel` };
  }
  if (CONVERGING_STATES.has(p.state)) return { reason: "PeerConverging", message: `${peerLabel(p)} is in ${p.state}; Kea moves on by itself` };
  if (!KEA_SERVING_STATES.has(p.state)) return { reason: "PeerNotServing", message: `${peerLabel(p)} is in ${p.state}` };
  return undefined;
}

/**
 * The KeaHACluster status for one pass. Ready is True only when the config is applied and the
 * health is OK (every peer reachable and serving). ConfigInSync follows the last apply: with
 * PrimaryIsSourceOfTruth every peer must carry the primary's config.
 */
export function computeKeaHAClusterStatus(
  observation: KeaHAClusterObservation,
  applyOutcome: ApplyOutcome | undefined,
  previousStatus: KeaHAClusterStatus | undefined,
  generation: number,
  now: Date,
): KeaHAClusterStatus {
  const apply = judgeApply(applyOutcome, "KeaHACluster", previousStatus, generation);
  const peers = observation.peers;
  const health = keaClusterHealth(peers);
  const conditions: ConditionInput[] = [];
  if (apply.configApplied) {
    conditions.push(apply.configApplied);
    const source = observation.configSync === "PrimaryIsSourceOfTruth" ? "the primary's DHCP config, each with its own this-server-name" : "the managed HA section";
    conditions.push(
      apply.configInSync?.status === "False"
        ? apply.configInSync
        : apply.configApplied.status === "True"
        ? { type: "ConfigInSync", status: "True", reason: "InSync", message: `every peer carries ${source}` }
        : { type: "ConfigInSync", status: "False", reason: apply.configApplied.reason, message: `not every peer carries ${source}: ${apply.configApplied.message}` },
    );
  }
  const configApplied = apply.configApplied ?? findCondition(previousStatus?.conditions, "ConfigApplied");

  // Problems in the order a person would look at them: the spec, unreachable peers, then states.
  const problems: { reason: string; message: string }[] = [];
  if (apply.blocking) problems.push(apply.blocking);
  // A peer in maintenance may be in-maintenance, stopped or rebooting on purpose, and its partner
  // serves alone on purpose: neither is a problem. Anything else on the partner still is.
  const resting = new Set(observation.maintenance?.peers ?? []);
  const expected = (p: KeaPeerObservation) => resting.has(p.name) || (resting.size > 0 && p.reachable && TAKING_OVER_STATES.has(p.state));
  const peerProblems = peers
    .filter((p) => !expected(p))
    .map(peerProblem)
    .filter((p): p is { reason: string; message: string } => p !== undefined);
  // A peer in partner-down is the survivor: its partner's own problem names the cause, so list that first.
  peerProblems.sort((a, b) => Number(a.reason === "PartnerDown") - Number(b.reason === "PartnerDown"));
  if (!apply.blocking && configApplied && configApplied.status !== "True") problems.push({ reason: configApplied.reason, message: configApplied.message });
  if (!configApplied) problems.push({ reason: "ApplyPending", message: "the Kea configs have not been applied to the peers yet" });
  problems.push(...peerProblems);
  const sw = observation.switchover;
  const switching = sw !== undefined && sw.plan.phase !== "Idle" && sw.plan.phase !== "Done";
  if (switching) {
    // Its peers pass through in-maintenance, partner-in-maintenance and a restart on purpose: say that first.
    const failed = sw.sent && !sw.sent.ok;
    problems.unshift({ reason: failed ? "SwitchoverFailed" : "SwitchingOver", message: `switchover (spec.preferredPrimary): ${sw.plan.why}${sentText(sw.sent)}` });
  }
  const m = observation.maintenance;
  if (m && resting.size > 0) {
    if (m.sent && !m.sent.ok) problems.push({ reason: "HandOverFailed", message: `${m.plan.why}${sentText(m.sent)}` });
    else if (m.plan.phase === "NoPartnerToTakeOver" || m.plan.phase === "HandingOver") problems.push({ reason: m.plan.phase === "HandingOver" ? "HandingOver" : "NoPartnerToTakeOver", message: m.plan.why });
    if (problems.length === 0) problems.push({ reason: "Maintenance", message: `${[...resting].join(", ")} in maintenance (DDIHost spec.maintenance): ${m.plan.why}` });
  }

  let ready: ConditionInput;
  if (problems.length === 0 && health === "OK") {
    ready = { type: "Ready", status: "True", reason: "AllPeersServing", message: `${peers.map((p) => `${p.name}: ${p.state}`).join(", ")} (${observation.mode})` };
  } else {
    const reason = problems[0]?.reason ?? health;
    const detail = problems.length ? problems.map((p) => p.message).join("; ") : peers.map((p) => `${p.name}: ${p.state}`).join(", ");
    ready = { type: "Ready", status: "False", reason, message: `health ${health}: ${detail}` };
  }
  conditions.unshift(ready);
  const back = ready.status === "True" && peers.every((p) => p.reachable && p.state === keaNormalState(observation.mode, p.role));
  const maintenance = keaMaintenanceCondition(observation, back, findCondition(previousStatus?.conditions, "Maintenance"), now);
  if (maintenance) conditions.push(maintenance);
  const switchover = keaSwitchoverCondition(sw, findCondition(previousStatus?.conditions, "Switchover"), now);
  if (switchover) conditions.push(switchover);
  conditions.push(apply.stalled ?? { type: "Stalled", status: "False", reason: "", message: "" });
  const converging = peers.filter((p) => p.reachable && CONVERGING_STATES.has(p.state) && !resting.has(p.name));
  conditions.push(
    apply.reconciling ??
      (converging.length && !apply.stalled
        ? { type: "Reconciling", status: "True", reason: "PeersConverging", message: converging.map((p) => `${p.name} is in ${p.state}`).join(", ") }
        : { type: "Reconciling", status: "False", reason: "", message: "" }),
  );

  return {
    observedGeneration: generation,
    conditions: setConditions(previousStatus?.conditions, conditions, generation, now),
    health,
    peers: peers.map((p) => ({
      name: p.name,
      host: p.host,
      role: p.role,
      state: p.state,
      ...(p.inTouch !== undefined ? { inTouch: p.inTouch } : {}),
      ...(p.unackedClients !== undefined ? { unackedClients: p.unackedClients } : {}),
      reachable: p.reachable,
    })),
  };
}
