// The daemon modules the engine delegates to: their checkers (the daemon's own check plus our
// stricter rules) and the marked-line edits of patched files.
import { checkDhcpdFiles, ensureIncludeLine, removeIncludeLine } from "../daemons/dhcpd/index.js";
import { checkKeaFiles } from "../daemons/kea/index.js";
import { checkKeepalivedFiles } from "../daemons/keepalived/index.js";
import type { PatchOps } from "./plan.js";
import type { CheckKind, CheckerRegistry, FileChecker } from "./types.js";

// One Kea call checks both kea-dhcp4 and kea-ctrl-agent files (it cross-checks their sockets),
// so both kinds are handed to it together.
export const DEFAULT_CHECKERS: Required<CheckerRegistry> = {
  keepalived: checkKeepalivedFiles,
  dhcpd: checkDhcpdFiles,
  "kea-dhcp4": (files, io, workDir) => checkKeaFiles(files, io, workDir),
  "kea-ctrl-agent": (files, io, workDir) => checkKeaFiles(files, io, workDir),
};

/** Marked-line edits of patched files (today only dhcpd.conf's include line). */
export const DEFAULT_PATCH_OPS: PatchOps = { ensure: ensureIncludeLine, remove: removeIncludeLine };

export function checkerFor(kind: CheckKind, overrides: CheckerRegistry | undefined): FileChecker {
  return overrides?.[kind] ?? DEFAULT_CHECKERS[kind];
}
