// The safe apply protocol, one host at a time: read and hash, stage beside the target, check
// with the daemon's own checker, back up, swap by rename(2), reload only the affected services,
// verify them, and roll back on any failure after the swap. Every file goes through the same
// steps, whichever daemon it belongs to. See docs/adr/0008-safe-apply-protocol.md.
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { HostSession } from "../exec/host-io.js";
import type { RenderedFile, ServiceUnit } from "../render/types.js";
import { diskFullMessage } from "./disk-full.js";
import { checkBatchKey, checkDirParent, defaultCheckForService } from "./check-routing.js";
import { DEFAULT_PATCH_OPS, checkerFor } from "./checkers.js";
import { type ApplyRequest, mayCoalesce, mergeFiles, sameApplyOptions, shareOf, shouldRetryAlone } from "./coalesce.js";
import { HostLockError, KeyedMutex, acquireHostLock, type HostLock } from "./host-lock.js";
import {
  type ApplyPlan,
  type LiveFile,
  PENDING_RELOAD_PATH,
  type PendingFile,
  type PendingReload,
  PlanError,
  type PlannedChange,
  type PlannedWrite,
  backupPath,
  checkGroups,
  formatPendingReload,
  octalMode,
  parentDirectories,
  parsePendingReload,
  parseSha256sumOutput,
  parseStatOutput,
  pendingReloadOf,
  planChanges,
  servicesToReload,
  servicesToStop,
  SERVICE_ORDER,
  shapeResult,
  stagedPath,
  validateRequest,
} from "./plan.js";
import { DHCPD_DEFAULTS_PATH, dhcpdDefaultsProblem } from "./preconditions.js";
import {
  type ServiceAction,
  type UnitState,
  chooseServiceAction,
  hasStopped,
  isEnabled,
  journalTail,
  showUnit,
  systemctl,
  unitLoadProblem,
  verifyStopped,
  verifyUnit,
} from "./systemd.js";
import type { ApplyFailure, ApplyLogger, ApplyOptions, ApplyResult, CheckKind, RemovedFile } from "./types.js";

const DEFAULT_VERIFY_TIMEOUT_MS = 30_000;
const DEFAULT_SETTLE_MS = 2_000;
const DEFAULT_LOCK_WAIT_MS = 120_000;
const MAX_LOCK_HOLD_MS = 15 * 60_000;
const COMMAND_TIMEOUT_MS = 60_000;

const silentLogger: ApplyLogger = { debug() {}, info() {}, warn() {}, error() {} };

// One per process: every apply to one host identity waits for the previous one.
const hostMutex = new KeyedMutex();

/** Raised inside a run to stop at a stage; turned into `failure` by the run. */
class StageFailure extends Error {
  constructor(readonly failure: ApplyFailure) {
    super(failure.message);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Applies the desired files of ONE host (and removes `options.remove`), safely. Never throws for
 * a failure on the host: the result says what happened, at which stage, and whether a rollback
 * restored the previous state. Applies to one host that queue behind each other share one
 * transaction (coalesce.ts, ADR 0034); each caller still gets the result for its own files.
 */
export async function applyHostFiles(session: HostSession, files: RenderedFile[], options: ApplyOptions = {}): Promise<ApplyResult> {
  const host = session.hostName;
  const remove = (options.remove ?? []).map((r): RemovedFile => (r.ownership === "patched" && !r.check ? { ...r, check: defaultCheckForService(r.service) } : r));
  try {
    validateRequest(host, files, remove);
  } catch (err) {
    const path = err instanceof PlanError ? err.path : undefined;
    return shapeResult({ host, plan: undefined, swapped: [], reloaded: [], failure: { stage: "read", ...(path ? { path } : {}), message: errorMessage(err) } });
  }
  const key = options.lockKey ?? host;
  if (mayCoalesce(options)) return hostQueue.submit(key, session, { files, options });
  const releaseLocal = await hostMutex.acquire(key);
  try {
    return await applyUnderHostLock(session, files, remove, options);
  } finally {
    releaseLocal();
  }
}

/** One transaction on the host, under its flock; the caller holds the in-process mutex. */
async function applyUnderHostLock(session: HostSession, files: RenderedFile[], remove: RemovedFile[], options: ApplyOptions): Promise<ApplyResult> {
  const host = session.hostName;
  const owners = [...new Set([...files.map((f) => f.owner), ...remove.map((r) => r.owner ?? "")].filter(Boolean))].join(",");
  let lock: HostLock;
  try {
    lock = await acquireHostLock(session, {
      waitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
      maxHoldMs: MAX_LOCK_HOLD_MS,
      ...(options.hostLockPath ? { path: options.hostLockPath } : {}),
      holder: `ddi-ha apply from ${hostname()} pid ${process.pid} for ${owners || "?"} since ${new Date().toISOString()}`,
    });
  } catch (err) {
    const message = err instanceof HostLockError ? err.message : `DDIHost ${host}: could not take the host lock: ${errorMessage(err)}`;
    return shapeResult({ host, plan: undefined, swapped: [], reloaded: [], failure: { stage: "lock", message } });
  }
  try {
    return await new ApplyRun(session, files, remove, options, lock).execute();
  } finally {
    await lock.release();
  }
}

interface Waiter {
  session: HostSession;
  request: ApplyRequest;
  resolve: (result: ApplyResult) => void;
  reject: (err: unknown) => void;
}

/**
 * Requests for one host gather while the host is busy; whoever gets the host next takes all that
 * gathered, in arrival order, and runs them as few transactions as their options and files allow.
 */
class CoalescingHostQueue {
  private readonly gathering = new Map<string, Waiter[]>();

  submit(key: string, session: HostSession, request: ApplyRequest): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      const waiter = { session, request, resolve, reject };
      const list = this.gathering.get(key);
      if (list) return void list.push(waiter);
      this.gathering.set(key, [waiter]);
      void this.runWhenFree(key);
    });
  }

  private async runWhenFree(key: string): Promise<void> {
    const release = await hostMutex.acquire(key);
    const gathered = this.gathering.get(key) ?? [];
    this.gathering.delete(key);
    try {
      for (const group of compatibleGroups(gathered)) await runGroup(group);
    } finally {
      release();
    }
  }
}

/**
 * Splits waiters into runs of compatible requests: one session (two DDIHosts may name one address),
 * the same options, and no two wanting different bytes at one path.
 */
function compatibleGroups(waiters: readonly Waiter[]): Waiter[][] {
  const groups: Waiter[][] = [];
  for (const w of waiters) {
    const fits = groups.find(
      (g) => g[0]!.session === w.session && sameApplyOptions(g[0]!.request.options, w.request.options) && mergeFiles([...g, w].map((x) => x.request)) !== undefined,
    );
    if (fits) fits.push(w);
    else groups.push([w]);
  }
  return groups;
}

async function runAlone(w: Waiter): Promise<void> {
  try {
    w.resolve(await applyUnderHostLock(w.session, w.request.files, [], w.request.options));
  } catch (err) {
    w.reject(err);
  }
}

async function runGroup(group: Waiter[]): Promise<void> {
  if (group.length === 1) return runAlone(group[0]!);
  const first = group[0]!;
  let shared: ApplyResult;
  try {
    shared = await applyUnderHostLock(first.session, mergeFiles(group.map((w) => w.request))!, [], first.request.options);
  } catch (err) {
    for (const w of group) w.reject(err);
    return;
  }
  if (shouldRetryAlone(shared, group.length)) {
    // The shared transaction was rolled back; alone, the failure lands on the request that caused it.
    for (const w of group) await runAlone(w);
    return;
  }
  for (const w of group) w.resolve(shareOf(shared, w.request, group.length - 1));
}

const hostQueue = new CoalescingHostQueue();

interface ServiceRecord {
  unit: ServiceUnit;
  before: UnitState;
  action: ServiceAction | "stop";
  enabledByUs: boolean;
  /** A stop that also disabled the unit: a rollback enables it again. */
  disabledByUs?: boolean;
}

class ApplyRun {
  private readonly host: string;
  private readonly log: ApplyLogger;
  private readonly notes: string[] = [];
  private plan: ApplyPlan | undefined;
  private services: ServiceUnit[] = [];
  private readonly before = new Map<ServiceUnit, UnitState>();
  private readonly staged: PlannedWrite[] = [];
  private readonly swapped: PlannedChange[] = [];
  private readonly acted: ServiceRecord[] = [];
  private readonly reloaded: ServiceUnit[] = [];
  /** Services this removal leaves stopped and disabled (ADR 0028), and those it did stop. */
  private stopping: ServiceUnit[] = [];
  private readonly stopped: ServiceUnit[] = [];
  /** The marker an earlier, unfinished apply left: the services it owes and the files it replaced. */
  private inherited: PendingReload = { services: [], files: [] };
  /** Backups the read step found (`backupPath(target)`). */
  private readonly backupsFound = new Set<string>();
  /** Backups this run linked: removed again when it ends without needing them. */
  private readonly linked: string[] = [];
  /** Where an unexpected error (a dropped connection, say) is reported. */
  private stageNow: ApplyFailure["stage"] = "read";

  constructor(
    private readonly session: HostSession,
    private readonly files: RenderedFile[],
    private readonly remove: RemovedFile[],
    private readonly options: ApplyOptions,
    private readonly lock: HostLock,
  ) {
    this.host = session.hostName;
    this.log = (options.logger ?? silentLogger) as ApplyLogger;
  }

  async execute(): Promise<ApplyResult> {
    try {
      const pending = await this.read();
      this.services = servicesToReload(this.plan!.changes, pending);
      // A service to stop that still runs is work even when no file changes (a retry after a cut).
      const stillRunning = await this.runningOf(this.stopping.filter((u) => !this.services.includes(u)));
      this.services = SERVICE_ORDER.filter((u) => this.services.includes(u) || stillRunning.includes(u));
      if (this.plan!.changes.length === 0 && pending.length === 0 && stillRunning.length === 0) {
        this.log.debug({ host: this.host, unchanged: this.plan!.unchanged.length }, "apply: nothing to change");
        return this.result();
      }
      if (pending.length > 0) this.notes.push(`an earlier apply was cut off before it verified ${pending.join(", ")}; reloading them now`);
      this.stageNow = "stage";
      await this.stage();
      await this.options.hooks?.afterStage?.();
      this.stageNow = "validate";
      await this.validate();
      this.stageNow = "swap";
      await this.backup();
      await this.options.hooks?.afterBackup?.();
      await this.markPending();
      await this.swap();
      await this.options.hooks?.afterSwap?.();
      this.stageNow = "reload";
      await this.reloadAndVerify();
      await this.finish();
      return this.result();
    } catch (err) {
      const failure: ApplyFailure =
        err instanceof StageFailure ? err.failure : { stage: this.stageNow, message: `${this.stageNow} on DDIHost ${this.host} failed: ${errorMessage(err)}` };
      this.log.error({ host: this.host, stage: failure.stage, path: failure.path, service: failure.service }, failure.message);
      await this.discardStaged();
      // Nothing replaced and no service touched: the host is as this apply found it.
      if (this.swapped.length === 0 && this.acted.length === 0) {
        await this.removeLinkedBackups();
        return this.result(failure);
      }
      const rolledBack = await this.rollback();
      this.log.warn({ host: this.host, ok: rolledBack.ok }, `apply: rollback: ${rolledBack.message}`);
      return this.result(failure, rolledBack);
    }
  }

  private result(failure?: ApplyFailure, rolledBack?: { ok: boolean; message: string }): ApplyResult {
    return shapeResult({
      host: this.host,
      plan: this.plan,
      swapped: this.swapped,
      reloaded: this.reloaded,
      ...(this.stopped.length > 0 ? { stopped: this.stopped } : {}),
      ...(failure ? { failure } : {}),
      ...(rolledBack ? { rolledBack } : {}),
      notes: this.notes,
    });
  }

  private async run(argv: string[], stage: ApplyFailure["stage"], what: string, extra: Partial<ApplyFailure> = {}): Promise<string> {
    let res;
    try {
      res = await this.session.run(argv, { timeoutMs: COMMAND_TIMEOUT_MS });
    } catch (err) {
      throw new StageFailure({ stage, ...extra, message: `${what} on DDIHost ${this.host} failed: ${errorMessage(err)}` });
    }
    if (res.code !== 0) {
      const why = (res.stderr || res.stdout).trim().split("\n").slice(0, 3).join(" ");
      throw new StageFailure({ stage, ...extra, message: `${what} on DDIHost ${this.host} failed (exit ${res.code})${why ? `: ${why}` : ""}` });
    }
    return res.stdout;
  }

  // 1. Read every target and its metadata; the plan decides from this alone.
  private async read(): Promise<ServiceUnit[]> {
    const paths = [...this.files.map((f) => f.path), ...this.remove.map((r) => r.path)];
    const live = new Map<string, LiveFile>();
    try {
      this.inherited = parsePendingReload(await this.session.readFile(PENDING_RELOAD_PATH));
      // Exit 1 only means some paths do not exist; the others are printed. Staged files and
      // backups of an apply that was cut off are looked for in the same call.
      // The marker may name files of another relationship on this host: their backups count too.
      const backups = [...new Set([...paths, ...this.inherited.files.map((f) => f.path)])].map(backupPath);
      const stat = await this.session.run(["stat", "-c", "%n|%F|%a|%u|%g", "--", ...paths, ...paths.map(stagedPath), ...backups], {
        timeoutMs: COMMAND_TIMEOUT_MS,
      });
      const stats = parseStatOutput(stat.stdout);
      const isRegular = (p: string) => Boolean(stats.get(p)?.type.startsWith("regular"));
      for (const b of backups.filter(isRegular)) this.backupsFound.add(b);
      // A backup is only kept while a pending reload may still need it for a rollback; one the
      // marker does not name is left by an apply that died before its first rename (or by an
      // operator that kept one generation). A marker without file lines is an older operator's:
      // its backups stay until its reload is verified.
      const marked = new Set(this.inherited.files.map((f) => backupPath(f.path)));
      const olderMarker = this.inherited.services.length > 0 && this.inherited.files.length === 0;
      const staleBackups = olderMarker ? [] : [...this.backupsFound].filter((b) => !marked.has(b));
      const leftovers = [...paths.map(stagedPath).filter(isRegular), ...staleBackups];
      if (leftovers.length > 0) {
        await this.run(["rm", "-f", "--", ...leftovers], "read", `removing ${leftovers.join(", ")} left by an apply that was cut off`);
        this.notes.push(`removed ${leftovers.join(", ")}, left by an apply that was cut off`);
        for (const b of staleBackups) this.backupsFound.delete(b);
      }
      for (const path of paths) {
        const st = stats.get(path);
        const content = st ? await this.session.readFile(path) : undefined;
        live.set(path, { path, content, ...(st && content !== undefined ? { stat: st } : {}) });
      }
      const pending = this.inherited.services;
      this.plan = planChanges(this.host, this.files, this.remove, live, DEFAULT_PATCH_OPS);
      this.stopping = servicesToStop(this.plan.changes, this.remove, live, this.options.stop);
      this.log.info(
        { host: this.host, changes: this.plan.changes.map((c) => `${c.action} ${c.path}`), unchanged: this.plan.unchanged.length, pending },
        "apply: planned",
      );
      return pending;
    } catch (err) {
      if (err instanceof StageFailure) throw err;
      const path = err instanceof PlanError ? err.path : undefined;
      throw new StageFailure({ stage: "read", ...(path ? { path } : {}), message: err instanceof PlanError ? err.message : `reading the current files on DDIHost ${this.host} failed: ${errorMessage(err)}` });
    }
  }

  // 2. Write each new file beside its target, so the swap is a rename within one directory.
  private async stage(): Promise<void> {
    const writes = this.plan!.changes.filter((c): c is PlannedWrite => c.action === "write");
    if (writes.length === 0) return;
    const dirs = parentDirectories(writes);
    if (dirs.length > 0) await this.run(["mkdir", "-p", "--", ...dirs], "stage", `creating ${dirs.join(", ")}`);
    for (const w of writes) {
      const staged = stagedPath(w.path);
      const where = { path: w.path, service: w.service };
      this.staged.push(w);
      try {
        await this.session.writeFile(staged, w.file.content, w.mode);
      } catch (err) {
        const detail = errorMessage(err);
        const message = diskFullMessage(this.host, staged, detail) ?? `writing ${staged} on DDIHost ${this.host} failed: ${detail}`;
        throw new StageFailure({ stage: "stage", ...where, message });
      }
      await this.run(["chown", `${w.uid}:${w.gid}`, "--", staged], "stage", `chown ${staged}`, where);
      await this.run(["chmod", octalMode(w.mode), "--", staged], "stage", `chmod ${staged}`, where);
    }
    const stagedPaths = writes.map((w) => stagedPath(w.path));
    // Durable before the rename makes it live; then prove every byte arrived.
    await this.run(["sync", "--", ...stagedPaths], "stage", "syncing the staged files");
    const hashes = parseSha256sumOutput(await this.run(["sha256sum", "--", ...stagedPaths], "stage", "hashing the staged files"));
    for (const w of writes) {
      const got = hashes.get(stagedPath(w.path));
      if (got !== w.desiredHash) {
        throw new StageFailure({
          stage: "stage",
          path: w.path,
          service: w.service,
          message: `the staged copy of ${w.path} on DDIHost ${this.host} is not what was sent (sha256 ${got ?? "missing"}, expected ${w.desiredHash}); the write was cut short, the live file is untouched`,
        });
      }
    }
    this.log.debug({ host: this.host, staged: stagedPaths }, "apply: staged");
  }

  // 3. The daemons' own checkers plus our rules, in a private directory; and what a restart needs.
  private async validate(): Promise<void> {
    const desired = [...this.files];
    const groups = checkGroups(desired, this.plan!.changes, checkBatchKey);
    for (const [batch, group] of groups) {
      const kind = group[0]!.check.kind as CheckKind;
      const paths = group.map((f) => f.path).join(", ");
      const owners = [...new Set(group.map((f) => f.owner))].join(", ");
      const parent = checkDirParent(kind, this.options.workDir);
      const workDir = (await this.run(["mktemp", "-d", "-p", parent, ".ddi-ha-check.XXXXXXXX"], "validate", `creating a check directory in ${parent}`)).trim();
      if (!workDir.startsWith(`${parent}/.ddi-ha-check.`)) {
        throw new StageFailure({ stage: "validate", message: `mktemp on DDIHost ${this.host} returned ${JSON.stringify(workDir)}, not a directory in ${parent}` });
      }
      try {
        const verdict = await checkerFor(kind, this.options.checkers)(group, this.session, workDir);
        this.log.info({ host: this.host, batch, tool: verdict.tool, ok: verdict.ok, problems: verdict.problems }, "apply: checked");
        if (!verdict.ok) {
          const changedHere = group.find((f) => this.plan!.changes.some((c) => c.path === f.path));
          throw new StageFailure({
            stage: "validate",
            ...(changedHere ? { path: changedHere.path, service: changedHere.service } : {}),
            message: `${verdict.tool} refused ${paths} (${[...new Set(group.map((f) => f.service))].join(", ")}) for ${owners} on DDIHost ${this.host}: ${verdict.problems.join("; ")}`,
            checkerOutput: verdict.output,
          });
        }
      } catch (err) {
        if (err instanceof StageFailure) throw err;
        throw new StageFailure({ stage: "validate", message: `checking ${paths} for ${owners} on DDIHost ${this.host} failed: ${errorMessage(err)}` });
      } finally {
        await this.session.run(["rm", "-rf", "--", workDir], { timeoutMs: COMMAND_TIMEOUT_MS }).catch(() => undefined);
      }
    }
    for (const unit of this.services) {
      let state: UnitState;
      try {
        state = await showUnit(this.session, unit);
      } catch (err) {
        throw new StageFailure({ stage: "validate", service: unit, message: `DDIHost ${this.host}: ${errorMessage(err)}` });
      }
      const problem = unitLoadProblem(unit, state);
      if (problem) throw new StageFailure({ stage: "validate", service: unit, message: `DDIHost ${this.host}: ${problem}; nothing was changed` });
      this.before.set(unit, state);
    }
    if (this.services.includes("isc-dhcp-server.service")) {
      const problem = dhcpdDefaultsProblem(await this.session.readFile(DHCPD_DEFAULTS_PATH), this.host);
      if (problem) throw new StageFailure({ stage: "validate", path: DHCPD_DEFAULTS_PATH, service: "isc-dhcp-server.service", message: `${problem}; nothing was changed` });
    }
  }

  /**
   * The files of the unfinished apply's marker this apply can still undo: those it created, and
   * those whose backup is there. They keep that backup, so a rollback goes back to the last
   * verified file rather than to the unverified one the dead process left.
   */
  private inheritedUndoable(): PendingFile[] {
    return this.inherited.files.filter((f) => !f.existed || this.backupsFound.has(backupPath(f.path)));
  }

  // 4. Back up by hard link: the old inode stays intact when the rename replaces the name, so
  // restoring is a rename too. The hash proves nobody edited the file since it was read.
  private async backup(): Promise<void> {
    const existing = this.plan!.changes.filter((c) => c.action === "delete" || c.existed);
    const keep = new Set(this.inheritedUndoable().map((f) => f.path));
    for (const c of existing.filter((x) => !keep.has(x.path))) {
      await this.run(["ln", "-f", "--", c.path, backupPath(c.path)], "swap", `backing up ${c.path}`, { path: c.path, service: c.service });
      this.linked.push(backupPath(c.path));
    }
    // What is hashed: the new backup, or (keeping an inherited one) the target itself.
    const hashed = (c: PlannedChange) => (keep.has(c.path) ? c.path : backupPath(c.path));
    if (existing.length > 0) {
      const hashes = parseSha256sumOutput(await this.run(["sha256sum", "--", ...existing.map(hashed)], "swap", "hashing the backups"));
      for (const c of existing) {
        if (hashes.get(hashed(c)) !== c.liveHash) {
          throw new StageFailure({
            stage: "swap",
            path: c.path,
            service: c.service,
            message: `${c.path} on DDIHost ${this.host} changed while this apply ran (someone edited it); nothing was replaced, the next reconcile starts over`,
          });
        }
      }
    }
  }

  // Marks the services as owed a reload until one is verified, and the files as replaced, in case
  // the process or the connection dies after the swap: whoever applies next finishes or undoes it.
  private async markPending(): Promise<void> {
    try {
      await this.session.writeFile(PENDING_RELOAD_PATH, formatPendingReload(pendingReloadOf(this.services.filter((u) => !this.stopping.includes(u)), this.plan!.changes, this.inheritedUndoable())), 0o644);
    } catch (err) {
      throw new StageFailure({ stage: "swap", message: `writing ${PENDING_RELOAD_PATH} on DDIHost ${this.host} failed: ${errorMessage(err)}` });
    }
    if (this.lock.lost) {
      throw new StageFailure({ stage: "swap", message: `the host lock on DDIHost ${this.host} was lost (SSH connection cut?); nothing was replaced` });
    }
  }

  // 5. rename(2) per file: each target is the old or the new file, never a mix.
  private async swap(): Promise<void> {
    for (const c of this.plan!.changes) {
      const where = { path: c.path, service: c.service };
      if (c.action === "write") {
        await this.run(["mv", "-f", "-T", "--", stagedPath(c.path), c.path], "swap", `renaming ${stagedPath(c.path)} to ${c.path}`, where);
        const i = this.staged.indexOf(c);
        if (i >= 0) this.staged.splice(i, 1);
      } else {
        await this.run(["rm", "-f", "--", c.path], "swap", `removing ${c.path}`, where);
      }
      this.swapped.push(c);
    }
    const dirs = [...new Set(this.swapped.map((c) => dirname(c.path)))];
    await this.session.run(["sync", "--", ...dirs], { timeoutMs: COMMAND_TIMEOUT_MS }).catch(() => undefined);
    this.log.info({ host: this.host, swapped: this.swapped.map((c) => c.path) }, "apply: swapped");
  }

  // 6 + 7. Service by service: act, then verify before touching the next one.
  private async reloadAndVerify(): Promise<void> {
    for (const unit of this.services) {
      this.stageNow = "reload";
      const before = this.before.get(unit)!;
      if (this.stopping.includes(unit)) {
        await this.stopAndDisable(unit, before);
        continue;
      }
      const action = chooseServiceAction(unit, before);
      if (action === "start" && this.onlyRemovals(unit)) {
        // Removing our files from a daemon that is not running needs no reload, and must not start it.
        this.notes.push(`${unit} on DDIHost ${this.host} is not running; the removal needs no reload`);
        continue;
      }
      let enabledByUs = false;
      if (action === "start") {
        if (!(await isEnabled(this.session, unit))) {
          const err = await systemctl(this.session, "enable", unit);
          if (err) this.notes.push(`${unit} on DDIHost ${this.host} was started but not enabled at boot: ${err}`);
          else enabledByUs = true;
        }
        await this.session.run(["systemctl", "reset-failed", "--", unit]).catch(() => undefined);
      }
      this.acted.push({ unit, before, action, enabledByUs });
      const err = await systemctl(this.session, action, unit);
      if (err) {
        throw new StageFailure({ stage: "reload", service: unit, ...this.pathOf(unit), message: `${this.describeChange(unit)}: ${err}`, journal: await this.journal(unit) });
      }
      this.reloaded.push(unit);
      if (this.reloaded.length === 1) await this.options.hooks?.afterReload?.();
      this.stageNow = "verify";
      const verdict = await verifyUnit(this.session, unit, action, before, {
        timeoutMs: this.options.verifyTimeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS,
        settleMs: this.options.settleMs ?? DEFAULT_SETTLE_MS,
      });
      if (!verdict.ok) {
        throw new StageFailure({ stage: "verify", service: unit, ...this.pathOf(unit), message: `${this.describeChange(unit)}: ${verdict.message}`, journal: await this.journal(unit) });
      }
      await this.probe(unit);
      this.log.info({ host: this.host, unit, action, mainPid: verdict.state.mainPid }, "apply: service verified");
    }
  }

  private async probe(unit: ServiceUnit): Promise<void> {
    const probe = this.options.healthProbes?.[unit];
    if (!probe) return;
    const deadline = Date.now() + (this.options.verifyTimeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS);
    let last = "";
    for (;;) {
      try {
        const r = await probe(this.session);
        if (r.ok) return;
        last = r.message;
      } catch (err) {
        last = errorMessage(err);
      }
      if (Date.now() >= deadline) {
        throw new StageFailure({ stage: "verify", service: unit, ...this.pathOf(unit), message: `${this.describeChange(unit)}: the health probe still fails: ${last}`, journal: await this.journal(unit) });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  // A removal left the daemon nothing to serve: stopped and disabled, so that neither a reboot
  // nor systemd's restart policy brings it up on a config it refuses (ADR 0028).
  private async stopAndDisable(unit: ServiceUnit, before: UnitState): Promise<void> {
    const enabled = await isEnabled(this.session, unit);
    const record: ServiceRecord = { unit, before, action: "stop", enabledByUs: false, disabledByUs: enabled };
    this.acted.push(record);
    if (!hasStopped(before)) {
      const err = await systemctl(this.session, "stop", unit);
      if (err) throw new StageFailure({ stage: "reload", service: unit, ...this.pathOf(unit), message: `${this.describeChange(unit)}: ${err}`, journal: await this.journal(unit) });
    }
    if (enabled) {
      const err = await systemctl(this.session, "disable", unit);
      if (err) this.notes.push(`${unit} on DDIHost ${this.host} was stopped but not disabled at boot: ${err}`);
    }
    this.stageNow = "verify";
    const stopped = await verifyStopped(this.session, unit);
    if (!stopped.ok) throw new StageFailure({ stage: "verify", service: unit, ...this.pathOf(unit), message: `${this.describeChange(unit)}: ${stopped.message}` });
    this.stopped.push(unit);
    this.notes.push(`${unit} on DDIHost ${this.host} stopped${enabled ? " and disabled" : ""}: the removal left it nothing to serve`);
    this.log.info({ host: this.host, unit }, "apply: service stopped and disabled");
  }

  private async runningOf(units: readonly ServiceUnit[]): Promise<ServiceUnit[]> {
    const running: ServiceUnit[] = [];
    for (const unit of units) if (!hasStopped(await showUnit(this.session, unit))) running.push(unit);
    return running;
  }

  private onlyRemovals(unit: ServiceUnit): boolean {
    const mine = this.plan!.changes.filter((c) => c.service === unit);
    return mine.length > 0 && mine.every((c) => c.action === "delete" || c.forRemoval);
  }

  private pathOf(unit: ServiceUnit): { path?: string } {
    const c = this.plan!.changes.find((x) => x.service === unit);
    return c ? { path: c.path } : {};
  }

  private describeChange(unit: ServiceUnit): string {
    const paths = this.plan!.changes.filter((c) => c.service === unit).map((c) => c.path);
    return paths.length > 0 ? `after changing ${paths.join(", ")} on DDIHost ${this.host}` : `on DDIHost ${this.host} (reload left pending by an earlier apply)`;
  }

  private async journal(unit: ServiceUnit): Promise<string> {
    return journalTail(this.session, unit).catch(() => "");
  }

  // Verified: no backup is needed any more, the marker last (a crash in between only costs one
  // more reload).
  private async finish(): Promise<void> {
    const targets = new Set([...this.files.map((f) => f.path), ...this.remove.map((r) => r.path), ...this.inherited.files.map((f) => f.path)]);
    const cleanup = [...[...targets].map(backupPath), PENDING_RELOAD_PATH];
    const res = await this.session.run(["rm", "-f", "--", ...cleanup], { timeoutMs: COMMAND_TIMEOUT_MS }).catch((err: unknown) => ({ code: -1, stdout: "", stderr: errorMessage(err) }));
    if (res.code !== 0) this.notes.push(`could not clear ${PENDING_RELOAD_PATH} on DDIHost ${this.host}: ${res.stderr.trim()} (the next apply reloads once more)`);
  }

  // A rollback renames the backups it restores; the others (files a failed swap never reached) go.
  private async removeLinkedBackups(): Promise<void> {
    if (this.linked.length === 0) return;
    await this.session.run(["rm", "-f", "--", ...this.linked], { timeoutMs: COMMAND_TIMEOUT_MS }).catch(() => undefined);
  }

  private async discardStaged(): Promise<void> {
    if (this.staged.length === 0) return;
    const paths = this.staged.map((w) => stagedPath(w.path));
    await this.session.run(["rm", "-f", "--", ...paths], { timeoutMs: COMMAND_TIMEOUT_MS }).catch(() => undefined);
    this.staged.length = 0;
  }

  // 8. Put the old files back (or delete the new ones), then bring each service we touched
  // back to how it was: reloaded and verified if it ran, stopped (and disabled) if it did not.
  // The files of an unfinished earlier apply (its marker) are undone with this apply's own: the
  // services owed a reload are reloaded with whatever the files are now.
  private async rollback(): Promise<{ ok: boolean; message: string }> {
    const done: string[] = [];
    const problems: string[] = [];
    const undo = new Map<string, boolean>(this.inheritedUndoable().map((f) => [f.path, f.existed]));
    for (const c of [...this.swapped].reverse()) if (!undo.has(c.path)) undo.set(c.path, c.action === "delete" || c.existed);
    for (const [path, existed] of undo) {
      const argv = existed ? ["mv", "-f", "-T", "--", backupPath(path), path] : ["rm", "-f", "--", path];
      try {
        const res = await this.session.run(argv, { timeoutMs: COMMAND_TIMEOUT_MS });
        if (res.code === 0) done.push(existed ? `restored ${path}` : `deleted the new ${path}`);
        else problems.push(`could not restore ${path}: ${res.stderr.trim()}`);
      } catch (err) {
        problems.push(`could not restore ${path}: ${errorMessage(err)}`);
      }
    }
    const swappedServices = new Set([...this.swapped.map((c) => c.service), ...this.inherited.services]);
    for (const record of this.acted.filter((r) => swappedServices.has(r.unit))) {
      const { unit, action } = record;
      try {
        if (action === "stop") {
          if (record.disabledByUs) await systemctl(this.session, "enable", unit);
          // It was not running before: stopped it stays.
          if (record.before.activeState !== "active") continue;
        }
        if (action === "start") {
          const err = await systemctl(this.session, "stop", unit);
          if (record.enabledByUs) await systemctl(this.session, "disable", unit);
          await this.session.run(["systemctl", "reset-failed", "--", unit]).catch(() => undefined);
          const stopped = err ? { ok: false, message: err } : await verifyStopped(this.session, unit);
          (stopped.ok ? done : problems).push(stopped.message);
          continue;
        }
        const now = await showUnit(this.session, unit);
        const redo = now.activeState === "active" && action !== "stop" ? action : "restart";
        const err = await systemctl(this.session, redo, unit);
        if (err) {
          problems.push(err);
          continue;
        }
        const verdict = await verifyUnit(this.session, unit, redo, now, {
          timeoutMs: this.options.verifyTimeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS,
          settleMs: this.options.settleMs ?? DEFAULT_SETTLE_MS,
        });
        if (verdict.ok) done.push(`${unit} ${redo === "reload" ? "reloaded" : "restarted"} with the previous files and running (PID ${verdict.state.mainPid})`);
        else problems.push(`${unit} with the previous files: ${verdict.message}`);
      } catch (err) {
        problems.push(`${unit}: ${errorMessage(err)}`);
      }
    }
    const ok = problems.length === 0;
    if (ok) {
      await this.removeLinkedBackups();
      await this.session.run(["rm", "-f", "--", PENDING_RELOAD_PATH], { timeoutMs: COMMAND_TIMEOUT_MS }).catch(() => undefined);
    }
    const message = ok
      ? `rolled back on DDIHost ${this.host}: ${done.join("; ")}`
      : `rollback on DDIHost ${this.host} incomplete: ${problems.join("; ")}${done.length > 0 ? ` (done: ${done.join("; ")})` : ""}`;
    return { ok, message };
  }
}
