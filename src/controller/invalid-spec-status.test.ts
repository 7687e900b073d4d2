import { describe, expect, it } from "vitest";
import { invalidSpecLines, invalidSpecStatus } from "./invalid-spec-status.js";

const item = {
  kind: "KeaHACluster",
  metadata: { name: "k", namespace: "ns", generation: 3 },
  status: { health: "OK", observedGeneration: 2, conditions: [{ type: "Ready", status: "True" as const, reason: "Ready", message: "ok", observedGeneration: 2, lastTransitionTime: "2026-01-01T00:00:00Z" }] },
};
const problem = { severity: "error" as const, resource: "KeaHACluster ns/k", source: "kube-apiserver", path: "spec.dhcp4", message: "spec.dhcp4 must not have a key" };

describe("the status of a spec only the operator refuses", () => {
  it("names its own errors only", () => {
    expect(invalidSpecLines(item, [problem, { ...problem, resource: "KeaHACluster ns/other" }, { ...problem, severity: "warning" as const }])).toEqual(["spec.dhcp4: spec.dhcp4 must not have a key"]);
    expect(invalidSpecLines(item, [])).toEqual([]);
  });

  it("is Ready False, Stalled True, ConfigApplied False (InvalidSpec) at the new generation, the rest kept", () => {
    const s = invalidSpecStatus(item, ["spec.dhcp4: bad"], new Date("2026-02-01T00:00:00Z")) as { health: string; observedGeneration: number; conditions: { type: string; status: string; reason: string; message: string; observedGeneration: number }[] };
    expect(s.health).toBe("OK");
    expect(s.observedGeneration).toBe(3);
    const byType = Object.fromEntries(s.conditions.map((c) => [c.type, c]));
    expect(byType.Ready).toMatchObject({ status: "False", reason: "InvalidSpec", observedGeneration: 3 });
    expect(byType.Stalled).toMatchObject({ status: "True", reason: "InvalidSpec", message: "the spec is refused, nothing is applied: spec.dhcp4: bad" });
    expect(byType.ConfigApplied).toMatchObject({ status: "False", reason: "InvalidSpec" });
  });
});
