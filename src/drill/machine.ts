// The drill state machine, pure: Pending → Checking → Running → Restoring → Succeeded | Failed |
// Aborted. Every decision is made here from observations and timestamps (ms on one clock, the
// controller's); the I/O edge (runner.ts) only breaks, observes and restores. See ADR 0031.
import { type DrillResult, type DrillRun, type FailoverDrillSpec, durationToMs, nextScheduled } from "../api/index.js";

/** What one round of observation saw on the two hosts of the pair. */
export interface DrillObservation {
  /** Whether each host answered the observation at all (over SSH). */
  activeReachable: boolean;
  peerReachable: boolean;
  /** Whether each host has the VIP on its interface. */
  vipOnActive: boolean;
  vipOnPeer: boolean;
  /** `systemctl is-active keepalived` said active. */
  keepalivedActiveOnActive: boolean;
  keepalivedActiveOnPeer: boolean;
  /** The DNS query from the peer host to the VIP got an answer; undefined without spec.serviceCheck. */
  serviceAnswers?: boolean | undefined;
  /** The DNS query was sent no earlier than this (its loop runs at its own pace): an answer counts only for what was true by then. */
  serviceCheckedSinceMs?: number | undefined;
}

export interface RunOutcome {
  result: DrillResult;
  reason: string;
  message: string;
}

/** A run in progress. Times are ms on the controller's clock. */
export interface RunState {
  runID: string;
  phase: "Running" | "Restoring" | "Done";
  activeHost: string;
  peerHost: string;
  startMs: number;
  breakMs: number;
  vipOnPeerMs?: number;
  serviceAnswersMs?: number;
  restoreMs?: number;
  recoveredMs?: number;
  /** Decided when the run leaves Running; a failure to recover can still turn it into Failed. */
  outcome?: RunOutcome;
}

/** What the runner must do after a step. */
export type DrillAction = "observe" | "restore" | "finish";

/** A DNS answer to a query sent at or after `sinceMs`. */
const answeredSince = (obs: DrillObservation, sinceMs: number) => obs.serviceAnswers === true && (obs.serviceCheckedSinceMs ?? Number.NEGATIVE_INFINITY) >= sinceMs;

const secondsBetween = (from: number, to: number | undefined) => (to === undefined ? undefined : Math.round(to - from) / 1000);

/** The measured recovery time compared to the objective: the service answering with a check, else the VIP on the peer. */
export function recoveryMs(spec: Pick<FailoverDrillSpec, "serviceCheck">, s: RunState): number | undefined {
  const at = spec.serviceCheck ? s.serviceAnswersMs : s.vipOnPeerMs;
  return at === undefined ? undefined : at - s.breakMs;
}

/** One observation during Running: record what arrived, and decide whether to restore. */
export function stepRunning(spec: FailoverDrillSpec, s: RunState, obs: DrillObservation, nowMs: number): { state: RunState; action: DrillAction } {
  const next: RunState = { ...s };
  if (!obs.peerReachable || !obs.keepalivedActiveOnPeer) {
    const why = !obs.peerReachable ? `the peer ${s.peerHost} does not answer over SSH` : `keepalived is not active on the peer ${s.peerHost}`;
    next.outcome = { result: "Aborted", reason: "PeerNotHealthy", message: `aborted: ${why}; the break on ${s.activeHost} was undone` };
    return { state: { ...next, phase: "Restoring" }, action: "restore" };
  }
  if (obs.vipOnPeer && next.vipOnPeerMs === undefined) next.vipOnPeerMs = nowMs;
  // The answer counts once the VIP is on the peer: before that it may still come from the broken node.
  if (spec.serviceCheck && next.vipOnPeerMs !== undefined && answeredSince(obs, next.vipOnPeerMs) && next.serviceAnswersMs === undefined) next.serviceAnswersMs = nowMs;
  const measured = recoveryMs(spec, next);
  if (measured !== undefined) {
    const objectiveMs = durationToMs(spec.objective);
    next.outcome =
      measured <= objectiveMs
        ? { result: "Succeeded", reason: "Succeeded", message: `recovered in ${measured / 1000} s, within the objective of ${spec.objective}` }
        : { result: "Failed", reason: "MissedObjective", message: `recovered in ${measured / 1000} s, over the objective of ${spec.objective}` };
    return { state: { ...next, phase: "Restoring" }, action: "restore" };
  }
  if (nowMs - s.breakMs > durationToMs(spec.timeout)) {
    next.outcome =
      next.vipOnPeerMs === undefined
        ? { result: "Failed", reason: "VIPNotMoved", message: `the VIP did not reach the peer ${s.peerHost} within spec.timeout ${spec.timeout}` }
        : {
            result: "Failed",
            reason: "ServiceNotAnswering",
            message: `the VIP reached ${s.peerHost} after ${secondsBetween(s.breakMs, next.vipOnPeerMs)} s, but no DNS answer for ${spec.serviceCheck?.dnsName} came from the VIP within spec.timeout ${spec.timeout}`,
          };
    return { state: { ...next, phase: "Restoring" }, action: "restore" };
  }
  return { state: next, action: "observe" };
}

export interface RecoveryExpectation {
  /** With preempt, the VIP goes back to the node it was broken on; without, either node may keep it. */
  vipBackOnActive: boolean;
}

/** Whether everything is back: for an aborted run only the broken node (its peer was unhealthy to begin with). */
export function recovered(spec: FailoverDrillSpec, s: RunState, obs: DrillObservation, expect: RecoveryExpectation): boolean {
  if (s.outcome?.result === "Aborted") return obs.activeReachable && obs.keepalivedActiveOnActive && obs.vipOnActive;
  const oneHolder = expect.vipBackOnActive ? obs.vipOnActive && !obs.vipOnPeer : obs.vipOnActive !== obs.vipOnPeer;
  const answers = !spec.serviceCheck || answeredSince(obs, s.restoreMs ?? Number.NEGATIVE_INFINITY);
  return obs.activeReachable && obs.peerReachable && obs.keepalivedActiveOnActive && obs.keepalivedActiveOnPeer && oneHolder && answers;
}

/** One observation during Restoring (after the break was undone at s.restoreMs). */
export function stepRestoring(spec: FailoverDrillSpec, s: RunState, obs: DrillObservation, nowMs: number, expect: RecoveryExpectation): { state: RunState; action: DrillAction } {
  if (recovered(spec, s, obs, expect)) return { state: { ...s, phase: "Done", recoveredMs: nowMs }, action: "finish" };
  if (nowMs - (s.restoreMs ?? nowMs) > durationToMs(spec.timeout)) {
    const what = expect.vipBackOnActive ? `the VIP back on ${s.activeHost} alone` : "the VIP on one node";
    const outcome: RunOutcome = {
      result: "Failed",
      reason: "NotRecovered",
      message: `${s.outcome?.message ?? "the run"}; but the pair did not recover (keepalived active on both, ${what}${spec.serviceCheck ? ", DNS answering" : ""}) within spec.timeout ${spec.timeout} after the break was undone`,
    };
    return { state: { ...s, phase: "Done", outcome }, action: "finish" };
  }
  return { state: s, action: "observe" };
}

/** The run as status.runs keeps it. */
export function runRecord(spec: FailoverDrillSpec, s: RunState, endMs: number): DrillRun {
  const outcome = s.outcome ?? { result: "Failed" as const, reason: "Interrupted", message: "the run ended before an outcome was decided" };
  const vip = secondsBetween(s.breakMs, s.vipOnPeerMs);
  const service = secondsBetween(s.breakMs, s.serviceAnswersMs);
  const back = secondsBetween(s.breakMs, s.recoveredMs);
  const recovery = recoveryMs(spec, s);
  const times = [
    vip !== undefined ? `VIP on ${s.peerHost} after ${vip} s` : undefined,
    service !== undefined ? `DNS answering on the VIP after ${service} s` : undefined,
    back !== undefined ? `everything back after ${back} s` : undefined,
  ].filter(Boolean);
  return {
    runID: s.runID,
    startTime: new Date(s.startMs).toISOString(),
    breakTime: new Date(s.breakMs).toISOString(),
    endTime: new Date(endMs).toISOString(),
    result: outcome.result,
    reason: outcome.reason,
    activeHost: s.activeHost,
    peerHost: s.peerHost,
    objectiveSeconds: durationToMs(spec.objective) / 1000,
    ...(vip !== undefined ? { vipOnPeerSeconds: vip } : {}),
    ...(service !== undefined ? { serviceAnswersSeconds: service } : {}),
    ...(recovery !== undefined ? { recoverySeconds: recovery / 1000 } : {}),
    ...(back !== undefined ? { recoveredSeconds: back } : {}),
    message: times.length > 0 ? `${outcome.message} (${times.join("; ")})` : outcome.message,
  };
}

/** A run that never broke anything: refused by the pre-flight check, or a break that failed. */
export function refusedRun(
  spec: FailoverDrillSpec,
  runID: string,
  startMs: number,
  endMs: number,
  { reason, message }: { reason: string; message: string },
  hosts: { activeHost?: string; peerHost?: string } = {},
): DrillRun {
  return {
    runID,
    startTime: new Date(startMs).toISOString(),
    endTime: new Date(endMs).toISOString(),
    result: "Failed",
    reason,
    ...hosts,
    objectiveSeconds: durationToMs(spec.objective) / 1000,
    message,
  };
}

/** The history with `run` first, at most spec.historyLimit long. */
export function withRun(runs: readonly DrillRun[] | undefined, run: DrillRun, historyLimit: number): DrillRun[] {
  return [run, ...(runs ?? []).filter((r) => r.runID !== run.runID)].slice(0, historyLimit);
}

export interface Schedule {
  /** A run should start now. */
  due: boolean;
  /** When the next scheduled run starts, with spec.schedule. */
  next?: Date | undefined;
}

/**
 * When the drill runs. Without a schedule: once, when it has no run yet. With one: at the first
 * scheduled time after the last run started (or after the drill was created); a controller that
 * was down over several scheduled times runs once, like a CronJob, not once per missed time.
 */
export function schedule(spec: Pick<FailoverDrillSpec, "schedule">, created: Date, lastScheduleTime: string | undefined, runs: number, now: Date): Schedule {
  if (!spec.schedule) return { due: runs === 0 && lastScheduleTime === undefined };
  const from = lastScheduleTime ? new Date(lastScheduleTime) : created;
  const next = nextScheduled(spec.schedule, from);
  if (next && next.getTime() <= now.getTime()) return { due: true, next: nextScheduled(spec.schedule, now) };
  return { due: false, next };
}

/** The HAPair's observed state, as the controller's cache holds its status. */
export interface PairView {
  exists: boolean;
  ready: boolean;
  readyMessage?: string | undefined;
  activeNode?: string | undefined;
  nodes?: { host: string; role: string; vrrpState: string; holdsVIP: boolean; servicesHealthy: boolean }[] | undefined;
  primaryHost: string;
  secondaryHost: string;
}

/** The pre-flight check: which node to break and which must take over, or why the drill must not start. */
export function preflight(target: string, pair: PairView): { ok: true; activeHost: string; peerHost: string } | { ok: false; message: string } {
  if (!pair.exists) return { ok: false, message: `refused: HAPair ${target} does not exist; nothing was touched` };
  if (!pair.ready) return { ok: false, message: `refused: HAPair ${target} is not Ready (${pair.readyMessage ?? "no status yet"}); nothing was touched` };
  const activeRole = pair.activeNode;
  if (activeRole !== "primary" && activeRole !== "secondary") return { ok: false, message: `refused: HAPair ${target} has no single active node (activeNode ${activeRole ?? "unknown"}); nothing was touched` };
  const activeHost = activeRole === "primary" ? pair.primaryHost : pair.secondaryHost;
  const peerHost = activeRole === "primary" ? pair.secondaryHost : pair.primaryHost;
  const peer = pair.nodes?.find((n) => n.host === peerHost);
  if (!peer || !peer.servicesHealthy || peer.vrrpState !== "BACKUP") {
    return { ok: false, message: `refused: the peer ${peerHost} is not a healthy BACKUP (${peer ? `vrrpState ${peer.vrrpState}, services ${peer.servicesHealthy ? "healthy" : "not healthy"}` : "not observed"}); nothing was touched` };
  }
  return { ok: true, activeHost, peerHost };
}

/** The hosts themselves, just before the break: the cache may be a resync old. */
export function preflightObservation(spec: FailoverDrillSpec, activeHost: string, peerHost: string, obs: DrillObservation): string | undefined {
  const problems = [
    !obs.activeReachable ? `${activeHost} does not answer over SSH` : undefined,
    !obs.peerReachable ? `${peerHost} does not answer over SSH` : undefined,
    obs.activeReachable && !obs.vipOnActive ? `${activeHost} does not hold the VIP` : undefined,
    obs.peerReachable && obs.vipOnPeer ? `${peerHost} holds the VIP too` : undefined,
    obs.activeReachable && !obs.keepalivedActiveOnActive ? `keepalived is not active on ${activeHost}` : undefined,
    obs.peerReachable && !obs.keepalivedActiveOnPeer ? `keepalived is not active on ${peerHost}` : undefined,
    spec.serviceCheck && obs.serviceAnswers !== true ? `no DNS answer for ${spec.serviceCheck.dnsName} on the VIP from ${peerHost} before the break` : undefined,
  ].filter((p): p is string => p !== undefined);
  return problems.length === 0 ? undefined : `refused: ${problems.join("; ")}; nothing was touched`;
}
