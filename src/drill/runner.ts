// One drill run, the I/O edge around machine.ts: observe both hosts, break the active one, poll
// until the machine says restore, undo the break, poll until it says finish. Status is written at
// every phase change (through `report`), the run in progress included, so that a controller that
// restarts mid-run knows what to restore.
import { type FailoverDrillSpec, type HAPairSpec, durationToMs } from "../api/index.js";
import type { HostSession } from "../exec/host-io.js";
import type { CommandRunner } from "../exec/runner.js";
import { type BreakTarget, HostObserver, breakArgv, combine, restoreArgv } from "./host-actions.js";
import { type DrillObservation, type RecoveryExpectation, type RunState, preflightObservation, refusedRun, runRecord, stepRestoring, stepRunning } from "./machine.js";
import type { DrillRun } from "../api/index.js";

/** How often both hosts are observed during a run: the resolution of the measured times. */
export const DEFAULT_POLL_INTERVAL_MS = 200;
/** The host restores by itself this long after spec.timeout, when the controller did not. */
export const SAFETY_MARGIN_SECONDS = 30;
/** How long the hosts may take to look healthy before the break (every observation must agree). */
const PREFLIGHT_SETTLE_MS = 5_000;

export interface RunContext {
  spec: FailoverDrillSpec;
  pair: HAPairSpec;
  runID: string;
  activeHost: string;
  peerHost: string;
  active: Pick<HostSession, "run" | "stream">;
  peer: Pick<HostSession, "run" | "stream">;
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
  // Both stages at most spec.timeout each, plus the pre-flight: then the host loops end by themselves.
  const maxSeconds = (2 * durationToMs(spec.timeout)) / 1000 + 60;
  const observers = await Promise.all([
    HostObserver.start(ctx.active, { iface: interfaceOf(ctx.pair, activeHost), vip, dnsName: undefined, intervalMs: interval, maxSeconds }, now),
    HostObserver.start(ctx.peer, { iface: interfaceOf(ctx.pair, peerHost), vip, dnsName: undefined, intervalMs: interval, maxSeconds }, now),
    ...(dnsName ? [HostObserver.start(ctx.peer, { iface: interfaceOf(ctx.pair, peerHost), vip, dnsName, intervalMs: interval, maxSeconds }, now)] : []),
  ]);
  try {
    return await drive(ctx, observers, now, interval);
  } finally {
    await Promise.all(observers.map((o) => o.stop()));
  }
}

async function drive(ctx: RunContext, observers: HostObserver[], now: () => number, interval: number): Promise<RunEnd> {
  const { spec, activeHost, peerHost } = ctx;
  /** The hosts' latest blocks, after the next one arrives; its arrival time is the observation's. */
  const observe = async (since: number): Promise<{ obs: DrillObservation; atMs: number }> => {
    const deadline = now() + 10_000;
    for (;;) {
      const t = now();
      const views = observers.map((o) => o.view(t));
      const fresh = views.filter((v) => v !== undefined && v.atMs > since).map((v) => v!.atMs);
      if (views.every((v) => v !== undefined) && (fresh.length > 0 || t > deadline)) {
        const [av, pv, dv] = views.map((v) => v!.view);
        return { obs: combine(av!, pv!, dv, views[2]?.sinceMs), atMs: fresh.length > 0 ? Math.max(...fresh) : t };
      }
      await Promise.race(observers.map((o) => o.next(interval * 5)));
    }
  };
  const startMs = now();
  const hosts = { activeHost, peerHost };
  // A first DNS query may go unanswered while the peer resolves the VIP's MAC: a few seconds to settle.
  let first = await observe(startMs);
  let refused = preflightObservation(spec, activeHost, peerHost, first.obs);
  while (refused && now() - startMs < PREFLIGHT_SETTLE_MS) {
    first = await observe(first.atMs);
    refused = preflightObservation(spec, activeHost, peerHost, first.obs);
  }
  let seen = first.atMs;
  if (refused) return { run: refusedRun(spec, ctx.runID, startMs, now(), { reason: "TargetNotReady", message: refused }, hosts), complete: true };
  if (!ctx.mayContinue()) return { run: refusedRun(spec, ctx.runID, startMs, now(), { reason: "Interrupted", message: "stopped before the break; nothing was touched" }, hosts), complete: false };

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
    return { run: refusedRun(spec, ctx.runID, startMs, now(), { reason: "BreakFailed", message }, hosts), complete: true };
  }

  const expect: RecoveryExpectation = { vipBackOnActive: ctx.pair.preempt && (ctx.pair.preferredNode === "primary" ? ctx.pair.primary.host : ctx.pair.secondary.host) === activeHost };
  let complete = true;
  while (state.phase === "Running") {
    if (!ctx.mayContinue()) {
      complete = false;
      state = { ...state, phase: "Restoring", outcome: { result: "Aborted", reason: "Interrupted", message: "this controller stopped leading or shut down mid-run; the break was undone" } };
      break;
    }
    const o = await observe(seen);
    seen = o.atMs;
    state = stepRunning(spec, state, o.obs, o.atMs).state;
  }
  const undo = await restoreHost(ctx.active, target);
  state = { ...state, restoreMs: now() };
  if (undo !== undefined && state.outcome) state.outcome = { ...state.outcome, message: `${state.outcome.message}; undoing the break failed once (${undo}), retried` };
  // Interrupted: undone; whether the pair recovers is the next leader's to see.
  if (!complete) return { run: runRecord(spec, state, now()), complete };
  await ctx.report("Restoring", state).catch(() => undefined);
  let retriedUndo = undo === undefined;
  while (state.phase === "Restoring") {
    const o = await observe(Math.max(seen, state.restoreMs ?? 0));
    seen = o.atMs;
    const step = stepRestoring(spec, state, o.obs, o.atMs, expect);
    state = step.state;
    if (step.action !== "observe") break;
    // A failed undo (a dropped session) is tried again; the host's timer is the last resort.
    if (!retriedUndo) retriedUndo = (await restoreHost(ctx.active, target)) === undefined;
  }
  return { run: runRecord(spec, state, now()), complete };
}
