import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type KeaPeerObservation, KEA_SERVING_STATES, aggregateKeaHealth, parseHaHeartbeat, parseStatusGet } from "./observe.js";

// Captured from real Kea 2.2.0: two kea-dhcp4 + kea-ctrl-agent pairs in two network namespaces
// joined by a veth on 198.18.77.0/24, load-balancing, heartbeat 1 s, max-response-delay 10 s,
// max-unacked-clients 0; then server2's kea-dhcp4 was stopped. The backup's answer is from the
// three-peer lab of ha-lab.test.ts, over kea-dhcp4's unix socket. See ADR 0006.
const capture = (name: string) => readFileSync(new URL(`testdata/observe/kea-2.2.0-${name}.json`, import.meta.url), "utf8");

describe("parseStatusGet on real Kea 2.2.0 answers (through the Control Agent)", () => {
  it("both peers load-balancing and in touch", () => {
    expect(parseStatusGet(capture("status-get-lb-primary"))).toEqual({
      ok: true,
      pid: 27867,
      uptimeSeconds: 10,
      relationships: [
        {
          mode: "load-balancing",
          localRole: "primary",
          localState: "load-balancing",
          scopes: ["server1"],
          remote: {
            role: "secondary",
            inTouch: true,
            lastState: "load-balancing",
            lastScopes: ["server2"],
            communicationInterrupted: false,
            unackedClients: 0,
            unackedClientsLeft: 0,
            connectingClients: 0,
            analyzedPackets: 0,
            age: 0,
          },
        },
      ],
    });
    const secondary = parseStatusGet(capture("status-get-lb-secondary"));
    expect(secondary.ok && secondary.relationships[0]).toMatchObject({ localRole: "secondary", localState: "load-balancing", scopes: ["server2"], remote: { role: "primary", inTouch: true } });
  });

  it("3 s after the partner's kea-dhcp4 stopped: communication-recovery, partner unavailable", () => {
    const r = parseStatusGet(capture("status-get-lb-primary-partner-gone-3s"));
    expect(r.ok && r.relationships[0]).toMatchObject({ localState: "communication-recovery", remote: { lastState: "unavailable", communicationInterrupted: false, age: 3 } });
  });

  it("after max-response-delay: partner-down, serving both scopes; in-touch stays true (it was in touch once)", () => {
    const r = parseStatusGet(capture("status-get-lb-primary-partner-down"));
    expect(r.ok && r.relationships[0]).toMatchObject({
      localState: "partner-down",
      scopes: ["server1", "server2"],
      remote: { inTouch: true, lastState: "unavailable", communicationInterrupted: true, unackedClientsLeft: 1, age: 13 },
    });
  });

  it("the agent is up but kea-dhcp4 is not: a failure with Kea's text", () => {
    expect(parseStatusGet(capture("status-get-agent-dhcp4-down"))).toEqual({
      ok: false,
      result: 1,
      text: "unable to forward command to the dhcp4 service: No such file or directory. The server is likely to be offline",
    });
  });

  it("accepts the unix socket's unwrapped answer and already-parsed JSON", () => {
    const wrapped = JSON.parse(capture("status-get-lb-primary")) as unknown[];
    expect(parseStatusGet(wrapped[0])).toEqual(parseStatusGet(capture("status-get-lb-primary")));
  });

  it("a backup server, asked over its unix socket (unwrapped answer): no remote", () => {
    expect(parseStatusGet(capture("unix-socket-status-get-backup"))).toEqual({
      ok: true,
      pid: 13764,
      uptimeSeconds: 4,
      relationships: [{ mode: "load-balancing", localRole: "backup", localState: "backup", scopes: [] }],
    });
  });

  it.each([
    ["not JSON", "<html>502</html>", -1, "not JSON"],
    ["not Kea's shape", { status: "ok" }, -1, "not a Kea command answer (no numeric result)"],
    ["an unsupported command", [{ result: 2, text: "'status-get' command not supported." }], 2, "'status-get' command not supported."],
  ])("reports %s as a failure", (_name, response, result, text) => {
    const r = parseStatusGet(response);
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ result });
    expect(!r.ok && r.text).toContain(text);
  });
});

describe("parseHaHeartbeat on real Kea 2.2.0 answers", () => {
  it("state, clock and scopes", () => {
    expect(parseHaHeartbeat(capture("ha-heartbeat-primary"))).toEqual({
      ok: true,
      state: "load-balancing",
      dateTime: "Sun, 22 Nov 2026 07:53:35 GMT",
      scopes: ["server1"],
      unsentUpdateCount: 0,
    });
  });
  it("kea-dhcp4 down behind the agent", () => {
    expect(parseHaHeartbeat(capture("ha-heartbeat-agent-dhcp4-down"))).toMatchObject({ ok: false, result: 1 });
  });
});

describe("aggregateKeaHealth (Micetro's OK / Impaired / Down)", () => {
  const peer = (role: string, state: string | undefined, reachable = true): KeaPeerObservation => ({ name: role, role, reachable, ...(state ? { state } : {}) });
  const table: [string, KeaPeerObservation[], "OK" | "Impaired" | "Down"][] = [
    ["all load-balancing, backup in backup", [peer("primary", "load-balancing"), peer("secondary", "load-balancing"), peer("backup", "backup")], "OK"],
    ["hot-standby pair", [peer("primary", "hot-standby"), peer("standby", "hot-standby")], "OK"],
    ["passive-backup", [peer("primary", "passive-backup"), peer("backup", "backup")], "OK"],
    ["primary unreachable, secondary partner-down", [peer("primary", undefined, false), peer("secondary", "partner-down"), peer("backup", "backup")], "Impaired"],
    ["backup unreachable", [peer("primary", "load-balancing"), peer("secondary", "load-balancing"), peer("backup", undefined, false)], "Impaired"],
    ["secondary still waiting (not serving)", [peer("primary", "load-balancing"), peer("secondary", "waiting")], "Impaired"],
    ["primary in maintenance", [peer("primary", "in-maintenance"), peer("secondary", "partner-in-maintenance")], "Impaired"],
    ["both terminated by clock skew: they still answer, HA does not", [peer("primary", "terminated"), peer("secondary", "terminated")], "Impaired"],
    ["primary and secondary unreachable, backup up", [peer("primary", undefined, false), peer("secondary", undefined, false), peer("backup", "backup")], "Down"],
    ["both reachable but neither serving (waiting/syncing)", [peer("primary", "waiting"), peer("secondary", "syncing")], "Down"],
    ["passive-backup primary down", [peer("primary", undefined, false), peer("backup", "backup")], "Down"],
    ["no peers observed", [], "Down"],
  ];
  it.each(table)("%s → %s", (_name, peers, health) => expect(aggregateKeaHealth(peers)).toBe(health));

  it("defines serving in one place, and excludes the transitional states", () => {
    for (const s of ["waiting", "syncing", "ready", "in-maintenance", "terminated", "unavailable"]) expect(KEA_SERVING_STATES.has(s)).toBe(false);
  });
});
