// End to end on this machine with the real keepalived 2.2.7: two network namespaces joined by a
// veth pair (eth0 <-> eth1, 198.18.79.0/24 only), each running the files renderKeepalivedPair
// wrote for its node, with paths moved under a temp dir the way the checker stages them.
// Proves that the rendered pair elects the primary, fails over and preempts back, that the notify
// hook's records follow, and that removing the pair's file and reloading drops only that pair.
// Needs root (network namespaces); CI runs as root.
import { rootForRealDaemons, waitFor as waitForEvery } from "../../testing/support.js";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localHostIO } from "../../exec/host-io.js";
import { localRunner } from "../../exec/runner.js";
import type { RenderedFile } from "../../render/types.js";
import {
  type KeepalivedStateRecord,
  NOTIFY_SCRIPT_PATH,
  keepalivedInstanceNames,
  keepalivedPairFilePath,
  keepalivedStagedPath,
  parseKeepalivedStateFile,
  renderKeepalivedNotifyScript,
  renderKeepalivedPair,
} from "./index.js";
import { haPair, host } from "./test-support.js";

const isRoot = rootForRealDaemons();
const tag = String(process.pid % 100000);
const NODES = [
  { host: "ka-a", ns: `ka-lab-${tag}-a`, iface: "eth0", address: "198.18.79.2" },
  { host: "ka-b", ns: `ka-lab-${tag}-b`, iface: "eth1", address: "198.18.79.3" },
] as const;
const VIP = "198.18.79.86";

async function sh(argv: string[]): Promise<string> {
  const r = await localRunner.run(argv, { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}


const waitFor = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) => waitForEvery(what, timeoutMs, probe, 50);

describe.skipIf(!isRoot)("a rendered HAPair on two real keepalived 2.2.7 nodes", () => {
  let dir = "";
  const pair = haPair(
    {
      primary: { host: "ka-a", interface: "eth0" },
      secondary: { host: "ka-b", interface: "eth1" },
      virtualIP: `${VIP}/24`,
      virtualRouterID: 79,
      services: { dns: false },
    },
    "lab-vip",
  );
  const hosts = new Map(NODES.map((n) => [n.host, host(n.host, n.address)]));
  const files = renderKeepalivedPair(pair, hosts);
  const instance = keepalivedInstanceNames(pair).ipv4;
  const procs = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();

  const rootOf = (h: string) => join(dir, h);
  const stateFile = (h: string) => join(rootOf(h), "state", `${instance}.state`);
  const mainOf = (h: string) => keepalivedStagedPath(rootOf(h), files.find((f) => f.host === h && f.ownership === "shared" && f.path !== NOTIFY_SCRIPT_PATH)!.path);

  /** The node's files under its temp root: include, notify path and state dir point there too. */
  async function install(h: string): Promise<void> {
    const root = rootOf(h);
    const notify = keepalivedStagedPath(root, NOTIFY_SCRIPT_PATH);
    for (const f of files.filter((x: RenderedFile) => x.host === h)) {
      let content = f.content;
      if (f.path === NOTIFY_SCRIPT_PATH) content = renderKeepalivedNotifyScript(join(root, "state"));
      else if (f.ownership === "shared") content = content.replace(/^include (\S+)$/m, (_m, p: string) => `include ${keepalivedStagedPath(root, p)}`);
      else content = content.split(` ${NOTIFY_SCRIPT_PATH}`).join(` ${notify}`);
      await localHostIO.writeFile(keepalivedStagedPath(root, f.path), content, f.mode);
    }
  }

  function start(h: string): void {
    const node = NODES.find((n) => n.host === h)!;
    const root = rootOf(h);
    const argv = ["netns", "exec", node.ns, "keepalived", "-n", "-l", "-P", "-f", mainOf(h), "-p", join(root, "keepalived.pid"), "-r", join(root, "vrrp.pid")];
    const child = spawn("ip", argv, { stdio: ["ignore", "pipe", "pipe"] });
    const append = (d: Buffer) => logs.set(h, (logs.get(h) ?? "") + d.toString());
    child.stdout!.on("data", append);
    child.stderr!.on("data", append);
    procs.set(h, child);
  }

  async function stop(h: string): Promise<void> {
    const child = procs.get(h);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }

  const record = async (h: string): Promise<KeepalivedStateRecord | undefined> => {
    const text = await readFile(stateFile(h), "utf8").catch(() => undefined);
    return text === undefined ? undefined : parseKeepalivedStateFile(text);
  };
  const stateIs = (h: string, state: string) => async () => ((await record(h))?.state === state ? true : undefined);
  const holdsVip = async (h: string): Promise<boolean> => {
    const node = NODES.find((n) => n.host === h)!;
    const out = await sh(["ip", "-n", node.ns, "-j", "addr", "show", "dev", node.iface]);
    return (JSON.parse(out) as { addr_info: { local: string }[] }[]).some((i) => i.addr_info.some((a) => a.local === VIP));
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ka-lab-"));
    for (const n of NODES) await sh(["ip", "netns", "add", n.ns]);
    await sh(["ip", "link", "add", "eth0", "netns", NODES[0].ns, "type", "veth", "peer", "name", "eth1", "netns", NODES[1].ns]);
    for (const n of NODES) {
      await sh(["ip", "-n", n.ns, "addr", "add", `${n.address}/24`, "dev", n.iface]);
      await sh(["ip", "-n", n.ns, "link", "set", n.iface, "up"]);
      await sh(["ip", "-n", n.ns, "link", "set", "lo", "up"]);
      await install(n.host);
    }
  });

  afterAll(async () => {
    for (const h of procs.keys()) await stop(h).catch(() => undefined);
    for (const n of NODES) await localRunner.run(["ip", "netns", "del", n.ns]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("elects the primary: MASTER with the VIP on eth0, the secondary BACKUP", async () => {
    start("ka-b");
    await waitFor("the secondary to record BACKUP", 10_000, stateIs("ka-b", "BACKUP"));
    start("ka-a");
    await waitFor("the primary to record MASTER", 15_000, stateIs("ka-a", "MASTER"));
    expect(await record("ka-a")).toMatchObject({ state: "MASTER", priority: 150 });
    expect(await waitFor("the VIP on the primary", 5_000, async () => ((await holdsVip("ka-a")) ? true : undefined))).toBe(true);
    expect(await holdsVip("ka-b")).toBe(false);
    expect(await record("ka-b")).toMatchObject({ state: "BACKUP", priority: 100 });
  });

  it("fails over when the primary's keepalived stops, and records STOP there", async () => {
    const t0 = Date.now();
    await stop("ka-a");
    await waitFor("the secondary to record MASTER", 10_000, stateIs("ka-b", "MASTER"));
    await waitFor("the VIP on the secondary", 5_000, async () => ((await holdsVip("ka-b")) ? true : undefined));
    const failoverMs = Date.now() - t0;
    console.info(`keepalived lab: VIP on the secondary ${failoverMs} ms after the primary's keepalived got SIGTERM`);
    // A clean stop sends priority 0: the backup takes over after its skew time, not 3 adverts.
    expect(failoverMs).toBeLessThan(3_000);
    expect(await record("ka-a")).toMatchObject({ state: "STOP" });
    expect(await holdsVip("ka-a")).toBe(false);
  });

  it("preempts back to the recovered primary", async () => {
    start("ka-a");
    await waitFor("the primary to record MASTER again", 15_000, stateIs("ka-a", "MASTER"));
    await waitFor("the secondary to record BACKUP again", 10_000, stateIs("ka-b", "BACKUP"));
    await waitFor("the VIP back on the primary", 5_000, async () => ((await holdsVip("ka-a")) && !(await holdsVip("ka-b")) ? true : undefined));
  });

  it("fails over when the primary's adverts stop arriving (split brain while they are lost), and heals", async () => {
    const nsA = NODES[0].ns;
    // A hung link or a firewall eating protocol 112: the primary stays MASTER and says nothing.
    await sh(["ip", "netns", "exec", nsA, "nft", "add", "table", "inet", "ddi_lab"]);
    await sh(["ip", "netns", "exec", nsA, "nft", "add", "chain", "inet", "ddi_lab", "out", "{ type filter hook output priority 0; }"]);
    const t0 = Date.now();
    await sh(["ip", "netns", "exec", nsA, "nft", "add", "rule", "inet", "ddi_lab", "out", "ip", "protocol", "vrrp", "drop"]);
    await waitFor("the secondary to record MASTER", 10_000, stateIs("ka-b", "MASTER"));
    await waitFor("the VIP on the secondary", 5_000, async () => ((await holdsVip("ka-b")) ? true : undefined));
    const failoverMs = Date.now() - t0;
    console.info(`keepalived lab: VIP on the secondary ${failoverMs} ms after the primary's adverts stopped`);
    // master_down = 3 x advert_int + (256 - 100)/256 s = 3.61 s for the secondary (priority 100, advert 1s).
    expect(failoverMs).toBeGreaterThan(3_000);
    expect(failoverMs).toBeLessThan(6_000);
    // Both hold the VIP now: what the observer must report as split brain.
    expect(await holdsVip("ka-a")).toBe(true);
    expect(await record("ka-a")).toMatchObject({ state: "MASTER" });
    await sh(["ip", "netns", "exec", nsA, "nft", "delete", "table", "inet", "ddi_lab"]);
    await waitFor("the secondary to record BACKUP again", 10_000, stateIs("ka-b", "BACKUP"));
    await waitFor("the VIP on the primary only", 5_000, async () => ((await holdsVip("ka-a")) && !(await holdsVip("ka-b")) ? true : undefined));
  });

  it("drops the pair (and its record) when its file is removed and keepalived reloads", async () => {
    await unlink(keepalivedStagedPath(rootOf("ka-a"), keepalivedPairFilePath(pair, "primary")));
    procs.get("ka-a")!.kill("SIGHUP");
    await waitFor("the primary's record to disappear", 10_000, async () => ((await record("ka-a")) === undefined ? true : undefined));
    await waitFor("the VIP to leave the primary", 5_000, async () => (!(await holdsVip("ka-a")) ? true : undefined));
    // keepalived itself keeps running with the shared main file and no instances.
    expect(procs.get("ka-a")!.exitCode).toBeNull();
    expect(logs.get("ka-a")).toContain("Reload complete");
    await waitFor("the secondary to take the VIP", 10_000, async () => ((await holdsVip("ka-b")) ? true : undefined));
  });
});
