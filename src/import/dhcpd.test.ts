import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDhcpdConf } from "../daemons/dhcpd/conf-parser.js";
import { DHCPD_CONF, importDhcpd, statementSpan } from "./dhcpd.js";
import { buildReport } from "./report.js";
import type { ImportHost } from "./types.js";

const testdata = (name: string) => readFileSync(join(import.meta.dirname, "testdata", name), "utf8");
const host = (name: string, address: string, conf: string): ImportHost => ({ name, address, port: 22, user: "root", files: new Map([[DHCPD_CONF, conf]]) });
const hosts = () => [host("dhcp-a", "198.18.200.2", testdata("dhcpd-primary.conf")), host("dhcp-b", "198.18.200.3", testdata("dhcpd-secondary.conf"))];

describe("importDhcpd on the ISC failover pair (seeds 002/003 shape)", () => {
  it("makes one DhcpFailoverPeer with both sides, the timings, split, subnets and pools, and keeps the OMAPI key in a Secret", () => {
    const { manifests } = importDhcpd(hosts(), "dhcp");
    expect(manifests.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual(["Secret/dhcp-failover-omapi", "DhcpFailoverPeer/dhcp-failover"]);
    expect(manifests[0]!.stringData).toEqual({ secret: "c2VjcmV0LW9tYXBpLWtleS1mb3ItdGVzdHMtb25seQ==", algorithm: "hmac-md5" });
    expect(manifests[1]!.spec).toEqual({
      primary: { host: "dhcp-a", address: "198.18.200.2", port: 647 },
      secondary: { host: "dhcp-b", address: "198.18.200.3", port: 647 },
      maxResponseDelay: "30s",
      maxUnackedUpdates: 10,
      loadBalanceMaxSeconds: 3,
      mclt: "1800s",
      split: 128,
      omapi: { port: 7911, keySecretRef: { name: "dhcp-failover-omapi" } },
      subnets: [
        {
          subnet: "198.18.200.0/24",
          options: { broadcastAddress: "198.18.200.255", routers: ["198.18.200.1"], domainNameServers: ["198.18.200.1"] },
          pools: [{ range: ["198.18.200.100", "198.18.200.254"], maxLeaseTime: "1800s" }],
        },
      ],
      configPath: DHCPD_CONF,
    });
  });

  it("names what it cannot hold: a peer parameter and an option outside the API", () => {
    const seen = importDhcpd(hosts(), "dhcp").unrepresentable.map((u) => `${u.host}:${u.line}:${u.what}`);
    expect(seen).toEqual(expect.arrayContaining(["dhcp-a:26:auto-partner-down 3600", "dhcp-b:24:auto-partner-down 3600", "dhcp-a:34:option ntp-servers 198.18.200.1"]));
    // subnet-mask equal to the subnet's own mask is no loss: dhcpd sends it anyway.
    expect(seen.some((s) => s.includes("subnet-mask"))).toBe(false);
  });

  it("takes the peer, its subnet and OMAPI out of the user's dhcpd.conf, and keeps everything else", () => {
    const { adoptEdits } = importDhcpd(hosts(), "dhcp");
    const edited = adoptEdits.find((e) => e.host === "dhcp-a")!.content;
    expect(edited).not.toMatch(/failover peer|omapi|subnet 198/);
    expect(edited).toContain("authoritative;");
    expect(edited).toContain("host printer {\n  hardware ethernet 00:16:3e:00:00:01;\n  fixed-address 198.18.200.50;\n}");
  });

  it("spans a block statement to its closing brace, past braces in comments and strings", () => {
    const text = 'a;\nkey k {\n  secret "x}y"; # }\n}\nb;\n';
    const key = parseDhcpdConf(text, "f").find((s) => s.words[0]?.text === "key")!;
    expect(statementSpan(text, key)).toEqual([2, 4]);
  });

  it("names a failover peer whose partner was not given, and a host name where dhcpd has a DNS name (seed 002)", () => {
    const conf = testdata("dhcpd-primary.conf").replace("address 198.18.200.2;", "address dhcp-primary.example.com;");
    const one = importDhcpd([host("dhcp-a", "198.18.200.2", conf)], "dhcp");
    expect(one.manifests).toEqual([]);
    expect(one.unrepresentable.map((u) => u.why).join("\n")).toContain("pass the partner's --host too");
    const both = importDhcpd([host("dhcp-a", "198.18.200.2", conf), hosts()[1]!], "dhcp");
    expect(both.unrepresentable.find((u) => u.what === "address dhcp-primary.example.com")?.why).toContain("imported as 198.18.200.2");
  });

  it("reports dhcpd.conf as an edit before the first apply, and a restart of isc-dhcp-server", async () => {
    const h = hosts();
    const report = await buildReport(h, "dhcp", [importDhcpd(h, "dhcp")]);
    expect(report.problems.filter((p) => p.startsWith("error"))).toEqual([]);
    const main = report.files.find((f) => f.host === "dhcp-a" && f.path === DHCPD_CONF)!;
    expect(main.editBeforeApply).toBe(true);
    expect(main.diff).toContain('-failover peer "dhcp-failover" {');
    expect(main.diff).toContain('+include "/etc/dhcp/ddi-ha/dhcp-failover.conf"; # managed by ddi-ha-operator: dhcp/dhcp-failover');
    const include = report.files.find((f) => f.host === "dhcp-a" && f.path === "/etc/dhcp/ddi-ha/dhcp-failover.conf")!;
    expect(include.change).toBe("created");
    expect(include.content).toContain('secret "c2VjcmV0LW9tYXBpLWtleS1mb3ItdGVzdHMtb25seQ==";');
    expect(report.services).toEqual([
      expect.objectContaining({ host: "dhcp-a", service: "isc-dhcp-server.service", action: "restart" }),
      expect.objectContaining({ host: "dhcp-b", service: "isc-dhcp-server.service", action: "restart" }),
    ]);
  });
});
