import { describe, expect, it } from "vitest";
import { failoverDrillSpecSchema } from "../api/index.js";
import { type DrillObservation, type RunState, preflight, preflightObservation, recovered, runRecord, schedule, stepRestoring, stepRunning, withRun } from "./machine.js";
import { drillStatus } from "./status.js";

const spec = (extra: Record<string, unknown> = {}) =>
  failoverDrillSpecSchema.parse({ target: { kind: "HAPair", name: "dns-vip" }, method: "StopPrimaryDaemon", objective: "10s", timeout: "30s", ...extra });

const healthy: DrillObservation = {
  activeReachable: true,
  peerReachable: true,
  vipOnActive: true,
  vipOnPeer: false,
  keepalivedActiveOnActive: true,
  keepalivedActiveOnPeer: true,
};
const T0 = 1_000_000;
const running: RunState = { runID: "r1", phase: "Running", activeHost: "h1", peerHost: "h2", startMs: T0 - 500, breakMs: T0 };
const broken: DrillObservation = { ...healthy, vipOnActive: false, keepalivedActiveOnActive: false };

describe("Running", () => {
  it("keeps observing until the VIP is on the peer, then restores with Succeeded and the measured time", () => {
    const a = stepRunning(spec(), running, broken, T0 + 1_000);
    expect(a.action).toBe("observe");
    expect(a.state.vipOnPeerMs).toBeUndefined();
    const b = stepRunning(spec(), a.state, { ...broken, vipOnPeer: true }, T0 + 3_250);
    expect(b.action).toBe("restore");
    expect(b.state).toMatchObject({ phase: "Restoring", vipOnPeerMs: T0 + 3_250, outcome: { result: "Succeeded", reason: "Succeeded" } });
  });

  it("with a service check, waits for an answer that comes while the VIP is on the peer", () => {
    const s = spec({ serviceCheck: { dnsName: "localhost" } });
    // An answer before the VIP moved may still come from the broken node: not counted.
    const a = stepRunning(s, running, { ...broken, serviceAnswers: true }, T0 + 500);
    expect(a.state.serviceAnswersMs).toBeUndefined();
    const b = stepRunning(s, a.state, { ...broken, vipOnPeer: true, serviceAnswers: false }, T0 + 3_000);
    expect(b.action).toBe("observe");
    // An answer to a query sent before the VIP was seen on the peer (its loop is slower): not counted either.
    const stale = stepRunning(s, b.state, { ...broken, vipOnPeer: true, serviceAnswers: true, serviceCheckedSinceMs: T0 + 2_500 }, T0 + 3_200);
    expect(stale.state.serviceAnswersMs).toBeUndefined();
    const c = stepRunning(s, stale.state, { ...broken, vipOnPeer: true, serviceAnswers: true, serviceCheckedSinceMs: T0 + 3_050 }, T0 + 3_400);
    expect(c.state).toMatchObject({ vipOnPeerMs: T0 + 3_000, serviceAnswersMs: T0 + 3_400, outcome: { result: "Succeeded" } });
  });

  it("a recovery slower than the objective is Failed with MissedObjective", () => {
    const r = stepRunning(spec({ objective: "2s" }), running, { ...broken, vipOnPeer: true }, T0 + 2_001);
    expect(r.state.outcome).toMatchObject({ result: "Failed", reason: "MissedObjective" });
    expect(r.state.outcome!.message).toContain("over the objective of 2s");
  });

  it("aborts and restores when the peer becomes unhealthy or unreachable", () => {
    for (const obs of [{ ...broken, keepalivedActiveOnPeer: false }, { ...broken, peerReachable: false }]) {
      const r = stepRunning(spec(), running, obs, T0 + 1_000);
      expect(r.action).toBe("restore");
      expect(r.state.outcome).toMatchObject({ result: "Aborted", reason: "PeerNotHealthy" });
    }
  });

  it("restores with VIPNotMoved or ServiceNotAnswering after spec.timeout", () => {
    expect(stepRunning(spec(), running, broken, T0 + 30_000).action).toBe("observe");
    expect(stepRunning(spec(), running, broken, T0 + 30_001).state.outcome?.reason).toBe("VIPNotMoved");
    const s = spec({ serviceCheck: { dnsName: "localhost" } });
    const moved = stepRunning(s, running, { ...broken, vipOnPeer: true, serviceAnswers: false }, T0 + 3_000).state;
    expect(stepRunning(s, moved, { ...broken, vipOnPeer: true, serviceAnswers: false }, T0 + 31_000).state.outcome?.reason).toBe("ServiceNotAnswering");
  });
});

describe("Restoring", () => {
  const restoring: RunState = { ...running, phase: "Restoring", vipOnPeerMs: T0 + 3_000, restoreMs: T0 + 3_100, outcome: { result: "Succeeded", reason: "Succeeded", message: "recovered in 3 s" } };
  const back = { vipBackOnActive: true };

  it("finishes when keepalived is active on both and the VIP is back on the broken node alone", () => {
    expect(stepRestoring(spec(), restoring, { ...healthy, vipOnPeer: true }, T0 + 4_000, back).action).toBe("observe");
    const done = stepRestoring(spec(), restoring, healthy, T0 + 5_500, back);
    expect(done).toMatchObject({ action: "finish", state: { phase: "Done", recoveredMs: T0 + 5_500 } });
    const run = runRecord(spec(), done.state, T0 + 5_600);
    expect(run).toMatchObject({ result: "Succeeded", vipOnPeerSeconds: 3, recoverySeconds: 3, recoveredSeconds: 5.5, objectiveSeconds: 10, activeHost: "h1", peerHost: "h2" });
    expect(run.message).toContain("everything back after 5.5 s");
  });

  it("without preempt, the VIP may stay on the peer", () => {
    expect(recovered(spec(), restoring, { ...healthy, vipOnActive: false, vipOnPeer: true }, { vipBackOnActive: false })).toBe(true);
    expect(recovered(spec(), restoring, { ...healthy, vipOnActive: true, vipOnPeer: true }, { vipBackOnActive: false })).toBe(false);
  });

  it("an aborted run only needs the broken node back", () => {
    const aborted: RunState = { ...restoring, outcome: { result: "Aborted", reason: "PeerNotHealthy", message: "aborted" } };
    expect(recovered(spec(), aborted, { ...healthy, keepalivedActiveOnPeer: false }, back)).toBe(true);
  });

  it("turns into Failed NotRecovered when nothing is back within spec.timeout of the undo", () => {
    const r = stepRestoring(spec(), restoring, { ...healthy, keepalivedActiveOnActive: false }, T0 + 3_100 + 30_001, back);
    expect(r.action).toBe("finish");
    expect(r.state.outcome).toMatchObject({ result: "Failed", reason: "NotRecovered" });
    expect(r.state.outcome!.message).toMatch(/^recovered in 3 s; but the pair did not recover/);
  });
});

describe("pre-flight", () => {
  const pair = {
    exists: true,
    ready: true,
    activeNode: "primary",
    primaryHost: "h1",
    secondaryHost: "h2",
    nodes: [
      { host: "h1", role: "primary", vrrpState: "MASTER", holdsVIP: true, servicesHealthy: true },
      { host: "h2", role: "secondary", vrrpState: "BACKUP", holdsVIP: false, servicesHealthy: true },
    ],
  };
  it("breaks the node that holds the VIP and expects its peer to take over", () => {
    expect(preflight("dns-vip", pair)).toEqual({ ok: true, activeHost: "h1", peerHost: "h2" });
    const swapped = { ...pair, activeNode: "secondary", nodes: [{ ...pair.nodes[0]!, vrrpState: "BACKUP" }, { ...pair.nodes[1]!, vrrpState: "MASTER" }] };
    expect(preflight("dns-vip", swapped)).toEqual({ ok: true, activeHost: "h2", peerHost: "h1" });
  });
  it("refuses a pair that is missing, not Ready, split or without a healthy BACKUP peer", () => {
    expect(preflight("dns-vip", { ...pair, exists: false })).toMatchObject({ ok: false, message: expect.stringContaining("does not exist") });
    expect(preflight("dns-vip", { ...pair, ready: false, readyMessage: "keepalived is not running on h2" })).toMatchObject({
      ok: false,
      message: "refused: HAPair dns-vip is not Ready (keepalived is not running on h2); nothing was touched",
    });
    expect(preflight("dns-vip", { ...pair, activeNode: "both" })).toMatchObject({ ok: false });
    expect(preflight("dns-vip", { ...pair, nodes: [pair.nodes[0]!, { ...pair.nodes[1]!, vrrpState: "FAULT" }] })).toMatchObject({ ok: false, message: expect.stringContaining("vrrpState FAULT") });
  });
  it("checks the hosts themselves just before the break", () => {
    expect(preflightObservation(spec(), "h1", "h2", healthy)).toBeUndefined();
    expect(preflightObservation(spec(), "h1", "h2", { ...healthy, vipOnPeer: true })).toBe("refused: h2 holds the VIP too; nothing was touched");
    expect(preflightObservation(spec({ serviceCheck: { dnsName: "localhost" } }), "h1", "h2", { ...healthy, serviceAnswers: false })).toContain("no DNS answer for localhost");
  });
});

describe("schedule and history", () => {
  const created = new Date("2026-12-07T00:00:00Z");
  it("runs a drill without a schedule once", () => {
    expect(schedule({}, created, undefined, 0, new Date())).toEqual({ due: true });
    expect(schedule({}, created, "2026-12-07T00:00:01Z", 1, new Date())).toEqual({ due: false });
  });
  it("runs at the first scheduled time after the last run, once for several missed times", () => {
    const hourly = { schedule: "0 * * * *" };
    expect(schedule(hourly, created, undefined, 0, new Date("2026-12-07T00:59:00Z"))).toEqual({ due: false, next: new Date("2026-12-07T01:00:00Z") });
    expect(schedule(hourly, created, undefined, 0, new Date("2026-12-07T03:30:00Z"))).toEqual({ due: true, next: new Date("2026-12-07T04:00:00Z") });
    expect(schedule(hourly, created, "2026-12-07T03:30:00Z", 1, new Date("2026-12-07T03:31:00Z"))).toEqual({ due: false, next: new Date("2026-12-07T04:00:00Z") });
  });
  it("keeps the newest historyLimit runs, newest first", () => {
    const run = (id: string) => ({ runID: id, startTime: "", result: "Succeeded" as const, reason: "Succeeded", message: "" });
    expect(withRun([run("b"), run("a")], run("c"), 2).map((r) => r.runID)).toEqual(["c", "b"]);
  });
  it("refuses a cron expression croner rejects, naming the field", () => {
    const r = failoverDrillSpecSchema.safeParse({ target: { kind: "HAPair", name: "x" }, method: "StopPrimaryDaemon", objective: "10s", schedule: "61 * * * *" });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toMatch(/^spec.schedule: .*minute/);
  });
});

describe("conditions", () => {
  const now = new Date("2026-12-07T01:00:00Z");
  it("Ready and Succeeded follow the last run; Reconciling is there while a run is in progress", () => {
    const runningStatus = drillStatus(undefined, { phase: "Running" }, 1, now);
    expect(runningStatus.conditions?.find((c) => c.type === "Reconciling")?.status).toBe("True");
    const failed = drillStatus(runningStatus, { phase: "Failed", runs: [{ runID: "r", startTime: "", result: "Failed", reason: "MissedObjective", message: "recovered in 12 s" }] }, 1, now);
    expect(failed.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Ready", "False", "MissedObjective"],
      ["Succeeded", "False", "MissedObjective"],
    ]);
  });
});
