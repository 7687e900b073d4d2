// The in-cluster controller, run in this process against the global-setup kube-apiserver and a
// fresh two-host lab: it watches an HAPair and its DDIHosts, applies the pair over SSH, writes
// status until `kubectl wait --for=condition=Ready` returns, re-applies a spec edit, and on
// deletion takes the pair's keepalived file off both hosts before the finalizer lets the object
// go. Host state is checked with docker exec, independent of the engine under test.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { API_GROUP_VERSION } from '../../src/api/index.js';
import { CLEANUP_FINALIZER, Controller, IN_USE_FINALIZER, ControllerMetrics, type HealthServer, KubeClient, startHealthServer } from '../../src/controller/index.js';
import { ResourceWatcher } from '../../src/controller/watcher.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { type Lab, startLab } from '../lab/lab.js';
import { hostSha256, interfaceAddresses } from './apply-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
// Each run gets its own namespace: without a controller-manager, namespaces never finish deleting.
const namespace = `ddi-ha-ctrl-${Date.now().toString(36)}`;
const PAIR = 'ctrl-vip';

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let controller: Controller | undefined;
let transport: SshTransport | undefined;
let server: HealthServer | undefined;
const logLines: string[] = [];

interface Condition {
  type: string;
  status: string;
  reason: string;
  observedGeneration?: number;
}

async function getJson(resource: string): Promise<{ metadata: { generation: number; finalizers?: string[] }; spec: any; status: any }> {
  return JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
}

const condition = (status: { conditions?: Condition[] } | undefined, type: string) => status?.conditions?.find((c) => c.type === type);

const pairFilePath = () => `/etc/keepalived/ddi-ha.d/${namespace}_${PAIR}.conf`;
const hasPairFile = async (host: number) => (await hostSha256(lab.hosts[host]!, pairFilePath())) !== 'absent';
const vip = () => `${lab.network.spare(0)}/${lab.network.prefixLength}`;
const holdsVip = async (host: number) => (await interfaceAddresses(lab.hosts[host]!)).includes(vip());

/** The namespace, the lab's Secret, two DDIHosts and the pair; `secret`: the Secret the hosts name, left out when it is not 'lab-ssh'. */
function manifests(secret = 'lab-ssh'): string {
  const meta = (name: string) => ({ name, namespace });
  const hosts = lab.hosts.map((h, i) => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'DDIHost',
    metadata: meta(`h${i + 1}`),
    spec: { address: h.sshHost, port: h.sshPort, credentialsSecretRef: { name: secret }, hostKey: h.hostKeyLine, hostKeyPolicy: 'Pinned' },
  }));
  const pair = {
    apiVersion: API_GROUP_VERSION,
    kind: 'HAPair',
    metadata: meta(PAIR),
    spec: {
      primary: { host: 'h1', interface: lab.hosts[0]!.interface },
      secondary: { host: 'h2', interface: lab.hosts[1]!.interface },
      virtualIP: vip(),
      virtualRouterID: 61,
      services: { dns: false, dhcp: 'None' },
    },
  };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    ...(secret === 'lab-ssh' ? [{ apiVersion: 'v1', kind: 'Secret', metadata: meta('lab-ssh'), type: 'Opaque', stringData: { privateKey: lab.privateKey } }] : []),
    ...hosts,
    pair,
  ]
    .map((o) => stringify(o, { lineWidth: 0 }))
    .join('---\n');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-controller-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
});

afterAll(async () => {
  await controller?.stop();
  await transport?.closeAll();
  await server?.close();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the controller on a real kube-apiserver and two lab hosts', () => {
  it('applies a new HAPair and writes status until kubectl wait --for=condition=Ready returns, the VIP on the primary', async () => {
    await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: manifests() });

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(provided.kubeconfigPath);
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(...String(chunk).trimEnd().split('\n'));
        done();
      },
    });
    const log = pino({ level: 'debug', redact: [...LOG_REDACT_PATHS] }, sink);
    const metrics = new ControllerMetrics();
    transport = new SshTransport({ logger: log });
    controller = new Controller({ kubeConfig, namespace, resyncMs: 60_000, log, metrics, transport });
    server = await startHealthServer({ port: 0, host: '127.0.0.1', registry: metrics.registry, isReady: () => controller!.ready });
    controller.start();

    const started = Date.now();
    const waited = await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, 'ddih/h1', 'ddih/h2', '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
    console.log(`controller: HAPair Ready ${Date.now() - started} ms after start`);
    expect(waited).toContain(`hapair.ddi-ha.io/${PAIR} condition met`);

    const hap = await getJson(`hap/${PAIR}`);
    expect(hap.metadata.finalizers).toContain(CLEANUP_FINALIZER);
    // Its hosts outlive its cleanup, whatever deletes them. The host's finalizer can land just
    // after Ready (seen in the clean-clone CI of 2026-12-07), so it is waited for.
    for (const h of ['h1', 'h2']) await expect.poll(async () => (await getJson(`ddih/${h}`)).metadata.finalizers ?? [], { timeout: 30_000 }).toContain(IN_USE_FINALIZER);
    expect(hap.status).toMatchObject({ observedGeneration: hap.metadata.generation, activeNode: 'primary' });
    expect(condition(hap.status, 'Ready')).toMatchObject({ status: 'True', reason: 'VIPOnPrimary', observedGeneration: hap.metadata.generation });
    expect(condition(hap.status, 'ConfigApplied')).toMatchObject({ status: 'True' });
    expect(await holdsVip(0)).toBe(true);
    expect(await holdsVip(1)).toBe(false);
    expect((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status).toBe(200);
  });

  it('a spec edit bumps generation; the controller re-applies it and observedGeneration follows', async () => {
    await kubectl.run(['patch', 'hap', PAIR, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { primary: { priority: 200 } } })]);
    const generation = (await getJson(`hap/${PAIR}`)).metadata.generation;
    expect(generation).toBe(2);
    const hap = await eventually('the edit to be applied and observed', async () => {
      const h = await getJson(`hap/${PAIR}`);
      const ready = condition(h.status, 'Ready');
      return h.status?.observedGeneration === generation && ready?.status === 'True' && ready.observedGeneration === generation ? h : undefined;
    }, 120_000, 1_000);
    expect(condition(hap.status, 'ConfigApplied')).toMatchObject({ status: 'True', observedGeneration: generation });
    const onHost = await lab.hosts[0]!.run(['cat', pairFilePath()]);
    expect(onHost).toMatch(/priority 200\b/);
  });

  it('deleting the HAPair removes its keepalived file from both hosts, then the finalizer lets the object go', async () => {
    expect([await hasPairFile(0), await hasPairFile(1)]).toEqual([true, true]);
    await kubectl.run(['delete', 'hap', PAIR, '-n', namespace, '--wait=false']);
    await eventually(
      'the HAPair to disappear',
      async () => ((await kubectl.run(['get', 'hap', '-n', namespace, '-o', 'name'])).includes(PAIR) ? undefined : true),
      120_000,
      1_000,
    );
    expect([await hasPairFile(0), await hasPairFile(1)]).toEqual([false, false]);
    expect(await eventually('the VIP to leave h1', async () => ((await holdsVip(0)) ? undefined : true), 30_000)).toBe(true);
    // The DDIHosts stay, Ready.
    expect(condition((await getJson('ddih/h1')).status, 'Ready')).toMatchObject({ status: 'True' });
  });

  it('/metrics counts the passes and the ready resources; no log line carries the SSH key', async () => {
    const text = await (await fetch(`http://127.0.0.1:${server!.port}/metrics`)).text();
    const successes = Number(/^ddi_ha_reconcile_total\{controller="object",result="success"\} (\d+)/m.exec(text)?.[1] ?? 0);
    expect(successes).toBeGreaterThan(0);
    expect(text).toMatch(/^ddi_ha_reconcile_time_seconds_count\{controller="object"\} [1-9]/m);
    expect(text).toMatch(/^ddi_ha_workqueue_adds_total\{name="object"\} [1-9]/m);
    expect(text).toContain(`ddi_ha_resource_ready{kind="DDIHost",namespace="${namespace}",name="h1"} 1`);
    // The deleted pair's series went with it.
    expect(text).not.toContain(`name="${PAIR}"`);

    const keyBody = lab.privateKey.split('\n').find((l) => l.length > 40)!;
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.filter((l) => l.includes(keyBody))).toEqual([]);
    const passes = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'reconciled');
    expect(passes[0]).toMatchObject({ controller: 'object', namespace, reconcileID: expect.any(String) });
  });
});

describe('a watcher on the real API server', () => {
  it('re-lists when its watch stays silent past the liveness timeout, then keeps watching', async () => {
    // A namespace of its own that no controller writes to: the watch must really be silent.
    const quiet = `${namespace}-watch`;
    const hostDoc = (name: string, address: string) =>
      stringify({ apiVersion: API_GROUP_VERSION, kind: 'DDIHost', metadata: { name, namespace: quiet }, spec: { address, credentialsSecretRef: { name: 'none' }, hostKeyPolicy: 'TrustOnFirstUse' } });
    await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], {
      stdin: [stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: quiet } }), hostDoc('h1', '198.18.0.11'), hostDoc('h2', '198.18.0.12')].join('---\n'),
    });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(provided.kubeconfigPath);
    const events: string[] = [];
    const restarts: string[] = [];
    const watcher = new ResourceWatcher({
      client: new KubeClient(kubeConfig),
      kind: 'DDIHost',
      namespace: quiet,
      log: pino({ level: 'silent' }),
      livenessTimeoutMs: 2_000,
      onChange: (item, type) => events.push(`${type} ${item.metadata.name}`),
      onRestart: (reason) => restarts.push(reason),
    });
    watcher.start();
    try {
      await eventually('the first list', async () => (watcher.hasSynced ? true : undefined), 10_000);
      expect(watcher.list(quiet).map((i) => i.metadata.name).sort()).toEqual(['h1', 'h2']);
      expect(events.sort()).toEqual(['added h1', 'added h2']);
      // Nothing changes in the namespace: the watchdog re-lists; the cache is the same, so nothing is reported.
      await eventually('a silent-watch re-list', async () => (restarts.includes('silent') ? true : undefined), 15_000);
      await eventually('the re-list', async () => (watcher.list(quiet).length === 2 ? true : undefined), 10_000);
      expect(events).toHaveLength(2);
      // And it watches again after the re-list.
      await kubectl.run(['annotate', 'ddih', 'h2', '-n', quiet, 'test/poke=1']);
      await eventually('the annotation event', async () => (events.includes('modified h2') ? true : undefined), 15_000);
    } finally {
      watcher.stop();
    }
  });
});

describe('ddi-ha controller, the command', () => {
  it('serves /readyz once it has listed every kind, and stops cleanly on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin', 'ddi-ha.js'), 'controller', '--kubeconfig', provided.kubeconfigPath, '--namespace', namespace, '--metrics-port', '0', '--resync', '30s'],
      // debug: a pass that finds every status already right logs "reconciled" at debug only.
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'debug' } },
    );
    const lines: string[] = [];
    child.stdout.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
    child.stderr.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
    try {
      const port = await eventually(
        'the serving line',
        async () => lines.map((l) => /"port":(\d+)/.exec(l)?.[1]).find(Boolean),
        30_000,
      );
      await eventually('/readyz = 200', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined), 30_000);
      // The namespace still holds the DDIHosts: the command reconciles it like the in-process controller.
      await eventually('a reconciled pass', async () => (lines.some((l) => l.includes('"msg":"reconciled"')) ? true : undefined), 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await once(child, 'exit');
    expect(code, lines.join('\n')).toBe(0);
    expect(lines.some((l) => l.includes('"msg":"controller stopped"'))).toBe(true);
  });
});

describe('bulk deletion (kubectl delete -f site/, a namespace, an Argo CD app)', () => {
  const ours = async () =>
    (await kubectl.run(['get', 'hapairs.ddi-ha.io,ddihosts.ddi-ha.io,secrets', '-n', namespace, '-o', 'name']))
      .split('\n')
      .filter((l) => /hapair|ddihost|secret\/lab-ssh/.test(l));

  it('the HAPair, its DDIHosts and their Secret deleted in one call: the pair is still taken off both hosts, then everything goes and the sessions are released', async () => {
    await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: manifests() });
    await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
    expect([await hasPairFile(0), await hasPairFile(1)]).toEqual([true, true]);
    expect(transport!.size).toBe(2);
    const mark = logLines.length;

    // The Secret first: the hardest order for the cleanup.
    await kubectl.run(['delete', 'secret/lab-ssh', 'ddih/h1', 'ddih/h2', `hap/${PAIR}`, '-n', namespace, '--wait=false']);
    const left = await eventually('every object to go', async () => ((await ours()).length === 0 ? true : undefined), 120_000, 1_000).catch(
      async (err: Error) => Promise.reject(new Error(`${err.message}: ${(await ours()).join(' ')}\n${logLines.slice(mark).join('\n')}`)),
    );
    expect(left).toBe(true);
    expect([await hasPairFile(0), await hasPairFile(1)]).toEqual([false, false]);
    const after = logLines.slice(mark).map((l) => JSON.parse(l) as Record<string, unknown>);
    const removed = after.find((l) => l.msg === 'pair removed from its hosts');
    expect(removed?.removed).toEqual(expect.arrayContaining([expect.stringContaining(`${namespace}_${PAIR}.conf`)]));
    expect(after.filter((l) => String(l.msg).includes('without cleaning up'))).toEqual([]);
    await eventually('the SSH sessions to be released', async () => (transport!.size === 0 ? true : undefined), 30_000);
  });

  it('a pair whose hosts have no credentials any more (none cached either) still goes, with a warning naming the hosts and the files left', async () => {
    // Hosts naming a Secret that never existed: nothing is applied, but the finalizers go on.
    await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: manifests('never-created') });
    await eventually(
      'the finalizers',
      async () => {
        const hap = await getJson(`hap/${PAIR}`);
        const h1 = await getJson('ddih/h1');
        return hap.metadata.finalizers?.includes(CLEANUP_FINALIZER) && h1.metadata.finalizers?.includes(IN_USE_FINALIZER) ? true : undefined;
      },
      60_000,
    );
    const mark = logLines.length;
    await kubectl.run(['delete', 'ddih/h1', 'ddih/h2', `hap/${PAIR}`, '-n', namespace, '--wait=false']);
    await eventually('every object to go', async () => ((await ours()).length === 0 ? true : undefined), 60_000, 1_000);
    const warning = logLines
      .slice(mark)
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .find((l) => l.msg.includes('without cleaning up'));
    expect(warning?.level).toBe(40);
    expect(warning?.msg).toContain(`HAPair ${PAIR} deleted without cleaning up h1 (its credentials Secret never-created does not exist and the controller has no copy of it; left on it: ${pairFilePath()})`);
    expect(warning?.msg).toContain('h2 (');
  });
});
