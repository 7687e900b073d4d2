import { describe, expect, it } from "vitest";
import { needsApply, statusMergePatch, statusPatchIfChanged } from "./kube-status.js";

const cond = (type: string, status: string, reason = "R", message = "m") => ({ type, status, reason, message });

describe("statusMergePatch", () => {
  it("nulls the top-level fields the new status no longer has, and replaces arrays whole", () => {
    const previous = { observedGeneration: 1, pools: [{ subnet: "a" }], conditions: [cond("Ready", "False"), cond("Reconciling", "True")] };
    const next = { observedGeneration: 2, conditions: [cond("Ready", "True")] };
    expect(statusMergePatch(previous, next)).toEqual({ status: { observedGeneration: 2, conditions: [cond("Ready", "True")], pools: null } });
  });

  it("is the status itself when there was none", () => {
    expect(statusMergePatch(undefined, { activeNode: "primary" })).toEqual({ status: { activeNode: "primary" } });
  });
});

describe("needsApply", () => {
  const item = (generation: number, status?: object) => ({ metadata: { name: "x", generation }, status: status as Record<string, unknown> | undefined });
  it.each([
    ["never applied (no status)", item(1), true],
    ["a spec newer than the status", item(2, { observedGeneration: 1, conditions: [cond("ConfigApplied", "True")] }), true],
    ["applied and current", item(2, { observedGeneration: 2, conditions: [cond("ConfigApplied", "True")] }), false],
    ["a host was unreachable: retried", item(1, { observedGeneration: 1, conditions: [cond("ConfigApplied", "False", "HostUnreachable")] }), true],
    ["an apply failed: retried", item(1, { observedGeneration: 1, conditions: [cond("ConfigApplied", "False", "ApplyFailed")] }), true],
    ["the daemon refused the config: not retried", item(1, { observedGeneration: 1, conditions: [cond("ConfigApplied", "False", "ConfigRejected")] }), false],
    ["the spec cannot render: not retried", item(1, { observedGeneration: 1, conditions: [cond("ConfigApplied", "False", "InvalidSpec")] }), false],
    ["a DDIHost it names does not exist yet: retried", item(1, { observedGeneration: 1, conditions: [cond("ConfigApplied", "False", "ReferenceNotFound")] }), true],
    ["no such object", undefined, false],
  ] as const)("%s", (_name, it_, expected) => {
    expect(needsApply(it_)).toBe(expected);
  });
});

describe("statusPatchIfChanged", () => {
  it("is undefined when the computed status equals the stored one, undefined fields aside", () => {
    expect(statusPatchIfChanged({ activeNode: "primary", conditions: [cond("Ready", "True")] }, { activeNode: "primary", failoverCount: undefined, conditions: [cond("Ready", "True")] })).toBeUndefined();
  });

  it("is the merge patch when anything differs", () => {
    expect(statusPatchIfChanged({ activeNode: "primary", pools: [] }, { activeNode: "secondary" })).toEqual({ status: { activeNode: "secondary", pools: null } });
  });
});
