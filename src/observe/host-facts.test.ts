// testdata/host-facts-debian-bookworm.txt is the real output of hostFactsScript() on a lab host
// (Debian bookworm container, systemd as PID 1, named started, the other daemons installed and
// stopped), captured over SSH.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CommandResult, RunOptions } from "../exec/runner.js";
import type { HostSession } from "../exec/host-io.js";
import {
  estimateClockOffset,
  hostFactsScript,
  observeHostFacts,
  observeServiceStates,
  parseDaemonVersion,
  parseDateSecondsNanos,
  parseHostFactsOutput,
  parseIpAddrJson,
  parseNtpSynchronized,
  parseOsReleasePrettyName,
  parseSystemctlShowBlocks,
  servicesFromUnits,
} from "./host-facts.js";

const testdata = (name: string) => readFileSync(join(import.meta.dirname, "testdata", name), "utf8");

describe("parseHostFactsOutput on a real Debian bookworm lab host", () => {
  const facts = parseHostFactsOutput(testdata("host-facts-debian-bookworm.txt"));

  it("reads the OS, the kernel and NTP", () => {
    expect(facts.os).toBe("Debian GNU/Linux 12 (bookworm)");
    expect(facts.kernel).toBe("6.18.44-fc-v669");
    expect(facts.ntpSynchronized).toBe(false);
  });

  it("reports every service with its unit, install state, activity and version", () => {
    expect(facts.services).toEqual([
      { name: "keepalived", unit: "keepalived.service", installed: true, active: false, version: "2.2.7" },
      { name: "named", unit: "named.service", installed: true, active: true, version: "9.18.49-1~deb12u1-Debian" },
      { name: "isc-dhcp-server", unit: "isc-dhcp-server.service", installed: true, active: false, version: "4.4.3-P1" },
      // bookworm's init script serves v4 only: there is no isc-dhcp-server6 unit, though dhcpd is there.
      { name: "isc-dhcp-server6", unit: "isc-dhcp-server6.service", installed: false, active: false },
      { name: "kea-dhcp4", unit: "kea-dhcp4-server.service", installed: true, active: false, version: "2.2.0" },
      { name: "kea-dhcp6", unit: "kea-dhcp6-server.service", installed: false, active: false },
      { name: "kea-ctrl-agent", unit: "kea-ctrl-agent.service", installed: true, active: false, version: "2.2.0" },
    ]);
  });

  it("lists interfaces with CIDR addresses and leaves out the loopback", () => {
    expect(facts.interfaces).toEqual([{ name: "eth0", addresses: ["198.18.137.11/24"] }]);
  });
});

describe("servicesFromUnits", () => {
  const block = (id: string, load: string, active = "inactive") => ({ id, loadState: load, activeState: active, subState: "", unitFileState: "" });
  // Blocks in candidate order: keepalived, named, bind9, isc-dhcp-server, dhcpd, isc-dhcp-server6, dhcpd6,
  // kea-dhcp4-server, kea-dhcp4, kea-dhcp6-server, kea-dhcp6, kea-ctrl-agent.
  it("takes RHEL's unit names when the Debian ones are unknown", () => {
    const units = [
      block("keepalived.service", "loaded", "active"),
      block("named.service", "loaded", "active"),
      block("bind9.service", "not-found"),
      block("isc-dhcp-server.service", "not-found"),
      block("dhcpd.service", "loaded", "active"),
      block("isc-dhcp-server6.service", "not-found"),
      block("dhcpd6.service", "loaded"),
      block("kea-dhcp4-server.service", "not-found"),
      block("kea-dhcp4.service", "loaded", "active"),
      block("kea-dhcp6-server.service", "not-found"),
      block("kea-dhcp6.service", "not-found"),
      block("kea-ctrl-agent.service", "not-found"),
    ];
    const services = servicesFromUnits(units, new Map([["isc-dhcp-server", "4.4.3-P1"], ["kea-ctrl-agent", "2.2.0"]]));
    expect(services.find((s) => s.name === "isc-dhcp-server")).toEqual({ name: "isc-dhcp-server", unit: "dhcpd.service", installed: true, active: true, version: "4.4.3-P1" });
    expect(services.find((s) => s.name === "isc-dhcp-server6")).toMatchObject({ unit: "dhcpd6.service", installed: true, active: false });
    expect(services.find((s) => s.name === "kea-dhcp4")).toMatchObject({ unit: "kea-dhcp4.service", active: true });
    // A version is only reported for an installed service.
    expect(services.find((s) => s.name === "kea-ctrl-agent")).toEqual({ name: "kea-ctrl-agent", unit: "kea-ctrl-agent.service", installed: false, active: false });
  });

  it("counts a masked unit as installed but not active", () => {
    const units = parseSystemctlShowBlocks("Id=keepalived.service\nLoadState=masked\nActiveState=inactive\nSubState=dead\nUnitFileState=masked\n");
    expect(servicesFromUnits(units, new Map())[0]).toEqual({ name: "keepalived", unit: "keepalived.service", installed: true, active: false });
  });

  it("reports nothing as installed when systemctl printed nothing (no systemd)", () => {
    expect(servicesFromUnits([], new Map()).every((s) => !s.installed && !s.active)).toBe(true);
  });
});

describe("small parsers", () => {
  it.each([
    ['PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', "Debian GNU/Linux 12 (bookworm)"],
    ["PRETTY_NAME='Rocky Linux 9.4 (Blue Onyx)'", "Rocky Linux 9.4 (Blue Onyx)"],
    ["PRETTY_NAME=Alpine", "Alpine"],
    ['NAME="x"\nPRETTY_NAME="Say \\"hi\\""', 'Say "hi"'],
    ['NAME="no pretty name"', undefined],
    ['PRETTY_NAME=""', undefined],
  ])("PRETTY_NAME of %j", (text, expected) => {
    expect(parseOsReleasePrettyName(text)).toBe(expected);
  });

  it.each([
    ["keepalived", "Keepalived v2.2.7 (01/16,2022)\n\nCopyright(C) 2001-2022", "2.2.7"],
    ["named", "BIND 9.18.49-1~deb12u1-Debian (Extended Support Version) <id:>", "9.18.49-1~deb12u1-Debian"],
    ["isc-dhcp-server", "isc-dhcpd-4.4.3-P1", "4.4.3-P1"],
    ["kea-dhcp4", "2.2.0", "2.2.0"],
    ["kea-dhcp4", "sh: 1: kea-dhcp4: not found", undefined],
    ["keepalived", "", undefined],
  ] as const)("%s version from %j", (service, text, expected) => {
    expect(parseDaemonVersion(service, text)).toBe(expected);
  });

  it.each([
    ["yes\n", true],
    ["no", false],
    ["", undefined],
    [undefined, undefined],
    ["Failed to connect to bus: Host is down", undefined],
  ])("NTPSynchronized %j", (text, expected) => {
    expect(parseNtpSynchronized(text)).toBe(expected);
  });

  it("ip -j: keeps every address of an interface, including IPv6, and survives junk", () => {
    const json = JSON.stringify([
      { ifname: "br0", flags: ["UP"], addr_info: [{ local: "10.71.17.85", prefixlen: 24 }, { local: "fe80::1", prefixlen: 64 }] },
      { ifname: "enp1s0", flags: ["UP"], addr_info: [] },
    ]);
    expect(parseIpAddrJson(json)).toEqual([
      { name: "br0", addresses: ["10.71.17.85/24", "fe80::1/64"] },
      { name: "enp1s0", addresses: [] },
    ]);
    expect(parseIpAddrJson("Object \"addr\" is unknown")).toEqual([]);
  });

  it.each([
    ["1795334697.710512241\n", 1795334697710.512241],
    ["1795334697.5", 1795334697500],
    ["1795334697", undefined],
    ["date: invalid", undefined],
  ])("date output %j is epoch ms %j", (text, expected) => {
    const got = parseDateSecondsNanos(text);
    if (expected === undefined) expect(got).toBeUndefined();
    else expect(got).toBeCloseTo(expected, 3);
  });
});

describe("estimateClockOffset", () => {
  it("uses the sample with the shortest round trip and corrects by RTT/2", () => {
    const samples = [
      { localBeforeMs: 1000, remoteMs: 3100, localAfterMs: 1200 }, // RTT 200 → offset 2000
      { localBeforeMs: 2000, remoteMs: 4010, localAfterMs: 2020 }, // RTT 20 → offset 2000
      { localBeforeMs: 3000, remoteMs: 5500, localAfterMs: 3900 }, // RTT 900
    ];
    expect(estimateClockOffset(samples)).toEqual({ offsetSeconds: 2, uncertaintySeconds: 0.01 });
  });

  it("reports a host behind us as negative", () => {
    expect(estimateClockOffset([{ localBeforeMs: 10_000, remoteMs: 9_505, localAfterMs: 10_010 }])?.offsetSeconds).toBeCloseTo(-0.5, 6);
  });

  it("has nothing to say without samples", () => {
    expect(estimateClockOffset([])).toBeUndefined();
  });
});

/** A scripted HostSession: answers commands from a table and records them. */
function scriptedSession(answer: (argv: readonly string[], options?: RunOptions) => CommandResult): HostSession & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    hostName: "h1",
    calls,
    async run(argv, options) {
      calls.push([...argv]);
      return answer(argv, options);
    },
    async readFile() {
      return undefined;
    },
    async writeFile() {},
    async stream() {
      throw new Error("not used");
    },
    async forward() {
      throw new Error("not used");
    },
  };
}

describe("observeHostFacts", () => {
  it("uses one batched command plus the clock samples, and measures the offset against the injected clock", async () => {
    let t = 1_000_000;
    const session = scriptedSession((argv) => {
      if (argv[0] === "sh") return { code: 0, stdout: testdata("host-facts-debian-bookworm.txt"), stderr: "" };
      if (argv[0] === "date") {
        // The host reads its clock 10 ms into a 20 ms round trip, and is 1.5 s ahead of us.
        t += 10;
        const remote = t + 1500;
        t += 10;
        return { code: 0, stdout: `${Math.floor(remote / 1000)}.${String((remote % 1000) * 1e6).padStart(9, "0")}\n`, stderr: "" };
      }
      throw new Error(`unexpected ${argv.join(" ")}`);
    });
    const facts = await observeHostFacts(session, { now: () => t, clockSamples: 2 });
    expect(session.calls.map((c) => c[0])).toEqual(["sh", "date", "date"]);
    expect(session.calls[0]).toEqual(["sh", "-c", hostFactsScript()]);
    expect(facts.clockOffsetSeconds).toBeCloseTo(1.5, 3);
    expect(facts.clockOffsetUncertaintySeconds).toBeCloseTo(0.01, 3);
    expect(facts.os).toBe("Debian GNU/Linux 12 (bookworm)");
  });

  it("fails with the host's complaint when the batch fails", async () => {
    const session = scriptedSession(() => ({ code: 126, stdout: "", stderr: "sh: permission denied" }));
    await expect(observeHostFacts(session)).rejects.toThrow(/h1 failed \(exit 126\): sh: permission denied/);
  });

  it("the batched script interpolates no value from outside this module", () => {
    // Constants only: the same text every time, and no quote that a value could break out of.
    expect(hostFactsScript()).toBe(hostFactsScript());
    expect(hostFactsScript()).not.toMatch(/\$\{|"\$|`/);
  });
});

describe("observeServiceStates", () => {
  it("asks systemctl for the candidates of the named services only", async () => {
    const session = scriptedSession((argv) => {
      expect(argv).toEqual([
        "systemctl",
        "show",
        "--property=Id,LoadState,ActiveState,SubState,UnitFileState",
        "--",
        "named.service",
        "bind9.service",
        "isc-dhcp-server.service",
        "dhcpd.service",
      ]);
      return {
        code: 0,
        stdout:
          "Id=named.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\nId=bind9.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n\n" +
          "Id=isc-dhcp-server.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\nUnitFileState=generated\n\nId=dhcpd.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n",
        stderr: "",
      };
    });
    expect(await observeServiceStates(session, ["named", "isc-dhcp-server"])).toEqual([
      { name: "named", unit: "named.service", installed: true, active: true },
      { name: "isc-dhcp-server", unit: "isc-dhcp-server.service", installed: true, active: false },
    ]);
  });
});
