import { describe, expect, it } from "vitest";
import { summarizeStatus } from "./summary.js";

const cond = (type: string, status: string, reason = "R", message = "m") => ({ type, status, reason, message });

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
