// `npm run bench:controller`: the controller's memory and CPU with about 1,000 objects, all on real
// lab hosts, on a real kube-apiserver. The controller is the production build (tsc output, what
// the image runs) as its own process; its /metrics (prom-client's default process metrics) and
// the kernel's /proc/PID/status are sampled every 5 s.
//
//   npm run bench:controller                        40 hosts, 1,000 objects, writes docs/benchmarks.md
//   npm run bench:controller -- --hosts 4 --objects 24 --resyncs 2 --no-write     a quick look
//   options: --resync 30s (the controller's), --resyncs 4 (steady-state window), --workers 16, --note TEXT,
//            --node-options "--max-old-space-size=256 …" (node's flags for the controller; its own section)
//
// The objects: one DDIHost per host and (objects − hosts) HAPairs, dealt over couples of hosts
// (densePairs). VRRP wants a VRID unique per L2 and the lab's first bridge has room for about 200
// VIPs, so the hosts join more bridges (lab extraNetworks), each its own L2 with VRIDs from 1; a
// host holds (2 × pairs ÷ hosts) keepalived instances, spread over its interfaces.
//
// Phases: the controller idle on an empty namespace; `kubectl apply` of every object, until every
// object is Ready (this process's watch) and every VIP is on its primary; one resync to settle;
// then `--resyncs` resync intervals of steady state: CPU seconds per resync is
// Δprocess_cpu_seconds_total ÷ (Δreconcile passes ÷ objects), a resync being one pass per object.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type FleetHost, type FleetSegment, densePairs, fleetManifestText, FLEET_NAMESPACE } from "../src/lab/fleet-manifests.js";
import type { Replica } from "../test/lab/controller-replica.js";
import type { Lab } from "../test/lab/lab.js";
import { type BenchControlPlane, ObjectWatch, buildController, applyObjects, isReady, processMemory, scrapeMetrics, startBenchController, startLabAndControlPlane, stopBenchController, waitVipsOnPrimaries } from "./controller-lab.js";
import { median } from "./stats.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** The flags as a reader would type them again: without --no-write and --note (and its text), quoted where needed. */
function commandArgs(argv: readonly string[]): string {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--no-write" || a.startsWith("--note=")) continue;
    if (a === "--note") {
      i++;
      continue;
    }
    kept.push(/^[A-Za-z0-9._=\/-]+$/.test(a) ? a : `'${a}'`);
  }
  return kept.length ? ` -- ${kept.join(" ")}` : "";
}

/** The section this run rewrites: a run with --node-options has its own, beside the default's. */
const markers = (capped: boolean) => (capped ? ["<!-- bench:controller node-options start -->", "<!-- bench:controller node-options end -->"] : ["<!-- bench:controller start -->", "<!-- bench:controller end -->"]);
/** Node flags for the controller: --name or --name=value words only (they go to node's argv, no shell). */
const NODE_FLAG_RE = /^--[a-z][a-z0-9-]*(=[A-Za-z0-9._-]+)?$/;
const GOAL_RSS_MB = 150;
const SAMPLE_MS = 5_000;

type Phase = "idle" | "converge" | "settle" | "steady";
interface Sample {
  at: number;
  phase: Phase;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  cpu: number;
  passes: number;
  vmRss: number;
  vmHwm: number;
}

const MB = 2 ** 20;
const mb = (bytes: number) => (bytes / MB).toFixed(1);

function log(msg: string): void {
  console.error(`bench:controller ${new Date().toISOString().slice(11, 19)} ${msg}`);
}

/** Every lab bridge as a segment: interface per host and the addresses above the hosts' for VIPs. */
function segmentsOf(lab: Lab, hosts: FleetHost[]): FleetSegment[] {
  const firstFree = 11 + lab.hosts.length;
  const networks = [lab.network, ...lab.extraNetworks];
  return networks.map((network, k) => ({
    interfaceOf: new Map(lab.hosts.map((h, i) => [hosts[i]!.name, k === 0 ? h.interface : h.extraLinks[k - 1]!.interface])),
    prefixLength: network.prefixLength,
    capacity: 254 - firstFree + 1,
    vip: (i: number) => network.subnet.replace(/\.0\/24$/, `.${firstFree + i}`),
  }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      hosts: { type: "string", default: "40" },
      objects: { type: "string", default: "1000" },
      resync: { type: "string", default: "30s" },
      resyncs: { type: "string", default: "4" },
      workers: { type: "string", default: "16" },
      "converge-timeout": { type: "string", default: "90" },
      note: { type: "string" },
      "node-options": { type: "string" },
      "no-write": { type: "boolean", default: false },
    },
  });
  const hostCount = Number(values.hosts);
  const objects = Number(values.objects);
  const resyncs = Number(values.resyncs);
  const workers = Number(values.workers);
  if (!Number.isInteger(hostCount) || hostCount < 2 || hostCount % 2 !== 0 || hostCount > 100) throw new Error(`--hosts: ${values.hosts} is not an even count in 2..100`);
  if (!Number.isInteger(objects) || objects <= hostCount) throw new Error(`--objects: ${values.objects} must be more than --hosts (the rest are HAPairs)`);
  if (!/^[1-9][0-9]*s$/.test(values.resync)) throw new Error(`--resync: ${values.resync} is not a whole number of seconds such as 30s`);
  if (!Number.isInteger(resyncs) || resyncs < 1) throw new Error(`--resyncs: ${values.resyncs} is not a positive count`);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers: ${values.workers} is not a positive count`);
  const nodeArgs = values["node-options"]?.split(/\s+/).filter(Boolean) ?? [];
  const badFlag = nodeArgs.find((f) => !NODE_FLAG_RE.test(f));
  if (badFlag) throw new Error(`--node-options: ${JSON.stringify(badFlag)} is not a node flag such as --max-old-space-size=256`);
  const [START, END] = markers(nodeArgs.length > 0) as [string, string];
  const resyncMs = Number(values.resync.slice(0, -1)) * 1000;
  const pairCount = objects - hostCount;
  const perSegment = Math.min(255, 254 - (11 + hostCount) + 1);
  const extraNetworks = Math.ceil(pairCount / perSegment) - 1;

  const startedAt = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "ddi-ha-bench-controller-"));
  const buildDir = join(repoRoot, ".scratch", `bench-controller-${process.pid}`);
  let lab: Lab | undefined;
  let bcp: BenchControlPlane | undefined;
  let replica: Replica | undefined;
  let watch: ObjectWatch | undefined;
  let sampler: NodeJS.Timeout | undefined;
  const samples: Sample[] = [];
  const loads: number[] = [];
  try {
    log(`building the controller; starting ${hostCount} lab hosts on ${1 + extraNetworks} bridge(s) and a kube-apiserver`);
    const [entry, started] = await Promise.all([
      buildController(buildDir),
      startLabAndControlPlane({ hosts: hostCount, extraNetworks, readyTimeoutMs: 300_000 }, dir),
    ]);
    ({ lab, bcp } = started);
    log(`lab ${lab.name} up in ${started.labStartS.toFixed(1)} s; kube-apiserver ${bcp.cp.binaries.version}`);
    const hosts: FleetHost[] = lab.hosts.map((h, i) => ({ name: `h${i + 1}`, address: h.address, interface: h.interface, hostKeyLine: h.hostKeyLine }));
    const labHost = new Map(lab.hosts.map((h, i) => [hosts[i]!.name, h]));
    const pairs = densePairs(hosts, segmentsOf(lab, hosts), pairCount);
    const text = fleetManifestText(hosts, pairs, lab.privateKey, lab.network.prefixLength);

    await bcp.kubectl.run(["create", "namespace", FLEET_NAMESPACE]);
    watch = new ObjectWatch(bcp.kubeConfig, FLEET_NAMESPACE);
    replica = await startBenchController({ name: "bench", kubeconfig: bcp.cp.kubeconfigPath, namespace: FLEET_NAMESPACE, resync: values.resync, workers, entry, ...(nodeArgs.length ? { nodeArgs } : {}) });
    const pid = replica.child.pid!;
    let phase: Phase = "idle";
    let sampling = false;
    const sample = async () => {
      if (sampling) return;
      sampling = true;
      try {
        const m = await scrapeMetrics(replica!);
        const k = processMemory(pid);
        const get = (n: string) => m.get(`ddi_ha_${n}`) ?? Number.NaN;
        samples.push({
          at: Date.now(),
          phase,
          rss: get("process_resident_memory_bytes"),
          heapUsed: get("nodejs_heap_size_used_bytes"),
          heapTotal: get("nodejs_heap_size_total_bytes"),
          external: get("nodejs_external_memory_bytes"),
          cpu: get("process_cpu_seconds_total"),
          passes: m.get("ddi_ha_reconcile_total") ?? 0,
          vmRss: k.rssBytes,
          vmHwm: k.peakRssBytes,
        });
        loads.push(loadavg()[0]!);
      } catch (err) {
        log(`sample failed: ${(err as Error).message}`);
      } finally {
        sampling = false;
      }
    };
    // The idle controller: every kind listed, nothing to do.
    await new Promise((r) => setTimeout(r, 10_000));
    await sample();
    await sample();
    sampler = setInterval(() => void sample(), SAMPLE_MS);

    phase = "converge";
    const t0 = Date.now();
    await applyObjects(bcp.kubectl, text);
    log(`kubectl apply of ${objects} objects took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // A converge that outlasts --converge-timeout (minutes) is reported as such, and the memory still measured.
    let converged = true;
    try {
      const readyAt = await watch.when("every object Ready", ["HAPair", "DDIHost"], objects, isReady, t0, Number(values["converge-timeout"]) * 60_000, log);
      log(`every object Ready after ${((readyAt - t0) / 1000).toFixed(1)} s`);
      await waitVipsOnPrimaries(pairs, (n) => labHost.get(n)!, 10 * 60_000);
    } catch (err) {
      converged = false;
      log(`NOT converged: ${(err as Error).message}`);
    }
    const convergeS = (Date.now() - t0) / 1000;
    const readyAtConverge = watch.count(isReady);
    log(`converge: ${readyAtConverge}/${objects} Ready after ${convergeS.toFixed(1)} s`);

    phase = "settle";
    await new Promise((r) => setTimeout(r, resyncMs * 1.5));
    phase = "steady";
    await sample();
    const first = samples.at(-1)!;
    await new Promise((r) => setTimeout(r, resyncMs * resyncs));
    await sample();
    const last = samples.at(-1)!;
    clearInterval(sampler);
    sampler = undefined;
    const notReady = objects - watch.count(isReady);

    const window = last.at - first.at;
    const passes = last.passes - first.passes;
    const resyncsSeen = passes / objects;
    const cpuS = last.cpu - first.cpu;
    const steady = samples.filter((s) => s.phase === "steady" || s.phase === "settle");
    const idle = samples.filter((s) => s.phase === "idle");
    const during = samples.filter((s) => s.phase === "converge");
    const max = (xs: number[]) => Math.max(...xs);
    const row = (what: string, xs: Sample[], pick: (s: Sample) => number) =>
      `| ${what} | ${xs.length ? mb(median(xs.map(pick))) : "–"} | ${xs.length ? mb(max(xs.map(pick))) : "–"} |`;
    const steadyRssMb = max(steady.map((s) => s.rss)) / MB;
    const cmd = `npm run bench:controller${commandArgs(process.argv.slice(2))}`;
    const lines = [
      START,
      nodeArgs.length ? `## Controller memory and CPU, 1,000 objects on real hosts, node ${nodeArgs.join(" ")}` : "## Controller memory and CPU, 1,000 objects on real hosts",
      "",
      `Produced by \`${cmd}\` (bench/controller.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version},`,
      `${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB; the whole run took ${((Date.now() - startedAt) / 60_000).toFixed(1)} min;`,
      `1-minute load average during the run ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (median ${median(loads).toFixed(1)}) on ${cpus().length} CPUs.`,
      ...(values.note ? ["", values.note] : []),
      "",
      `${objects} objects on kube-apiserver ${bcp.cp.binaries.version}: ${hostCount} DDIHosts, one per lab host (all real: the most this shared machine`,
      `runs alongside the other labs), and ${pairCount} HAPairs on couples of them, so every host runs keepalived with`,
      `${(2 * pairCount) / hostCount} VRRP instances. A VRID is unique per L2 and a lab bridge has room for ${perSegment} VIPs above the hosts,`,
      `so the hosts sit on ${1 + extraNetworks} bridges (\`startLab({ extraNetworks: ${extraNetworks} })\`), each its own L2 with VRIDs from 1,`,
      "and a couple's pairs are spread over them (`densePairs`, src/lab/fleet-manifests.ts). No KeaHACluster or",
      "DhcpFailoverPeer (the lab runs no Kea HA pair or failover dhcpd at this count).",
      `The controller is the production build (tsc output, as in the image) run as \`${nodeArgs.length ? `node ${nodeArgs.join(" ")} … ` : ""}ddi-ha controller --resync ${values.resync}`,
      converged
        ? `--workers ${workers} --leader-elect\`, its own process; it converged every object from \`kubectl apply\` (every object Ready,\nevery VIP on its primary) in ${convergeS.toFixed(0)} s. Memory is its /metrics (prom-client's default process metrics,`
        : `--workers ${workers} --leader-elect\`, its own process; it had **not converged** ${convergeS.toFixed(0)} s after \`kubectl apply\` (${readyAtConverge} of ${objects} objects\nReady; the steady state below is measured from there). Memory is its /metrics (prom-client's default process metrics,`,
      "`ddi_ha_process_resident_memory_bytes`, `ddi_ha_nodejs_heap_size_used_bytes`, `…_total_bytes`), sampled every 5 s,",
      "beside the kernel's VmRSS and VmHWM (peak RSS) from /proc/PID/status.",
      "",
      "| MiB | median | max |",
      "| --- | --- | --- |",
      row("RSS, idle (no objects)", idle, (s) => s.rss),
      row("RSS, during converge", during, (s) => s.rss),
      row("RSS, steady state (after converge, resyncs)", steady, (s) => s.rss),
      row("heap used, idle", idle, (s) => s.heapUsed),
      row("heap used, during converge", during, (s) => s.heapUsed),
      row("heap used, steady state", steady, (s) => s.heapUsed),
      row("heap total, steady state", steady, (s) => s.heapTotal),
      row("external (Buffers), steady state", steady, (s) => s.external),
      `| kernel VmRSS at the end / VmHWM (peak over the run) | ${mb(last.vmRss)} | ${mb(last.vmHwm)} |`,
      "",
      ...(converged
        ? [
                  `Steady state: ${(window / 1000).toFixed(1)} s = ${(window / resyncMs).toFixed(2)} resync intervals of ${values.resync} (every host probed once per interval), ${cpuS.toFixed(2)} CPU`,
      `seconds (\`ddi_ha_process_cpu_seconds_total\`), so **${(cpuS / (window / resyncMs)).toFixed(2)} CPU s per resync** of ${objects} objects; ${passes} reconcile passes`,
      `(\`ddi_ha_reconcile_total\`, ${resyncsSeen.toFixed(2)} per object: a DDIHost's resync requeues the pairs on it), ${((1000 * cpuS) / passes).toFixed(2)} ms per pass; ${((100 * cpuS) / (window / 1000)).toFixed(1)} % of one CPU at --resync ${values.resync}`,
      `(${((100 * cpuS * (resyncMs / 60_000)) / (window / 1000)).toFixed(1)} % at the default 60 s). Objects not Ready at the end: ${notReady}.`
          ]
        : [
            `Not a steady state (${notReady} objects not Ready at the end): over the last ${(window / 1000).toFixed(0)} s the controller finished ${passes} reconcile passes`,
            `for ${cpuS.toFixed(2)} CPU s (${((1000 * cpuS) / Math.max(1, passes)).toFixed(0)} ms per pass); over the whole run, ${last.cpu.toFixed(1)} CPU s for ${last.passes} passes`,
            `(${((1000 * last.cpu) / Math.max(1, last.passes)).toFixed(0)} ms per pass). A resync is one pass per object, so CPU s per resync ≈ ${objects} × that; not measured directly.`,
          ]),
      "",
      `Goal: RSS ≤ ${GOAL_RSS_MB} MB at 1,000 objects. Measured steady-state RSS max: ${steadyRssMb.toFixed(1)} MiB (${((steadyRssMb * MB) / 1e6).toFixed(1)} MB); peak over the run (VmHWM): ${mb(last.vmHwm)} MiB.`,
      END,
    ];
    const markdown = lines.join("\n");
    console.log(markdown);
    writeFileSync(join(dir, "samples.json"), JSON.stringify(samples));
    if (!values["no-write"]) {
      const file = join(repoRoot, "docs", "benchmarks.md");
      const doc = readFileSync(file, "utf8");
      const at = doc.indexOf(START);
      writeFileSync(file, at >= 0 ? doc.slice(0, at) + markdown + doc.slice(doc.indexOf(END) + END.length) : `${doc.trimEnd()}\n\n${markdown}\n`);
      log(`wrote ${file}`);
    }
    console.error(`samples (MiB rss/heap, cpu s, passes): ${samples.map((s) => `${s.phase[0]}:${mb(s.rss)}/${mb(s.heapUsed)}/${s.cpu.toFixed(1)}/${s.passes}`).join(" ")}`);
  } catch (err) {
    if (replica) console.error(`controller log (last lines):\n${replica.lines.slice(-30).join("\n")}`);
    throw err;
  } finally {
    if (sampler) clearInterval(sampler);
    watch?.stop();
    await stopBenchController(replica).catch(() => undefined);
    await lab?.stop().catch((err: unknown) => log(`lab stop: ${String(err)}`));
    await bcp?.cp.stop().catch((err: unknown) => log(`control plane stop: ${String(err)}`));
    rmSync(buildDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
