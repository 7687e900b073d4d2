// The lab demo behind hack/lab.sh: a real kube-apiserver, four real lab hosts, the embedded
// default manifest set, and the operator's real controller (`ddi-ha controller`, in this process)
// applying it over SSH and writing statuses; a watch prints each status change as the API server
// reports it.
//
//   npx tsx test/lab/demo.ts [--once] [--keep] [--hosts 4] [--name default] [--kubeconfig PATH]
//
// Use hack/lab.sh, which installs and builds what this needs first. The pieces a test needs
// (prepareLabDemo, reconcileUntilSettled) are exported; test/integration/lab-demo.test.ts uses them.

import { writeLabSshFiles } from './ssh-files.js';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateOmapiKey } from '../../src/daemons/dhcpd/index.js';
import { defaultLabManifests, LAB_NAMESPACE, labHostName, labManifestYaml } from '../../src/lab/default-manifests.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { openSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { KINDS } from '../../src/api/index.js';
import { Controller, KubeClient } from '../../src/controller/index.js';
import { ResourceWatcher } from '../../src/controller/watcher.js';
import type { KubeItem } from '../../src/engine/kube-status.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { summarizeStatus } from '../../src/status/summary.js';
import { type ControlPlane, findTestBinaries, startControlPlane } from '../harness/control-plane.js';
import { type Lab, LAB_LABEL, startLab } from './lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface LabDemo {
  lab: Lab;
  kubectl: Kubectl;
  namespace: string;
  /** .lab/<name>/ (or a test's temp dir): manifests/, the SSH key, ssh_config. */
  dir: string;
  manifestsDir: string;
  transport: SshTransport;
  /** The controller, once startLabController ran. */
  controller?: Controller;
  /** The watch that follows every status, once started. */
  statusWatch?: StatusWatch;
}

/**
 * Writes the embedded default set for `lab` to `dir`/manifests/ (plus an ssh_config for poking at
 * the hosts), installs the CRDs and applies the set with `kubectl apply --server-side`, so the
 * API server's admission (schema, CEL) judges it for real.
 */
export async function prepareLabDemo(opts: { lab: Lab; kubectl: Kubectl; dir: string; namespace?: string }): Promise<LabDemo> {
  const { lab, kubectl, dir } = opts;
  const namespace = opts.namespace ?? LAB_NAMESPACE;
  const manifestsDir = join(dir, 'manifests');
  rmSync(manifestsDir, { recursive: true, force: true });
  mkdirSync(manifestsDir, { recursive: true, mode: 0o700 });
  const files = defaultLabManifests(
    {
      subnet: lab.network.subnet,
      gateway: lab.network.gateway,
      vip: lab.network.spare(0),
      hosts: lab.hosts.map((h) => ({ address: h.address, interface: h.interface, hostKeyLine: h.hostKeyLine })),
      privateKey: lab.privateKey,
      omapiSecret: generateOmapiKey('hmac-sha256').secret,
    },
    { namespace },
  );
  for (const f of files) writeFileSync(join(manifestsDir, f.name), labManifestYaml(f), { mode: 0o600 });
  writeLabSshFiles(lab, dir);

  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.applyServerSide([manifestsDir]);
  return { lab, kubectl, namespace, dir, manifestsDir, transport: new SshTransport() };
}


/** One line per resource, kept current by a watch of every kind in the namespace. */
export interface StatusWatch {
  summary: Map<string, string>;
  stop(): void;
}

/** Watches every kind and calls `onLine` whenever a resource's one-line summary changes. */
export function watchStatuses(kubeconfigPath: string, namespace: string, onLine: (name: string, line: string) => void): StatusWatch {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const client = new KubeClient(kubeConfig);
  const summary = new Map<string, string>();
  const log = pino({ level: 'silent' });
  const show = (item: KubeItem) => {
    const name = `${item.kind.toLowerCase()}/${item.metadata.name}`;
    const line = summarizeStatus(item.kind, (item.status ?? {}) as Record<string, unknown>);
    if (summary.get(name) === line) return;
    summary.set(name, line);
    onLine(name, line);
  };
  const watchers = KINDS.map(({ kind }) => new ResourceWatcher({ client, kind, namespace, log, onChange: (item, type) => (type === 'deleted' ? summary.delete(`${kind.toLowerCase()}/${item.metadata.name}`) : show(item)) }));
  for (const w of watchers) w.start();
  return { summary, stop: () => watchers.forEach((w) => w.stop()) };
}

/**
 * Starts the operator's controller on the demo's namespace (what `ddi-ha controller` runs), its
 * JSON log in `<dir>/controller.log`. Resync 10 s, so a hand edit on a host is corrected quickly.
 */
export function startLabController(demo: LabDemo, kubeconfigPath: string, opts: { resyncMs?: number } = {}): Controller {
  if (demo.controller) return demo.controller;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'info', redact: [...LOG_REDACT_PATHS] }, pino.destination({ fd: openSync(join(demo.dir, 'controller.log'), 'a') }));
  demo.controller = new Controller({ kubeConfig, namespace: demo.namespace, resyncMs: opts.resyncMs ?? 10_000, log, transport: demo.transport });
  demo.controller.start();
  return demo.controller;
}

export async function stopLabDemo(demo: LabDemo | undefined): Promise<void> {
  demo?.statusWatch?.stop();
  await demo?.controller?.stop().catch(() => undefined);
  await demo?.transport.closeAll().catch(() => undefined);
}

export interface SettleResult {
  summary: Map<string, string>;
  settled: boolean;
  elapsedMs: number;
}

/**
 * Starts the controller and the status watch (once), then waits until every resource's summary
 * says Ready=True or `timeoutMs` passes. `onLine` sees each status change as it comes.
 */
export async function reconcileUntilSettled(
  demo: LabDemo,
  kubeconfigPath: string,
  opts: { timeoutMs?: number; resources?: number; onLine?: (name: string, line: string) => void } = {},
): Promise<SettleResult> {
  const started = Date.now();
  demo.statusWatch ??= watchStatuses(kubeconfigPath, demo.namespace, (name, line) => opts.onLine?.(name, line));
  startLabController(demo, kubeconfigPath);
  const expected = opts.resources ?? 0;
  const allReady = () => demo.statusWatch!.summary.size >= Math.max(1, expected) && [...demo.statusWatch!.summary.values()].every((l) => l.startsWith('Ready=True'));
  while (!allReady() && Date.now() - started < (opts.timeoutMs ?? 120_000)) await new Promise((r) => setTimeout(r, 250));
  return { summary: new Map(demo.statusWatch.summary), settled: allReady(), elapsedMs: Date.now() - started };
}

// ---------------------------------------------------------------------------------------------
// The command.

function stamp(): string {
  return new Date().toISOString().slice(11, 19);
}

function printLine(name: string, line: string): void {
  console.log(`${stamp()}  ${name.padEnd(30)} ${line}`);
}

async function labExists(name: string): Promise<boolean> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const d = (await getContainerRuntimeClient()).container.dockerode;
  const nets = await d.listNetworks({ filters: { label: [`${LAB_LABEL}=${name}`] } });
  return nets.length > 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      once: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      hosts: { type: 'string', default: '4' },
      name: { type: 'string', default: 'default' },
      kubeconfig: { type: 'string' },
    },
  });
  const hosts = Number(values.hosts);
  if (!Number.isInteger(hosts) || hosts < 4) throw new Error('--hosts must be at least 4 (the default set uses h1..h4)');
  const name = values.name;
  const t0 = Date.now();
  const seconds = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  if (await labExists(name)) {
    throw new NothingKeptError(`a lab named "${name}" exists already; remove it with: npx tsx test/lab/cli.ts down --name ${name} (or pass --name)`);
  }

  let cp: ControlPlane | undefined;
  let kubeconfig = values.kubeconfig;
  const binaries = await findTestBinaries();
  if (!kubeconfig) {
    console.error('==> starting the control plane (etcd + kube-apiserver on 127.0.0.1)');
    cp = await startControlPlane();
    kubeconfig = cp.kubeconfigPath;
  }
  let lab: Lab | undefined;
  let demo: LabDemo | undefined;
  let stopping = false;
  const teardown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await stopLabDemo(demo);
    if (values.keep) {
      // Nothing to keep when the lab never started; hack/lab.sh stops its control plane then.
      if (lab) printKeepInstructions(name, kubeconfig!, binaries.kubectl, !cp);
      if (lab && cp) console.error('note: this control plane was started by this process and stops with it; hack/lab.sh --keep starts one that stays.');
    } else {
      console.error(`==> removing lab "${name}" and stopping the control plane`);
      await lab?.stop().catch((err: unknown) => console.error(`lab stop: ${String(err)}`));
      rmSync(join(repoRoot, '.lab', name), { recursive: true, force: true });
    }
    await cp?.stop();
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
  process.once('SIGTERM', () => void teardown().then(() => process.exit(143)));

  try {
    console.error(`==> starting lab "${name}" (${hosts} systemd hosts on a 198.18.0.0/15 docker network)`);
    try {
      lab = await startLab({ hosts, name, persistent: values.keep });
    } catch (err) {
      throw new NothingKeptError(`the lab did not start: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    console.error(`    up after ${seconds()}: ${lab.hosts.map((h, i) => `${labHostName(i)}=${h.address}`).join(' ')}`);
    const dir = join(repoRoot, '.lab', name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const kubectl = new Kubectl({ binary: binaries.kubectl, kubeconfig, cacheDir: join(dir, 'kube-cache') });
    console.error(`==> installing the CRDs and applying the default set (kubectl apply --server-side -f ${relative(process.cwd(), join(dir, 'manifests'))})`);
    demo = await prepareLabDemo({ lab, kubectl, dir });
    console.error(`==> running the operator's controller (ddi-ha controller, log in ${relative(process.cwd(), join(dir, 'controller.log'))}); status changes as the API server reports them (at ${seconds()})`);
    const settle = await reconcileUntilSettled(demo, kubeconfig!, { timeoutMs: 180_000, resources: 3 + hosts, onLine: printLine });
    console.error(
      settle.settled
        ? `    every resource Ready after ${seconds()}`
        : `    not every resource is Ready after ${seconds()}; see the Ready reasons above`,
    );
    console.log(`\n$ kubectl get ddi-ha -n ${demo.namespace} -o wide`);
    console.log(await kubectl.run(['get', 'ddi-ha', '-n', demo.namespace, '-o', 'wide']));
    console.log(`kubeconfig: ${kubeconfig}`);
    console.log(`try:        ${binaries.kubectl} --kubeconfig ${kubeconfig} get hap -n ${demo.namespace} -o yaml`);
    console.log(`manifests:  ${relative(process.cwd(), demo.manifestsDir)}   (re-apply: npx ddi-ha apply -f ${relative(process.cwd(), demo.manifestsDir)})`);
    console.log(`hosts:      ssh -F ${relative(process.cwd(), join(dir, 'ssh_config'))} h1`);
    if (values.once && !values.keep) console.log('(--once without --keep: all of this is removed now; add --keep to keep it, or leave out --once to watch)');
    if (!values.once) {
      console.error(`\n==> watching: the controller keeps reconciling (resync every 10 s, failovers as they happen); status changes are printed. Ctrl-C stops${values.keep ? '' : ' and removes everything'}.`);
      console.error(`    try: docker exec ${lab.hosts[0]!.name} systemctl stop keepalived   (the VIP moves to h2)`);
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (stopping) {
            clearInterval(check);
            resolve();
          }
        }, 500);
      });
    }
  } finally {
    await teardown();
  }
}

/** The demo stopped before it kept anything; hack/lab.sh then stops the control plane it started. */
class NothingKeptError extends Error {}
const NOTHING_KEPT_EXIT = 3;

function printKeepInstructions(name: string, kubeconfig: string, kubectl: string, external: boolean): void {
  console.error(`\n==> kept: lab "${name}"${external ? ' and the control plane' : ''}`);
  console.error(`    ${kubectl} --kubeconfig ${kubeconfig} get ddi-ha -n ${LAB_NAMESPACE} -o wide`);
  if (external && existsSync(join(repoRoot, '.lab', name, 'control-plane.pid'))) {
    console.error(`    stop the control plane: kill $(cat .lab/${name}/control-plane.pid)   (first: the lab removal below deletes .lab/${name}/)`);
  }
  console.error(`    remove the lab:         npx tsx test/lab/cli.ts down --name ${name}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(err instanceof NothingKeptError ? NOTHING_KEPT_EXIT : 1);
    },
  );
}
