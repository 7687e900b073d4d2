import { describe, expect, it } from "vitest";
import { statusMergePatch } from "./kubectl.js";
import { summarizeStatus } from "../status/summary.js";
import { needsApply } from "./lab-pass.js";

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
    ["no such object", undefined, false],
  ] as const)("%s", (_name, it_, expected) => {
    expect(needsApply(it_)).toBe(expected);
  });
});

describe("summarizeStatus", () => {
  it("names the VIP holder and the VRRP states of an HAPair", () => {
    const line = summarizeStatus("HAPair", {
      activeNode: "primary",
      nodes: [
        { host: "h1", vrrpState: "MASTER", holdsVIP: true },
        { host: "h2", vrrpState: "BACKUP", holdsVIP: false },
      ],
      conditions: [cond("Ready", "True", "VIPOnPrimary")],
    });
    expect(line).toBe("Ready=True (VIPOnPrimary)  active=primary  h1:MASTER+VIP h2:BACKUP");
  });

  it("adds the abnormal conditions and the Ready message when not Ready", () => {
    const line = summarizeStatus("DhcpFailoverPeer", {
      primaryState: "partner-down",
      secondaryState: "unknown",
      conditions: [cond("Ready", "False", "DhcpdNotRunning", "dhcpd is not running on the secondary h2"), cond("PartnerDown", "True")],
    });
    expect(line).toBe("Ready=False (DhcpdNotRunning)  primary=partner-down secondary=unknown  PartnerDown  \n      dhcpd is not running on the secondary h2");
  });

  it("lists Kea peers with their HA states", () => {
    expect(
      summarizeStatus("KeaHACluster", { health: "OK", peers: [{ name: "h3", state: "hot-standby" }, { name: "h4", state: "hot-standby" }], conditions: [cond("Ready", "True", "AllPeersServing")] }),
    ).toBe("Ready=True (AllPeersServing)  health=OK  h3:hot-standby h4:hot-standby");
  });
});
