// Kubernetes Events (issue 10 item 2) through the in-process controller on the global-setup
// kube-apiserver and a two-host lab: each transition is one events.k8s.io/v1 Event, a repeat of
// the same transition is that Event's series, resyncs that change nothing write none, and the
// real kubectl's `describe` shows them. What happened is caused on the hosts (keepalived stopped
// with systemctl, a file edited, a host frozen), and the Events are read back from the API server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_GROUP_VERSION } from '../../src/api/index.js';
import { Controller, ControllerMetrics } from '../../src/controller/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { type Lab, startLab } from '../lab/lab.js';
import { hostSha256 } from './apply-lab.js';
import { type Condition, labPairManifests } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-events-${Date.now().toString(36)}`;
const PAIR = 'events-vip';
const VRID = 93;
const RESYNC_MS = 3_000;
const IDENTITY = `events-test_${process.pid}`;

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let controller: Controller | undefined;
let transport: SshTransport | undefined;
let metrics: ControllerMetrics;

const vipAddress = () => lab.network.spare(0);
const vip = () => `${vipAddress()}/${lab.network.prefixLength}`;
const pairFile = `/etc/keepalived/ddi-ha.d/${namespace}_${PAIR}.conf`;

interface KubeEvent {
  metadata: { name: string };
  type: string;
  reason: string;
  action: string;
  note: string;
  eventTime: string;
  regarding: { kind: string; name: string; namespace: string; uid?: string; apiVersion: string };
  reportingController: string;
  reportingInstance: string;
  series?: { count: number; lastObservedTime: string };
}
type Json = { metadata: { uid: string; generation: number }; status?: { activeNode?: string; conditions?: Condition[] } };

const getJson = async (resource: string): Promise<Json> => JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
const condition = (o: Json, type: string) => o.status?.conditions?.find((c) => c.type === type);

/** This controller's Events in the namespace, as the API server has them (events.k8s.io/v1). */
async function ourEvents(): Promise<KubeEvent[]> {
  const list = JSON.parse(await kubectl.run(['get', 'events.v1.events.k8s.io', '-n', namespace, '-o', 'json'])) as { items: KubeEvent[] };
  return list.items.filter((e) => e.reportingController === 'ddi-ha.io/controller');
}
const about = (events: KubeEvent[], kind: string, name: string, reason: string) => events.filter((e) => e.regarding.kind === kind && e.regarding.name === name && e.reason === reason);
const countOf = (e: KubeEvent) => e.series?.count ?? 1;

async function waitForEvent(kind: string, name: string, reason: string, test: (e: KubeEvent) => boolean = () => true, timeoutMs = 60_000): Promise<KubeEvent> {
  return eventually(`a ${reason} Event about ${kind} ${name}`, async () => about(await ourEvents(), kind, name, reason).find(test), timeoutMs, 250);
}

async function waitReady(): Promise<Json> {
  return eventually(
    'the pair Ready on the primary',
    async () => {
      const p = await getJson(`hap/${PAIR}`);
      return condition(p, 'Ready')?.status === 'True' && p.status?.activeNode === 'primary' ? p : undefined;
    },
    90_000,
  );
}

/** The failover the test causes: keepalived stopped on the primary, then started again. */
async function failOverAndBack(): Promise<void> {
  await lab.hosts[0]!.stopService('keepalived');
  await eventually('the VIP on the secondary in status', async () => ((await getJson(`hap/${PAIR}`)).status?.activeNode === 'secondary' ? true : undefined), 30_000);
  await lab.hosts[0]!.startService('keepalived');
  await waitReady();
}

async function eventsMetric(result: string): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'ddi_ha_events_total') as { values?: { labels: Record<string, string>; value: number }[] } | undefined;
  return (metric?.values ?? []).filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-events-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], {
    stdin: labPairManifests(lab, { namespace, name: PAIR, virtualIP: vip(), virtualRouterID: VRID }),
  });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(provided.kubeconfigPath);
  const log = pino({ level: 'info', redact: [...LOG_REDACT_PATHS] });
  metrics = new ControllerMetrics();
  transport = new SshTransport({ logger: log });
  controller = new Controller({ kubeConfig, namespace, resyncMs: RESYNC_MS, log, metrics, transport, identity: IDENTITY });
  controller.start();
  await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, 'ddih/h1', 'ddih/h2', '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
}, 240_000);

afterAll(async () => {
  await controller?.stop();
  await transport?.closeAll();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Kubernetes Events (events.k8s.io/v1)', () => {
  it('applying the HAPair: one Normal Applied Event naming both hosts and the file, about the object (uid), from this controller', async () => {
    const hap = await getJson(`hap/${PAIR}`);
    const applied = await waitForEvent('HAPair', PAIR, 'Applied');
    expect(applied).toMatchObject({
      type: 'Normal',
      action: 'Apply',
      reportingController: 'ddi-ha.io/controller',
      reportingInstance: IDENTITY,
      regarding: { apiVersion: API_GROUP_VERSION, kind: 'HAPair', name: PAIR, namespace, uid: hap.metadata.uid },
    });
    expect(applied.note).toContain(`generation ${hap.metadata.generation} applied to `);
    expect(applied.note).toContain(`h1 (`);
    expect(applied.note).toContain(`h2 (`);
    expect(applied.note).toContain(pairFile);
    // Microseconds, as events.k8s.io/v1 wants them.
    expect(applied.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(about(await ourEvents(), 'HAPair', PAIR, 'Applied')).toHaveLength(1);
  });

  it('keepalived stopped on the primary: FailedOver (Warning); started again: FailedBack (Normal)', async () => {
    await failOverAndBack();
    const over = await waitForEvent('HAPair', PAIR, 'FailedOver');
    expect(over.type).toBe('Warning');
    expect(over.note).toMatch(new RegExp(`^${vip().replace(/\./g, '\\.')} moved from the primary h1 to the secondary h2: keepalived on h1`));
    const back = await waitForEvent('HAPair', PAIR, 'FailedBack');
    expect(back).toMatchObject({ type: 'Normal', note: `${vip()} moved from the secondary h2 to the primary h1, its preferred node (spec.preferredNode)` });
    expect(countOf(over)).toBe(1);
    expect(countOf(back)).toBe(1);
  }, 120_000);

  it('a hand edit of the managed file: DriftCorrected names the host and file', async () => {
    const h1 = lab.hosts[0]!;
    const rendered = await hostSha256(h1, pairFile);
    await h1.run(['sh', '-c', `echo '# edited by hand' >> ${pairFile}`]);
    // Within a resync or a few on an idle machine (a loaded one times probes out: the bound is loose).
    const corrected = await waitForEvent('HAPair', PAIR, 'DriftCorrected', () => true, 120_000);
    expect(corrected.type).toBe('Warning');
    expect(corrected.action).toBe('CorrectDrift');
    expect(corrected.note).toContain(`h1:${pairFile} differed from the spec`);
    expect(await hostSha256(h1, pairFile)).toBe(rendered);
  }, 150_000);

  it('several resyncs with nothing changing write no Event and no series count', async () => {
    await waitReady();
    // Let the passes of the correction settle, then compare a snapshot across three resyncs.
    await new Promise((r) => setTimeout(r, RESYNC_MS));
    const snapshot = async () => Object.fromEntries((await ourEvents()).map((e) => [e.metadata.name, `${e.reason} x${countOf(e)}`]));
    const before = await snapshot();
    const successes = async () => Number(/^ddi_ha_reconcile_total\{controller="object",result="success"\} (\d+)/m.exec(await metrics.registry.metrics())?.[1] ?? 0);
    const reconciles = await successes();
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 4 * RESYNC_MS));
    // The passes ran (host resyncs and their pairs) and wrote nothing: at least three of them.
    const after = await eventually('three passes', async () => ((await successes()) - reconciles >= 3 ? successes() : undefined), 90_000, 500);
    console.log(`quiet: ${after - reconciles} successful passes in ${Date.now() - started} ms, ${Object.keys(before).length} Events before and after`);
    expect(await snapshot()).toEqual(before);
  }, 150_000);

  it('the same transition again: the same Event, its series.count 2, no new Event', async () => {
    const [overBefore] = about(await ourEvents(), 'HAPair', PAIR, 'FailedOver');
    await failOverAndBack();
    const over = await waitForEvent('HAPair', PAIR, 'FailedOver', (e) => countOf(e) === 2);
    const back = await waitForEvent('HAPair', PAIR, 'FailedBack', (e) => countOf(e) === 2);
    expect(over.metadata.name).toBe(overBefore!.metadata.name);
    expect(Date.parse(over.series!.lastObservedTime)).toBeGreaterThan(Date.parse(over.eventTime));
    expect(back.series?.count).toBe(2);
    const events = await ourEvents();
    expect(about(events, 'HAPair', PAIR, 'FailedOver')).toHaveLength(1);
    expect(about(events, 'HAPair', PAIR, 'FailedBack')).toHaveLength(1);
  }, 120_000);

  it('a frozen host: HostUnreachable on its DDIHost and on the pair', async () => {
    const h2 = lab.hosts[1]!;
    await h2.pause();
    try {
      const host = await waitForEvent('DDIHost', 'h2', 'HostUnreachable', () => true, 90_000);
      expect(host.type).toBe('Warning');
      expect(host.note.length).toBeGreaterThan(0);
      const pair = await waitForEvent('HAPair', PAIR, 'HostUnreachable', () => true, 60_000);
      // Seen by the observation, or by an apply that was due: either way it names h2.
      expect(pair.note).toMatch(/^(cannot observe the secondary h2|cannot apply to h2): /);
    } finally {
      await h2.unpause();
    }
    await waitReady();
  }, 240_000);

  it('an object refused in status: Stalled names the field', async () => {
    // Same VRID and subnet as the first pair: the later one is refused (spec.virtualRouterID).
    const dup = {
      apiVersion: API_GROUP_VERSION,
      kind: 'HAPair',
      metadata: { name: 'zz-dup', namespace },
      spec: {
        primary: { host: 'h1', interface: lab.hosts[0]!.interface },
        secondary: { host: 'h2', interface: lab.hosts[1]!.interface },
        virtualIP: `${lab.network.spare(1)}/${lab.network.prefixLength}`,
        virtualRouterID: VRID,
        services: { dns: false, dhcp: 'None' },
      },
    };
    await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: JSON.stringify(dup) });
    try {
      const stalled = await waitForEvent('HAPair', 'zz-dup', 'Stalled');
      expect(stalled.type).toBe('Warning');
      expect(stalled.note).toMatch(/^InvalidSpec: .*VRID 93 is already used/);
      expect(stalled.note).toContain('spec.virtualRouterID');
      // The first pair is untouched by it.
      expect(about(await ourEvents(), 'HAPair', PAIR, 'Stalled')).toEqual([]);
    } finally {
      await kubectl.run(['delete', 'hap/zz-dup', '-n', namespace, '--wait=true', '--timeout=60s']);
    }
  }, 120_000);

  it('kubectl describe hap/… shows the Events, with the series count', async () => {
    const out = await kubectl.run(['describe', `hap/${PAIR}`, '-n', namespace]);
    const section = out.slice(out.indexOf('\nEvents:'));
    expect(section, out).toMatch(/^\nEvents:\n\s+Type\s+Reason\s+Age\s+From\s+Message/);
    for (const [type, reason] of [
      ['Normal', 'Applied'],
      ['Warning', 'FailedOver'],
      ['Normal', 'FailedBack'],
      ['Warning', 'DriftCorrected'],
      ['Warning', 'HostUnreachable'],
    ]) {
      expect(section, section).toMatch(new RegExp(`\\n\\s+${type}\\s+${reason}\\s+.*ddi-ha\\.io/controller\\s+\\S`));
    }
    // kubectl prints a series as "(x2 over …)".
    expect(section).toMatch(/FailedOver\s+.*\(x2 over [^)]+\)\s+ddi-ha\.io\/controller/);
    console.log(section.trimEnd());
    expect(await eventsMetric('failed')).toBe(0);
    expect(await eventsMetric('created')).toBeGreaterThanOrEqual(6);
  });
});
