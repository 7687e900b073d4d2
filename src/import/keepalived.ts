// keepalived.conf of a running pair (DDI Central's shape, seed 000: one vrrp_instance per VIP,
// MASTER/BACKUP with priorities, track scripts for the services) → HAPairs. Instances on two
// hosts with the same virtual_router_id and VIP are one pair; the higher priority is the primary.
// The instance keeps its name (spec.instanceName), so keepalived keeps its state across the
// reload of the first apply and the VIP does not move (docs/adr/0027-import.md).
import { isIPv4, isIPv6 } from "node:net";
import { posix } from "node:path";
import { type KaStatement, keepalivedPairDir, MAINTENANCE_TRACK_FILE, NOTIFY_SCRIPT_PATH, parseKeepalivedConf } from "../daemons/keepalived/index.js";
import { API_VERSION, type DaemonImport, type ImportHost, type ManifestObject, msToDuration, rfc1123Name, type Unrepresentable } from "./types.js";

export const KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf";

/** What a track script checks, when its command is one the operator renders itself. */
type TrackedService = { dns: true } | { dhcp4: "isc-dhcp-server" | "kea-dhcp4" } | { dhcp6: "isc-dhcp-server6" | "kea-dhcp6" };

// Checks people write for a service (systemctl is-active, pidof, killall -0, pgrep), by daemon.
const SERVICE_PATTERNS: [RegExp, TrackedService][] = [
  [/\b(named|bind9)\b/, { dns: true }],
  [/\bkea-dhcp6(-server)?\b/, { dhcp6: "kea-dhcp6" }],
  [/\bkea-dhcp4(-server)?\b/, { dhcp4: "kea-dhcp4" }],
  [/\b(isc-dhcp-server6|dhcpd6)\b/, { dhcp6: "isc-dhcp-server6" }],
  [/\b(isc-dhcp-server|dhcpd)\b/, { dhcp4: "isc-dhcp-server" }],
];
const CHECK_COMMAND = /^\s*(\/usr\/bin\/|\/bin\/)?(systemctl\s+(-q\s+|--quiet\s+)?is-active(\s+--quiet|\s+-q)?|pidof|killall\s+-0|pgrep(\s+-x)?)\s+\S+\s*$/;

/** Instance keywords the HAPair holds, or that the operator renders the same way. */
const INSTANCE_KEYWORDS = new Set([
  "state",
  "interface",
  "virtual_router_id",
  "priority",
  "advert_int",
  "nopreempt",
  "preempt_delay",
  "authentication",
  "virtual_ipaddress",
  "track_script",
  "unicast_src_ip",
  "unicast_peer",
  "unicast_fault_no_peer",
  "version",
  "garp_master_refresh",
  "notify",
  "notify_deleted",
  "track_file",
]);
/** global_defs keywords the operator's main file renders itself. */
const GLOBAL_KEYWORDS = new Set(["enable_script_security", "script_user"]);

interface ParsedInstance {
  host: ImportHost;
  file: string;
  name: string;
  line: number;
  state?: string;
  interface?: string;
  vrid?: number;
  priority: number;
  advertMs: number;
  nopreempt: boolean;
  preemptDelay?: string;
  authPass?: string;
  unicastSrc?: string;
  unicastPeers: string[];
  vips: { address: string; line: number }[];
  services: TrackedService[];
}

function words(s: KaStatement, from = 1): string {
  return s.words.slice(from).join(" ");
}

function parseScripts(host: ImportHost, file: string, statements: KaStatement[], lost: Unrepresentable[]): Map<string, TrackedService | undefined> {
  const scripts = new Map<string, TrackedService | undefined>();
  for (const s of statements) {
    if (s.words[0] !== "vrrp_script" || !s.words[1]) continue;
    const script = s.block?.find((c) => c.words[0] === "script");
    const command = script ? words(script) : "";
    const service = CHECK_COMMAND.test(command) ? SERVICE_PATTERNS.find(([re]) => re.test(command))?.[1] : undefined;
    scripts.set(s.words[1], service);
    if (service) {
      // The operator renders its own check timings and weight (ADR 0004): a different weight changes what a failure does.
      for (const c of s.block ?? []) {
        if (c.words[0] === "weight" || c.words[0] === "user") {
          lost.push({ host: host.name, file, line: c.line, path: `vrrp_script ${s.words[1]}`, what: c.words.join(" "), why: c.words[0] === "weight" ? "the operator chooses the track weight itself (-(gap+10) with preempt, 0 without); this one is replaced" : "the operator's checks run as script_user root; this user is dropped" });
        }
      }
    }
    if (!service) {
      lost.push({
        host: host.name,
        file,
        line: s.line,
        path: `vrrp_script ${s.words[1]}`,
        what: command || "(no script)",
        why: "not a check of named, dhcpd or Kea: an HAPair tracks only those services (spec.services); the first apply drops this script",
      });
    }
  }
  return scripts;
}

function parseInstance(host: ImportHost, file: string, s: KaStatement, scripts: Map<string, TrackedService | undefined>, lost: Unrepresentable[]): ParsedInstance {
  const name = s.words[1] ?? "";
  const inst: ParsedInstance = { host, file, name, line: s.line, priority: 100, advertMs: 1000, nopreempt: false, unicastPeers: [], vips: [], services: [] };
  const lose = (c: KaStatement, why: string) => lost.push({ host: host.name, file, line: c.line, path: `vrrp_instance ${name}`, what: c.words.join(" "), why });
  for (const c of s.block ?? []) {
    const [kw, arg] = c.words;
    if (kw === undefined) continue;
    if (!INSTANCE_KEYWORDS.has(kw)) {
      lose(c, "no HAPair field holds it; the first apply drops it");
      continue;
    }
    switch (kw) {
      case "state":
        inst.state = arg;
        break;
      case "interface":
        inst.interface = arg;
        break;
      case "virtual_router_id":
        inst.vrid = Number(arg);
        break;
      case "priority":
        inst.priority = Number(arg);
        break;
      case "advert_int":
        inst.advertMs = Math.round(Number(arg) * 1000);
        break;
      case "nopreempt":
        inst.nopreempt = true;
        break;
      case "preempt_delay":
        inst.preemptDelay = msToDuration(Math.round(Number(arg) * 1000));
        break;
      case "authentication": {
        const type = c.block?.find((b) => b.words[0] === "auth_type")?.words[1];
        const pass = c.block?.find((b) => b.words[0] === "auth_pass")?.words[1];
        if (type === "PASS" && pass !== undefined && /^[A-Za-z0-9_-]+$/.test(pass.slice(0, 8))) {
          inst.authPass = pass.slice(0, 8);
          if (pass.length > 8) lose(c, `auth_pass is ${pass.length} characters and VRRPv2 uses only the first 8: spec.authPass holds those 8 (what keepalived sends already)`);
        } else lose(c, "only auth_type PASS with 1-8 letters, digits, '_' or '-' fits spec.authPass; the first apply drops this authentication");
        break;
      }
      case "virtual_ipaddress":
        for (const v of c.block ?? []) {
          const [address, ...rest] = v.words;
          if (!address) continue;
          const extra = rest.join(" ");
          if (extra !== "" && extra !== `dev ${inst.interface ?? ""}`.trim() && !(rest[0] === "dev" && rest.length === 2)) {
            lose(v, `only "<address> dev <interface>" fits an HAPair; the options "${extra}" are dropped by the first apply`);
          }
          inst.vips.push({ address, line: v.line });
        }
        break;
      case "track_script":
        for (const t of c.block ?? []) {
          const scriptName = t.words[0];
          if (!scriptName) continue;
          const service = scripts.get(scriptName);
          if (service) inst.services.push(service);
          if (t.words.length > 1 && !scriptName.startsWith("ddiha_")) lose(t, "the operator chooses track weights itself (ADR 0004: -(gap+10) with preempt, 0 without); this weight is replaced");
        }
        break;
      case "unicast_src_ip":
        inst.unicastSrc = arg;
        break;
      case "unicast_peer":
        inst.unicastPeers = (c.block ?? []).map((p) => p.words[0]!).filter(Boolean);
        break;
      case "track_file":
        for (const t of c.block ?? []) if (t.words[0] !== MAINTENANCE_TRACK_FILE) lose(t, "the operator tracks only its own maintenance flag file (DDIHost spec.maintenance); the first apply drops this track_file");
        break;
      case "version":
        if (arg === "3" && inst.advertMs % 1000 === 0) lose(c, "VRRPv3 with a whole-second advert_int: the operator renders whole seconds as VRRPv2, so the first apply changes the protocol version");
        break;
      case "notify":
        if (arg === NOTIFY_SCRIPT_PATH) break; // the operator's own hook: adopted before
        lose(c, "the operator's own notify hook replaces it (it leaves the VRRP state for the observer, ADR 0004); this script is no longer run");
        break;
      default:
        break; // rendered by the operator the same way (unicast_fault_no_peer, garp_master_refresh, notify_deleted)
    }
  }
  return inst;
}

/** Every instance of one host's keepalived.conf and the files it includes, and what does not fit. */
function parseHost(host: ImportHost, path: string, lost: Unrepresentable[]): ParsedInstance[] {
  const ownDir = keepalivedPairDir(path);
  const files = [path, ...(host.includes?.get(path) ?? [])].filter((f) => host.files.get(f) !== undefined);
  const parsed = files.map((file) => ({ file, statements: parseKeepalivedConf(host.files.get(file)!, file) }));
  // Scripts are global in keepalived: a track_script may name one declared in another file.
  const scripts = new Map<string, TrackedService | undefined>();
  for (const { file, statements } of parsed) for (const [k, v] of parseScripts(host, file, statements, lost)) scripts.set(k, v);
  const instances: ParsedInstance[] = [];
  for (const { file, statements } of parsed) {
    for (const s of statements) {
      const kw = s.words[0];
      if (kw === "vrrp_instance") instances.push(parseInstance(host, file, s, scripts, lost));
      else if (kw === "vrrp_script") continue;
      else if (kw === "include" && s.words[1] === `${ownDir}/*.conf`) continue;
      else if (kw === "track_file" && s.words[1] === MAINTENANCE_TRACK_FILE) continue;
      else if (kw === "global_defs") {
        for (const g of s.block ?? []) {
          if (g.words[0] && !GLOBAL_KEYWORDS.has(g.words[0])) {
            lost.push({
              host: host.name,
              file,
              line: g.line,
              path: "global_defs",
              what: g.words.join(" "),
              why: "the operator's main file is host-neutral and holds only enable_script_security and script_user root (ADR 0004); the first apply drops it",
            });
          }
        }
      } else if (kw !== undefined) {
        lost.push({
          host: host.name,
          file,
          line: s.line,
          what: `${s.words.join(" ")}${s.block ? " { … }" : ""}`,
          why:
            kw === "include"
              ? `the import read what it includes, but the operator's main file includes only ${ownDir}/*.conf: after the first apply keepalived no longer loads ${s.words[1] ?? "it"} (what it declared is imported above or listed here)`
              : "no manifest holds it (an HAPair is one VRRP VIP); the first apply drops it",
        });
      }
    }
  }
  return instances;
}

/** The HAPair's name: from the operator's own file name (`<ns>_<name>.conf`) when it is one, else from the instance name. */
function pairName(i: ParsedInstance, namespace: string): string {
  const base = posix.basename(i.file, ".conf");
  if (posix.basename(posix.dirname(i.file)) === "ddi-ha.d" && base.startsWith(`${namespace}_`)) return base.slice(namespace.length + 1);
  return rfc1123Name(i.name, `vrid-${i.vrid}`);
}

function servicesOf(list: TrackedService[]): Record<string, unknown> {
  const dns = list.some((s) => "dns" in s);
  const v4 = list.find((s): s is { dhcp4: "isc-dhcp-server" | "kea-dhcp4" } => "dhcp4" in s);
  const v6 = list.find((s): s is { dhcp6: "isc-dhcp-server6" | "kea-dhcp6" } => "dhcp6" in s);
  const dhcp = v4 && v6 ? "Both" : v4 ? "DHCPv4" : v6 ? "DHCPv6" : "None";
  return {
    dns,
    dhcp,
    ...(v4 ? { dhcpv4Server: v4.dhcp4, dhcpv4ClientMode: "Unicast" } : {}),
    ...(v6 ? { dhcpv6Server: v6.dhcp6 } : {}),
  };
}

const withPrefix = (address: string, family: 4 | 6) => (address.includes("/") ? address : `${address}/${family === 4 ? 32 : 128}`);
const familyOf = (address: string): 4 | 6 | 0 => {
  const ip = address.split("/")[0]!;
  return isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : 0;
};

/**
 * HAPairs from the keepalived configs of the given hosts. Instances pair up across two hosts by
 * (VRID, VIP); an instance with no partner, or a third, is named, not guessed at.
 */
export function importKeepalived(hosts: readonly ImportHost[], namespace: string, configPath = KEEPALIVED_CONF): DaemonImport {
  const lost: Unrepresentable[] = [];
  const notes: string[] = [];
  const manifests: ManifestObject[] = [];
  const all = hosts.flatMap((h) => parseHost(h, configPath, lost));
  const v4 = all.filter((i) => i.vips.length > 0 && familyOf(i.vips[0]!.address) === 4);
  const v6 = all.filter((i) => i.vips.length > 0 && familyOf(i.vips[0]!.address) === 6);
  for (const i of all.filter((x) => x.vips.length === 0)) {
    lost.push({ host: i.host.name, file: i.file, line: i.line, path: `vrrp_instance ${i.name}`, what: `vrrp_instance ${i.name}`, why: "it has no virtual_ipaddress: an HAPair is a VIP" });
  }
  const groups = new Map<string, ParsedInstance[]>();
  for (const i of v4) {
    const key = `${i.vrid}/${i.vips[0]!.address.split("/")[0]}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  const usedNames = new Set<string>();
  for (const group of groups.values()) {
    if (group.length !== 2 || group[0]!.host === group[1]!.host) {
      for (const i of group) {
        lost.push({
          host: i.host.name,
          file: i.file,
          line: i.line,
          path: `vrrp_instance ${i.name}`,
          what: `vrrp_instance ${i.name} (VRID ${i.vrid}, VIP ${i.vips[0]!.address})`,
          why: group.length === 1 ? "no instance with this VRID and VIP on another --host: an HAPair needs both nodes (pass the partner's --host too)" : `${group.length} instances share this VRID and VIP: an HAPair has exactly two nodes on two hosts`,
        });
      }
      continue;
    }
    const [primary, secondary] = [...group].sort((a, b) => b.priority - a.priority) as [ParsedInstance, ParsedInstance];
    const where = `vrrp_instance ${primary.name} (${primary.host.name}, ${secondary.host.name})`;
    if (primary.priority === secondary.priority) {
      lost.push({ host: primary.host.name, file: primary.file, line: primary.line, path: `vrrp_instance ${primary.name}`, what: `priority ${primary.priority} on both nodes`, why: "an HAPair's primary has the higher priority; equal priorities cannot be imported (the higher address wins in keepalived): give the primary the higher one and import again" });
      continue;
    }
    for (const i of [primary, secondary]) {
      for (const extra of i.vips.slice(1)) {
        lost.push({ host: i.host.name, file: i.file, line: extra.line, path: `vrrp_instance ${i.name}`, what: extra.address, why: "an HAPair has one IPv4 VIP (spec.virtualIP); the first apply drops this address" });
      }
    }
    if (primary.name !== secondary.name) {
      lost.push({ host: secondary.host.name, file: secondary.file, line: secondary.line, path: `vrrp_instance ${secondary.name}`, what: `instance name ${secondary.name} (the primary's is ${primary.name})`, why: "both nodes of an HAPair use one instance name: the first apply renames this one, and its reload drops the instance and creates it anew (BACKUP, so the VIP stays on the primary)" });
    }
    const preempt = !(primary.nopreempt || secondary.nopreempt);
    if (preempt && !primary.preemptDelay && primary.state === "BACKUP") notes.push(`${where}: the primary starts as BACKUP; the operator renders state MASTER for a preempting primary without preempt_delay (keepalived keeps a running instance's state across the reload)`);
    if (primary.nopreempt !== secondary.nopreempt) notes.push(`${where}: nopreempt on one node only; imported as preempt: false on both`);
    const mismatch = (what: string, a: unknown, b: unknown) => {
      if (a !== b) lost.push({ host: secondary.host.name, file: secondary.file, line: secondary.line, path: `vrrp_instance ${secondary.name}`, what: `${what} ${String(b)} (the primary has ${String(a)})`, why: `an HAPair has one ${what} for both nodes: the first apply gives this node the primary's` });
    };
    mismatch("advert_int", primary.advertMs / 1000, secondary.advertMs / 1000);
    mismatch("auth_pass", primary.authPass, secondary.authPass);
    mismatch("preempt_delay", primary.preemptDelay, secondary.preemptDelay);
    const unicast = primary.unicastPeers.length > 0 || secondary.unicastPeers.length > 0;
    const v6Partner = (i: ParsedInstance) => v6.find((x) => x.host === i.host && x.vrid === i.vrid);
    const v6p = v6Partner(primary);
    const v6s = v6Partner(secondary);
    let virtualIPv6: string | undefined;
    if (v6p && v6s && v6p.vips[0]!.address.split("/")[0] === v6s.vips[0]!.address.split("/")[0]) {
      virtualIPv6 = withPrefix(v6p.vips[0]!.address, 6);
      for (const i of [v6p, v6s]) {
        if (i.name !== `${primary.name}_v6`) {
          lost.push({ host: i.host.name, file: i.file, line: i.line, path: `vrrp_instance ${i.name}`, what: `instance name ${i.name}`, why: `the IPv6 instance of an HAPair is named <instanceName>_v6 (${primary.name}_v6): the first apply renames it, so its reload drops and re-creates the IPv6 instance and the IPv6 VIP moves once` });
        }
      }
      v6.splice(v6.indexOf(v6p), 1);
      v6.splice(v6.indexOf(v6s), 1);
    }
    const vip = withPrefix(primary.vips[0]!.address, 4);
    if (!primary.vips[0]!.address.includes("/")) notes.push(`${where}: VIP ${primary.vips[0]!.address} has no prefix, which keepalived reads as /32: imported as ${vip}`);
    if (primary.services.length === 0) notes.push(`${where}: no track_script checks named, dhcpd or Kea: imported with services dns: false, dhcp: None (the VIP follows keepalived alone)`);
    let name = pairName(primary, namespace);
    if (usedNames.has(name)) name = `${name}-${primary.vrid}`;
    usedNames.add(name);
    const node = (i: ParsedInstance) => ({
      host: i.host.name,
      interface: i.interface ?? "",
      configPath,
      priority: i.priority,
      ...(unicast && i.unicastSrc ? { address: i.unicastSrc } : {}),
    });
    if (unicast && (!primary.unicastSrc || !secondary.unicastSrc)) notes.push(`${where}: unicast without unicast_src_ip on both nodes: the operator uses each DDIHost's address`);
    manifests.push({
      apiVersion: API_VERSION,
      kind: "HAPair",
      metadata: { name, namespace },
      spec: {
        instanceName: primary.name,
        primary: node(primary),
        secondary: node(secondary),
        virtualIP: vip,
        ...(virtualIPv6 ? { virtualIPv6 } : {}),
        virtualRouterID: primary.vrid,
        services: servicesOf(primary.services),
        advertInterval: msToDuration(primary.advertMs),
        preempt,
        ...(preempt && primary.preemptDelay ? { preemptDelay: primary.preemptDelay } : {}),
        unicast,
        ...(primary.authPass ? { authPass: primary.authPass } : {}),
      },
    });
  }
  for (const i of v6) {
    lost.push({ host: i.host.name, file: i.file, line: i.line, path: `vrrp_instance ${i.name}`, what: `vrrp_instance ${i.name} (IPv6 VIP ${i.vips[0]!.address})`, why: "an IPv6 VIP is imported only beside an IPv4 instance with the same VRID on both hosts (spec.virtualIPv6)" });
  }
  return { manifests, unrepresentable: lost, notes };
}
