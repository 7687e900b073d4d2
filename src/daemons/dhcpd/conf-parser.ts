// A small reader for dhcpd.conf syntax: enough structure (statements, blocks, line numbers) for
// our lint rules and the side-by-side comparison. It is deliberately forgiving: dhcpd -t judges
// the grammar, we only need to find failover peers, subnets and pools.

export interface ConfToken {
  /** The word as written; for strings, the unquoted value. */
  text: string;
  /** True for a "quoted string" token. */
  quoted: boolean;
  line: number;
}

export interface ConfStatement {
  /** The words before `;` or `{`. Keywords are matched case-insensitively, as dhcpd does. */
  words: ConfToken[];
  /** Children when the statement has a `{ … }` block. */
  block?: ConfStatement[];
  /** Line of the first word. */
  line: number;
  /** The file the statement came from, for messages. */
  path: string;
}

function tokenize(text: string): (ConfToken | { punct: "{" | "}" | ";"; line: number })[] {
  const out: (ConfToken | { punct: "{" | "}" | ";"; line: number })[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "{" || c === "}" || c === ";") {
      out.push({ punct: c, line });
      i++;
    } else if (c === ",") {
      out.push({ text: ",", quoted: false, line });
      i++;
    } else if (c === '"') {
      const start = line;
      let value = "";
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        if (text[i] === "\n") line++;
        value += text[i];
        i++;
      }
      i++; // closing quote
      out.push({ text: value, quoted: true, line: start });
    } else {
      let word = "";
      while (i < text.length && !/[\s{};,"#]/.test(text[i]!)) word += text[i++];
      out.push({ text: word, quoted: false, line });
    }
  }
  return out;
}

/** Parses dhcpd.conf text into nested statements. Unbalanced braces end the enclosing block. */
export function parseDhcpdConf(text: string, path: string): ConfStatement[] {
  const tokens = tokenize(text);
  let pos = 0;
  const parseBlock = (): ConfStatement[] => {
    const statements: ConfStatement[] = [];
    let words: ConfToken[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos++]!;
      if ("punct" in t) {
        if (t.punct === "}") break;
        if (t.punct === ";") {
          if (words.length > 0) statements.push({ words, line: words[0]!.line, path });
          words = [];
        } else {
          const block = parseBlock();
          statements.push({ words, block, line: words[0]?.line ?? t.line, path });
          words = [];
        }
      } else {
        words.push(t);
      }
    }
    if (words.length > 0) statements.push({ words, line: words[0]!.line, path });
    return statements;
  };
  const all: ConfStatement[] = [];
  while (pos < tokens.length) all.push(...parseBlock());
  return all;
}

/** Whether the statement starts with these keywords (case-insensitive, unquoted words only). */
export function startsWith(statement: ConfStatement, ...keywords: string[]): boolean {
  return keywords.every((k, i) => {
    const w = statement.words[i];
    return w !== undefined && !w.quoted && w.text.toLowerCase() === k;
  });
}

/** The words after the given number of keywords, as plain text. */
export function argsAfter(statement: ConfStatement, count: number): string[] {
  return statement.words.slice(count).map((w) => w.text);
}

export interface FailoverPeerDecl {
  name: string;
  statement: ConfStatement;
  role?: "primary" | "secondary";
  /** Parameter name (e.g. "mclt", "peer port", "load balance max seconds") to its statement. */
  params: Map<string, ConfStatement>;
}

// Longest first, so that "peer address" wins over "address".
const PEER_PARAMS = [
  "load balance max seconds",
  "max-lease-misbalance",
  "max-lease-ownership",
  "max-unacked-updates",
  "max-response-delay",
  "auto-partner-down",
  "peer address",
  "peer port",
  "min-balance",
  "max-balance",
  "address",
  "port",
  "mclt",
  "split",
  "hba",
] as const;

function peerParamName(statement: ConfStatement): string | undefined {
  return PEER_PARAMS.find((p) => startsWith(statement, ...p.split(" ")));
}

/** The number of leading words a peer parameter's name takes. */
export function peerParamWords(param: string): number {
  return param.split(" ").length;
}

/** Every `failover peer "NAME" { … }` declaration (not the `… state { }` blocks of a leases file). */
export function findFailoverPeers(statements: readonly ConfStatement[]): FailoverPeerDecl[] {
  const peers: FailoverPeerDecl[] = [];
  walk(statements, (s) => {
    if (!s.block || !startsWith(s, "failover", "peer") || s.words.length !== 3) return;
    const params = new Map<string, ConfStatement>();
    let role: FailoverPeerDecl["role"];
    for (const child of s.block) {
      if (startsWith(child, "primary")) role = "primary";
      else if (startsWith(child, "secondary")) role = "secondary";
      else {
        const name = peerParamName(child);
        if (name) params.set(name, child);
      }
    }
    peers.push({ name: s.words[2]!.text, statement: s, role, params });
  });
  return peers;
}

export interface PoolDecl {
  statement: ConfStatement;
  /** The peer named by `failover peer "X";` inside the pool, if any. */
  peer?: string;
  peerStatement?: ConfStatement;
  /** The enclosing subnet or shared-network statement. */
  container?: ConfStatement;
}

/** A container's address ranges: its pools, and `range` statements outside any pool (an implicit pool). */
export interface AddressContainer {
  statement: ConfStatement;
  kind: "subnet" | "shared-network";
  pools: PoolDecl[];
  bareRanges: ConfStatement[];
  subnets: AddressContainer[];
}

function poolDecl(statement: ConfStatement, container: ConfStatement | undefined): PoolDecl {
  const ref = (statement.block ?? []).find((c) => startsWith(c, "failover", "peer") && !c.block);
  return { statement, peer: ref?.words[2]?.text, peerStatement: ref, container };
}

/** Subnets and shared networks with their pools, in file order (subnets inside shared networks nested). */
export function findAddressContainers(statements: readonly ConfStatement[]): AddressContainer[] {
  const containers: AddressContainer[] = [];
  const visit = (list: readonly ConfStatement[], into: AddressContainer[]) => {
    for (const s of list) {
      if (!s.block) continue;
      const kind = startsWith(s, "subnet") ? "subnet" : startsWith(s, "shared-network") ? "shared-network" : undefined;
      if (kind) {
        const c: AddressContainer = { statement: s, kind, pools: [], bareRanges: [], subnets: [] };
        for (const child of s.block) {
          if (startsWith(child, "pool") && child.block) c.pools.push(poolDecl(child, s));
          else if (startsWith(child, "range") && !child.block) c.bareRanges.push(child);
        }
        visit(s.block, kind === "shared-network" ? c.subnets : into);
        into.push(c);
      } else if (!startsWith(s, "pool")) {
        visit(s.block, into); // groups and classes may hold subnets
      }
    }
  };
  visit(statements, containers);
  return containers;
}

/** Every pool, wherever it is declared. */
export function findPools(statements: readonly ConfStatement[]): PoolDecl[] {
  const pools: PoolDecl[] = [];
  const visit = (list: readonly ConfStatement[], container: ConfStatement | undefined) => {
    for (const s of list) {
      if (!s.block) continue;
      if (startsWith(s, "pool")) pools.push(poolDecl(s, container));
      else visit(s.block, startsWith(s, "subnet") || startsWith(s, "shared-network") ? s : container);
    }
  };
  visit(statements, undefined);
  return pools;
}

export function walk(statements: readonly ConfStatement[], visit: (s: ConfStatement) => void): void {
  for (const s of statements) {
    visit(s);
    if (s.block) walk(s.block, visit);
  }
}

/** A statement and its block as one normalized line of words, for comparisons that ignore layout and comments. */
export function normalizeStatement(s: ConfStatement): string {
  const words = s.words.map((w) => (w.quoted ? JSON.stringify(w.text) : w.text.toLowerCase())).join(" ");
  if (!s.block) return `${words};`;
  return `${words} { ${s.block.map(normalizeStatement).join(" ")} }`;
}

/** `subnet 10.0.0.0 netmask 255.255.255.0` or `shared-network NAME`, for messages. */
export function describeContainer(s: ConfStatement | undefined): string {
  if (!s) return "top level";
  return s.words.map((w) => (w.quoted ? `"${w.text}"` : w.text)).join(" ");
}
