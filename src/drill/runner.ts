// One drill run, the I/O edge around machine.ts: observe both hosts, break the active one, poll
// until the machine says restore, undo the break, poll until it says finish. Status is written at
// every phase change (through `report`), the run in progress included, so that a controller that
// restarts mid-run knows what to restore.
import { type FailoverDrillSpec, type HAPairSpec, durationToMs } from "../api/index.js";
import type { CommandRunner } from "../exec/runner.js";
import { type BreakTarget, breakArgv, combine, observeHost, restoreArgv } from "./host-actions.js";
import { type DrillObservation, type RecoveryExpectation, type RunState, preflightObservation, refusedRun, runRecord, stepRestoring, stepRunning } from "./machine.js";
import type { DrillRun } from "../api/index.js";

/** How often both hosts are observed during a run: the resolution of the measured times. */
export const DEFAULT_POLL_INTERVAL_MS = 200;
/** The host restores by itself this long after spec.timeout, when the controller did not. */
export const SAFETY_MARGIN_SECONDS = 30;

export interface RunContext {
  spec: FailoverDrillSpec;
  pair: HAPairSpec;
  runID: string;
  activeHost: string;
  peerHost: string;
  active: CommandRunner;
  peer: CommandRunner;
  /** Writes the phase (and the run in progress) to status; a rejection stops the run before the break. */
  report(phase: "Running" | "Restoring", state: RunState): Promise<void>;
  /** False once this process may no longer act (lost the lease, stopping): the run restores and stops. */
  mayContinue(): boolean;
  now?: () => number;
  pollIntervalMs?: number;
}

export interface RunEnd {
  run: DrillRun;
  /** False when the run stopped because it may not continue: no status is written for it. */
  complete: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function interfaceOf(pair: HAPairSpec, host: string): string {
  return pair.primary.host === host ? pair.primary.interface : pair.secondary.interface;
}

export function vipOf(pair: HAPairSpec): string {
  return pair.virtualIP.split("/")[0]!;
}

export function breakTarget(ctx: Pick<RunContext, "spec" | "pair" | "runID" | "activeHost">): BreakTarget {
  return {
    method: ctx.spec.method,
    runID: ctx.runID,
    interface: interfaceOf(ctx.pair, ctx.activeHost),
    safetySeconds: Math.ceil(durationToMs(ctx.spec.timeout) / 1000) + SAFETY_MARGIN_SECONDS,
  };
}

/** Undoes a break on a host (idempotent). */
export async function restoreHost(runner: CommandRunner, target: Omit<BreakTarget, "safetySeconds">): Promise<string | undefined> {
  try {
    const r = await runner.run(restoreArgv(target), { timeoutMs: 30_000 });
    return r.code === 0 ? undefined : `exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
  } catch (err) {
    return (err as Error).message;
  }
}

export async function runDrill(ctx: RunContext): Promise<RunEnd> {
  const now = ctx.now ?? Date.now;
  const interval = ctx.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const { spec, activeHost, peerHost } = ctx;
  const vip = vipOf(ctx.pair);
  const dnsName = spec.serviceCheck?.dnsName;
  const observe = async (): Promise<DrillObservation> => {
    const [a, p] = await Promise.all([
      observeHost(ctx.active, interfaceOf(ctx.pair, activeHost), vip, undefined),
      observeHost(ctx.peer, interfaceOf(ctx.pair, peerHost), vip, dnsName),
    ]);
    return combine(a, p, dnsName !== undefined);
  };
  const startMs = now();
  const hosts = { activeHost, peerHost };
  const refused = preflightObservation(spec, activeHost, peerHost, await observe());
  if (refused) return { run: refusedRun(spec, ctx.runID, startMs, now(), "TargetNotReady", refused, hosts), complete: true };
  if (!ctx.mayContinue()) return { run: refusedRun(spec, ctx.runID, startMs, now(), "Interrupted", "stopped before the break; nothing was touched", hosts), complete: false };

  const target = breakTarget(ctx);
  let state: RunState = { runID: ctx.runID, phase: "Running", activeHost, peerHost, startMs, breakMs: now() };
  // The run is in status before anything is broken: a restarted controller finds it and restores.
  await ctx.report("Running", state);
  state = { ...state, breakMs: now() };
  const broke = await ctx.active.run(breakArgv(target), { timeoutMs: 30_000 }).then(
    (r) => (r.code === 0 ? undefined : `exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`),
    (err: unknown) => (err as Error).message,
  );
  if (broke !== undefined) {
    const undo = await restoreHost(ctx.active, target);
    const message = `the break (${spec.method} on ${activeHost}) failed: ${broke}; ${undo === undefined ? "undone" : `undoing it failed too (${undo}); the host's timer ${target.safetySeconds} s after the break undoes it`}`;
    return { run: refusedRun(spec, ctx.runID, startMs, now(), "BreakFailed", message, hosts), complete: true };
  }

  const expect: RecoveryExpectation = { vipBackOnActive: ctx.pair.preempt && (ctx.pair.preferredNode === "primary" ? ctx.pair.primary.host : ctx.pair.secondary.host) === activeHost };
  let complete = true;
  while (state.phase === "Running") {
    if (!ctx.mayContinue()) {
      complete = false;
      state = { ...state, phase: "Restoring", outcome: { result: "Aborted", reason: "Interrupted", message: "this controller stopped leading or shut down mid-run; the break was undone" } };
      break;
    }
    const step = stepRunning(spec, state, await observe(), now());
    state = step.state;
    if (step.action === "observe") await sleep(interval);
  }
  const undo = await restoreHost(ctx.active, target);
  state = { ...state, restoreMs: now() };
  if (undo !== undefined && state.outcome) state.outcome = { ...state.outcome, message: `${state.outcome.message}; undoing the break failed once (${undo}), retried` };
  // Interrupted: undone; whether the pair recovers is the next leader's to see.
  if (!complete) return { run: runRecord(spec, state, now()), complete };
  await ctx.report("Restoring", state).catch(() => undefined);
  let retriedUndo = undo === undefined;
  while (state.phase === "Restoring") {
    const step = stepRestoring(spec, state, await observe(), now(), expect);
    state = step.state;
    if (step.action !== "observe") break;
    // A failed undo (a dropped session) is tried once more; the host's timer is the last resort.
    if (!retriedUndo) retriedUndo = (await restoreHost(ctx.active, target)) === undefined;
    await sleep(interval);
  }
  return { run: runRecord(spec, state, now()), complete };
}
