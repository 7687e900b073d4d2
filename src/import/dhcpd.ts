// dhcpd.conf of a running ISC failover pair (seeds 002 and 003: a `failover peer` block on each
// side, pools that name it, OMAPI) → a DhcpFailoverPeer, plus what the user's dhcpd.conf must
// become: the operator declares the peer, its subnets and OMAPI in its own include file (ADR 0005),
// so the same declarations left in dhcpd.conf would be declared twice.
import { isIPv4 } from "node:net";
import { argsAfter, type ConfStatement, findAddressContainers, findFailoverPeers, parseDhcpdConf, peerParamWords, startsWith } from "../daemons/dhcpd/conf-parser.js";
import { API_VERSION, type DaemonImport, type ImportHost, type ManifestObject, rfc1123Name, type Unrepresentable } from "./types.js";

export const DHCPD_CONF = "/etc/dhcp/dhcpd.conf";

/** Peer parameters a DhcpFailoverPeer holds (the rest are named as unrepresentable). */
const PEER_FIELDS = new Set(["address", "port", "peer address", "peer port", "max-response-delay", "max-unacked-updates", "load balance max seconds", "mclt", "split", "hba"]);

const OPTION_FIELDS: Record<string, string> = { routers: "routers", "domain-name-servers": "domainNameServers", "domain-name": "domainName", "broadcast-address": "broadcastAddress" };

function text(s: ConfStatement): string {
  return s.words.map((w) => (w.quoted ? `"${w.text}"` : w.text)).join(" ") + (s.block ? " { … }" : "");
}

function prefixOf(netmask: string): number | undefined {
  const n = netmask.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  const bits = n.toString(2).padStart(32, "0");
  return /^1*0*$/.test(bits) ? bits.indexOf("0") === -1 ? 32 : bits.indexOf("0") : undefined;
}

/**
 * The lines `[first, last]` (1-based) a statement spans: from its first word to the `;` or the
 * matching `}`, skipping comments and strings.
 */
export function statementSpan(source: string, s: ConfStatement): [number, number] {
  const lines = source.split("\n");
  let depth = 0;
  let seenBrace = false;
  for (let l = s.line - 1; l < lines.length; l++) {
    let inString = false;
    for (const c of lines[l]!) {
      if (inString) {
        if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === "#") break;
      else if (c === "{") {
        depth++;
        seenBrace = true;
      } else if (c === "}") {
        depth--;
        if (seenBrace && depth === 0) return [s.line, l + 1];
      } else if (c === ";" && !s.block && depth === 0) return [s.line, l + 1];
    }
  }
  return [s.line, lines.length];
}

/** The text without the given statements' lines (and the comment lines right above each, which describe them). */
export function withoutStatements(source: string, statements: readonly ConfStatement[]): string {
  const lines = source.split("\n");
  const drop = new Set<number>();
  for (const s of statements) {
    const [first, last] = statementSpan(source, s);
    for (let l = first; l <= last; l++) drop.add(l);
    for (let l = first - 1; l >= 1 && /^\s*#/.test(lines[l - 1]!); l--) drop.add(l);
  }
  return lines.filter((_, i) => !drop.has(i + 1)).join("\n").replace(/\n{3,}/g, "\n\n");
}

interface Side {
  host: ImportHost;
  role: "primary" | "secondary";
  statements: ConfStatement[];
  source: string;
  peer: ReturnType<typeof findFailoverPeers>[number];
}

function param(side: Side, name: string): string[] | undefined {
  const s = side.peer.params.get(name);
  return s ? argsAfter(s, peerParamWords(name)) : undefined;
}

/** The subnets whose pools name the peer: spec.subnets, and the statements that move into the include file. */
function subnetsOf(side: Side, peerName: string, lose: (s: ConfStatement, why: string) => void): { subnets: Record<string, unknown>[]; moved: ConfStatement[] } {
  const subnets: Record<string, unknown>[] = [];
  const moved: ConfStatement[] = [];
  for (const c of findAddressContainers(side.statements)) {
    if (c.kind !== "subnet") {
      if (c.pools.some((p) => p.peer === peerName) || c.subnets.some((s) => s.pools.some((p) => p.peer === peerName))) lose(c.statement, "a shared-network has no DhcpFailoverPeer field; its subnets are not imported");
      continue;
    }
    if (!c.pools.some((p) => p.peer === peerName)) continue;
    const [network, , netmask] = argsAfter(c.statement, 1);
    const prefix = netmask ? prefixOf(netmask) : undefined;
    if (!network || prefix === undefined) {
      lose(c.statement, "not a subnet NETWORK netmask MASK declaration");
      continue;
    }
    const options: Record<string, unknown> = {};
    const pools: Record<string, unknown>[] = [];
    for (const child of c.statement.block ?? []) {
      if (startsWith(child, "option")) {
        const name = child.words[1]?.text.toLowerCase() ?? "";
        const values = argsAfter(child, 2).filter((w) => w !== ",");
        const field = OPTION_FIELDS[name];
        if (field) options[field] = field === "routers" || field === "domainNameServers" ? values : values[0];
        else if (name === "subnet-mask" && values[0] === netmask) continue; // dhcpd sends the subnet's own mask anyway
        else lose(child, "DhcpFailoverPeer subnets hold only routers, domain-name-servers, domain-name and broadcast-address; the first apply drops this option");
      } else if (startsWith(child, "pool") && child.block) {
        const peerRef = child.block.find((p) => startsWith(p, "failover", "peer") && !p.block);
        if (peerRef?.words[2]?.text !== peerName) {
          lose(child, "a pool without this failover peer in a failover subnet: dhcpd.conf(5) forbids mixing, and a DhcpFailoverPeer renders failover pools only");
          continue;
        }
        const ranges = child.block.filter((p) => startsWith(p, "range"));
        const leaseTime = child.block.find((p) => startsWith(p, "max-lease-time"));
        for (const p of child.block) {
          if (p === peerRef || ranges.includes(p) || p === leaseTime) continue;
          lose(p, "DhcpFailoverPeer pools hold only range and max-lease-time; the first apply drops it");
        }
        for (const r of ranges) {
          const [start, end] = argsAfter(r, 1);
          if (!start || !end || !isIPv4(start) || !isIPv4(end)) {
            lose(r, "only `range FIRST LAST` with two IPv4 addresses fits a pool");
            continue;
          }
          pools.push({ range: [start, end], ...(leaseTime ? { maxLeaseTime: `${argsAfter(leaseTime, 1)[0]}s` } : {}) });
        }
      } else {
        lose(child, "no DhcpFailoverPeer subnet field holds it; the first apply drops it");
      }
    }
    subnets.push({ subnet: `${network}/${prefix}`, ...(Object.keys(options).length > 0 ? { options } : {}), pools });
    moved.push(c.statement);
  }
  return { subnets, moved };
}

/** OMAPI statements at the top level: port and the key omapi-key names. */
function omapiOf(side: Side): { port?: number; key?: { name: string; algorithm: string; secret: string }; statements: ConfStatement[] } {
  const portS = side.statements.find((s) => startsWith(s, "omapi-port"));
  const keyRef = side.statements.find((s) => startsWith(s, "omapi-key"));
  const keyName = keyRef?.words[1]?.text;
  const keyS = side.statements.find((s) => startsWith(s, "key") && s.block && s.words[1]?.text === keyName);
  const algorithm = keyS?.block?.find((c) => startsWith(c, "algorithm"))?.words[1]?.text.toLowerCase().replace(/\.sig-alg\.reg\.int\.?$/, "");
  const secret = keyS?.block?.find((c) => startsWith(c, "secret"))?.words[1]?.text;
  return {
    ...(portS ? { port: Number(portS.words[1]?.text) } : {}),
    ...(keyName && algorithm && secret ? { key: { name: keyName, algorithm, secret } } : {}),
    statements: [portS, keyRef, keyS].filter((s): s is ConfStatement => s !== undefined),
  };
}

export interface DhcpdImport extends DaemonImport {
  adoptEdits: NonNullable<DaemonImport["adoptEdits"]>;
}

/** DhcpFailoverPeers from the dhcpd.conf of the given hosts, paired by peer name and role. */
export function importDhcpd(hosts: readonly ImportHost[], namespace: string, configPath = DHCPD_CONF): DhcpdImport {
  const lost: Unrepresentable[] = [];
  const notes: string[] = [];
  const manifests: ManifestObject[] = [];
  const adoptEdits: DhcpdImport["adoptEdits"] = [];
  const sides: Side[] = [];
  for (const host of hosts) {
    const source = host.files.get(configPath);
    if (source === undefined) continue;
    // The main file and what it includes (the operator's own include file, once adopted).
    const statements = [configPath, ...(host.includes?.get(configPath) ?? [])].flatMap((file) => {
      const t = host.files.get(file);
      return t === undefined ? [] : parseDhcpdConf(t, file);
    });
    for (const peer of findFailoverPeers(statements)) {
      if (!peer.role) {
        lost.push({ host: host.name, file: configPath, line: peer.statement.line, what: text(peer.statement), why: "neither primary nor secondary: not a failover side" });
        continue;
      }
      sides.push({ host, role: peer.role, statements, source, peer });
    }
  }
  const byName = new Map<string, Side[]>();
  for (const s of sides) byName.set(s.peer.name, [...(byName.get(s.peer.name) ?? []), s]);
  for (const [peerName, group] of byName) {
    const primary = group.find((s) => s.role === "primary");
    const secondary = group.find((s) => s.role === "secondary");
    if (group.length !== 2 || !primary || !secondary || primary.host === secondary.host) {
      for (const s of group) {
        lost.push({ host: s.host.name, file: configPath, line: s.peer.statement.line, what: `failover peer "${peerName}" (${s.role})`, why: "an imported relationship needs one primary and one secondary on two --host's: pass the partner's --host too" });
      }
      continue;
    }
    for (const side of [primary, secondary]) {
      for (const child of side.peer.statement.block ?? []) {
        if (startsWith(child, "primary") || startsWith(child, "secondary")) continue;
        const known = [...PEER_FIELDS].some((f) => startsWith(child, ...f.split(" ")));
        if (!known) lost.push({ host: side.host.name, file: child.path, line: child.line, path: `failover peer "${peerName}"`, what: text(child), why: "no DhcpFailoverPeer field holds it; the first apply drops it (dhcpd then uses its default)" });
      }
    }
    const sideSpec = (side: Side) => {
      const declared = param(side, "address")?.[0];
      const port = Number(param(side, "port")?.[0] ?? 647);
      let address = declared;
      if (!declared || !isIPv4(declared)) {
        address = isIPv4(side.host.address) ? side.host.address : undefined;
        lost.push({
          host: side.host.name,
          file: configPath,
          line: side.peer.params.get("address")?.line ?? side.peer.statement.line,
          path: `failover peer "${peerName}"`,
          what: `address ${declared ?? "(none)"}`,
          why: `spec.${side.role}.address must be an IPv4 address${address ? `: imported as ${address}, the address the import reached the host at; check it is the one the partner connects to` : ", and the host was not reached by one either: set it in the manifest"}`,
        });
      }
      return { host: side.host.name, address: address ?? "", port };
    };
    const seconds = (side: Side, name: string) => {
      const v = param(side, name)?.[0];
      return v !== undefined ? Number(v) : undefined;
    };
    const mrd = seconds(primary, "max-response-delay");
    const mun = seconds(primary, "max-unacked-updates");
    const lbms = seconds(primary, "load balance max seconds");
    const mclt = seconds(primary, "mclt");
    const split = seconds(primary, "split");
    const hba = param(primary, "hba")?.[0];
    for (const [name, value] of [["max-response-delay", mrd], ["max-unacked-updates", mun], ["load balance max seconds", lbms]] as const) {
      const other = seconds(secondary, name);
      if (other !== value) lost.push({ host: secondary.host.name, file: configPath, line: secondary.peer.statement.line, path: `failover peer "${peerName}"`, what: `${name} ${other ?? "(unset)"} (the primary has ${value ?? "(unset)"})`, why: "a DhcpFailoverPeer renders one value on both sides: the first apply gives this side the primary's" });
      if (value === undefined) notes.push(`failover peer "${peerName}": ${name} is not set on the primary; imported as the operator's default, which the first apply renders explicitly on both sides`);
    }
    const { subnets, moved } = subnetsOf(primary, peerName, (s, why) => lost.push({ host: primary.host.name, file: s.path, line: s.line, what: text(s), why }));
    const second = subnetsOf(secondary, peerName, (s, why) => lost.push({ host: secondary.host.name, file: s.path, line: s.line, what: text(s), why }));
    if (JSON.stringify(second.subnets) !== JSON.stringify(subnets)) {
      lost.push({ host: secondary.host.name, file: configPath, line: secondary.peer.statement.line, what: `the failover subnets of "${peerName}"`, why: "they differ from the primary's, and a DhcpFailoverPeer renders one set on both peers: the first apply gives this side the primary's" });
    }
    const omapi = omapiOf(primary);
    const omapiSecondary = omapiOf(secondary);
    const name = rfc1123Name(peerName, "dhcp-failover");
    let keySecretRef: { name: string } | undefined;
    if (omapi.key && (omapi.key.algorithm === "hmac-md5" || omapi.key.algorithm === "hmac-sha256")) {
      keySecretRef = { name: `${name}-omapi` };
      manifests.push({ apiVersion: "v1", kind: "Secret", metadata: { name: keySecretRef.name, namespace }, stringData: { secret: omapi.key.secret, algorithm: omapi.key.algorithm } });
      notes.push(`failover peer "${peerName}": the hosts' OMAPI key is kept in Secret ${keySecretRef.name} (the manifests file holds it: keep it private)`);
      if (omapiSecondary.key?.secret !== omapi.key.secret) notes.push(`failover peer "${peerName}": the secondary's OMAPI key differs; the first apply gives both sides the primary's`);
    } else if (omapi.key) {
      lost.push({ host: primary.host.name, file: configPath, what: `OMAPI key algorithm ${omapi.key.algorithm}`, why: "only hmac-md5 and hmac-sha256 keys are kept; the operator generates a new key" });
    } else notes.push(`failover peer "${peerName}": no OMAPI key on the primary; the operator generates one (the observer needs OMAPI)`);
    manifests.push({
      apiVersion: API_VERSION,
      kind: "DhcpFailoverPeer",
      metadata: { name, namespace },
      spec: {
        ...(name !== peerName ? { peerName } : {}),
        primary: sideSpec(primary),
        secondary: sideSpec(secondary),
        ...(mrd !== undefined ? { maxResponseDelay: `${mrd}s` } : {}),
        ...(mun !== undefined ? { maxUnackedUpdates: mun } : {}),
        ...(lbms !== undefined ? { loadBalanceMaxSeconds: lbms } : {}),
        ...(mclt !== undefined ? { mclt: `${mclt}s` } : {}),
        ...(hba !== undefined ? { hba } : { split: split ?? 128 }),
        omapi: { ...(omapi.port !== undefined ? { port: omapi.port } : {}), ...(keySecretRef ? { keySecretRef } : {}) },
        subnets,
        configPath,
      },
    });
    for (const [side, own] of [[primary, moved], [secondary, second.moved]] as const) {
      const o = side === primary ? omapi : omapiSecondary;
      // Only what the user's own file declares moves; the operator's include file is rewritten anyway.
      const inMain = [side.peer.statement, ...own, ...o.statements].filter((st) => st.path === configPath);
      if (inMain.length > 0) adoptEdits.push({ host: side.host.name, path: configPath, content: withoutStatements(side.source, inMain) });
    }
  }
  return { manifests, unrepresentable: lost, notes, adoptEdits };
}
