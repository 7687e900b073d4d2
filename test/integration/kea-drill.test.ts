// FailoverDrill of a KeaHACluster with method KeaMaintenance (issue 12 item 3), through the
// in-process controller on the global-setup kube-apiserver and real Kea in hot-standby on two lab
// hosts. What Kea does is read on the hosts, independent of the operator's own clients: status-get
// with curl to each host's Control Agent, and kea-dhcp4's own journal (HA_STATE_TRANSITION).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_GROUP_VERSION, type DrillRun } from '../../src/api/index.js';
import { armKeaCancelArgv } from '../../src/drill/kea-runner.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type Condition, type InProcessController, asYamlDocuments, keaLocalStatus, labHostObjects, labKeaHotStandby, startInProcessController } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-keadrill-${Date.now().toString(36)}`;
const KEA = 'kea-drilled';

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let running: InProcessController | undefined;

type Json = { metadata: { generation: number }; status?: { phase?: string; runs?: DrillRun[]; observedGeneration?: number; conditions?: Condition[] } };
const getJson = async (resource: string): Promise<Json> => JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
const condition = (o: Json, type: string) => o.status?.conditions?.find((c) => c.type === type);

/** Kea's own HA state on lab host i (status-get on the host). */
async function keaState(i: number): Promise<string> {
  const local = await keaLocalStatus(lab, i);
  return local.state ?? `no state in ${local.raw}`;
}
const bothHotStandby = async () => (await keaState(0)) === 'hot-standby' && (await keaState(1)) === 'hot-standby';
const hostNow = async (i: number) => (await lab.hosts[i]!.run(['date', '+%Y-%m-%d %H:%M:%S.%6N'])).trim();
/** The HA state transitions kea-dhcp4 on host i logged since `since` (the host's clock), as "from -> to". */
async function transitions(i: number, since: string): Promise<string[]> {
  const out = await lab.hosts[i]!.run(['journalctl', '-u', 'kea-dhcp4-server', '--no-pager', '-o', 'cat', '--since', since]);
  return out
    .split('\n')
    .filter((l) => l.includes('HA_STATE_TRANSITION'))
    .map((l) => /from (\S+?)(?: state)? to (\S+?)(?: state)?[,.]/i.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]!.toLowerCase()} -> ${m[2]!.toLowerCase()}`);
}
async function timerGone(i: number, runID: string): Promise<boolean> {
  return (await lab.hosts[i]!.run(['systemctl', 'list-units', '--all', '--no-legend', '--plain', `ddi-ha-drill-${runID}*`])).trim() === '';
}

async function clusterReady(): Promise<void> {
  await eventually('the KeaHACluster Ready, both peers hot-standby', async () => {
    const k = await getJson(`kha/${KEA}`);
    return condition(k, 'Ready')?.status === 'True' && k.status?.observedGeneration === k.metadata.generation && (await bothHotStandby()) ? true : undefined;
  }, 120_000, 500);
}

async function createDrill(name: string, spec: Record<string, unknown>): Promise<void> {
  const drill = { apiVersion: API_GROUP_VERSION, kind: 'FailoverDrill', metadata: { name, namespace }, spec: { target: { kind: 'KeaHACluster', name: KEA }, method: 'KeaMaintenance', ...spec } };
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: stringify(drill) });
}

async function finishedRun(name: string, timeoutMs = 120_000): Promise<{ drill: Json; run: DrillRun }> {
  return eventually(`drill ${name} to finish`, async () => {
    const d = await getJson(`fd/${name}`);
    const run = d.status?.runs?.[0];
    return run && ['Succeeded', 'Failed', 'Aborted'].includes(d.status?.phase ?? '') ? { drill: d, run } : undefined;
  }, timeoutMs, 250);
}

function manifests(): string {
  return asYamlDocuments([...labHostObjects(lab, namespace), labKeaHotStandby(lab, namespace, KEA, 0, 1)]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-keadrill-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: manifests() });
  running = startInProcessController({ kubeconfigPath: provided.kubeconfigPath, namespace, resyncMs: 3_000 });
  await kubectl.run(['wait', '--for=condition=Ready', `kha/${KEA}`, '-n', namespace, '--timeout=240s'], { timeoutMs: 250_000 });
  await clusterReady();
}, 330_000);

afterAll(async () => {
  await running?.stop();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('FailoverDrill of a Kea hot-standby cluster (KeaMaintenance)', () => {
  it('server1 goes in-maintenance, server2 takes every client, the time is measured; cancelled, both back in hot-standby', async () => {
    const since = [await hostNow(0), await hostNow(1)];
    await createDrill('kea-once', { objective: '20s', timeout: '60s' });
    const { drill, run } = await finishedRun('kea-once');
    console.log(`kea drill: ${run.message}`);
    expect(run).toMatchObject({ result: 'Succeeded', reason: 'Succeeded', activeHost: 'h1', peerHost: 'h2', objectiveSeconds: 20 });
    expect(run.servingOnPeerSeconds).toBeGreaterThan(0);
    expect(run.recoverySeconds).toBe(run.servingOnPeerSeconds);
    expect(run.recoveredSeconds).toBeGreaterThan(run.servingOnPeerSeconds!);
    expect(run.message).toContain('server2 in partner-in-maintenance after');
    expect(condition(drill, 'Ready')?.status).toBe('True');
    // What Kea itself logged: the standby took over through maintenance, and both came back.
    const onStandby = await transitions(1, since[1]!);
    const onPrimary = await transitions(0, since[0]!);
    console.log(`kea drill: h1 ${onPrimary.join(', ')}; h2 ${onStandby.join(', ')}`);
    expect(onStandby).toContain('hot-standby -> partner-in-maintenance');
    expect(onPrimary).toContain('hot-standby -> in-maintenance');
    expect(onStandby.at(-1)).toMatch(/-> hot-standby$/);
    expect(await bothHotStandby()).toBe(true);
    expect(await timerGone(1, run.runID)).toBe(true);
    await eventually('the recovery gauge', async () => ((await running!.gauge('ddi_ha_drill_recovery_seconds', { name: 'kea-once' })) === run.recoverySeconds ? true : undefined), 15_000);
  });

  it('an objective the take-over cannot meet: Failed MissedObjective, and still restored', async () => {
    await clusterReady();
    await createDrill('kea-too-strict', { objective: '1ms', timeout: '60s' });
    const { run } = await finishedRun('kea-too-strict');
    console.log(`kea drill, 1 ms objective: ${run.message}`);
    expect(run).toMatchObject({ result: 'Failed', reason: 'MissedObjective' });
    expect(run.message).toContain('over the objective of 1ms');
    expect(run.recoveredSeconds).toBeGreaterThan(0);
    expect(await bothHotStandby()).toBe(true);
    await eventually('the drill gauges', async () => ((await running!.gauge('ddi_ha_drill_last_result', { name: 'kea-too-strict', result: 'MissedObjective' })) === 1 ? true : undefined), 15_000);
  });

  it('refused, touching nothing, while the standby does not answer', async () => {
    await clusterReady();
    await lab.hosts[1]!.run(['systemctl', 'stop', 'kea-dhcp4-server.service']);
    try {
      await eventually('the cluster not Ready', async () => (condition(await getJson(`kha/${KEA}`), 'Ready')?.status === 'False' ? true : undefined), 60_000, 500);
      const since = await hostNow(0);
      await createDrill('kea-refused', { objective: '20s', timeout: '60s' });
      const { run } = await finishedRun('kea-refused');
      console.log(`kea drill refused: ${run.message}`);
      expect(run).toMatchObject({ result: 'Failed', reason: 'TargetNotReady' });
      expect(run.message).toMatch(/^refused: .*nothing was touched$/);
      expect(await transitions(0, since)).not.toContain('hot-standby -> in-maintenance');
    } finally {
      await lab.hosts[1]!.run(['systemctl', 'start', 'kea-dhcp4-server.service']);
    }
    await clusterReady();
  });

  it('the host-side timer cancels a maintenance by itself when no controller comes back (3 s here)', async () => {
    await clusterReady();
    const h2 = lab.hosts[1]!;
    // What the controller sends, run on h2 directly; then the maintenance, and nobody cancels it.
    await h2.run(armKeaCancelArgv('labkea1', 3, `http://${h2.address}:8000/`));
    await h2.run(['curl', '-s', '-m', '20', '-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{"command":"ha-maintenance-start","service":["dhcp4"]}', `http://${h2.address}:8000/`]);
    expect(await keaState(1)).toBe('partner-in-maintenance');
    try {
      await eventually('both back in hot-standby, cancelled by the timer', async () => ((await bothHotStandby()) ? true : undefined), 30_000, 250);
    } finally {
      console.log(`the timer's run on h2:\n${await h2.run(['journalctl', '--no-pager', '-o', 'cat', '-u', 'ddi-ha-drill-labkea1.service', '-u', 'ddi-ha-drill-labkea1.timer'])}`);
    }
    expect(await timerGone(1, 'labkea1')).toBe(true);
  });
});
