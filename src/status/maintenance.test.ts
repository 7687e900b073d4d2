// The Maintenance condition and Ready of KeaHACluster and DhcpFailoverPeer while a host is in
// maintenance (DDIHost spec.maintenance), and the return timed to the second. Pure.
import { describe, expect, it } from "vitest";
import type { ApplyResult } from "../apply/index.js";
import { planFailoverMaintenance } from "../daemons/dhcpd/index.js";
import { planKeaMaintenance } from "../daemons/kea/index.js";
import type { DhcpFailoverSideObservation } from "../observe/dhcpd-failover.js";
import type { KeaPeerObservation } from "../observe/kea-ha.js";
import { computeDhcpFailoverPeerStatus } from "./dhcpfailoverpeer.js";
import { computeKeaHAClusterStatus } from "./keahacluster.js";

const now = new Date("2026-12-07T02:00:00Z");
const later = (s: number) => new Date(now.getTime() + s * 1000);
const applied = (host: string): ApplyResult => ({ host, changed: [], unchanged: ["/etc/kea/kea-dhcp4.conf"], removed: [], reloaded: [], ok: true, notes: [] });
const cond = (st: { conditions?: { type: string; status: string; reason: string; message: string }[] }, type: string) => st.conditions?.find((c) => c.type === type);

describe("KeaHACluster during a maintenance", () => {
  const kpeer = (name: string, role: string, state: string, reachable = true): KeaPeerObservation => ({ name, host: name === "server1" ? "h3" : "h4", role, state, reachable });
  const peers = (a: string, b: string, reachableA = true) => [kpeer("server1", "primary", a, reachableA), kpeer("server2", "standby", b)];
  const ok = { results: [applied("h3"), applied("h4")] };
  const status = (observed: KeaPeerObservation[], resting: string[], previous?: ReturnType<typeof computeKeaHAClusterStatus>, at = now, sent?: { ok: boolean; text: string }) => {
    const undoing = previous?.conditions?.some((c) => c.type === "Maintenance" && (c.status === "True" || c.reason === "Returning")) ?? false;
    const plan = planKeaMaintenance("hot-standby", observed, new Set(resting), undoing);
    const maintenance = resting.length || undoing ? { peers: resting, plan, ...(sent ? { sent: { command: "ha-maintenance-start" as const, peer: "server2", ...sent } } : {}) } : undefined;
    return computeKeaHAClusterStatus({ mode: "hot-standby", configSync: "PrimaryIsSourceOfTruth", peers: observed, ...(maintenance ? { maintenance } : {}) }, ok, previous, 1, at);
  };

  it("handed over: Ready False Maintenance (not InMaintenance or PeerUnreachable), Maintenance HandedOver; a stopped peer in maintenance is fine too", () => {
    const st = status(peers("in-maintenance", "partner-in-maintenance"), ["server1"]);
    expect(cond(st, "Ready")).toMatchObject({ status: "False", reason: "Maintenance" });
    expect(cond(st, "Ready")!.message).toContain("server1 in maintenance (DDIHost spec.maintenance)");
    expect(cond(st, "Maintenance")).toMatchObject({ status: "True", reason: "HandedOver" });
    expect(st.health).toBe("Impaired");
    const stopped = status(peers("unavailable", "partner-down", false), ["server1"]);
    expect(cond(stopped, "Ready")).toMatchObject({ status: "False", reason: "Maintenance" });
  });

  it("the start is due or refused: HandingOver, or HandOverFailed with Kea's own text", () => {
    expect(cond(status(peers("hot-standby", "hot-standby"), ["server1"]), "Ready")).toMatchObject({ reason: "HandingOver" });
    const refused = status(peers("hot-standby", "hot-standby"), ["server1"], undefined, now, { ok: false, text: "Unable to transition (result 1)" });
    expect(cond(refused, "Ready")).toMatchObject({ status: "False", reason: "HandOverFailed" });
    expect(cond(refused, "Maintenance")).toMatchObject({ status: "True", reason: "HandOverFailed" });
    expect(cond(refused, "Maintenance")!.message).toContain("sent ha-maintenance-start to server2: refused (Unable to transition (result 1))");
  });

  it("maintenance hides nothing about the partner: unreachable, it is PeerUnreachable and NoPartnerToTakeOver", () => {
    const st = status([kpeer("server1", "primary", "hot-standby"), kpeer("server2", "standby", "unavailable", false)], ["server1"]);
    expect(cond(st, "Ready")!.reason).toBe("PeerUnreachable");
    expect(cond(st, "Maintenance")).toMatchObject({ status: "True", reason: "NoPartnerToTakeOver" });
  });

  it("after the maintenance: Returning until both peers are in hot-standby again, then Returned with the seconds", () => {
    const during = status(peers("in-maintenance", "partner-in-maintenance"), ["server1"]);
    const returning = status(peers("waiting", "partner-down"), [], during, later(5));
    expect(cond(returning, "Maintenance")).toMatchObject({ status: "False", reason: "Returning" });
    expect(cond(returning, "Maintenance")!.message).toContain("waiting for server1 (waiting), server2 (partner-down) to reach hot-standby");
    const back = status(peers("hot-standby", "hot-standby"), [], returning, later(12));
    expect(cond(back, "Ready")).toMatchObject({ status: "True" });
    expect(cond(back, "Maintenance")).toMatchObject({ status: "False", reason: "Returned", message: "back to normal 7 s after the maintenance ended (server1 hot-standby, server2 hot-standby)" });
    // Kept as it was by later passes, for whoever reads it afterwards: the seconds do not grow.
    expect(cond(status(peers("hot-standby", "hot-standby"), [], back, later(20)), "Maintenance")).toEqual(cond(back, "Maintenance"));
  });

  it("a cluster never in maintenance has no Maintenance condition; a hand-made maintenance is InMaintenance", () => {
    expect(cond(status(peers("hot-standby", "hot-standby"), []), "Maintenance")).toBeUndefined();
    expect(cond(status(peers("in-maintenance", "partner-in-maintenance"), []), "Ready")!.reason).toBe("InMaintenance");
  });
});

describe("DhcpFailoverPeer during a maintenance", () => {
  const fside = (host: string, state: string, live = true): DhcpFailoverSideObservation =>
    live ? { host, reachable: true, source: "omapi", omapiVia: "forward", localState: state, partnerState: "normal", dhcpdActive: true, pools: [] } : { host, reachable: true, source: "none", dhcpdActive: false, pools: [] };
  const ok = { results: [applied("h1"), applied("h2")] };
  const status = (p: DhcpFailoverSideObservation, s: DhcpFailoverSideObservation, resting: ("primary" | "secondary")[], partnerDown: boolean, previous?: ReturnType<typeof computeDhcpFailoverPeerStatus>, at = now) => {
    const undoing = previous?.conditions?.some((c) => c.type === "Maintenance" && (c.status === "True" || c.reason === "Returning")) ?? false;
    const view = (role: "primary" | "secondary", o: DhcpFailoverSideObservation) => ({ host: o.host, inMaintenance: resting.includes(role), live: o.dhcpdActive && o.source === "omapi", state: o.localState ?? "unknown" });
    const plan = planFailoverMaintenance({ primary: view("primary", p), secondary: view("secondary", s) }, partnerDown, undoing);
    const maintenance = resting.length || undoing ? { sides: resting, plan } : undefined;
    return computeDhcpFailoverPeerStatus({ peerName: "dhcp", primary: p, secondary: s, mcltSeconds: 30, ...(maintenance ? { maintenance } : {}) }, ok, previous, 1, at);
  };

  it("left alone: the primary stopped and the secondary in communications-interrupted is the expected picture, Ready Maintenance, LeftAlone", () => {
    const st = status(fside("h1", "unknown", false), fside("h2", "communications-interrupted"), ["primary"], false);
    expect(cond(st, "Ready")).toMatchObject({ status: "False", reason: "Maintenance" });
    expect(cond(st, "Maintenance")).toMatchObject({ status: "True", reason: "LeftAlone" });
    expect(cond(st, "Maintenance")!.message).toContain("spec.maintenancePartnerDown is not set");
    expect(cond(st, "CommunicationsInterrupted")).toMatchObject({ status: "True" });
  });

  it("partner-down: handed over with the primary shut down; a secondary that stops too still pages (DhcpdNotRunning)", () => {
    const st = status(fside("h1", "shutdown"), fside("h2", "partner-down"), ["primary"], true);
    expect(cond(st, "Ready")).toMatchObject({ status: "False", reason: "Maintenance" });
    expect(cond(st, "Maintenance")).toMatchObject({ status: "True", reason: "HandedOver" });
    expect(cond(st, "PartnerDown")).toMatchObject({ status: "True" });
    expect(cond(status(fside("h1", "shutdown"), fside("h2", "unknown", false), ["primary"], true), "Ready")!.reason).toBe("DhcpdNotRunning");
  });

  it("after the maintenance: Returning through recover, then Returned with the seconds", () => {
    const during = status(fside("h1", "shutdown"), fside("h2", "partner-down"), ["primary"], true);
    const returning = status(fside("h1", "recover"), fside("h2", "partner-down"), [], true, during, later(1));
    expect(cond(returning, "Maintenance")).toMatchObject({ status: "False", reason: "Returning" });
    expect(cond(returning, "Ready")!.reason).toBe("PartnerDown");
    const back = status(fside("h1", "normal"), fside("h2", "normal"), [], true, returning, later(4));
    expect(cond(back, "Maintenance")).toMatchObject({ status: "False", reason: "Returned", message: "back to normal 3 s after the maintenance ended (BothNormal)" });
  });
});
