// Our stricter rules for keepalived configs. `keepalived -t` (2.2.7, checked) exits 0 on an empty
// file (which bookworm's unit then silently skips: ConditionFileNotEmpty), on nopreempt with a
// track_script weight that keeps the VIP on a master whose service died, and on unicast without
// unicast_fault_no_peer; other rules here name the fix where keepalived only warns and carries on.
import { isIPv4, isIPv6 } from "node:net";
import { type KaStatement, child, parseKeepalivedConf } from "./conf.js";

export interface KeepalivedSource {
  text: string;
  path: string;
}

const at = (s: KaStatement) => `${s.path} line ${s.line}`;
const SCRIPT_KEYWORDS = new Set(["notify", "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_master_rx_lower_pri"]);

function isFractional(value: string): boolean {
  const n = Number(value);
  return Number.isFinite(n) && !Number.isInteger(n);
}

function addressFamily(word: string): 4 | 6 | undefined {
  const ip = word.split("/")[0] ?? "";
  return isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : undefined;
}

function intValue(s: KaStatement | undefined): number | undefined {
  const v = s?.words[1];
  return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined;
}

interface Globals {
  scriptSecurity: boolean;
  scriptUser: boolean;
  vrrpVersion?: number;
  /** vrrp_script name -> its default weight (0 unless set). */
  scriptWeights: Map<string, number>;
  /** Where scripts are configured, for the script-security message. */
  scriptUses: KaStatement[];
}

function collectGlobals(statements: readonly KaStatement[]): Globals {
  const g: Globals = { scriptSecurity: false, scriptUser: false, scriptWeights: new Map(), scriptUses: [] };
  for (const s of statements) {
    const kw = s.words[0];
    if (kw === "global_defs") {
      for (const d of s.block ?? []) {
        if (d.words[0] === "enable_script_security") g.scriptSecurity = true;
        if (d.words[0] === "script_user") g.scriptUser = true;
        if (d.words[0] === "vrrp_version") g.vrrpVersion = intValue(d);
        if (d.words[0]?.endsWith("notify_fifo_script")) g.scriptUses.push(d);
      }
    }
    if (kw === "vrrp_script" && s.words[1] !== undefined) {
      g.scriptWeights.set(s.words[1], intValue(child(s, "weight")) ?? 0);
      g.scriptUses.push(s);
    }
    if (kw === "vrrp_instance") for (const d of s.block ?? []) if (SCRIPT_KEYWORDS.has(d.words[0] ?? "")) g.scriptUses.push(d);
  }
  return g;
}

function lintInstance(inst: KaStatement, g: Globals): string[] {
  const problems: string[] = [];
  const name = inst.words[1] ?? "(unnamed)";
  const where = `${at(inst)}: vrrp_instance ${name}`;

  const vrid = child(inst, "virtual_router_id");
  const vridValue = intValue(vrid);
  if (!vrid) problems.push(`${where} has no virtual_router_id; add one from 1 to 255, unique per interface on the segment`);
  else if (vridValue === undefined || vridValue < 1 || vridValue > 255) {
    problems.push(`${at(vrid)}: virtual_router_id ${vrid.words[1] ?? ""} is outside 1-255; pick a free VRID from 1 to 255`);
  }

  const priority = child(inst, "priority");
  const prio = intValue(priority);
  if (priority && (prio === undefined || prio < 1 || prio > 254)) {
    problems.push(`${at(priority)}: priority ${priority.words[1] ?? ""} is outside 1-254 (255 claims to own the address); use e.g. 150 on the primary and 100 on the secondary`);
  }

  const state = child(inst, "state")?.words[1];
  for (const kw of ["nopreempt", "preempt_delay"]) {
    const s = child(inst, kw);
    if (s && state !== "BACKUP") {
      problems.push(
        `${at(s)}: ${kw} in vrrp_instance ${name} ${state ? `with state ${state}` : "without a state"}; set \`state BACKUP\` on both nodes (keepalived ignores ${kw} otherwise)`,
      );
    }
  }

  const nopreempt = child(inst, "nopreempt") !== undefined;
  const tracks = child(inst, "track_script");
  if (tracks) {
    for (const t of tracks.block ?? []) {
      const script = t.words[0]!;
      const wi = t.words.indexOf("weight");
      const weight = wi >= 0 ? Number(t.words[wi + 1]) : g.scriptWeights.get(script) ?? 0;
      if (nopreempt && weight !== 0) {
        problems.push(
          `${at(t)}: track_script ${script} has weight ${weight} under nopreempt in vrrp_instance ${name}; use \`weight 0\` so a failed check puts the node in FAULT (with nopreempt a lower priority never moves the VIP)`,
        );
      }
      if (Number.isFinite(weight) && Math.abs(weight) > 253) {
        problems.push(`${at(t)}: track_script ${script} weight ${weight} is outside -253..253; keepalived clamps it`);
      }
    }
  }

  const advert = child(inst, "advert_int");
  const version = intValue(child(inst, "version")) ?? g.vrrpVersion;
  const vips = child(inst, "virtual_ipaddress");
  const families = new Set((vips?.block ?? []).map((v) => addressFamily(v.words[0] ?? "")).filter((f) => f !== undefined));
  const ipv6Instance = families.size === 1 && families.has(6);
  if (advert && isFractional(advert.words[1] ?? "") && version !== 3 && !ipv6Instance) {
    problems.push(`${at(advert)}: advert_int ${advert.words[1]} is a fraction of a second, which VRRPv2 rounds; add \`version 3\` to vrrp_instance ${name} (and drop authentication)`);
  }

  const auth = child(inst, "authentication");
  if (auth) {
    if (version === 3 || ipv6Instance) {
      problems.push(`${at(auth)}: authentication in VRRPv3 vrrp_instance ${name} is ignored by keepalived; remove it`);
    }
    const pass = child(auth, "auth_pass");
    if (pass && (pass.words[1] ?? "").length > 8) {
      problems.push(`${at(pass)}: auth_pass is ${(pass.words[1] ?? "").length} characters and VRRPv2 keeps only the first 8; use at most 8`);
    }
  }

  if (!vips || (vips.block ?? []).length === 0) {
    problems.push(`${where} has no virtual_ipaddress; add the VIP, e.g. \`10.71.17.86/24 dev enp1s0\``);
  } else if (families.size > 1) {
    problems.push(`${at(vips)}: virtual_ipaddress of vrrp_instance ${name} mixes IPv4 and IPv6; keepalived drops the other family: put IPv6 VIPs in their own vrrp_instance`);
  }

  const unicastPeer = child(inst, "unicast_peer");
  if (unicastPeer && !child(inst, "unicast_fault_no_peer")) {
    problems.push(`${at(unicastPeer)}: unicast vrrp_instance ${name} has no unicast_fault_no_peer; add it so an empty peer list faults instead of falling back to multicast`);
  }
  return problems;
}

/**
 * Lints the files keepalived reads as one config (the main file first, then its includes): rules
 * that span files (script security in global_defs, a vrrp_script's default weight) see them all.
 */
export function lintKeepalivedSources(sources: readonly KeepalivedSource[]): string[] {
  const problems: string[] = [];
  const parsed = sources.map((s) => ({ ...s, statements: parseKeepalivedConf(s.text, s.path) }));
  const main = parsed[0];
  if (main && main.statements.length === 0) {
    problems.push(`${main.path}: the file is empty; bookworm's keepalived.service has ConditionFileNotEmpty and silently does not start: render global_defs and the include`);
  }
  const all = parsed.flatMap((p) => p.statements);
  const g = collectGlobals(all);
  if (g.scriptUses.length > 0 && (!g.scriptSecurity || !g.scriptUser)) {
    const missing = [!g.scriptSecurity ? "enable_script_security" : "", !g.scriptUser ? "script_user root" : ""].filter(Boolean).join(" and ");
    problems.push(
      `${at(g.scriptUses[0]!)}: scripts are configured (${g.scriptUses[0]!.words[0]}) but global_defs lacks ${missing}; add them to global_defs (keepalived refuses or runs scripts unchecked otherwise)`,
    );
  }
  for (const s of all) if (s.words[0] === "vrrp_instance") problems.push(...lintInstance(s, g));
  return problems;
}

/** Lints one complete keepalived config text (no includes to follow). */
export function lintKeepalivedConfig(text: string, path: string): string[] {
  return lintKeepalivedSources([{ text, path }]);
}
