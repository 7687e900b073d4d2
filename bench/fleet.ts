// `npm run bench:fleet`: ddi-ha against an Ansible playbook on a lab of real systemd hosts.
//
//   npm run bench:fleet                       20 and 100 hosts, 3 runs each, writes docs/benchmarks.md
//   npm run bench:fleet -- --smoke            4 hosts (2 HAPairs), 1 run, one failover; writes nothing
//   npm run bench:fleet -- --sizes 20 --runs 3 [--no-write]
//
// Per size, each run does for each tool (fresh hosts every run):
//   converge  from no keepalived config (service disabled) to every VIP on its primary;
//   no-op     the same again, nothing changed: per host SSH exec channels (sshd's own log at
//             LogLevel DEBUG1), SSH bytes (iptables counters on the host), files written
//             (inode or mtime changed) and keepalived reloads/starts (its journal);
//   drift     the pair's file hand-edited on every host, until all are back to the rendered bytes.
// ddi-ha is measured twice: its CLI (`ddi-ha apply`, run per phase) and the real controller
// (`ddi-ha controller`, its own process on a real kube-apiserver; --resync 0.3 s per host, at
// least 10 s, so 10 s at 20 hosts and 30 s at 100; 5 s in the smoke):
//   converge  from `kubectl apply` of the same objects to every HAPair and DDIHost Ready (this
//             process's watch) and every VIP on its primary;
//   no-op     one resync of every host, nothing changed: the same per-host costs (one exec each);
//   drift     the same hand edit on every host, until every HAPair's ConfigApplied says
//             DriftCorrected (watch) and the hosts hold the rendered bytes again. The controller
//             looks at the next resync, so this includes up to one resync interval of waiting.
// Both tools push the bytes `ddi-ha render -o DIR` writes (bench/ansible/keepalived.yml copies
// them), and both are checked against those bytes on every host after converge and after drift.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import type { Lab, LabHost } from "../test/lab/lab.js";
import { FLEET_NAMESPACE, type FleetHost, type FleetPair, ansibleInventory, fleetManifestText, fleetPairs } from "../src/lab/fleet-manifests.js";
import { applyPass } from "../src/cli/commands.js";
import { PinnedHostKeys, manifestSessionProvider } from "../src/engine/sessions.js";
import { readManifests } from "../src/manifests/load.js";
import { SshTransport } from "../src/ssh/index.js";
import { validateManifests } from "../src/validation/validate.js";
import { median } from "./stats.js";
import { type BenchControlPlane, ObjectWatch, applyObjects, buildController, isDriftCorrected, isReady, scrapeMetrics, startBenchController, startLabAndControlPlane, stopBenchController, waitVipsOnPrimaries } from "./controller-lab.js";
import type { Replica } from "../test/lab/controller-replica.js";

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PLAYBOOK = join(repoRoot, "bench", "ansible", "keepalived.yml");
const ANSIBLE_CFG = join(repoRoot, "bench", "ansible", "ansible.cfg");
const RESULTS_START = "<!-- bench:fleet start -->";
const RESULTS_END = "<!-- bench:fleet end -->";
const ACCOUNTING_TAG = "ddi-ha-fleet-bench";

type Tool = "ddi-ha" | "ansible" | "controller";
type Phase = "converge" | "noop" | "drift";
/** The tools run per phase on demand; the controller's phases are its own (controllerRun). */
const CLI_TOOLS: Tool[] = ["ddi-ha", "ansible"];
const TOOLS: Tool[] = [...CLI_TOOLS, "controller"];
const TOOL_LABEL: Record<Tool, string> = { "ddi-ha": "ddi-ha apply", ansible: "ansible", controller: "ddi-ha controller (one resync)" };
const PHASES: Phase[] = ["converge", "noop", "drift"];

interface HostSnapshot {
  channels: number;
  bytesIn: number;
  bytesOut: number;
  files: string;
  reloads: number;
}

interface NoopCost {
  channelsPerHost: { min: number; max: number; median: number };
  bytesPerHost: number;
  writes: number;
  reloads: number;
  /** What the tool itself said it changed or reloaded (ddi-ha's table, Ansible's "changed=", the controller's drift corrections). */
  reported: number;
  /** The controller's CPU seconds over the resync (process_cpu_seconds_total). */
  cpuSeconds?: number;
  /**
   * The controller's channels per host within ONE resync: from the host's first channel after the
   * snapshot, for 0.9 × R (the soonest its next jittered resync can come). `channelsPerHost` counts
   * the whole window until every host was probed, which on a loaded machine spans two resyncs of
   * the hosts probed first.
   */
  perResync?: { min: number; max: number; median: number };
}

interface SizeResult {
  hosts: number;
  pairs: number;
  labStartS: number;
  seconds: Record<Tool, Record<Phase, number[]>>;
  noop: Record<Tool, NoopCost[]>;
  failover?: { stopToVipS: number; stopToStatusS: number };
  apiserver: string;
  /** One no-op pass in process: sshd's count against the transport's own counter, per host. */
  crossCheck?: { sshd: number[]; transport: number[] };
  /** The controller's --resync at this size. */
  resync: string;
  /** Controller runs that did not finish, with why: reported, not hidden, and the CLI runs go on. */
  controllerFailures: string[];
}

function log(msg: string): void {
  console.error(`bench:fleet ${new Date().toISOString().slice(11, 19)} ${msg}`);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs a command to its end; resolves with its exit code and output (never rejects on exit code). */
function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every file under `dir`, as paths relative to it with a leading slash. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`/${relative(dir, p)}`);
    }
  };
  walk(dir);
  return out.sort();
}

class Fleet {
  readonly hosts: FleetHost[];
  readonly pairs: FleetPair[];
  readonly byName: Map<string, LabHost>;
  readonly dir: string;
  readonly manifests: string;
  readonly renderDir: string;
  readonly inventory: string;
  /** host name -> absolute path on the host -> sha256 of the rendered bytes */
  readonly expected = new Map<string, Map<string, string>>();
  controlDir = "";

  constructor(readonly lab: Lab) {
    this.hosts = lab.hosts.map((h, i) => ({ name: `h${i + 1}`, address: h.address, interface: h.interface, hostKeyLine: h.hostKeyLine }));
    this.byName = new Map(lab.hosts.map((h, i) => [`h${i + 1}`, h]));
    this.pairs = fleetPairs(this.hosts, (i) => lab.network.spare(i));
    this.dir = mkdtempSync(join(tmpdir(), "ddi-ha-fleet-"));
    const key = join(this.dir, "id_ed25519");
    writeFileSync(key, lab.privateKey, { mode: 0o600 });
    const knownHosts = join(this.dir, "known_hosts");
    writeFileSync(knownHosts, lab.knownHosts);
    this.manifests = join(this.dir, "fleet.yaml");
    writeFileSync(this.manifests, fleetManifestText(this.hosts, this.pairs, lab.privateKey, lab.network.prefixLength));
    this.inventory = join(this.dir, "inventory.ini");
    writeFileSync(this.inventory, ansibleInventory(this.hosts, key, knownHosts));
    this.renderDir = join(this.dir, "rendered");
  }

  host(name: string): LabHost {
    const h = this.byName.get(name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  }

  async render(): Promise<void> {
    const r = await ddiHa(["render", "-f", this.manifests, "-o", this.renderDir]);
    if (r.code !== 0) throw new Error(`ddi-ha render failed:\n${r.stderr}`);
    for (const h of this.hosts) {
      const root = join(this.renderDir, h.name);
      const files = new Map(filesUnder(root).map((p) => [p, createHash("sha256").update(readFileSync(join(root, p))).digest("hex")]));
      this.expected.set(h.name, files);
    }
  }

  private pathsOf(name: string): string[] {
    return [...(this.expected.get(name)?.keys() ?? [])];
  }

  pairFileOf(name: string): string {
    const p = this.pathsOf(name).find((f) => f.startsWith("/etc/keepalived/ddi-ha.d/"));
    if (!p) throw new Error(`${name}: no pair file rendered`);
    return p;
  }

  private each<T>(fn: (name: string, host: LabHost) => Promise<T>): Promise<T[]> {
    return Promise.all(this.hosts.map((h) => fn(h.name, this.host(h.name))));
  }

  /** sshd at DEBUG1 (it then logs every session channel request) and iptables byte counters on port 22. */
  async instrument(): Promise<void> {
    const rule = `-p tcp -m comment --comment ${ACCOUNTING_TAG}`;
    await this.each((_, h) =>
      h.run(
        `printf 'LogLevel DEBUG1\\n' > /etc/ssh/sshd_config.d/zz-fleet-bench.conf && systemctl reload ssh && ` +
          `iptables -I INPUT ${rule} --dport 22 && iptables -I OUTPUT ${rule} --sport 22`,
      ),
    );
  }

  /** Back to a host that never had keepalived configured: service stopped and disabled, files gone. */
  async reset(): Promise<void> {
    await this.each((_, h) =>
      h.run(
        "systemctl disable --now -q keepalived; rm -rf /etc/keepalived/keepalived.conf* /etc/keepalived/ddi-ha.d " +
          "/usr/local/libexec/ddi-ha /var/lib/ddi-ha /run/ddi-ha /root/.ansible; systemctl reset-failed keepalived 2>/dev/null; true",
      ),
    );
    // A new ControlPath directory: Ansible's converge opens fresh connections, as ddi-ha's does.
    this.controlDir = mkdtempSync(join(this.dir, "cp-"));
  }

  /** The epoch seconds of every sshd session channel request on each host since `sinceS`. */
  async channelTimes(sinceS: number): Promise<Map<string, number[]>> {
    const rows = await this.each(async (name, h) => {
      const out = await h.run(
        `journalctl -u ssh -o short-unix --no-pager --since @${Math.floor(sinceS)} | ` +
          `grep -E 'session_input_channel_req: session [0-9]+ req (exec|subsystem|shell)' | cut -d' ' -f1`,
      );
      return [name, out.split("\n").filter(Boolean).map(Number).filter((t) => t >= sinceS)] as const;
    });
    return new Map(rows);
  }

  async snapshot(): Promise<Map<string, HostSnapshot>> {
    const rows = await this.each(async (name, h) => {
      const files = this.pathsOf(name).map(shellQuote).join(" ");
      const out = await h.run(
        `echo "$(journalctl -u ssh -o cat --no-pager | grep -cE 'session_input_channel_req: session [0-9]+ req (exec|subsystem|shell)')"; ` +
          `iptables -nvxL INPUT | awk '/${ACCOUNTING_TAG}/ {print $2; exit}'; ` +
          `iptables -nvxL OUTPUT | awk '/${ACCOUNTING_TAG}/ {print $2; exit}'; ` +
          `echo "$(journalctl -u keepalived -o cat --no-pager | grep -cE '^(Reloaded|Started) keepalived')"; ` +
          `stat -c '%n %i %Y.%y' ${files} 2>/dev/null | tr '\\n' ' '; echo`,
      );
      const [channels, bytesIn, bytesOut, reloads, fileLine] = out.split("\n");
      return [name, { channels: Number(channels), bytesIn: Number(bytesIn), bytesOut: Number(bytesOut), reloads: Number(reloads), files: fileLine ?? "" }] as const;
    });
    return new Map(rows);
  }

  /** Throws unless every host holds exactly the rendered bytes. */
  async verifyFiles(what: string): Promise<void> {
    const bad: string[] = [];
    await this.each(async (name, h) => {
      const want = this.expected.get(name)!;
      const out = await h.exec(["sha256sum", ...want.keys()]);
      const got = new Map(out.stdout.trim().split("\n").filter(Boolean).map((l) => { const [sum, path] = l.split(/\s+/); return [path!, sum!] as const; }));
      for (const [path, sum] of want) if (got.get(path) !== sum) bad.push(`${name}:${path}`);
    });
    if (bad.length > 0) throw new Error(`${what}: ${bad.length} file(s) differ from the rendering, e.g. ${bad.slice(0, 3).join(", ")}`);
  }

  waitVipsOnPrimaries(timeoutMs = 120_000): Promise<void> {
    return waitVipsOnPrimaries(this.pairs, (name) => this.host(name), timeoutMs);
  }

  async handEdit(): Promise<void> {
    await this.each((name, h) => h.run(`echo '# hand edit' >> ${shellQuote(this.pairFileOf(name))}`));
  }

  async runTool(tool: Tool): Promise<{ reported: number }> {
    if (tool === "ddi-ha") {
      const r = await ddiHa(["apply", "-f", this.manifests, "--known-hosts", join(this.dir, "tofu.json")]);
      if (r.code !== 0 && r.code !== 2) throw new Error(`ddi-ha apply exited ${r.code}:\n${r.stderr}\n${r.stdout.slice(-3000)}`);
      const reported = (r.stdout.match(/: ok: (changed|reloaded) /g) ?? []).length;
      return { reported };
    }
    const r = await runCommand(
      "ansible-playbook",
      ["-f", String(this.hosts.length), "-i", this.inventory, "-e", `render_dir=${this.renderDir}`, PLAYBOOK],
      { ...process.env, ANSIBLE_CONFIG: ANSIBLE_CFG, ANSIBLE_SSH_CONTROL_PATH_DIR: this.controlDir, ANSIBLE_NOCOLOR: "1" },
    );
    if (r.code !== 0) throw new Error(`ansible-playbook exited ${r.code}:\n${r.stdout.slice(-3000)}\n${r.stderr}`);
    const reported = [...r.stdout.matchAll(/changed=(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
    return { reported };
  }

  /** One pass of a tool, timed; for "converge" until every VIP is on its primary too. */
  async timed(tool: Tool, phase: Phase): Promise<{ seconds: number; reported: number }> {
    const t0 = performance.now();
    const { reported } = await this.runTool(tool);
    if (phase === "converge") await this.waitVipsOnPrimaries();
    return { seconds: (performance.now() - t0) / 1000, reported };
  }

  /**
   * The pass `ddi-ha apply` runs (applyPass: one probe per host), in this process over a
   * transport whose channel counter can be read, on hosts that are already converged; sshd's
   * count for the same pass beside it.
   */
  async crossCheckChannels(): Promise<{ sshd: number[]; transport: number[] }> {
    const { documents, errors } = await readManifests([this.manifests]);
    const { set, problems } = validateManifests(documents);
    if (errors.length > 0 || problems.some((p) => p.severity === "error")) throw new Error("the fleet manifests do not validate");
    const transport = new SshTransport();
    const before = await this.snapshot();
    try {
      await applyPass(set, manifestSessionProvider(set, transport, await PinnedHostKeys.open(join(this.dir, "tofu.json"))));
    } finally {
      await transport.closeAll();
    }
    await sleep(1000);
    const after = await this.snapshot();
    const counted = transport.channelsOpened();
    return {
      sshd: this.hosts.map((h) => after.get(h.name)!.channels - before.get(h.name)!.channels),
      transport: this.hosts.map((h) => {
        const c = counted.get(`fleet/${h.name}`);
        return c ? c.exec + c.stream : 0;
      }),
    };
  }

  /**
   * Stops keepalived on the first pair's primary and measures, from that moment, until the VIP
   * is on the secondary and until `ddi-ha status` reports the secondary active.
   */
  async failover(): Promise<{ stopToVipS: number; stopToStatusS: number }> {
    const p = this.pairs[0]!;
    const t0 = performance.now();
    await this.host(p.primary.name).stopService("keepalived");
    let stopToVipS = 0;
    for (const deadline = Date.now() + 30_000; ; ) {
      const r = await this.host(p.secondary.name).exec(["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
      if (r.stdout.includes(` ${p.vip}/`)) {
        stopToVipS = (performance.now() - t0) / 1000;
        break;
      }
      if (Date.now() > deadline) throw new Error(`failover: ${p.vip} not on ${p.secondary.name} within 30 s`);
      await sleep(100);
    }
    for (const deadline = Date.now() + 60_000; ; ) {
      const r = await ddiHa(["status", "-f", this.manifests, "-o", "json", "--known-hosts", join(this.dir, "tofu.json")]);
      const doc = JSON.parse(r.stdout || "[]") as { kind: string; name: string; status: { activeNode?: string } }[];
      if (doc.find((d) => d.kind === "HAPair" && d.name === p.name)?.status.activeNode === "secondary") {
        await this.host(p.primary.name).startService("keepalived");
        return { stopToVipS, stopToStatusS: (performance.now() - t0) / 1000 };
      }
      if (Date.now() > deadline) throw new Error(`failover: ddi-ha status did not report ${p.name} on its secondary within 60 s`);
    }
  }

  /**
   * The controller's three phases on freshly reset hosts, on the objects `ddi-ha apply` reads (its
   * namespace, so the same rendering); they are deleted again at the end, through the controller.
   */
  async controllerRun(bcp: BenchControlPlane, run: number, resync: string): Promise<{ seconds: Record<Phase, number>; noop: NoopCost }> {
    const namespace = FLEET_NAMESPACE;
    let replica: Replica | undefined;
    const watch = new ObjectWatch(bcp.kubeConfig, namespace);
    try {
      if (run === 1) await bcp.kubectl.run(["create", "namespace", namespace]);
      replica = await startBenchController({ name: `bench-r${run}`, kubeconfig: bcp.cp.kubeconfigPath, namespace, resync, entry: cliEntry });
      const text = fleetManifestText(this.hosts, this.pairs, this.lab.privateKey, this.lab.network.prefixLength);
      const t0 = performance.now();
      const since = Date.now();
      await applyObjects(bcp.kubectl, text);
      await watch.when("every HAPair and DDIHost Ready", ["HAPair", "DDIHost"], this.pairs.length + this.hosts.length, isReady, since, 20 * 60_000, log);
      await this.waitVipsOnPrimaries();
      const converge = (performance.now() - t0) / 1000;
      await this.verifyFiles("controller converge");

      // A resync: every host's channel count moves once; the next resync is at least 0.9 × resync away.
      // First one and a half resyncs for the passes converge started (VIP events, settling) to end.
      const resyncMs = Number(resync.replace(/s$/, "")) * 1000;
      await sleep(1.5 * resyncMs);
      const snapshotAtS = Date.now() / 1000;
      const before = await this.snapshot();
      const m0 = await scrapeMetrics(replica);
      // On a saturated machine a resync of many hosts takes longer than its interval (the work
      // queue is never empty): then the first hosts are probed again before the last one is.
      const windowMs = 3 * resyncMs + 30_000 + this.hosts.length * 1_000;
      let lastReport = Date.now();
      for (const deadline = Date.now() + windowMs; ; ) {
        const now = await this.snapshot();
        const waiting = this.hosts.filter((h) => now.get(h.name)!.channels <= before.get(h.name)!.channels).map((h) => h.name);
        if (waiting.length === 0) break;
        if (Date.now() > deadline || Date.now() - lastReport > 15_000) {
          const m = await scrapeMetrics(replica);
          const state = `${waiting.length} not probed yet (${waiting.slice(0, 8).join(", ")}${waiting.length > 8 ? ", …" : ""}); work queue depth ${m.get("ddi_ha_workqueue_depth") ?? "?"}, passes ${m.get("ddi_ha_reconcile_total") ?? "?"}`;
          if (Date.now() > deadline) throw new Error(`controller: not every host was probed within ${windowMs} ms: ${state}`);
          log(`no-op resync: ${state}`);
          lastReport = Date.now();
        }
        await sleep(250);
      }
      await sleep(1000);
      const after = await this.snapshot();
      const m1 = await scrapeMetrics(replica);
      const delta = (name: string) => (m1.get(name) ?? 0) - (m0.get(name) ?? 0);
      const perResync = channelsWithinOneResync(await this.channelTimes(snapshotAtS), (0.9 * resyncMs) / 1000);
      const noop = { ...noopCost(before, after, delta("ddi_ha_drift_corrections_total")), cpuSeconds: delta("ddi_ha_process_cpu_seconds_total"), perResync };

      await this.handEdit();
      const t1 = performance.now();
      const edited = Date.now();
      await watch.when("every HAPair DriftCorrected", ["HAPair"], this.pairs.length, isDriftCorrected, edited, 3 * resyncMs + 5 * 60_000, log);
      const drift = (performance.now() - t1) / 1000;
      await this.verifyFiles("controller drift");
      // The next run starts from no objects: the pairs' cleanup finalizers run in this controller.
      for (const kind of ["hapairs.ddi-ha.io", "ddihosts.ddi-ha.io", "secrets"]) await bcp.kubectl.run(["delete", kind, "--all", "-n", namespace, "--timeout=180s"], { timeoutMs: 200_000 });
      return { seconds: { converge, noop: Number.NaN, drift }, noop };
    } catch (err) {
      if (replica) console.error(`controller log (last lines):\n${replica.lines.slice(-40).join("\n")}`);
      throw err;
    } finally {
      watch.stop();
      await stopBenchController(replica);
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The CLI entry of the production build (main builds it; tsx would add ~0.35 s to every timed run). */
let cliEntry = "";

function ddiHa(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(process.execPath, [cliEntry, ...args]);
}

/** Per host: the channels from its first one for `windowS` seconds (one resync), as min/max/median. */
function channelsWithinOneResync(times: Map<string, number[]>, windowS: number): { min: number; max: number; median: number } {
  const counts = [...times.values()].map((ts) => {
    if (ts.length === 0) return 0;
    const first = Math.min(...ts);
    return ts.filter((t) => t < first + windowS).length;
  });
  return { min: Math.min(...counts), max: Math.max(...counts), median: median(counts) };
}

function noopCost(before: Map<string, HostSnapshot>, after: Map<string, HostSnapshot>, reported: number): NoopCost {
  const channels: number[] = [];
  let bytes = 0;
  let writes = 0;
  let reloads = 0;
  for (const [name, b] of before) {
    const a = after.get(name)!;
    channels.push(a.channels - b.channels);
    bytes += a.bytesIn - b.bytesIn + (a.bytesOut - b.bytesOut);
    if (a.files !== b.files) writes++;
    reloads += a.reloads - b.reloads;
  }
  return {
    channelsPerHost: { min: Math.min(...channels), max: Math.max(...channels), median: median(channels) },
    bytesPerHost: Math.round(bytes / before.size),
    writes,
    reloads,
    reported,
  };
}

/**
 * The lab's 2 cores also run every host: a probe costs the host's sshd, bash and systemctl some
 * tens of CPU milliseconds, so at 100 hosts a 10 s resync asked for more than the machine had and
 * the controller's queue never drained (measured: 136 of 150 objects waiting, hosts unprobed for
 * 160 s). 0.3 s per host keeps a resync inside its interval here; a real fleet has a core per host.
 */
function resyncFor(hostCount: number): string {
  return `${Math.max(10, Math.ceil(hostCount * 0.3))}s`;
}

async function benchSize(hostCount: number, runs: number, withFailover: boolean, resync: string): Promise<SizeResult> {
  log(`starting a lab of ${hostCount} hosts and a kube-apiserver`);
  const scratch = mkdtempSync(join(tmpdir(), "ddi-ha-fleet-cp-"));
  const started = await startLabAndControlPlane({ hosts: hostCount, readyTimeoutMs: 300_000 }, scratch).catch((err: unknown) => {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  });
  const { lab, bcp, labStartS } = started;
  log(`lab ${lab.name} up in ${labStartS.toFixed(1)} s; kube-apiserver ${bcp.cp.binaries.version}`);
  const fleet = new Fleet(lab);
  const seconds = Object.fromEntries(TOOLS.map((t) => [t, { converge: [], noop: [], drift: [] }])) as unknown as SizeResult["seconds"];
  const noop: SizeResult["noop"] = { "ddi-ha": [], ansible: [], controller: [] };
  let failover: SizeResult["failover"];
  let crossCheck: SizeResult["crossCheck"];
  const controllerFailures: string[] = [];
  try {
    await fleet.render();
    await fleet.instrument();
    for (let run = 1; run <= runs; run++) {
      await fleet.reset();
      try {
        const c = await fleet.controllerRun(bcp, run, resync);
        for (const phase of PHASES) seconds.controller[phase].push(c.seconds[phase]);
        noop.controller.push(c.noop);
        log(`${hostCount} hosts run ${run} controller: converge ${c.seconds.converge.toFixed(1)} s, no-op resync ${c.noop.perResync?.min}–${c.noop.perResync?.max} exec/host within one resync, ${c.noop.channelsPerHost.min}–${c.noop.channelsPerHost.max} until every host was probed (${c.noop.cpuSeconds?.toFixed(2)} CPU s), drift ${c.seconds.drift.toFixed(1)} s`);
      } catch (err) {
        // A controller run that does not finish is a result too: it is written in the table with
        // its reason, and the CLI tools still run on fresh hosts. The smoke fails on it.
        const reason = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
        controllerFailures.push(`run ${run}: ${reason}`);
        log(`${hostCount} hosts run ${run} controller FAILED: ${reason}`);
        await cleanupControllerObjects(bcp).catch((e: unknown) => log(`controller cleanup: ${String(e)}`));
      }
      // Alternate which tool goes first, so neither always meets a warmer machine.
      for (const tool of run % 2 === 1 ? CLI_TOOLS : [...CLI_TOOLS].reverse()) {
        await fleet.reset();
        const converge = await fleet.timed(tool, "converge");
        await fleet.verifyFiles(`${tool} converge`);
        if (tool === "ddi-ha" && !crossCheck) {
          crossCheck = await fleet.crossCheckChannels();
          log(`channels per host, one in-process no-op pass: sshd ${crossCheck.sshd.join(",")}; transport ${crossCheck.transport.join(",")}`);
        }
        const before = await fleet.snapshot();
        const again = await fleet.timed(tool, "noop");
        await sleep(1000); // sshd's and systemd's last lines reach the journal
        noop[tool].push(noopCost(before, await fleet.snapshot(), again.reported));
        await fleet.handEdit();
        const drift = await fleet.timed(tool, "drift");
        await fleet.verifyFiles(`${tool} drift`);
        seconds[tool].converge.push(converge.seconds);
        seconds[tool].noop.push(again.seconds);
        seconds[tool].drift.push(drift.seconds);
        log(`${hostCount} hosts run ${run} ${tool}: converge ${converge.seconds.toFixed(1)} s, no-op ${again.seconds.toFixed(1)} s, drift ${drift.seconds.toFixed(1)} s`);
      }
    }
    if (withFailover) {
      failover = await fleet.failover();
      log(`failover: VIP on the secondary after ${failover.stopToVipS.toFixed(2)} s, ddi-ha status says so after ${failover.stopToStatusS.toFixed(2)} s`);
    }
  } finally {
    fleet.cleanup();
    await lab.stop().catch((err: unknown) => log(`lab stop: ${String(err)}`));
    await bcp.cp.stop().catch((err: unknown) => log(`control plane stop: ${String(err)}`));
    rmSync(scratch, { recursive: true, force: true });
  }
  return { hosts: hostCount, pairs: hostCount / 2, labStartS, apiserver: bcp.cp.binaries.version, seconds, noop, resync, controllerFailures, ...(failover ? { failover } : {}), ...(crossCheck ? { crossCheck } : {}) };
}

/**
 * After a failed controller run the next one must start from no objects. The controller is gone,
 * so nothing runs the pairs' cleanup finalizers: they are removed here (the hosts are reset anyway).
 */
async function cleanupControllerObjects(bcp: BenchControlPlane): Promise<void> {
  const ns = FLEET_NAMESPACE;
  for (const kind of ["hapairs.ddi-ha.io", "ddihosts.ddi-ha.io"]) {
    const names = (await bcp.kubectl.run(["get", kind, "-n", ns, "-o", "name"])).split("\n").filter(Boolean);
    for (const name of names) await bcp.kubectl.run(["patch", name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
  }
  for (const kind of ["hapairs.ddi-ha.io", "ddihosts.ddi-ha.io", "secrets"]) await bcp.kubectl.run(["delete", kind, "--all", "-n", ns, "--timeout=120s"], { timeoutMs: 150_000 });
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

function resultsMarkdown(results: SizeResult[], command: string, runs: number, totalS: number, note: string, resyncGiven: boolean): string {
  const resyncs = results.map((r) => `${r.resync} at ${r.hosts} hosts`).join(", ");
  const whyResync = resyncGiven
    ? [`The controller is \`ddi-ha controller --resync R --leader-elect\` as its own process (default 4 workers; R is ${resyncs}, set with --resync) on kube-apiserver`]
    : [
        `The controller is \`ddi-ha controller --resync R --leader-elect\` as its own process (default 4 workers; R is ${resyncs}: the lab's`,
        "2 cores run every host too, and a shorter resync of 100 hosts asked more of them than they had) on kube-apiserver",
      ];
  const lines: string[] = [
    RESULTS_START,
    "## Fleet: ddi-ha against Ansible on real hosts",
    "",
    `Produced by \`${command}\` (bench/fleet.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version},`,
    `${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB; the whole run took ${fmt(totalS / 60)} min.`,
    `Lab hosts are systemd containers of one image (test/lab/lab.ts) on one bridge; one HAPair per two hosts, VRIDs distinct,`,
    "`services: {dns: false, dhcp: None}` (the lab runs no named), so neither tool tracks a service.",
    `Ansible is Debian's \`ansible\` (${ansibleVersion}), bench/ansible/keepalived.yml: copy + \`validate: keepalived -t -f %s\` + a reload handler,`,
    "forks = host count, pipelining on, ControlPersist 60 s (a fresh ControlPath per converge, so no-op and drift reuse the",
    "connections converge opened; ddi-ha's CLI opens its connections anew on every run). Both push the bytes of",
    "`ddi-ha render -o DIR`, checked on every host after converge and after drift.",
    "Both ddi-ha tools run the production build (tsc output, as in the image), not tsx.",
    ...whyResync,
    `${results[0]?.apiserver ?? ""}, watching the objects \`ddi-ha apply\` reads (deleted through it after each run); its converge from \`kubectl apply\` of the same`,
    "objects to every HAPair and DDIHost Ready (this process's watch) and every VIP on its primary; its drift runs from",
    "the hand edit to every HAPair's ConfigApplied reason `DriftCorrected`, so it includes the wait for the next",
    "resync (up to R + 10 % jitter); a no-op resync is not run on demand, its cost is in the second table.",
    ...(note ? ["", note] : []),
    "",
    `Seconds, medians of ${runs} runs on fresh hosts. Converge ends when every VIP is on its primary; drift is one hand`,
    "edit of the pair's file on every host, until all are back. Ratio is Ansible ÷ ddi-ha apply (above 1: ddi-ha is faster).",
    "",
    "| hosts (pairs) | phase | ddi-ha apply (s) | ansible-playbook (s) | ratio | ddi-ha controller (s) |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of results) {
    for (const phase of PHASES) {
      const d = median(r.seconds["ddi-ha"][phase]);
      const a = median(r.seconds.ansible[phase]);
      const done = r.seconds.controller[phase].length;
      const c = done && phase !== "noop" ? `${fmt(median(r.seconds.controller[phase]))}${done < runs ? ` (${done} of ${runs} runs)` : ""}` : "–";
      lines.push(`| ${r.hosts} (${r.pairs}) | ${phase === "noop" ? "no-op" : phase} | ${fmt(d)} | ${fmt(a)} | ${fmt(a / d, 2)} | ${c} |`);
    }
  }
  lines.push(
    "",
    "Per-host cost of one no-op run (median over runs; channels are sshd's own `session_input_channel_req … req exec|subsystem`",
    "lines at LogLevel DEBUG1, bytes are iptables counters of TCP port 22 on the host, both directions; writes are hosts",
    "whose managed files changed inode or mtime; reloads are keepalived `Reloaded`/`Started` journal lines, all hosts;",
    "for the controller, what it reported is its `ddi_ha_drift_corrections_total` over the resync, and its CPU is",
    "`ddi_ha_process_cpu_seconds_total` over the same window, one probe per host and a pass per object; its channels",
    "\"in one resync\" are each host's from its first channel after the snapshot for 0.9 × R, the soonest its next jittered",
    "resync can come, by the timestamps of sshd's lines; \"until every host was probed\" is the whole window, which on a",
    "loaded machine runs past the next resync of the hosts probed first).",
    "",
    "| hosts | tool | exec channels / host (min–max) | SSH bytes / host | hosts written | reloads | tool reported changed | controller CPU (s) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of results) {
    for (const tool of TOOLS) {
      const c = r.noop[tool];
      if (c.length === 0) continue;
      const mid = c[Math.floor(c.length / 2)]!;
      const cpu = c.every((x) => x.cpuSeconds !== undefined) ? fmt(median(c.map((x) => x.cpuSeconds!)), 2) : "–";
      const span = (x: { min: number; max: number; median: number }) => `${x.median} (${x.min}–${x.max})`;
      const channels = mid.perResync ? `${span(mid.perResync)} in one resync; ${span(mid.channelsPerHost)} until every host was probed` : span(mid.channelsPerHost);
      lines.push(
        `| ${r.hosts} | ${TOOL_LABEL[tool]} | ${channels} | ${median(c.map((x) => x.bytesPerHost))} | ${Math.max(...c.map((x) => x.writes))} | ${Math.max(...c.map((x) => x.reloads))} | ${Math.max(...c.map((x) => x.reported))} | ${cpu} |`,
      );
    }
  }
  for (const r of results) {
    if (!r.crossCheck) continue;
    const { sshd, transport } = r.crossCheck;
    const agree = sshd.every((n, i) => n === transport[i]);
    lines.push(
      "",
      `Cross-check at ${r.hosts} hosts, one no-op \`apply\` pass in process (applyPass, the CLI's probe path): sshd logged ${Math.min(...sshd)}–${Math.max(...sshd)} channels per host, ` +
        `the transport's counter (\`SshTransport.channelsOpened()\`, exec + stream) ${Math.min(...transport)}–${Math.max(...transport)}; ${agree ? "equal on every host" : "they DIFFER"}.`,
    );
  }
  for (const r of results) {
    if (r.controllerFailures.length > 0) lines.push("", `Controller runs that did not finish at ${r.hosts} hosts: ${r.controllerFailures.join("; ")}.`);
  }
  lines.push("", `Lab start: ${results.map((r) => `${r.hosts} hosts ${fmt(r.labStartS)} s`).join(", ")}.`);
  const f = results.find((r) => r.failover)?.failover;
  if (f) lines.push(`One failover (keepalived stopped on a primary): VIP on the secondary after ${fmt(f.stopToVipS, 2)} s; \`ddi-ha status\` reported it after ${fmt(f.stopToStatusS, 2)} s.`);
  lines.push("", RESULTS_END);
  return lines.join("\n");
}

let ansibleVersion = "ansible";

function writeResults(markdown: string): void {
  const path = join(repoRoot, "docs", "benchmarks.md");
  const doc = readFileSync(path, "utf8");
  const start = doc.indexOf(RESULTS_START);
  const end = doc.indexOf(RESULTS_END);
  const next = start >= 0 && end > start ? doc.slice(0, start) + markdown + doc.slice(end + RESULTS_END.length) : `${doc.trimEnd()}\n\n${markdown}\n`;
  writeFileSync(path, next);
  log(`wrote ${relative(process.cwd(), path)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      smoke: { type: "boolean", default: false },
      sizes: { type: "string" },
      runs: { type: "string" },
      "no-write": { type: "boolean", default: false },
      resync: { type: "string" },
      note: { type: "string" },
    },
  });
  const resync = values.resync ?? (values.smoke ? "5s" : undefined);
  if (resync !== undefined && !/^[1-9][0-9]*s$/.test(resync)) throw new Error(`--resync: ${resync} is not a whole number of seconds such as 10s`);
  const sizes = (values.sizes ?? (values.smoke ? "4" : "20,100")).split(",").map(Number);
  const runs = Number(values.runs ?? (values.smoke ? 1 : 3));
  for (const n of sizes) if (!Number.isInteger(n) || n < 2 || n % 2 !== 0 || n > 100) throw new Error(`--sizes: ${n} is not an even host count in 2..100 (one VIP per pair, 50 spare addresses)`);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: ${values.runs} is not a positive count`);

  const buildDir = join(repoRoot, ".scratch", `bench-fleet-${process.pid}`);
  [cliEntry] = await Promise.all([buildController(buildDir), execFileAsync(join(repoRoot, "hack", "ansible.sh"), [], { cwd: repoRoot, timeout: 15 * 60_000 })]);
  process.on("exit", () => rmSync(buildDir, { recursive: true, force: true }));
  ansibleVersion = (await execFileAsync("ansible-playbook", ["--version"])).stdout.split("\n")[0]?.trim() ?? "ansible";
  const t0 = performance.now();
  const results: SizeResult[] = [];
  for (const [i, n] of sizes.entries()) results.push(await benchSize(n, runs, values.smoke || i === 0, resync ?? resyncFor(n)));
  const totalS = (performance.now() - t0) / 1000;
  const given = [values.sizes && `--sizes ${values.sizes}`, values.runs && `--runs ${values.runs}`, values.resync && `--resync ${values.resync}`].filter(Boolean);
  const command = values.smoke ? "npm run bench:fleet -- --smoke" : `npm run bench:fleet${given.length > 0 ? ` -- ${given.join(" ")}` : ""}`;
  const markdown = resultsMarkdown(results, command, runs, totalS, values.note ?? "", values.resync !== undefined);
  console.log(markdown);
  if (values.smoke) {
    const failed = results.flatMap((r) => r.controllerFailures);
    if (failed.length > 0) throw new Error(`the controller's run did not finish: ${failed.join("; ")}`);
    // The smoke run asserts what must hold at any size: ddi-ha's no-op writes and reloads nothing ...
    const bad = results.flatMap((r) => [...r.noop["ddi-ha"], ...r.noop.controller].filter((c) => c.writes > 0 || c.reloads > 0 || c.reported > 0));
    if (bad.length > 0) throw new Error(`ddi-ha's no-op run changed hosts: ${JSON.stringify(bad)}`);
    // ... the CLI's no-op and the controller's resync are one exec per host ...
    for (const r of results) {
      for (const tool of ["ddi-ha", "controller"] as const) {
        const off = r.noop[tool].filter((c) => {
          const counted = c.perResync ?? c.channelsPerHost;
          return counted.min !== 1 || counted.max !== 1;
        });
        if (off.length > 0) throw new Error(`${TOOL_LABEL[tool]}: a no-op is not one exec channel per host: ${JSON.stringify(off)}`);
      }
    }
    // ... and sshd sees exactly the channels the transport says it opened.
    for (const r of results) {
      const c = r.crossCheck;
      if (!c || c.sshd.some((n, i) => n !== c.transport[i])) throw new Error(`channel counts disagree: ${JSON.stringify(c)}`);
    }
    console.log("smoke: 1 passed, 0 failed");
  } else if (!values["no-write"]) writeResults(markdown);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
