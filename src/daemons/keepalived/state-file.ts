// The record the notify hook (renderKeepalivedNotifyScript) leaves per VRRP instance:
// `<STATE> <priority> <epoch seconds[.nanoseconds]>`, one line, replaced atomically.
import { KEEPALIVED_STATE_DIR } from "./render.js";

export type KeepalivedRecordedState = "MASTER" | "BACKUP" | "FAULT" | "STOP";

export interface KeepalivedStateRecord {
  state: KeepalivedRecordedState;
  priority: number;
  /** When the hook ran, in epoch seconds (fractional). */
  epochSeconds: number;
}

const RECORD_RE = /^(MASTER|BACKUP|FAULT|STOP) (\d{1,3}) (\d{1,12}(?:\.\d{1,9})?)$/;

/** Parses a state file; undefined for anything that is not one well-formed record. */
export function parseKeepalivedStateFile(text: string): KeepalivedStateRecord | undefined {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== 1) return undefined;
  const m = RECORD_RE.exec(lines[0]!.trim());
  if (!m) return undefined;
  const priority = Number(m[2]);
  if (priority > 255) return undefined;
  return { state: m[1] as KeepalivedRecordedState, priority, epochSeconds: Number(m[3]) };
}

/** Where the hook keeps the record of one vrrp_instance (see keepalivedInstanceNames). */
export function keepalivedStateFilePath(instance: string, stateDir = KEEPALIVED_STATE_DIR): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(instance)) throw new Error(`VRRP instance name ${JSON.stringify(instance)} is not a plain identifier`);
  return `${stateDir}/${instance}.state`;
}
