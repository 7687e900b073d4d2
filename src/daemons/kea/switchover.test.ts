// The planned hot-standby switchover (ADR 0033): the roles rendered for spec.preferredPrimary, and
// the next step from the observed roles and states, in the order measured on real Kea 2.2.
import { describe, expect, it } from "vitest";
import { keaHAClusterSpecSchema } from "../../api/index.js";
import { effectivePeers, isSwitchedOver, planKeaSwitchover, wantedPrimary } from "./switchover.js";
import { renderKeaCluster } from "./render.js";
import { testCluster, testHost } from "./test-fixtures.js";

const peers = [
  { name: "s1", host: "h1", role: "primary" },
  { name: "s2", host: "h2", role: "standby" },
];
const spec = (extra: Record<string, unknown> = {}, mode = "hot-standby") => ({ mode, peers: [...peers], ...extra });

describe("spec.preferredPrimary", () => {
  it("naming the standby swaps the primary and standby roles; naming the primary, or nothing, keeps them", () => {
    const swapped = keaHAClusterSpecSchema.parse(spec({ preferredPrimary: "s2" }));
    expect(isSwitchedOver(swapped)).toBe(true);
    expect(effectivePeers(swapped).map((p) => `${p.name}:${p.role}`)).toEqual(["s1:standby", "s2:primary"]);
    expect(wantedPrimary(swapped)).toBe("s2");
    for (const extra of [{}, { preferredPrimary: "s1" }]) {
      const kept = keaHAClusterSpecSchema.parse(spec(extra));
      expect(isSwitchedOver(kept)).toBe(false);
      expect(effectivePeers(kept).map((p) => p.role)).toEqual(["primary", "standby"]);
      expect(wantedPrimary(kept)).toBe("s1");
    }
  });

  it("a backup peer keeps its role", () => {
    const s = keaHAClusterSpecSchema.parse({ ...spec({ preferredPrimary: "s2" }), peers: [...peers, { name: "b", host: "h3", role: "backup" }] });
    expect(effectivePeers(s).map((p) => p.role)).toEqual(["standby", "primary", "backup"]);
  });

  it("is refused outside hot-standby and for a backup or unknown peer, naming the field", () => {
    const refused = (s: unknown) => {
      const r = keaHAClusterSpecSchema.safeParse(s);
      return r.success ? "accepted" : r.error.issues.map((i) => i.message).join("; ");
    };
    expect(refused({ mode: "load-balancing", peers: [{ ...peers[0] }, { ...peers[1], role: "secondary" }], preferredPrimary: "s2" })).toContain("spec.preferredPrimary is allowed only in mode hot-standby");
    expect(refused({ ...spec({ preferredPrimary: "b" }), peers: [...peers, { name: "b", host: "h3", role: "backup" }] })).toContain("spec.preferredPrimary must name the primary or the standby peer");
    expect(refused(spec({ preferredPrimary: "nobody" }))).toContain("spec.preferredPrimary must name the primary or the standby peer");
    expect(refused(spec({ preferredPrimary: "s2" }))).toBe("accepted");
  });

  it("the rendered configs carry the swapped roles on both peers, each with its own this-server-name", () => {
    const cluster = testCluster({ ...spec({ preferredPrimary: "s2" }), peers: peers.map((p, i) => ({ ...p, url: `http://198.18.0.${i + 1}:8000/` })) });
    const hosts = new Map([["h1", testHost("h1", "198.18.0.1")], ["h2", testHost("h2", "198.18.0.2")]]);
    const configs = renderKeaCluster(cluster, hosts).filter((f) => f.path === "/etc/kea/kea-dhcp4.conf");
    for (const file of configs) {
      const ha = JSON.parse(file.content).Dhcp4["hooks-libraries"].find((h: { library: string }) => h.library.endsWith("libdhcp_ha.so")).parameters["high-availability"][0];
      expect(ha["this-server-name"]).toBe(file.host === "h1" ? "s1" : "s2");
      expect(ha.peers.map((p: { name: string; role: string }) => `${p.name}:${p.role}`)).toEqual(["s1:standby", "s2:primary"]);
    }
    expect(configs).toHaveLength(2);
  });
});

// Wanted roles after the switchover: s2 primary (on h2), s1 standby (on h1).
const obs = (s1: string, s2: string, running: [string, string] = ["primary", "standby"], reachable: [boolean, boolean] = [true, true]) => [
  { name: "s1", host: "h1", role: "standby", state: s1, runningRole: running[0], reachable: reachable[0] },
  { name: "s2", host: "h2", role: "primary", state: s2, runningRole: running[1], reachable: reachable[1] },
];

describe("planKeaSwitchover", () => {
  it("both in hot-standby with the old roles: ha-maintenance-start to the new primary, nothing applied yet", () => {
    const plan = planKeaSwitchover(obs("hot-standby", "hot-standby"), false, false);
    expect(plan).toMatchObject({ phase: "HandingOver", send: { command: "ha-maintenance-start", peer: "s2" } });
    expect(plan.order).toBeUndefined();
  });

  it("the new primary answers every client: apply, the old primary's host first, the new primary's last", () => {
    for (const state of ["partner-in-maintenance", "partner-down"]) {
      expect(planKeaSwitchover(obs("in-maintenance", state), true, false)).toMatchObject({ phase: "Applying", order: ["h1", "h2"] });
    }
    // The old primary already restarted with the new config (standby, back in in-maintenance): the new primary's turn.
    expect(planKeaSwitchover(obs("in-maintenance", "partner-in-maintenance", ["standby", "standby"]), true, false)).toMatchObject({ phase: "Applying", order: ["h1", "h2"] });
  });

  it("the old primary serves nobody anyway (down, terminated): apply at once, there is nothing to hand over", () => {
    expect(planKeaSwitchover(obs("unavailable", "hot-standby", ["primary", "standby"], [false, true]), false, false)).toMatchObject({ phase: "Applying" });
    expect(planKeaSwitchover(obs("terminated", "terminated"), false, false)).toMatchObject({ phase: "Applying" });
  });

  it("waits (applies nothing) while a peer converges, the new primary does not answer, or a host is in maintenance", () => {
    expect(planKeaSwitchover(obs("hot-standby", "syncing"), false, false)).toMatchObject({ phase: "Waiting" });
    expect(planKeaSwitchover(obs("hot-standby", "unavailable", ["primary", "standby"], [true, false]), false, false)).toMatchObject({ phase: "Waiting" });
    const held = planKeaSwitchover(obs("hot-standby", "hot-standby"), false, true);
    expect(held).toMatchObject({ phase: "Waiting" });
    expect(held.why).toContain("maintenance");
    expect(held.send).toBeUndefined();
  });

  it("roles right: ends the maintenance left over (cancel on the new primary), then Done; Idle when no switchover was under way", () => {
    const running: [string, string] = ["standby", "primary"];
    expect(planKeaSwitchover(obs("in-maintenance", "partner-in-maintenance", running), true, false)).toMatchObject({
      phase: "Finishing",
      send: { command: "ha-maintenance-cancel", peer: "s2" },
    });
    expect(planKeaSwitchover(obs("in-maintenance", "partner-down", running), true, false)).toMatchObject({ phase: "Finishing", send: { command: "ha-maintenance-notify", peer: "s1" } });
    expect(planKeaSwitchover(obs("syncing", "partner-down", running), true, false)).toMatchObject({ phase: "Finishing" });
    expect(planKeaSwitchover(obs("hot-standby", "hot-standby", running), true, false)).toMatchObject({ phase: "Done" });
    // A maintenance state someone started by hand is not the switchover's to end.
    expect(planKeaSwitchover(obs("in-maintenance", "partner-in-maintenance", running), false, false)).toMatchObject({ phase: "Idle" });
  });

  it("a peer whose running role is unknown (not answering) does not make a switchover pending by itself", () => {
    expect(planKeaSwitchover([{ ...obs("hot-standby", "hot-standby", ["standby", "primary"])[0]!, runningRole: undefined, reachable: false, state: "unavailable" }, obs("x", "hot-standby", ["standby", "primary"])[1]!], false, false).phase).toBe("Idle");
  });
});
