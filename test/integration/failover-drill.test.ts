// FailoverDrill (issue 12 item 3) through the in-process controller on the global-setup
// kube-apiserver and a two-host lab running keepalived and BIND (Debian's stock config, which
// answers `localhost.` on every address). What the drill reports is held against what the hosts
// say themselves: each host's own `ip -ts monitor address` (one kernel clock: the containers share
// it), keepalived's journal and MainPID, iptables and systemd's timers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_GROUP_VERSION, type DrillRun } from '../../src/api/index.js';
import { Controller, ControllerMetrics } from '../../src/controller/index.js';
import { breakArgv } from '../../src/drill/host-actions.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { AddressLog } from '../lab/address-log.js';
import { type Lab, startLab } from '../lab/lab.js';
import { unitSnapshot } from './apply-lab.js';
import { type Condition, gaugeValue, labPairManifests } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-drill-${Date.now().toString(36)}`;
const PAIR = 'drill-vip';

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let controller: Controller | undefined;
let transport: SshTransport | undefined;
let metrics: ControllerMetrics;
let addresses: AddressLog;
let startController: () => Controller;

const vipAddress = () => lab.network.spare(0);
type Json = { metadata: { generation: number }; status?: { phase?: string; runs?: DrillRun[]; activeNode?: string; observedGeneration?: number; conditions?: Condition[] } };
const getJson = async (resource: string): Promise<Json> => JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
const condition = (o: Json, type: string) => o.status?.conditions?.find((c) => c.type === type);
const holdsVip = async (i: number) => (await lab.hosts[i]!.run(['ip', '-o', 'addr', 'show'])).includes(` ${vipAddress()}/`);
const sh = (i: number, ...argv: string[]) => lab.hosts[i]!.run(argv);

const gauge = (name: string, labels: Record<string, string>) => gaugeValue(metrics, name, labels);

async function pairReadyOnPrimary(): Promise<void> {
  await eventually(
    'the pair Ready with the VIP on h1',
    async () => {
      const p = await getJson(`hap/${PAIR}`);
      return condition(p, 'Ready')?.status === 'True' && p.status?.activeNode === 'primary' && p.status.observedGeneration === p.metadata.generation ? true : undefined;
    },
    90_000,
  );
}

async function createDrill(name: string, spec: Record<string, unknown>): Promise<void> {
  const drill = { apiVersion: API_GROUP_VERSION, kind: 'FailoverDrill', metadata: { name, namespace }, spec: { target: { kind: 'HAPair', name: PAIR }, ...spec } };
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: stringify(drill) });
}

async function finishedRun(name: string, timeoutMs = 150_000): Promise<{ drill: Json; run: DrillRun }> {
  return eventually(
    `drill ${name} to finish`,
    async () => {
      const d = await getJson(`fd/${name}`);
      const run = d.status?.runs?.[0];
      return run && ['Succeeded', 'Failed', 'Aborted'].includes(d.status?.phase ?? '') ? { drill: d, run } : undefined;
    },
    timeoutMs,
    200,
  );
}

/** No restore timer of the run is left on the host, armed or not. */
async function timerGone(i: number, runID: string): Promise<boolean> {
  const out = await sh(i, 'systemctl', 'list-units', '--all', '--no-legend', '--plain', `ddi-ha-drill-${runID}*`);
  return out.trim() === '';
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-drill-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  // The service behind the VIP: BIND as Debian ships it answers localhost. on every address it has.
  await Promise.all(lab.hosts.map((h) => h.run(['systemctl', 'start', 'named.service'])));
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], {
    stdin: labPairManifests(lab, { namespace, name: PAIR, virtualIP: `${vipAddress()}/${lab.network.prefixLength}`, virtualRouterID: 93 }),
  });
  addresses = new AddressLog();
  lab.hosts.forEach((h, i) => addresses.follow(`h${i + 1}`, h.name));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(provided.kubeconfigPath);
  const log = pino({ level: process.env.DDI_HA_TEST_LOG ?? 'silent', redact: [...LOG_REDACT_PATHS] });
  metrics = new ControllerMetrics();
  transport = new SshTransport({ logger: log });
  startController = () => {
    const c = new Controller({ kubeConfig, namespace, resyncMs: 3_000, log, metrics, transport });
    c.start();
    return c;
  };
  controller = startController();
  await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, 'ddih/h1', 'ddih/h2', '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
}, 240_000);

afterAll(async () => {
  addresses?.stop();
  await controller?.stop();
  await transport?.closeAll();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('FailoverDrill on an HAPair', () => {
  it('StopPrimaryDaemon: Succeeded, with the VIP move, the DNS answer on the VIP and the recovery measured; the VIP is back on h1', async () => {
    await pairReadyOnPrimary();
    const before = await unitSnapshot(lab.hosts[0]!, 'keepalived.service');
    const t0 = Date.now();
    await createDrill('stop-daemon', { method: 'StopPrimaryDaemon', objective: '20s', timeout: '60s', serviceCheck: { dnsName: 'localhost' } });
    const { drill, run } = await finishedRun('stop-daemon');
    console.log(`StopPrimaryDaemon: ${run.message}`);
    expect(run, run.message).toMatchObject({ result: 'Succeeded', reason: 'Succeeded', activeHost: 'h1', peerHost: 'h2', objectiveSeconds: 20 });
    expect(run.vipOnPeerSeconds).toBeGreaterThan(0);
    expect(run.serviceAnswersSeconds).toBeGreaterThanOrEqual(run.vipOnPeerSeconds!);
    expect(run.recoverySeconds).toBe(run.serviceAnswersSeconds);
    expect(run.recoveredSeconds).toBeGreaterThan(run.serviceAnswersSeconds!);
    expect(condition(drill, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(condition(drill, 'Succeeded')).toMatchObject({ status: 'True' });
    expect(drill.status).not.toHaveProperty('active');

    // The hosts' own account (their address logs, on this process's clock): when h1 dropped the VIP
    // and h2 added it, counted from the break command. The drill sees the move one observation
    // round (200 ms) and one SSH trip later: never earlier, not much later.
    const breakAt = Date.parse(run.breakTime!);
    const deleted = addresses.first('h1', vipAddress(), false, t0);
    const added = addresses.first('h2', vipAddress(), true, t0);
    expect(deleted).toBeDefined();
    expect(added).toBeDefined();
    const onH2 = (added! - breakAt) / 1000;
    console.log(
      `StopPrimaryDaemon: address logs: the VIP left h1 ${((deleted! - breakAt) / 1000).toFixed(3)} s and was on h2 ${onH2.toFixed(3)} s after the break command; the drill saw it after ${run.vipOnPeerSeconds} s`,
    );
    expect(run.vipOnPeerSeconds! - onH2).toBeGreaterThan(-0.05);
    expect(run.vipOnPeerSeconds! - onH2).toBeLessThan(5);
    // Everything is back: keepalived runs again on h1 (a new process), the VIP is on h1 alone, no timer is left.
    expect(await holdsVip(0)).toBe(true);
    expect(await holdsVip(1)).toBe(false);
    const after = await unitSnapshot(lab.hosts[0]!, 'keepalived.service');
    expect(after.ActiveState).toBe('active');
    expect(after.MainPID).not.toBe(before.MainPID);
    expect(await timerGone(0, run.runID)).toBe(true);

    await eventually('the drill gauges', async () => ((await gauge('ddi_ha_drill_last_result', { name: 'stop-daemon', result: 'Succeeded' })) === 1 ? true : undefined), 15_000);
    expect(await gauge('ddi_ha_drill_recovery_seconds', { name: 'stop-daemon', target: `HAPair/${PAIR}` })).toBe(run.recoverySeconds);
    expect(await gauge('ddi_ha_drill_objective_seconds', { name: 'stop-daemon' })).toBe(20);
    expect(await gauge('ddi_ha_drill_last_result', { name: 'stop-daemon', result: 'MissedObjective' })).toBe(0);

    const table = await kubectl.run(['get', 'fd', 'stop-daemon', '-n', namespace]);
    expect(table.split('\n')[0]!.split(/\s+/)).toEqual(['NAME', 'TARGET', 'METHOD', 'PHASE', 'LAST', 'RECOVERY', 'VIPMOVE', 'OBJECTIVE', 'AGE']);
    expect(table.split('\n')[1]).toContain(`${PAIR}   StopPrimaryDaemon   Succeeded`);
  });

  it('an objective tighter than the failover: Failed with MissedObjective, restored all the same', async () => {
    await pairReadyOnPrimary();
    await createDrill('too-tight', { method: 'StopPrimaryDaemon', objective: '100ms', timeout: '60s' });
    const { drill, run } = await finishedRun('too-tight');
    console.log(`MissedObjective: ${run.message}`);
    expect(run).toMatchObject({ result: 'Failed', reason: 'MissedObjective', objectiveSeconds: 0.1 });
    expect(run.vipOnPeerSeconds).toBeGreaterThan(0.1);
    expect(condition(drill, 'Ready')).toMatchObject({ status: 'False', reason: 'MissedObjective' });
    expect(await holdsVip(0)).toBe(true);
    await eventually('the drill gauges', async () => ((await gauge('ddi_ha_drill_last_result', { name: 'too-tight', result: 'MissedObjective' })) === 1 ? true : undefined), 15_000);
    expect(await gauge('ddi_ha_drill_last_result', { name: 'too-tight', result: 'Succeeded' })).toBe(0);
  });

  it('CutHostNetwork: h1 loses its network but not its SSH session; the peer takes over; the cut and its timer are gone afterwards', async () => {
    await pairReadyOnPrimary();
    const t0 = Date.now();
    await createDrill('cut-network', { method: 'CutHostNetwork', objective: '20s', timeout: '60s', serviceCheck: { dnsName: 'localhost' } });
    // While the cut is in place, h1 drops the peer's adverts and the peer's DNS queries, yet the test's own SSH gets through.
    const during = await eventually('the cut in place on h1', async () => {
      const rules = await sh(0, 'iptables', '-w', '-S');
      return rules.includes('-A INPUT -i eth0 -j DDIHA-DRILL') ? rules : undefined;
    }, 60_000, 100);
    expect(during).toContain('-A DDIHA-DRILL -j DROP');
    expect(await sh(0, 'systemctl', 'list-timers', '--all', '--no-legend')).toMatch(/ddi-ha-drill-[a-z0-9]+\.timer/);
    const { run } = await finishedRun('cut-network');
    console.log(`CutHostNetwork: ${run.message}`);
    expect(run, run.message).toMatchObject({ result: 'Succeeded', activeHost: 'h1', peerHost: 'h2' });
    expect(run.serviceAnswersSeconds).toBeGreaterThanOrEqual(run.vipOnPeerSeconds!);
    // keepalived on a cut h1 keeps the VIP (it hears no one); h2 adds it after three missed adverts plus its skew.
    const added = addresses.first('h2', vipAddress(), true, t0);
    expect(added).toBeDefined();
    expect(await sh(0, 'iptables', '-w', '-S')).not.toContain('DDIHA-DRILL');
    expect(await timerGone(0, run.runID)).toBe(true);
    expect(await holdsVip(0)).toBe(true);
    expect(await holdsVip(1)).toBe(false);
  });

  it('a pair that is not Ready is refused and nothing is touched', async () => {
    await pairReadyOnPrimary();
    await sh(1, 'systemctl', 'stop', 'keepalived.service');
    try {
      await eventually('the pair not Ready', async () => (condition(await getJson(`hap/${PAIR}`), 'Ready')?.status === 'False' ? true : undefined), 60_000);
      const before = await unitSnapshot(lab.hosts[0]!, 'keepalived.service');
      await createDrill('refused', { method: 'StopPrimaryDaemon', objective: '20s' });
      const { drill, run } = await finishedRun('refused', 60_000);
      expect(run).toMatchObject({ result: 'Failed', reason: 'TargetNotReady' });
      expect(run.message).toMatch(new RegExp(`^refused: HAPair ${PAIR} is not Ready \\(.+\\); nothing was touched$`));
      expect(condition(drill, 'Ready')).toMatchObject({ status: 'False', reason: 'TargetNotReady' });
      expect(await unitSnapshot(lab.hosts[0]!, 'keepalived.service')).toEqual(before);
    } finally {
      await sh(1, 'systemctl', 'start', 'keepalived.service');
    }
  });

  it('a peer that fails mid-run: Aborted, and the broken node is restored', async () => {
    await pairReadyOnPrimary();
    // h2's DNS server is down: before the break h1 answers on the VIP (the pre-flight passes), after it nobody does.
    await sh(1, 'systemctl', 'stop', 'named.service');
    try {
      await createDrill('peer-fails', { method: 'StopPrimaryDaemon', objective: '20s', timeout: '90s', serviceCheck: { dnsName: 'localhost' } });
      await eventually('the VIP on h2, the drill waiting for DNS', async () => ((await getJson('fd/peer-fails')).status?.phase === 'Running' && (await holdsVip(1)) ? true : undefined), 60_000, 200);
      // The drill's own observations (every 200 ms) see the move too before the peer fails.
      await new Promise((r) => setTimeout(r, 1_500));
      await sh(1, 'systemctl', 'stop', 'keepalived.service');
      const { run } = await finishedRun('peer-fails');
      console.log(`Aborted: ${run.message}`);
      expect(run).toMatchObject({ result: 'Aborted', reason: 'PeerNotHealthy' });
      expect(run.message).toContain('keepalived is not active on the peer h2');
      expect(run.vipOnPeerSeconds).toBeGreaterThan(0);
      // Restored: keepalived runs on h1 again and has the VIP (h2's is stopped), no timer left.
      expect((await unitSnapshot(lab.hosts[0]!, 'keepalived.service')).ActiveState).toBe('active');
      expect(await holdsVip(0)).toBe(true);
      expect(await timerGone(0, run.runID)).toBe(true);
      await eventually('the drill gauges', async () => ((await gauge('ddi_ha_drill_last_result', { name: 'peer-fails', result: 'Aborted' })) === 1 ? true : undefined), 15_000);
    } finally {
      await sh(1, 'systemctl', 'start', 'keepalived.service', 'named.service');
    }
    await pairReadyOnPrimary();
  });

  it('a controller stopped mid-run undoes the break; the next one records the run as Interrupted', async () => {
    await pairReadyOnPrimary();
    // h2 without DNS keeps the run waiting in Running (the VIP moves, no answer comes).
    await sh(1, 'systemctl', 'stop', 'named.service');
    try {
      await createDrill('interrupted', { method: 'StopPrimaryDaemon', objective: '20s', timeout: '120s', serviceCheck: { dnsName: 'localhost' } });
      await eventually('the run in Running with keepalived stopped on h1', async () => {
        const d = await getJson('fd/interrupted');
        return d.status?.phase === 'Running' && (await unitSnapshot(lab.hosts[0]!, 'keepalived.service')).ActiveState !== 'active' ? true : undefined;
      }, 60_000, 200);
      await controller!.stop();
      // Stopping undid the break on the way out: keepalived runs on h1 again, no timer is left.
      expect((await unitSnapshot(lab.hosts[0]!, 'keepalived.service')).ActiveState).toBe('active');
      const stale = await getJson('fd/interrupted');
      expect(stale.status?.phase).toBe('Running');
      controller = startController();
      const { run } = await finishedRun('interrupted');
      console.log(`Interrupted: ${run.message}`);
      expect(run).toMatchObject({ result: 'Aborted', reason: 'Interrupted', activeHost: 'h1' });
      expect(run.message).toContain('the break was undone by the controller that took over');
      expect(await timerGone(0, run.runID)).toBe(true);
    } finally {
      await sh(1, 'systemctl', 'start', 'named.service');
    }
  });

  it('the host-side timer undoes a break by itself when no controller comes back (3 s here)', async () => {
    await pairReadyOnPrimary();
    // The break scripts as the controller sends them, run on h1 directly; nobody restores.
    const cut = breakArgv({ method: 'CutHostNetwork', runID: 'labcut1', interface: lab.hosts[0]!.interface, safetySeconds: 3 });
    await sh(0, ...cut);
    expect(await sh(0, 'iptables', '-w', '-S')).toContain('-A OUTPUT -o eth0 -j DDIHA-DRILL');
    await eventually('the cut undone by the timer', async () => (!(await sh(0, 'iptables', '-w', '-S')).includes('DDIHA-DRILL') ? true : undefined), 30_000, 200);
    await pairReadyOnPrimary();
    await sh(0, ...breakArgv({ method: 'StopPrimaryDaemon', runID: 'labstop1', interface: lab.hosts[0]!.interface, safetySeconds: 3 }));
    expect((await unitSnapshot(lab.hosts[0]!, 'keepalived.service')).ActiveState).not.toBe('active');
    await eventually('keepalived started by the timer', async () => ((await unitSnapshot(lab.hosts[0]!, 'keepalived.service')).ActiveState === 'active' ? true : undefined), 30_000, 200);
    await eventually('the VIP back on h1', async () => ((await holdsVip(0)) && !(await holdsVip(1)) ? true : undefined), 30_000, 200);
  });
});
