// Observation of a real ISC dhcpd 4.4.3 failover pair on two lab hosts, over the real SSH
// transport: the dhcpd module renders the files, the real apply engine puts them in place and
// starts dhcpd, and the observer reads both partners' states through OMAPI (the operator's own
// client, through an SSH port forward to each host's 127.0.0.1:omapi-port) and the pool balance
// from the journal. With forwarding refused by sshd, omshell on the host still reads them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP_VERSION, type DhcpFailoverPeer, type DhcpFailoverPeerStatus, dhcpFailoverPeerSpecSchema } from "../../src/api/index.js";
import { type DhcpdOmapiKey, generateOmapiKey, renderDhcpFailover } from "../../src/daemons/dhcpd/index.js";
import type { HostSession } from "../../src/exec/host-io.js";
import { type DhcpFailoverSideObservation, observeDhcpFailoverSide } from "../../src/observe/index.js";
import { computeDhcpFailoverPeerStatus, findCondition } from "../../src/status/index.js";
import type { ApplyResult } from "../../src/apply/index.js";
import { cutSshConnections } from "./apply-lab.js";
import { type ObserveLab, applyAll, eventually, startObserveLab } from "./observe-lab.js";

let ol: ObserveLab;
let pSession: HostSession;
let sSession: HostSession;
let peer: DhcpFailoverPeer;
let key: DhcpdOmapiKey;
let applied: ApplyResult[];

beforeAll(async () => {
  ol = await startObserveLab(2);
  [pSession, sSession] = ol.sessions as [HostSession, HostSession];
  const [a, b] = ol.hosts as [(typeof ol.hosts)[0], (typeof ol.hosts)[0]];
  const base = ol.lab.network.subnet.split("/")[0]!.split(".").slice(0, 3).join(".");
  peer = {
    apiVersion: API_GROUP_VERSION,
    kind: "DhcpFailoverPeer",
    metadata: { name: "dhcp-failover", namespace: "lab", generation: 1 },
    spec: dhcpFailoverPeerSpecSchema.parse({
      primary: { host: a.name, address: a.address },
      secondary: { host: b.name, address: b.address },
      maxResponseDelay: "10s",
      mclt: "30s",
      split: 128,
      // dhcpd serves only interfaces with a subnet declaration: the lab network itself.
      subnets: [{ subnet: ol.lab.network.subnet, pools: [{ range: [`${base}.100`, `${base}.149`] }] }],
    }),
  };
  key = { name: "ddi-ha-omapi", ...generateOmapiKey() };
});

afterAll(async () => {
  await ol?.stop();
});

const target = () => ({ peerName: "dhcp-failover", omapiPort: peer.spec.omapi.port, key });

async function observe(previous: DhcpFailoverPeerStatus | undefined, applyOutcome?: { results: ApplyResult[] }) {
  const [primary, secondary] = await Promise.all([observeDhcpFailoverSide(pSession, target()), observeDhcpFailoverSide(sSession, target())]);
  const status = computeDhcpFailoverPeerStatus({ peerName: "dhcp-failover", primary, secondary, mcltSeconds: 30 }, applyOutcome, previous, 1, new Date());
  return { primary, secondary, status };
}

describe("DhcpFailoverPeer, observed", () => {
  let status: DhcpFailoverPeerStatus | undefined;

  it("applies the pair: both sides reach normal, read through OMAPI, with the pool balance", async () => {
    applied = await applyAll(ol.sessions, renderDhcpFailover(peer, ol.hostMap, key));
    for (const r of applied) expect(r, JSON.stringify(r.failure)).toMatchObject({ ok: true });
    let last: { primary: DhcpFailoverSideObservation; secondary: DhcpFailoverSideObservation; status: DhcpFailoverPeerStatus } | undefined;
    const seen = await eventually(
      "both sides in normal",
      async () => {
        last = await observe(status, { results: applied });
        return last.primary.localState === "normal" && last.secondary.localState === "normal" ? last : undefined;
      },
      90_000,
      1_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen ${JSON.stringify(last)}`);
    });
    status = seen.status;
    // Through the native client and the forward, not omshell.
    expect(seen.primary).toMatchObject({ source: "omapi", omapiVia: "forward", localState: "normal", partnerState: "normal", dhcpdActive: true });
    expect(seen.secondary).toMatchObject({ source: "omapi", omapiVia: "forward", localState: "normal", partnerState: "normal", dhcpdActive: true });
    expect(status).toMatchObject({ primaryState: "normal", secondaryState: "normal" });
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "True", reason: "BothNormal" });
    // dhcpd logs the balance once both are normal; 50 addresses split between the partners.
    status = await eventually("the pool balance in the journal", async () => {
      const st = (await observe(status)).status;
      return st.pools?.length ? st : undefined;
    }, 60_000, 1_000);
    console.log(`pool balance: ${JSON.stringify(status.pools)}`);
    expect(status.pools).toEqual([{ subnet: ol.lab.network.subnet, total: 50, free: expect.any(Number), backup: expect.any(Number) }]);
    const pool = status.pools![0]!;
    expect(pool.free + pool.backup).toBe(50);
  });

  it("reads the newest pool balance from the real journal, past hundreds of other lines", async () => {
    // A unit of its own whose journal has three balance rounds, then 300 lines of client traffic.
    const unit = `ddi-ha-pool-lines-${Date.now()}`;
    const script =
      'for f in 51 52 53; do echo "balanced pool 55f7984fc050 198.18.77.0/24  total 100  free $f  backup 50  lts 0  max-misbal 15"; done; ' +
      'i=0; while [ $i -lt 300 ]; do echo "DHCPDISCOVER from 00:11:22:33:44:55 via eth0"; i=$((i+1)); done';
    await ol.hosts[0]!.run(["systemd-run", "--wait", "--quiet", `--unit=${unit}`, "sh", "-c", script]);
    const seen = await eventually(
      "the pool lines in the journal",
      async () => {
        const side = await observeDhcpFailoverSide(pSession, { ...target(), unit: `${unit}.service` });
        return side.pools.length ? side : undefined;
      },
      15_000,
      500,
    );
    expect(seen.pools).toEqual([{ subnet: "198.18.77.0/24", total: 100, free: 53, backup: 50, lts: 0 }]);
  });

  it("secondary stopped: the primary shows communications-interrupted", async () => {
    await sSession.run(["systemctl", "stop", "isc-dhcp-server.service"]);
    const seen = await eventually("the primary in communications-interrupted", async () => {
      const o = await observe(status);
      return o.primary.localState === "communications-interrupted" ? o : undefined;
    }, 60_000, 1_000);
    status = seen.status;
    expect(seen.primary).toMatchObject({ source: "omapi", omapiVia: "forward" });
    // Nothing listens on the stopped side's OMAPI port: the forward carries nothing, omshell fails too.
    expect(seen.secondary).toMatchObject({ dhcpdActive: false, forwardError: expect.stringContaining("closed before dhcpd answered") });
    expect(status).toMatchObject({ primaryState: "communications-interrupted", secondaryState: "unknown" });
    expect(findCondition(status.conditions, "CommunicationsInterrupted")).toMatchObject({ status: "True" });
    expect(findCondition(status.conditions, "CommunicationsInterrupted")!.message).toContain(`the primary ${pSession.hostName} cannot reach its partner ${sSession.hostName}`);
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "False", reason: "DhcpdNotRunning" });
    expect(findCondition(status.conditions, "Ready")!.message).toContain(`dhcpd is not running on the secondary ${sSession.hostName}`);
  });

  it("secondary back: both normal again and the abnormal condition is gone", async () => {
    await sSession.run(["systemctl", "start", "isc-dhcp-server.service"]);
    status = await eventually("both normal again", async () => {
      const { status: st } = await observe(status);
      return st.primaryState === "normal" && st.secondaryState === "normal" ? st : undefined;
    }, 90_000, 1_000);
    expect(findCondition(status.conditions, "CommunicationsInterrupted")).toBeUndefined();
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "True", reason: "BothNormal" });
  });

  it("forwarding refused by sshd (AllowTcpForwarding no): omshell on the host reads the states instead", async () => {
    const host = ol.hosts[1]!;
    const dropIn = "/etc/ssh/sshd_config.d/zz-ddi-ha-test-no-forwarding.conf";
    const reconnectWith = async (forwarding: "off" | "on") => {
      if (forwarding === "off") await host.run(["sh", "-c", `echo 'AllowTcpForwarding no' > ${dropIn}`]);
      else await host.run(["rm", "-f", "--", dropIn]);
      await host.run(["systemctl", "reload", "ssh"]);
      // sshd applies the setting to new connections: drop the pooled one, the session reconnects.
      await cutSshConnections(host);
    };
    await reconnectWith("off");
    try {
      const seen = await eventually("the secondary read through omshell", async () => {
        const o = await observe(status);
        return o.secondary.reachable && o.secondary.source === "omapi" && o.secondary.omapiVia === undefined ? o : undefined;
      }, 60_000, 1_000);
      expect(seen.secondary).toMatchObject({ source: "omapi", localState: "normal", partnerState: "normal", dhcpdActive: true });
      // Not a one-off from the cut connection: every later pass on the new connection falls back too.
      const again = await observe(status);
      expect(again.secondary).toMatchObject({ source: "omapi", localState: "normal" });
      expect(again.secondary.omapiVia).toBeUndefined();
      expect(seen.primary).toMatchObject({ source: "omapi", omapiVia: "forward", localState: "normal" });
      expect(findCondition(seen.status.conditions, "Ready")).toMatchObject({ status: "True", reason: "BothNormal" });
    } finally {
      await reconnectWith("on");
    }
    const back = await eventually("the secondary through the forward again", async () => {
      const o = await observe(status);
      return o.secondary.omapiVia === "forward" ? o : undefined;
    }, 60_000, 1_000);
    expect(back.secondary).toMatchObject({ source: "omapi", localState: "normal" });
  });
});
