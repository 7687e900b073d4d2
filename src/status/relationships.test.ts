import { describe, expect, it } from "vitest";
import type { ApplyResult } from "../apply/index.js";
import type { DhcpFailoverSideObservation } from "../observe/dhcpd-failover.js";
import type { KeaPeerObservation } from "../observe/kea-ha.js";
import { findCondition } from "./conditions.js";
import { computeDDIHostStatus } from "./ddihost.js";
import { computeDhcpFailoverPeerStatus } from "./dhcpfailoverpeer.js";
import { computeKeaHAClusterStatus } from "./keahacluster.js";

const now = new Date("2026-11-22T09:00:00Z");
const later = new Date("2026-11-22T09:10:00Z");
const ok = (host: string): ApplyResult => ({ host, changed: [], unchanged: [], removed: [], reloaded: [], ok: true, notes: [] });

function side(host: string, over: Partial<DhcpFailoverSideObservation> = {}): DhcpFailoverSideObservation {
  return { host, reachable: true, source: "omapi", localState: "normal", partnerState: "normal", dhcpdActive: true, pools: [], ...over };
}

describe("computeDhcpFailoverPeerStatus scenarios", () => {
  const applied = { results: [ok("dhcp-a"), ok("dhcp-b")] };
  it.each([
    { name: "both normal", p: {}, s: {}, ready: ["True", "BothNormal"], states: ["normal", "normal"], extra: [] },
    {
      name: "secondary stopped: the primary is communications-interrupted",
      p: { localState: "communications-interrupted", partnerState: "normal" },
      s: { dhcpdActive: false, source: "none" as const, localState: undefined },
      ready: ["False", "DhcpdNotRunning"],
      states: ["communications-interrupted", "unknown"],
      extra: ["CommunicationsInterrupted"],
    },
    {
      name: "the secondary took over (partner-down)",
      p: { reachable: false, error: "cannot reach dhcp-a", source: "none" as const, localState: undefined },
      s: { localState: "partner-down", partnerState: "communications-interrupted" },
      ready: ["False", "HostUnreachable"],
      states: ["unknown", "partner-down"],
      extra: ["PartnerDown"],
    },
    {
      name: "both recovering after a restart",
      p: { localState: "recover-done" },
      s: { localState: "recover" },
      ready: ["False", "FailoverConverging"],
      states: ["recover-done", "recover"],
      extra: ["Reconciling"],
    },
    {
      name: "OMAPI refuses the key but the leases file tells the state",
      p: { source: "leases" as const, omapiError: "omshell printed no failover state: dhcpctl_connect: not found" },
      s: {},
      ready: ["False", "OmapiFailed"],
      states: ["normal", "normal"],
      extra: [],
    },
  ])("$name", ({ p, s, ready, states, extra }) => {
    const status = computeDhcpFailoverPeerStatus({ peerName: "dhcp-failover", primary: side("dhcp-a", p), secondary: side("dhcp-b", s), mcltSeconds: 3600 }, applied, undefined, 2, now);
    const r = findCondition(status.conditions, "Ready")!;
    expect([r.status, r.reason]).toEqual(ready);
    expect([status.primaryState, status.secondaryState]).toEqual(states);
    expect(status.conditions!.map((c) => c.type).sort()).toEqual(["Ready", "ConfigApplied", "ConfigInSync", ...extra].sort());
  });

  it("names the failed SSH port forward in the OmapiFailed message, before omshell's complaint", () => {
    const forwardError =
      "the SSH port forward to 127.0.0.1:7911 on dhcp-a closed before dhcpd answered (sshd refuses forwarding, e.g. AllowTcpForwarding no, or nothing listens on the port): no answer";
    const status = computeDhcpFailoverPeerStatus(
      { peerName: "p", primary: side("dhcp-a", { source: "none", localState: undefined, omapiError: "omshell is not installed on dhcp-a", forwardError }), secondary: side("dhcp-b") },
      applied,
      undefined,
      1,
      now,
    );
    const ready = findCondition(status.conditions, "Ready")!;
    expect(ready.reason).toBe("OmapiFailed");
    expect(ready.message).toContain(`cannot read the failover state of the primary dhcp-a through OMAPI: ${forwardError}; omshell on the host, tried instead: omshell is not installed on dhcp-a`);
  });

  it("names both hosts and the fix in the communications-interrupted message", () => {
    const status = computeDhcpFailoverPeerStatus(
      { peerName: "dhcp-failover", primary: side("dhcp-a", { localState: "communications-interrupted" }), secondary: side("dhcp-b"), mcltSeconds: 3600 },
      applied,
      undefined,
      1,
      now,
    );
    expect(findCondition(status.conditions, "CommunicationsInterrupted")?.message).toBe(
      'the primary dhcp-a cannot reach its partner dhcp-b (peer "dhcp-failover"): it serves only its own free leases; check that dhcpd runs on dhcp-b and the failover port is open between them',
    );
  });

  it("takes the pool balance from the primary, else the secondary, else keeps the last one", () => {
    const pools = [{ subnet: "198.18.0.0/24", total: 100, free: 50, backup: 50, lts: 0 }];
    const first = computeDhcpFailoverPeerStatus({ peerName: "p", primary: side("a"), secondary: side("b", { pools }) }, applied, undefined, 1, now);
    expect(first.pools).toEqual([{ subnet: "198.18.0.0/24", total: 100, free: 50, backup: 50 }]);
    const second = computeDhcpFailoverPeerStatus({ peerName: "p", primary: side("a"), secondary: side("b") }, undefined, first, 1, later);
    expect(second.pools).toEqual(first.pools);
  });
});

function peer(name: string, role: string, over: Partial<KeaPeerObservation> = {}): KeaPeerObservation {
  return { name, host: `kea-${name}`, role, reachable: true, state: "hot-standby", inTouch: true, unackedClients: 0, ...over };
}

describe("computeKeaHAClusterStatus scenarios", () => {
  const applied = { results: [ok("kea-server1"), ok("kea-server2")] };
  it.each([
    { name: "hot-standby pair serving", peers: [peer("server1", "primary"), peer("server2", "standby")], health: "OK", ready: ["True", "AllPeersServing"] },
    {
      name: "standby stopped: the primary is in partner-down",
      peers: [peer("server1", "primary", { state: "partner-down", inTouch: false }), peer("server2", "standby", { reachable: false, state: "unavailable", error: "no answer" })],
      health: "Impaired",
      ready: ["False", "PeerUnreachable"],
    },
    {
      name: "both unreachable",
      peers: [peer("server1", "primary", { reachable: false, state: "unavailable" }), peer("server2", "standby", { reachable: false, state: "unavailable" })],
      health: "Down",
      ready: ["False", "PeerUnreachable"],
    },
    {
      name: "clock skew terminated HA",
      peers: [peer("server1", "primary", { state: "terminated" }), peer("server2", "standby", { state: "terminated" })],
      health: "Impaired",
      ready: ["False", "PeerTerminated"],
    },
    {
      name: "still syncing after start",
      peers: [peer("server1", "primary", { state: "syncing" }), peer("server2", "secondary", { state: "waiting" })],
      // Neither answers clients yet: Down by Micetro's rule, while Reconciling says it is on its way.
      health: "Down",
      ready: ["False", "PeerConverging"],
      reconciling: true,
    },
  ])("$name", ({ peers, health, ready, reconciling }) => {
    const status = computeKeaHAClusterStatus({ mode: "hot-standby", configSync: "PrimaryIsSourceOfTruth", peers }, applied, undefined, 3, now);
    expect(status.health).toBe(health);
    const r = findCondition(status.conditions, "Ready")!;
    expect([r.status, r.reason]).toEqual(ready);
    expect(findCondition(status.conditions, "ConfigInSync")).toMatchObject({ status: "True", reason: "InSync" });
    expect(findCondition(status.conditions, "Reconciling") !== undefined).toBe(reconciling === true);
  });

  it("reports peers in the status shape", () => {
    const status = computeKeaHAClusterStatus(
      { mode: "load-balancing", configSync: "HAOnly", peers: [peer("server1", "primary", { state: "load-balancing" }), peer("server2", "secondary", { reachable: false, state: "unavailable", inTouch: undefined, unackedClients: undefined })] },
      undefined,
      undefined,
      1,
      now,
    );
    expect(status.peers).toEqual([
      { name: "server1", host: "kea-server1", role: "primary", state: "load-balancing", inTouch: true, unackedClients: 0, reachable: true },
      { name: "server2", host: "kea-server2", role: "secondary", state: "unavailable", reachable: false },
    ]);
    expect(findCondition(status.conditions, "Ready")?.message).toMatch(/^health Impaired: .*server2 \(secondary on kea-server2\) does not answer/);
  });
});

describe("computeDDIHostStatus", () => {
  const facts = {
    os: "Debian GNU/Linux 12 (bookworm)",
    kernel: "6.1.0-28-amd64",
    services: [{ name: "keepalived" as const, unit: "keepalived.service", installed: true, active: true, version: "2.2.7" }],
    interfaces: [{ name: "eth0", addresses: ["198.18.0.11/24"] }],
    clockOffsetSeconds: 0.004,
    ntpSynchronized: true,
  };

  it.each([
    { name: "in sync with NTP", f: {}, ready: ["True", "HostReady"], clock: ["True", "OffsetWithinLimit"] },
    { name: "in sync without NTP (a container)", f: { ntpSynchronized: false }, ready: ["True", "HostReady"], clock: ["True", "OffsetWithinLimitWithoutNTP"] },
    { name: "2.5 s behind", f: { clockOffsetSeconds: -2.5 }, ready: ["False", "ClockOffsetTooLarge"], clock: ["False", "ClockOffsetTooLarge"] },
    { name: "clock not measured", f: { clockOffsetSeconds: undefined }, ready: ["False", "OffsetNotMeasured"], clock: ["Unknown", "OffsetNotMeasured"] },
  ])("$name", ({ f, ready, clock }) => {
    const status = computeDDIHostStatus({ host: "ddi-central-primary", reachable: true, facts: { ...facts, ...f }, hostKeyFingerprint: "SHA256:abc" }, undefined, 1, now);
    const r = findCondition(status.conditions, "Ready")!;
    const c = findCondition(status.conditions, "ClockSynchronized")!;
    expect([r.status, r.reason]).toEqual(ready);
    expect([c.status, c.reason]).toEqual(clock);
    expect(findCondition(status.conditions, "Reachable")?.status).toBe("True");
    expect(status.hostKeyFingerprint).toBe("SHA256:abc");
  });

  it("says how far and which way the clock is off, and the fix", () => {
    const status = computeDDIHostStatus({ host: "h1", reachable: true, facts: { ...facts, clockOffsetSeconds: -2.5 } }, undefined, 1, now);
    expect(findCondition(status.conditions, "ClockSynchronized")?.message).toBe(
      "the clock of h1 is 2.50 s behind the operator's (limit 1 s): dhcpd failover and Kea HA need synchronized clocks (Kea stops HA above 60 s); enable an NTP client (systemd-timesyncd or chrony) on the host",
    );
  });

  it("keeps the facts when the host becomes unreachable, and the clock goes Unknown", () => {
    const first = computeDDIHostStatus({ host: "h1", reachable: true, facts }, undefined, 1, now);
    const gone = computeDDIHostStatus({ host: "h1", reachable: false, failure: { kind: "Unreachable", message: "cannot reach h1 (root@198.18.0.11:22): timed out" } }, first, 1, later);
    expect(gone).toMatchObject({ os: facts.os, kernel: facts.kernel, services: facts.services, clockOffsetSeconds: 0.004 });
    expect(findCondition(gone.conditions, "Reachable")).toMatchObject({ status: "False", reason: "HostUnreachable" });
    expect(findCondition(gone.conditions, "ClockSynchronized")).toMatchObject({ status: "Unknown" });
    expect(findCondition(gone.conditions, "Stalled")).toBeUndefined();
  });

  it("stalls on a changed host key", () => {
    const status = computeDDIHostStatus({ host: "h1", reachable: false, failure: { kind: "HostKeyMismatch", message: "host key of h1 has changed" } }, undefined, 4, now);
    expect(findCondition(status.conditions, "Stalled")).toMatchObject({ status: "True", reason: "HostKeyMismatch", observedGeneration: 4 });
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "False", reason: "HostKeyMismatch" });
  });

  it("does not move lastTransitionTime when only the measured offset changes", () => {
    const first = computeDDIHostStatus({ host: "h1", reachable: true, facts }, undefined, 1, now);
    const second = computeDDIHostStatus({ host: "h1", reachable: true, facts: { ...facts, clockOffsetSeconds: 0.009 } }, first, 1, later);
    expect(second.clockOffsetSeconds).toBe(0.009);
    expect(second.conditions).toEqual(first.conditions);
  });

  it("keeps the previous offset while a new measurement is within its uncertainty, else rounds it to 1 ms", () => {
    const measured = (clockOffsetSeconds: number, clockOffsetUncertaintySeconds?: number) => ({
      host: "h1",
      reachable: true as const,
      facts: { ...facts, clockOffsetSeconds, ...(clockOffsetUncertaintySeconds !== undefined ? { clockOffsetUncertaintySeconds } : {}) },
    });
    const first = computeDDIHostStatus(measured(0.0023417, 0.0036), undefined, 1, now);
    expect(first.clockOffsetSeconds).toBe(0.002);
    // The same clock measured again: the status does not change, so nothing is written.
    const second = computeDDIHostStatus(measured(0.0041293, 0.0036), first, 1, later);
    expect(second).toEqual(first);
    const moved = computeDDIHostStatus(measured(0.0141293, 0.0036), second, 1, later);
    expect(moved.clockOffsetSeconds).toBe(0.014);
    // Without an uncertainty only the rounding applies.
    expect(computeDDIHostStatus(measured(0.0144), moved, 1, later).clockOffsetSeconds).toBe(0.014);
    expect(computeDDIHostStatus(measured(0.0156), moved, 1, later).clockOffsetSeconds).toBe(0.016);
  });

  it("a clock too far off says the same while the offset stays within its uncertainty", () => {
    const off = (clockOffsetSeconds: number) => ({ host: "h1", reachable: true as const, facts: { ...facts, clockOffsetSeconds, clockOffsetUncertaintySeconds: 0.01 } });
    const first = computeDDIHostStatus(off(-2.5049), undefined, 1, now);
    const second = computeDDIHostStatus(off(-2.4951), first, 1, later);
    expect(second).toEqual(first);
    expect(findCondition(second.conditions, "ClockSynchronized")?.message).toContain("2.50 s behind");
  });
});
