// Maintenance of a host and planned switchover of an HAPair (issue 12 items 1 and 2), through the
// in-process controller on the global-setup kube-apiserver and a two-host lab. What the hosts do
// is read on the hosts, independent of the operator: tcpdump on the partner shows the priority-0
// advert, each host's own `ip -ts monitor address` shows when the VIP left and arrived (one
// kernel clock: the containers share it), and keepalived's MainPID and journal show it was never
// restarted or reloaded for a maintenance.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Controller, ControllerMetrics } from '../../src/controller/index.js';
import { MAINTENANCE_FLAG_PATH } from '../../src/daemons/keepalived/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { AddressLog } from '../lab/address-log.js';
import { type Lab, startLab } from '../lab/lab.js';
import { unitSnapshot } from './apply-lab.js';
import { type Condition, labPairManifests } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-maint-${Date.now().toString(36)}`;
const PAIR = 'maint-vip';
const RESYNC_MS = 3_000;

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let controller: Controller | undefined;
let transport: SshTransport | undefined;
let metrics: ControllerMetrics;
let addresses: AddressLog;
const logLines: string[] = [];

const vipAddress = () => lab.network.spare(0);
type Json = { metadata: { generation: number }; status?: { activeNode?: string; conditions?: Condition[] } };
const getJson = async (resource: string): Promise<Json> => JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
const condition = (o: Json, type: string) => o.status?.conditions?.find((c) => c.type === type);
const holdsVip = async (i: number) => (await lab.hosts[i]!.run(['ip', '-o', 'addr', 'show'])).includes(` ${vipAddress()}/`);

async function gauge(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = (metric as { values?: { labels: Record<string, string>; value: number }[] } | undefined)?.values?.find((v) =>
    Object.entries(labels).every(([k, want]) => v.labels[k] === want),
  );
  return value?.value;
}

/** When the VIP was deleted on host `from` and added on host `to`, after `since` (this process's clock, ms). */
async function moveTimes(from: string, to: string, since: number): Promise<{ deleted: number; added: number }> {
  return eventually(
    `the VIP to leave ${from} and reach ${to} in the address logs`,
    async () => {
      const deleted = addresses.first(from, vipAddress(), false, since);
      const added = addresses.first(to, vipAddress(), true, since);
      return deleted !== undefined && added !== undefined ? { deleted, added } : undefined;
    },
    20_000,
    50,
  );
}

/** Reload and restart lines of keepalived in the host's journal since `since` (journalctl's --since). */
async function keepalivedReloads(i: number, since: string): Promise<string[]> {
  const out = await lab.hosts[i]!.run(['journalctl', '-u', 'keepalived', '--no-pager', '-o', 'cat', '--since', since]);
  return out.split('\n').filter((l) => /Reloading|Reloaded|Stopping|Starting Keepalive/i.test(l));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-maint-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], {
    stdin: labPairManifests(lab, { namespace, name: PAIR, virtualIP: `${vipAddress()}/${lab.network.prefixLength}`, virtualRouterID: 91 }),
  });
  addresses = new AddressLog();
  lab.hosts.forEach((h, i) => addresses.follow(`h${i + 1}`, h.name));
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
  transport = new SshTransport({ logger: log });
  controller = new Controller({ kubeConfig, namespace, resyncMs: RESYNC_MS, log, metrics, transport });
  controller.start();
  await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, 'ddih/h1', 'ddih/h2', '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
}, 240_000);

afterAll(async () => {
  addresses?.stop();
  await controller?.stop();
  await transport?.closeAll();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('maintenance of a host (DDIHost spec.maintenance)', () => {
  it('hands the VIP over with a priority-0 advert, without reloading keepalived; status says Maintenance, Argo CD would say Suspended, alerts are silenced', async () => {
    expect(await holdsVip(0)).toBe(true);
    const before = await unitSnapshot(lab.hosts[0]!, 'keepalived.service');
    const since = (await lab.hosts[0]!.run(['date', '+%Y-%m-%d %H:%M:%S'])).trim();
    // The partner's view of the wire: VRRP adverts from h1, with their priorities.
    const capture = lab.hosts[1]!.exec(['timeout', '12', 'tcpdump', '-n', '-l', '-i', lab.hosts[1]!.interface, `src ${lab.hosts[0]!.address} and ip proto 112`]).then((r) => r.stdout);
    await new Promise((r) => setTimeout(r, 1_500));
    const t0 = Date.now();
    await kubectl.run(['patch', 'ddih/h1', '-n', namespace, '--type=merge', '-p', '{"spec":{"maintenance":true}}']);

    const { deleted, added } = await moveTimes('h1', 'h2', t0);
    console.log(`maintenance: VIP on h2 ${Math.round(added - t0)} ms after the patch; h1 gave it up ${Math.round(deleted - t0)} ms after it`);
    // A priority-0 advert makes the partner take over after its skew time (~0.6 s at priority
    // 100), not after three missed adverts (3.6 s): the gap between them is the proof in time.
    expect(added - deleted).toBeLessThan(2_000);
    const wire = await capture;
    expect(wire, wire).toMatch(/prio 0,/);

    const hap = await eventually(
      'the pair to report the maintenance',
      async () => {
        const p = await getJson(`hap/${PAIR}`);
        return condition(p, 'Maintenance')?.reason === 'HandedOver' && condition(p, 'Ready')?.reason === 'Maintenance' ? p : undefined;
      },
      30_000,
    );
    expect(hap.status?.activeNode).toBe('secondary');
    expect(condition(hap, 'Ready')!.message).toContain('the primary h1 is in maintenance');
    const host = await getJson('ddih/h1');
    expect(condition(host, 'Maintenance')).toMatchObject({ status: 'True', reason: 'InMaintenance' });
    expect(await lab.hosts[0]!.run(['cat', MAINTENANCE_FLAG_PATH])).toBe('1\n');
    // keepalived follows the flag by itself: same process, no reload, no restart.
    expect(await unitSnapshot(lab.hosts[0]!, 'keepalived.service')).toEqual(before);
    expect(await keepalivedReloads(0, since)).toEqual([]);
    expect((await lab.hosts[0]!.run(['journalctl', '-u', 'keepalived', '--no-pager', '-o', 'cat', '--since', since])).includes('Entering FAULT STATE')).toBe(true);

    await eventually('the metrics', async () => ((await gauge('ddi_ha_resource_in_maintenance', { kind: 'HAPair', name: PAIR })) === 1 ? true : undefined), 15_000);
    expect(await gauge('ddi_ha_resource_in_maintenance', { kind: 'DDIHost', name: 'h1' })).toBe(1);
    expect(await gauge('ddi_ha_resource_in_maintenance', { kind: 'DDIHost', name: 'h2' })).toBe(0);
  });

  it('a resync during maintenance changes nothing; taking the field away returns the VIP to the primary and reports how long that took', async () => {
    await new Promise((r) => setTimeout(r, 2 * RESYNC_MS));
    expect(await holdsVip(1)).toBe(true);
    expect(condition(await getJson(`hap/${PAIR}`), 'Ready')?.reason).toBe('Maintenance');

    const t0 = Date.now();
    await kubectl.run(['patch', 'ddih/h1', '-n', namespace, '--type=json', '-p', '[{"op":"remove","path":"/spec/maintenance"}]']);
    const { added } = await moveTimes('h2', 'h1', t0);
    console.log(`maintenance ended: VIP back on h1 ${Math.round(added - t0)} ms after the patch`);
    const hap = await eventually(
      'the pair back to normal',
      async () => {
        const p = await getJson(`hap/${PAIR}`);
        return condition(p, 'Ready')?.status === 'True' && condition(p, 'Maintenance')?.reason === 'Returned' ? p : undefined;
      },
      60_000,
    );
    expect(hap.status?.activeNode).toBe('primary');
    const returned = condition(hap, 'Maintenance')!;
    expect(returned.status).toBe('False');
    const seconds = Number(/back to normal (\d+) s after the maintenance ended/.exec(returned.message)?.[1]);
    console.log(`maintenance ended: status says "${returned.message}"`);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(60);
    expect(condition(await getJson('ddih/h1'), 'Maintenance')).toMatchObject({ status: 'False', reason: 'Ended' });
    expect(await lab.hosts[0]!.run(['cat', MAINTENANCE_FLAG_PATH])).toBe('0\n');
    await eventually('the metrics', async () => ((await gauge('ddi_ha_resource_in_maintenance', { kind: 'HAPair', name: PAIR })) === 0 ? true : undefined), 15_000);
  });
});

describe('planned switchover (HAPair spec.preferredNode)', () => {
  for (const [to, from, toIndex] of [
    ['secondary', 'h1', 1],
    ['primary', 'h2', 0],
  ] as const) {
    it(`preferredNode ${to}: the VIP moves to ${to === 'secondary' ? 'h2' : 'h1'} and is never dropped; the pair stays Ready`, async () => {
      const toHost = to === 'secondary' ? 'h2' : 'h1';
      const t0 = Date.now();
      await kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { preferredNode: to } })]);
      const { deleted, added } = await moveTimes(from, toHost, t0);
      console.log(`switchover to ${to}: VIP on ${toHost} ${Math.round(added - t0)} ms after the patch; off ${from} ${Math.round(deleted - added)} ms after that`);
      // Added on the new holder before (or as) it leaves the old one: no moment without a holder.
      expect(added).toBeLessThanOrEqual(deleted + 5);
      expect(await holdsVip(toIndex)).toBe(true);
      const generation = (await getJson(`hap/${PAIR}`)).metadata.generation;
      const hap = await eventually(
        'the pair Ready on its preferred node',
        async () => {
          const p = await getJson(`hap/${PAIR}`);
          return condition(p, 'Ready')?.status === 'True' && p.status?.activeNode === to && condition(p, 'Ready')?.observedGeneration === generation ? p : undefined;
        },
        60_000,
      );
      expect(condition(hap, 'Ready')?.reason).toBe(to === 'secondary' ? 'VIPOnSecondary' : 'VIPOnPrimary');
    });
  }

  it('preferredNode secondary without preempt is refused at admission with the field and the fix', async () => {
    await expect(
      kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-p', '{"spec":{"preferredNode":"secondary","preempt":false}}']),
    ).rejects.toThrow(/spec.preferredNode: secondary needs spec.preempt: true/);
  });
});
