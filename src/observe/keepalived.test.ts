// Captured text: testdata/ip-monitor-address.txt is real `ip -o monitor address` output from a
// lab host (a VIP added and deleted by hand, then a real VRRP takeover and give-back) and from a
// local network namespace (IPv6 and a point-to-point address); testdata/keepalived-2.2.7-notify-fifo.txt
// is what keepalived 2.2.7 wrote to its vrrp_notify_fifo on a lab host becoming MASTER.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CommandStream, HostSession } from "../exec/host-io.js";
import type { CommandResult } from "../exec/runner.js";
import { type AddressEvent, HOST_EVENTS_SCRIPT, type HostEvent, parseAddressMonitorLine, parseHostEventLine, sameAddress, watchAddresses, watchHostEvents } from "./address-monitor.js";
import { interfaceHoldsAddress, observeHAPairNode, parseVrrpStateRecord, summarizePair, vipInInterfaceSubnet } from "./keepalived.js";

const testdata = (name: string) => readFileSync(join(import.meta.dirname, "testdata", name), "utf8");

describe("parseAddressMonitorLine on captured ip monitor output", () => {
  const lines = testdata("ip-monitor-address.txt").split("\n").filter(Boolean);

  it("reads adds and deletes with interface, family and CIDR", () => {
    expect(lines.map(parseAddressMonitorLine)).toEqual([
      { type: "add", ifindex: 91, interface: "eth0", family: "inet", address: "198.18.137.200/24" },
      { type: "delete", ifindex: 91, interface: "eth0", family: "inet", address: "198.18.137.200/24" },
      { type: "add", ifindex: 93, interface: "eth0", family: "inet", address: "198.18.137.200/24" },
      { type: "delete", ifindex: 93, interface: "eth0", family: "inet", address: "198.18.137.200/24" },
      { type: "add", ifindex: 1, interface: "lo", family: "inet6", address: "fd00::86/64" },
      { type: "add", ifindex: 1, interface: "lo", family: "inet", address: "198.18.5.1/32" },
      { type: "delete", ifindex: 1, interface: "lo", family: "inet6", address: "fd00::86/64" },
    ]);
  });

  it.each([
    ["[ADDR]91: eth0    inet 10.0.0.1/24 scope global eth0", { type: "add", address: "10.0.0.1/24" }],
    ["Deleted 12: br0@if3    inet 10.71.17.86/24 scope global secondary br0", { type: "delete", interface: "br0", address: "10.71.17.86/24" }],
    ["Deleted [ADDR]91: eth0    inet 10.0.0.1/24 scope global eth0", undefined],
    ["91: eth0    link/ether 02:42:c6:12:89:0b", undefined],
    ["", undefined],
  ])("%j", (line, expected) => {
    const got = parseAddressMonitorLine(line);
    if (expected === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(expected);
  });

  it("compares addresses without prefix length and case", () => {
    expect(sameAddress("10.71.17.86/24", "10.71.17.86")).toBe(true);
    expect(sameAddress("FD00::86/64", "fd00::86/128")).toBe(true);
    expect(sameAddress("10.71.17.86/24", "10.71.17.8/24")).toBe(false);
  });
});

describe("parseVrrpStateRecord", () => {
  it("reads the last record keepalived wrote to its notify fifo", () => {
    expect(parseVrrpStateRecord(testdata("keepalived-2.2.7-notify-fifo.txt"), "VI_obs")).toEqual({ state: "MASTER", priority: 150 });
  });

  it.each([
    ["MASTER 150 1795335150.534621123\n", "ddiha_ns_dns_v4", { state: "MASTER", priority: 150, since: new Date(1795335150534) }],
    ["BACKUP 100 1795335157.1\nFAULT 0 1795335160.000000001\n", undefined, { state: "FAULT", priority: 0, since: new Date(1795335160000) }],
    ["MASTER\n", undefined, { state: "MASTER" }],
    ["BACKUP 100", undefined, { state: "BACKUP", priority: 100 }],
    ['INSTANCE "VI_1" FAULT 0\n', "VI_1", { state: "FAULT", priority: 0 }],
    // Another instance's newer record does not count for this one.
    ['INSTANCE "VI_1" MASTER 150\nINSTANCE "VI_2" BACKUP 100\n', "VI_1", { state: "MASTER", priority: 150 }],
    ['INSTANCE "VI_1" DELETED 150', "VI_1", { state: "UNKNOWN" }],
    ["", undefined, { state: "UNKNOWN" }],
    ["master", undefined, { state: "UNKNOWN" }],
  ] as const)("%j (instance %s)", (text, instance, expected) => {
    expect(parseVrrpStateRecord(text, instance)).toEqual(expected);
  });

});

describe("interfaceHoldsAddress", () => {
  const ipJson = JSON.stringify([{ ifname: "eth0", addr_info: [{ local: "198.18.137.11", prefixlen: 24 }, { local: "198.18.137.200", prefixlen: 24 }] }]);
  it.each([
    ["198.18.137.200/24", true],
    ["198.18.137.200", true],
    ["198.18.137.20/24", false],
  ])("%s → %s", (vip, expected) => {
    expect(interfaceHoldsAddress(ipJson, vip)).toBe(expected);
  });
  it("is false on output that is not ip's JSON", () => {
    expect(interfaceHoldsAddress('Device "eth9" does not exist.', "198.18.137.200/24")).toBe(false);
  });
});

describe("vipInInterfaceSubnet", () => {
  const ipJson = JSON.stringify([
    {
      ifname: "eth0",
      addr_info: [
        { family: "inet", local: "198.18.137.11", prefixlen: 24 },
        { family: "inet", local: "198.18.137.200", prefixlen: 24 },
        { family: "inet6", local: "fe80::1", prefixlen: 64 },
      ],
    },
  ]);
  it.each([
    ["198.18.137.200/24", true, ["198.18.137.11/24"]],
    ["198.18.138.200/24", false, ["198.18.137.11/24", "198.18.137.200/24"]],
    ["fe80::99/64", true, ["fe80::1/64"]],
    ["2001:db8::5/64", false, ["fe80::1/64"]],
  ])("%s → %s", (vip, inSubnet, addresses) => {
    expect(vipInInterfaceSubnet(ipJson, vip)).toEqual({ inSubnet, addresses });
  });
  it("is false for an interface without addresses of the VIP's family, or with only the VIP itself", () => {
    expect(vipInInterfaceSubnet(JSON.stringify([{ ifname: "eth0", addr_info: [] }]), "198.18.137.200/24")).toEqual({ inSubnet: false, addresses: [] });
    const onlyVip = JSON.stringify([{ ifname: "eth0", addr_info: [{ family: "inet", local: "198.18.137.200", prefixlen: 24 }] }]);
    expect(vipInInterfaceSubnet(onlyVip, "198.18.137.200/24")).toEqual({ inSubnet: false, addresses: [] });
  });
});

describe("summarizePair", () => {
  const n = (role: "primary" | "secondary", holdsVIP: boolean, reachable = true) => ({ role, holdsVIP, reachable });
  it.each([
    [[n("primary", true), n("secondary", false)], "primary"],
    [[n("primary", false), n("secondary", true)], "secondary"],
    [[n("primary", false), n("secondary", false)], "none"],
    [[n("primary", true), n("secondary", true)], "both"],
    // A node we cannot reach does not count, whatever it last said.
    [[n("primary", true, false), n("secondary", true)], "secondary"],
  ] as const)("%j → %s", (nodes, expected) => {
    expect(summarizePair(nodes)).toBe(expected);
  });
});

function fakeSession(over: Partial<HostSession>): HostSession {
  return {
    hostName: "h1",
    run: async () => ({ code: 0, stdout: "", stderr: "" }),
    readFile: async () => undefined,
    writeFile: async () => {},
    stream: async () => {
      throw new Error("no stream");
    },
    forward: async () => {
      throw new Error("no forward");
    },
    ...over,
  };
}

describe("observeHAPairNode", () => {
  const target = { role: "primary" as const, interface: "eth0", vip: "198.18.137.200/24", instance: "VI_obs" };
  const ipJson = JSON.stringify([
    { ifname: "eth0", addr_info: [{ family: "inet", local: "198.18.137.11", prefixlen: 24 }, { family: "inet", local: "198.18.137.200", prefixlen: 24 }] },
  ]);

  it("combines keepalived's unit, its notify record and the VIP", async () => {
    const session = fakeSession({
      run: async (argv) => (argv[0] === "systemctl" ? { code: 0, stdout: "active\n", stderr: "" } : { code: 0, stdout: ipJson, stderr: "" }),
      readFile: async (path) => (path === "/run/ddi-ha/keepalived/VI_obs.state" ? 'INSTANCE "VI_obs" MASTER 150\n' : undefined),
    });
    expect(await observeHAPairNode(session, target)).toEqual({
      host: "h1",
      role: "primary",
      interface: "eth0",
      reachable: true,
      keepalivedActive: true,
      vrrpState: "MASTER",
      priority: 150,
      holdsVIP: true,
      interfaceFound: true,
      vipInSubnet: true,
      interfaceAddresses: ["198.18.137.11/24"],
    });
  });

  it("says STOP for a stopped keepalived whatever its last record, and notices a missing interface", async () => {
    const session = fakeSession({
      run: async (argv) =>
        argv[0] === "systemctl" ? { code: 3, stdout: "inactive\n", stderr: "" } : { code: 1, stdout: "", stderr: 'Device "eth0" does not exist.\n' },
      readFile: async () => "MASTER\n",
    });
    expect(await observeHAPairNode(session, target)).toMatchObject({ reachable: true, keepalivedActive: false, vrrpState: "STOP", holdsVIP: false, interfaceFound: false });
  });

  it("turns a transport failure into an unreachable node", async () => {
    const session = fakeSession({
      run: async () => {
        throw new Error("cannot reach h1 (root@198.18.0.11:22): timed out");
      },
    });
    expect(await observeHAPairNode(session, target)).toMatchObject({ reachable: false, vrrpState: "UNKNOWN", holdsVIP: false, error: expect.stringContaining("timed out") });
  });
});

describe("watchAddresses", () => {
  it("delivers parsed changes, announces each (re)start, and restarts an ended monitor", async () => {
    const events: AddressEvent[] = [];
    let starts = 0;
    const ends: ((r: CommandResult) => void)[] = [];
    const session = fakeSession({
      stream: async (argv, onLine) => {
        expect(argv).toEqual(["ip", "-o", "monitor", "address"]);
        starts++;
        const done = new Promise<CommandResult>((resolve) => ends.push(resolve));
        setTimeout(() => onLine(`${starts === 1 ? "" : "Deleted "}93: eth0    inet 198.18.137.200/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever`), 5);
        const stream: CommandStream = { stop: async () => ends.at(-1)!({ code: 143, stdout: "", stderr: "" }), done };
        return stream;
      },
    });
    const watch = watchAddresses(session, (e) => events.push(e), { backoff: { baseMs: 1, maxMs: 2 }, random: () => 0 });
    await waitUntil(() => events.some((e) => e.type === "add"));
    ends[0]!({ code: 255, stdout: "", stderr: "connection to h1 lost" });
    await waitUntil(() => starts === 2 && events.some((e) => e.type === "delete"));
    await watch.stop();
    expect(watch.restarts).toBe(1);
    expect(events.map((e) => e.type)).toEqual(["watching", "add", "interrupted", "watching", "delete"]);
    expect(events[2]).toMatchObject({ type: "interrupted", host: "h1", reason: "ip monitor ended with exit 255: connection to h1 lost" });
    expect(events[1]).toMatchObject({ host: "h1", address: "198.18.137.200/24", interface: "eth0" });
    // Stopped for good: no restart after stop().
    await new Promise((r) => setTimeout(r, 20));
    expect(starts).toBe(2);
  });

  it("keeps retrying, with growing delays, while the monitor cannot start", async () => {
    const events: AddressEvent[] = [];
    let attempts = 0;
    const session = fakeSession({
      stream: async () => {
        attempts++;
        throw new Error("cannot reach h1");
      },
    });
    const watch = watchAddresses(session, (e) => events.push(e), { backoff: { baseMs: 2, maxMs: 8 }, random: () => 0 });
    await waitUntil(() => attempts >= 4);
    await watch.stop();
    const delays = events.filter((e) => e.type === "interrupted").map((e) => (e as { retryInMs: number }).retryInMs);
    expect(delays.slice(0, 4)).toEqual([1, 2, 4, 4]);
    expect(events.every((e) => e.type === "interrupted")).toBe(true);
  });
});

describe("the host-events stream", () => {
  it.each([
    ["A 93: eth0    inet 198.18.137.200/24 scope global secondary eth0", { type: "add", interface: "eth0", address: "198.18.137.200/24" }],
    ["A Deleted 93: eth0    inet 198.18.137.200/24 scope global secondary eth0", { type: "delete", address: "198.18.137.200/24" }],
    ["J Stopped keepalived.service - Keepalive Daemon (LVS and VRRP).", { type: "unit", message: "Stopped keepalived.service - Keepalive Daemon (LVS and VRRP)." }],
    ["J (ddi-ha_lab_vip) Entering FAULT STATE", { type: "unit", message: "(ddi-ha_lab_vip) Entering FAULT STATE" }],
    ["J ", undefined],
    ["A 91: eth0    link/ether 02:42:c6:12:89:0b", undefined],
    // Unprefixed text (a shell's complaint on stdout) is not an event.
    ["Stopped keepalived.service", undefined],
  ])("%j", (line, expected) => {
    const got = parseHostEventLine(line);
    if (expected === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(expected);
  });

  it("is a constant script with no argv, matching PID 1's lines about the DDI units and keepalived's VRRP process only", () => {
    expect(HOST_EVENTS_SCRIPT).toContain("ip -o monitor address");
    expect(HOST_EVENTS_SCRIPT).toMatch(/journalctl -f -n 0 -q -o cat _PID=1 (UNIT=[a-z0-9-]+\.service )+\+ SYSLOG_IDENTIFIER=Keepalived_vrrp/);
    expect(HOST_EVENTS_SCRIPT).toContain("UNIT=keepalived.service");
    expect(HOST_EVENTS_SCRIPT).toContain("UNIT=kea-dhcp4-server.service");
    expect(HOST_EVENTS_SCRIPT).not.toContain("$");
  });

  it("delivers address changes and unit lines from one stream", async () => {
    const events: HostEvent[] = [];
    let argvSeen: readonly string[] = [];
    const session = fakeSession({
      stream: async (argv, onLine) => {
        argvSeen = argv;
        setTimeout(() => {
          onLine("A 93: eth0    inet 198.18.137.200/24 scope global secondary eth0");
          onLine("J Stopped keepalived.service - Keepalive Daemon (LVS and VRRP).");
        }, 5);
        let end!: (r: CommandResult) => void;
        const done = new Promise<CommandResult>((resolve) => (end = resolve));
        return { stop: async () => end({ code: 143, stdout: "", stderr: "" }), done };
      },
    });
    const watch = watchHostEvents(session, (e) => events.push(e));
    await waitUntil(() => events.length >= 3);
    await watch.stop();
    expect(argvSeen).toEqual(["sh", "-c", HOST_EVENTS_SCRIPT, "ddi-ha-events"]);
    expect(events.map((e) => e.type)).toEqual(["watching", "add", "unit"]);
    expect(events[2]).toMatchObject({ host: "h1", message: "Stopped keepalived.service - Keepalive Daemon (LVS and VRRP)." });
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 2));
  }
}
