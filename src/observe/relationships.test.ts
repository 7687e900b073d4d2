// The dhcpd and Kea observers on text captured from the real daemons by the dhcpd and kea
// modules (src/daemons/*/testdata): omshell output, dhcpd's log, leases files, status-get answers.
// The transport is a scripted HostSession; the real one is exercised in test/integration/observe-*.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostSession } from "../exec/host-io.js";
import type { CommandResult, RunOptions } from "../exec/runner.js";
import { POOL_LINE_PATTERN, latestPoolBalances, observeDhcpFailoverSide } from "./dhcpd-failover.js";
import { parsePoolBalanceLog } from "../daemons/dhcpd/index.js";
import { keaClusterHealth, observeKeaPeer, peerFromStatusGet } from "./kea-ha.js";

const dhcpdCaptured = (name: string) => readFileSync(join(import.meta.dirname, "..", "daemons", "dhcpd", "testdata", "captured", name), "utf8");
const keaCaptured = (name: string) => readFileSync(join(import.meta.dirname, "..", "daemons", "kea", "testdata", "observe", name), "utf8");

function scripted(answer: (argv: readonly string[], options?: RunOptions) => CommandResult, files: Record<string, string> = {}, over: Partial<HostSession> = {}) {
  const calls: { argv: string[]; stdin?: string }[] = [];
  const session: HostSession = {
    hostName: "dhcp-a",
    async run(argv, options) {
      calls.push({ argv: [...argv], ...(options?.stdin !== undefined ? { stdin: options.stdin } : {}) });
      return answer(argv, options);
    },
    readFile: async (path) => files[path],
    writeFile: async () => {},
    stream: async () => {
      throw new Error("unused");
    },
    forward: async () => {
      throw new Error("unused");
    },
    ...over,
  };
  return { session, calls };
}

const KEY = { name: "ddi-ha-omapi", algorithm: "hmac-sha256" as const, secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=" };
const target = { peerName: "p", omapiPort: 7911, key: KEY };

describe("latestPoolBalances", () => {
  it("reads exactly the lines journalctl --grep POOL_LINE_PATTERN keeps (dhcpd's real log)", () => {
    const lines = [...dhcpdCaptured("primary.log").split("\n"), "IMBALANCED pool 55f7984fc050 198.18.0.0/24  total 100  free 90  backup 10  lts 40  max-misbal 15"];
    const pattern = new RegExp(POOL_LINE_PATTERN);
    const kept = lines.filter((l) => pattern.test(l));
    expect(kept.length).toBeGreaterThan(1);
    expect(lines.filter((l) => parsePoolBalanceLog(l) !== undefined)).toEqual(kept);
  });
  it("keeps the last figures per subnet from dhcpd's real log", () => {
    expect(latestPoolBalances(dhcpdCaptured("primary.log"))).toEqual([{ subnet: "198.18.0.0/24", total: 100, free: 50, backup: 50, lts: 0 }]);
  });
  it("keeps subnets apart and ignores other lines", () => {
    const log = [
      "pool 98e82b8 192.168.200.0/24 total 155 free 38 backup 37 lts 0",
      "failover peer p: I move from normal to communications-interrupted",
      "balanced pool 55f7984fc050 198.18.0.0/24  total 100  free 50  backup 50  lts 0  max-misbal 15",
      "pool 98e82b8 192.168.200.0/24 total 155 free 40 backup 35 lts 2",
    ].join("\n");
    expect(latestPoolBalances(log)).toEqual([
      { subnet: "192.168.200.0/24", total: 155, free: 40, backup: 35, lts: 2 },
      { subnet: "198.18.0.0/24", total: 100, free: 50, backup: 50, lts: 0 },
    ]);
  });
});

describe("observeDhcpFailoverSide", () => {
  it("reads both states through omshell on the host, with the key and peer in the script on stdin", async () => {
    const { session, calls } = scripted((argv) => {
      if (argv[0] === "omshell") return { code: 0, stdout: dhcpdCaptured("omshell-normal.txt"), stderr: "" };
      if (argv[0] === "systemctl") return { code: 0, stdout: "active\n", stderr: "" };
      // journalctl -r: newest first.
      if (argv[0] === "journalctl") return { code: 0, stdout: dhcpdCaptured("primary.log").trimEnd().split("\n").reverse().join("\n"), stderr: "" };
      throw new Error(argv.join(" "));
    });
    expect(await observeDhcpFailoverSide(session, target)).toEqual({
      host: "dhcp-a",
      reachable: true,
      source: "omapi",
      localState: "normal",
      partnerState: "normal",
      dhcpdActive: true,
      pools: [{ subnet: "198.18.0.0/24", total: 100, free: 50, backup: 50, lts: 0 }],
    });
    const omshell = calls.find((c) => c.argv[0] === "omshell")!;
    expect(omshell.argv).toEqual(["omshell"]);
    expect(omshell.stdin).toContain('set name = "p"');
    expect(omshell.stdin).toContain("key-algorithm hmac-sha256");
    expect(omshell.stdin).toContain("server 127.0.0.1");
    expect(calls.find((c) => c.argv[0] === "journalctl")!.argv).toEqual(["journalctl", "-u", "isc-dhcp-server.service", "-o", "cat", "-r", "-n", "50", "--grep", POOL_LINE_PATTERN, "--no-pager"]);
  });

  it("falls back to the leases file when OMAPI refuses the key, and keeps omshell's complaint", async () => {
    const { session } = scripted(
      (argv) =>
        argv[0] === "omshell"
          ? { code: 0, stdout: dhcpdCaptured("omshell-wrong-key-algorithm.txt"), stderr: "" }
          : { code: 0, stdout: argv[0] === "systemctl" ? "active\n" : "", stderr: "" },
      { "/var/lib/dhcp/dhcpd.leases": dhcpdCaptured("primary.leases") },
    );
    const side = await observeDhcpFailoverSide(session, target);
    expect(side).toMatchObject({ source: "leases", localState: "communications-interrupted", partnerState: "normal", dhcpdActive: true });
    expect(side.omapiError).toMatch(/dhcpd refused the key/);
  });

  it("says so when omshell is missing and nothing else tells the state", async () => {
    const { session } = scripted((argv) =>
      argv[0] === "omshell" ? { code: 127, stdout: "", stderr: "sh: 1: omshell: not found" } : { code: 3, stdout: "inactive\n", stderr: "" },
    );
    expect(await observeDhcpFailoverSide(session, target)).toMatchObject({
      source: "none",
      dhcpdActive: false,
      omapiError: "omshell is not installed on dhcp-a (Debian ships it in isc-dhcp-server)",
      pools: [],
    });
  });

  it("turns a transport failure into an unreachable side", async () => {
    const { session } = scripted(() => {
      throw new Error("cannot reach dhcp-a");
    });
    expect(await observeDhcpFailoverSide(session, target)).toMatchObject({ reachable: false, error: "cannot reach dhcp-a", source: "none" });
  });
});

describe("peerFromStatusGet on Kea 2.2.0 answers", () => {
  const t = { name: "server1", role: "primary", url: "http://198.18.0.11:8000/" };
  it("reads a load-balancing peer", () => {
    expect(peerFromStatusGet({ ...t, name: "server2", role: "secondary" }, "kea-b", keaCaptured("kea-2.2.0-status-get-lb-secondary.json"))).toEqual({
      name: "server2",
      host: "kea-b",
      role: "secondary",
      reachable: true,
      state: "load-balancing",
      // The running config's role (status-get local.role), which a switchover compares with the spec's.
      runningRole: "secondary",
      inTouch: true,
      unackedClients: 0,
      partnerLastState: "load-balancing",
      communicationInterrupted: false,
    });
  });
  it("reads a survivor in partner-down", () => {
    expect(peerFromStatusGet(t, "kea-a", keaCaptured("kea-2.2.0-status-get-lb-primary-partner-down.json"))).toMatchObject({
      reachable: true,
      state: "partner-down",
      partnerLastState: "unavailable",
      communicationInterrupted: true,
    });
  });
  it("treats an agent whose kea-dhcp4 is down as an unreachable peer", () => {
    expect(peerFromStatusGet(t, "kea-a", keaCaptured("kea-2.2.0-status-get-agent-dhcp4-down.json"))).toMatchObject({
      reachable: false,
      state: "unavailable",
      error: expect.stringContaining("unable to forward command to the dhcp4 service"),
    });
  });
  it("names the missing hook when status-get has no HA relationship", () => {
    expect(peerFromStatusGet(t, "kea-a", '[{"result":0,"arguments":{"pid":1,"uptime":3}}]')).toMatchObject({
      reachable: true,
      state: "unknown",
      error: expect.stringContaining("libdhcp_ha.so is not loaded"),
    });
  });
  it("aggregates with the kea module's rule", () => {
    const lb = peerFromStatusGet(t, "kea-a", keaCaptured("kea-2.2.0-status-get-lb-primary.json"));
    const lb2 = peerFromStatusGet({ ...t, name: "server2", role: "secondary" }, "kea-b", keaCaptured("kea-2.2.0-status-get-lb-secondary.json"));
    const down = peerFromStatusGet({ ...t, name: "server2", role: "secondary" }, "kea-b", keaCaptured("kea-2.2.0-status-get-agent-dhcp4-down.json"));
    const survivor = peerFromStatusGet(t, "kea-a", keaCaptured("kea-2.2.0-status-get-lb-primary-partner-down.json"));
    expect(keaClusterHealth([lb, lb2])).toBe("OK");
    expect(keaClusterHealth([survivor, down])).toBe("Impaired");
    expect(keaClusterHealth([down, { ...down, name: "server1", role: "primary" }])).toBe("Down");
  });
});

describe("observeKeaPeer over a forwarded port", () => {
  // A local HTTP server stands in for the forwarded Control Agent and answers with Kea's captured
  // body; what is under test is the POST, the forward's lifecycle and the failure handling.
  let port = 0;
  let lastBody = "";
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      lastBody = body;
      res.setHeader("content-type", "application/json");
      res.end(keaCaptured("kea-2.2.0-status-get-lb-primary.json"));
    });
  });
  beforeAll(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => ((port = (server.address() as { port: number }).port), resolve()))));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("POSTs status-get through the forward to the agent's address and closes the forward", async () => {
    const forwards: { host: string; port: number; closed: boolean }[] = [];
    const { session } = scripted(() => ({ code: 0, stdout: "", stderr: "" }), {}, {
      hostName: "kea-a",
      forward: async (host, remotePort) => {
        const f = { host, port: remotePort, closed: false };
        forwards.push(f);
        return { localPort: port, close: async () => void (f.closed = true) };
      },
    });
    const peer = await observeKeaPeer(session, { name: "server1", role: "primary", url: "http://198.18.0.11:8000/" });
    expect(peer).toMatchObject({ name: "server1", host: "kea-a", reachable: true, state: "load-balancing", inTouch: true });
    expect(JSON.parse(lastBody)).toEqual({ command: "status-get", service: ["dhcp4"] });
    expect(forwards).toEqual([{ host: "198.18.0.11", port: 8000, closed: true }]);
  });

  it("reports a forward that cannot open as an unreachable peer, naming the agent", async () => {
    const { session } = scripted(() => ({ code: 0, stdout: "", stderr: "" }), {}, {
      hostName: "kea-b",
      forward: async () => {
        throw new Error("cannot reach kea-b");
      },
    });
    expect(await observeKeaPeer(session, { name: "server2", role: "secondary", url: "http://198.18.0.12:8000/" })).toEqual({
      name: "server2",
      host: "kea-b",
      role: "secondary",
      reachable: false,
      state: "unavailable",
      error: "status-get through the Control Agent at http://198.18.0.12:8000/ from kea-b: cannot reach kea-b",
    });
  });
});
