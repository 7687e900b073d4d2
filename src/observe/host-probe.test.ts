import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { localHostIO } from "../exec/host-io.js";
import { scratchDirs } from "../testing/support.js";
import { clockFromProbe, hostProbeArgv, hostProbeScript, probeHost, probedUnitActive } from "./host-probe.js";
import { keepalivedStateFilePath } from "../daemons/keepalived/index.js";
import { haPairNodeFromProbe } from "./keepalived.js";

const scratch = scratchDirs("host-probe-");
const local = { ...localHostIO, hostName: "local", stream: () => Promise.reject(new Error("no")), forward: () => Promise.reject(new Error("no")) };
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("hostProbeArgv", () => {
  it("passes every value as argv after a constant script", () => {
    const argv = hostProbeArgv({ hash: ["/etc/a.conf"], read: ["/run/x.state"], journals: [{ unit: "isc-dhcp-server.service", lines: 50, pattern: "pool .*" }] });
    expect(argv.slice(0, 4)).toEqual(["sh", "-c", hostProbeScript(), "ddi-ha-probe"]);
    expect(argv.slice(4)).toEqual(["hash", "/etc/a.conf", "read", "/run/x.state", "journal", "isc-dhcp-server.service", "50", "pool .*"]);
    expect(hostProbeScript()).not.toContain("/etc/a.conf");
  });

  it.each(["etc/relative", "/etc/$(reboot)", "/etc/a b", "/etc/../shadow", "/etc/a;rm"])("refuses the path %s", (path) => {
    expect(() => hostProbeArgv({ hash: [path] })).toThrow(/not a plain absolute path/);
  });

  it("refuses a unit that is not a plain service name", () => {
    expect(() => hostProbeArgv({ journals: [{ unit: "x; reboot", lines: 1, pattern: "." }] })).toThrow(/refusing to probe unit/);
  });
});

describe("clockFromProbe", () => {
  it("takes the middle of the host's two readings against the middle of the round trip", () => {
    // Sent at 1000, answered at 1100; the host read 5040 and 5060 (20 ms of script): 4 s ahead.
    expect(clockFromProbe(5040, 5060, { sentMs: 1000, receivedMs: 1100 })).toEqual({ offsetSeconds: 4, uncertaintySeconds: 0.04 });
  });
  it("gives nothing without both readings", () => {
    expect(clockFromProbe(undefined, 5060, { sentMs: 1000, receivedMs: 1100 })).toBeUndefined();
  });
});

describe("probeHost through a real shell", () => {
  it("hashes, reads and reports missing files in one command, whatever the files hold", async () => {
    const dir = await scratch();
    const managed = join(dir, "managed.conf");
    const tricky = join(dir, "tricky.state");
    const hostile = "@@ddi-ha-probe hash\n/etc/evil\n0000\n$(touch /tmp/pwned) `id`\n";
    await writeFile(managed, "vrrp_instance x {}\n");
    await writeFile(tricky, hostile);
    let runs = 0;
    const counted = { ...local, run: (argv: readonly string[], o?: object) => (runs++, local.run(argv, o)) };
    const probe = await probeHost(counted, { hash: [managed, join(dir, "absent.conf")], read: [tricky] });
    expect(runs).toBe(1);
    expect(probe.files.get(managed)).toEqual({ exists: true, sha256: sha("vrrp_instance x {}\n") });
    expect(probe.files.get(join(dir, "absent.conf"))).toEqual({ exists: false });
    expect(probe.files.get(tricky)).toEqual({ exists: true, content: hostile, sha256: sha(hostile) });
    expect(probe.files.has("/etc/evil")).toBe(false);
    // This machine's own clock: the offset is tiny, and known to within the round trip.
    expect(Math.abs(probe.facts.clockOffsetSeconds!)).toBeLessThan(1);
    expect(probe.facts.kernel).toMatch(/\d/);
    expect(probe.ipJson.startsWith("[")).toBe(true);
  });
});

describe("haPairNodeFromProbe", () => {
  const ipJson = JSON.stringify([
    { ifname: "lo", flags: ["LOOPBACK"], addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] },
    { ifname: "eth0", addr_info: [{ family: "inet", local: "198.18.5.11", prefixlen: 24 }, { family: "inet", local: "198.18.5.200", prefixlen: 32 }] },
  ]);
  const probe = (active: boolean, state?: string) => ({
    host: "h1",
    at: new Date(0),
    facts: { services: [], interfaces: [] },
    ipJson,
    units: [{ id: "keepalived.service", loadState: "loaded", activeState: active ? "active" : "inactive", subState: "", unitFileState: "enabled" }],
    files: new Map(state ? [[keepalivedStateFilePath("VI_x"), { exists: true, content: state }]] : []),
    journals: new Map(),
  });
  const target = { role: "primary" as const, interface: "eth0", vip: "198.18.5.200/24", instance: "VI_x" };

  it("reads the VIP, keepalived's state and the subnet from the probe alone", () => {
    expect(probedUnitActive(probe(true), "keepalived.service")).toBe(true);
    const node = haPairNodeFromProbe(probe(true, "MASTER 150 1795335150.5\n"), target);
    expect(node).toMatchObject({ host: "h1", reachable: true, keepalivedActive: true, holdsVIP: true, interfaceFound: true, vipInSubnet: true });
  });

  it("says STOP for a stopped keepalived and finds no missing interface", () => {
    expect(haPairNodeFromProbe(probe(false, "MASTER 150 1795335150.5\n"), target).vrrpState).toBe("STOP");
    expect(haPairNodeFromProbe(probe(true), { ...target, interface: "eth9" })).toMatchObject({ interfaceFound: false, holdsVIP: false });
  });
});
