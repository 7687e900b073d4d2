import { describe, expect, it } from "vitest";
import { failoverDrillSpecSchema, keaHAClusterSpecSchema } from "../api/index.js";
import { type KeaDrillObservation, type KeaRunState, keaPreflight, keaPreflightObservation, keaRunRecord, stepKeaRestoring, stepKeaRunning } from "./kea-machine.js";

const spec = (extra: Record<string, unknown> = {}) =>
  failoverDrillSpecSchema.parse({ target: { kind: "KeaHACluster", name: "kea" }, method: "KeaMaintenance", objective: "10s", timeout: "30s", ...extra });

const cluster = (mode: "hot-standby" | "load-balancing" | "passive-backup") =>
  keaHAClusterSpecSchema.parse({
    mode,
    peers: [
      { name: "server1", host: "h1", role: "primary" },
      { name: "server2", host: "h2", role: mode === "hot-standby" ? "standby" : mode === "load-balancing" ? "secondary" : "backup" },
    ],
    dhcp4: { subnet4: [] },
  });
const observed = (state: string, second = state) => [
  { name: "server1", host: "h1", role: "primary", state, reachable: true },
  { name: "server2", host: "h2", role: "standby", state: second, reachable: true },
];

describe("the pre-flight check", () => {
  it("breaks the primary and expects the standby (hot-standby) or the secondary (load-balancing) to take over", () => {
    expect(keaPreflight("kea", { exists: true, ready: true, spec: cluster("hot-standby"), peers: observed("hot-standby") })).toEqual({
      ok: true,
      activePeer: "server1",
      activeHost: "h1",
      survivorPeer: "server2",
      survivorHost: "h2",
      normalState: "hot-standby",
    });
    expect(keaPreflight("kea", { exists: true, ready: true, spec: cluster("load-balancing"), peers: observed("load-balancing") })).toMatchObject({ ok: true, survivorPeer: "server2", normalState: "load-balancing" });
  });

  it("after a planned switchover (spec.preferredPrimary) breaks the peer that runs as primary: server2", () => {
    const switched = { ...cluster("hot-standby"), preferredPrimary: "server2" };
    expect(keaPreflight("kea", { exists: true, ready: true, spec: switched, peers: observed("hot-standby") })).toMatchObject({ ok: true, activePeer: "server2", activeHost: "h2", survivorPeer: "server1", survivorHost: "h1" });
  });

  it("refuses passive-backup, a cluster that is not Ready, and a peer not in the normal state, touching nothing", () => {
    const passive = keaPreflight("kea", { exists: true, ready: true, spec: cluster("passive-backup"), peers: observed("passive-backup", "backup") });
    expect(passive).toMatchObject({ ok: false });
    expect(!passive.ok && passive.message).toContain("passive-backup, where no peer takes over");
    const notReady = keaPreflight("kea", { exists: true, ready: false, readyMessage: "server2 unreachable", spec: cluster("hot-standby"), peers: observed("hot-standby") });
    expect(!notReady.ok && notReady.message).toBe("refused: KeaHACluster kea is not Ready (server2 unreachable); nothing was touched");
    const partnerDown = keaPreflight("kea", { exists: true, ready: true, spec: cluster("hot-standby"), peers: observed("hot-standby", "partner-down") });
    expect(!partnerDown.ok && partnerDown.message).toBe("refused: server2 is in partner-down, not hot-standby; nothing was touched");
    expect(keaPreflight("kea", { exists: false, ready: false })).toMatchObject({ ok: false });
  });

  it("checks the peers' own answers just before the break", () => {
    const peers = { activePeer: "server1", activeHost: "h1", survivorPeer: "server2", survivorHost: "h2", normalState: "hot-standby" as const };
    expect(keaPreflightObservation(peers, { activeAnswers: true, peerAnswers: true, activeState: "hot-standby", peerState: "hot-standby" })).toBeUndefined();
    expect(keaPreflightObservation(peers, { activeAnswers: true, peerAnswers: false, activeState: "hot-standby", peerState: "unavailable" })).toBe(
      "refused: server2 on h2 does not answer status-get; nothing was touched",
    );
  });
});

const T0 = 5_000_000;
const running: KeaRunState = { runID: "r1", phase: "Running", activePeer: "server1", activeHost: "h1", survivorPeer: "server2", survivorHost: "h2", normalState: "hot-standby", startMs: T0 - 400, breakMs: T0 };
const seen = (activeState: string, peerState: string, answers = true): KeaDrillObservation => ({ activeAnswers: answers, peerAnswers: answers, activeState, peerState });

describe("Running and Restoring", () => {
  it("measures until the partner is in partner-in-maintenance, then restores; back when both are hot-standby", () => {
    const a = stepKeaRunning(spec(), running, seen("hot-standby", "hot-standby"), T0 + 300);
    expect(a.phase).toBe("Running");
    const b = stepKeaRunning(spec(), a, seen("in-maintenance", "partner-in-maintenance"), T0 + 1_250);
    expect(b).toMatchObject({ phase: "Restoring", servingOnPeerMs: T0 + 1_250, outcome: { result: "Succeeded", reason: "Succeeded" } });
    const restoring = { ...b, restoreMs: T0 + 1_500 };
    expect(stepKeaRestoring(spec(), restoring, seen("waiting", "partner-in-maintenance"), T0 + 2_000).phase).toBe("Restoring");
    const done = stepKeaRestoring(spec(), restoring, seen("hot-standby", "hot-standby"), T0 + 4_000);
    expect(done).toMatchObject({ phase: "Done", recoveredMs: T0 + 4_000 });
    const record = keaRunRecord(spec(), done, T0 + 4_100);
    expect(record).toMatchObject({ result: "Succeeded", activeHost: "h1", peerHost: "h2", servingOnPeerSeconds: 1.25, recoverySeconds: 1.25, recoveredSeconds: 4, objectiveSeconds: 10 });
    expect(record.message).toBe("recovered in 1.25 s, within the objective of 10s (server2 in partner-in-maintenance after 1.25 s; both in hot-standby after 4 s)");
    expect(failoverDrillSpecSchema.safeParse(spec()).success).toBe(true);
  });

  it("a take-over slower than the objective is Failed MissedObjective; none within spec.timeout is RoleNotMoved", () => {
    expect(stepKeaRunning(spec({ objective: "1s" }), running, seen("in-maintenance", "partner-in-maintenance"), T0 + 1_500).outcome).toMatchObject({ result: "Failed", reason: "MissedObjective" });
    const stuck = stepKeaRunning(spec(), running, seen("hot-standby", "hot-standby"), T0 + 31_000);
    expect(stuck).toMatchObject({ phase: "Restoring", outcome: { result: "Failed", reason: "RoleNotMoved" } });
    expect(stuck.outcome!.message).toBe("server2 did not reach partner-in-maintenance within spec.timeout 30s (it is in hot-standby; server1 is in hot-standby)");
  });

  it("aborts when the partner stops answering, and fails NotRecovered when the peers do not come back", () => {
    expect(stepKeaRunning(spec(), running, seen("unavailable", "unavailable", false), T0 + 500).outcome).toMatchObject({ result: "Aborted", reason: "PeerNotHealthy" });
    const restoring: KeaRunState = { ...running, phase: "Restoring", servingOnPeerMs: T0 + 1_000, restoreMs: T0 + 2_000, outcome: { result: "Succeeded", reason: "Succeeded", message: "recovered in 1 s" } };
    const late = stepKeaRestoring(spec(), restoring, seen("in-maintenance", "partner-in-maintenance"), T0 + 33_000);
    expect(late).toMatchObject({ phase: "Done", outcome: { result: "Failed", reason: "NotRecovered" } });
    expect(late.outcome!.message).toContain("not both back in hot-standby within spec.timeout 30s after the maintenance was cancelled (server1 in-maintenance, server2 partner-in-maintenance)");
  });
});

describe("admission rules", () => {
  it("a KeaHACluster drill takes KeaMaintenance and no DNS service check; an HAPair drill never takes KeaMaintenance", () => {
    const problems = (s: Record<string, unknown>) => {
      const r = failoverDrillSpecSchema.safeParse(s);
      return r.success ? [] : r.error.issues.map((i) => i.message);
    };
    const base = { objective: "10s" };
    expect(problems({ ...base, target: { kind: "KeaHACluster", name: "kea" }, method: "KeaMaintenance" })).toEqual([]);
    expect(problems({ ...base, target: { kind: "KeaHACluster", name: "kea" }, method: "StopPrimaryDaemon" }).join()).toContain("spec.method must be KeaMaintenance for a KeaHACluster");
    expect(problems({ ...base, target: { kind: "KeaHACluster", name: "kea" }, method: "KeaMaintenance", serviceCheck: { dnsName: "example.org" } }).join()).toContain("a KeaHACluster has no VIP");
    expect(problems({ ...base, target: { kind: "HAPair", name: "vip" }, method: "KeaMaintenance" }).join()).toContain("spec.method must be StopPrimaryDaemon or CutHostNetwork for an HAPair");
  });
});
