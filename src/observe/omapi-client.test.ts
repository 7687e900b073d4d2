// The operator's OMAPI client against real dhcpd 4.4.3 processes, each in its own network
// namespace with OMAPI on the namespace's 127.0.0.1 only, as on a host. A "forward" here is a
// local port whose every connection is relayed by a process inside the namespace to
// 127.0.0.1:omapi-port: the far end connects from the host itself, as sshd's direct-tcpip does.
// A failover pair (hmac-sha256 key) reaches normal; a lone primary has an hmac-md5 key. Needs
// root (ip netns); skipped otherwise, visibly.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { type Server, type Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DhcpdOmapiKey, generateOmapiKey, omshellFailoverScript, parseOmshellFailoverState } from "../daemons/dhcpd/index.js";
import type { HostSession, PortForward } from "../exec/host-io.js";
import { localRunner } from "../exec/runner.js";
import { rootForRealDaemons, waitFor } from "../testing/support.js";
import { observeDhcpFailoverSide } from "./dhcpd-failover.js";
import { OmapiNoAnswerError, queryOmapiFailoverState } from "./omapi-client.js";

const isRoot = rootForRealDaemons();
const tag = String(process.pid % 100000);
const OMAPI_PORT = 7911;
const PEER = "omapi-test";
/** 198.18.79.0/24 is this file's own (the kea lab uses .78, the dhcpd pair its own namespaces). */
const NODES = [
  { name: "a", ns: `ddiha-oma-${tag}`, address: "198.18.79.2", partner: "198.18.79.3", role: "primary" },
  { name: "b", ns: `ddiha-omb-${tag}`, address: "198.18.79.3", partner: "198.18.79.2", role: "secondary" },
  { name: "c", ns: `ddiha-omc-${tag}`, address: "198.18.79.2", partner: "198.18.79.3", role: "primary" },
] as const;
type Node = (typeof NODES)[number];

async function sh(argv: string[]): Promise<void> {
  const r = await localRunner.run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
}

function dhcpdConf(node: Node, key: DhcpdOmapiKey): string {
  const primary = node.role === "primary";
  return [
    "authoritative;",
    `omapi-port ${OMAPI_PORT};`,
    `key "${key.name}" {`,
    `  algorithm ${key.algorithm};`,
    `  secret "${key.secret}";`,
    "}",
    `omapi-key ${key.name};`,
    `failover peer "${PEER}" {`,
    `  ${node.role};`,
    `  address ${node.address};`,
    `  port ${primary ? 647 : 847};`,
    `  peer address ${node.partner};`,
    `  peer port ${primary ? 847 : 647};`,
    "  max-response-delay 30;",
    "  max-unacked-updates 10;",
    "  load balance max seconds 3;",
    ...(primary ? ["  mclt 30;", "  split 128;"] : []),
    "}",
    "subnet 198.18.79.0 netmask 255.255.255.0 {",
    `  pool { failover peer "${PEER}"; range 198.18.79.100 198.18.79.149; }`,
    "}",
    "",
  ].join("\n");
}

// Runs inside the namespace, one per forwarded connection: stdio <-> 127.0.0.1:PORT.
const RELAY =
  'const s=require("net").connect(Number(process.argv[1]),"127.0.0.1");process.stdin.pipe(s);s.pipe(process.stdout);' +
  's.on("close",()=>process.exit(0));s.on("error",()=>process.exit(1));';

/** A PortForward into `ns`'s 127.0.0.1:port, or (refuse) one whose connections close at once, as a forward sshd refuses. */
async function nsForward(ns: string, port: number, mode: "relay" | "refuse" = "relay"): Promise<PortForward> {
  const sockets = new Set<Socket>();
  const children = new Set<ChildProcess>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => undefined);
    if (mode === "refuse") return void sock.destroy();
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", RELAY, String(port)], { stdio: ["pipe", "pipe", "ignore"] });
    children.add(child);
    child.stdin!.on("error", () => undefined);
    sock.pipe(child.stdin!);
    child.stdout!.pipe(sock);
    child.on("exit", () => {
      children.delete(child);
      sock.destroy();
    });
    sock.on("close", () => child.kill());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no local port");
  return {
    localPort: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        for (const c of children) c.kill();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!isRoot)("the OMAPI client against real dhcpd (needs root for ip netns)", () => {
  const sha = { name: "omapi-test-sha", ...generateOmapiKey("hmac-sha256") };
  const md5 = { name: "omapi-test-md5", ...generateOmapiKey("hmac-md5") };
  const keyOf = (node: Node) => (node.name === "c" ? md5 : sha);
  const procs: ChildProcess[] = [];
  let dir = "";

  const query = async (node: Node, over: { key?: DhcpdOmapiKey; peerName?: string; port?: number } = {}) => {
    const fwd = await nsForward(node.ns, over.port ?? OMAPI_PORT);
    try {
      return await queryOmapiFailoverState({ port: fwd.localPort, peerName: over.peerName ?? PEER, key: over.key ?? keyOf(node), timeoutMs: 5_000 });
    } finally {
      await fwd.close();
    }
  };
  const omshell = async (node: Node) => {
    const r = await localRunner.run(["ip", "netns", "exec", node.ns, "omshell"], { stdin: omshellFailoverScript(PEER, keyOf(node), OMAPI_PORT), timeoutMs: 10_000 });
    return parseOmshellFailoverState(r.stdout + r.stderr);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ddi-ha-omapi-"));
    for (const node of NODES) {
      await sh(["ip", "netns", "add", node.ns]);
      await sh(["ip", "-n", node.ns, "link", "set", "lo", "up"]);
    }
    // a and b on one veth pair; c alone, with both ends of its own pair (its partner never answers).
    await sh(["ip", "link", "add", `oma${tag}`, "type", "veth", "peer", "name", `omb${tag}`]);
    await sh(["ip", "link", "set", `oma${tag}`, "netns", NODES[0].ns]);
    await sh(["ip", "link", "set", `omb${tag}`, "netns", NODES[1].ns]);
    await sh(["ip", "-n", NODES[2].ns, "link", "add", `omc${tag}`, "type", "veth", "peer", "name", `omd${tag}`]);
    await sh(["ip", "-n", NODES[2].ns, "link", "set", `omd${tag}`, "up"]);
    const ifaces = [`oma${tag}`, `omb${tag}`, `omc${tag}`];
    for (const [i, node] of NODES.entries()) {
      const iface = ifaces[i]!;
      await sh(["ip", "-n", node.ns, "addr", "add", `${node.address}/24`, "dev", iface]);
      await sh(["ip", "-n", node.ns, "link", "set", iface, "up"]);
      const conf = join(dir, `${node.name}.conf`);
      const leases = join(dir, `${node.name}.leases`);
      await writeFile(conf, dhcpdConf(node, keyOf(node)));
      await writeFile(leases, "");
      const child = spawn("ip", ["netns", "exec", node.ns, "dhcpd", "-f", "-d", "-cf", conf, "-lf", leases, "-pf", join(dir, `${node.name}.pid`), iface], {
        stdio: ["ignore", "ignore", "ignore"],
      });
      procs.push(child);
    }
  }, 30_000);

  afterAll(async () => {
    for (const child of procs) if (child.exitCode === null) child.kill("SIGTERM");
    for (const node of NODES) await localRunner.run(["ip", "netns", "del", node.ns]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reads both partners in normal through the forward, signed with HMAC-SHA256, as omshell reads them", async () => {
    for (const node of NODES.slice(0, 2)) {
      const state = await waitFor(`${node.name} normal/normal over OMAPI`, 60_000, async () => {
        const s = await query(node).catch(() => undefined);
        return s?.ok && s.localState === "normal" && s.partnerState === "normal" ? s : undefined;
      }, 500);
      const fromOmshell = await omshell(node);
      if (!fromOmshell.ok) throw new Error(fromOmshell.error);
      expect({ local: state.localState, partner: state.partnerState }).toEqual({ local: fromOmshell.localState, partner: fromOmshell.partnerState });
      const stable = (v: Record<string, number>) => ({ mclt: v.mclt, mrd: v["max-response-delay"], lbms: v["load-balance-max-secs"], lp: v["local-port"], pp: v["partner-port"] });
      expect(stable(state.values)).toEqual(stable(fromOmshell.values));
      expect(state.values).toMatchObject({ mclt: 30, "max-response-delay": 30, "load-balance-max-secs": 3, "local-port": node.role === "primary" ? 647 : 847 });
    }
  }, 90_000);

  it("speaks HMAC-MD5 with a dhcpd whose key is hmac-md5", async () => {
    const state = await query(NODES[2]);
    expect(state).toMatchObject({ ok: true, values: { mclt: 30, "local-port": 647 } });
    if (!state.ok) throw new Error(state.error);
    expect(["startup", "recover", "communications-interrupted", "partner-down"]).toContain(state.localState);
  });

  it("surfaces dhcpd's refusals: key name, algorithm, secret, peer name", async () => {
    const [a] = NODES;
    expect(await query(a, { key: { ...sha, name: "nobody" } })).toEqual({
      ok: false,
      error: `dhcpd refused the OMAPI key nobody (hmac-sha256): no object matches specification: not found (result 23); check the key name, secret and algorithm against omapi-key in dhcpd.conf`,
    });
    expect(await query(a, { key: { ...sha, algorithm: "hmac-md5" } })).toMatchObject({ ok: false, error: expect.stringMatching(/^dhcpd refused the OMAPI key omapi-test-sha \(hmac-md5\): no object matches/) });
    expect(await query(a, { key: { ...sha, secret: generateOmapiKey("hmac-sha256").secret } })).toEqual({
      ok: false,
      error: "dhcpd refused the signature of our request: invalid TSIG key (result 393227); the secret of OMAPI key omapi-test-sha does not match omapi-key in dhcpd.conf",
    });
    expect(await query(a, { peerName: "no-such-peer" })).toEqual({
      ok: false,
      error: 'dhcpd has no failover-state for peer "no-such-peer": no object matches specification: not found (result 23)',
    });
  });

  it("tells a forward that carries nothing (port closed on the host, or refused) from a silent peer", async () => {
    await expect(query(NODES[0], { port: 7912 })).rejects.toBeInstanceOf(OmapiNoAnswerError);
    const refused = await nsForward(NODES[0].ns, OMAPI_PORT, "refuse");
    await expect(queryOmapiFailoverState({ port: refused.localPort, peerName: PEER, key: sha, timeoutMs: 2_000 })).rejects.toBeInstanceOf(OmapiNoAnswerError);
    await refused.close();
    const held = new Set<Socket>();
    const silent = createServer((sock) => void held.add(sock));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    const err = await queryOmapiFailoverState({ port, peerName: PEER, key: sha, timeoutMs: 300 }).catch((e: Error) => e);
    expect(err).not.toBeInstanceOf(OmapiNoAnswerError);
    expect((err as Error).message).toBe(`OMAPI at 127.0.0.1:${port}: dhcpd's OMAPI startup: no answer within 300 ms`);
    for (const sock of held) sock.destroy();
    await new Promise((r) => silent.close(r));
  });

  describe("observeDhcpFailoverSide on the primary's namespace", () => {
    /** The namespace as a host: omshell really runs there; systemd's answers are scripted. */
    const nsSession = (forward: "relay" | "refuse", calls: string[], unitState = "active"): HostSession => ({
      hostName: "dhcp-a",
      async run(argv, options) {
        calls.push(argv[0]!);
        if (argv[0] === "omshell") return localRunner.run(["ip", "netns", "exec", NODES[0].ns, ...argv], options);
        if (argv[0] === "systemctl") return { code: unitState === "active" ? 0 : 3, stdout: `${unitState}\n`, stderr: "" };
        return { code: 0, stdout: "", stderr: "" };
      },
      readFile: async (path) => (path === "/var/lib/dhcp/dhcpd.leases" ? readFile(join(dir, "a.leases"), "utf8") : undefined),
      writeFile: async () => undefined,
      stream: async () => {
        throw new Error("unused");
      },
      forward: async (host, port) => {
        expect(host).toBe("127.0.0.1");
        return nsForward(NODES[0].ns, port, forward);
      },
    });
    const target = { peerName: PEER, omapiPort: OMAPI_PORT, key: sha };

    it("reads the states natively through the forward, without omshell", async () => {
      const calls: string[] = [];
      expect(await observeDhcpFailoverSide(nsSession("relay", calls), target)).toMatchObject({
        source: "omapi",
        omapiVia: "forward",
        localState: "normal",
        partnerState: "normal",
      });
      expect(calls).not.toContain("omshell");
    });

    it("an answer from dhcpd means dhcpd runs, even where systemd (or a probe cached before a restart) said inactive", async () => {
      for (const forward of ["relay", "refuse"] as const) {
        const side = await observeDhcpFailoverSide(nsSession(forward, [], "inactive"), target);
        expect(side).toMatchObject({ source: "omapi", localState: "normal", dhcpdActive: true });
      }
    });

    it("falls back to omshell on the host when the forward is refused", async () => {
      const calls: string[] = [];
      const side = await observeDhcpFailoverSide(nsSession("refuse", calls), target);
      expect(side).toMatchObject({ source: "omapi", localState: "normal", partnerState: "normal" });
      expect(side.omapiVia).toBeUndefined();
      expect(calls).toContain("omshell");
    });

    it("with a wrong secret: dhcpd's refusal, the leases file's state, and no omshell", async () => {
      const calls: string[] = [];
      const side = await observeDhcpFailoverSide(nsSession("relay", calls), { ...target, key: { ...sha, secret: generateOmapiKey().secret } });
      expect(side).toMatchObject({ source: "leases", localState: "normal", omapiError: expect.stringMatching(/refused the signature of our request: invalid TSIG key/) });
      expect(side.forwardError).toBeUndefined();
      expect(calls).not.toContain("omshell");
    });
  });
});
