// Reloading and verifying services with systemctl. The judgement (is this unit healthy, which
// action does it need) is pure; the rest is thin argv calls through the host session.
import type { HostSession } from "../exec/host-io.js";
import type { ServiceUnit } from "../render/types.js";

export const UNIT_PROPERTIES = [
  "LoadState",
  "ActiveState",
  "SubState",
  "Result",
  "NRestarts",
  "MainPID",
  "ExecMainStartTimestampMonotonic",
  "UnitFileState",
] as const;

export interface UnitState {
  loadState: string;
  activeState: string;
  subState: string;
  result: string;
  nRestarts: number;
  mainPid: number;
  /** Microseconds since boot when the main process started; changes on every (re)start. */
  startMonotonic: number;
  unitFileState: string;
}

/** Parses `systemctl show -p …` (Key=Value lines). Missing numbers read as 0. */
export function parseSystemctlShow(stdout: string): UnitState {
  const props = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) props.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const num = (key: string) => {
    const n = Number(props.get(key) ?? "0");
    return Number.isFinite(n) ? n : 0;
  };
  return {
    loadState: props.get("LoadState") ?? "",
    activeState: props.get("ActiveState") ?? "",
    subState: props.get("SubState") ?? "",
    result: props.get("Result") ?? "",
    nRestarts: num("NRestarts"),
    mainPid: num("MainPID"),
    startMonotonic: num("ExecMainStartTimestampMonotonic"),
    unitFileState: props.get("UnitFileState") ?? "",
  };
}

export type ServiceAction = "reload" | "restart" | "start";

/**
 * keepalived reloads in place (SIGHUP keeps the other VRRP instances and their VIPs where they
 * are). dhcpd has no reload. Kea 2.2 is restarted: a SIGHUP with a config that fails half-way
 * leaves the running server without its HA hook and no rollback (before 2.3.6), and a restart
 * turns such a failure into a failed unit that verify sees and rollback repairs.
 */
export function chooseServiceAction(unit: ServiceUnit, before: UnitState): ServiceAction {
  if (before.activeState !== "active") return "start";
  return unit === "keepalived.service" ? "reload" : "restart";
}

/** Why a unit cannot be acted on at all, or undefined. */
export function unitLoadProblem(unit: ServiceUnit, state: UnitState): string | undefined {
  if (state.loadState === "not-found") return `${unit} is not installed (systemd has no such unit); install the package first`;
  if (state.loadState === "masked") return `${unit} is masked; unmask it (systemctl unmask ${unit}) to let the operator start it`;
  if (state.loadState !== "loaded") return `${unit} cannot be loaded by systemd (LoadState=${state.loadState})`;
  return undefined;
}

/** Whether a sample shows a unit that is up: active, with a running process. */
export function isRunning(state: UnitState): boolean {
  return state.activeState === "active" && state.subState === "running";
}

/** Whether a unit has given up (no point in waiting any longer). */
export function hasStopped(state: UnitState): boolean {
  return state.activeState === "failed" || state.activeState === "inactive";
}

/**
 * Judges a unit after its action from a first healthy sample and one taken a settle time later:
 * still running, the same main process, no automatic restarts since the action, and for a reload
 * the process that was there before.
 */
export function judgeSettled(
  unit: ServiceUnit,
  action: ServiceAction,
  before: UnitState,
  first: UnitState,
  settled: UnitState,
): { ok: true } | { ok: false; message: string } {
  if (!isRunning(settled)) {
    return { ok: false, message: `${unit} did not stay up: it is ${describeState(settled)}` };
  }
  // A manual start or restart resets NRestarts to 0 (seen on systemd 252); a reload does not.
  const baseline = action === "reload" ? before.nRestarts : 0;
  if (settled.nRestarts > baseline) {
    return { ok: false, message: `${unit} is in a restart loop: systemd restarted it ${settled.nRestarts - baseline} time(s) since the ${action}` };
  }
  if (settled.mainPid !== first.mainPid || settled.startMonotonic !== first.startMonotonic) {
    return { ok: false, message: `${unit} restarted while settling (main PID ${first.mainPid} became ${settled.mainPid})` };
  }
  if (action === "reload" && before.mainPid !== 0 && settled.mainPid !== before.mainPid) {
    return { ok: false, message: `${unit} was reloaded but its main process changed (PID ${before.mainPid} became ${settled.mainPid}): it died and came back` };
  }
  return { ok: true };
}

export function describeState(state: UnitState): string {
  const result = state.result && state.result !== "success" ? `, result ${state.result}` : "";
  return `${state.activeState}/${state.subState}${result}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function showUnit(session: HostSession, unit: ServiceUnit): Promise<UnitState> {
  const res = await session.run(["systemctl", "show", "-p", UNIT_PROPERTIES.join(","), "--", unit]);
  if (res.code !== 0) throw new Error(`systemctl show ${unit} failed (exit ${res.code}): ${res.stderr.trim()}`);
  return parseSystemctlShow(res.stdout);
}

export async function isEnabled(session: HostSession, unit: ServiceUnit): Promise<boolean> {
  // `is-enabled` also answers for SysV scripts (isc-dhcp-server on Debian), unlike UnitFileState.
  const res = await session.run(["systemctl", "is-enabled", "--", unit]);
  return res.stdout.trim() === "enabled";
}

export async function journalTail(session: HostSession, unit: ServiceUnit, lines = 25): Promise<string> {
  const res = await session.run(["journalctl", "-u", unit, "-n", String(lines), "--no-pager", "-o", "short-iso"]);
  return res.stdout.trim();
}

/**
 * enable and disable only change links on disk; the daemon-reload systemctl runs after them by
 * default re-reads every unit (a third of the verb's time on a lab host) and buys nothing here: the
 * unit is started or stopped explicitly right after, boot reads the links afresh, and is-enabled and
 * UnitFileState read them at once (checked on bookworm's systemd 252).
 */
const NO_RELOAD_VERBS = new Set(["enable", "disable"]);

/** Runs one systemctl verb; returns an error message or undefined. */
export async function systemctl(session: HostSession, verb: string, unit: ServiceUnit, timeoutMs = 120_000): Promise<string | undefined> {
  const res = await session.run(["systemctl", verb, ...(NO_RELOAD_VERBS.has(verb) ? ["--no-reload"] : []), "--", unit], { timeoutMs });
  if (res.code === 0) return undefined;
  const why = (res.stderr || res.stdout).trim().split("\n").slice(0, 3).join(" ");
  return `systemctl ${verb} ${unit} failed (exit ${res.code})${why ? `: ${why}` : ""}`;
}

export interface VerifyOptions {
  timeoutMs: number;
  settleMs: number;
  pollMs?: number;
}

/**
 * Waits until the unit runs, lets it settle, and judges it. A unit that fails, exits, or keeps
 * being restarted by systemd is not healthy, whatever `is-active` said for a moment.
 */
export async function verifyUnit(
  session: HostSession,
  unit: ServiceUnit,
  action: ServiceAction,
  before: UnitState,
  options: VerifyOptions,
): Promise<{ ok: true; state: UnitState } | { ok: false; message: string; state: UnitState }> {
  const pollMs = options.pollMs ?? 250;
  const deadline = Date.now() + options.timeoutMs;
  let state = await showUnit(session, unit);
  while (!isRunning(state)) {
    if (hasStopped(state)) return { ok: false, message: `${unit} is ${describeState(state)} after the ${action}`, state };
    if (Date.now() >= deadline) {
      return { ok: false, message: `${unit} was not running ${Math.round(options.timeoutMs / 1000)} s after the ${action}: it is ${describeState(state)}`, state };
    }
    await sleep(pollMs);
    state = await showUnit(session, unit);
  }
  const first = state;
  await sleep(options.settleMs);
  const settled = await showUnit(session, unit);
  const verdict = judgeSettled(unit, action, before, first, settled);
  return verdict.ok ? { ok: true, state: settled } : { ok: false, message: verdict.message, state: settled };
}

/** Waits until a stopped unit is really down (used when rolling back a first start). */
export async function verifyStopped(session: HostSession, unit: ServiceUnit): Promise<{ ok: boolean; message: string }> {
  const state = await showUnit(session, unit);
  if (state.activeState === "inactive" || state.activeState === "failed") return { ok: true, message: `${unit} is stopped again` };
  return { ok: false, message: `${unit} is still ${describeState(state)} after stopping it` };
}
