// Which maintenance command goes to which Kea peer, from the observed states (Kea 2.2's rules in
// ha_service.cc: processMaintenanceStart/Cancel/Notify).
import { describe, expect, it } from "vitest";
import { keaMaintenanceCommand, keaNormalState, planKeaMaintenance } from "./maintenance.js";

const peer = (name: string, role: string, state: string, reachable = true) => ({ name, role, state, reachable });
const hs = (a: string, b: string, reachableB = true) => [peer("s1", "primary", a), peer("s2", "standby", b, reachableB)];
const only = (...names: string[]) => new Set(names);

describe("planKeaMaintenance", () => {
  it("a peer in maintenance: ha-maintenance-start goes to its partner, which stays in service", () => {
    expect(planKeaMaintenance("hot-standby", hs("hot-standby", "hot-standby"), only("s1"), false)).toMatchObject({
      phase: "HandingOver",
      send: { command: "ha-maintenance-start", peer: "s2" },
    });
    expect(planKeaMaintenance("load-balancing", [peer("a", "primary", "load-balancing"), peer("b", "secondary", "communication-recovery")], only("a"), false).send).toEqual({
      command: "ha-maintenance-start",
      peer: "b",
    });
  });

  it("idempotent: nothing more once the partner serves every client (partner-in-maintenance, or partner-down after the peer stopped)", () => {
    for (const survivor of ["partner-in-maintenance", "partner-down"]) {
      const plan = planKeaMaintenance("hot-standby", hs("in-maintenance", survivor), only("s1"), false);
      expect(plan).toMatchObject({ phase: "HandedOver" });
      expect(plan.send).toBeUndefined();
    }
    // The peer in maintenance stopped: its state does not matter.
    expect(planKeaMaintenance("hot-standby", [peer("s1", "primary", "unavailable", false), peer("s2", "standby", "partner-down")], only("s1"), false).phase).toBe("HandedOver");
  });

  it("waits while the partner is on its way (waiting, syncing), and sends nothing where Kea would refuse or nobody would serve", () => {
    expect(planKeaMaintenance("hot-standby", hs("hot-standby", "syncing"), only("s1"), false)).toEqual({ phase: "HandingOver", why: expect.any(String) });
    expect(planKeaMaintenance("hot-standby", hs("hot-standby", "terminated"), only("s1"), false)).toEqual({ phase: "NoPartnerToTakeOver", why: expect.any(String) });
    expect(planKeaMaintenance("hot-standby", hs("hot-standby", "unavailable", false), only("s1"), false)).toEqual({ phase: "NoPartnerToTakeOver", why: expect.any(String) });
    expect(planKeaMaintenance("hot-standby", hs("hot-standby", "hot-standby"), only("s1", "s2"), false)).toEqual({ phase: "NoPartnerToTakeOver", why: expect.any(String) });
    const pb = planKeaMaintenance("passive-backup", [peer("p", "primary", "passive-backup"), peer("b", "backup", "backup")], only("p"), false);
    expect(pb).toEqual({ phase: "NoPartnerToTakeOver", why: expect.any(String) });
    expect(pb.why).toContain("passive-backup");
  });

  it("a backup peer in maintenance needs no hand-over", () => {
    const peers = [...hs("hot-standby", "hot-standby"), peer("b", "backup", "backup")];
    expect(planKeaMaintenance("hot-standby", peers, only("b"), false)).toEqual({ phase: "HandedOver", why: expect.any(String) });
  });

  it("a maintenance the wrong way round (the partner in in-maintenance) is cancelled first", () => {
    expect(planKeaMaintenance("hot-standby", hs("partner-in-maintenance", "in-maintenance"), only("s1"), false).send).toEqual({ command: "ha-maintenance-cancel", peer: "s1" });
  });

  it("undo: ha-maintenance-cancel to the partner-in-maintenance peer; ha-maintenance-notify for one left alone in in-maintenance; then wait for normal", () => {
    expect(planKeaMaintenance("hot-standby", hs("in-maintenance", "partner-in-maintenance"), only(), true)).toMatchObject({
      phase: "Returning",
      send: { command: "ha-maintenance-cancel", peer: "s2" },
    });
    expect(planKeaMaintenance("hot-standby", hs("in-maintenance", "waiting"), only(), true).send).toEqual({ command: "ha-maintenance-notify", peer: "s1" });
    expect(planKeaMaintenance("hot-standby", hs("syncing", "partner-down"), only(), true)).toEqual({ phase: "Returning", why: expect.any(String) });
    expect(planKeaMaintenance("hot-standby", hs("hot-standby", "hot-standby"), only(), true)).toEqual({ phase: "Idle", why: expect.any(String) });
  });

  it("never cancels a maintenance started by hand (no spec.maintenance, and the last status had none)", () => {
    expect(planKeaMaintenance("hot-standby", hs("in-maintenance", "partner-in-maintenance"), only(), false)).toEqual({ phase: "Idle", why: expect.any(String) });
  });
});

describe("the commands and the normal states", () => {
  it("are Kea's", () => {
    expect(keaMaintenanceCommand("ha-maintenance-start")).toEqual({ command: "ha-maintenance-start", service: ["dhcp4"] });
    expect(keaMaintenanceCommand("ha-maintenance-notify")).toEqual({ command: "ha-maintenance-notify", service: ["dhcp4"], arguments: { cancel: true } });
    expect(keaNormalState("hot-standby", "standby")).toBe("hot-standby");
    expect(keaNormalState("load-balancing", "backup")).toBe("backup");
    expect(keaNormalState("passive-backup", "primary")).toBe("passive-backup");
  });
});
