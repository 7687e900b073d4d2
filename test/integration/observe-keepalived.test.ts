// Observation of a real keepalived pair on two lab hosts (Debian bookworm, systemd, keepalived
// 2.2.7, BIND), reached over the real SSH transport. The pair's files come from the keepalived
// module's renderer and are put in place by the real apply engine. Failures are real: keepalived
// stopped, and the whole primary frozen with `docker pause` (a hung host).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP_VERSION, type HAPair, type HAPairStatus, haPairSpecSchema } from "../../src/api/index.js";
import { keepalivedInstanceNames, renderKeepalivedPair } from "../../src/daemons/keepalived/index.js";
import type { HostSession } from "../../src/exec/host-io.js";
import {
  type AddressEvent,
  type AddressWatch,
  classifyHostFailure,
  observeHAPairNode,
  observeHostFacts,
  observeServiceStates,
  sameAddress,
  watchAddresses,
} from "../../src/observe/index.js";
import { computeDDIHostStatus, computeHAPairStatus, findCondition, requiredHAPairServices } from "../../src/status/index.js";
import type { LabHost } from "../lab/lab.js";
import { type ObserveLab, applyAll, eventually, randomVrid, startObserveLab, waitForItem, withTimeout } from "./observe-lab.js";

let ol: ObserveLab;
let primary: LabHost;
let pSession: HostSession;
let sSession: HostSession;
let pair: HAPair;
let vip: string;
/** Where the event list stood when the primary was unpaused: the give-back can follow within milliseconds. */
let eventsAtUnpause = 0;
const events: (AddressEvent & { receivedAt: number })[] = [];
const watches: AddressWatch[] = [];

beforeAll(async () => {
  ol = await startObserveLab(2);
  [primary] = ol.hosts as [LabHost, LabHost];
  [pSession, sSession] = ol.sessions as [HostSession, HostSession];
  vip = `${ol.lab.network.spare(0)}/${ol.lab.network.prefixLength}`;
  pair = {
    apiVersion: API_GROUP_VERSION,
    kind: "HAPair",
    metadata: { name: "dns-vip", namespace: "lab", generation: 1 },
    spec: haPairSpecSchema.parse({
      primary: { host: ol.hosts[0]!.name, interface: "eth0" },
      secondary: { host: ol.hosts[1]!.name, interface: "eth0" },
      virtualIP: vip,
      virtualRouterID: randomVrid(),
      services: { dns: true },
    }),
  };
  // The pair tracks named: it must run on both hosts before keepalived starts.
  await Promise.all(ol.hosts.map((h) => h.startService("named")));
  for (const s of ol.sessions) {
    watches.push(watchAddresses(s, (e) => events.push({ ...e, receivedAt: Date.now() })));
  }
  await waitForItem(events, (e) => e.type === "watching" && e.host === sSession.hostName, 20_000, "the secondary's address monitor");
  await waitForItem(events, (e) => e.type === "watching" && e.host === pSession.hostName, 20_000, "the primary's address monitor");
});

afterAll(async () => {
  await withTimeout("stopping the address monitors", Promise.all(watches.map((w) => w.stop())), 15_000).catch((err: Error) => console.warn(err.message));
  await ol?.stop();
});

const instance = () => keepalivedInstanceNames(pair).ipv4;

async function observePair(previous: HAPairStatus | undefined, applyOutcome?: Parameters<typeof computeHAPairStatus>[1]) {
  const required = requiredHAPairServices(pair.spec);
  const nodes = await Promise.all(
    ([
      ["primary", pSession],
      ["secondary", sSession],
    ] as const).map(async ([role, session]) => {
      const node = await observeHAPairNode(session, { role, interface: pair.spec[role].interface, vip, instance: instance() });
      const services = node.reachable ? await observeServiceStates(session, required).catch(() => []) : [];
      return { ...node, services };
    }),
  );
  return computeHAPairStatus({ vip, nodes, requiredServices: required, preempt: pair.spec.preempt }, applyOutcome, previous, 1, new Date());
}

const vipEvent = (host: string, type: "add" | "delete") => (e: AddressEvent) => e.type === type && e.host === host && "address" in e && sameAddress(e.address, vip);

describe("DDIHost facts from a lab host", () => {
  it("reads OS, kernel, services with versions, interfaces and a small clock offset", async () => {
    const facts = await observeHostFacts(pSession);
    console.log(`clock offset of ${pSession.hostName}: ${facts.clockOffsetSeconds} s (± ${facts.clockOffsetUncertaintySeconds} s), ntpSynchronized=${facts.ntpSynchronized}`);
    expect(facts.os).toContain("Debian");
    expect(facts.kernel).toMatch(/\S/);
    expect(facts.services.find((s) => s.name === "keepalived")).toMatchObject({ installed: true, unit: "keepalived.service", version: expect.stringMatching(/^2\.\d+\.\d+/) });
    expect(facts.services.find((s) => s.name === "named")).toMatchObject({ installed: true, active: true });
    expect(facts.services.find((s) => s.name === "kea-dhcp4")).toMatchObject({ installed: true, unit: "kea-dhcp4-server.service", version: "2.2.0" });
    expect(facts.interfaces).toContainEqual({ name: "eth0", addresses: [`${primary.address}/${ol.lab.network.prefixLength}`] });
    // The containers share this machine's kernel clock: what is left is measurement error.
    expect(Math.abs(facts.clockOffsetSeconds!)).toBeLessThan(0.5);
    const status = computeDDIHostStatus({ host: pSession.hostName, reachable: true, facts }, undefined, 1, new Date());
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "True", reason: "HostReady" });
  });

  it("reads the same facts as a sudo user (the batched script runs under sudo -n)", async () => {
    const base = ol.ddiHosts[0]!;
    const asSudo = { ...base, metadata: { name: `${base.metadata.name}-sudo`, namespace: "lab" }, spec: { ...base.spec, user: ol.lab.users.sudo, sudo: true } };
    const session = await ol.transport.session(asSudo, { privateKey: ol.lab.privateKey });
    const [viaSudo, asRoot] = await Promise.all([observeHostFacts(session), observeHostFacts(pSession)]);
    expect(viaSudo.services).toEqual(asRoot.services);
    expect(viaSudo.interfaces).toEqual(asRoot.interfaces);
    expect(viaSudo.os).toBe(asRoot.os);
  });

  it("turns a refused host key into a Stalled DDIHost", async () => {
    const other = ol.ddiHosts[1]!;
    const wrongKey = { ...ol.ddiHosts[0]!, metadata: { name: "wrong-key", namespace: "lab" }, spec: { ...ol.ddiHosts[0]!.spec, hostKey: other.spec.hostKey } };
    const failure = await ol.transport.session(wrongKey, { privateKey: ol.lab.privateKey }).then(
      () => undefined,
      (err: unknown) => classifyHostFailure(err),
    );
    expect(failure?.kind).toBe("HostKeyMismatch");
    const status = computeDDIHostStatus({ host: "wrong-key", reachable: false, failure: failure! }, undefined, 1, new Date());
    expect(findCondition(status.conditions, "Stalled")).toMatchObject({ status: "True", reason: "HostKeyMismatch" });
  });
});

describe("the address monitor stream", () => {
  it("reports an address change on a host within about a second, without polling", async () => {
    const probe = `${ol.lab.network.spare(9)}/32`;
    const seen = (type: "add" | "delete") => (e: AddressEvent) => e.type === type && e.host === sSession.hostName && "address" in e && sameAddress(e.address, probe);
    for (const type of ["add", "delete"] as const) {
      const from = events.length;
      const t0 = Date.now();
      await ol.hosts[1]!.run(["ip", "addr", type === "add" ? "add" : "del", probe, "dev", "eth0"]);
      const event = await waitForItem(events, seen(type), 10_000, `the ${type} of ${probe} on the secondary`, from);
      const ms = event.receivedAt - t0;
      console.log(`address ${type} on ${sSession.hostName} → monitor event after ${ms} ms (includes the docker exec that made it)`);
      // A generous bound for a shared machine; a poll every few seconds would miss it.
      expect(ms).toBeLessThan(3_000);
    }
  });
});

describe("HAPair failover, observed", () => {
  let status: HAPairStatus | undefined;

  it("applies the pair: the primary takes the VIP and keepalived's notify hook says MASTER", async () => {
    const results = await applyAll(ol.sessions, renderKeepalivedPair(pair, ol.hostMap));
    for (const r of results) expect(r, JSON.stringify(r.failure)).toMatchObject({ ok: true });
    status = await eventually("the VIP on the primary", async () => {
      const st = await observePair(status, { results });
      return st.activeNode === "primary" && st.nodes!.every((n) => n.vrrpState !== "UNKNOWN") ? st : undefined;
    }, 30_000);
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "True", reason: "VIPOnPrimary" });
    expect(status.nodes).toEqual([
      { host: pSession.hostName, role: "primary", vrrpState: "MASTER", holdsVIP: true, servicesHealthy: true },
      { host: sSession.hostName, role: "secondary", vrrpState: "BACKUP", holdsVIP: false, servicesHealthy: true },
    ]);
    expect(status.failoverCount).toBe(0);
  });

  it("keepalived stopped on the primary: the VIP moves, seen by the monitor stream", async () => {
    const from = events.length;
    const t0 = Date.now();
    await pSession.run(["systemctl", "stop", "keepalived.service"]);
    const added = await waitForItem(events, vipEvent(sSession.hostName, "add"), 15_000, "the VIP added on the secondary", from);
    console.log(`keepalived stopped → VIP seen on the secondary after ${added.receivedAt - t0} ms`);
    status = await observePair(status);
    expect(status.activeNode).toBe("secondary");
    expect(status.failoverCount).toBe(1);
    expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "False", reason: "KeepalivedNotRunning" });
    expect(findCondition(status.conditions, "Ready")!.message).toContain(`keepalived is not running on ${pSession.hostName}`);
    expect(status.nodes![0]).toMatchObject({ vrrpState: "STOP", holdsVIP: false, servicesHealthy: false });
  });

  it("keepalived back on the primary: the VIP returns (preempt)", async () => {
    const from = events.length;
    await pSession.run(["systemctl", "start", "keepalived.service"]);
    await waitForItem(events, vipEvent(pSession.hostName, "add"), 20_000, "the VIP back on the primary", from);
    status = await eventually("the pair healthy again", async () => {
      const st = await observePair(status);
      return findCondition(st.conditions, "Ready")?.status === "True" ? st : undefined;
    }, 20_000);
    expect(status.activeNode).toBe("primary");
    expect(status.failoverCount).toBe(2);
  });

  it("named stopped on the secondary: Ready names the service, the host and the fix", async () => {
    await ol.hosts[1]!.stopService("named");
    try {
      const st = await observePair(status);
      const ready = findCondition(st.conditions, "Ready")!;
      expect(ready).toMatchObject({ status: "False", reason: "ServiceNotRunning" });
      expect(ready.message).toContain(`named is not running on ${sSession.hostName}: HA for DNS needs it on both hosts`);
    } finally {
      await ol.hosts[1]!.startService("named");
    }
  });

  it("the primary freezes (docker pause): the secondary takes the VIP, observed through its monitor stream", async () => {
    const from = events.length;
    const t0 = Date.now();
    await primary.pause();
    try {
      const added = await waitForItem(events, vipEvent(sSession.hostName, "add"), 30_000, "the VIP added on the secondary", from);
      const ms = added.receivedAt - t0;
      // keepalived's own detection is 3 × advert_int + skew (3.6 s with priority 100); the rest is ours.
      console.log(`primary paused → VIP add observed on the secondary after ${ms} ms (failure to observation)`);
      expect(ms).toBeLessThan(15_000);
      status = await observePair(status);
      expect(status.activeNode).toBe("secondary");
      expect(status.nodes![0]).toMatchObject({ host: pSession.hostName, vrrpState: "UNKNOWN", holdsVIP: false });
      expect(findCondition(status.conditions, "Ready")).toMatchObject({ status: "False", reason: "HostUnreachable" });
      expect(status.failoverCount).toBe(3);
    } finally {
      eventsAtUnpause = events.length;
      await primary.unpause();
    }
  });

  it("unpaused: the VIP leaves the secondary again (the primary preempts)", async () => {
    await waitForItem(events, vipEvent(sSession.hostName, "delete"), 30_000, "the VIP deleted on the secondary", eventsAtUnpause);
    status = await eventually("the pair healthy after the freeze", async () => {
      const st = await observePair(status);
      return findCondition(st.conditions, "Ready")?.status === "True" ? st : undefined;
    }, 60_000);
    expect(status.activeNode).toBe("primary");
    expect(status.failoverCount).toBe(4);
    expect(status.conditions!.map((c) => c.type)).toEqual(["Ready", "ConfigApplied", "ConfigInSync", "VIPAssigned"]);
  });
});
