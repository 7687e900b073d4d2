// The pure half of an apply: from the desired files and what the host has now, decide what to
// write, delete and reload. No I/O here, so every decision is unit-tested with plain inputs.
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import type { FileCheck, RenderedFile, ServiceUnit } from "../render/types.js";
import type { ApplyFailure, ApplyResult, RemovedFile } from "./types.js";

export const STAGED_SUFFIX = ".ddi-ha-new";
export const BACKUP_SUFFIX = ".ddi-ha-bak";

/** Order in which services are reloaded: the DHCP servers before the VIP that tracks them. */
export const SERVICE_ORDER: readonly ServiceUnit[] = [
  "isc-dhcp-server.service",
  "kea-dhcp4-server.service",
  "kea-ctrl-agent.service",
  "keepalived.service",
];

// The API's absolutePath pattern again: paths reach argv only, but a path that is not a plain
// absolute path is a bug upstream and must not reach a host at all.
const SAFE_PATH = /^(\/[A-Za-z0-9_][A-Za-z0-9_.+-]*)+$/;

export function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

export function stagedPath(target: string): string {
  return target + STAGED_SUFFIX;
}

export function backupPath(target: string): string {
  return target + BACKUP_SUFFIX;
}

/** What the read step found on the host for one path. */
export interface LiveFile {
  path: string;
  /** undefined: the file does not exist. */
  content: string | undefined;
  /** From `stat`: %F (file type), %a (octal mode), %u, %g. Absent when the file does not exist. */
  stat?: { type: string; mode: number; uid: number; gid: number };
}

/** Adds or removes the marked line of a patched file; the dhcpd module's include-line functions. */
export interface PatchOps {
  ensure(text: string, line: string, marker: string): string;
  remove(text: string, marker: string): string;
}

export interface PlannedWrite {
  action: "write";
  path: string;
  service: ServiceUnit;
  /** The file as it will be checked and written; for patched files `content` is rebased on the live file. */
  file: RenderedFile;
  /** Mode and owner of the new file: a patched file keeps the user's; ours are root's, keeping an existing group (e.g. root:_kea). */
  mode: number;
  uid: number;
  gid: number;
  existed: boolean;
  liveHash?: string;
  desiredHash: string;
  /** Part of a removal (a patched file losing its line), reported under `removed`. */
  forRemoval: boolean;
}

export interface PlannedDelete {
  action: "delete";
  path: string;
  service: ServiceUnit;
  liveHash: string;
  owner?: string;
}

export type PlannedChange = PlannedWrite | PlannedDelete;

export interface ApplyPlan {
  changes: PlannedChange[];
  unchanged: string[];
}

export class PlanError extends Error {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** Checks the request itself: one host, plain absolute paths, each path once. Throws PlanError. */
export function validateRequest(hostName: string, files: readonly RenderedFile[], remove: readonly RemovedFile[]): void {
  const seen = new Set<string>();
  for (const entry of [...files, ...remove]) {
    const owner = "owner" in entry && entry.owner ? ` (${entry.owner})` : "";
    if (!SAFE_PATH.test(entry.path) || entry.path.split("/").includes("..")) {
      throw new PlanError(`${entry.path}${owner} is not a plain absolute path; refusing to touch it on DDIHost ${hostName}`, entry.path);
    }
    if (seen.has(entry.path)) {
      throw new PlanError(`${entry.path}${owner} appears twice in one apply to DDIHost ${hostName} (written and removed, or rendered twice)`, entry.path);
    }
    seen.add(entry.path);
    if (entry.ownership === "patched" && !entry.patch) {
      throw new PlanError(`${entry.path}${owner} is a patched file without its marker; the renderer must set patch`, entry.path);
    }
  }
  for (const file of files) {
    if (file.host !== hostName) {
      throw new PlanError(`${file.path} (${file.owner}) is rendered for DDIHost ${file.host}, but this apply is for DDIHost ${hostName}`, file.path);
    }
  }
}

/** Refuses live files the protocol cannot replace safely. Returns a message, or undefined when fine. */
export function liveFileProblem(live: LiveFile, ownership: RenderedFile["ownership"], hostName: string): string | undefined {
  if (live.stat && live.stat.type !== "regular file" && live.stat.type !== "regular empty file") {
    return (
      `${live.path} on DDIHost ${hostName} is a ${live.stat.type}, not a regular file: the operator replaces files by rename, ` +
      `which would replace it; point the config path at the real file`
    );
  }
  // readFile decodes UTF-8; a lossy decode would silently rewrite the user's other bytes.
  if (ownership === "patched" && live.content?.includes("\uFFFD")) {
    return `${live.path} on DDIHost ${hostName} is not valid UTF-8; the operator only edits one line of UTF-8 files and leaves this one alone`;
  }
  return undefined;
}

/** The desired content of a patched file: the marked line re-applied on top of what the host has now. */
export function rebasePatchedContent(file: RenderedFile, liveContent: string | undefined, ops: PatchOps): string {
  if (!file.patch) throw new PlanError(`${file.path} (${file.owner}) is patched but has no patch marker`, file.path);
  return ops.ensure(liveContent ?? "", file.patch.line, file.patch.marker);
}

/** Mode and owner for a new version of a file. */
export function ownershipOf(ownership: RenderedFile["ownership"], renderedMode: number, live: LiveFile): { mode: number; uid: number; gid: number } {
  if (!live.stat) return { mode: renderedMode, uid: 0, gid: 0 };
  if (ownership === "patched") return { mode: live.stat.mode, uid: live.stat.uid, gid: live.stat.gid };
  return { mode: renderedMode, uid: 0, gid: live.stat.gid };
}

function liveOf(live: ReadonlyMap<string, LiveFile>, path: string): LiveFile {
  return live.get(path) ?? { path, content: undefined };
}

/**
 * Decides, file by file, what changes. A file whose desired content equals the live content is
 * left alone, so a repeated apply writes nothing and reloads nothing.
 */
export function planChanges(
  hostName: string,
  files: readonly RenderedFile[],
  remove: readonly RemovedFile[],
  live: ReadonlyMap<string, LiveFile>,
  ops: PatchOps,
): ApplyPlan {
  const changes: PlannedChange[] = [];
  const unchanged: string[] = [];
  for (const file of files) {
    const current = liveOf(live, file.path);
    const problem = liveFileProblem(current, file.ownership, hostName);
    if (problem) throw new PlanError(problem, file.path);
    const content = file.ownership === "patched" ? rebasePatchedContent(file, current.content, ops) : file.content;
    if (current.content === content) {
      unchanged.push(file.path);
      continue;
    }
    changes.push({
      action: "write",
      path: file.path,
      service: file.service,
      file: { ...file, content },
      ...ownershipOf(file.ownership, file.mode, current),
      existed: current.content !== undefined,
      ...(current.content !== undefined ? { liveHash: sha256(current.content) } : {}),
      desiredHash: sha256(content),
      forRemoval: false,
    });
  }
  for (const gone of remove) {
    const current = liveOf(live, gone.path);
    if (current.content === undefined) {
      unchanged.push(gone.path);
      continue;
    }
    const problem = liveFileProblem(current, gone.ownership, hostName);
    if (problem) throw new PlanError(problem, gone.path);
    if (gone.ownership !== "patched") {
      changes.push({ action: "delete", path: gone.path, service: gone.service, liveHash: sha256(current.content), ...(gone.owner ? { owner: gone.owner } : {}) });
      continue;
    }
    const content = ops.remove(current.content, gone.patch!.marker);
    if (content === current.content) {
      unchanged.push(gone.path);
      continue;
    }
    const file: RenderedFile = {
      host: hostName,
      path: gone.path,
      content,
      mode: current.stat?.mode ?? 0o644,
      // No patch: a checker must see the file as it will be, not re-add the line being removed.
      ownership: "patched",
      service: gone.service,
      check: gone.check ?? { kind: "none" },
      owner: gone.owner ?? "(removed)",
    };
    changes.push({
      action: "write",
      path: gone.path,
      service: gone.service,
      file,
      ...ownershipOf("patched", file.mode, current),
      existed: true,
      liveHash: sha256(current.content),
      desiredHash: sha256(content),
      forRemoval: true,
    });
  }
  return { changes, unchanged };
}

/** The services to reload: those of every changed file, plus those a cut-off earlier apply left pending. */
export function servicesToReload(changes: readonly PlannedChange[], pending: readonly ServiceUnit[] = []): ServiceUnit[] {
  const reloading = changes.filter((c) => !(c.action === "write" && c.file.followedByDaemon));
  const wanted = new Set<ServiceUnit>([...reloading.map((c) => c.service), ...pending]);
  return SERVICE_ORDER.filter((s) => wanted.has(s));
}

/**
 * The services a removal leaves with nothing to serve (ADR 0028): those the caller names, and
 * those whose patched file, as it will be after the removal (or as it is, when the line is gone
 * already), its `stopServiceIf` judges empty. They are stopped and disabled, not reloaded.
 */
export function servicesToStop(
  changes: readonly PlannedChange[],
  remove: readonly RemovedFile[],
  live: ReadonlyMap<string, LiveFile>,
  stop: readonly ServiceUnit[] = [],
): ServiceUnit[] {
  const wanted = new Set<ServiceUnit>(stop);
  for (const r of remove) {
    if (!r.stopServiceIf) continue;
    const planned = changes.find((c): c is PlannedWrite => c.action === "write" && c.path === r.path);
    if (r.stopServiceIf(planned ? planned.file.content : (live.get(r.path)?.content ?? ""))) wanted.add(r.service);
  }
  return SERVICE_ORDER.filter((s) => wanted.has(s));
}

/**
 * The files one checker run must see, by batch (check kinds one checker judges together): every
 * file of that batch (changed or not, so the checker composes the whole config), but only for
 * batches where something changed.
 */
export function checkGroups(
  desired: readonly RenderedFile[],
  changes: readonly PlannedChange[],
  batchOf: (kind: Exclude<FileCheck["kind"], "none">) => string = (kind) => kind,
): Map<string, RenderedFile[]> {
  const rebased = new Map<string, RenderedFile>();
  for (const c of changes) if (c.action === "write") rebased.set(c.path, c.file);
  const all = desired.map((f) => rebased.get(f.path) ?? f);
  for (const c of changes) if (c.action === "write" && c.forRemoval) all.push(c.file);
  const batchKey = (file: RenderedFile) => (file.check.kind === "none" ? undefined : batchOf(file.check.kind));
  const changedBatches = new Set(all.filter((f) => rebased.has(f.path)).map(batchKey));
  const groups = new Map<string, RenderedFile[]>();
  for (const file of all) {
    const key = batchKey(file);
    if (key === undefined || !changedBatches.has(key)) continue;
    const group = groups.get(key) ?? [];
    group.push(file);
    groups.set(key, group);
  }
  return groups;
}

/** Directories to create before staging (parents of files that do not exist yet). */
export function parentDirectories(changes: readonly PlannedChange[]): string[] {
  return [...new Set(changes.filter((c) => c.action === "write" && !c.existed).map((c) => dirname(c.path)))].sort();
}

/** Parses `stat -c '%n|%F|%a|%u|%g' -- paths…` output (paths have no '|' or newline: SAFE_PATH). */
export function parseStatOutput(stdout: string): Map<string, NonNullable<LiveFile["stat"]>> {
  const stats = new Map<string, NonNullable<LiveFile["stat"]>>();
  for (const line of stdout.split("\n")) {
    const parts = line.split("|");
    if (parts.length !== 5) continue;
    const [path, type, mode, uid, gid] = parts as [string, string, string, string, string];
    stats.set(path, { type, mode: Number.parseInt(mode, 8), uid: Number(uid), gid: Number(gid) });
  }
  return stats;
}

/** Parses `sha256sum -- paths…` output into path → hash. */
export function parseSha256sumOutput(stdout: string): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const m = /^\\?([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m) hashes.set(m[2]!, m[1]!);
  }
  return hashes;
}

// A cut-off apply can leave a swapped file whose service was never reloaded; the next apply sees
// the file as unchanged, so the unit names are kept in a marker under /run until a reload is
// verified. The marker also names the files that apply replaced, so that whoever finishes the
// reload (another process, after a crash) can roll them back from their backups if it fails.
export const PENDING_RELOAD_PATH = "/run/ddi-ha/pending-reload";

/** A file an unfinished apply replaced (or was about to): its backup is `backupPath(path)` when it `existed`. */
export interface PendingFile {
  path: string;
  existed: boolean;
}

export interface PendingReload {
  services: ServiceUnit[];
  files: PendingFile[];
}

const PENDING_FILE_LINE = /^file (existed|created) (\S+)$/;

/** Parses the marker; unknown lines are ignored (a unit list of an older operator parses as services only). */
export function parsePendingReload(text: string | undefined): PendingReload {
  if (!text) return { services: [], files: [] };
  const lines = text.split("\n").map((l) => l.trim());
  const names = new Set(lines);
  const files = new Map<string, PendingFile>();
  for (const line of lines) {
    const m = PENDING_FILE_LINE.exec(line);
    if (m && SAFE_PATH.test(m[2]!) && !m[2]!.split("/").includes("..")) files.set(m[2]!, { path: m[2]!, existed: m[1] === "existed" });
  }
  return { services: SERVICE_ORDER.filter((s) => names.has(s)), files: [...files.values()] };
}

export function formatPendingReload(pending: PendingReload): string {
  const services = SERVICE_ORDER.filter((s) => pending.services.includes(s)).map((s) => `${s}\n`);
  const files = pending.files.map((f) => `file ${f.existed ? "existed" : "created"} ${f.path}\n`);
  return [...services, ...files].join("");
}

/** The marker an apply writes before its first rename: every service it owes and every file it replaces. */
export function pendingReloadOf(services: readonly ServiceUnit[], changes: readonly PlannedChange[], inherited: readonly PendingFile[] = []): PendingReload {
  const files = new Map<string, PendingFile>(inherited.map((f) => [f.path, f]));
  // An inherited entry wins: its backup holds the file as it was before the unfinished apply.
  for (const c of changes) if (!files.has(c.path)) files.set(c.path, { path: c.path, existed: c.action === "delete" || c.existed });
  return { services: [...services], files: [...files.values()] };
}

export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/** Assembles the result; `changed` and `removed` are sorted so results compare stably. */
export function shapeResult(input: {
  host: string;
  plan: ApplyPlan | undefined;
  swapped: readonly PlannedChange[];
  reloaded: readonly ServiceUnit[];
  stopped?: readonly ServiceUnit[];
  failure?: ApplyFailure;
  rolledBack?: { ok: boolean; message: string };
  notes?: readonly string[];
}): ApplyResult {
  const changed = input.swapped.filter((c) => c.action === "write" && !c.forRemoval).map((c) => c.path);
  const removed = input.swapped.filter((c) => c.action === "delete" || c.forRemoval).map((c) => c.path);
  return {
    host: input.host,
    changed: changed.sort(),
    unchanged: [...(input.plan?.unchanged ?? [])].sort(),
    removed: removed.sort(),
    reloaded: [...input.reloaded],
    ...(input.stopped?.length ? { stopped: [...input.stopped] } : {}),
    ok: input.failure === undefined,
    ...(input.failure ? { failure: input.failure } : {}),
    ...(input.rolledBack ? { rolledBack: input.rolledBack } : {}),
    notes: [...(input.notes ?? [])],
  };
}
