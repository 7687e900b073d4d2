// The lab demo behind hack/lab.sh: a real kube-apiserver, four real lab hosts, the embedded
// default manifest set, and the operator's engine applying it over SSH and writing statuses.
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
import { type LabPassResult, runLabPass } from '../../src/lab/lab-pass.js';
import { newPassMemory, type PassMemory } from '../../src/engine/reconcile-pass.js';
import { SshTransport } from '../../src/ssh/index.js';
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
  memory: PassMemory;
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
  return { lab, kubectl, namespace, dir, manifestsDir, transport: new SshTransport(), memory: newPassMemory() };
}


const allReady = (r: LabPassResult): boolean =>
  r.statuses.every(({ status }) => (status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));

export interface SettleResult {
  last: LabPassResult;
  passes: number;
  settled: boolean;
  elapsedMs: number;
}

/**
 * The --once path: one pass that applies the set to the hosts, then observe-only passes every
 * `everyMs` until every resource is Ready or `timeoutMs` passes. Each pass writes the statuses,
 * so `kubectl wait --for=condition=Ready` sees them as they come.
 */
export async function reconcileUntilSettled(
  demo: LabDemo,
  opts: { timeoutMs?: number; everyMs?: number; onPass?: (r: LabPassResult, pass: number) => void } = {},
): Promise<SettleResult> {
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? 120_000);
  let passes = 0;
  for (;;) {
    const result = await runLabPass({
      kubectl: demo.kubectl,
      namespace: demo.namespace,
      transport: demo.transport,
      memory: demo.memory,
      // The first pass applies everything; later ones retry what failed, as the operator would.
      apply: passes === 0 ? true : 'needed',
    });
    passes++;
    opts.onPass?.(result, passes);
    const settled = allReady(result);
    if (settled || Date.now() >= deadline) return { last: result, passes, settled, elapsedMs: Date.now() - started };
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 2_000));
  }
}

// ---------------------------------------------------------------------------------------------
// The command.

function stamp(): string {
  return new Date().toISOString().slice(11, 19);
}

function printChanges(previous: Map<string, string>, result: LabPassResult): void {
  for (const [name, line] of result.summary) {
    if (previous.get(name) !== line) console.log(`${stamp()}  ${name.padEnd(30)} ${line}`);
  }
  for (const p of result.problems) console.log(`${stamp()}  problem: ${p}`);
  for (const e of result.writeErrors) console.log(`${stamp()}  status not written: ${e}`);
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
      interval: { type: 'string', default: '10' },
    },
  });
  const hosts = Number(values.hosts);
  if (!Number.isInteger(hosts) || hosts < 4) throw new Error('--hosts must be at least 4 (the default set uses h1..h4)');
  const name = values.name;
  const intervalMs = Math.max(1, Number(values.interval)) * 1000;
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
    await demo?.transport.closeAll().catch(() => undefined);
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
    console.error(`==> applying to the hosts over SSH, observing, writing status (until every resource is Ready; at ${seconds()})`);
    let previous = new Map<string, string>();
    const settle = await reconcileUntilSettled(demo, {
      onPass: (r) => {
        printChanges(previous, r);
        previous = r.summary;
      },
    });
    console.error(
      settle.settled
        ? `    every resource Ready after ${seconds()} (${settle.passes} ${settle.passes === 1 ? 'pass' : 'passes'})`
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
      console.error(`\n==> watching: observe + status every ${intervalMs / 1000} s; changes are printed. Ctrl-C stops${values.keep ? '' : ' and removes everything'}.`);
      console.error(`    try: docker exec ${lab.hosts[0]!.name} systemctl stop keepalived   (the VIP moves to h2)`);
      for (;;) {
        await new Promise((r) => setTimeout(r, intervalMs));
        if (stopping) return;
        try {
          const r = await runLabPass({
            kubectl,
            namespace: demo.namespace,
            transport: demo.transport,
            memory: demo.memory,
            // A spec someone changed (kubectl apply, kubectl edit) is applied; so is a failed apply.
            apply: 'needed',
          });
          printChanges(previous, r);
          previous = r.summary;
        } catch (err) {
          // The API server or kubectl failed this pass; the next one tries again.
          if (!stopping) console.log(`${stamp()}  pass failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
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
