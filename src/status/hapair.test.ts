import { describe, expect, it } from "vitest";
import type { ApplyResult } from "../apply/index.js";
import type { HAPairStatus } from "../api/index.js";
import { findCondition } from "./conditions.js";
import { type HAPairNodeInput, type HAPairObservation, computeHAPairStatus, requiredHAPairServices } from "./hapair.js";

const now = new Date("2026-11-22T09:00:00Z");
const later = new Date("2026-11-22T09:01:00Z");
const applied = { results: [ok("ddi-central-primary"), ok("ddi-central-secondary")] };

function ok(host: string): ApplyResult {
  return { host, changed: [], unchanged: ["/etc/keepalived/keepalived.conf"], removed: [], reloaded: [], ok: true, notes: [] };
}

function node(role: "primary" | "secondary", over: Partial<HAPairNodeInput> = {}): HAPairNodeInput {
  const master = role === "primary";
  return {
    host: `ddi-central-${role}`,
    role,
    interface: "eth0",
    reachable: true,
    keepalivedActive: true,
    vrrpState: master ? "MASTER" : "BACKUP",
    holdsVIP: master,
    interfaceFound: true,
    services: [{ name: "named", unit: "named.service", installed: true, active: true }],
    ...over,
  };
}

function observe(primary: Partial<HAPairNodeInput> = {}, secondary: Partial<HAPairNodeInput> = {}, over: Partial<HAPairObservation> = {}): HAPairObservation {
  return { vip: "10.71.17.86/24", nodes: [node("primary", primary), node("secondary", secondary)], requiredServices: ["named"], preempt: true, ...over };
}

const failedOverNodes = [{ holdsVIP: false, vrrpState: "STOP" as const, keepalivedActive: false }, { holdsVIP: true, vrrpState: "MASTER" as const }] as const;

describe("computeHAPairStatus scenarios", () => {
  it.each([
    {
      name: "healthy: VIP on the primary, named on both",
      obs: observe(),
      ready: ["True", "VIPOnPrimary"],
      activeNode: "primary",
      present: ["Ready", "ConfigApplied", "ConfigInSync", "VIPAssigned"],
    },
    {
      name: "named stopped on the secondary",
      obs: observe({}, { services: [{ name: "named", unit: "named.service", installed: true, active: false }] }),
      ready: ["False", "ServiceNotRunning"],
      message: "named is not running on ddi-central-secondary: HA for DNS needs it on both hosts; start it (systemctl start named.service) or set spec.services.dns: false",
      activeNode: "primary",
    },
    {
      name: "bind9 not installed on the secondary",
      obs: observe({}, { services: [{ name: "named", installed: false, active: false }] }),
      ready: ["False", "ServiceNotInstalled"],
      message: "named is not installed on ddi-central-secondary: HA for DNS needs it on both hosts; install bind9 there or set spec.services.dns: false",
    },
    {
      name: "split brain: both hold the VIP",
      obs: observe({}, { holdsVIP: true, vrrpState: "MASTER" }),
      ready: ["False", "SplitBrain"],
      activeNode: "both",
      present: ["Ready", "ConfigApplied", "ConfigInSync", "VIPAssigned", "SplitBrain"],
      message: /both ddi-central-primary and ddi-central-secondary hold 10.71.17.86\/24/,
    },
    {
      name: "failed over: keepalived stopped on the primary",
      obs: observe(failedOverNodes[0], failedOverNodes[1]),
      ready: ["False", "KeepalivedNotRunning"],
      activeNode: "secondary",
      message: /keepalived is not running on ddi-central-primary.*10.71.17.86\/24 is on the secondary ddi-central-secondary/,
    },
    {
      name: "failed over without preempt is fine",
      obs: observe({ holdsVIP: false, vrrpState: "BACKUP" }, { holdsVIP: true, vrrpState: "MASTER" }, { preempt: false }),
      ready: ["True", "VIPOnSecondary"],
      activeNode: "secondary",
    },
    {
      name: "the primary is unreachable (hung host)",
      obs: observe({ reachable: false, error: "cannot reach ddi-central-primary: timed out", holdsVIP: false, vrrpState: "UNKNOWN" }, { holdsVIP: true, vrrpState: "MASTER" }),
      ready: ["False", "HostUnreachable"],
      activeNode: "secondary",
      message: /cannot observe the primary ddi-central-primary: cannot reach ddi-central-primary: timed out; possible split brain: the secondary ddi-central-secondary holds 10.71.17.86\/24, and if ddi-central-primary is up but cut off from ddi-central-secondary too, it holds it as well; check ddi-central-primary from its console/,
    },
    {
      name: "the secondary is unreachable and nobody is seen holding the VIP: no split brain to suspect",
      obs: observe({ holdsVIP: false, vrrpState: "FAULT" }, { reachable: false, error: "cannot reach ddi-central-secondary: timed out", holdsVIP: false, vrrpState: "UNKNOWN" }),
      ready: ["False", "HostUnreachable"],
      activeNode: "none",
      message: /cannot observe the secondary ddi-central-secondary: cannot reach ddi-central-secondary: timed out; the VIP may move there unseen/,
    },
    {
      name: "nobody holds the VIP",
      obs: observe({ holdsVIP: false, vrrpState: "FAULT" }, { holdsVIP: false, vrrpState: "FAULT" }),
      ready: ["False", "VRRPFault"],
      activeNode: "none",
      message: /10.71.17.86\/24 is on neither host \(ddi-central-primary: FAULT, ddi-central-secondary: FAULT\)/,
    },
    {
      name: "the interface is missing on the secondary",
      obs: observe({}, { interfaceFound: false, interface: "enp9s0" }),
      ready: ["False", "InterfaceNotFound"],
      message: /interface enp9s0 does not exist on ddi-central-secondary: set spec.secondary.interface/,
    },
    {
      name: "the VIP is outside the subnet of the secondary's interface",
      obs: observe({ vipInSubnet: true, interfaceAddresses: ["10.71.17.85/24"] }, { vipInSubnet: false, interfaceAddresses: ["10.71.18.197/24"] }),
      ready: ["False", "VIPNotInSubnet"],
      message: "10.71.17.86/24 is not in the subnet of eth0 on ddi-central-secondary (10.71.18.197/24): its clients would never hear the VIP's ARP; choose spec.virtualIP in the hosts' subnet, or set spec.secondary.interface",
    },
  ])("$name", ({ obs, ready, activeNode, present, message }) => {
    const status = computeHAPairStatus(obs, applied, undefined, 7, now);
    const cond = findCondition(status.conditions, "Ready")!;
    expect([cond.status, cond.reason]).toEqual(ready);
    if (activeNode) expect(status.activeNode).toBe(activeNode);
    if (present) expect(status.conditions!.map((c) => c.type)).toEqual(present);
    if (typeof message === "string") expect(cond.message).toContain(message);
    else if (message) expect(cond.message).toMatch(message);
    expect(status.observedGeneration).toBe(7);
    expect(status.conditions!.every((c) => c.observedGeneration === 7)).toBe(true);
  });

  it("reports per-node state, with servicesHealthy false where keepalived or a service is down", () => {
    const status = computeHAPairStatus(observe({}, { services: [{ name: "named", installed: true, active: false }] }), applied, undefined, 1, now);
    expect(status.nodes).toEqual([
      { host: "ddi-central-primary", role: "primary", vrrpState: "MASTER", holdsVIP: true, servicesHealthy: true },
      { host: "ddi-central-secondary", role: "secondary", vrrpState: "BACKUP", holdsVIP: false, servicesHealthy: false },
    ]);
  });

  it("is not Ready before any apply, and Stalled on a spec problem", () => {
    expect(findCondition(computeHAPairStatus(observe(), undefined, undefined, 1, now).conditions, "Ready")?.reason).toBe("ApplyPending");
    const stalled = computeHAPairStatus(observe(), { specProblems: ["spec.virtualRouterID 51 collides with HAPair ns/other"] }, undefined, 2, now);
    expect(findCondition(stalled.conditions, "Stalled")).toMatchObject({ status: "True", reason: "InvalidSpec" });
    expect(findCondition(stalled.conditions, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });
  });

  it("keeps the previous ConfigApplied in an observe-only pass", () => {
    const first = computeHAPairStatus(observe(), applied, undefined, 1, now);
    const second = computeHAPairStatus(observe(), undefined, first, 1, later);
    expect(findCondition(second.conditions, "ConfigApplied")).toEqual(findCondition(first.conditions, "ConfigApplied"));
    expect(findCondition(second.conditions, "Ready")?.lastTransitionTime).toBe("2026-11-22T09:00:00Z");
  });

  it("drops SplitBrain once healed, and Reconciling shows while freshly changed config settles", () => {
    const split = computeHAPairStatus(observe({}, { holdsVIP: true }), applied, undefined, 1, now);
    const healed = computeHAPairStatus(observe(), undefined, split, 1, later);
    expect(findCondition(healed.conditions, "SplitBrain")).toBeUndefined();
    const changed = { results: [{ ...ok("ddi-central-primary"), changed: ["/etc/keepalived/ddi-ha.d/ns_p.conf"] }, ok("ddi-central-secondary")] };
    const settling = computeHAPairStatus(observe({ holdsVIP: false, vrrpState: "BACKUP" }), changed, undefined, 2, now);
    expect(findCondition(settling.conditions, "Reconciling")).toMatchObject({ status: "True", reason: "Progressing" });
    expect(findCondition(computeHAPairStatus(observe(), changed, undefined, 2, now).conditions, "Reconciling")).toBeUndefined();
  });
});

describe("failover counting", () => {
  const step = (prev: HAPairStatus | undefined, p: boolean, s: boolean, at: Date, lastHolder?: "primary" | "secondary") =>
    computeHAPairStatus(observe({ holdsVIP: p }, { holdsVIP: s }, lastHolder ? { lastHolder } : {}), applied, prev, 1, at);

  it("counts each move between nodes, including the return, and stamps the time", () => {
    const t = (m: number) => new Date(Date.UTC(2026, 10, 22, 9, m));
    let st = step(undefined, true, false, t(0));
    expect(st).toMatchObject({ activeNode: "primary", failoverCount: 0 });
    expect(st.lastFailoverTime).toBeUndefined();
    st = step(st, false, true, t(1));
    expect(st).toMatchObject({ activeNode: "secondary", failoverCount: 1, lastFailoverTime: "2026-11-22T09:01:00Z" });
    st = step(st, false, true, t(2));
    expect(st).toMatchObject({ failoverCount: 1, lastFailoverTime: "2026-11-22T09:01:00Z" });
    st = step(st, true, false, t(3));
    expect(st).toMatchObject({ activeNode: "primary", failoverCount: 2, lastFailoverTime: "2026-11-22T09:03:00Z" });
  });

  it("across a gap with no holder, counts only with the engine's memory of the last holder", () => {
    const first = step(undefined, true, false, now);
    const gap = step(first, false, false, now);
    expect(gap).toMatchObject({ activeNode: "none", failoverCount: 0 });
    expect(step(gap, false, true, later, "primary")).toMatchObject({ failoverCount: 1 });
    expect(step(gap, false, true, later)).toMatchObject({ failoverCount: 0 });
    // Start-up (none → primary) is not a failover.
    expect(step(gap, true, false, later, "primary")).toMatchObject({ failoverCount: 0 });
  });
});

describe("requiredHAPairServices", () => {
  it.each([
    [{ dns: true, dhcp: "None" }, ["named"]],
    [{ dns: false, dhcp: "DHCPv4" }, ["isc-dhcp-server"]],
    [{ dns: true, dhcp: "Both", dhcpv4Server: "kea-dhcp4", dhcpv6Server: "kea-dhcp6" }, ["named", "kea-dhcp4", "kea-dhcp6"]],
    [{ dns: false, dhcp: "DHCPv6" }, ["isc-dhcp-server6"]],
  ] as const)("%j → %j", (services, expected) => {
    const full = { dhcpv4ClientMode: "Unicast" as const, dhcpv4Server: "isc-dhcp-server" as const, dhcpv6Server: "isc-dhcp-server6" as const, ...services };
    expect(requiredHAPairServices({ services: full })).toEqual(expected);
  });
});

describe("maintenance and planned switchover", () => {
  const now = new Date("2026-12-06T12:00:00Z");
  const node = (role: "primary" | "secondary", host: string, over: Partial<HAPairNodeInput> = {}): HAPairNodeInput => ({
    host, role, interface: "eth0", reachable: true, keepalivedActive: true, interfaceFound: true, services: [], vrrpState: "BACKUP", holdsVIP: false, ...over,
  });
  const applied = (host: string): ApplyResult => ({ host, changed: [], unchanged: ["/etc/keepalived/keepalived.conf"], removed: [], reloaded: [], ok: true, notes: [] });
  const ok = { results: [applied("h1"), applied("h2")] };
  const status = (p: Partial<HAPairNodeInput>, s: Partial<HAPairNodeInput>, extra: Partial<HAPairObservation> = {}, previous?: HAPairStatus, at = now) =>
    computeHAPairStatus({ vip: "198.18.0.86/24", nodes: [node("primary", "h1", p), node("secondary", "h2", s)], requiredServices: [], preempt: true, ...extra }, ok, previous, 1, at);
  const cond = (st: HAPairStatus, type: string) => st.conditions?.find((c) => c.type === type);
  const master = { vrrpState: "MASTER" as const, holdsVIP: true };

  it("a primary in maintenance that handed the VIP over: Ready False Maintenance (not VRRPFault, not FailedOver), Maintenance HandedOver", () => {
    const st = status({ vrrpState: "FAULT" }, master, { maintenance: ["primary"] });
    expect(cond(st, "Ready")).toMatchObject({ status: "False", reason: "Maintenance" });
    expect(cond(st, "Ready")!.message).toContain("the primary h1 is in maintenance");
    expect(cond(st, "Maintenance")).toMatchObject({ status: "True", reason: "HandedOver" });
  });

  it("a primary in maintenance that still holds the VIP: HandingOver", () => {
    const st = status(master, {}, { maintenance: ["primary"] });
    expect(cond(st, "Ready")).toMatchObject({ status: "False", reason: "HandingOver" });
    expect(cond(st, "Maintenance")).toMatchObject({ status: "True", reason: "HandingOver" });
  });

  it("maintenance hides nothing about the node that serves: a failing partner is still the reason", () => {
    const st = status({ vrrpState: "FAULT" }, { keepalivedActive: false, vrrpState: "STOP" }, { maintenance: ["primary"] });
    expect(cond(st, "Ready")!.reason).toBe("KeepalivedNotRunning");
  });

  it("after maintenance: Returning until Ready, then Returned with the seconds it took", () => {
    const during = status({ vrrpState: "FAULT" }, master, { maintenance: ["primary"] });
    const ended = status({ vrrpState: "BACKUP" }, master, {}, during, new Date(now.getTime() + 10_000));
    expect(cond(ended, "Maintenance")).toMatchObject({ status: "False", reason: "Returning" });
    expect(cond(ended, "Ready")).toMatchObject({ status: "False", reason: "FailedOver" });
    const back = status(master, {}, {}, ended, new Date(now.getTime() + 14_000));
    expect(cond(back, "Maintenance")).toMatchObject({ status: "False", reason: "Returned", message: "back to normal 4 s after the maintenance ended (VIPOnPrimary)" });
    expect(cond(back, "Ready")).toMatchObject({ status: "True", reason: "VIPOnPrimary" });
    // A pair never in maintenance has no Maintenance condition.
    expect(cond(status(master, {}), "Maintenance")).toBeUndefined();
  });

  it("preferredNode secondary: the VIP on the secondary is Ready; on the primary it is FailedOver", () => {
    expect(cond(status({}, master, { preferredNode: "secondary" }), "Ready")).toMatchObject({ status: "True", reason: "VIPOnSecondary" });
    const st = status(master, {}, { preferredNode: "secondary" });
    expect(cond(st, "Ready")).toMatchObject({ status: "False", reason: "FailedOver" });
    expect(cond(st, "Ready")!.message).toContain("the secondary h2 (spec.preferredNode)");
  });
});
