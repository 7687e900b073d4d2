// One KeaMaintenance drill run, the I/O edge around kea-machine.ts: status-get on both peers in
// rounds, ha-maintenance-start to the peer that takes over, rounds until the machine says restore,
// ha-maintenance-cancel, rounds until both are back. As for an HAPair (runner.ts), the survivor's
// host first arms a timer that cancels the maintenance by itself, so a lost controller never leaves
// the active server out of service for longer than spec.timeout plus a margin.
import { durationToMs, type FailoverDrillSpec } from "../api/index.js";
import { agentEndpoint, keaMaintenanceCommand } from "../daemons/kea/index.js";
import type { HostSession } from "../exec/host-io.js";
import { type KeaPeerTarget, observeKeaPeer, sendKeaMaintenanceCommand } from "../observe/kea-ha.js";
import { restoreUnitOf } from "./host-actions.js";
import { type KeaDrillObservation, type KeaDrillPeers, type KeaRunState, keaPreflightObservation, keaRunRecord, stepKeaRestoring, stepKeaRunning } from "./kea-machine.js";
import { refusedRun } from "./machine.js";
import { type RunEnd, SAFETY_MARGIN_SECONDS } from "./runner.js";

/** status-get rounds no closer than this: each is a port forward and an HTTP request per peer. */
const MIN_ROUND_MS = 250;
const STATUS_GET_TIMEOUT_MS = 3_000;
const PREFLIGHT_SETTLE_MS = 5_000;

/**
 * Sends ha-maintenance-cancel to the Control Agent at $1 port $2, over bash's /dev/tcp (no curl
 * needed on the host). Args: agent address, port, the command's JSON body. No braces after a '$':
 * systemd-run expands those itself in the command it runs (as an environment variable, empty here).
 */
export const KEA_CANCEL_SCRIPT = `set -u
case "$1" in ''|*[!0-9A-Fa-f.:]*) echo "bad agent address" >&2; exit 2;; esac
case "$2" in ''|*[!0-9]*) echo "bad agent port" >&2; exit 2;; esac
length=$(printf %s "$3" | wc -c)
exec 3<>"/dev/tcp/$1/$2" || exit 1
printf 'POST / HTTP/1.1\\r\\nHost: %s\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s' "$1" "$length" "$3" >&3
timeout 10 cat <&3
`;

/** Arms the host-side cancel: a transient timer running KEA_CANCEL_SCRIPT. Args: unit, seconds, address, port, body, script. */
const ARM_SCRIPT = `set -eu
case "$3" in ''|*[!0-9A-Fa-f.:]*) echo "bad agent address" >&2; exit 2;; esac
case "$4" in ''|*[!0-9]*) echo "bad agent port" >&2; exit 2;; esac
systemd-run --quiet --unit="$1" --on-active="$2" --timer-property=AccuracySec=1s /bin/bash -c "$6" bash "$3" "$4" "$5"
`;

/** The argv that arms the survivor host's own cancel of the drill's maintenance. */
export function armKeaCancelArgv(runID: string, safetySeconds: number, agentUrl: string): string[] {
  const { host, port, tls } = agentEndpoint(agentUrl);
  if (tls) throw new Error(`${agentUrl} uses https; the operator speaks plain HTTP to the agent`);
  const body = JSON.stringify(keaMaintenanceCommand("ha-maintenance-cancel"));
  return ["sh", "-c", ARM_SCRIPT, "sh", restoreUnitOf(runID), `${Math.ceil(safetySeconds)}s`, host, String(port), body, KEA_CANCEL_SCRIPT];
}

/** The argv that disarms it (idempotent). */
export function disarmKeaCancelArgv(runID: string): string[] {
  return ["sh", "-c", 'systemctl stop "$1.timer" 2>/dev/null || true', "sh", restoreUnitOf(runID)];
}

export interface KeaRunContext {
  spec: FailoverDrillSpec;
  runID: string;
  peers: KeaDrillPeers;
  /** The two peers' Control Agents as rendered. */
  activeTarget: KeaPeerTarget;
  survivorTarget: KeaPeerTarget;
  active: HostSession;
  survivor: HostSession;
  report(phase: "Running" | "Restoring", state: KeaRunState): Promise<void>;
  mayContinue(): boolean;
  now?: () => number;
  pollIntervalMs?: number;
}

/** Cancels the drill's maintenance through the operator's session, then disarms the host's timer. Undefined when done. */
export async function cancelKeaDrill(survivor: HostSession, target: KeaPeerTarget, runID: string): Promise<string | undefined> {
  const sent = await sendKeaMaintenanceCommand(survivor, target, "ha-maintenance-cancel");
  await survivor.run(disarmKeaCancelArgv(runID), { timeoutMs: 30_000 }).catch(() => undefined);
  return sent.ok ? undefined : sent.text;
}

export async function runKeaDrill(ctx: KeaRunContext): Promise<RunEnd> {
  const now = ctx.now ?? Date.now;
  const interval = Math.max(MIN_ROUND_MS, ctx.pollIntervalMs ?? MIN_ROUND_MS);
  const { spec, peers } = ctx;
  const hosts = { activeHost: peers.activeHost, peerHost: peers.survivorHost };
  const observe = async (): Promise<{ obs: KeaDrillObservation; atMs: number }> => {
    const [a, p] = await Promise.all([observeKeaPeer(ctx.active, ctx.activeTarget, STATUS_GET_TIMEOUT_MS), observeKeaPeer(ctx.survivor, ctx.survivorTarget, STATUS_GET_TIMEOUT_MS)]);
    // The answers' arrival: a state seen here was true by then (an upper bound on the take-over).
    return { obs: { activeAnswers: a.reachable, peerAnswers: p.reachable, activeState: a.state, peerState: p.state }, atMs: now() };
  };
  const pause = (since: number) => new Promise((r) => setTimeout(r, Math.max(0, since + interval - now())));

  const startMs = now();
  let first = await observe();
  let refused = keaPreflightObservation(peers, first.obs);
  while (refused && now() - startMs < PREFLIGHT_SETTLE_MS) {
    await pause(first.atMs);
    first = await observe();
    refused = keaPreflightObservation(peers, first.obs);
  }
  if (refused) return { run: refusedRun(spec, ctx.runID, startMs, now(), { reason: "TargetNotReady", message: refused }, hosts), complete: true };
  if (!ctx.mayContinue()) return { run: refusedRun(spec, ctx.runID, startMs, now(), { reason: "Interrupted", message: "stopped before the break; nothing was touched" }, hosts), complete: false };

  const safetySeconds = Math.ceil(durationToMs(spec.timeout) / 1000) + SAFETY_MARGIN_SECONDS;
  const armed = await ctx.survivor.run(armKeaCancelArgv(ctx.runID, safetySeconds, ctx.survivorTarget.url), { timeoutMs: 30_000 }).then(
    (r) => (r.code === 0 ? undefined : `exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`),
    (err: unknown) => (err as Error).message,
  );
  if (armed !== undefined) {
    const message = `arming the host-side cancel timer on ${peers.survivorHost} failed (${armed}); nothing was put in maintenance`;
    return { run: refusedRun(spec, ctx.runID, startMs, now(), { reason: "BreakFailed", message }, hosts), complete: true };
  }
  let state: KeaRunState = { ...peers, runID: ctx.runID, phase: "Running", startMs, breakMs: now() };
  // The run is in status before anything is broken: a restarted controller finds it and cancels.
  await ctx.report("Running", state);
  state = { ...state, breakMs: now() };
  const started = await sendKeaMaintenanceCommand(ctx.survivor, ctx.survivorTarget, "ha-maintenance-start");
  if (!started.ok) {
    const undo = await cancelKeaDrill(ctx.survivor, ctx.survivorTarget, ctx.runID);
    const message = `ha-maintenance-start to ${peers.survivorPeer} on ${peers.survivorHost} failed: ${started.text}; ${undo === undefined ? "cancelled" : "nothing to cancel"}`;
    return { run: refusedRun(spec, ctx.runID, startMs, now(), { reason: "BreakFailed", message }, hosts), complete: true };
  }

  let complete = true;
  // ha-maintenance-start answers once the hand-over is done: the first round goes at once.
  let seen = Number.NEGATIVE_INFINITY;
  while (state.phase === "Running") {
    if (!ctx.mayContinue()) {
      complete = false;
      state = { ...state, phase: "Restoring", outcome: { result: "Aborted", reason: "Interrupted", message: "this controller stopped leading or shut down mid-run; the maintenance was cancelled" } };
      break;
    }
    await pause(seen);
    const o = await observe();
    seen = o.atMs;
    state = stepKeaRunning(spec, state, o.obs, o.atMs);
  }
  const undo = await cancelKeaDrill(ctx.survivor, ctx.survivorTarget, ctx.runID);
  state = { ...state, restoreMs: now() };
  if (undo !== undefined && state.outcome) state.outcome = { ...state.outcome, message: `${state.outcome.message}; ha-maintenance-cancel failed once (${undo}), retried` };
  if (!complete) return { run: keaRunRecord(spec, state, now()), complete };
  await ctx.report("Restoring", state).catch(() => undefined);
  let retried = undo === undefined;
  seen = Number.NEGATIVE_INFINITY;
  while (state.phase === "Restoring") {
    await pause(seen);
    const o = await observe();
    seen = o.atMs;
    state = stepKeaRestoring(spec, state, o.obs, o.atMs);
    // A cancel that got no answer (a dropped forward) is sent again; the host's timer is the last resort.
    if (state.phase === "Restoring" && !retried) retried = (await cancelKeaDrill(ctx.survivor, ctx.survivorTarget, ctx.runID)) === undefined;
  }
  return { run: keaRunRecord(spec, state, now()), complete };
}
