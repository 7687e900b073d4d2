// The real controller over a lab, for the benchmarks that measure it as a product: a real
// kube-apiserver with the CRDs, the fleet's objects applied with kubectl into a namespace of their
// own, `ddi-ha controller` as its own process (test/lab/controller-replica.ts), this process's
// watch of the objects (when did each get Ready, DriftCorrected), and its /metrics.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { KubeClient } from "../src/controller/index.js";
import { ResourceWatcher } from "../src/controller/watcher.js";
import type { KubeItem } from "../src/engine/kube-status.js";
import type { FleetPair } from "../src/lab/fleet-manifests.js";
import { Kubectl } from "../src/lab/kubectl.js";
import { type ControlPlane, startControlPlane } from "../test/harness/control-plane.js";
import { type Replica, leaderGauge, startReplica } from "../test/lab/controller-replica.js";
import { type Lab, type LabHost, type StartLabOptions, startLab } from "../test/lab/lab.js";
import { until } from "./stats.js";

export const BENCH_LEASE = "ddi-ha-operator";

const repoRoot = join(import.meta.dirname, "..");

/**
 * The production build (tsc output, what the image runs), out of the way of bin/ddi-ha.js's dist/
 * lookup; returns its CLI entry. Benchmarks time it, not tsx, which adds about 0.35 s of start-up
 * to every CLI invocation.
 */
export async function buildController(outDir: string): Promise<string> {
  await promisify(execFile)(process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", join(repoRoot, "tsconfig.json"), "--outDir", outDir], { cwd: repoRoot, timeout: 15 * 60_000 });
  return join(outDir, "src", "cli", "main.js");
}

export interface BenchControlPlane {
  cp: ControlPlane;
  kubectl: Kubectl;
  kubeConfig: KubeConfig;
}

/** kube-apiserver and etcd with the CRDs Established. `dir` holds kubectl's discovery cache. */
export async function startBenchControlPlane(dir: string): Promise<BenchControlPlane> {
  const cp = await startControlPlane();
  try {
    const kubectl = new Kubectl({ binary: cp.binaries.kubectl, kubeconfig: cp.kubeconfigPath, cacheDir: join(dir, "kube-cache") });
    await kubectl.applyServerSide([join(import.meta.dirname, "..", "crds")]);
    await kubectl.waitForCrds();
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cp.kubeconfigPath);
    return { cp, kubectl, kubeConfig };
  } catch (err) {
    await cp.stop().catch(() => undefined);
    throw err;
  }
}

/** A lab and a control plane started side by side; whichever started is stopped if the other fails. */
export async function startLabAndControlPlane(labOptions: StartLabOptions, dir: string): Promise<{ lab: Lab; bcp: BenchControlPlane; labStartS: number }> {
  const t0 = performance.now();
  let labStartS = 0;
  const [lab, bcp] = await Promise.allSettled([
    startLab(labOptions).then((l) => ((labStartS = (performance.now() - t0) / 1000), l)),
    startBenchControlPlane(dir),
  ]);
  if (lab.status === "fulfilled" && bcp.status === "fulfilled") return { lab: lab.value, bcp: bcp.value, labStartS };
  if (lab.status === "fulfilled") await lab.value.stop().catch(() => undefined);
  if (bcp.status === "fulfilled") await bcp.value.cp.stop().catch(() => undefined);
  throw lab.status === "rejected" ? lab.reason : (bcp as PromiseRejectedResult).reason;
}

/** A server-side apply of the manifests, as a user would (the namespace exists: the Lease lives there). */
export async function applyObjects(kubectl: Kubectl, manifestText: string): Promise<void> {
  await kubectl.run(["apply", "--server-side", "--field-manager=bench", "-f", "-"], { stdin: manifestText, timeoutMs: 600_000 });
}

export interface BenchControllerOptions {
  name: string;
  kubeconfig: string;
  namespace: string;
  /** `--resync` (e.g. "10s"); the controller's default 60 s when undefined. */
  resync?: string;
  workers?: number;
  /** The CLI script (default bin/ddi-ha.js, through tsx). */
  entry?: string;
  /** Node's own flags for the controller process (a heap cap, say). */
  nodeArgs?: readonly string[];
  logLevel?: string;
}

/** `ddi-ha controller --namespace NS --leader-elect` as its own process, once it leads. */
export async function startBenchController(options: BenchControllerOptions): Promise<Replica> {
  const replica = await startReplica({
    name: options.name,
    kubeconfig: options.kubeconfig,
    namespace: options.namespace,
    leaseName: BENCH_LEASE,
    logLevel: options.logLevel ?? "info",
    ...(options.entry ? { entry: options.entry } : {}),
    ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}),
    args: [...(options.resync ? ["--resync", options.resync] : []), ...(options.workers ? ["--workers", String(options.workers)] : [])],
  });
  try {
    for (const deadline = Date.now() + 60_000; (await leaderGauge(replica)) !== 1; ) {
      if (Date.now() > deadline) throw new Error(`controller ${options.name} did not take the Lease within 60 s:\n${replica.log().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return replica;
  } catch (err) {
    replica.child.kill("SIGKILL");
    throw err;
  }
}

/** SIGTERM (the passes in flight finish), SIGKILL after 30 s. Safe to call twice. */
export async function stopBenchController(replica: Replica | undefined): Promise<void> {
  if (!replica || replica.child.exitCode !== null || replica.child.signalCode !== null) return;
  replica.child.kill("SIGTERM");
  const timer = setTimeout(() => replica.child.kill("SIGKILL"), 30_000);
  await replica.exited;
  clearTimeout(timer);
}

/** Every sample of the controller's /metrics, summed per metric name (labels dropped). */
export async function scrapeMetrics(replica: Replica): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${replica.port}/metrics`)).text();
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const name = line.split(/[{ ]/)[0]!;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

/** The kernel's view of a process's memory: resident now and its peak (VmRSS, VmHWM), bytes. */
export function processMemory(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rssBytes: kb("VmRSS"), peakRssBytes: kb("VmHWM") };
}

const conditionOf = (item: KubeItem, type: string) =>
  ((item.status as { conditions?: { type: string; status: string; reason?: string }[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

export const isReady = (item: KubeItem) => conditionOf(item, "Ready")?.status === "True";
export const isDriftCorrected = (item: KubeItem) => conditionOf(item, "ConfigApplied")?.reason === "DriftCorrected";

/**
 * This process's watch of a namespace's HAPairs and DDIHosts, as the API server delivers them:
 * `when(pred, since)` resolves with the arrival time of the last object to match `pred` in an
 * update delivered at or after `since` (or already cached so, for a `since` in the past).
 */
export class ObjectWatch {
  private readonly watchers: ResourceWatcher[];
  private readonly latest = new Map<string, KubeItem>();
  private readonly waiters: { pred: (i: KubeItem) => boolean; kinds: string[]; since: number; met: Map<string, number> }[] = [];

  constructor(kubeConfig: KubeConfig, namespace: string, kinds: string[] = ["HAPair", "DDIHost"]) {
    const client = new KubeClient(kubeConfig);
    this.watchers = kinds.map(
      (kind) =>
        new ResourceWatcher({
          client,
          kind,
          namespace,
          log: pino({ level: "silent" }),
          onChange: (item, type) => {
            const key = `${kind}/${item.metadata.name}`;
            if (type === "deleted") return void this.latest.delete(key);
            this.latest.set(key, item);
            const at = Date.now();
            for (const w of this.waiters) if (w.kinds.includes(kind) && at >= w.since && !w.met.has(key) && w.pred(item)) w.met.set(key, at);
          },
        }),
    );
    for (const w of this.watchers) w.start();
  }

  stop(): void {
    for (const w of this.watchers) w.stop();
  }

  /** How many watched objects match `pred` now. */
  count(pred: (i: KubeItem) => boolean): number {
    return [...this.latest.values()].filter(pred).length;
  }

  /**
   * Waits until `count` objects of `kinds` have matched; logs progress every 30 s. Returns the
   * arrival time of the last match.
   */
  async when(what: string, kinds: string[], count: number, pred: (i: KubeItem) => boolean, since: number, timeoutMs: number, log?: (m: string) => void): Promise<number> {
    const waiter = { pred, kinds, since, met: new Map<string, number>() };
    this.waiters.push(waiter);
    try {
      let nextLog = Date.now() + 30_000;
      return await until(what, timeoutMs, () => {
        if (waiter.met.size >= count) return Math.max(...waiter.met.values());
        if (log && Date.now() > nextLog) {
          nextLog = Date.now() + 30_000;
          log(`${what}: ${waiter.met.size}/${count}`);
        }
        return undefined;
      }, 50);
    } finally {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
    }
  }
}

/**
 * Resolves when every pair's VIP is on its primary (any interface): one `ip` per primary host a
 * round, whatever number of pairs it holds.
 */
export async function waitVipsOnPrimaries(pairs: readonly FleetPair[], hostOf: (name: string) => LabHost, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let missing = [...pairs];
  for (;;) {
    const byHost = new Map<string, FleetPair[]>();
    for (const p of missing) byHost.set(p.primary.name, [...(byHost.get(p.primary.name) ?? []), p]);
    const still = await Promise.all(
      [...byHost].map(async ([name, ps]) => {
        const out = (await hostOf(name).exec(["ip", "-o", "-4", "addr", "show"])).stdout;
        return ps.filter((p) => !out.includes(` ${p.vip}/`));
      }),
    );
    missing = still.flat();
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`VIPs not on their primaries after ${timeoutMs} ms: ${missing.slice(0, 10).map((p) => p.name).join(", ")}${missing.length > 10 ? ` and ${missing.length - 10} more` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
