import type { HAPair } from "../../api/index.js";
import { join } from "node:path";
import { expectGolden as expectGoldenFile } from "../../testing/support.js";
import { describe, expect, it } from "vitest";
import type { RenderedFile } from "../../render/types.js";
import {
  KeepalivedRenderError,
  MAINTENANCE_FLAG_PATH,
  MAINTENANCE_TRACK_FILE,
  NOTIFY_SCRIPT_PATH,
  advertSettings,
  effectivePriority,
  keepalivedInstanceNames,
  keepalivedPairFilePath,
  keepalivedPairRemovals,
  lintKeepalivedSources,
  renderKeepalivedHost,
  renderKeepalivedPair,
  trackWeight,
} from "./index.js";
import { TESTDATA_DIR, VARIANTS, haPair, host, labHosts, loadExample } from "./test-support.js";

function expectGolden(actual: string, relPath: string): void {
  expectGoldenFile(actual, join(TESTDATA_DIR, relPath));
}

const pairFile = (files: RenderedFile[], hostName: string) => files.find((f) => f.host === hostName && f.ownership === "owned")!;

/** Lints one host's files as keepalived reads them: main first, then the included pair files. */
function lintHost(files: RenderedFile[], hostName: string): string[] {
  const mine = files.filter((f) => f.host === hostName && f.path !== NOTIFY_SCRIPT_PATH);
  const main = mine.filter((f) => f.ownership === "shared");
  const pairs = mine.filter((f) => f.ownership === "owned");
  return lintKeepalivedSources([...main, ...pairs].map((f) => ({ text: f.content, path: f.path })));
}


/** Admission refuses these specs too; the renderer must refuse them again should one slip past. */
function bypassingSchema(pair: HAPair, spec: Partial<HAPair["spec"]>): HAPair {
  return { ...pair, spec: { ...pair.spec, ...spec } };
}

describe("renderKeepalivedPair on examples/ddi-central-keepalived (seed 000)", async () => {
  const { pair, hosts } = await loadExample();
  const files = renderKeepalivedPair(pair, hosts);

  it("renders the pair's own file, the shared main file and the shared notify hook for each host", () => {
    expect(files.map((f) => [f.host, f.path, f.ownership, f.mode.toString(8)])).toEqual([
      ["ddi-central-primary", "/etc/keepalived/ddi-ha.d/ddi-ha-examples_ddi-central.conf", "owned", "644"],
      ["ddi-central-primary", "/etc/keepalived/keepalived.conf", "shared", "644"],
      ["ddi-central-primary", "/usr/local/libexec/ddi-ha/keepalived-notify", "shared", "755"],
      ["ddi-central-primary", "/var/lib/ddi-ha/keepalived-maintenance", "shared", "644"],
      ["ddi-central-secondary", "/etc/keepalived/ddi-ha.d/ddi-ha-examples_ddi-central.conf", "owned", "644"],
      ["ddi-central-secondary", "/etc/keepalived/keepalived.conf", "shared", "644"],
      ["ddi-central-secondary", "/usr/local/libexec/ddi-ha/keepalived-notify", "shared", "755"],
      ["ddi-central-secondary", "/var/lib/ddi-ha/keepalived-maintenance", "shared", "644"],
    ]);
    for (const f of files) {
      expect(f.service).toBe("keepalived.service");
      // The maintenance flag is no keepalived config: nothing to check, and keepalived follows it without a reload.
      expect(f.check).toEqual(f.path === MAINTENANCE_FLAG_PATH ? { kind: "none" } : { kind: "keepalived" });
      expect(f.followedByDaemon).toBe(f.path === MAINTENANCE_FLAG_PATH ? true : undefined);
      expect(f.owner).toBe("ddi-ha-examples/ddi-central");
    }
  });

  it.each(["ddi-central-primary", "ddi-central-secondary"])("matches the reviewed golden files for %s", (hostName) => {
    for (const f of files.filter((x) => x.host === hostName)) expectGolden(f.content, join("ddi-central-keepalived", hostName, f.path));
  });

  it("passes our own lint on each host", () => {
    expect(lintHost(files, "ddi-central-primary")).toEqual([]);
    expect(lintHost(files, "ddi-central-secondary")).toEqual([]);
  });

  it("starts the primary as MASTER and the secondary as BACKUP, each on its own interface", () => {
    expect(pairFile(files, "ddi-central-primary").content).toMatch(/state MASTER\n {2}interface enp1s0\n/);
    expect(pairFile(files, "ddi-central-secondary").content).toMatch(/state BACKUP\n {2}interface br0\n/);
    expect(pairFile(files, "ddi-central-secondary").content).toContain("10.71.17.86/24 dev br0");
  });

  it("tracks named and isc-dhcp-server with a weight beyond the 50-point priority gap", () => {
    const text = pairFile(files, "ddi-central-primary").content;
    expect(text).toContain('script "/usr/bin/systemctl is-active --quiet named.service"');
    expect(text).toContain('script "/usr/bin/systemctl is-active --quiet isc-dhcp-server.service"');
    expect(text).toContain("ddiha_ddi-ha-examples_ddi-central_dns weight -60");
  });

  it("renders the shared files identically on both hosts", () => {
    const shared = files.filter((f) => f.ownership === "shared");
    for (const path of new Set(shared.map((f) => f.path))) {
      const contents = new Set(shared.filter((f) => f.path === path).map((f) => f.content));
      expect(contents.size).toBe(1);
    }
  });

  it("names the instance for the observer and the files removal deletes", () => {
    expect(keepalivedInstanceNames(pair)).toEqual({ ipv4: "ddiha_ddi-ha-examples_ddi-central_v4" });
    expect(keepalivedPairRemovals(pair).map((r) => [r.host, r.path, r.ownership])).toEqual([
      ["ddi-central-primary", "/etc/keepalived/ddi-ha.d/ddi-ha-examples_ddi-central.conf", "owned"],
      ["ddi-central-secondary", "/etc/keepalived/ddi-ha.d/ddi-ha-examples_ddi-central.conf", "owned"],
    ]);
    expect(keepalivedPairRemovals({ ...pair, spec: { ...pair.spec, deletionPolicy: "Retain" } })).toEqual([]);
  });
});


describe.each(Object.keys(VARIANTS))("renderKeepalivedPair variant %s", (variant) => {
  const files = VARIANTS[variant]!();
  it("matches the reviewed golden pair files and passes our lint", () => {
    for (const f of files.filter((x) => x.ownership === "owned")) expectGolden(f.content, join("variants", variant, f.host, f.path));
    for (const h of ["ka-a", "ka-b"]) expect(lintHost(files, h)).toEqual([]);
  });
});

describe("maintenance and planned switchover", () => {
  const flagOf = (files: RenderedFile[], h: string) => files.find((f) => f.host === h && f.path === MAINTENANCE_FLAG_PATH)!.content;
  const priorityOf = (files: RenderedFile[], h: string) => /priority (\d+)/.exec(pairFile(files, h).content)?.[1];
  const stateOf = (files: RenderedFile[], h: string) => /state (MASTER|BACKUP)/.exec(pairFile(files, h).content)?.[1];

  it("writes 1 into the flag file of a host in maintenance only; every instance tracks it with weight 0", () => {
    const hosts = labHosts();
    const a = hosts.get("ka-a")!;
    hosts.set("ka-a", { ...a, spec: { ...a.spec, maintenance: true } });
    const files = renderKeepalivedPair(haPair(), hosts);
    expect([flagOf(files, "ka-a"), flagOf(files, "ka-b")]).toEqual(["1\n", "0\n"]);
    for (const h of ["ka-a", "ka-b"]) expect(pairFile(files, h).content).toContain(`track_file {\n    ${MAINTENANCE_TRACK_FILE} weight 0\n  }`);
    // The pair's own files do not change with maintenance: only the flag does, which needs no reload.
    const normal = renderKeepalivedPair(haPair(), labHosts());
    expect(files.filter((f) => f.path !== MAINTENANCE_FLAG_PATH)).toEqual(normal.filter((f) => f.path !== MAINTENANCE_FLAG_PATH));
  });

  it("preferredNode secondary swaps the priorities and the starting MASTER, and keeps the track weight", () => {
    const normal = renderKeepalivedPair(haPair(), labHosts());
    const switched = renderKeepalivedPair(haPair({ preferredNode: "secondary" }), labHosts());
    expect([priorityOf(normal, "ka-a"), priorityOf(normal, "ka-b")]).toEqual(["150", "100"]);
    expect([priorityOf(switched, "ka-a"), priorityOf(switched, "ka-b")]).toEqual(["100", "150"]);
    expect([stateOf(switched, "ka-a"), stateOf(switched, "ka-b")]).toEqual(["BACKUP", "MASTER"]);
    expect(pairFile(switched, "ka-a").content).toContain("weight -60");
    expect(effectivePriority(haPair({ preferredNode: "secondary" }).spec, "primary")).toBe(100);
    for (const h of ["ka-a", "ka-b"]) expect(lintHost(switched, h)).toEqual([]);
  });
});

describe("renderKeepalivedPair choices", () => {
  const text = (files: RenderedFile[], h: string) => pairFile(files, h).content;

  it("nopreempt: both nodes BACKUP with nopreempt and weight 0", () => {
    const files = VARIANTS.nopreempt!();
    for (const h of ["ka-a", "ka-b"]) {
      expect(text(files, h)).toMatch(/state BACKUP\n {2}nopreempt\n/);
      expect(text(files, h)).not.toMatch(/weight -/);
      expect(text(files, h)).toContain("kea-dhcp4-server.service");
      expect(text(files, h)).toContain("kea-dhcp6-server.service");
    }
  });

  it("unicast: own address as source, the partner as the only peer, fault without peers", () => {
    const files = VARIANTS.unicast!();
    expect(text(files, "ka-a")).toContain("unicast_src_ip 198.18.0.12\n  unicast_peer {\n    198.18.0.3\n  }\n  unicast_fault_no_peer");
    expect(text(files, "ka-b")).toContain("unicast_src_ip 198.18.0.3\n  unicast_peer {\n    198.18.0.12\n  }");
    expect(text(files, "ka-a")).toContain("auth_type PASS\n    auth_pass s3cret");
  });

  it("IPv6: a second VRRPv3 instance without authentication, the IPv4 one stays VRRPv2", () => {
    const files = VARIANTS.ipv6!();
    const t = text(files, "ka-a");
    expect(t).toContain("vrrp_instance ddiha_lab_dual-stack_v4 {");
    expect(t).toContain("vrrp_instance ddiha_lab_dual-stack_v6 {");
    expect(t.split("version 3").length - 1).toBe(1);
    expect(t).toContain("2001:db8::86/64 dev eth0");
    expect(t).toContain("isc-dhcp-server6.service");
  });

  it("fractional advert_int: version 3 and 0.5", () => {
    expect(text(VARIANTS.fractional!(), "ka-a")).toContain("version 3\n  advert_int 0.5\n");
  });

  it("preemptDelay: both BACKUP with preempt_delay 30, no nopreempt", () => {
    const files = VARIANTS["preempt-delay"]!();
    for (const h of ["ka-a", "ka-b"]) {
      expect(text(files, h)).toMatch(/state BACKUP\n {2}preempt_delay 30\n/);
      expect(text(files, h)).not.toContain("nopreempt");
    }
  });

  it.each([
    { gap: [150, 100], preempt: true, weight: -60 },
    { gap: [254, 10], preempt: true, weight: -253 },
    { gap: [254, 1], preempt: true, weight: 0 },
    { gap: [150, 100], preempt: false, weight: 0 },
  ])("trackWeight($gap, preempt $preempt) = $weight", ({ gap, preempt, weight }) => {
    expect(trackWeight({ preempt, primary: { priority: gap[0]! }, secondary: { priority: gap[1]! } } as never)).toBe(weight);
  });

  it.each([
    ["1s", { advertInt: "1", version: 2 }],
    ["3s", { advertInt: "3", version: 2 }],
    ["250ms", { advertInt: "0.25", version: 3 }],
    ["1500ms", { advertInt: "1.5", version: 3 }],
  ])("advertSettings(%s)", (d, expected) => {
    expect(advertSettings(d)).toEqual(expected);
  });

  it("derives distinct, safe names per namespace and name", () => {
    const a = keepalivedInstanceNames(haPair({}, "a-b", "c"));
    const b = keepalivedInstanceNames(haPair({}, "b", "c-a"));
    expect(a.ipv4).not.toBe(b.ipv4);
    expect(a.ipv4).toMatch(/^[A-Za-z0-9_.-]+$/);
    expect(keepalivedPairFilePath(haPair({ primary: { host: "ka-a", interface: "eth0", configPath: "/etc/keepalived/sub/main.conf" } }), "primary")).toBe(
      "/etc/keepalived/sub/ddi-ha.d/lab_lab-vip.conf",
    );
  });
});

describe("renderKeepalivedPair refuses specs it cannot render, naming the field", () => {
  const cases: { name: string; pair: () => ReturnType<typeof haPair>; hosts?: () => ReturnType<typeof labHosts>; field: string; message: RegExp }[] = [
    {
      name: "missing primary DDIHost",
      pair: () => haPair({ primary: { host: "nowhere", interface: "eth0" } }),
      field: "spec.primary.host",
      message: /spec\.primary\.host names DDIHost "nowhere", which does not exist in namespace lab/,
    },
    {
      name: "missing secondary DDIHost",
      pair: () => haPair({ secondary: { host: "gone", interface: "eth1" } }),
      field: "spec.secondary.host",
      message: /spec\.secondary\.host names DDIHost "gone"/,
    },
    {
      name: "unicast with a host reached by DNS name and no spec address",
      pair: () => haPair({ unicast: true, primary: { host: "ka-dns", interface: "eth0" } }),
      field: "spec.primary.address",
      message: /DDIHost ka-dns is reached by the name "ka-dns\.lab\.example": set spec\.primary\.address/,
    },
    {
      name: "unicast with an IPv6 node address for the IPv4 VIP",
      pair: () => bypassingSchema(haPair(), { unicast: true, secondary: { ...haPair().spec.secondary, address: "2001:db8::3" } }),
      field: "spec.secondary.address",
      message: /spec\.secondary\.address 2001:db8::3 is not IPv4/,
    },
    {
      name: "unicast with both nodes on one address",
      pair: () => haPair({ unicast: true, primary: { host: "ka-a", interface: "eth0", address: "198.18.0.3" } }),
      field: "spec.secondary.address",
      message: /both nodes would use 198\.18\.0\.3/,
    },
    {
      name: "unicast with an IPv6 VIP",
      pair: () => bypassingSchema(haPair(), { unicast: true, virtualIPv6: "2001:db8::86/64" }),
      field: "spec.virtualIPv6",
      message: /spec\.unicast with spec\.virtualIPv6/,
    },
    {
      name: "authPass with a fractional advert interval",
      pair: () => bypassingSchema(haPair(), { authPass: "abc", advertInterval: "500ms" }),
      field: "spec.authPass",
      message: /spec\.authPass needs VRRPv2/,
    },
    {
      name: "advert interval not in 10ms units",
      pair: () => bypassingSchema(haPair(), { advertInterval: "1005ms" }),
      field: "spec.advertInterval",
      message: /units of 10ms/,
    },
    {
      name: "IPv6 instance with an advert interval above VRRPv3's 40.95s",
      pair: () => bypassingSchema(haPair(), { advertInterval: "60s", virtualIPv6: "2001:db8::86/64" }),
      field: "spec.advertInterval",
      message: /above VRRPv3's 40\.95s/,
    },
    {
      name: "preemptDelay above keepalived's 1000s",
      pair: () => bypassingSchema(haPair(), { preemptDelay: "20m" }),
      field: "spec.preemptDelay",
      message: /above keepalived's 1000s/,
    },
  ];
  it.each(cases)("$name", ({ pair, hosts, field, message }) => {
    let caught: unknown;
    try {
      renderKeepalivedPair(pair(), (hosts ?? labHosts)());
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KeepalivedRenderError);
    expect((caught as KeepalivedRenderError).field).toBe(field);
    expect((caught as Error).message).toMatch(message);
  });
});

describe("renderKeepalivedHost: several pairs on one host", () => {
  const hosts = new Map([...labHosts(), ["ka-c", host("ka-c", "198.18.0.4")]]);
  const dns = haPair({ virtualRouterID: 61 }, "dns-vip");
  const dhcp = haPair({ virtualRouterID: 62, secondary: { host: "ka-c", interface: "eth1" }, services: { dns: false, dhcp: "DHCPv4" } }, "dhcp-vip");

  it("gives the shared main file and hook once and one owned file per pair (golden)", () => {
    const files = renderKeepalivedHost("ka-a", [dns, dhcp], hosts);
    expect(files.map((f) => [f.path, f.ownership])).toEqual([
      ["/etc/keepalived/ddi-ha.d/lab_dhcp-vip.conf", "owned"],
      ["/etc/keepalived/ddi-ha.d/lab_dns-vip.conf", "owned"],
      ["/etc/keepalived/keepalived.conf", "shared"],
      [NOTIFY_SCRIPT_PATH, "shared"],
      [MAINTENANCE_FLAG_PATH, "shared"],
    ]);
    for (const f of files) expectGolden(f.content, join("variants", "two-pairs", "ka-a", f.path));
    expect(lintHost(files, "ka-a")).toEqual([]);
    // Removing one pair removes only its own file; the main file does not name the pairs.
    const withoutDhcp = renderKeepalivedHost("ka-a", [dns], hosts);
    expect(withoutDhcp.find((f) => f.ownership === "shared" && f.path.endsWith(".conf"))!.content).toBe(files[2]!.content);
    expect(withoutDhcp.map((f) => f.path)).not.toContain("/etc/keepalived/ddi-ha.d/lab_dhcp-vip.conf");
  });

  it("returns only the files of the asked host", () => {
    expect(renderKeepalivedHost("ka-c", [dns, dhcp], hosts).map((f) => f.path)).toEqual([
      "/etc/keepalived/ddi-ha.d/lab_dhcp-vip.conf",
      "/etc/keepalived/keepalived.conf",
      NOTIFY_SCRIPT_PATH,
      MAINTENANCE_FLAG_PATH,
    ]);
  });

  it("refuses two pairs with the same VRID on the same interface", () => {
    const clash = haPair({ virtualRouterID: 61, virtualIP: "198.18.0.87/24" }, "clash");
    expect(() => renderKeepalivedHost("ka-a", [dns, clash], hosts)).toThrow(/lab\/dns-vip and lab\/clash both use virtual_router_id 61 on eth0 of DDIHost ka-a/);
  });

  it("refuses pairs that disagree on the main file", () => {
    const other = haPair({ virtualRouterID: 63, primary: { host: "ka-a", interface: "eth0", configPath: "/etc/keepalived/other.conf" } }, "other");
    expect(() => renderKeepalivedHost("ka-a", [dns, other], hosts)).toThrow(/keepalived reads one: give every HAPair on this host the same configPath/);
  });
});
