// Runs the real `dhcpd -t` (isc-dhcp-server 4.4.3-P1 here) on rendered and hand-broken files.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDirs } from "../../testing/support.js";
import { localHostIO } from "../../exec/host-io.js";
import type { RenderedFile } from "../../render/types.js";
import { checkDhcpdFiles, ensureIncludeLine, generateOmapiKey, lintDhcpdConfig, renderDhcpFailover } from "./index.js";
import { failoverPeer, labHosts, loadExample } from "./test-support.js";

const workDir = scratchDirs("ddi-ha-dhcpd-check-");

const key = { name: "omapi-test", ...generateOmapiKey() };
const forHost = (files: RenderedFile[], host: string) => files.filter((f) => f.host === host);

describe("checkDhcpdFiles with the real dhcpd -t", async () => {
  const example = await loadExample();
  const exampleFiles = renderDhcpFailover(example.peer, example.hosts, key);

  it.each(["isc-dhcp-primary", "isc-dhcp-secondary"])("accepts every rendered file of the example on %s", async (host) => {
    const result = await checkDhcpdFiles(forHost(exampleFiles, host), localHostIO, await workDir());
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.tool).toContain("dhcpd -t -cf /etc/dhcp/dhcpd.conf");
  });

  it.each([
    ["hba instead of split", { split: undefined, hba: "aa:".repeat(31) + "aa" }],
    ["ports 647/847 and two subnets", {
      primary: { host: "dhcp-a", address: "198.18.0.2", port: 647 },
      secondary: { host: "dhcp-b", address: "198.18.0.3", port: 847 },
      subnets: [
        { subnet: "198.18.0.0/24", options: { domainName: "lab.example" }, pools: [{ range: ["198.18.0.100", "198.18.0.149"] }, { range: ["198.18.0.150", "198.18.0.199"] }] },
        { subnet: "198.18.1.0/25", pools: [{ range: ["198.18.1.10", "198.18.1.20"], maxLeaseTime: "1h" }] },
      ],
    }],
    ["load balancing off (0)", { loadBalanceMaxSeconds: 0 }],
    ["an hmac-md5 key", {}],
  ])("accepts both sides rendered with %s", async (label, overrides) => {
    const omapi = label === "an hmac-md5 key" ? { name: "omapi-md5", ...generateOmapiKey("hmac-md5") } : key;
    const files = renderDhcpFailover(failoverPeer(overrides), labHosts(), omapi);
    for (const host of ["dhcp-a", "dhcp-b"]) {
      const result = await checkDhcpdFiles(forHost(files, host), localHostIO, await workDir());
      expect(result.problems, `${host}: ${result.output}`).toEqual([]);
    }
  });

  it.each([
    ["CRLF line endings", "ddns-update-style none;\r\nauthoritative;\r\n"],
    ["no final newline", "ddns-update-style none;\nauthoritative;"],
    ["a stale include line of ours", 'ddns-update-style none;\ninclude "/etc/dhcp/ddi-ha/gone.conf"; # managed by ddi-ha-operator: lab/lab-failover\n'],
  ])("accepts a user's dhcpd.conf with %s once our line is in", async (_label, userText) => {
    const [include, main] = forHost(renderDhcpFailover(failoverPeer(), labHosts(), key), "dhcp-a");
    const patched = { ...main!, content: ensureIncludeLine(userText, main!.patch!.line, main!.patch!.marker) };
    const result = await checkDhcpdFiles([include!, patched], localHostIO, await workDir());
    expect(result.problems, result.output).toEqual([]);
  });

  it("reports dhcpd's own error with the real path and line, not the staged one", async () => {
    const dir = await workDir();
    const [include, main] = forHost(renderDhcpFailover(failoverPeer(), labHosts(), key), "dhcp-b");
    const broken = { ...include!, content: include!.content.replace("  load balance max seconds 3;\n", "  load balance max seconds 3;\n  split 128;\n") };
    const result = await checkDhcpdFiles([broken, main!], localHostIO, dir);
    expect(result.ok).toBe(false);
    expect(result.problems).toContain("/etc/dhcp/ddi-ha/lab-failover.conf line 21: secondary may not define load balance settings. (at: split 128;)");
    expect(result.problems.join("\n")).not.toContain(dir);
    expect(result.problems).toContain('/etc/dhcp/ddi-ha/lab-failover.conf line 21: failover peer "lab-failover" is secondary but sets split; remove it (only the primary sets split or hba)');
  });

  // dhcpd quotes the rejected line under its error: on the key's secret line that is the OMAPI key.
  it.each([
    ["junk after the quoted secret", (s: string) => `  algorithm hmac-sha256;\n  secret "${s}" junk;`],
    ["an unquoted secret with junk", (s: string) => `  algorithm hmac-sha256;\n  secret ${s}junk;`],
    ["a long line, which dhcpd cuts short inside the quote", (s: string) => `  algorithm hmac-sha256;${" ".repeat(24)}secret "${s}" junk;`],
  ])("never quotes the OMAPI secret when dhcpd rejects its line: %s", async (_label, brokenKeyBody) => {
    const [include, main] = forHost(renderDhcpFailover(failoverPeer(), labHosts(), key), "dhcp-a");
    const keyBody = `  algorithm ${key.algorithm};\n  secret "${key.secret}";`;
    expect(include!.content).toContain(keyBody);
    const broken = { ...include!, content: include!.content.replace(keyBody, brokenKeyBody(key.secret)) };
    const result = await checkDhcpdFiles([broken, main!], localHostIO, await workDir());
    expect(result.ok).toBe(false);
    const reported = [...result.problems, result.output].join("\n");
    expect(reported).toMatch(/lab-failover\.conf line \d+: .*\(at: .*secret "<redacted>"/);
    // Not even the start of the key, which is all dhcpd shows of a line it cuts short.
    expect(reported).not.toContain(key.secret.slice(0, 12));
  });

  it("reports an include file the host lacks (a user's include line) as dhcpd does", async () => {
    const [include, main] = forHost(renderDhcpFailover(failoverPeer(), labHosts(), key), "dhcp-a");
    const userMain = { ...main!, content: main!.content.replace("ddns-update-style none;", 'ddns-update-style none;\ninclude "/nonexistent/ddi-ha-test/user.conf";') };
    const result = await checkDhcpdFiles([include!, userMain], localHostIO, await workDir());
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(["Can't open /nonexistent/ddi-ha-test/user.conf: No such file or directory"]);
  });

  it("checks an include file by itself when no main file comes with it", async () => {
    const [include] = forHost(renderDhcpFailover(failoverPeer(), labHosts(), key), "dhcp-a");
    const result = await checkDhcpdFiles([include!], localHostIO, await workDir());
    expect(result.problems).toEqual([]);
  });

  it("refuses files of two hosts in one call", async () => {
    const files = renderDhcpFailover(failoverPeer(), labHosts(), key);
    await expect(checkDhcpdFiles(files, localHostIO, await workDir())).rejects.toThrow("one host's files at a time");
  });
});

// What the domain facts say and this proves: dhcpd -t exits 0 on two configurations that
// dhcpd.conf(5) forbids, so only our lint stops them.
describe("dhcpd -t misses what our lint refuses", () => {
  const HBA = "ff:".repeat(16) + "00:".repeat(15) + "00";
  const peerBlock = (role: string, extra: string) =>
    `ddns-update-style none;\nfailover peer "lab" {\n  ${role};\n  address 198.18.0.2;\n  port 647;\n  peer address 198.18.0.3;\n  peer port 647;\n  max-response-delay 30;\n  max-unacked-updates 10;\n  load balance max seconds 3;\n${extra}}\nsubnet 198.18.0.0 netmask 255.255.255.0 {\n  pool {\n    failover peer "lab";\n    range 198.18.0.100 198.18.0.199;\n  }\n}\n`;
  const asFile = (content: string): RenderedFile => ({
    host: "dhcp-a",
    path: "/etc/dhcp/ddi-ha/lab.conf",
    content,
    mode: 0o640,
    ownership: "owned",
    service: "isc-dhcp-server.service",
    check: { kind: "dhcpd" },
    owner: "lab/lab",
  });

  it.each([
    ["mclt on the secondary", peerBlock("secondary", "  mclt 1800;\n"), 'line 11: failover peer "lab" is secondary but sets mclt'],
    ["split together with hba", peerBlock("primary", `  mclt 1800;\n  split 128;\n  hba ${HBA};\n`), 'line 13: failover peer "lab" sets both split and hba'],
  ])("%s: dhcpd -t exits 0, the lint refuses it", async (_label, text, message) => {
    const dir = await workDir();
    const path = join(dir, "direct.conf");
    await localHostIO.writeFile(path, text, 0o600);
    const direct = await localHostIO.run(["dhcpd", "-t", "-cf", path, "-lf", join(dir, "l"), "-pf", join(dir, "p")]);
    expect(direct.code, direct.stderr).toBe(0);

    expect(lintDhcpdConfig(text, "lab.conf").join("\n")).toContain(`lab.conf ${message}`);
    const result = await checkDhcpdFiles([asFile(text)], localHostIO, dir);
    expect(result.ok).toBe(false);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toContain(`/etc/dhcp/ddi-ha/lab.conf ${message}`);
  });
});
