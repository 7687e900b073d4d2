// The Argo CD health checks (manifests/argocd/) run in the real gopher-lua, opened as Argo CD opens
// it for an argocd-cm script (hack/lua-health/), on statuses computed by this folder's own
// functions. See docs/adr/0014-argocd-health.md.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Condition } from "../api/index.js";
import type { ApplyResult } from "../apply/index.js";
import type { DhcpFailoverSideObservation } from "../observe/dhcpd-failover.js";
import type { KeaPeerObservation } from "../observe/kea-ha.js";
import type { ApplyOutcome } from "./apply-outcome.js";
import { findCondition, setCondition } from "./conditions.js";
import { computeDDIHostStatus } from "./ddihost.js";
import { computeDhcpFailoverPeerStatus } from "./dhcpfailoverpeer.js";
import { type HAPairNodeInput, computeHAPairStatus } from "./hapair.js";
import { computeKeaHAClusterStatus } from "./keahacluster.js";
import type { FailoverMaintenanceObservation } from "./dhcpfailoverpeer.js";
import type { KeaCommandOutcome } from "../observe/kea-ha.js";
import { planFailoverMaintenance } from "../daemons/dhcpd/index.js";
import { planKeaMaintenance } from "../daemons/kea/index.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const argocdDir = join(root, "manifests/argocd");
const KINDS = ["DDIHost", "HAPair", "KeaHACluster", "DhcpFailoverPeer"] as const;
type Kind = (typeof KINDS)[number];
const now = new Date("2026-11-22T09:00:00Z");

let runner = "";
let scratch = "";
const scriptOf = {} as Record<Kind, string>;

beforeAll(() => {
  // Builds the runner on first use (seconds with a warm Go cache), then only hashes three files.
  runner = execFileSync(join(root, "hack/lua-health.sh"), { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 600_000 }).trim();
  // Run what Argo CD gets: the scripts as inlined in the ConfigMap patch.
  const patch = parse(readFileSync(join(argocdDir, "argocd-cm-patch.yaml"), "utf8")) as { data: Record<string, string> };
  scratch = mkdtempSync(join(tmpdir(), "argocd-health-"));
  for (const kind of KINDS) {
    scriptOf[kind] = join(scratch, `${kind}.lua`);
    writeFileSync(scriptOf[kind], patch.data[`resource.customizations.health.ddi-ha.io_${kind}`] ?? "");
  }
}, 600_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface Health {
  status?: string;
  message?: string;
}

function runScript(script: string, object: unknown): Health {
  return JSON.parse(execFileSync(runner, [script, "-"], { input: JSON.stringify(object), encoding: "utf8", timeout: 10_000 })) as Health;
}

function assess(kind: Kind, status: unknown, metadata: Record<string, unknown> = {}): Health {
  const object = { apiVersion: "ddi-ha.io/v1alpha1", kind, metadata: { name: "x", namespace: "site", generation: 1, ...metadata }, ...(status ? { status } : {}) };
  return runScript(scriptOf[kind], object);
}

const msg = (status: { conditions?: Condition[] }, type: string) => findCondition(status.conditions, type)?.message ?? "";
const okResult = (host: string): ApplyResult => ({ host, changed: [], unchanged: ["/etc/keepalived/keepalived.conf"], removed: [], reloaded: [], ok: true, notes: [] });

// --- HAPair ---
const named = [{ name: "named" as const, unit: "named.service", installed: true, active: true }];
const master = { vrrpState: "MASTER" as const, holdsVIP: true };
const backup = { vrrpState: "BACKUP" as const, holdsVIP: false };
/** `outcome` null: this pass only observed (nothing applied yet). */
function pair(
  primary: Partial<HAPairNodeInput>,
  secondary: Partial<HAPairNodeInput>,
  outcome: ApplyOutcome | null = { results: [okResult("p"), okResult("s")] },
  generation = 1,
  maintenance: ("primary" | "secondary")[] = [],
) {
  const node = (role: "primary" | "secondary", host: string, over: Partial<HAPairNodeInput>): HAPairNodeInput => ({
    host, role, interface: "eth0", reachable: true, keepalivedActive: true, interfaceFound: true, services: named, ...backup, ...over,
  });
  const obs = { vip: "10.71.17.86/24", nodes: [node("primary", "p", primary), node("secondary", "s", secondary)], requiredServices: ["named" as const], preempt: true, maintenance };
  return computeHAPairStatus(obs, outcome ?? undefined, undefined, generation, now);
}
const healthyPair = () => pair(master, {});

// --- DhcpFailoverPeer ---
function dhcp(p: Partial<DhcpFailoverSideObservation>, s: Partial<DhcpFailoverSideObservation>, maintenance?: FailoverMaintenanceObservation) {
  const side = (host: string, over: Partial<DhcpFailoverSideObservation>): DhcpFailoverSideObservation => ({
    host, reachable: true, source: "omapi", localState: "normal", partnerState: "normal", dhcpdActive: true, pools: [], ...over,
  });
  const observation = { peerName: "dhcp-failover", primary: side("dhcp-a", p), secondary: side("dhcp-b", s), mcltSeconds: 1800, ...(maintenance ? { maintenance } : {}) };
  return computeDhcpFailoverPeerStatus(observation, { results: [okResult("dhcp-a"), okResult("dhcp-b")] }, undefined, 1, now);
}

// --- KeaHACluster ---
function kea(a: Partial<KeaPeerObservation>, b: Partial<KeaPeerObservation>, resting: string[] = [], sent?: KeaCommandOutcome) {
  const peer = (name: string, role: string, over: Partial<KeaPeerObservation>): KeaPeerObservation => ({ name, host: `kea-${name}`, role, reachable: true, state: "hot-standby", inTouch: true, unackedClients: 0, ...over });
  const peers = [peer("server1", "primary", a), peer("server2", "standby", b)];
  const maintenance = resting.length ? { maintenance: { peers: resting, plan: planKeaMaintenance("hot-standby", peers, new Set(resting), false), ...(sent ? { sent } : {}) } } : {};
  return computeKeaHAClusterStatus({ mode: "hot-standby", configSync: "PrimaryIsSourceOfTruth", peers, ...maintenance }, { results: [okResult("kea-server1"), okResult("kea-server2")] }, undefined, 1, now);
}
const unreachableKea = { reachable: false, state: "unavailable", error: "no answer" };

// --- DDIHost ---
const facts = { os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1.0-28-amd64", services: [], interfaces: [], clockOffsetSeconds: 0.004, ntpSynchronized: true };
const hostDown = (kind: "Unreachable" | "HostKeyMismatch", message: string) => computeDDIHostStatus({ host: "h1", reachable: false, failure: { kind, message } }, undefined, 1, now);

describe("Argo CD health of each kind, from statuses the operator computes", () => {
  const splitBrain = pair(master, master);
  const failedOver = pair({ vrrpState: "STOP", holdsVIP: false, keepalivedActive: false }, master);
  const stalled = pair(master, {}, { specProblems: ["virtualRouterID 51 is also used by HAPair site/other on 10.71.17.0/24"] });
  const pending = pair(master, {}, null);
  const deleting = healthyPair();
  const cleanupFailed = { ...deleting, conditions: setCondition(deleting.conditions, { type: "Ready", status: "False", reason: "CleanupFailed", message: "being deleted, but h1: connection refused" }, 1, now) };
  const partnerDown = dhcp({ reachable: false, error: "cannot reach dhcp-a", source: "none", localState: undefined }, { localState: "partner-down", partnerState: "communications-interrupted" });
  const interrupted = dhcp({ localState: "communications-interrupted" }, {});
  const recovering = dhcp({ localState: "recover-done" }, { localState: "recover" });
  const keaImpaired = kea({ state: "partner-down", inTouch: false }, unreachableKea);
  const keaDown = kea(unreachableKea, unreachableKea);
  const keaMaintenance = kea({ state: "partner-in-maintenance" }, { state: "in-maintenance" });
  const keaSyncing = kea({ state: "syncing" }, { state: "waiting" });
  const keaHostInMaintenance = kea({ state: "in-maintenance" }, { state: "partner-in-maintenance" }, ["server1"]);
  const keaHandingOver = kea({}, {}, ["server1"]);
  const keaRefused = kea({}, {}, ["server1"], { command: "ha-maintenance-start", peer: "server2", ok: false, text: "Unable to transition (result 1)" });
  const dhcpShutdown = (p: Partial<DhcpFailoverSideObservation>, s: Partial<DhcpFailoverSideObservation>, partnerDown: boolean) => {
    const v = (host: string, state: string, inMaintenance: boolean) => ({ host, state, inMaintenance, live: state !== "unknown" });
    const plan = planFailoverMaintenance({ primary: v("dhcp-a", p.localState ?? "normal", true), secondary: v("dhcp-b", s.localState ?? "normal", false) }, partnerDown, false);
    return dhcp(p, s, { sides: ["primary"], plan });
  };
  const dhcpHandedOver = dhcpShutdown({ localState: "shutdown", partnerState: "partner-down" }, { localState: "partner-down", partnerState: "shutdown" }, true);
  const dhcpLeftAlone = dhcpShutdown({ reachable: true, dhcpdActive: false, source: "none", localState: undefined }, { localState: "communications-interrupted" }, false);
  const unreachable = hostDown("Unreachable", "cannot reach h1 (root@198.18.0.11:22): timed out after 10 s");
  const inMaintenance = pair({ vrrpState: "FAULT", holdsVIP: false }, master, undefined, 1, ["primary"]);
  const maintenanceButPartnerDown = pair({ vrrpState: "FAULT", holdsVIP: false }, { keepalivedActive: false, vrrpState: "STOP", holdsVIP: false }, undefined, 1, ["primary"]);
  const hostInMaintenance = computeDDIHostStatus({ host: "h1", reachable: false, failure: { kind: "Unreachable", message: "cannot reach h1: timed out" } }, undefined, 1, now, { maintenance: true });
  const keyMismatch = hostDown("HostKeyMismatch", "the host key of h1 has changed (SHA256:new, pinned SHA256:old): if the host was reinstalled, set spec.hostKey");

  it.each([
    {
      name: "healthy pair",
      kind: "HAPair",
      status: healthyPair(),
      want: { status: "Healthy", message: "activeNode=primary: 10.71.17.86/24 is on the primary p; keepalived and named run on both hosts" },
    },
    { name: "split brain", kind: "HAPair", status: splitBrain, want: { status: "Degraded", message: `activeNode=both: ${msg(splitBrain, "Ready")}` } },
    { name: "failed over: keepalived stopped on the primary", kind: "HAPair", status: failedOver, want: { status: "Degraded", message: `activeNode=secondary: ${msg(failedOver, "Ready")}` } },
    { name: "stalled spec", kind: "HAPair", status: stalled, want: { status: "Degraded", message: `activeNode=primary: ${msg(stalled, "Stalled")}` } },
    {
      name: "generation not yet observed",
      kind: "HAPair",
      status: pair(master, {}, undefined, 2),
      metadata: { generation: 3 },
      want: { status: "Progressing", message: "waiting for the operator to observe generation 3 (the status is for generation 2)" },
    },
    { name: "no status", kind: "HAPair", status: undefined, want: { status: "Progressing", message: "waiting for the operator to report a status" } },
    { name: "first pass, not applied yet", kind: "HAPair", status: pending, want: { status: "Progressing", message: `activeNode=primary: ${msg(pending, "Ready")}` } },
    { name: "being deleted", kind: "HAPair", status: deleting, metadata: { deletionTimestamp: "2026-11-22T09:05:00Z" }, want: { status: "Progressing", message: "being deleted: the operator removes its config from the hosts first" } },
    { name: "being deleted, cleanup failed", kind: "HAPair", status: cleanupFailed, metadata: { deletionTimestamp: "2026-11-22T09:05:00Z" }, want: { status: "Degraded", message: "activeNode=primary: being deleted, but h1: connection refused" } },
    {
      name: "Kea hot-standby serving",
      kind: "KeaHACluster",
      status: kea({}, {}),
      want: { status: "Healthy", message: "health=OK: server1: hot-standby, server2: hot-standby (hot-standby)" },
    },
    { name: "Kea Impaired: the standby is gone, the primary in partner-down", kind: "KeaHACluster", status: keaImpaired, want: { status: "Degraded", message: msg(keaImpaired, "Ready") } },
    { name: "Kea Down: no peer answers", kind: "KeaHACluster", status: keaDown, want: { status: "Degraded", message: msg(keaDown, "Ready") } },
    { name: "Kea in maintenance", kind: "KeaHACluster", status: keaMaintenance, want: { status: "Suspended", message: msg(keaMaintenance, "Ready") } },
    { name: "Kea still syncing after start", kind: "KeaHACluster", status: keaSyncing, want: { status: "Progressing", message: `health=Down: ${msg(keaSyncing, "Reconciling")}` } },
    {
      name: "dhcpd both normal",
      kind: "DhcpFailoverPeer",
      status: dhcp({}, {}),
      want: { status: "Healthy", message: 'primary=normal secondary=normal: both dhcp-a and dhcp-b are in normal for peer "dhcp-failover"' },
    },
    { name: "dhcpd partner-down", kind: "DhcpFailoverPeer", status: partnerDown, want: { status: "Degraded", message: `primary=unknown secondary=partner-down: ${msg(partnerDown, "Ready")}` } },
    { name: "dhcpd communications-interrupted", kind: "DhcpFailoverPeer", status: interrupted, want: { status: "Degraded", message: `primary=communications-interrupted secondary=normal: ${msg(interrupted, "Ready")}` } },
    { name: "dhcpd recovering after a restart", kind: "DhcpFailoverPeer", status: recovering, want: { status: "Progressing", message: `primary=recover-done secondary=recover: ${msg(recovering, "Reconciling")}` } },
    {
      name: "DDIHost reachable, clock in sync",
      kind: "DDIHost",
      status: computeDDIHostStatus({ host: "h1", reachable: true, facts }, undefined, 1, now),
      want: { status: "Healthy", message: "h1 is reachable and its clock is synchronized" },
    },
    { name: "DDIHost unreachable", kind: "DDIHost", status: unreachable, want: { status: "Degraded", message: "cannot reach h1 (root@198.18.0.11:22): timed out after 10 s" } },
    { name: "DDIHost host key mismatch", kind: "DDIHost", status: keyMismatch, want: { status: "Degraded", message: msg(keyMismatch, "Stalled") } },
    { name: "a node in maintenance, the VIP handed over", kind: "HAPair", status: inMaintenance, want: { status: "Suspended", message: `activeNode=secondary: ${msg(inMaintenance, "Ready")}` } },
    {
      name: "a node in maintenance and the other failing: not hidden",
      kind: "HAPair",
      status: maintenanceButPartnerDown,
      want: { status: "Degraded", message: `activeNode=none: ${msg(maintenanceButPartnerDown, "Ready")}` },
    },
    { name: "DDIHost in maintenance, powered off", kind: "DDIHost", status: hostInMaintenance, want: { status: "Suspended", message: msg(hostInMaintenance, "Maintenance") } },
    { name: "a peer's host in maintenance, handed over", kind: "KeaHACluster", status: keaHostInMaintenance, want: { status: "Suspended", message: msg(keaHostInMaintenance, "Ready") } },
    { name: "a peer's host in maintenance, ha-maintenance-start due", kind: "KeaHACluster", status: keaHandingOver, want: { status: "Progressing", message: msg(keaHandingOver, "Ready") } },
    { name: "a peer's host in maintenance, Kea refused the hand-over", kind: "KeaHACluster", status: keaRefused, want: { status: "Degraded", message: msg(keaRefused, "Ready") } },
    {
      name: "a side in maintenance, shut down, the partner in partner-down",
      kind: "DhcpFailoverPeer",
      status: dhcpHandedOver,
      want: { status: "Suspended", message: `primary=shutdown secondary=partner-down: ${msg(dhcpHandedOver, "Ready")}` },
    },
    {
      name: "a side in maintenance, dhcpd left alone and stopped",
      kind: "DhcpFailoverPeer",
      status: dhcpLeftAlone,
      want: { status: "Suspended", message: `primary=unknown secondary=communications-interrupted: ${msg(dhcpLeftAlone, "Ready")}` },
    },
  ] as { name: string; kind: Kind; status: unknown; metadata?: Record<string, unknown>; want: Health }[])("$kind: $name", ({ kind, status, metadata, want }) => {
    expect(assess(kind, status, metadata)).toEqual(want);
  });

  it("judges nothing before the operator has seen the spec", () => {
    expect(assess("HAPair", splitBrain, { generation: 2 })).toEqual({ status: "Progressing", message: "waiting for the operator to observe generation 2 (the status is for generation 1)" });
  });
});

describe("the classification of Ready=False reasons", () => {
  const lua = readFileSync(join(argocdDir, "health.lua"), "utf8");
  const table = lua.slice(lua.indexOf("local READY_FALSE = {"), lua.indexOf("\n}\n", lua.indexOf("local READY_FALSE = {")));
  const classified = new Map([...table.matchAll(/^\s+(\w+) = "(\w+)",/gm)].map((m) => [m[1]!, m[2]!]));
  // Reasons the operator writes only for Ready=True or for other conditions.
  const neverReadyFalse = new Set([
    "AllPeersServing", "Applied", "DriftCorrected", "BothNodesHoldVIP", "BothNormal", "Connected", "HeldByPrimary", "HeldBySecondary", "HostBusy", "HostReady",
    "HostsMatchSpec", "InSync", "NotHeld", "OffsetWithinLimit", "OffsetWithinLimitWithoutNTP", "PeersConverging", "Progressing", "SingleHolder",
    "VIPOnPrimary", "VIPOnSecondary",
    // The Maintenance condition's own reasons (never Ready's).
    "InMaintenance", "HandedOver", "Returning", "Returned", "Ended", "LeftAlone",
  ]);
  const sources = ["apply-outcome.ts", "hapair.ts", "dhcpfailoverpeer.ts", "keahacluster.ts", "ddihost.ts", "maintenance.ts"].map((f) => join(root, "src/status", f));
  sources.push(join(root, "src/engine/drift.ts"), join(root, "src/controller/reconcile-object.ts"));
  const written = new Set<string>(["Impaired", "Down"]); // KeaHACluster's health, as Ready's reason when no peer names a problem
  for (const file of sources) {
    const text = readFileSync(file, "utf8");
    // `reason: "A"` and `reason: x ? "A" : "B"`, up to the end of the expression.
    for (const m of text.matchAll(/reason:([^,}\n]*)/g)) for (const s of m[1]!.matchAll(/"([A-Z]\w*)"/g)) written.add(s[1]!);
    // The controller's `readyCondition(item, "A", …)`.
    for (const m of text.matchAll(/readyCondition\(\w+, "([A-Z]\w*)"/g)) written.add(m[1]!);
    // DDIHost's reason per host failure kind.
    const perKind = text.match(/REACHABLE_REASONS[^=]*= \{([^}]*)\}/)?.[1] ?? "";
    for (const m of perKind.matchAll(/: "([A-Z]\w*)"/g)) written.add(m[1]!);
  }

  it("classifies every reason the operator writes, in one table", () => {
    const unclassified = [...written].filter((r) => !classified.has(r) && !neverReadyFalse.has(r));
    expect(unclassified, "add these to READY_FALSE in manifests/argocd/health.lua (or to neverReadyFalse here)").toEqual([]);
  });

  it("lists no reason the operator no longer writes, and only Argo CD statuses", () => {
    expect([...classified.keys()].filter((r) => !written.has(r))).toEqual([]);
    expect(new Set(classified.values())).toEqual(new Set(["Progressing", "Degraded", "Suspended"]));
  });

  it("says Degraded for a reason it does not know", () => {
    const status = healthyPair();
    const conditions = setCondition(status.conditions, { type: "Ready", status: "False", reason: "SomethingNew", message: "a newer operator's fault" }, 1, now);
    expect(assess("HAPair", { ...status, conditions })).toEqual({ status: "Degraded", message: "activeNode=primary: a newer operator's fault" });
  });
});

describe("the argocd-cm patch and the runner", () => {
  it("is what generate.sh writes from health.lua, one key per kind", () => {
    execFileSync(join(argocdDir, "generate.sh"), ["--check"], { stdio: ["ignore", "pipe", "pipe"] });
    const patch = parse(readFileSync(join(argocdDir, "argocd-cm-patch.yaml"), "utf8")) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    expect([patch.kind, patch.metadata.name]).toEqual(["ConfigMap", "argocd-cm"]);
    expect(Object.keys(patch.data).sort()).toEqual(KINDS.map((k) => `resource.customizations.health.ddi-ha.io_${k}`).sort());
    const lua = readFileSync(join(argocdDir, "health.lua"), "utf8");
    for (const script of Object.values(patch.data)) expect(script).toBe(lua);
    // The keys name the CRDs' own group and kinds.
    const crds = readdirSync(join(root, "crds")).map((f) => parse(readFileSync(join(root, "crds", f), "utf8")) as { spec: { group: string; names: { kind: string } } });
    expect(crds.map((c) => `${c.spec.group}_${c.spec.names.kind}`).sort()).toEqual(KINDS.map((k) => `ddi-ha.io_${k}`).sort());
  });

  it("opens only what Argo CD opens for an argocd-cm script", () => {
    const probe = join(scratch, "probe.lua");
    writeFileSync(probe, [
      'local seen = {}',
      'for _, name in ipairs({"string", "math", "io", "os", "debug", "coroutine", "json", "dofile", "require", "ipairs", "tostring", "table"}) do',
      '  table.insert(seen, name .. "=" .. type(_G[name]))',
      'end',
      'table.insert(seen, "require(os).time=" .. type(require("os").time))',
      'table.insert(seen, "require(json)=" .. tostring(pcall(require, "json")))',
      'return {status = "Healthy", message = table.concat(seen, " ")}',
    ].join("\n"));
    expect(runScript(probe, {}).message).toBe(
      "string=nil math=nil io=nil os=nil debug=nil coroutine=nil json=nil dofile=function require=function ipairs=function tostring=function table=table require(os).time=function require(json)=false",
    );
  });
});
