// Observation of real Kea 2.2 HA pairs on two lab hosts (kea-dhcp4-server + kea-ctrl-agent under
// systemd), over the real SSH transport: the kea module renders, the real apply engine puts the
// files in place and restarts the daemons, and the observer POSTs status-get to each peer's
// Control Agent through an SSH port forward from that peer's host.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP_VERSION, type KeaHACluster, type KeaHAClusterStatus, keaHAClusterSpecSchema } from "../../src/api/index.js";
import { peerUrl, renderKeaCluster } from "../../src/daemons/kea/index.js";
import type { HostSession } from "../../src/exec/host-io.js";
import { observeKeaPeer } from "../../src/observe/index.js";
import { computeKeaHAClusterStatus, findCondition } from "../../src/status/index.js";
import type { ApplyResult } from "../../src/apply/index.js";
import { type ObserveLab, applyAll, eventually, startObserveLab } from "./observe-lab.js";

let ol: ObserveLab;

beforeAll(async () => {
  ol = await startObserveLab(2);
});

afterAll(async () => {
  await ol?.stop();
});

function cluster(mode: "hot-standby" | "load-balancing"): KeaHACluster {
  const [a, b] = ol.hosts as [(typeof ol.hosts)[0], (typeof ol.hosts)[0]];
  const base = ol.lab.network.subnet.split("/")[0]!.split(".").slice(0, 3).join(".");
  return {
    apiVersion: API_GROUP_VERSION,
    kind: "KeaHACluster",
    metadata: { name: `kea-${mode}`, namespace: "lab", generation: 1 },
    spec: keaHAClusterSpecSchema.parse({
      mode,
      peers: [
        { name: "server1", host: a.name, role: "primary", interface: "eth0" },
        { name: "server2", host: b.name, role: mode === "hot-standby" ? "standby" : "secondary", interface: "eth0" },
      ],
      // Short delays, and no unacked clients needed: with no DHCP traffic in the lab, a partner that
      // stops answering is declared down once max-response-delay has passed.
      heartbeatDelay: "1s",
      maxResponseDelay: "3s",
      maxAckDelay: "1s",
      maxUnackedClients: 0,
      dhcp4: {
        "valid-lifetime": 3600,
        subnet4: [{ id: 1, subnet: ol.lab.network.subnet, pools: [{ pool: `${base}.150 - ${base}.199` }] }],
      },
    }),
  };
}

async function observe(c: KeaHACluster, previous: KeaHAClusterStatus | undefined, results?: ApplyResult[]): Promise<KeaHAClusterStatus> {
  const peers = await Promise.all(
    c.spec.peers.map((p, i) => observeKeaPeer(ol.sessions.find((s) => s.hostName === p.host)!, { name: p.name, role: p.role, url: peerUrl(c, ol.hostMap, i) })),
  );
  return computeKeaHAClusterStatus({ mode: c.spec.mode, configSync: c.spec.configSync, peers }, results ? { results } : undefined, previous, 1, new Date());
}

const states = (st: KeaHAClusterStatus) => st.peers!.map((p) => p.state);

for (const mode of ["hot-standby", "load-balancing"] as const) {
  describe(`KeaHACluster ${mode}, observed`, () => {
    let c: KeaHACluster;
    let status: KeaHAClusterStatus | undefined;
    let secondSession: HostSession;

    it(`applies the pair: both peers reach ${mode}, health OK`, async () => {
      c = cluster(mode);
      secondSession = ol.sessions[1]!;
      const results = await applyAll(ol.sessions, renderKeaCluster(c, ol.hostMap));
      for (const r of results) expect(r, JSON.stringify(r.failure)).toMatchObject({ ok: true });
      status = await eventually(`both peers in ${mode}`, async () => {
        const st = await observe(c, status, results);
        return states(st).every((s) => s === mode) ? st : undefined;
      }, 90_000, 1_000);
      expect(status.health).toBe("OK");
      expect(status.peers).toEqual([
        { name: "server1", host: ol.hosts[0]!.name, role: "primary", state: mode, inTouch: true, unackedClients: 0, reachable: true },
        { name: "server2", host: ol.hosts[1]!.name, role: c.spec.peers[1]!.role, state: mode, inTouch: true, unackedClients: 0, reachable: true },
      ]);
      expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "True", reason: "AllPeersServing" });
      expect(findCondition(status.conditions, "ConfigInSync")).toMatchObject({ status: "True" });
    });

    it("one peer stopped: the other reaches partner-down and health is Impaired", async () => {
      const t0 = Date.now();
      await secondSession.run(["systemctl", "stop", "kea-dhcp4-server.service"]);
      status = await eventually("the primary in partner-down", async () => {
        const st = await observe(c, status);
        return st.peers![0]!.state === "partner-down" ? st : undefined;
      }, 60_000, 500);
      console.log(`${mode}: kea-dhcp4 stopped on server2 → partner-down observed on server1 after ${Date.now() - t0} ms`);
      expect(status.health).toBe("Impaired");
      expect(status.peers![1]).toMatchObject({ name: "server2", reachable: false, state: "unavailable" });
      const ready = findCondition(status.conditions, "Ready")!;
      expect(ready).toMatchObject({ status: "False", reason: "PeerUnreachable" });
      expect(ready.message).toMatch(/^health Impaired: server2 \(.* on .*\) does not answer: .*unable to forward command to the dhcp4 service/);
      expect(ready.message).toContain("server1 (primary on");
    });

    it("the peer back: both serve again", async () => {
      await secondSession.run(["systemctl", "start", "kea-dhcp4-server.service"]);
      status = await eventually(`both peers in ${mode} again`, async () => {
        const st = await observe(c, status);
        return states(st).every((s) => s === mode) ? st : undefined;
      }, 90_000, 1_000);
      expect(status.health).toBe("OK");
      expect(findCondition(status.conditions, "Ready")?.status).toBe("True");
    });
  });
}
