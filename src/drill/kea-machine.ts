// The KeaMaintenance drill of a KeaHACluster, pure: the same phases as an HAPair's drill
// (machine.ts), with Kea's own HA states as the observation. The break is Kea's controlled
// shutdown: ha-maintenance-start sent to the peer that must take over, which moves the active
// server to in-maintenance (it stops answering clients) and itself to partner-in-maintenance (it
// answers every client). The recovery time is from sending that command until the peer says
// partner-in-maintenance; the restore is ha-maintenance-cancel to the same peer, and everything is
// back when both are in the mode's normal state again. See ADR 0031.
import type { DrillRun, FailoverDrillSpec, KeaHAClusterSpec, KeaHAClusterStatus } from "../api/index.js";
import { durationToMs } from "../api/index.js";
import { effectivePeers } from "../daemons/kea/index.js";
import type { RunOutcome } from "./machine.js";

/** What one round of status-get saw on the two peers. */
export interface KeaDrillObservation {
  /** The peer's kea-dhcp4 answered status-get (through its Control Agent). */
  activeAnswers: boolean;
  peerAnswers: boolean;
  /** Their own HA states ("unavailable" when they did not answer). */
  activeState: string;
  peerState: string;
}

/** The two peers of the drill: the one broken (active) and the one that must take over. */
export interface KeaDrillPeers {
  activePeer: string;
  activeHost: string;
  survivorPeer: string;
  survivorHost: string;
  /** The state both are in when the relationship runs normally. */
  normalState: "hot-standby" | "load-balancing";
}

export interface KeaRunState extends KeaDrillPeers {
  runID: string;
  phase: "Running" | "Restoring" | "Done";
  startMs: number;
  breakMs: number;
  /** When the survivor was first seen in partner-in-maintenance. */
  servingOnPeerMs?: number;
  restoreMs?: number;
  recoveredMs?: number;
  outcome?: RunOutcome;
}

/** The state the survivor is in once it answers every client. */
export const TAKEN_OVER_STATE = "partner-in-maintenance";

/** The cluster's observed state, as the controller's cache holds its status. */
export interface KeaClusterView {
  exists: boolean;
  ready: boolean;
  readyMessage?: string | undefined;
  spec?: KeaHAClusterSpec | undefined;
  peers?: KeaHAClusterStatus["peers"];
}

const secondsBetween = (from: number, to: number | undefined) => (to === undefined ? undefined : Math.round(to - from) / 1000);

/**
 * The pre-flight check from the cache: which peer to put in maintenance, and which must take over.
 * The running primary is broken: in hot-standby it is the one serving; in load-balancing the secondary
 * then serves both scopes. passive-backup has no peer that takes over, so it cannot be drilled.
 */
export function keaPreflight(target: string, cluster: KeaClusterView): ({ ok: true } & KeaDrillPeers) | { ok: false; message: string } {
  if (!cluster.exists || !cluster.spec) return { ok: false, message: `refused: KeaHACluster ${target} does not exist or has an invalid spec; nothing was touched` };
  const spec = cluster.spec;
  if (spec.mode === "passive-backup") {
    return { ok: false, message: `refused: KeaHACluster ${target} is in mode passive-backup, where no peer takes over from the primary: there is no failover to drill; nothing was touched` };
  }
  if (!cluster.ready) return { ok: false, message: `refused: KeaHACluster ${target} is not Ready (${cluster.readyMessage ?? "no status yet"}); nothing was touched` };
  // The roles running on the hosts: after a planned switchover (spec.preferredPrimary) they are swapped.
  const running = effectivePeers(spec);
  const primary = running.find((p) => p.role === "primary");
  const survivor = running.find((p) => p.role === (spec.mode === "hot-standby" ? "standby" : "secondary"));
  if (!primary || !survivor) return { ok: false, message: `refused: KeaHACluster ${target} has no primary and ${spec.mode === "hot-standby" ? "standby" : "secondary"} peer; nothing was touched` };
  const normalState = spec.mode;
  const problems = [primary, survivor].flatMap((p) => {
    const seen = cluster.peers?.find((o) => o.name === p.name);
    if (!seen) return [`${p.name} is not observed yet`];
    if (!seen.reachable) return [`${p.name} on ${p.host} does not answer`];
    return seen.state === normalState ? [] : [`${p.name} is in ${seen.state}, not ${normalState}`];
  });
  if (problems.length > 0) return { ok: false, message: `refused: ${problems.join("; ")}; nothing was touched` };
  return { ok: true, activePeer: primary.name, activeHost: primary.host, survivorPeer: survivor.name, survivorHost: survivor.host, normalState };
}

/** The peers themselves, just before the break: the cache may be a resync old. */
export function keaPreflightObservation(p: KeaDrillPeers, obs: KeaDrillObservation): string | undefined {
  const problems = [
    !obs.activeAnswers ? `${p.activePeer} on ${p.activeHost} does not answer status-get` : obs.activeState !== p.normalState ? `${p.activePeer} is in ${obs.activeState}, not ${p.normalState}` : undefined,
    !obs.peerAnswers ? `${p.survivorPeer} on ${p.survivorHost} does not answer status-get` : obs.peerState !== p.normalState ? `${p.survivorPeer} is in ${obs.peerState}, not ${p.normalState}` : undefined,
  ].filter((x): x is string => x !== undefined);
  return problems.length === 0 ? undefined : `refused: ${problems.join("; ")}; nothing was touched`;
}

/** One observation during Running: record the take-over, and decide whether to restore. */
export function stepKeaRunning(spec: FailoverDrillSpec, s: KeaRunState, obs: KeaDrillObservation, nowMs: number): KeaRunState {
  const next: KeaRunState = { ...s };
  if (!obs.peerAnswers) {
    next.outcome = { result: "Aborted", reason: "PeerNotHealthy", message: `aborted: ${s.survivorPeer} on ${s.survivorHost} stopped answering status-get; the maintenance was cancelled` };
    return { ...next, phase: "Restoring" };
  }
  if (obs.peerState === TAKEN_OVER_STATE && next.servingOnPeerMs === undefined) next.servingOnPeerMs = nowMs;
  if (next.servingOnPeerMs !== undefined) {
    const measured = next.servingOnPeerMs - s.breakMs;
    const objectiveMs = durationToMs(spec.objective);
    next.outcome =
      measured <= objectiveMs
        ? { result: "Succeeded", reason: "Succeeded", message: `recovered in ${measured / 1000} s, within the objective of ${spec.objective}` }
        : { result: "Failed", reason: "MissedObjective", message: `recovered in ${measured / 1000} s, over the objective of ${spec.objective}` };
    return { ...next, phase: "Restoring" };
  }
  if (nowMs - s.breakMs > durationToMs(spec.timeout)) {
    next.outcome = {
      result: "Failed",
      reason: "RoleNotMoved",
      message: `${s.survivorPeer} did not reach ${TAKEN_OVER_STATE} within spec.timeout ${spec.timeout} (it is in ${obs.peerState}; ${s.activePeer} is in ${obs.activeState})`,
    };
    return { ...next, phase: "Restoring" };
  }
  return next;
}

/** One observation during Restoring (after ha-maintenance-cancel at s.restoreMs): both back in the normal state. */
export function stepKeaRestoring(spec: FailoverDrillSpec, s: KeaRunState, obs: KeaDrillObservation, nowMs: number): KeaRunState {
  if (obs.activeAnswers && obs.peerAnswers && obs.activeState === s.normalState && obs.peerState === s.normalState) return { ...s, phase: "Done", recoveredMs: nowMs };
  if (nowMs - (s.restoreMs ?? nowMs) > durationToMs(spec.timeout)) {
    const outcome: RunOutcome = {
      result: "Failed",
      reason: "NotRecovered",
      message: `${s.outcome?.message ?? "the run"}; but the peers were not both back in ${s.normalState} within spec.timeout ${spec.timeout} after the maintenance was cancelled (${s.activePeer} ${obs.activeState}, ${s.survivorPeer} ${obs.peerState})`,
    };
    return { ...s, phase: "Done", outcome };
  }
  return s;
}

/** The run as status.runs keeps it. */
export function keaRunRecord(spec: FailoverDrillSpec, s: KeaRunState, endMs: number): DrillRun {
  const outcome = s.outcome ?? { result: "Failed" as const, reason: "Interrupted", message: "the run ended before an outcome was decided" };
  const serving = secondsBetween(s.breakMs, s.servingOnPeerMs);
  const back = secondsBetween(s.breakMs, s.recoveredMs);
  const times = [
    serving !== undefined ? `${s.survivorPeer} in ${TAKEN_OVER_STATE} after ${serving} s` : undefined,
    back !== undefined ? `both in ${s.normalState} after ${back} s` : undefined,
  ].filter(Boolean);
  return {
    runID: s.runID,
    startTime: new Date(s.startMs).toISOString(),
    breakTime: new Date(s.breakMs).toISOString(),
    endTime: new Date(endMs).toISOString(),
    result: outcome.result,
    reason: outcome.reason,
    activeHost: s.activeHost,
    peerHost: s.survivorHost,
    objectiveSeconds: durationToMs(spec.objective) / 1000,
    ...(serving !== undefined ? { servingOnPeerSeconds: serving, recoverySeconds: serving } : {}),
    ...(back !== undefined ? { recoveredSeconds: back } : {}),
    message: times.length > 0 ? `${outcome.message} (${times.join("; ")})` : outcome.message,
  };
}
