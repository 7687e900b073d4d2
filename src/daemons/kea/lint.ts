// Our own rules on a kea-dhcp4 config's HA section. `kea-dhcp4 -t` on 2.2 does not load hooks,
// so it accepts all of these mistakes; the scratch server catches some of them (one per run),
// and some (lease_cmds missing, max-response-delay ≤ heartbeat-delay) not even that.
import { isIP } from "node:net";
import { isRecord } from "./config-text.js";
import { HA_LIBRARY, KEA_TESTED_VERSION, LEASE_CMDS_LIBRARY, hookLibraryName, keaCapabilities } from "./platform.js";

/** Kea's defaults where the key is absent (ARM "hooks-ha"). */
const KEA_HA_DEFAULTS = { "heartbeat-delay": 10_000, "max-response-delay": 60_000, "max-ack-delay": 10_000 } as const;
const UINT16_MAX = 65_535;

const ROLES_BY_MODE: Record<string, { required: string[]; allowed: string[]; hint: string }> = {
  "load-balancing": { required: ["primary", "secondary"], allowed: ["primary", "secondary", "backup"], hint: "exactly one primary and one secondary; any others backup" },
  "hot-standby": { required: ["primary", "standby"], allowed: ["primary", "standby", "backup"], hint: "exactly one primary and one standby; any others backup" },
  "passive-backup": { required: ["primary"], allowed: ["primary", "backup"], hint: "exactly one primary; all others backup" },
};

const TLS_KEYS = ["trust-anchor", "cert-file", "key-file"] as const;

export interface LintKeaOptions {
  /** Kea version on the host, for version-dependent rules; defaults to the tested 2.2. */
  keaVersion?: string;
}

/** Problems in a parsed kea-dhcp4 config (`{"Dhcp4": …}`); each names the file, the JSON path and the fix. */
export function lintKeaConfig(config: unknown, path: string, options: LintKeaOptions = {}): string[] {
  const problems: string[] = [];
  const problem = (at: string, text: string) => problems.push(`${path}: ${at}: ${text}`);
  const dhcp4 = isRecord(config) ? config.Dhcp4 : undefined;
  if (!isRecord(dhcp4)) {
    problem("Dhcp4", 'missing: a kea-dhcp4 config is one object {"Dhcp4": {…}}');
    return problems;
  }
  const hooks = Array.isArray(dhcp4["hooks-libraries"]) ? dhcp4["hooks-libraries"] : [];
  const libraryIndex = (name: string) =>
    hooks.findIndex((h) => isRecord(h) && typeof h.library === "string" && hookLibraryName(h.library) === name);
  const haIndex = libraryIndex(HA_LIBRARY);
  if (haIndex === -1) return problems; // Not an HA config: nothing of ours to check.
  const haPath = `Dhcp4.hooks-libraries[${haIndex}]`;
  if (libraryIndex(LEASE_CMDS_LIBRARY) === -1) {
    problem(haPath, `${HA_LIBRARY} is loaded without ${LEASE_CMDS_LIBRARY}: add {"library": "<hooks dir>/${LEASE_CMDS_LIBRARY}"} before it (HA sends lease updates through lease_cmds)`);
  }
  const params = (hooks[haIndex] as Record<string, unknown>).parameters;
  const relationships = isRecord(params) ? params["high-availability"] : undefined;
  const relPath = `${haPath}.parameters.high-availability`;
  if (!Array.isArray(relationships) || relationships.length === 0) {
    problem(relPath, "missing: give one relationship [{this-server-name, mode, peers, …}]");
    return problems;
  }
  const max = keaCapabilities(options.keaVersion ?? KEA_TESTED_VERSION).maxRelationships;
  if (relationships.length > max) {
    problem(relPath, `${relationships.length} relationships, but Kea ${options.keaVersion ?? KEA_TESTED_VERSION} supports ${max}: keep one`);
  }
  relationships.forEach((rel, r) => lintRelationship(rel, `${relPath}[${r}]`, problem));
  return problems;
}

function lintRelationship(rel: unknown, at: string, problem: (at: string, text: string) => void): void {
  if (!isRecord(rel)) {
    problem(at, "must be an object");
    return;
  }
  const mode = rel.mode;
  const rules = typeof mode === "string" ? ROLES_BY_MODE[mode] : undefined;
  if (!rules) problem(`${at}.mode`, `${JSON.stringify(mode)} is not a mode: use load-balancing, hot-standby or passive-backup`);

  const peers = Array.isArray(rel.peers) ? rel.peers : [];
  if (peers.length === 0) problem(`${at}.peers`, "missing or empty: list every server of the relationship with name, url and role");
  const names = peers.map((p) => (isRecord(p) && typeof p.name === "string" ? p.name : undefined));

  const self = rel["this-server-name"];
  if (typeof self !== "string" || !names.includes(self)) {
    problem(`${at}.this-server-name`, `${JSON.stringify(self)} names none of the peers: set it to this server's own peer name (one of ${names.filter(Boolean).join(", ")}), not a copy of another server's`);
  }

  peers.forEach((peer, i) => {
    const p = `${at}.peers[${i}]`;
    if (!isRecord(peer)) return problem(p, "must be an object");
    if (typeof peer.name !== "string" || peer.name === "") problem(`${p}.name`, "missing: give the peer a name");
    else if (names.indexOf(peer.name) !== i) problem(`${p}.name`, `"${peer.name}" is used by peers[${names.indexOf(peer.name)}] too: peer names must be unique`);
    const url = peer.url;
    if (typeof url !== "string") problem(`${p}.url`, "missing: give http://<IP>:8000/ (the peer's Control Agent)");
    else lintPeerUrl(url, `${p}.url`, problem);
    if (rules && typeof peer.role === "string" && !rules.allowed.includes(peer.role)) {
      problem(`${p}.role`, `"${peer.role}" is not allowed in ${String(mode)}: use ${rules.hint}`);
    }
    lintTls(peer, p, problem);
  });

  if (rules) {
    for (const role of rules.required) {
      const count = peers.filter((p) => isRecord(p) && p.role === role).length;
      if (count !== 1) problem(`${at}.peers`, `${count} peers have role ${role}, but ${String(mode)} needs ${rules.hint}`);
    }
  }

  const delays = {} as Record<keyof typeof KEA_HA_DEFAULTS, number>;
  for (const key of Object.keys(KEA_HA_DEFAULTS) as (keyof typeof KEA_HA_DEFAULTS)[]) {
    const value = rel[key] ?? KEA_HA_DEFAULTS[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      problem(`${at}.${key}`, `${JSON.stringify(value)} is not a whole number of milliseconds`);
      continue;
    }
    if (value > UINT16_MAX) problem(`${at}.${key}`, `${value} exceeds 65535: Kea stores it as a uint16 of milliseconds; use at most 65535`);
    delays[key] = value;
  }
  const hb = delays["heartbeat-delay"];
  const mrd = delays["max-response-delay"];
  if (hb !== undefined && mrd !== undefined && mrd <= hb) {
    problem(`${at}.max-response-delay`, `${mrd} is not greater than heartbeat-delay ${hb}: make it several heartbeats longer (e.g. ${hb * 6}), or a single late heartbeat interrupts HA`);
  }

  if (rel["wait-backup-ack"] === true && mode !== "passive-backup") {
    problem(`${at}.wait-backup-ack`, `true is allowed only in passive-backup, not ${String(mode)}: remove it`);
  }
  const dul = rel["delayed-updates-limit"];
  if (dul !== undefined && dul !== 0 && mode !== "load-balancing") {
    problem(`${at}.delayed-updates-limit`, `${JSON.stringify(dul)} is allowed only in load-balancing, not ${String(mode)}: remove it`);
  }
  lintTls(rel, at, problem);
}

function lintPeerUrl(url: string, at: string, problem: (at: string, text: string) => void): void {
  // Read the host from the text itself: WHATWG URL would normalise "http://3232249889/" into an IP.
  const m = /^(https?):\/\/(\[[^\]]*\]|[^/:?#]*)(:[0-9]{1,5})?(\/.*)?$/.exec(url);
  if (!m) return problem(at, `"${url}" is not an http:// or https:// URL with an IP literal: use http://<IP>:8000/, IPv6 in brackets (http://[fd00::1]:8000/)`);
  const host = m[2]!;
  const literal = host.startsWith("[") ? isIP(host.slice(1, -1)) === 6 : isIP(host) === 4;
  if (!literal) {
    problem(at, `"${url}" has the host name ${host}, but Kea needs an IP literal in peer URLs (it does not resolve names): use http://<IP>:8000/, IPv6 in brackets`);
  }
}

function lintTls(obj: Record<string, unknown>, at: string, problem: (at: string, text: string) => void): void {
  const set = TLS_KEYS.filter((k) => typeof obj[k] === "string" && obj[k] !== "");
  if (set.length > 0 && set.length < TLS_KEYS.length) {
    const missing = TLS_KEYS.filter((k) => !set.includes(k));
    problem(at, `TLS is half configured (${set.join(", ")} set; ${missing.join(", ")} missing): set all of trust-anchor, cert-file and key-file, or none`);
  }
}
