// A real dhcpd failover pair from the rendered files: two dhcpd 4.4.3 processes, each in its own
// network namespace, joined by a veth pair on 198.18.0.0/24. It proves that what we render
// reaches "normal" on both sides, that the HMAC-SHA256 OMAPI key works with our omshell script,
// and that the parsers read the live output. Needs root (ip netns); skipped otherwise, visibly.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localHostIO } from "../../exec/host-io.js";
import { localRunner } from "../../exec/runner.js";
import {
  ensureIncludeLine,
  generateOmapiKey,
  omshellFailoverScript,
  parseFailoverStateFromLeases,
  parseOmshellFailoverState,
  parsePoolBalanceLog,
  renderDhcpFailover,
} from "./index.js";
import { rootForRealDaemons } from "../../testing/support.js";
import { failoverPeer, labHosts } from "./test-support.js";

const isRoot = rootForRealDaemons();
const tag = String(process.pid % 100000);
const sides = [
  { host: "dhcp-a", ns: `ddiha-dfa-${tag}`, iface: `dfa${tag}`, address: "198.18.0.2" },
  { host: "dhcp-b", ns: `ddiha-dfb-${tag}`, iface: `dfb${tag}`, address: "198.18.0.3" },
] as const;

async function sh(argv: string[]): Promise<void> {
  const r = await localRunner.run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
}

describe.skipIf(!isRoot)("a real dhcpd failover pair from the rendered files (needs root for ip netns)", () => {
  const key = { name: "omapi-lab-failover", ...generateOmapiKey() };
  const peer = failoverPeer();
  const files = renderDhcpFailover(peer, labHosts(), key);
  const procs = new Map<string, { child: ChildProcess; log: () => string; leases: string }>();
  let dir = "";

  const omshell = async (side: (typeof sides)[number]) => {
    const r = await localRunner.run(["ip", "netns", "exec", side.ns, "omshell"], { stdin: omshellFailoverScript("lab-failover", key, 7911), timeoutMs: 10_000 });
    return parseOmshellFailoverState(r.stdout + r.stderr);
  };
  const eventually = async <T>(probe: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 45_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let last: T = await probe();
    while (!done(last)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 500));
      last = await probe();
    }
    return last;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ddi-ha-dhcpd-pair-"));
    const [a, b] = sides;
    await sh(["ip", "netns", "add", a.ns]);
    await sh(["ip", "netns", "add", b.ns]);
    await sh(["ip", "link", "add", a.iface, "type", "veth", "peer", "name", b.iface]);
    for (const side of sides) {
      await sh(["ip", "link", "set", side.iface, "netns", side.ns]);
      await sh(["ip", "-n", side.ns, "addr", "add", `${side.address}/24`, "dev", side.iface]);
      await sh(["ip", "-n", side.ns, "link", "set", side.iface, "up"]);
      await sh(["ip", "-n", side.ns, "link", "set", "lo", "up"]);
    }
    for (const side of sides) {
      const [include, main] = files.filter((f) => f.host === side.host);
      const includePath = join(dir, `${side.host}.include.conf`);
      const mainPath = join(dir, `${side.host}.dhcpd.conf`);
      const leases = join(dir, `${side.host}.leases`);
      await localHostIO.writeFile(includePath, include!.content, include!.mode);
      // The marked line, pointed at the local copy of the include file.
      const line = main!.patch!.line.replace(include!.path, includePath);
      await localHostIO.writeFile(mainPath, ensureIncludeLine(main!.content, line, main!.patch!.marker), 0o644);
      await writeFile(leases, "");
      const child = spawn("ip", ["netns", "exec", side.ns, "dhcpd", "-f", "-d", "-cf", mainPath, "-lf", leases, "-pf", join(dir, `${side.host}.pid`), side.iface], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let log = "";
      child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
      procs.set(side.host, { child, log: () => log, leases });
    }
  }, 30_000);

  afterAll(async () => {
    for (const { child } of procs.values()) if (child.exitCode === null) child.kill("SIGTERM");
    for (const side of sides) await localRunner.run(["ip", "netns", "del", side.ns]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reaches normal on both sides, as omshell (HMAC-SHA256 key) and the log tell", async () => {
    for (const side of sides) {
      const state = await eventually(() => omshell(side), (s) => s.ok && s.localState === "normal" && s.partnerState === "normal", `${side.host} normal/normal`);
      if (!state.ok) throw new Error(state.error);
      expect(state.values["load-balance-max-secs"]).toBe(3);
      expect(state.values["max-response-delay"]).toBe(30);
    }
    const primaryLog = procs.get("dhcp-a")!.log();
    expect(primaryLog).toContain("failover peer lab-failover: Both servers normal");
    const balanced = primaryLog.split("\n").map(parsePoolBalanceLog).filter((p) => p?.phase === "balanced");
    expect(balanced[0]).toMatchObject({ network: "198.18.0.0/24", total: 100, free: 50, backup: 50, lts: 0 });
  }, 60_000);

  it("writes the state to the leases file, and the primary moves to communications-interrupted when the secondary stops", async () => {
    const primary = procs.get("dhcp-a")!;
    expect(parseFailoverStateFromLeases(await readFile(primary.leases, "utf8"), "lab-failover")).toMatchObject({ myState: "normal" });
    const secondary = procs.get("dhcp-b")!;
    secondary.child.kill("SIGTERM");
    await eventually(() => omshell(sides[0]), (s) => s.ok && s.localState === "communications-interrupted", "primary communications-interrupted");
    const fromLeases = await eventually(
      async () => parseFailoverStateFromLeases(await readFile(primary.leases, "utf8"), "lab-failover"),
      (s) => s?.myState === "communications-interrupted",
      "the leases file to record communications-interrupted",
    );
    expect(fromLeases).toMatchObject({ partnerState: "normal" });
  }, 60_000);
});
