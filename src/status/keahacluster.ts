// KeaHACluster status from every peer's status-get. Pure. Health is Micetro's OK/Impaired/Down,
// computed by the kea module's rule so that there is one definition of "serving".
import type { KeaHAClusterSpec, KeaHAClusterStatus } from "../api/index.js";
import { KEA_SERVING_STATES, type KeaMaintenancePlan, keaNormalState } from "../daemons/kea/index.js";
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
