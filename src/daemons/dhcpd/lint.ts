// Our stricter rules for dhcpd failover configs. `dhcpd -t` (4.4.3-P1, checked) accepts mclt on
// a secondary, split together with hba, missing timing statements, mixed pools and dynamic BOOTP
// permits in failover pools; dhcpd.conf(5) forbids or warns against all of them.
import {
  type ConfStatement,
  type FailoverPeerDecl,
  describeContainer,
  findAddressContainers,
  findFailoverPeers,
  findPools,
  normalizeStatement,
  parseDhcpdConf,
  peerParamWords,
  startsWith,
  type AddressContainer,
} from "./conf-parser.js";

export interface DhcpdSource {
  text: string;
  path: string;
}

const at = (s: ConfStatement) => `${s.path} line ${s.line}`;

/** The parameters dhcpd silently defaults, which we render on both sides and require. */
const REQUIRED_TIMINGS: readonly { param: string; fix: string }[] = [
  {
    param: "max-response-delay",
    fix: "add `max-response-delay 60;` (dhcpd.conf(5): \"This parameter must be specified\")",
  },
  {
    param: "max-unacked-updates",
    fix: "add `max-unacked-updates 10;` (dhcpd.conf(5): \"This parameter must be specified\")",
  },
  {
    param: "load balance max seconds",
    fix: "add `load balance max seconds 3;` on both peers (left out, it is 0 and load balancing is silently off)",
  },
];

function lintPeer(peer: FailoverPeerDecl): string[] {
  const problems: string[] = [];
  const where = `${at(peer.statement)}: failover peer "${peer.name}"`;
  const p = peer.params;
  if (!peer.role) problems.push(`${where} declares neither primary nor secondary; add \`primary;\` on one peer and \`secondary;\` on the other`);
  if (!p.has("address")) problems.push(`${where} has no \`address\`; add this server's own failover address (it is also the failover server identifier)`);
  if (!p.has("peer address")) problems.push(`${where} has no \`peer address\`; add the partner's failover address`);
  for (const { param, fix } of REQUIRED_TIMINGS) if (!p.has(param)) problems.push(`${where} has no \`${param}\`; ${fix}`);
  const mclt = p.get("mclt");
  const split = p.get("split");
  const hba = p.get("hba");
  if (peer.role === "secondary") {
    if (mclt) problems.push(`${at(mclt)}: failover peer "${peer.name}" is secondary but sets mclt; remove it (dhcpd.conf(5): mclt "may not be specified on the secondary"; dhcpd -t accepts it)`);
    for (const s of [split, hba]) {
      if (s) problems.push(`${at(s)}: failover peer "${peer.name}" is secondary but sets ${s.words[0]!.text}; remove it (only the primary sets split or hba)`);
    }
  }
  if (peer.role === "primary") {
    if (!mclt) problems.push(`${where} is primary but has no mclt; add e.g. \`mclt 3600;\` (the primary must set it)`);
    if (!split && !hba) problems.push(`${where} is primary but has neither split nor hba; add \`split 128;\` to share clients evenly`);
  }
  if (split && hba) {
    const later = split.line > hba.line ? split : hba;
    problems.push(`${at(later)}: failover peer "${peer.name}" sets both split and hba; keep only one (dhcpd.conf(5): "never both"; dhcpd -t accepts both and the later one wins)`);
  }
  if (split) {
    const value = Number(split.words[1]?.text);
    if (!Number.isInteger(value) || value < 0 || value > 256) problems.push(`${at(split)}: split must be 0-256 (128 shares clients evenly)`);
  }
  return problems;
}

function isFailoverRange(pool: { peer?: string }): boolean {
  return pool.peer !== undefined;
}

function lintPools(statements: readonly ConfStatement[], declared: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const pool of findPools(statements)) {
    if (pool.peer === undefined) continue;
    if (!declared.has(pool.peer)) {
      problems.push(`${at(pool.peerStatement!)}: pool refers to failover peer "${pool.peer}", which is not declared; declare \`failover peer "${pool.peer}" { … }\` before it or fix the name`);
    }
    for (const s of pool.statement.block ?? []) {
      if (startsWith(s, "range") && s.words[1]?.text.toLowerCase() === "dynamic-bootp") {
        problems.push(`${at(s)}: range dynamic-bootp in a failover pool; remove \`dynamic-bootp\` (dynamic BOOTP leases cannot be shared by failover peers)`);
      }
      if (startsWith(s, "allow", "dynamic", "bootp")) {
        problems.push(`${at(s)}: failover pool allows dynamic bootp clients; remove it or use \`deny dynamic bootp clients;\` (dhcpd.conf(5): disallow BOOTP in failover pools)`);
      }
    }
  }
  return problems;
}

function mixes(container: AddressContainer): { failover: boolean; plain: boolean } {
  const failover = container.pools.some(isFailoverRange);
  const plain = container.pools.some((p) => !isFailoverRange(p)) || container.bareRanges.length > 0;
  return { failover, plain };
}

function lintMixedPools(statements: readonly ConfStatement[]): string[] {
  const problems: string[] = [];
  const fix = "serve every range of the segment with failover (a `pool { failover peer …; range …; }` each) or none";
  const visit = (containers: readonly AddressContainer[]) => {
    for (const c of containers) {
      const own = mixes(c);
      if (own.failover && own.plain) {
        problems.push(`${at(c.statement)}: ${describeContainer(c.statement)} mixes failover and non-failover pools (a range outside a failover pool counts); ${fix}`);
        continue;
      }
      if (c.kind === "shared-network") {
        const parts = [own, ...c.subnets.map(mixes)];
        const anyMixedChild = c.subnets.some((s) => {
          const m = mixes(s);
          return m.failover && m.plain;
        });
        if (!anyMixedChild && parts.some((m) => m.failover) && parts.some((m) => m.plain)) {
          problems.push(`${at(c.statement)}: ${describeContainer(c.statement)} mixes failover and non-failover pools across its subnets; ${fix}`);
        }
        visit(c.subnets);
      }
    }
  };
  visit(findAddressContainers(statements));
  return problems;
}

/** Lints several files as one configuration (the main file and what it includes), naming each file's own lines. */
export function lintDhcpdSources(sources: readonly DhcpdSource[]): string[] {
  const statements = sources.flatMap((s) => parseDhcpdConf(s.text, s.path));
  const peers = findFailoverPeers(statements);
  const problems: string[] = [];
  const seen = new Map<string, FailoverPeerDecl>();
  for (const peer of peers) {
    const first = seen.get(peer.name);
    if (first) problems.push(`${at(peer.statement)}: failover peer "${peer.name}" is declared twice (first at ${at(first.statement)}); keep one declaration`);
    else seen.set(peer.name, peer);
    problems.push(...lintPeer(peer));
  }
  problems.push(...lintPools(statements, new Set(seen.keys())));
  problems.push(...lintMixedPools(statements));
  return problems;
}

/** Our failover rules on one dhcpd config text. Each problem names `path line N` and the fix. */
export function lintDhcpdConfig(text: string, path: string): string[] {
  return lintDhcpdSources([{ text, path }]);
}

function paramValue(peer: FailoverPeerDecl, param: string): string | undefined {
  const s = peer.params.get(param);
  return s ? s.words.slice(peerParamWords(param)).map((w) => w.text).join(" ") : undefined;
}

/** Where a peer parameter is written, or the peer block itself when it is left out. */
function statementOf(peer: FailoverPeerDecl, param: string): ConfStatement {
  return peer.params.get(param) ?? peer.statement;
}

/**
 * Checks two sides of one failover relationship against each other: roles, each side's
 * `peer port`/`peer address` equal to the partner's `port`/`address`, equal `load balance max
 * seconds`, and identical failover pools (compared statement by statement, ignoring layout and comments).
 */
export function compareFailoverSides(primaryText: string, secondaryText: string, paths = { primary: "primary", secondary: "secondary" }): string[] {
  const problems: string[] = [];
  const primary = parseDhcpdConf(primaryText, paths.primary);
  const secondary = parseDhcpdConf(secondaryText, paths.secondary);
  const pPeers = new Map(findFailoverPeers(primary).map((p) => [p.name, p]));
  const sPeers = new Map(findFailoverPeers(secondary).map((p) => [p.name, p]));
  for (const name of new Set([...pPeers.keys(), ...sPeers.keys()])) {
    const p = pPeers.get(name);
    const s = sPeers.get(name);
    if (!p || !s) {
      const [has, lacks] = p ? [paths.primary, paths.secondary] : [paths.secondary, paths.primary];
      problems.push(`failover peer "${name}" is declared in ${has} but not in ${lacks}; declare it on both peers`);
      continue;
    }
    if (p.role !== "primary") problems.push(`${at(p.statement)}: failover peer "${name}" must be \`primary;\` on the primary side`);
    if (s.role !== "secondary") problems.push(`${at(s.statement)}: failover peer "${name}" must be \`secondary;\` on the secondary side`);
    const port = (peer: FailoverPeerDecl, param: string) => paramValue(peer, param) ?? "647"; // dhcpd's default
    for (const [me, partner] of [[p, s], [s, p]] as const) {
      if (port(me, "peer port") !== port(partner, "port")) {
        problems.push(`${at(statementOf(me, "peer port"))}: peer port ${port(me, "peer port")} differs from the partner's port ${port(partner, "port")} (${at(statementOf(partner, "port"))}); set peer port ${port(partner, "port")}`);
      }
      const peerAddress = paramValue(me, "peer address");
      const partnerAddress = paramValue(partner, "address");
      if (peerAddress !== undefined && partnerAddress !== undefined && peerAddress !== partnerAddress) {
        problems.push(`${at(statementOf(me, "peer address"))}: peer address ${peerAddress} differs from the partner's address ${partnerAddress}; set peer address ${partnerAddress}`);
      }
    }
    const lbP = paramValue(p, "load balance max seconds");
    const lbS = paramValue(s, "load balance max seconds");
    if (lbP !== lbS) problems.push(`failover peer "${name}": load balance max seconds is ${lbP ?? "unset (0)"} on ${paths.primary} but ${lbS ?? "unset (0)"} on ${paths.secondary}; set the same value on both`);
    const pools = (statements: ConfStatement[]) =>
      findPools(statements)
        .filter((pool) => pool.peer === name)
        .map((pool) => ({ key: `${describeContainer(pool.container)}: ${normalizeStatement(pool.statement)}`, statement: pool.statement }));
    const pPools = pools(primary);
    const sPools = pools(secondary);
    const sKeys = new Set(sPools.map((x) => x.key));
    const pKeys = new Set(pPools.map((x) => x.key));
    for (const x of pPools) if (!sKeys.has(x.key)) problems.push(`${at(x.statement)}: this failover pool has no identical pool on ${paths.secondary}; pools must be identical on both peers`);
    for (const x of sPools) if (!pKeys.has(x.key)) problems.push(`${at(x.statement)}: this failover pool has no identical pool on ${paths.primary}; pools must be identical on both peers`);
  }
  return problems;
}
