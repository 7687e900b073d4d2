// The safe apply engine: one protocol (read, stage, check, back up, swap, reload, verify, roll
// back) for every file the renderers produce. See docs/adr/0008-safe-apply-protocol.md.
export { applyHostFiles } from "./engine.js";
export type {
  ApplyFailure,
  ApplyHooks,
  ApplyLogger,
  ApplyOptions,
  ApplyResult,
  ApplyStage,
  CheckKind,
  CheckerRegistry,
  FileChecker,
  HealthProbe,
  RemovedFile,
} from "./types.js";
export { BACKUP_SUFFIX, PENDING_RELOAD_PATH, STAGED_SUFFIX, backupPath, sha256, stagedPath } from "./plan.js";
export { HOST_LOCK_PATH, HostLockError, KeyedMutex, acquireHostLock } from "./host-lock.js";
export { DEFAULT_CHECKERS } from "./checkers.js";
export { DHCPD_DEFAULTS_PATH, dhcpdDefaultsProblem } from "./preconditions.js";
export { type ServiceAction, type UnitState, chooseServiceAction, judgeSettled, parseSystemctlShow } from "./systemd.js";
