// The apply engine's contract: what a caller hands in for one host and what it gets back.
import type { CheckResult, HostIO, HostSession } from "../exec/host-io.js";
import type { FileCheck, RenderedFile, ServiceUnit } from "../render/types.js";

/** The step an apply stopped at. "lock" (the host is busy) is retried by the caller; the rest are reported. */
export type ApplyStage = "lock" | "read" | "stage" | "validate" | "swap" | "reload" | "verify";

/** A file a deleted resource no longer wants (deletionPolicy Remove). */
export interface RemovedFile {
  path: string;
  service: ServiceUnit;
  /** owned/shared: the file is deleted. patched: only the line carrying `patch.marker` is removed. */
  ownership: RenderedFile["ownership"];
  patch?: { marker: string; line?: string };
  /** Check to run on a patched file after its line is removed (the rest of the file is the user's). */
  check?: FileCheck;
  /** `namespace/name` of the resource that owned it, for messages. */
  owner?: string;
  /**
   * For a patched file: whether its service is left with nothing to serve once the line is gone
   * (judged on the file as it will be, read under the host lock). True: `service` is stopped and
   * disabled instead of restarted, as with `ApplyOptions.stop`. Why: ADR 0028.
   */
  stopServiceIf?: (remaining: string) => boolean;
}

/** Runs the daemon's own checker plus our stricter rules on candidate files, on the host. */
export type FileChecker = (files: RenderedFile[], io: HostIO, workDir: string) => Promise<CheckResult>;
export type CheckKind = Exclude<FileCheck["kind"], "none">;
export type CheckerRegistry = Partial<Record<CheckKind, FileChecker>>;

/** An extra, daemon-specific health check after systemd says the unit runs (e.g. "the VIP is up"). */
export type HealthProbe = (session: HostSession) => Promise<{ ok: boolean; message: string }>;

/** The subset of pino's logger the engine uses. */
export interface ApplyLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Test hooks: points where a fault-injection test can cut the connection or halt the process. Never set in production. */
export interface ApplyHooks {
  /** The new files are staged and hashed; nothing checked or replaced yet. */
  afterStage?: () => Promise<void>;
  /** The backups are linked and hashed; the pending-reload marker is not written, nothing replaced. */
  afterBackup?: () => Promise<void>;
  /** Every target is replaced (the marker lists the services owed); nothing reloaded. */
  afterSwap?: () => Promise<void>;
  /** The first service's reload/restart command returned; not verified yet. */
  afterReload?: () => Promise<void>;
}

export interface ApplyOptions {
  remove?: RemovedFile[];
  /**
   * Services this apply leaves stopped and disabled (verified stopped) instead of reloading:
   * a removal that leaves a daemon nothing it may serve. A rollback enables and restarts them
   * with the previous files. Never recorded as a reload owed (ADR 0025), so a crash in between
   * cannot have another process restart them.
   */
  stop?: ServiceUnit[];
  /** Parent of the private check directory created with `mktemp -d` (default /run, then /tmp). */
  workDir?: string;
  /** How long one service may take to become active and healthy after a reload (default 30 s). */
  verifyTimeoutMs?: number;
  /** How long a service must stay up, with the same PID and no automatic restarts, to count as healthy (default 2 s). */
  settleMs?: number;
  /** How long to wait for another apply on the same host to finish (default 120 s). */
  lockWaitMs?: number;
  /** Lock file on the host (default /run/lock/ddi-ha-apply.lock); every apply to a host must use the same one. */
  hostLockPath?: string;
  /** Identity of the host for the in-process lock (default: session.hostName). Use address:port when names may alias. */
  lockKey?: string;
  healthProbes?: Partial<Record<ServiceUnit, HealthProbe>>;
  /** Replaces the daemon modules' checkers per kind (the defaults are the real ones). */
  checkers?: CheckerRegistry;
  logger?: ApplyLogger;
  hooks?: ApplyHooks;
}

export interface ApplyFailure {
  stage: ApplyStage;
  path?: string;
  service?: ServiceUnit;
  /** Names the file, the service and the cause. */
  message: string;
  checkerOutput?: string;
  /** The last journal lines of the failed service, when a reload or verify failed. */
  journal?: string;
}

export interface ApplyResult {
  host: string;
  /** Targets whose content this apply replaced (restored again when rolledBack.ok). */
  changed: string[];
  /** Targets that already had the desired content: not touched. */
  unchanged: string[];
  /** Files deleted, or patched files whose marked line was removed. */
  removed: string[];
  /** Services reloaded, restarted or started, in order. */
  reloaded: ServiceUnit[];
  /** Services this apply stopped and disabled (ApplyOptions.stop, RemovedFile.stopServiceIf). */
  stopped?: ServiceUnit[];
  ok: boolean;
  failure?: ApplyFailure;
  rolledBack?: { ok: boolean; message: string };
  /** Things worth a log line that did not fail the apply (e.g. `systemctl enable` refused). */
  notes: string[];
}
