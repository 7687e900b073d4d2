// keepalived VRRP for HAPairs: render, lint, check with keepalived itself, and read the notify
// hook's state records. See docs/adr/0004-keepalived-file-ownership.md.
export {
  KEEPALIVED_STATE_DIR,
  KeepalivedRenderError,
  MAINTENANCE_FLAG_PATH,
  MAINTENANCE_TRACK_FILE,
  NOTIFY_SCRIPT_PATH,
  PAIR_DIR_NAME,
  PREEMPT_DELAY_MAX_SECONDS,
  type PairRole,
  TRACK_WEIGHT_LIMIT,
  VRRPV3_ADVERT_MAX_MS,
  advertSettings,
  effectivePriority,
  keepalivedInstanceNames,
  keepalivedOwner,
  keepalivedPairDir,
  keepalivedPairFilePath,
  keepalivedPairRemovals,
  renderKeepalivedHost,
  renderKeepalivedMain,
  renderKeepalivedNotifyScript,
  renderKeepalivedPair,
  renderMaintenanceFlag,
  trackWeight,
  trackedUnits,
  unicastAddress,
} from "./render.js";
export { type KaStatement, parseKeepalivedConf } from "./conf.js";
export { type KeepalivedSource, lintKeepalivedConfig, lintKeepalivedSources } from "./lint.js";
export { type CheckKeepalivedOptions, KEEPALIVED_BINARY, checkKeepalivedFiles, includePatterns, liveFilesMatching, keepalivedProblems, keepalivedStagedPath } from "./check.js";
export { type KeepalivedRecordedState, type KeepalivedStateRecord, keepalivedStateFilePath, parseKeepalivedStateFile } from "./state-file.js";
