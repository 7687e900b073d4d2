import { describe, expect, it } from "vitest";
import type { ApplyResult } from "../apply/index.js";
import type { DhcpFailoverSideObservation } from "../observe/dhcpd-failover.js";
import type { HostFacts } from "../observe/host-facts.js";
import type { KeaPeerObservation } from "../observe/kea-ha.js";
import {
  type HAPairNodeInput,
  type HAPairObservation,
  computeDDIHostStatus,
  computeDhcpFailoverPeerStatus,
  computeHAPairStatus,
  computeKeaHAClusterStatus,
} from "../status/index.js";
import { ControllerMetrics, type PublishedStatus } from "./metrics.js";

const now = new Date("2026-11-22T09:00:00Z");
const later = new Date("2026-11-22T09:01:00Z");
const ok = (host: string): ApplyResult => ({ host, changed: [], unchanged: [], removed: [], reloaded: [], ok: true, notes: [] });

/** The exposition lines of one metric, without the name: `{labels} value`. */
async function series(m: ControllerMetrics, name: string): Promise<string[]> {
  const text = await m.registry.metrics();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`))
    .map((l) => l.slice(name.length))
    .sort();
}

const published = (kind: string, name: string, status: PublishedStatus["status"]): PublishedStatus => ({ resource: { kind, metadata: { name } }, status });

const named: HAPairNodeInput["services"] = [{ name: "named", unit: "named.service", installed: true, active: true }];

/** A pair whose nodes hold the VIP as given (MASTER where held, else BACKUP), with overrides for the primary. */
function pair(holds: Record<"primary" | "secondary", boolean>, primary: Partial<HAPairNodeInput> = {}): HAPairObservation {
  const node = (role: "primary" | "secondary"): HAPairNodeInput => ({ host: `h-${role}`, role, interface: "eth0", reachable: true, keepalivedActive: true, interfaceFound: true, services: named, holdsVIP: holds[role], vrrpState: holds[role] ? "MASTER" : "BACKUP" });
  return { vip: "198.18.0.10/24", nodes: [{ ...node("primary"), ...primary }, node("secondary")], requiredServices: ["named"], preempt: true };
}

const pairApplied = { results: [ok("h-primary"), ok("h-secondary")] };
const onPrimary = computeHAPairStatus(pair({ primary: true, secondary: false }), pairApplied, undefined, 1, now);
const failedOver = computeHAPairStatus(pair({ primary: false, secondary: true }, { vrrpState: "STOP", keepalivedActive: false }), undefined, onPrimary, 1, later);
const splitBrain = computeHAPairStatus(pair({ primary: true, secondary: true }), pairApplied, undefined, 1, now);
const noHolder = computeHAPairStatus(pair({ primary: false, secondary: false }, { vrrpState: "FAULT" }), pairApplied, undefined, 1, now);

function side(host: string, over: Partial<DhcpFailoverSideObservation> = {}): DhcpFailoverSideObservation {
  return { host, reachable: true, source: "omapi", localState: "normal", partnerState: "normal", dhcpdActive: true, pools: [], ...over };
}

function keaPeer(name: string, role: string, over: Partial<KeaPeerObservation> = {}): KeaPeerObservation {
  return { name, host: `${name}-host`, role, reachable: true, state: "hot-standby", inTouch: true, unackedClients: 0, ...over };
}

const facts: HostFacts = { os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1.0", services: [], interfaces: [], clockOffsetSeconds: 0.004, ntpSynchronized: true };

describe("ControllerMetrics", () => {
  it("publishes controller-runtime's names under ddi_ha_, the controller's counters from 0", async () => {
    const m = new ControllerMetrics();
    m.forQueue("namespace");
    const text = await m.registry.metrics();
    for (const name of [
      "ddi_ha_reconcile_total",
      "ddi_ha_reconcile_errors_total",
      "ddi_ha_reconcile_time_seconds",
      "ddi_ha_workqueue_depth",
      "ddi_ha_workqueue_adds_total",
      "ddi_ha_workqueue_retries_total",
      "ddi_ha_resource_ready",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    // Before any pass: absent() and rate() in the alert rules see a controller with nothing to do.
    expect(await series(m, "ddi_ha_reconcile_total")).toEqual([
      '{controller="namespace",result="error"} 0',
      '{controller="namespace",result="requeue"} 0',
      '{controller="namespace",result="success"} 0',
    ]);
    expect(await series(m, "ddi_ha_reconcile_errors_total")).toEqual(['{controller="namespace"} 0']);
    m.reconcileTotal.inc({ controller: "namespace", result: "success" });
    expect(await m.registry.metrics()).toContain('ddi_ha_reconcile_total{controller="namespace",result="success"} 1');
  });

  it("every status gauge is a gauge, with its HELP", async () => {
    const text = await new ControllerMetrics().registry.metrics();
    for (const name of [
      "ddi_ha_resource_stalled",
      "ddi_ha_hapair_split_brain",
      "ddi_ha_hapair_active_node",
      "ddi_ha_hapair_failover_count",
      "ddi_ha_dhcp_failover_state",
      "ddi_ha_dhcp_pool_leases",
      "ddi_ha_kea_health",
      "ddi_ha_kea_peer_state",
      "ddi_ha_host_reachable",
      "ddi_ha_host_clock_offset_seconds",
      "ddi_ha_host_ntp_synchronized",
    ]) {
      expect(text).toContain(`# TYPE ${name} gauge`);
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, "m"));
    }
    expect(text).toMatch(/# HELP ddi_ha_hapair_failover_count .*A gauge, not a counter/);
  });

  it("resource_ready and resource_stalled follow the namespace's objects: a deleted one loses its series", async () => {
    const m = new ControllerMetrics();
    const unreachable = computeDDIHostStatus({ host: "h2", reachable: false, failure: { kind: "HostKeyMismatch", message: "h2 changed its host key" } }, undefined, 1, now);
    m.publishNamespace("ns", [published("HAPair", "vip", onPrimary), published("DDIHost", "h2", unreachable)]);
    m.publishNamespace("other", [published("HAPair", "vip", onPrimary)]);
    expect(await series(m, "ddi_ha_resource_stalled")).toEqual([
      '{kind="DDIHost",namespace="ns",name="h2"} 1',
      '{kind="HAPair",namespace="ns",name="vip"} 0',
      '{kind="HAPair",namespace="other",name="vip"} 0',
    ]);
    m.publishNamespace("ns", [published("DDIHost", "h2", unreachable)]);
    expect(await series(m, "ddi_ha_resource_ready")).toEqual(['{kind="DDIHost",namespace="ns",name="h2"} 0', '{kind="HAPair",namespace="other",name="vip"} 1']);
    expect(await series(m, "ddi_ha_hapair_active_node")).toEqual(['{namespace="other",name="vip",node="primary"} 1']);
    m.publishNamespace("ns", []);
    m.publishNamespace("other", []);
    // Every per-object series is gone; only the controller's own counters remain.
    expect((await m.registry.metrics()).split("\n").filter((l) => l.startsWith("ddi_ha_") && l.includes("namespace="))).toEqual([]);
  });

  it("config_drift is 1 while driftPolicy Report leaves a drifted file, 0 when in sync", async () => {
    const m = new ControllerMetrics();
    const drifted = {
      ...onPrimary,
      conditions: [...(onPrimary.conditions ?? []).filter((c) => c.type !== "ConfigInSync"), { type: "ConfigInSync", status: "False" as const, reason: "DriftDetected", message: "h1:/etc/x differs", lastTransitionTime: "2026-01-01T00:00:00Z" }],
    };
    m.publishNamespace("ns", [published("HAPair", "vip", drifted), published("HAPair", "ok", onPrimary)]);
    expect(await series(m, "ddi_ha_config_drift")).toEqual(['{kind="HAPair",namespace="ns",name="ok"} 0', '{kind="HAPair",namespace="ns",name="vip"} 1']);
  });

  it("HAPair: split brain, the active node (only the current one) and the failover count from the computed status", async () => {
    const m = new ControllerMetrics();
    expect(failedOver.failoverCount).toBe(1);
    m.publishNamespace("ns", [published("HAPair", "a", onPrimary), published("HAPair", "b", splitBrain), published("HAPair", "c", noHolder)]);
    expect(await series(m, "ddi_ha_hapair_split_brain")).toEqual(['{namespace="ns",name="a"} 0', '{namespace="ns",name="b"} 1', '{namespace="ns",name="c"} 0']);
    expect(await series(m, "ddi_ha_hapair_active_node")).toEqual([
      '{namespace="ns",name="a",node="primary"} 1',
      '{namespace="ns",name="b",node="both"} 1',
      '{namespace="ns",name="c",node="none"} 1',
    ]);
    // The VIP moves: the primary's series goes, the secondary's comes, and the count follows status.
    m.publishNamespace("ns", [published("HAPair", "a", failedOver), published("HAPair", "b", splitBrain), published("HAPair", "c", noHolder)]);
    expect(await series(m, "ddi_ha_hapair_active_node")).toEqual([
      '{namespace="ns",name="a",node="secondary"} 1',
      '{namespace="ns",name="b",node="both"} 1',
      '{namespace="ns",name="c",node="none"} 1',
    ]);
    expect(await series(m, "ddi_ha_hapair_failover_count")).toContain('{namespace="ns",name="a"} 1');
    expect(await series(m, "ddi_ha_resource_ready")).toContain('{kind="HAPair",namespace="ns",name="a"} 0');
  });

  it("DhcpFailoverPeer: each side's state and the pool balance by kind", async () => {
    const m = new ControllerMetrics();
    const pools = [{ subnet: "198.18.0.0/24", total: 100, free: 40, backup: 45, lts: 0 }];
    const normal = computeDhcpFailoverPeerStatus({ peerName: "dfp", primary: side("dhcp-a", { pools }), secondary: side("dhcp-b") }, { results: [ok("dhcp-a"), ok("dhcp-b")] }, undefined, 1, now);
    m.publishNamespace("ns", [published("DhcpFailoverPeer", "dfp", normal)]);
    expect(await series(m, "ddi_ha_dhcp_failover_state")).toEqual(['{namespace="ns",name="dfp",side="primary",state="normal"} 1', '{namespace="ns",name="dfp",side="secondary",state="normal"} 1']);
    expect(await series(m, "ddi_ha_dhcp_pool_leases")).toEqual([
      '{namespace="ns",name="dfp",subnet="198.18.0.0/24",kind="backup"} 45',
      '{namespace="ns",name="dfp",subnet="198.18.0.0/24",kind="free"} 40',
      '{namespace="ns",name="dfp",subnet="198.18.0.0/24",kind="total"} 100',
    ]);
    // The secondary's dhcpd stops: it is unknown, the primary is communications-interrupted; the last pool balance stays.
    const interrupted = computeDhcpFailoverPeerStatus(
      { peerName: "dfp", primary: side("dhcp-a", { localState: "communications-interrupted" }), secondary: side("dhcp-b", { dhcpdActive: false, source: "none", localState: undefined }) },
      undefined,
      normal,
      1,
      later,
    );
    m.publishNamespace("ns", [published("DhcpFailoverPeer", "dfp", interrupted)]);
    expect(await series(m, "ddi_ha_dhcp_failover_state")).toEqual([
      '{namespace="ns",name="dfp",side="primary",state="communications-interrupted"} 1',
      '{namespace="ns",name="dfp",side="secondary",state="unknown"} 1',
    ]);
    expect(await series(m, "ddi_ha_dhcp_pool_leases")).toHaveLength(3);
  });

  it("KeaHACluster: the health and each peer's state", async () => {
    const m = new ControllerMetrics();
    const applied = { results: [ok("server1-host"), ok("server2-host")] };
    const serving = computeKeaHAClusterStatus({ mode: "hot-standby", configSync: "HAOnly", peers: [keaPeer("server1", "primary"), keaPeer("server2", "standby")] }, applied, undefined, 1, now);
    m.publishNamespace("ns", [published("KeaHACluster", "kea", serving)]);
    expect(await series(m, "ddi_ha_kea_health")).toEqual(['{namespace="ns",name="kea",health="OK"} 1']);
    const impaired = computeKeaHAClusterStatus(
      {
        mode: "hot-standby",
        configSync: "HAOnly",
        peers: [keaPeer("server1", "primary", { state: "partner-down", inTouch: false }), keaPeer("server2", "standby", { reachable: false, state: "unavailable" })],
      },
      undefined,
      serving,
      1,
      later,
    );
    m.publishNamespace("ns", [published("KeaHACluster", "kea", impaired)]);
    expect(await series(m, "ddi_ha_kea_health")).toEqual(['{namespace="ns",name="kea",health="Impaired"} 1']);
    expect(await series(m, "ddi_ha_kea_peer_state")).toEqual([
      '{namespace="ns",name="kea",peer="server1",state="partner-down"} 1',
      '{namespace="ns",name="kea",peer="server2",state="unavailable"} 1',
    ]);
  });

  it("DDIHost: reachable, clock offset and NTP; an unreachable host's stale clock is not published", async () => {
    const m = new ControllerMetrics();
    const skewed = computeDDIHostStatus({ host: "h1", reachable: true, facts: { ...facts, clockOffsetSeconds: -42.5, ntpSynchronized: false } }, undefined, 1, now);
    m.publishNamespace("ns", [published("DDIHost", "h1", skewed)]);
    expect(await series(m, "ddi_ha_host_reachable")).toEqual(['{namespace="ns",name="h1"} 1']);
    expect(await series(m, "ddi_ha_host_clock_offset_seconds")).toEqual(['{namespace="ns",name="h1"} -42.5']);
    expect(await series(m, "ddi_ha_host_ntp_synchronized")).toEqual(['{namespace="ns",name="h1"} 0']);
    const gone = computeDDIHostStatus({ host: "h1", reachable: false, failure: { kind: "Unreachable", message: "h1: connect ETIMEDOUT" } }, skewed, 1, later);
    expect(gone.clockOffsetSeconds).toBe(-42.5);
    m.publishNamespace("ns", [published("DDIHost", "h1", gone)]);
    expect(await series(m, "ddi_ha_host_reachable")).toEqual(['{namespace="ns",name="h1"} 0']);
    expect(await series(m, "ddi_ha_host_clock_offset_seconds")).toEqual([]);
    expect(await series(m, "ddi_ha_host_ntp_synchronized")).toEqual([]);
  });
});

describe("ddi_ha_applies_total and ddi_ha_watch_restarts_total", () => {
  it("counts one apply per host by what it did; drift checks and refused specs are not applies", async () => {
    const m = new ControllerMetrics();
    expect(await series(m, "ddi_ha_applies_total")).toContain('{kind="HAPair",result="changed"} 0');
    const written = { ...ok("h1"), changed: ["/etc/keepalived/keepalived.conf"] };
    const removed = { ...ok("h2"), removed: ["/etc/keepalived/conf.d/ddi-ha-old.conf"] };
    const rolledBack = { ...ok("h3"), ok: false, changed: ["/etc/keepalived/keepalived.conf"] };
    m.recordApplies("HAPair", { results: [written, removed, ok("h4"), rolledBack], errors: [{ host: "h5", message: "connect ECONNREFUSED" }] });
    // Not applies: a drift check that could not read a host, a spec refused before any host.
    m.recordApplies("HAPair", { errors: [{ host: "h1", message: "probe failed" }] });
    m.recordApplies("HAPair", { specProblems: ["spec.virtualRouterID: taken"] });
    m.recordApplies("HAPair", { drift: { checkedHosts: ["h1"], differing: [], policy: "Correct" } });
    const hapair = (await series(m, "ddi_ha_applies_total")).filter((l) => l.includes('"HAPair"'));
    expect(hapair).toEqual(['{kind="HAPair",result="changed"} 2', '{kind="HAPair",result="failed"} 2', '{kind="HAPair",result="unchanged"} 1']);
  });

  it("counts watch restarts per kind and reason, every reason starting at 0", async () => {
    const m = new ControllerMetrics();
    const restarted = m.forWatcher("HAPair");
    m.forWatcher("DDIHost");
    restarted("expired");
    restarted("unreachable");
    restarted("unreachable");
    const lines = await series(m, "ddi_ha_watch_restarts_total");
    expect(lines).toContain('{kind="HAPair",reason="expired"} 1');
    expect(lines).toContain('{kind="HAPair",reason="unreachable"} 2');
    expect(lines).toContain('{kind="HAPair",reason="error"} 0');
    expect(lines).toContain('{kind="DDIHost",reason="silent"} 0');
    expect(lines).toHaveLength(8);
  });
});
