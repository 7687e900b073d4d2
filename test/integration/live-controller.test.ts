// The live, per-object controller (issue 9) on the global-setup kube-apiserver and four real
// lab hosts, two HAPairs (h1/h2 and h3/h4), with a short resync: a no-op resync costs each host
// exactly one SSH exec (the transport's count against the probes taken), and writes and reloads
// nothing; a hand edit is corrected within a resync (driftPolicy Correct) or reported and left
// (Report); a failover reaches status within 5 s through the host's address stream; a frozen
// host holds up only the objects that use it. Host state is read with docker exec.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { API_GROUP_VERSION } from '../../src/api/index.js';
import { Controller, ControllerMetrics } from '../../src/controller/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { type Lab, startLab } from '../lab/lab.js';
import { hostSha256, unitSnapshot } from './apply-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-live-${Date.now().toString(36)}`;
const RESYNC_MS = 3_000;
const PAIRS = [
  { name: 'vip-a', hosts: [0, 1], vrid: 71 },
  { name: 'vip-b', hosts: [2, 3], vrid: 72 },
] as const;

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let controller: Controller | undefined;
let transport: SshTransport | undefined;
let metrics: ControllerMetrics;
const logLines: string[] = [];

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

async function getJson(resource: string): Promise<{ metadata: { generation: number }; status: any }> {
  return JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
}
const condition = (status: { conditions?: Condition[] } | undefined, type: string) => status?.conditions?.find((c) => c.type === type);
const pairFile = (pair: string) => `/etc/keepalived/ddi-ha.d/${namespace}_${pair}.conf`;
const hostKey = (i: number) => `${namespace}/h${i + 1}`;

function manifests(): string {
  const meta = (name: string) => ({ name, namespace });
  const hosts = lab.hosts.map((h, i) => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'DDIHost',
    metadata: meta(`h${i + 1}`),
    spec: { address: h.sshHost, port: h.sshPort, credentialsSecretRef: { name: 'lab-ssh' }, hostKey: h.hostKeyLine, hostKeyPolicy: 'Pinned' },
  }));
  const pairs = PAIRS.map((p, i) => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'HAPair',
    metadata: meta(p.name),
    spec: {
      primary: { host: `h${p.hosts[0] + 1}`, interface: lab.hosts[p.hosts[0]]!.interface },
      secondary: { host: `h${p.hosts[1] + 1}`, interface: lab.hosts[p.hosts[1]]!.interface },
      virtualIP: `${lab.network.spare(i)}/${lab.network.prefixLength}`,
      virtualRouterID: p.vrid,
      services: { dns: false, dhcp: 'None' },
    },
  }));
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta('lab-ssh'), type: 'Opaque', stringData: { privateKey: lab.privateKey } },
    ...hosts,
    ...pairs,
  ]
    .map((o) => stringify(o, { lineWidth: 0 }))
    .join('---\n');
}

/** Milliseconds until `hap/NAME` reports `activeNode`, polling the API server every 100 ms. */
async function timeUntilActive(pair: string, active: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await eventually(`${pair} activeNode ${active}`, async () => ((await getJson(`hap/${pair}`)).status?.activeNode === active ? true : undefined), timeoutMs, 100);
  return Date.now() - started;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-live-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 4 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
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
  metrics = new ControllerMetrics();
  // A frozen host must not hold a worker for the default minute.
  transport = new SshTransport({ logger: log, commandTimeoutMs: 8_000, connectTimeoutMs: 5_000 });
  controller = new Controller({ kubeConfig, namespace, resyncMs: RESYNC_MS, log, metrics, transport });
  controller.start();
  await kubectl.run(['wait', '--for=condition=Ready', 'hap/vip-a', 'hap/vip-b', 'ddih/h1', 'ddih/h2', 'ddih/h3', 'ddih/h4', '-n', namespace, '--timeout=180s'], {
    timeoutMs: 190_000,
  });
}, 240_000);

afterAll(async () => {
  await controller?.stop();
  await transport?.closeAll();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the live per-object controller', () => {
  it('spends exactly one SSH exec per host on a no-op resync, and writes and reloads nothing', async () => {
    // Let the first passes (applies, finalizers) settle.
    await new Promise((r) => setTimeout(r, 2 * RESYNC_MS));
    const before = controller!.channelsOpened();
    const probesBefore = new Map(controller!.probes.taken);
    const files = await Promise.all(PAIRS.flatMap((p) => p.hosts.map((h) => hostSha256(lab.hosts[h]!, pairFile(p.name)))));
    const units = await Promise.all(lab.hosts.map((h) => unitSnapshot(h, 'keepalived.service')));
    await new Promise((r) => setTimeout(r, 4 * RESYNC_MS));
    const after = controller!.channelsOpened();
    for (let i = 0; i < lab.hosts.length; i++) {
      const execs = after.get(hostKey(i))!.exec - before.get(hostKey(i))!.exec;
      const probes = (controller!.probes.taken.get(hostKey(i)) ?? 0) - (probesBefore.get(hostKey(i)) ?? 0);
      console.log(`h${i + 1}: ${probes} resyncs, ${execs} exec channels`);
      // About one resync per RESYNC_MS (jittered by 10 %): at least 3 in 12 s, at most 5.
      expect(probes).toBeGreaterThanOrEqual(3);
      expect(probes).toBeLessThanOrEqual(5);
      expect(execs).toBe(probes);
      expect(after.get(hostKey(i))!.stream).toBe(before.get(hostKey(i))!.stream);
    }
    expect(await Promise.all(PAIRS.flatMap((p) => p.hosts.map((h) => hostSha256(lab.hosts[h]!, pairFile(p.name)))))).toEqual(files);
    const unitsAfter = await Promise.all(lab.hosts.map((h) => unitSnapshot(h, 'keepalived.service')));
    expect(unitsAfter.map((u) => [u.MainPID, u.NRestarts])).toEqual(units.map((u) => [u.MainPID, u.NRestarts]));
    const hap = await getJson('hap/vip-a');
    expect(condition(hap.status, 'ConfigInSync')).toMatchObject({ status: 'True', reason: 'HostsMatchSpec' });
  }, 60_000);

  it('corrects a hand edit on the primary within a resync (driftPolicy Correct) and counts it', async () => {
    const h1 = lab.hosts[0]!;
    const rendered = await hostSha256(h1, pairFile('vip-a'));
    await h1.run(['sh', '-c', `echo '# edited by hand' >> ${pairFile('vip-a')}`]);
    expect(await hostSha256(h1, pairFile('vip-a'))).not.toBe(rendered);
    const started = Date.now();
    await eventually('the file restored', async () => ((await hostSha256(h1, pairFile('vip-a'))) === rendered ? true : undefined), 4 * RESYNC_MS, 200);
    console.log(`drift corrected ${Date.now() - started} ms after the edit (resync ${RESYNC_MS} ms)`);
    expect(Date.now() - started).toBeLessThan(2 * RESYNC_MS + 5_000);
    // The pass that restored it counts it when it ends, a moment after the file is back.
    const corrections = async () => Number(/^ddi_ha_drift_corrections_total\{kind="HAPair"\} (\d+)/m.exec(await metrics.registry.metrics())?.[1] ?? 0);
    expect(await eventually('the correction counted', async () => ((await corrections()) >= 1 ? corrections() : undefined), 10_000, 100)).toBeGreaterThanOrEqual(1);
    expect(logLines.some((l) => l.includes('"msg":"drift found"') && l.includes(`h1:${pairFile('vip-a')}`))).toBe(true);
    // The status that followed says what was corrected, or (a resync later) that it matches again.
    const applied = condition((await getJson('hap/vip-a')).status, 'ConfigApplied');
    expect(applied?.status).toBe('True');
    expect(['DriftCorrected', 'Applied']).toContain(applied?.reason);
  }, 60_000);

  it('with driftPolicy Report, names the drifted file in ConfigInSync and leaves it alone', async () => {
    await kubectl.run(['patch', 'hap/vip-b', '-n', namespace, '--type=merge', '-p', '{"spec":{"driftPolicy":"Report"}}']);
    const generation = (await getJson('hap/vip-b')).metadata.generation;
    await eventually('observedGeneration', async () => ((await getJson('hap/vip-b')).status?.observedGeneration === generation ? true : undefined), 30_000);
    const h3 = lab.hosts[2]!;
    await h3.run(['sh', '-c', `echo '# edited by hand' >> ${pairFile('vip-b')}`]);
    const edited = await hostSha256(h3, pairFile('vip-b'));
    const inSync = await eventually(
      'ConfigInSync=False',
      async () => {
        const c = condition((await getJson('hap/vip-b')).status, 'ConfigInSync');
        return c?.status === 'False' ? c : undefined;
      },
      4 * RESYNC_MS,
      200,
    );
    expect(inSync).toMatchObject({ reason: 'DriftDetected' });
    expect(inSync.message).toContain(`h3:${pairFile('vip-b')}`);
    const hap = await getJson('hap/vip-b');
    expect(condition(hap.status, 'Ready')).toMatchObject({ status: 'False', reason: 'DriftDetected' });
    // Two more resyncs: still edited, nothing written.
    await new Promise((r) => setTimeout(r, 2 * RESYNC_MS));
    expect(await hostSha256(h3, pairFile('vip-b'))).toBe(edited);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`ddi_ha_config_drift{kind="HAPair",namespace="${namespace}",name="vip-b"} 1`);
    // Undone by hand: in sync again.
    await h3.run(['sed', '-i', '/^# edited by hand$/d', pairFile('vip-b')]);
    await eventually('ConfigInSync=True', async () => (condition((await getJson('hap/vip-b')).status, 'ConfigInSync')?.status === 'True' ? true : undefined), 4 * RESYNC_MS, 200);
  }, 90_000);

  it('shows a failover in status within 5 s, and the move back', async () => {
    await lab.hosts[0]!.run(['systemctl', 'stop', 'keepalived']);
    const away = await timeUntilActive('vip-a', 'secondary', 5_000);
    console.log(`failover reached status ${away} ms after keepalived stopped on the primary`);
    await lab.hosts[0]!.run(['systemctl', 'start', 'keepalived']);
    const back = await timeUntilActive('vip-a', 'primary', 15_000);
    console.log(`preempted back in status ${back} ms after keepalived started`);
    const hap = await getJson('hap/vip-a');
    expect(hap.status.failoverCount).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('keeps updating the other pair while one host is frozen', async () => {
    const h4 = lab.hosts[3]!;
    await h4.pause();
    try {
      await new Promise((r) => setTimeout(r, RESYNC_MS));
      await lab.hosts[0]!.run(['systemctl', 'stop', 'keepalived']);
      const away = await timeUntilActive('vip-a', 'secondary', 5_000);
      console.log(`with h4 frozen, vip-a's failover reached status in ${away} ms`);
      await lab.hosts[0]!.run(['systemctl', 'start', 'keepalived']);
      await timeUntilActive('vip-a', 'primary', 15_000);
      // The frozen host is reported as such, on its own object.
      await eventually('h4 not Reachable', async () => (condition((await getJson('ddih/h4')).status, 'Reachable')?.status === 'False' ? true : undefined), 30_000, 500);
    } finally {
      await h4.unpause();
    }
    await eventually('h4 Reachable again', async () => (condition((await getJson('ddih/h4')).status, 'Reachable')?.status === 'True' ? true : undefined), 60_000, 500);
  }, 120_000);
});
