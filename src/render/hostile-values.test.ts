// Issue 13 item 7, the pure half: the table of hostile values covers every free-form string of
// the specs, each value passes its schema while a nastier one is refused, and the files rendered
// with it have the structure of the files rendered with a plain value (our readers of each
// daemon's syntax); the daemons' own checkers accept them (run locally, as root).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openApiSchema } from "../api/crd.js";
import { API_GROUP_VERSION, kindDefinition } from "../api/index.js";
import { DEFAULT_CHECKERS } from "../apply/checkers.js";
import type { CheckKind } from "../apply/types.js";
import { type HostIO, localHostIO } from "../exec/host-io.js";
import { rootForRealDaemons } from "../testing/support.js";
import { validateManifests } from "../validation/validate.js";
import {
  HOSTILE_CASES,
  type HostileKind,
  caseLabel,
  fileTrees,
  jsonOccurrences,
  masksFor,
  withValues,
} from "./hostile-values.js";
import { renderManifestSet } from "./render-set.js";
import type { RenderedFile } from "./types.js";

const isRoot = rootForRealDaemons();
type Obj = Record<string, unknown>;
const NS = "hostile";
const meta = (name: string) => ({ name, namespace: NS });

const hosts: Obj[] = ["h1", "h2", "h3", "h4"].map((name, i) => ({
  apiVersion: API_GROUP_VERSION,
  kind: "DDIHost",
  metadata: meta(name),
  spec: { address: `198.18.0.${11 + i}`, credentialsSecretRef: { name: "ssh" }, hostKeyPolicy: "TrustOnFirstUse" },
}));
const BASE: Record<HostileKind, Obj> = {
  HAPair: {
    apiVersion: API_GROUP_VERSION,
    kind: "HAPair",
    metadata: meta("hostile-vip"),
    spec: {
      primary: { host: "h1", interface: "br0" },
      secondary: { host: "h2", interface: "br0" },
      virtualIP: "198.18.0.100/24",
      virtualRouterID: 77,
      services: { dns: false, dhcp: "None" },
    },
  },
  DhcpFailoverPeer: {
    apiVersion: API_GROUP_VERSION,
    kind: "DhcpFailoverPeer",
    metadata: meta("hostile-dhcp"),
    spec: {
      primary: { host: "h1", address: "198.18.0.11" },
      secondary: { host: "h2", address: "198.18.0.12" },
      split: 128,
      subnets: [{ subnet: "198.18.0.0/24", options: {}, pools: [{ range: ["198.18.0.100", "198.18.0.150"] }] }],
    },
  },
  KeaHACluster: {
    apiVersion: API_GROUP_VERSION,
    kind: "KeaHACluster",
    metadata: meta("hostile-kea"),
    spec: {
      mode: "hot-standby",
      // IPv6 URLs on both (one family): the url case needs one; the others do not care.
      peers: [
        { name: "a", host: "h3", role: "primary", url: "http://[fd00::10]:8001/" },
        { name: "b", host: "h4", role: "standby", url: "http://[fd00::11]:8000/" },
      ],
      dhcp4: { "valid-lifetime": 3600 },
    },
  },
};
const KINDS = Object.keys(BASE) as HostileKind[];
const casesOf = (kind: HostileKind) => HOSTILE_CASES.filter((c) => c.kind === kind);

function render(objects: Obj[]): { files: RenderedFile[]; errors: string[] } {
  const { set, problems } = validateManifests(objects.map((object) => ({ source: "test", object })));
  const errors = problems.filter((p) => p.severity === "error").map((p) => `${p.path}: ${p.message}`);
  const omapiKeys = new Map(set.failoverPeers.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, { name: `omapi-${p.spec.peerName ?? p.metadata.name}`, algorithm: "hmac-sha256" as const, secret: "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=" }]));
  const rendered = renderManifestSet(set, { omapiKeys });
  return { files: rendered.files, errors: [...errors, ...rendered.failures.map((f) => `${f.resource}: ${f.message}`)] };
}

/** The string fields of a kind's spec (enums aside), as paths with [] for list items. */
function stringFields(node: Obj, path: string, out: string[]): string[] {
  if (node["x-kubernetes-preserve-unknown-fields"] === true) out.push(`${path} (free-form)`);
  if (node.type === "string" && node.enum === undefined) out.push(path);
  for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, Obj>)) stringFields(v, `${path}.${k}`, out);
  if (node.items) stringFields(node.items as Obj, `${path}[]`, out);
  return out;
}

const FIXED = "reaches a file, but its pattern admits no free text: digits, hex, dots, colons, slashes and unit letters only";
/** String fields with no case, and why none is needed. */
const NOT_FREE_FORM: Record<string, string> = {
  "spec.primary.host": "a DDIHost name (RFC 1123): only in comment lines, and its pattern has no newline",
  "spec.secondary.host": "a DDIHost name (RFC 1123): only in comment lines, and its pattern has no newline",
  "spec.peers[].host": "a DDIHost name: not rendered",
  "spec.preferredPrimary": "a peer name (configIdentifier pattern, and CEL: one of spec.peers[].name): it only picks which roles are swapped, never rendered itself",
  "spec.dhcp4.hooks-libraries[] (free-form)": "refused at admission (CEL) and by zod: the operator manages it",
  "spec.dhcp4.control-socket (free-form)": "refused at admission (CEL) and by zod: the operator manages it",
  "spec.dhcp4.interfaces-config (free-form)": "refused at admission (CEL) and by zod: the operator manages it",
  "spec.secondary.configPath": "the pattern of spec.primary.configPath, which has its case",
  "spec.omapi.keySecretRef.name": "a Secret name: read by the operator, never rendered",
  "spec.controlAgentConfigPath": "where the file goes, never inside one",
  "KeaHACluster spec.configPath": "where the file goes, never inside one",
  ...Object.fromEntries(
    [
      "spec.primary.address", "spec.secondary.address", "spec.virtualIP", "spec.virtualIPv6", "spec.advertInterval", "spec.preemptDelay",
      "spec.maxResponseDelay", "spec.mclt", "spec.hba", "spec.subnets[].subnet", "spec.subnets[].options.routers[]",
      "spec.subnets[].options.domainNameServers[]", "spec.subnets[].options.broadcastAddress", "spec.subnets[].pools[].range[]",
      "spec.subnets[].pools[].maxLeaseTime", "spec.heartbeatDelay", "spec.maxAckDelay", "spec.syncTimeout",
    ].map((f) => [f, FIXED]),
  ),
};
const generic = (field: string) => field.replace(/\[\d+\]/g, "[]").replace(/^spec\.dhcp4\..*/, "spec.dhcp4 (free-form)");

/** keepalived and kea-dhcp4 (its -t and the scratch server) in a network namespace that has these interfaces. */
function inNetnsWith(interfaces: readonly string[]): HostIO {
  // No dummy module on some kernels: a veth pair works everywhere.
  const setup = interfaces.map((name, n) => `ip link add ${name} type veth peer name ddi-hv${n} && ip link set ${name} up`).join(" && ");
  return {
    ...localHostIO,
    run(argv, options) {
      if (!argv.some((a) => a === "keepalived" || a.endsWith("kea-dhcp4"))) return localHostIO.run(argv, options);
      return localHostIO.run(["unshare", "-n", "sh", "-c", `${setup} && ip link set lo up && exec "$@"`, "sh", ...argv], options);
    },
  };
}

const workDirs: string[] = [];
afterAll(async () => {
  for (const d of workDirs) await rm(d, { recursive: true, force: true });
});

describe("hostile values in every free-form string (issue 13 item 7)", () => {
  it("the table has a case for every string field of the specs that reaches a config file, and the rest are fixed-shape", () => {
    const uncovered: string[] = [];
    for (const kind of KINDS) {
      const fields = stringFields(openApiSchema(kindDefinition(kind)!.spec) as Obj, "spec", []);
      const covered = new Set(casesOf(kind).map((c) => generic(c.field)));
      for (const f of fields) if (!covered.has(f) && !NOT_FREE_FORM[f] && !NOT_FREE_FORM[`${kind} ${f}`]) uncovered.push(`${kind} ${f}`);
      // metadata.name reaches every kind's files.
      expect(covered.has("metadata.name") || kind === "KeaHACluster", `${kind} metadata.name`).toBe(true);
      for (const c of casesOf(kind)) expect(fields.includes(generic(c.field)) || c.field === "metadata.name", `${caseLabel(c)} is a field of the spec`).toBe(true);
    }
    expect(uncovered).toEqual([]);
  });

  it.each(HOSTILE_CASES.map((c) => [caseLabel(c), c] as const))("%s: the schema accepts the hostile value, and refuses each nastier one", (_label, c) => {
    const base = [...hosts, BASE[c.kind]];
    expect(render(withValues(base, [c], "value")).errors).toEqual([]);
    for (const nastier of c.refused) {
      const { errors } = render(withValues(base, [{ ...c, value: nastier }], "value"));
      expect(errors.length, `${JSON.stringify(nastier)} was accepted`).toBeGreaterThan(0);
    }
  });

  it.each(HOSTILE_CASES.map((c) => [caseLabel(c), c] as const))("%s: the files have the structure they have with a plain value", (_label, c) => {
    const base = [...hosts, BASE[c.kind]];
    const hostile = render(withValues(base, [c], "value"));
    const plain = render(withValues(base, [c], "benign"));
    expect(hostile.errors).toEqual([]);
    expect(plain.errors).toEqual([]);
    expect(hostile.files.length).toBe(plain.files.length);
    expect(fileTrees(hostile.files, [c], "value")).toEqual(fileTrees(plain.files, [c], "benign"));
    if (c.expect === "dropped") {
      // Not even the name of the key is left: nothing of it reached a file.
      expect(hostile.files.map((f) => f.content).join("\n")).not.toMatch(/__proto__|evil/);
    } else if (typeof c.value === "string") {
      // The value survives, as a value (a JSON string, a word or a quoted string), where the plain one was.
      const json = hostile.files.filter((f) => f.check.kind === "kea-dhcp4" || f.check.kind === "kea-ctrl-agent");
      if (json.length && c.daemon.startsWith("kea")) {
        const where = (files: RenderedFile[], pick: "value" | "benign") => files.filter((f) => f.check.kind.startsWith("kea")).flatMap((f) => jsonOccurrences(JSON.parse(f.content), masksFor([c], pick)));
        expect(where(hostile.files, "value").length).toBeGreaterThan(0);
        expect(where(hostile.files, "value")).toEqual(where(plain.files, "benign"));
      }
    }
  });

  it.each(KINDS)("%s with every hostile value at once: the files have the structure of the plain twin's", (kind) => {
    const cases = casesOf(kind);
    const hostile = render(withValues([...hosts, BASE[kind]], cases, "value"));
    const plain = render(withValues([...hosts, BASE[kind]], cases, "benign"));
    expect([...hostile.errors, ...plain.errors]).toEqual([]);
    expect(fileTrees(hostile.files, cases, "value")).toEqual(fileTrees(plain.files, cases, "benign"));
  });

  it.skipIf(!isRoot).each(KINDS)("%s with every hostile value at once: the daemons' own checkers accept the files", async (kind) => {
    const { files, errors } = render(withValues([...hosts, BASE[kind]], casesOf(kind), "value"));
    expect(errors).toEqual([]);
    const groups = new Map<string, [CheckKind, RenderedFile[]]>();
    for (const f of files) {
      if (f.check.kind === "none") continue;
      const check: CheckKind = f.check.kind === "kea-ctrl-agent" ? "kea-dhcp4" : f.check.kind;
      const group = groups.get(`${f.host} ${check}`) ?? [check, []];
      group[1].push(f);
      groups.set(`${f.host} ${check}`, group);
    }
    expect(groups.size).toBeGreaterThan(0);
    for (const [check, group] of groups.values()) {
      const workDir = await mkdtemp(join(tmpdir(), "ddi-ha-hostile-"));
      workDirs.push(workDir);
      // keepalived -t and kea-dhcp4 -t look the interfaces up: give them a namespace that has them.
      const interfaces = [...new Set(group.flatMap((f) => [...f.content.matchAll(/^\s*interface\s+(\S+)/gm), ...f.content.matchAll(/"interfaces": \[\s*"([^"*]+)"/g)].map((m) => m[1]!)))];
      const io = interfaces.length ? inNetnsWith(interfaces) : localHostIO;
      const result = await DEFAULT_CHECKERS[check](group, io, workDir);
      expect(result.problems, result.output).toEqual([]);
      expect(result.ok, result.output).toBe(true);
    }
  });
});
