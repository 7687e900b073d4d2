// The scratch-server check: `kea-dhcp4 -t` on 2.2 never loads hooks, so the only way to have
// Kea itself judge an HA section is to start a throw-away kea-dhcp4 on it. This file holds the
// pure parts: the rewrite that makes the candidate harmless, the argv, and reading the outcome.
import type { CommandResult } from "../../exec/runner.js";
import { isRecord } from "./config-text.js";
import { HA_LIBRARY, KEA_SCRATCH_CLIENT_PORT, KEA_SCRATCH_SERVER_PORT, LEASE_CMDS_LIBRARY, hookLibraryName } from "./platform.js";

/** Settings that reach outside the process (databases, D2, config backends): dropped, not moved. */
const DROPPED_KEYS = ["hosts-database", "hosts-databases", "config-control", "dhcp-ddns", "dhcp4o6-port"] as const;

/**
 * The candidate rewritten so that starting it cannot touch the live server or the network:
 * no DHCP interfaces, its control socket and (non-persistent) lease database in `workDir`,
 * logging to stdout at INFO (the success and failure messages are INFO and ERROR), and only the
 * lease_cmds and HA hooks (other hooks may write files). Subnets lose their `interface`, which a
 * private network namespace does not have. Everything else, including the HA section, is kept.
 */
export function toScratchConfig(config: Record<string, unknown>, workDir: string): Record<string, unknown> {
  const dhcp4 = isRecord(config.Dhcp4) ? structuredClone(config.Dhcp4) : {};
  for (const key of DROPPED_KEYS) delete dhcp4[key];
  dhcp4["interfaces-config"] = { interfaces: [] };
  dhcp4["control-socket"] = { "socket-type": "unix", "socket-name": `${workDir}/kea4-scratch-ctrl-socket` };
  dhcp4["lease-database"] = { type: "memfile", persist: false, "lfc-interval": 0 };
  dhcp4.loggers = [{ name: "kea-dhcp4", output_options: [{ output: "stdout" }], severity: "INFO", debuglevel: 0 }];
  if (Array.isArray(dhcp4["hooks-libraries"])) {
    dhcp4["hooks-libraries"] = dhcp4["hooks-libraries"].filter(
      (h) => isRecord(h) && typeof h.library === "string" && [LEASE_CMDS_LIBRARY, HA_LIBRARY].includes(hookLibraryName(h.library)),
    );
  }
  for (const subnet of subnetsOf(dhcp4)) delete subnet.interface;
  if (Array.isArray(dhcp4["shared-networks"])) for (const net of dhcp4["shared-networks"]) if (isRecord(net)) delete net.interface;
  // Only Dhcp4: a top-level "Logging" or another daemon's section has no business here.
  return { Dhcp4: dhcp4 };
}

function subnetsOf(dhcp4: Record<string, unknown>): Record<string, unknown>[] {
  const direct = Array.isArray(dhcp4.subnet4) ? dhcp4.subnet4 : [];
  const shared = Array.isArray(dhcp4["shared-networks"])
    ? dhcp4["shared-networks"].flatMap((n) => (isRecord(n) && Array.isArray(n.subnet4) ? n.subnet4 : []))
    : [];
  return [...direct, ...shared].filter(isRecord);
}

/** How long the scratch server may run; it is killed then, which is the normal end of a good run. */
export const DEFAULT_SCRATCH_SECONDS = 3;

/**
 * argv of one bounded scratch run. `env` points Kea's PID and lock files into workDir (the
 * defaults live under /run/kea, shared with the live server), `timeout` ends the run by itself
 * (SIGTERM, then SIGKILL 2 s later), and `unshare -n` gives it a network namespace of its own
 * with nothing but a downed loopback in it.
 */
export function scratchServerArgv(scratchPath: string, workDir: string, seconds = DEFAULT_SCRATCH_SECONDS): string[] {
  return [
    "env",
    `KEA_PIDFILE_DIR=${workDir}`,
    `KEA_LOCKFILE_DIR=${workDir}`,
    "timeout",
    "--kill-after=2",
    String(seconds),
    "unshare",
    "-n",
    "kea-dhcp4",
    "-c",
    scratchPath,
    "-p",
    String(KEA_SCRATCH_SERVER_PORT),
    "-P",
    String(KEA_SCRATCH_CLIENT_PORT),
  ];
}

/** A log line after which the verdict cannot change: the server started, or refused the config. */
export const SCRATCH_DECIDED_RE = /\b(DHCP4_STARTED|HA_CONFIGURATION_FAILED|DHCP4_INIT_FAIL|DHCP4_CONFIG_LOAD_FAIL)\b/;

export type ScratchVerdict = { ok: true } | { ok: false; problem: string };

/** Kea log lines look like `2026-… ERROR [kea-dhcp4.ha-hooks/123.456] HA_CONFIGURATION_FAILED text`. */
function messageOf(output: string, id: string): string | undefined {
  const line = output.split("\n").find((l) => new RegExp(`\\b${id}\\b`).test(l));
  return line?.slice(line.indexOf(id) + id.length).trim();
}

const FATAL_IDS = ["DHCP4_INIT_FAIL", "DHCP4_CONFIG_LOAD_FAIL", "HOOKS_LOAD_ERROR", "HOOKS_INCORRECT_VERSION", "HOOKS_OPEN_ERROR"] as const;

/**
 * Reads a scratch run. The HA hook's verdict is HA_CONFIGURATION_FAILED or
 * HA_CONFIGURATION_SUCCESSFUL; DHCP4_STARTED then says the rest of the config committed too.
 * Anything short of both is a failure: a check that cannot tell must not pass a config. A config
 * without the HA hook (`withHA` false: a deleted cluster's standalone server, ADR 0028) needs
 * DHCP4_STARTED alone.
 */
export function interpretScratchRun(result: CommandResult, seconds = DEFAULT_SCRATCH_SECONDS, withHA = true): ScratchVerdict {
  const output = `${result.stdout}\n${result.stderr}`;
  const haFailed = messageOf(output, "HA_CONFIGURATION_FAILED");
  if (haFailed !== undefined) return { ok: false, problem: `Kea's HA hook refused the config: ${haFailed.replace(/^failed to configure High Availability hooks library: /, "")}` };
  for (const id of FATAL_IDS) {
    const text = messageOf(output, id);
    if (text !== undefined) return { ok: false, problem: `the scratch kea-dhcp4 did not start: ${id} ${text}` };
  }
  const fatal = /Fatal error during start up: (.*)/.exec(output);
  if (fatal) return { ok: false, problem: `the scratch kea-dhcp4 did not start: ${fatal[1]}` };
  if (result.code === 125 || result.code === 126 || result.code === 127 || /^unshare: /m.test(output)) {
    return { ok: false, problem: `the scratch kea-dhcp4 could not be run (exit ${result.code}): ${lastLines(output)} (it needs root for unshare -n, and timeout, unshare and kea-dhcp4 on the PATH)` };
  }
  const haOk = /\bHA_CONFIGURATION_SUCCESSFUL\b/.test(output);
  const started = /\bDHCP4_STARTED\b/.test(output);
  if ((haOk || !withHA) && started) return { ok: true };
  if (started) return { ok: false, problem: "the scratch kea-dhcp4 started without configuring the HA hook (no HA_CONFIGURATION_SUCCESSFUL): is libdhcp_ha.so in hooks-libraries?" };
  return { ok: false, problem: `the scratch kea-dhcp4 did not report DHCP4_STARTED within ${seconds}s (exit ${result.code}): ${lastLines(output)}` };
}

function lastLines(output: string): string {
  return output.trim().split("\n").slice(-3).join(" | ") || "(no output)";
}

/** Whether a parsed kea-dhcp4 config loads the HA hook. */
export function loadsHAHook(config: Record<string, unknown>): boolean {
  const hooks = isRecord(config.Dhcp4) && Array.isArray(config.Dhcp4["hooks-libraries"]) ? config.Dhcp4["hooks-libraries"] : [];
  return hooks.some((h) => isRecord(h) && typeof h.library === "string" && hookLibraryName(h.library) === HA_LIBRARY);
}
