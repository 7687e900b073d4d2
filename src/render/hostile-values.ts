// Issue 13 item 7: every free-form string of the API that reaches a daemon's config file, each
// with the most hostile value its schema still accepts, and the check that such a value cannot
// change the structure of the rendered config: the file rendered with it and the file rendered
// with a plain value in its place must parse (with our readers of each daemon's syntax) into
// the same tree once both values are masked. Pure: the unit test renders and runs the daemons'
// own checkers locally; test/integration/hostile-values.test.ts applies the same table through
// the controller and reads the daemons' own view back from the lab hosts.
import { parseDhcpdConf, type ConfStatement } from "../daemons/dhcpd/conf-parser.js";
import { parseKeepalivedConf, type KaStatement } from "../daemons/keepalived/conf.js";
import type { RenderedFile } from "./types.js";

export type HostileKind = "HAPair" | "DhcpFailoverPeer" | "KeaHACluster";
export type HostileDaemon = "keepalived" | "dhcpd" | "kea-dhcp4" | "kea-ctrl-agent";
type Obj = Record<string, unknown>;

export interface HostileCase {
  kind: HostileKind;
  /** The field as the user writes it. */
  field: string;
  /** Why this value is the worst the schema lets through. */
  why: string;
  value: unknown;
  /** A plain value for the same field: the twin render the hostile one is compared with. Undefined: the twin leaves the field out. */
  benign: unknown;
  /** Sets the field on a whole object (metadata and spec). */
  set(object: Obj, value: unknown): void;
  /** The file it reaches. */
  daemon: HostileDaemon;
  /** Values one step nastier that the schema refuses (the wall the value stops at). Empty for free-form JSON. */
  refused: string[];
  /** false when the lab cannot carry it (the daemon would not read that path, or the lab has no IPv6). */
  lab: boolean;
  /** What the structure check expects: the value kept in place of the benign one, or dropped before rendering. */
  expect: "kept" | "dropped";
  /** The refused values pass admission (no CEL can express the rule) and the operator refuses them (Stalled, nothing applied). */
  refusedByOperatorOnly?: true;
  /** Parts the renderer takes from the value (a directory, a host and port), masked like the value itself. */
  derived?: { value: string[]; benign: string[] };
}

const pad = (prefix: string, length: number, fill = "x") => prefix + fill.repeat(Math.max(0, length - prefix.length));
/** Letters, digits, '_', '.', '-' (the most an interface name allows), 15 characters (IFNAMSIZ − 1), a keepalived keyword inside. */
export const HOSTILE_INTERFACE = "0_.-include-_.0";
/** A configIdentifier at its 63-character limit, starting with a digit, full of dhcpd and Kea keywords. */
const identifier = (words: string) => pad(`0_.-${words}`, 63, "_");

const at = (o: Obj, ...path: (string | number)[]): Obj => path.reduce<Obj>((acc, k) => acc[k as string] as Obj, o);
/** An own property even for "__proto__" (plain assignment would set the prototype instead), as JSON.parse makes it. */
function defineOwn(o: Obj, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
function userContext(o: Obj): Obj {
  const dhcp4 = at(o, "spec", "dhcp4");
  dhcp4["user-context"] ??= {};
  return dhcp4["user-context"] as Obj;
}
const inUserContext = (key: string) => (o: Obj, v: unknown) => defineOwn(userContext(o), key, v);

const EVIL_HOOK = [{ library: "/tmp/evil.so" }];

export const HOSTILE_CASES: readonly HostileCase[] = [
  // keepalived (HAPair → /etc/keepalived/ddi-ha.d/<ns>_<name>.conf)
  {
    kind: "HAPair",
    field: "metadata.name",
    why: "63 characters (the operator's limit), dots and double dashes, keepalived keywords: it becomes the vrrp_instance and vrrp_script names and the file name",
    value: pad("include.0--vrrp-instance--0.global-defs.", 62) + "0",
    benign: "plain-pair",
    set: (o, v) => void (at(o, "metadata").name = v),
    daemon: "keepalived",
    refused: ["a_b", "a b", "include;x", "a}b", "a{b"],
    lab: true,
    expect: "kept",
  },
  ...(["primary", "secondary"] as const).map(
    (role): HostileCase => ({
      kind: "HAPair",
      field: `spec.${role}.interface`,
      why: "every character an interface name allows, at IFNAMSIZ, a keyword inside: it is a word in `interface` and in `virtual_ipaddress { … dev … }`",
      value: HOSTILE_INTERFACE,
      benign: "eth0",
      set: (o, v) => void (at(o, "spec", role).interface = v),
      daemon: "keepalived",
      refused: ["eth0 }", "eth0#", "eth0!", "@eth0", "$IF", "~SEQ(1)", "eth0\ninclude /tmp/x", "-eth0", "0123456789abcdef"],
      lab: true,
      expect: "kept",
    }),
  ),
  {
    kind: "HAPair",
    field: "spec.authPass",
    why: "8 characters starting with '-', a keyword: the word after auth_pass",
    value: "-include",
    benign: "secret",
    set: (o, v) => void (at(o, "spec").authPass = v),
    daemon: "keepalived",
    refused: ["a}", "a#", "a!b", "a b", "$PASS", '"a"', "123456789"],
    lab: true,
    expect: "kept",
  },
  {
    kind: "HAPair",
    field: "spec.primary.configPath",
    why: "segments starting with '-' and '_', dots inside: its directory is the `include …/ddi-ha.d/*.conf` line of the main file",
    value: "/etc/keepalived/-_.include/_-.x/keepalived.conf",
    benign: "/etc/keepalived/plain/keepalived.conf",
    derived: { value: ["/etc/keepalived/-_.include/_-.x"], benign: ["/etc/keepalived/plain"] },
    set: (o, v) => void (at(o, "spec", "primary").configPath = v),
    daemon: "keepalived",
    refused: ["/etc/keepalived/../shadow", "/etc/keepalived/*.conf", "/etc/keepalived/a b.conf", "/etc/keepalived/.x", "/etc/keepalived/a;b"],
    // keepalived on the lab hosts reads /etc/keepalived/keepalived.conf only.
    lab: false,
    expect: "kept",
  },
  // dhcpd (DhcpFailoverPeer → /etc/dhcp/ddi-ha/<peer>.conf and one line in dhcpd.conf)
  {
    kind: "DhcpFailoverPeer",
    field: "metadata.name",
    why: "63 characters, dots and double dashes: the failover peer name when spec.peerName is unset (quoted, in the include file's name and in the OMAPI key name), and the marker comment",
    value: pad("failover.peer--0.include.", 62) + "0",
    benign: "plain-name",
    set: (o, v) => void (at(o, "metadata").name = v),
    daemon: "dhcpd",
    refused: ['a"b', "a;b", "a}b", "a#b", "a b"],
    lab: true,
    expect: "kept",
  },
  {
    kind: "DhcpFailoverPeer",
    field: "spec.peerName",
    why: "a configIdentifier at its 63-character limit with dhcpd keywords: `failover peer \"…\"` (twice per pool), the include file's name, the OMAPI key `omapi-…`",
    value: identifier("failover.peer-primary_secondary.include-omapi-key.pool-"),
    benign: "plain-peer",
    set: (o, v) => void (at(o, "spec").peerName = v),
    daemon: "dhcpd",
    refused: ['a"b', "a;b", "a}b", "a#b", "a b", "a\\b", "a\nb", ".x", pad("0", 64)],
    lab: true,
    expect: "kept",
  },
  {
    kind: "DhcpFailoverPeer",
    field: "spec.subnets[0].options.domainName",
    why: "253 characters (its limit) with runs of '.' and '-': the quoted value of `option domain-name`",
    value: pad("include.--..--failover.peer.-.-", 252, "x") + "0",
    benign: "plain.example",
    set: (o, v) => void (at(o, "spec", "subnets", 0, "options").domainName = v),
    daemon: "dhcpd",
    refused: ['a"b', "a;b", "a}b", "a#b", "a b", "a\\b", "-a"],
    lab: true,
    expect: "kept",
  },
  {
    kind: "DhcpFailoverPeer",
    field: "spec.configPath",
    why: "segments starting with '-' and '_': the quoted path of the one `include` line the operator adds to dhcpd.conf, and the include file's directory",
    value: "/etc/dhcp/-_.include/_-.x/dhcpd.conf",
    benign: "/etc/dhcp/plain/dhcpd.conf",
    derived: { value: ["/etc/dhcp/-_.include/_-.x"], benign: ["/etc/dhcp/plain"] },
    set: (o, v) => void (at(o, "spec").configPath = v),
    daemon: "dhcpd",
    refused: ['/etc/dhcp/a"b.conf', "/etc/dhcp/a;b", "/etc/dhcp/../shadow", "/etc/dhcp/a b"],
    // dhcpd on the lab hosts reads /etc/dhcp/dhcpd.conf only.
    lab: false,
    expect: "kept",
  },
  // Kea (KeaHACluster → /etc/kea/kea-dhcp4.conf and kea-ctrl-agent.conf, JSON)
  ...([0, 1] as const).flatMap((i): HostileCase[] => [
    {
      kind: "KeaHACluster",
      field: `spec.peers[${i}].name`,
      why: "a configIdentifier at 63 characters with Kea keywords: this-server-name and a peers[].name",
      value: identifier(i === 0 ? "this-server-name.hooks-libraries_peers-" : "Dhcp4.high-availability_role-url-"),
      benign: `plain${i}`,
      set: (o, v) => void (at(o, "spec", "peers", i).name = v),
      daemon: "kea-dhcp4",
      refused: ['a"b', "a\\b", "a}b", "a,b", "a b", "a\nb"],
      lab: true,
      expect: "kept",
    },
    {
      kind: "KeaHACluster",
      field: `spec.peers[${i}].interface`,
      why: "every character an interface name allows: interfaces-config.interfaces",
      value: HOSTILE_INTERFACE,
      benign: "eth0",
      set: (o, v) => void (at(o, "spec", "peers", i).interface = v),
      daemon: "kea-dhcp4",
      refused: ['eth0"', "eth0\\", "eth0/24", "eth0 x"],
      lab: true,
      expect: "kept",
    },
  ]),
  {
    kind: "KeaHACluster",
    field: "spec.peers[0].url",
    why: "an IPv6 literal and the highest port: the peer URL, and the Control Agent's http-host and http-port",
    value: "http://[fd00:0:0:ffff::1]:65535/",
    benign: "http://[fd00::10]:8001/",
    derived: { value: ["fd00:0:0:ffff::1", "65535"], benign: ["fd00::10", "8001"] },
    set: (o, v) => void (at(o, "spec", "peers", 0).url = v),
    daemon: "kea-ctrl-agent",
    refused: ['http://198.18.0.1:8000/"', "http://host:8000/", "http://198.18.0.1:8000/x", "http://[fd00::1%eth0]:8000/", "https://198.18.0.1:8000/"],
    // The lab network is IPv4 only.
    lab: false,
    expect: "kept",
  },
  ...(
    [
      ["a JSON breakout: closes the string and the object, adds a hooks-libraries key", "breakout", '"}, "hooks-libraries": [{"library": "/tmp/evil.so"}], "x": {"'],
      ["Kea's own include directive", "include", '<?include "/etc/shadow"?>'],
      ["the three comment styles Kea's lexer knows", "comments", "# x // y /* z */ */ /*"],
      ["control characters and backslashes (JSON escapes them; Kea decodes them)", "control", "line1\nline2\r\t\u0001\u001f\u007f\\\\ \\u0041 \\"],
      ["a NUL character", "nul", "a\u0000b"],
      ["line and paragraph separators, non-ASCII, an astral character", "unicode", "\u2028\u2029é😀"],
    ] as const
  ).map(
    ([why, key, value]): HostileCase => ({
      kind: "KeaHACluster",
      field: `spec.dhcp4.user-context.${key}`,
      why: `free-form JSON, kept as written by the API server: ${why}`,
      value,
      benign: `plain-${key}`,
      set: inUserContext(key),
      daemon: "kea-dhcp4",
      refused: [],
      lab: true,
      expect: "kept",
    }),
  ),
  {
    kind: "KeaHACluster",
    field: "spec.dhcp4.user-context.<key>",
    why: "free-form JSON: a key with every JSON and Kea metacharacter but '\"' and '\\' (Kea 2.2 writes keys back unescaped, so those two are refused)",
    value: "}], hooks-libraries: [{library: /tmp/evil-key.so}], y: {[ # // /* <?include /etc/shadow?>",
    benign: "plainkey",
    set: (o, v) => defineOwn(userContext(o), v as string, "k"),
    daemon: "kea-dhcp4",
    refused: ['"}, "hooks-libraries": [{"library": "/tmp/evil-key.so"}], "y": {"', "a\\b", "a\nb", "a\u0001b"],
    refusedByOperatorOnly: true,
    lab: true,
    expect: "kept",
  },
  {
    kind: "KeaHACluster",
    field: "spec.dhcp4.user-context.__proto__",
    why: "free-form JSON: a __proto__ key holding a hooks-libraries list (a JavaScript object that merged by assignment would inherit it)",
    value: "__proto__",
    benign: "plainproto",
    set: (o, v) => defineOwn(userContext(o), v as string, { "hooks-libraries": EVIL_HOOK }),
    daemon: "kea-dhcp4",
    refused: [],
    lab: true,
    expect: "kept",
  },
  {
    kind: "KeaHACluster",
    field: "spec.dhcp4.__proto__",
    why: "free-form JSON: a top-level __proto__ holding hooks-libraries, which the CEL rule (has(self.hooks__dash__libraries)) does not see",
    value: "__proto__",
    benign: undefined,
    set: (o, v) => defineOwn(at(o, "spec", "dhcp4"), v as string, { "hooks-libraries": EVIL_HOOK, "valid-lifetime": 1 }),
    daemon: "kea-dhcp4",
    refused: [],
    lab: true,
    // zod keeps no __proto__ key: the whole entry is dropped before rendering.
    expect: "dropped",
  },
  {
    kind: "KeaHACluster",
    field: "spec.dhcp4.option-data[0].data",
    why: "free-form JSON: an option's text breaking out of the string and the list (boot-file-name is plain text to Kea)",
    value: '"}], "hooks-libraries": [{"library": "/tmp/evil.so"}], "x": [{"#<?include "/etc/shadow"?>//',
    benign: "plain.bin",
    set: (o, v) => void (at(o, "spec", "dhcp4")["option-data"] = [{ name: "boot-file-name", data: v }]),
    daemon: "kea-dhcp4",
    refused: [],
    lab: true,
    expect: "kept",
  },
];

/** A label per case, for masks and messages. */
export const caseLabel = (c: HostileCase) => `${c.kind} ${c.field}`;

/** Sets each case's hostile (or benign) value on a deep copy of the objects of its kind. */
export function withValues(objects: readonly Obj[], cases: readonly HostileCase[], pick: "value" | "benign"): Obj[] {
  const copies = objects.map((o) => structuredClone(o));
  for (const c of cases) {
    const value = c[pick];
    if (value === undefined) continue;
    for (const o of copies) if (o.kind === c.kind) c.set(o, value);
  }
  return copies;
}

/** Masks: each value (longest first) replaced by its label wherever it occurs in a string; a value two cases share keeps the first label. */
export type Masks = ReadonlyArray<readonly [string, string]>;
export function masksFor(cases: readonly HostileCase[], pick: "value" | "benign"): Masks {
  const all = cases.flatMap((c) => [
    ...(typeof c[pick] === "string" ? [[c[pick] as string, `⟨${caseLabel(c)}⟩`] as const] : []),
    ...(c.derived?.[pick] ?? []).map((d, i) => [d, `⟨${caseLabel(c)} part ${i}⟩`] as const),
  ]);
  return all.filter(([v], i) => all.findIndex(([w]) => w === v) === i).sort((a, b) => b[0].length - a[0].length);
}
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** One pass, so a label is never masked again (labels may contain values, e.g. "__proto__"). */
export function mask(text: string, masks: Masks): string {
  if (masks.length === 0) return text;
  const re = new RegExp(masks.map(([v]) => escapeRe(v)).join("|"), "g");
  return text.replace(re, (m) => masks.find(([v]) => v === m)![1]);
}

export interface Tree {
  words: string[];
  block?: Tree[];
}

/** keepalived's structure: statements, their words and blocks (comments gone), values masked. */
export function keepalivedTree(text: string, masks: Masks): Tree[] {
  const walk = (s: KaStatement): Tree => ({ words: s.words.map((w) => mask(w, masks)), ...(s.block ? { block: s.block.map(walk) } : {}) });
  return parseKeepalivedConf(text, "x").map(walk);
}

/** dhcpd's structure: statements, words (quoted ones marked) and blocks, values masked. */
export function dhcpdTree(text: string, masks: Masks): Tree[] {
  const walk = (s: ConfStatement): Tree => ({
    words: s.words.map((w) => (w.quoted ? `"${mask(w.text, masks)}"` : mask(w.text, masks))),
    ...(s.block ? { block: s.block.map(walk) } : {}),
  });
  return parseDhcpdConf(text, "x").map(walk);
}

/** A JSON value with every key and string masked; keys stay in their order. */
export function jsonTree(value: unknown, masks: Masks): unknown {
  if (Array.isArray(value)) return value.map((v) => jsonTree(v, masks));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).map((k) => [mask(k, masks), jsonTree((value as Obj)[k], masks)]));
  }
  if (typeof value === "number") return masks.find(([v]) => v === String(value))?.[1] ?? value;
  return typeof value === "string" ? mask(value, masks) : value;
}

/** Where each value occurs in a JSON document: `path (key|value) label`, sorted. */
export function jsonOccurrences(value: unknown, masks: Masks): string[] {
  const out: string[] = [];
  const visit = (v: unknown, path: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, `${path}[${i}]`));
    else if (v !== null && typeof v === "object") {
      for (const k of Object.keys(v)) {
        for (const [needle, label] of masks) if (k.includes(needle)) out.push(`${path} key ${label}`);
        visit((v as Obj)[k], `${path}.${mask(k, masks)}`);
      }
    } else if (typeof v === "string") {
      for (const [needle, label] of masks) if (v.includes(needle)) out.push(`${path} value ${label}`);
    }
  };
  visit(value, "");
  return out.sort();
}

/** Each file's tree by its reader (keepalived, dhcpd or JSON), keyed by host and masked path. */
export function fileTrees(files: readonly Pick<RenderedFile, "host" | "path" | "content" | "check">[], cases: readonly HostileCase[], pick: "value" | "benign"): Record<string, unknown> {
  const masks = masksFor(cases, pick);
  const out: Record<string, unknown> = {};
  for (const f of files) {
    out[`${f.host} ${mask(f.path, masks)}`] =
      f.check.kind === "keepalived" ? keepalivedTree(f.content, masks) : f.check.kind === "dhcpd" ? dhcpdTree(f.content, masks) : jsonTree(JSON.parse(f.content), masks);
  }
  return out;
}
