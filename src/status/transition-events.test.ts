import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ApplyResult } from "../apply/index.js";
import type { Condition } from "../api/index.js";
import { EVENT_REASONS, type TransitionEvent, transitionEvents } from "./transition-events.js";

const cond = (type: string, status: Condition["status"], reason: string, message = `${type} ${reason}`): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: "2026-01-01T00:00:00Z",
});
const pair = {
  kind: "HAPair",
  name: "vip",
  generation: 3,
  spec: { virtualIP: "198.18.0.10/24", primary: { host: "h1" }, secondary: { host: "h2" } },
};
const result = (over: Partial<ApplyResult> = {}): ApplyResult => ({ host: "h1", changed: [], unchanged: [], removed: [], reloaded: [], ok: true, notes: [], ...over });
const reasons = (events: TransitionEvent[]) => events.map((e) => `${e.type} ${e.reason}`);

const readyPair = { conditions: [cond("Ready", "True", "VIPOnPrimary"), cond("ConfigApplied", "True", "Applied")], activeNode: "primary", failoverCount: 0 };

describe("transitionEvents", () => {
  it("a resync that changes nothing owes no Event, for every kind", () => {
    expect(transitionEvents(pair, readyPair, structuredClone(readyPair), { results: [result({ unchanged: ["/etc/keepalived/a.conf"] })] })).toEqual([]);
    expect(transitionEvents(pair, readyPair, readyPair)).toEqual([]);
    const down = { conditions: [cond("Reachable", "False", "HostUnreachable"), cond("Ready", "False", "HostUnreachable")] };
    expect(transitionEvents({ kind: "DDIHost", name: "h1" }, down, down)).toEqual([]);
    const kea = { health: "Impaired", peers: [{ name: "a", state: "partner-down" }], conditions: [cond("Ready", "False", "PartnerDown")] };
    expect(transitionEvents({ kind: "KeaHACluster", name: "k" }, kea, kea)).toEqual([]);
    const peer = { conditions: [cond("PartnerDown", "True", "PartnerDown", "the primary h1 is in partner-down")] };
    expect(transitionEvents({ kind: "DhcpFailoverPeer", name: "p" }, peer, peer)).toEqual([]);
    const stalled = { conditions: [cond("Stalled", "True", "InvalidSpec")] };
    expect(transitionEvents(pair, stalled, stalled)).toEqual([]);
  });

  it("Applied: files changed on the hosts, naming each host and file and the generation", () => {
    const events = transitionEvents(pair, {}, readyPair, {
      results: [result({ changed: ["/etc/keepalived/conf.d/vip.conf"] }), result({ host: "h2", changed: ["/etc/keepalived/conf.d/vip.conf"], removed: ["/etc/keepalived/old.conf"] })],
    });
    expect(events).toEqual([
      {
        type: "Normal",
        reason: "Applied",
        action: "Apply",
        note: "generation 3 applied to h1 (/etc/keepalived/conf.d/vip.conf), h2 (/etc/keepalived/conf.d/vip.conf, /etc/keepalived/old.conf removed)",
      },
    ]);
  });

  it("DriftCorrected instead of Applied when the pass re-applied drifted files", () => {
    const drift = { checkedHosts: ["h1", "h2"], differing: ["h1:/etc/keepalived/conf.d/vip.conf"], policy: "Correct" as const };
    const events = transitionEvents(pair, readyPair, readyPair, { results: [result({ changed: ["/etc/keepalived/conf.d/vip.conf"] })], drift });
    expect(reasons(events)).toEqual(["Warning DriftCorrected"]);
    expect(events[0]!.note).toContain("h1:/etc/keepalived/conf.d/vip.conf differed from the spec");
    // Reported only (driftPolicy Report): no correction, no DriftCorrected.
    expect(transitionEvents(pair, readyPair, readyPair, { drift: { ...drift, policy: "Report" } })).toEqual([]);
  });

  it("RolledBack and ApplyFailed: a failed apply restored the files; ApplyFailed only when ConfigApplied turns", () => {
    const failed = { conditions: [cond("ConfigApplied", "False", "ApplyFailed", "h1: reload failed: keepalived exited; the operator retries with backoff")] };
    const outcome = { results: [result({ ok: false, changed: ["/etc/keepalived/a.conf"], failure: { stage: "reload", message: "keepalived exited" }, rolledBack: { ok: true, message: "restored" } } as Partial<ApplyResult>)] };
    const events = transitionEvents(pair, readyPair, failed, outcome);
    expect(reasons(events)).toEqual(["Warning RolledBack", "Warning ApplyFailed"]);
    expect(events[0]!.note).toBe("h1: reload failed: keepalived exited; the previous files were restored");
    expect(events[1]!.note).toContain("h1: reload failed");
    // The retry fails the same way: the rollback happened again, ConfigApplied did not turn.
    expect(reasons(transitionEvents(pair, failed, failed, outcome))).toEqual(["Warning RolledBack"]);
    const broken = { results: [result({ ok: false, failure: { stage: "reload", message: "x" }, rolledBack: { ok: false, message: "cp: No space left" } } as Partial<ApplyResult>)] };
    expect(transitionEvents(pair, failed, failed, broken)[0]!.note).toContain("ROLLBACK FAILED: cp: No space left; restore the files on h1 by hand");
  });

  it("FailedOver when the VIP leaves the preferred node, FailedBack when it returns; counted by failoverCount", () => {
    const over = { ...readyPair, activeNode: "secondary", failoverCount: 1 };
    const events = transitionEvents(pair, readyPair, over);
    expect(reasons(events)).toEqual(["Warning FailedOver"]);
    expect(events[0]!.note).toMatch(/^198\.18\.0\.10\/24 moved from the primary h1 to the secondary h2: keepalived on h1/);
    const back = transitionEvents(pair, over, { ...readyPair, failoverCount: 2 });
    expect(back).toEqual([{ type: "Normal", reason: "FailedBack", action: "Observe", note: "198.18.0.10/24 moved from the secondary h2 to the primary h1, its preferred node (spec.preferredNode)" }]);
    // A repeat of the same move has the same note: the recorder folds it into one series.
    expect(transitionEvents(pair, { ...readyPair, failoverCount: 2 }, { ...over, failoverCount: 3 })).toEqual(events);
    // preferredNode secondary: moving to the secondary is the way back.
    const preferSecondary = { ...pair, spec: { ...pair.spec, preferredNode: "secondary" } };
    expect(reasons(transitionEvents(preferSecondary, readyPair, over))).toEqual(["Normal FailedBack"]);
    // Through a gap (none) the count grows when the new single holder shows up.
    expect(transitionEvents(pair, { ...readyPair, activeNode: "none" }, { ...readyPair, activeNode: "none" })).toEqual([]);
  });

  it("SplitBrain when both nodes start holding the VIP", () => {
    const split = { ...readyPair, activeNode: "both", conditions: [cond("Ready", "False", "SplitBrain"), cond("SplitBrain", "True", "BothNodesHoldVIP", "both h1 and h2 hold 198.18.0.10")] };
    expect(transitionEvents(pair, readyPair, split)).toEqual([{ type: "Warning", reason: "SplitBrain", action: "Observe", note: "both h1 and h2 hold 198.18.0.10" }]);
    expect(transitionEvents(pair, split, split)).toEqual([]);
  });

  it("PartnerDown: a Kea peer or a dhcpd side enters partner-down", () => {
    const kea = { kind: "KeaHACluster", name: "k" };
    const ok = { health: "OK", peers: [{ name: "server1", role: "primary", host: "h1", state: "load-balancing" }, { name: "server2", role: "secondary", host: "h2", state: "load-balancing" }] };
    const down = {
      health: "Impaired",
      conditions: [cond("Ready", "False", "PeerUnreachable", "health Impaired: server2 does not answer")],
      peers: [{ ...ok.peers[0]!, state: "partner-down" }, { ...ok.peers[1]!, state: "unknown" }],
    };
    const events = transitionEvents(kea, ok, down);
    expect(reasons(events)).toEqual(["Warning KeaImpaired", "Warning PartnerDown"]);
    expect(events[0]!.note).toBe("health Impaired: server2 does not answer");
    expect(events[1]!.note).toMatch(/^server1 \(primary on h1\) is in partner-down/);

    const peer = { kind: "DhcpFailoverPeer", name: "p" };
    const pd = { conditions: [cond("PartnerDown", "True", "PartnerDown", "the primary h1 is in partner-down")] };
    expect(transitionEvents(peer, { conditions: [] }, pd)).toEqual([{ type: "Warning", reason: "PartnerDown", action: "Observe", note: "the primary h1 is in partner-down" }]);
  });

  it("KeaImpaired when health leaves OK (or goes from Impaired to Down), not when it recovers", () => {
    const kea = { kind: "KeaHACluster", name: "k" };
    expect(reasons(transitionEvents(kea, { health: "Impaired" }, { health: "Down" }))).toEqual(["Warning KeaImpaired"]);
    expect(transitionEvents(kea, { health: "Down" }, { health: "OK" })).toEqual([]);
  });

  it("HostUnreachable and HostKeyRejected on a DDIHost; the host key is not also Stalled", () => {
    const host = { kind: "DDIHost", name: "h1" };
    const up = { conditions: [cond("Reachable", "True", "Connected"), cond("Ready", "True", "HostReady")] };
    const gone = { conditions: [cond("Reachable", "False", "HostUnreachable", "h1 (198.18.0.2:22): connect ETIMEDOUT")] };
    expect(transitionEvents(host, up, gone)).toEqual([{ type: "Warning", reason: "HostUnreachable", action: "Observe", note: "HostUnreachable: h1 (198.18.0.2:22): connect ETIMEDOUT" }]);
    const key = { conditions: [cond("Reachable", "False", "HostKeyMismatch", "h1 presented another host key"), cond("Stalled", "True", "HostKeyMismatch")] };
    expect(transitionEvents(host, up, key)).toEqual([{ type: "Warning", reason: "HostKeyRejected", action: "Observe", note: "h1 presented another host key" }]);
    // Unreachable, then the key changed: a new transition of Reachable.
    expect(reasons(transitionEvents(host, gone, key))).toEqual(["Warning HostKeyRejected"]);
  });

  it("HostUnreachable on a relationship: its apply could not reach a host, or its Ready names an unobservable node (once)", () => {
    const applyDown = { conditions: [cond("ConfigApplied", "False", "HostUnreachable", "h2: connect ECONNREFUSED; the operator retries with backoff"), cond("Ready", "False", "HostUnreachable")] };
    expect(transitionEvents(pair, readyPair, applyDown)).toEqual([{ type: "Warning", reason: "HostUnreachable", action: "Apply", note: "cannot apply to h2: connect ECONNREFUSED; the operator retries with backoff" }]);
    const observeDown = { ...readyPair, conditions: [cond("Ready", "False", "HostUnreachable", "cannot observe the secondary h2: timeout"), cond("ConfigApplied", "True", "Applied")] };
    expect(transitionEvents(pair, readyPair, observeDown)).toEqual([{ type: "Warning", reason: "HostUnreachable", action: "Observe", note: "cannot observe the secondary h2: timeout" }]);
  });

  it("Stalled when the object is refused in status (InvalidSpec, ConfigRejected)", () => {
    const stalled = { conditions: [cond("ConfigApplied", "False", "InvalidSpec"), cond("Stalled", "True", "InvalidSpec", "the HAPair spec cannot be applied until it is changed: VRID 51 is used twice")] };
    expect(transitionEvents(pair, {}, stalled)).toEqual([
      { type: "Warning", reason: "Stalled", action: "Observe", note: "InvalidSpec: the HAPair spec cannot be applied until it is changed: VRID 51 is used twice" },
    ]);
    // Refused for another reason: a new transition.
    expect(reasons(transitionEvents(pair, stalled, { conditions: [cond("Stalled", "True", "ConfigRejected")] }))).toEqual(["Warning Stalled"]);
  });

  it("every reason is produced by some transition above", () => {
    // Keeps the reason list and the README table honest: a reason no transition produces fails here.
    const seen = new Set<string>();
    const host = { kind: "DDIHost", name: "h1" };
    const all = [
      transitionEvents(pair, {}, readyPair, { results: [result({ changed: ["/a"] })] }),
      transitionEvents(pair, {}, readyPair, { results: [result({ changed: ["/a"] })], drift: { checkedHosts: [], differing: ["h1:/a"], policy: "Correct" } }),
      transitionEvents(pair, readyPair, { conditions: [cond("ConfigApplied", "False", "ApplyFailed")] }, { results: [result({ ok: false, rolledBack: { ok: true, message: "" } })] }),
      transitionEvents(pair, readyPair, { ...readyPair, activeNode: "secondary", failoverCount: 1 }),
      transitionEvents(pair, { ...readyPair, activeNode: "secondary" }, { ...readyPair, failoverCount: 1 }),
      transitionEvents(pair, readyPair, { conditions: [cond("SplitBrain", "True", "BothNodesHoldVIP"), cond("Stalled", "True", "InvalidSpec")] }),
      transitionEvents({ kind: "KeaHACluster", name: "k" }, {}, { health: "Down", peers: [{ name: "a", state: "partner-down" }] }),
      transitionEvents(host, {}, { conditions: [cond("Reachable", "False", "HostUnreachable")] }),
      transitionEvents(host, {}, { conditions: [cond("Reachable", "False", "HostKeyMismatch")] }),
    ];
    for (const e of all.flat()) seen.add(e.reason);
    expect([...seen].sort()).toEqual([...EVENT_REASONS].sort());
    // README's Events table has a row for each, with the type the Event has.
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const types = new Map(all.flat().map((e) => [e.reason, e.type]));
    for (const reason of EVENT_REASONS) expect(readme, reason).toContain(`| \`${reason}\` | ${types.get(reason)} |`);
  });
});
