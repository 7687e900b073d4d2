// End to end on this machine with the real daemons: three network namespaces on a bridge
// (198.18.78.0/24 only), each running the kea-dhcp4 and kea-ctrl-agent configs that
// renderKeaCluster wrote for it. Proves the rendered configs form a working HA relationship
// (HA traffic goes through the agents, bound to the peer addresses), that the observation
// parsers read what Kea says, and measures the failover the spec's timings give.
// Needs root (network namespaces); CI runs as root.
import { rootForRealDaemons, waitFor as waitForEvery } from "../../testing/support.js";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DDIHost } from "../../api/index.js";
import { localHostIO } from "../../exec/host-io.js";
import { localRunner } from "../../exec/runner.js";
import { checkKeaFiles } from "./check.js";
import { type KeaPeerObservation, type StatusGetResult, aggregateKeaHealth, parseStatusGet } from "./observe.js";
import { renderKeaCluster } from "./render.js";
import { testCluster, testHost } from "./test-fixtures.js";

const isRoot = rootForRealDaemons();
const tag = String(process.pid % 100000);
const PEERS = [
  { name: "server1", host: "kea-lab1", role: "primary", address: "198.18.78.1" },
  { name: "server2", host: "kea-lab2", role: "secondary", address: "198.18.78.2" },
  { name: "server3", host: "kea-lab3", role: "backup", address: "198.18.78.3", autoFailover: false },
] as const;
const ns = (i: number) => `kea-lab-${tag}-${i}`;
const BRIDGE_NS = `kea-lab-${tag}-br`;

async function sh(argv: string[]): Promise<void> {
  const r = await localRunner.run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr}`);
}

/** status-get over kea-dhcp4's unix socket; undefined when nothing listens (server down). */
function statusGet(socketPath: string): Promise<StatusGetResult | undefined> {
  return new Promise((resolve) => {
    let data = "";
    const conn = createConnection(socketPath, () => conn.end(JSON.stringify({ command: "status-get" })));
    conn.setTimeout(2000, () => conn.destroy());
    conn.on("data", (d) => (data += d.toString()));
    conn.on("error", () => resolve(undefined));
    conn.on("close", () => resolve(data ? parseStatusGet(data) : undefined));
  });
}


const waitFor = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) => waitForEvery(what, timeoutMs, probe, 200);

describe.skipIf(!isRoot)("rendered Kea HA configs on three real kea-dhcp4 + kea-ctrl-agent pairs", () => {
  let dir = "";
  const children: ChildProcess[] = [];
  const dhcp4: (ChildProcess | undefined)[] = [];
  const socketOf = (i: number) => join(dir, `peer${i}`, "kea4-ctrl-socket");

  async function observe(): Promise<KeaPeerObservation[]> {
    return Promise.all(
      PEERS.map(async (p, i) => {
        const status = await statusGet(socketOf(i));
        const state = status?.ok ? status.relationships[0]?.localState : undefined;
        return { name: p.name, role: p.role, reachable: status?.ok === true, ...(state ? { state } : {}) };
      }),
    );
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kea-lab-"));
    await sh(["ip", "netns", "add", BRIDGE_NS]);
    await sh(["ip", "-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge"]);
    await sh(["ip", "-n", BRIDGE_NS, "link", "set", "br0", "up"]);
    for (const [i, p] of PEERS.entries()) {
      await sh(["ip", "netns", "add", ns(i)]);
      await sh(["ip", "-n", ns(i), "link", "add", "eth0", "type", "veth", "peer", "name", `p${i}`, "netns", BRIDGE_NS]);
      await sh(["ip", "-n", BRIDGE_NS, "link", "set", `p${i}`, "master", "br0", "up"]);
      await sh(["ip", "-n", ns(i), "addr", "add", `${p.address}/24`, "dev", "eth0"]);
      await sh(["ip", "-n", ns(i), "link", "set", "eth0", "up"]);
      await sh(["ip", "-n", ns(i), "link", "set", "lo", "up"]);
    }

    const hosts = new Map<string, DDIHost>(PEERS.map((p) => [p.host, testHost(p.host, p.address)]));
    const cluster = testCluster({
      mode: "load-balancing",
      heartbeatDelay: "1s",
      maxResponseDelay: "3s",
      maxAckDelay: "1s",
      maxUnackedClients: 0,
      // HAOnly keeps each host's own socket and lease file paths, so three servers share one /run.
      configSync: "HAOnly",
      configPath: "/etc/kea/kea-dhcp4.conf",
      peers: PEERS.map((p) => ({ name: p.name, host: p.host, role: p.role, ...("autoFailover" in p ? { autoFailover: p.autoFailover } : {}) })),
    });
    const current = new Map(
      PEERS.map((p, i) => [
        p.host,
        {
          "interfaces-config": { interfaces: ["eth0"] },
          "control-socket": { "socket-type": "unix", "socket-name": socketOf(i) },
          "lease-database": { type: "memfile", persist: true, name: join(dir, `peer${i}`, "leases4.csv"), "lfc-interval": 0 },
          subnet4: [{ id: 1, subnet: "198.18.78.0/24", pools: [{ pool: "198.18.78.100 - 198.18.78.199" }] }],
          loggers: [{ name: "kea-dhcp4", output_options: [{ output: join(dir, `peer${i}`, "kea-dhcp4.log") }], severity: "INFO" }],
        },
      ]),
    );
    const files = renderKeaCluster(cluster, hosts, { currentDhcp4ByHost: current });

    for (const [i, p] of PEERS.entries()) {
      const peerDir = join(dir, `peer${i}`);
      const own = files.filter((f) => f.host === p.host);
      // The same check apply runs, on the same files.
      const verdict = await checkKeaFiles(own, localHostIO, await mkdtemp(join(dir, `check${i}-`)));
      expect(verdict.problems).toEqual([]);
      const dhcp4Path = join(peerDir, "kea-dhcp4.conf");
      const agentPath = join(peerDir, "kea-ctrl-agent.conf");
      await localHostIO.writeFile(dhcp4Path, own.find((f) => f.check.kind === "kea-dhcp4")!.content, 0o644);
      await localHostIO.writeFile(agentPath, own.find((f) => f.check.kind === "kea-ctrl-agent")!.content, 0o644);
      const env = [`KEA_PIDFILE_DIR=${peerDir}`, `KEA_LOCKFILE_DIR=${peerDir}`];
      const agent = spawn("ip", ["netns", "exec", ns(i), "env", ...env, "kea-ctrl-agent", "-c", agentPath], { stdio: "ignore" });
      const server = spawn("ip", ["netns", "exec", ns(i), "env", ...env, "kea-dhcp4", "-c", dhcp4Path], { stdio: "ignore" });
      children.push(agent, server);
      dhcp4[i] = server;
    }
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const name of [...PEERS.map((_, i) => ns(i)), BRIDGE_NS]) await localRunner.run(["ip", "netns", "del", name]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reaches load-balancing on both active peers and backup on the third: health OK", async () => {
    const peers = await waitFor("load-balancing/load-balancing/backup", 30_000, async () => {
      const seen = await observe();
      return seen.map((p) => p.state).join("/") === "load-balancing/load-balancing/backup" ? seen : undefined;
    });
    expect(aggregateKeaHealth(peers)).toBe("OK");
    const primary = await statusGet(socketOf(0));
    expect(primary?.ok && primary.relationships[0]).toMatchObject({ localRole: "primary", scopes: ["server1"], remote: { role: "secondary", inTouch: true, communicationInterrupted: false } });
    const backup = await statusGet(socketOf(2));
    expect(backup?.ok && backup.relationships[0]).toMatchObject({ localRole: "backup", localState: "backup" });
  }, 40_000);

  it("moves the primary to partner-down after the secondary stops (measured), health Impaired", async () => {
    const stoppedAt = Date.now();
    dhcp4[1]!.kill("SIGTERM");
    const status = await waitFor("server1 in partner-down", 30_000, async () => {
      const s = await statusGet(socketOf(0));
      return s?.ok && s.relationships[0]?.localState === "partner-down" ? s : undefined;
    });
    const seconds = (Date.now() - stoppedAt) / 1000;
    console.info(`kea HA lab: server1 reached partner-down ${seconds.toFixed(1)} s after server2's kea-dhcp4 stopped (heartbeat 1s, max-response-delay 3s, max-unacked-clients 0)`);
    // Kea counts max-response-delay from the last heartbeat answer, up to one heartbeat before
    // the stop: so not before 3 s − 1 s, and not much after 3 s (a few heartbeats).
    expect(seconds).toBeGreaterThanOrEqual(1.9);
    expect(seconds).toBeLessThan(10);
    expect(status.ok && status.relationships[0]).toMatchObject({ scopes: ["server1", "server2"], remote: { communicationInterrupted: true } });
    expect(aggregateKeaHealth(await observe())).toBe("Impaired");
  }, 40_000);

  it("is Down when the primary stops too, although the backup still answers status-get", async () => {
    dhcp4[0]!.kill("SIGTERM");
    const peers = await waitFor("server1 gone", 10_000, async () => {
      const seen = await observe();
      return seen[0]!.reachable ? undefined : seen;
    });
    expect(peers[2]).toMatchObject({ reachable: true });
    expect(aggregateKeaHealth(peers)).toBe("Down");
  }, 20_000);
});
