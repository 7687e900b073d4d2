// What an apply outcome (or the lack of one) does to each relationship kind's conditions over
// several passes: a refusal stands until the spec changes, a missing reference is retried.
import { describe, expect, it } from "vitest";
import type { ApplyResult } from "../apply/index.js";
import type { Condition } from "../api/index.js";
import type { DhcpFailoverSideObservation } from "../observe/dhcpd-failover.js";
import { type ApplyOutcome, judgeApply } from "./apply-outcome.js";
import { findCondition } from "./conditions.js";
import { computeDhcpFailoverPeerStatus } from "./dhcpfailoverpeer.js";
import { computeHAPairStatus, type HAPairNodeInput } from "./hapair.js";
import { computeKeaHAClusterStatus } from "./keahacluster.js";

const first = new Date("2026-11-22T09:00:00Z");
const second = new Date("2026-11-22T09:01:00Z");
const third = new Date("2026-11-22T09:02:00Z");

function haNode(role: "primary" | "secondary"): HAPairNodeInput {
  return { host: `h-${role}`, role, interface: "eth0", reachable: true, keepalivedActive: true, vrrpState: role === "primary" ? "MASTER" : "BACKUP", holdsVIP: role === "primary", interfaceFound: true, services: [] };
}
const dhcpSide = (host: string): DhcpFailoverSideObservation => ({ host, reachable: true, source: "omapi", localState: "normal", partnerState: "normal", dhcpdActive: true, pools: [] });

type Compute = (outcome: ApplyOutcome | undefined, previous: { conditions?: Condition[] } | undefined, generation: number, now: Date) => { conditions?: Condition[] };
const kinds: [string, Compute][] = [
  ["HAPair", (o, p, g, n) => computeHAPairStatus({ vip: "10.0.0.5/24", nodes: [haNode("primary"), haNode("secondary")], requiredServices: [], preempt: true }, o, p, g, n)],
  ["DhcpFailoverPeer", (o, p, g, n) => computeDhcpFailoverPeerStatus({ peerName: "dhcp", primary: dhcpSide("a"), secondary: dhcpSide("b") }, o, p, g, n)],
  [
    "KeaHACluster",
    (o, p, g, n) =>
      computeKeaHAClusterStatus(
        { mode: "hot-standby", configSync: "HAOnly", peers: [{ name: "s1", host: "a", role: "primary", reachable: true, state: "hot-standby" }, { name: "s2", host: "b", role: "standby", reachable: true, state: "hot-standby" }] },
        o,
        p,
        g,
        n,
      ),
  ],
];

const rejected: ApplyResult = { host: "a", changed: [], unchanged: [], removed: [], reloaded: [], ok: false, notes: [], failure: { stage: "validate", message: "the checker said no" } };

describe.each(kinds)("%s: a refusal of the spec lasts until the spec changes", (_kind, compute) => {
  it.each([
    ["InvalidSpec", { specProblems: ["spec.virtualRouterID: collides with HAPair ns/other"] }],
    ["ConfigRejected", { results: [rejected] }],
  ] as const)("%s: Stalled stays True with the same lastTransitionTime in the passes that skip the apply", (reason, outcome) => {
    const refused = compute(outcome, undefined, 3, first);
    // needsApply skips the apply of a refused generation: no outcome in the next passes.
    const next = compute(undefined, refused, 3, second);
    const after = compute(undefined, next, 3, third);
    for (const status of [refused, next, after]) {
      expect(findCondition(status.conditions, "Stalled")).toMatchObject({ status: "True", reason, lastTransitionTime: "2026-11-22T09:00:00Z" });
      expect(findCondition(status.conditions, "ConfigApplied")).toMatchObject({ status: "False", reason, lastTransitionTime: "2026-11-22T09:00:00Z" });
      expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "False", reason, lastTransitionTime: "2026-11-22T09:00:00Z" });
    }
    expect(after.conditions).toEqual(refused.conditions);
  });

  it("a new generation that was not applied yet is not Stalled by the old refusal", () => {
    const refused = compute({ specProblems: ["bad"] }, undefined, 3, first);
    const changed = compute(undefined, refused, 4, second);
    expect(findCondition(changed.conditions, "Stalled")).toBeUndefined();
  });

  it("a DDIHost that does not exist yet: Ready False, ReferenceNotFound, not Stalled; applied once it appears", () => {
    const waiting = compute({ unresolvedReferences: ['spec.primary.host: DDIHost "a" not found in namespace "ns"'] }, undefined, 1, first);
    expect(findCondition(waiting.conditions, "Stalled")).toBeUndefined();
    expect(findCondition(waiting.conditions, "ConfigApplied")).toMatchObject({ status: "False", reason: "ReferenceNotFound" });
    const ready = findCondition(waiting.conditions, "Ready")!;
    expect(ready).toMatchObject({ status: "False" });
    expect(ready.message).toContain('DDIHost "a" not found');
    const applied = compute({ results: [{ ...rejected, ok: true, failure: undefined }] }, waiting, 1, second);
    expect(findCondition(applied.conditions, "ConfigApplied")).toMatchObject({ status: "True", reason: "Applied" });
  });
});

describe("judgeApply without an outcome", () => {
  const conditions = (reason: string, observedGeneration: number): Condition[] => [
    { type: "ConfigApplied", status: "False", reason, message: "m", observedGeneration, lastTransitionTime: "2026-11-22T09:00:00Z" },
    { type: "Stalled", status: "True", reason, message: "m", observedGeneration, lastTransitionTime: "2026-11-22T09:00:00Z" },
  ];
  it("re-states a refusal of the same generation", () => {
    expect(judgeApply(undefined, "HAPair", { conditions: conditions("ConfigRejected", 2), observedGeneration: 2 }, 2)).toMatchObject({
      configApplied: { status: "False", reason: "ConfigRejected", message: "m" },
      stalled: { status: "True", reason: "ConfigRejected", message: "m" },
      changed: false,
    });
  });
  it.each([
    ["another generation", conditions("InvalidSpec", 1), 2],
    ["a transient failure", conditions("HostUnreachable", 2), 2],
    ["a missing reference", conditions("ReferenceNotFound", 2), 2],
  ] as const)("says nothing after %s", (_name, list, generation) => {
    expect(judgeApply(undefined, "HAPair", { conditions: list, observedGeneration: 2 }, generation)).toEqual({ changed: false });
  });
});

describe.each(kinds)("%s: a reload a dead apply left owed", (_kind, compute) => {
  const drift = { checkedHosts: ["a", "b"], differing: [], policy: "Correct" as const, pendingReload: ["a:keepalived.service"] };

  it("is neither in sync nor Ready while only observed, and names the host and unit", () => {
    const status = compute({ drift }, undefined, 2, first);
    expect(findCondition(status.conditions, "ConfigInSync")).toMatchObject({ status: "False", reason: "ReloadPending" });
    expect(findCondition(status.conditions, "ConfigInSync")!.message).toContain("a:keepalived.service");
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "False" });
  });

  it("is in sync once an apply finished it", () => {
    const finished: ApplyResult = { host: "a", changed: [], unchanged: ["/etc/x"], removed: [], reloaded: ["keepalived.service"], ok: true, notes: [] };
    expect(findCondition(compute({ drift, results: [finished] }, undefined, 2, first).conditions, "ConfigInSync")).toMatchObject({ status: "True" });
  });
});

describe.each(kinds)("%s: a failed apply after an in-sync one", (_kind, compute) => {
  it("is not in sync any more: the hosts kept (or got back) the previous config", () => {
    const applied: ApplyResult = { host: "a", changed: ["/etc/x"], unchanged: [], removed: [], reloaded: ["keepalived.service"], ok: true, notes: [] };
    const inSync = compute({ results: [applied] }, undefined, 1, first);
    expect(findCondition(inSync.conditions, "ConfigInSync")).toMatchObject({ status: "True" });
    const failed: ApplyResult = {
      ...applied,
      ok: false,
      failure: { stage: "reload", message: "reload refused" },
      rolledBack: { ok: true, message: "rolled back on DDIHost a: restored /etc/x" },
    };
    const status = compute({ results: [failed] }, inSync, 2, second);
    expect(findCondition(status.conditions, "ConfigInSync")).toMatchObject({ status: "False", reason: "ApplyFailed" });
    expect(findCondition(status.conditions, "ConfigInSync")!.message).toContain("rolled back");
  });
});
