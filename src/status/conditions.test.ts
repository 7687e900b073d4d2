import { describe, expect, it } from "vitest";
import type { ApplyResult } from "../apply/index.js";
import { judgeApply } from "./apply-outcome.js";
import { rfc3339, setCondition, setConditions } from "./conditions.js";

const t0 = new Date("2026-11-22T08:00:00.123Z");
const t1 = new Date("2026-11-22T08:05:00Z");

describe("setCondition", () => {
  const ready = { type: "Ready", status: "True" as const, reason: "VIPOnPrimary", message: "10.71.17.86/24 is on the primary" };

  it("stamps a new condition with the time (whole seconds) and generation", () => {
    expect(setCondition(undefined, ready, 3, t0)).toEqual([{ ...ready, observedGeneration: 3, lastTransitionTime: "2026-11-22T08:00:00Z" }]);
  });

  it("keeps lastTransitionTime when nothing but the generation changed", () => {
    const first = setCondition([], ready, 3, t0);
    expect(setCondition(first, ready, 4, t1)).toEqual([{ ...ready, observedGeneration: 4, lastTransitionTime: "2026-11-22T08:00:00Z" }]);
  });

  it.each([
    ["status", { status: "False" as const }],
    ["reason", { reason: "VIPOnSecondary" }],
    ["message", { message: "10.71.17.86/24 is on the secondary" }],
  ])("moves lastTransitionTime when the %s changes", (_what, change) => {
    const first = setCondition([], ready, 3, t0);
    expect(setCondition(first, { ...ready, ...change }, 3, t1)[0]!.lastTransitionTime).toBe("2026-11-22T08:05:00Z");
  });

  it.each(["Reconciling", "Stalled", "SplitBrain", "PartnerDown", "CommunicationsInterrupted"])("%s exists only while True", (type) => {
    const on = setCondition([], { type, status: "True", reason: "X", message: "m" }, 1, t0);
    expect(on).toHaveLength(1);
    expect(setCondition(on, { type, status: "False", reason: "X", message: "" }, 1, t1)).toEqual([]);
    expect(setCondition([], { type, status: "Unknown", reason: "X", message: "" }, 1, t1)).toEqual([]);
  });

  it("does not modify the list it was given", () => {
    const list = setCondition([], ready, 1, t0);
    const copy = structuredClone(list);
    setCondition(list, { ...ready, status: "False" }, 2, t1);
    expect(list).toEqual(copy);
  });

  it("setConditions puts Ready first and keeps the others in order", () => {
    const list = setConditions(
      [],
      [
        { type: "ConfigApplied", status: "True", reason: "Applied", message: "" },
        { type: "VIPAssigned", status: "True", reason: "HeldByPrimary", message: "" },
        ready,
      ],
      1,
      t0,
    );
    expect(list.map((c) => c.type)).toEqual(["Ready", "ConfigApplied", "VIPAssigned"]);
  });

  it("rfc3339 drops the milliseconds", () => {
    expect(rfc3339(t0)).toBe("2026-11-22T08:00:00Z");
  });
});

const okResult = (host: string, changed: string[] = []): ApplyResult => ({ host, changed, unchanged: [], removed: [], reloaded: [], ok: true, notes: [] });

describe("judgeApply", () => {
  it("without an apply in this pass, says nothing about ConfigApplied", () => {
    expect(judgeApply(undefined, "HAPair")).toEqual({ changed: false });
  });

  it("all hosts ok: ConfigApplied True with a message that does not depend on what changed", () => {
    const changed = judgeApply({ results: [okResult("a", ["/etc/keepalived/keepalived.conf"]), okResult("b")] }, "HAPair");
    const same = judgeApply({ results: [okResult("a"), okResult("b")] }, "HAPair");
    expect(changed.configApplied).toEqual({ type: "ConfigApplied", status: "True", reason: "Applied", message: "the config on a, b matches the spec" });
    expect(same.configApplied).toEqual(changed.configApplied);
    expect(changed.changed).toBe(true);
    expect(same.changed).toBe(false);
  });

  it.each([
    [
      "a checker rejection stalls",
      { results: [{ ...okResult("a"), ok: false, failure: { stage: "validate" as const, message: "keepalived -t rejected ddi-ha.d/ns_p.conf", checkerOutput: "\nline 4: unknown keyword\n" } }] },
      { configApplied: { status: "False", reason: "ConfigRejected" }, stalled: { status: "True", reason: "ConfigRejected" } },
      /a: keepalived -t rejected ddi-ha.d\/ns_p.conf \(line 4: unknown keyword\)/,
    ],
    [
      "a spec problem stalls",
      { specProblems: ["spec.virtualRouterID 51 is also used by HAPair ns/other on the same subnet"] },
      { configApplied: { reason: "InvalidSpec" }, stalled: { reason: "InvalidSpec" } },
      /virtualRouterID 51 is also used/,
    ],
    [
      "a failed reload is transient and mentions the rollback",
      {
        results: [
          okResult("a"),
          { ...okResult("b"), ok: false, failure: { stage: "verify" as const, message: "keepalived.service did not stay active" }, rolledBack: { ok: true, message: "restored" } },
        ],
      },
      { configApplied: { status: "False", reason: "ApplyFailed" } },
      /b: verify failed: keepalived.service did not stay active \(rolled back: restored\); the operator retries/,
    ],
    [
      "an unreachable host is transient",
      { results: [okResult("a")], errors: [{ host: "b", message: "cannot reach b (root@198.18.0.12:22): timed out" }] },
      { configApplied: { status: "False", reason: "HostUnreachable" } },
      /cannot reach b/,
    ],
  ])("%s", (_name, outcome, expected, message) => {
    const verdict = judgeApply(outcome, "HAPair");
    expect(verdict).toMatchObject(expected);
    expect(verdict.configApplied?.message).toMatch(message);
    if (!("stalled" in expected)) expect(verdict.stalled).toBeUndefined();
  });

  it("a busy host lock means Reconciling, and leaves ConfigApplied as it was", () => {
    const verdict = judgeApply({ results: [{ ...okResult("a"), ok: false, failure: { stage: "lock", message: "busy" } }] }, "HAPair");
    expect(verdict.configApplied).toBeUndefined();
    expect(verdict.reconciling).toMatchObject({ status: "True", reason: "HostBusy", message: "waiting for another apply to finish on a" });
  });
});
