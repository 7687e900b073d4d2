// The Switchover condition of a KeaHACluster (ADR 0033): True while the roles change, then
// SwitchedOver / SwitchedBack with the seconds from the start, kept as written on later passes.
import { describe, expect, it } from "vitest";
import { keaSwitchoverCondition } from "./keahacluster.js";

const plan = (phase: "Idle" | "Waiting" | "HandingOver" | "Applying" | "Finishing" | "Done", why = "why") => ({ phase, why });
const at = (iso: string) => new Date(iso);

describe("keaSwitchoverCondition", () => {
  it("True SwitchingOver while under way; SwitchoverFailed with Kea's answer when a command was refused", () => {
    expect(keaSwitchoverCondition({ plan: plan("HandingOver", "s2 takes over"), swapped: true, startedAt: at("2025-12-31T23:59:58Z") }, undefined, at("2026-01-01T00:00:00Z"))).toEqual({
      type: "Switchover",
      status: "True",
      reason: "SwitchingOver",
      message: "s2 takes over (started 2025-12-31T23:59:58.000Z)",
    });
    const failed = keaSwitchoverCondition({ plan: plan("Waiting"), swapped: true, sent: { command: "ha-maintenance-start", peer: "s2", ok: false, text: "Unable to transition" } }, undefined, new Date());
    expect(failed).toMatchObject({ status: "True", reason: "SwitchoverFailed" });
    expect(failed!.message).toContain("sent ha-maintenance-start to s2: refused (Unable to transition)");
  });

  it("done: SwitchedOver with the seconds since it went True, SwitchedBack when the declared primary is back", () => {
    const started = { status: "True", reason: "SwitchingOver", message: "m", lastTransitionTime: "2026-01-01T00:00:00Z" };
    expect(keaSwitchoverCondition({ plan: plan("Done", "s2 primary, s1 standby, both in hot-standby"), swapped: true }, started, at("2026-01-01T00:00:17Z"))).toEqual({
      type: "Switchover",
      status: "False",
      reason: "SwitchedOver",
      message: "s2 primary, s1 standby, both in hot-standby: done 17 s after the switchover started",
    });
    expect(keaSwitchoverCondition({ plan: plan("Done"), swapped: false }, started, at("2026-01-01T00:00:09Z"))).toMatchObject({ reason: "SwitchedBack", message: "why: done 9 s after the switchover started" });
    // The start carried in the True message wins over its (later) lastTransitionTime.
    const carried = { ...started, message: "m (started 2025-12-31T23:59:55.000Z)" };
    expect(keaSwitchoverCondition({ plan: plan("Done"), swapped: true }, carried, at("2026-01-01T00:00:17Z"))!.message).toContain("done 22 s after");
    // Done within the one pass that started it: timed from that pass's step before the apply.
    expect(keaSwitchoverCondition({ plan: plan("Done"), swapped: true, startedAt: at("2026-01-01T00:00:00Z") }, undefined, at("2026-01-01T00:00:06Z"))!.message).toContain("done 6 s after");
  });

  it("later passes keep the message written when it finished; no condition before the first switchover", () => {
    const done = { status: "False", reason: "SwitchedOver", message: "done 17 s after", lastTransitionTime: "2026-01-01T00:00:17Z" };
    expect(keaSwitchoverCondition({ plan: plan("Done"), swapped: true }, done, at("2026-01-01T01:00:00Z"))!.message).toBe("done 17 s after");
    expect(keaSwitchoverCondition({ plan: plan("Idle"), swapped: true }, done, new Date())).toMatchObject({ status: "False", reason: "SwitchedOver", message: "done 17 s after" });
    expect(keaSwitchoverCondition({ plan: plan("Idle"), swapped: false }, undefined, new Date())).toBeUndefined();
    expect(keaSwitchoverCondition(undefined, undefined, new Date())).toBeUndefined();
  });
});
