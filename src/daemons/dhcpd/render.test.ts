import { join } from "node:path";
import { expectGolden as expectGoldenFile } from "../../testing/support.js";
import { describe, expect, it } from "vitest";
import {
  DEBIAN_DEFAULT_DHCPD_CONF,
  SUBNETS_HEADER,
  compareFailoverSides,
  generateOmapiKey,
  lintDhcpdConfig,
  renderDhcpFailover,
} from "./index.js";
import { SECRET_PLACEHOLDER, TESTDATA_DIR, failoverPeer, labHosts, loadExample } from "./test-support.js";

function expectGolden(actual: string, relPath: string): void {
  expectGoldenFile(actual, join(TESTDATA_DIR, relPath));
}

describe("renderDhcpFailover on examples/isc-dhcpd-failover", async () => {
  const { peer, hosts } = await loadExample();
  const key = { name: "omapi-dhcp-failover", ...generateOmapiKey() };
  const files = renderDhcpFailover(peer, hosts, key);
  const unkeyed = (content: string) => content.split(key.secret).join(SECRET_PLACEHOLDER);

  it("renders an include file and a patched dhcpd.conf for each host", () => {
    expect(files.map((f) => [f.host, f.path, f.ownership, f.mode.toString(8)])).toEqual([
      ["isc-dhcp-primary", "/etc/dhcp/ddi-ha/dhcp-failover.conf", "owned", "640"],
      ["isc-dhcp-primary", "/etc/dhcp/dhcpd.conf", "patched", "644"],
      ["isc-dhcp-secondary", "/etc/dhcp/ddi-ha/dhcp-failover.conf", "owned", "640"],
      ["isc-dhcp-secondary", "/etc/dhcp/dhcpd.conf", "patched", "644"],
    ]);
    for (const f of files) {
      expect(f.service).toBe("isc-dhcp-server.service");
      expect(f.check).toEqual({ kind: "dhcpd" });
      expect(f.owner).toBe("ddi-ha-examples/dhcp-failover");
    }
  });

  it.each(["isc-dhcp-primary", "isc-dhcp-secondary"])("matches the reviewed golden files for %s", (hostName) => {
    for (const f of files.filter((x) => x.host === hostName)) expectGolden(unkeyed(f.content), join("isc-dhcpd-failover", hostName, f.path));
  });

  it("puts the key into the include file only, and only the generated secret", () => {
    const [primaryInclude, primaryMain] = files;
    expect(primaryInclude!.content).toContain(`secret "${key.secret}";`);
    expect(primaryInclude!.content).toContain("algorithm hmac-sha256;");
    expect(primaryMain!.content).not.toContain(key.secret);
  });

  it("renders the subnets byte-identically on both sides", () => {
    const tails = files.filter((f) => f.ownership === "owned").map((f) => f.content.slice(f.content.indexOf(SUBNETS_HEADER)));
    expect(tails[0]).toContain('failover peer "dhcp-failover";');
    expect(tails[0]).toContain("range 192.168.200.100 192.168.200.254;");
    expect(tails[1]).toBe(tails[0]);
  });

  it("renders every timing on both sides, and mclt/split on the primary only", () => {
    const [primary, , secondary] = files;
    for (const f of [primary!, secondary!]) {
      expect(f.content).toContain("  max-response-delay 30;\n");
      expect(f.content).toContain("  max-unacked-updates 10;\n");
      expect(f.content).toContain("  load balance max seconds 3;\n");
      expect(f.content).toContain("  port 647;\n  peer address");
    }
    expect(primary!.content).toContain("  mclt 1800;\n  split 128;\n");
    expect(secondary!.content).not.toMatch(/mclt|split|hba/);
  });

  it("passes our lint on each side and the side-by-side comparison", () => {
    for (const f of files.filter((x) => x.ownership === "owned")) expect(lintDhcpdConfig(f.content, f.path)).toEqual([]);
    expect(compareFailoverSides(files[0]!.content, files[2]!.content)).toEqual([]);
  });

  it("patches dhcpd.conf with exactly one marked include line and keeps the base intact", () => {
    const main = files[1]!;
    const line = 'include "/etc/dhcp/ddi-ha/dhcp-failover.conf"; # managed by ddi-ha-operator: ddi-ha-examples/dhcp-failover';
    expect(main.patch).toEqual({ marker: "# managed by ddi-ha-operator: ddi-ha-examples/dhcp-failover", line });
    expect(main.content).toBe(`${DEBIAN_DEFAULT_DHCPD_CONF}${line}\n`);
  });
});

describe("renderDhcpFailover options", () => {
  const key = { name: "omapi-lab", ...generateOmapiKey() };

  it("renders hba instead of split, ports per side, and a peerName different from metadata.name", () => {
    const hba = "ff:".repeat(16) + "00:".repeat(15) + "00";
    const files = renderDhcpFailover(
      failoverPeer({ split: undefined, hba, peerName: "dhcp-pair", primary: { host: "dhcp-a", address: "198.18.0.2", port: 647 }, secondary: { host: "dhcp-b", address: "198.18.0.3", port: 847 } }),
      labHosts(),
      key,
    );
    const [primary, main, secondary] = files;
    expect(primary!.path).toBe("/etc/dhcp/ddi-ha/dhcp-pair.conf");
    expect(main!.patch!.line).toBe('include "/etc/dhcp/ddi-ha/dhcp-pair.conf"; # managed by ddi-ha-operator: lab/lab-failover');
    expect(primary!.content).toContain(`  hba ${hba};\n`);
    expect(primary!.content).not.toContain("split");
    expect(primary!.content).toContain("  port 647;\n  peer address 198.18.0.3;\n  peer port 847;\n");
    expect(secondary!.content).toContain("  port 847;\n  peer address 198.18.0.2;\n  peer port 647;\n");
    expect(compareFailoverSides(primary!.content, secondary!.content)).toEqual([]);
  });

  it("puts the include file next to a non-default configPath", () => {
    const files = renderDhcpFailover(failoverPeer({ configPath: "/etc/dhcpd/main.conf" }), labHosts(), key);
    expect(files.map((f) => f.path)).toEqual(["/etc/dhcpd/ddi-ha/lab-failover.conf", "/etc/dhcpd/main.conf", "/etc/dhcpd/ddi-ha/lab-failover.conf", "/etc/dhcpd/main.conf"]);
  });

  it("renders the network address for a CIDR written with a host address", () => {
    const files = renderDhcpFailover(
      failoverPeer({ subnets: [{ subnet: "198.18.0.77/24", pools: [{ range: ["198.18.0.100", "198.18.0.110"] }, { range: ["198.18.0.120", "198.18.0.130"] }] }] }),
      labHosts(),
      key,
    );
    expect(files[0]!.content).toContain("subnet 198.18.0.0 netmask 255.255.255.0 {\n  pool {");
    expect(files[0]!.content.match(/failover peer "lab-failover";/g)).toHaveLength(2);
  });

  it.each([
    ["a missing primary DDIHost", () => renderDhcpFailover(failoverPeer(), new Map([["dhcp-b", labHosts().get("dhcp-b")!]]), key), 'DhcpFailoverPeer lab/lab-failover: spec.primary.host refers to DDIHost "dhcp-a", which does not exist in namespace lab'],
    ["a missing secondary DDIHost", () => renderDhcpFailover(failoverPeer(), new Map([["dhcp-a", labHosts().get("dhcp-a")!]]), key), "spec.secondary.host refers to DDIHost \"dhcp-b\""],
    // The schema refuses this at admission; the renderer refuses it again should a spec slip past.
    ["a fractional pool lease time", () => {
      const peer = failoverPeer();
      peer.spec.subnets[0]!.pools[0]!.maxLeaseTime = "1500ms";
      return renderDhcpFailover(peer, labHosts(), key);
    }, "spec.subnets[0].pools[0].maxLeaseTime is \"1500ms\": dhcpd counts whole seconds"],
    ["a secret that is not base64", () => renderDhcpFailover(failoverPeer(), labHosts(), { ...key, secret: 'abc"; evil' }), "the secret must be base64"],
    ["a key name with a quote", () => renderDhcpFailover(failoverPeer(), labHosts(), { ...key, name: 'k"x' }), "OMAPI key name"],
  ])("refuses %s with a message naming the field", (_label, render, message) => {
    expect(render).toThrow(message);
  });

  it("generates a fresh HMAC-SHA256 key of 32 random bytes each time", () => {
    const a = generateOmapiKey();
    const b = generateOmapiKey();
    expect(a.algorithm).toBe("hmac-sha256");
    expect(Buffer.from(a.secret, "base64")).toHaveLength(32);
    expect(a.secret).not.toBe(b.secret);
    expect(Buffer.from(generateOmapiKey("hmac-md5").secret, "base64")).toHaveLength(64);
  });
});
