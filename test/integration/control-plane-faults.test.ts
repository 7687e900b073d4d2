// Control-plane faults under a running controller (issue 10 item 4): kube-apiserver stopped and
// started again, and an etcd compaction that makes the watches' resourceVersions too old (410).
// The control plane is this file's own (test/harness/control-plane.ts), not the global-setup one
// the other files share: it is stopped here. Real kube-apiserver and etcd, two real lab hosts,
// the in-process controller. What the controller did to the hosts is read from its /metrics
// (ddi_ha_applies_total: one apply of one relationship to one host) and on the hosts themselves.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, ControllerMetrics, type HealthServer, startHealthServer } from '../../src/controller/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type Condition, labPairManifests } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const namespace = `ddi-ha-cpf-${Date.now().toString(36)}`;
const PAIR = 'cpf-vip';
const RESYNC_MS = 3_000;
const OUTAGE_MS = 30_000;
const KINDS = ['DDIHost', 'HAPair', 'KeaHACluster', 'DhcpFailoverPeer'];

let cp: ControlPlane;
let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let controller: Controller | undefined;
let transport: SshTransport | undefined;
let server: HealthServer | undefined;
let metrics: ControllerMetrics;
const logLines: string[] = [];

type Json = { metadata: { generation: number }; status?: { observedGeneration?: number; activeNode?: string; failoverCount?: number; conditions?: Condition[] } };
const getJson = async (resource: string): Promise<Json> => JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
const condition = (o: Json, type: string) => o.status?.conditions?.find((c) => c.type === type);
const vipAddress = () => lab.network.spare(0);
const holdsVip = async (i: number) => (await lab.hosts[i]!.run(['ip', '-o', 'addr', 'show'])).includes(` ${vipAddress()}/`);
const pairFile = `/etc/keepalived/ddi-ha.d/${namespace}_${PAIR}.conf`;
const priorityOn = async (i: number) => Number(/\bpriority (\d+)/.exec(await lab.hosts[i]!.run(['cat', pairFile]))?.[1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One counter's series from the controller's /metrics, as Prometheus would scrape it: labels → value. */
async function scrape(name: string): Promise<{ labels: Record<string, string>; value: number }[]> {
  const text = await (await fetch(`http://127.0.0.1:${server!.port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .map((l) => {
      const m = /^[^{]+\{(.*)\} (\S+)$/.exec(l)!;
      const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
      return { labels, value: Number(m[2]) };
    });
}

/** ddi_ha_applies_total of the HAPair kind, by result. */
async function applies(): Promise<Record<'changed' | 'unchanged' | 'failed', number>> {
  const out = { changed: 0, unchanged: 0, failed: 0 };
  for (const s of await scrape('ddi_ha_applies_total')) if (s.labels.kind === 'HAPair') out[s.labels.result as keyof typeof out] = s.value;
  return out;
}

/** ddi_ha_watch_restarts_total for one reason, by kind. */
async function restarts(reason: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await scrape('ddi_ha_watch_restarts_total')) if (s.labels.reason === reason) out[s.labels.kind!] = s.value;
  return out;
}

async function gauge(name: string, labels: Record<string, string>): Promise<number | undefined> {
  return (await scrape(name)).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const reconcileErrors = async () => (await scrape('ddi_ha_reconcile_errors_total'))[0]?.value ?? 0;

/** Patches both priorities (each host's file changes) and returns the new generation. */
async function setPriorities(primary: number, secondary: number): Promise<number> {
  const out = await kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-o', 'json', '-p', JSON.stringify({ spec: { primary: { priority: primary }, secondary: { priority: secondary } } })]);
  return (JSON.parse(out) as Json).metadata.generation;
}

/** The pair Ready for `generation`, its status observed, with the predicate also true. */
async function observed(generation: number, what: string, also: (p: Json) => boolean = () => true, timeoutMs = 120_000): Promise<Json> {
  return eventually(
    what,
    async () => {
      const p = await getJson(`hap/${PAIR}`);
      const ready = condition(p, 'Ready');
      return p.status?.observedGeneration === generation && ready?.status === 'True' && ready.observedGeneration === generation && also(p) ? p : undefined;
    },
    timeoutMs,
    500,
  );
}

/** Measures how long stopping and starting kube-apiserver took, for the log. */
async function restartApiserver(outageMs: number, during: () => Promise<void> = async () => {}): Promise<{ stopMs: number; startMs: number }> {
  const t0 = Date.now();
  await cp.stopApiserver();
  const stopMs = Date.now() - t0;
  await during();
  const left = outageMs - (Date.now() - t0);
  if (left > 0) await sleep(left);
  const t1 = Date.now();
  await cp.startApiserver();
  return { stopMs, startMs: Date.now() - t1 };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-cpf-'));
  [cp, lab] = await Promise.all([startControlPlane(), startLab({ hosts: 2 })]);
  kubectl = new Kubectl({ binary: cp.binaries.kubectl, kubeconfig: cp.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], {
    stdin: labPairManifests(lab, { namespace, name: PAIR, virtualIP: `${vipAddress()}/${lab.network.prefixLength}`, virtualRouterID: 93 }),
  });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(cp.kubeconfigPath);
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
  server = await startHealthServer({ port: 0, host: '127.0.0.1', registry: metrics.registry, isReady: () => controller!.ready });
  controller.start();
  await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, 'ddih/h1', 'ddih/h2', '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
}, 300_000);

afterAll(async () => {
  await server?.close();
  await controller?.stop();
  await transport?.closeAll();
  await lab?.stop();
  // Beside the API server's logs, for a work dir kept with DDI_HA_KEEP_CONTROL_PLANE=1.
  if (cp) writeFileSync(join(cp.workDir, 'logs', 'controller.log'), `${logLines.join('\n')}\n`);
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kube-apiserver stopped and started again under a running controller', () => {
  it('a converged, quiet controller applies nothing across resyncs (the baseline the other checks stand on)', async () => {
    const before = await applies();
    // The first pass applied the pair once to each host.
    expect(before).toMatchObject({ changed: 2, failed: 0 });
    await sleep(3 * RESYNC_MS);
    expect(await applies()).toEqual(before);
  });

  it('a spec edit made just before the stop is not lost: after the restart it is on both hosts and observed, written to each host once', async () => {
    const before = await applies();
    const generation = await setPriorities(160, 105);
    // Whether the watch event beat the stop is a race: either way the edit must come through.
    const { stopMs, startMs } = await restartApiserver(15_000);
    const onHostsAtStart = [await priorityOn(0), await priorityOn(1)];
    const t0 = Date.now();
    await observed(generation, 'the edit made before the stop to be applied and observed');
    console.log(
      `edit before stop: apiserver stopped in ${stopMs} ms, started in ${startMs} ms; priorities on the hosts when it came back: ${onHostsAtStart.join('/')}` +
        ` (${onHostsAtStart[0] === 160 ? 'applied before or during the outage' : 'not applied yet'}); observed ${Date.now() - t0} ms after the start`,
    );
    expect([await priorityOn(0), await priorityOn(1)]).toEqual([160, 105]);
    const after = await applies();
    // Written exactly once to each host. A retry of the pass whose status write failed applies
    // again and finds everything in place (unchanged): nothing is written twice.
    expect(after.changed - before.changed).toBe(2);
    expect(after.failed).toBe(before.failed);
    console.log(`edit before stop: applies changed +${after.changed - before.changed}, unchanged +${after.unchanged - before.unchanged} (a retry of a pass whose status write failed)`);
  });

  it('an edit made as soon as the API server is back, while the controller\'s watches still wait to reconnect, is applied once', async () => {
    const before = await applies();
    await restartApiserver(15_000);
    const editedAt = Date.now();
    const generation = await setPriorities(165, 108);
    // Where the controller's HAPair watch was at the edit, from its own log (for the record: on a
    // fast machine a retry may already have hit the API server while it warmed up).
    const retry = logLines
      .map((l) => JSON.parse(l) as { time: number; kind?: string; msg: string; retryInMs?: number })
      .filter((l) => l.kind === 'HAPair' && l.msg === 'watch failed: retrying' && l.time <= editedAt)
      .at(-1);
    const waitingMs = retry ? retry.time + retry.retryInMs! - editedAt : undefined;
    const t0 = Date.now();
    await observed(generation, 'the edit made right after the restart to be applied and observed');
    console.log(`edit at restart: the HAPair watch's next attempt was ${waitingMs ?? '?'} ms after the edit; observed ${Date.now() - t0} ms after it`);
    expect([await priorityOn(0), await priorityOn(1)]).toEqual([165, 108]);
    const after = await applies();
    expect(after.changed - before.changed).toBe(2);
    expect(after.failed).toBe(before.failed);
  });

  it('a failover during a 30 s outage: observed throughout (the last Secret copy), status written once the API is back, no applies from the re-list; an edit right after applies once', async () => {
    const before = await applies();
    const errorsBefore = await reconcileErrors();
    const resumedBefore = await restarts('unreachable');
    const failoverCount = (await getJson(`hap/${PAIR}`)).status?.failoverCount ?? 0;
    const generation = (await getJson(`hap/${PAIR}`)).metadata.generation;
    expect(await holdsVip(0)).toBe(true);
    let seenDuringOutageMs: number | undefined;
    const { stopMs, startMs } = await restartApiserver(OUTAGE_MS, async () => {
      const t0 = Date.now();
      await lab.hosts[0]!.run(['systemctl', 'stop', 'keepalived']);
      await eventually('the VIP on h2', async () => ((await holdsVip(1)) ? true : undefined), 20_000);
      // With the API server away the controller still observes the hosts: the move is in its metrics.
      await eventually('the controller to see the failover while the API server is down', async () => ((await gauge('ddi_ha_hapair_active_node', { name: PAIR, node: 'secondary' })) === 1 ? true : undefined), 20_000);
      seenDuringOutageMs = Date.now() - t0;
      expect(await gauge('ddi_ha_host_reachable', { name: 'h1' })).toBe(1);
      expect(await gauge('ddi_ha_host_reachable', { name: 'h2' })).toBe(1);
      // The status write could not be made: the pass failed and is retried.
      await eventually('failed passes', async () => ((await reconcileErrors()) > errorsBefore ? true : undefined), 20_000);
    });
    const t1 = Date.now();
    const hap = await eventually(
      'the failover in status after the restart',
      async () => {
        const p = await getJson(`hap/${PAIR}`);
        return p.status?.activeNode === 'secondary' ? p : undefined;
      },
      90_000,
      500,
    );
    console.log(`failover: in the controller's metrics ${seenDuringOutageMs} ms after keepalived stopped (API server down); in status ${Date.now() - t1} ms after the API server started (stopped in ${stopMs} ms, started in ${startMs} ms)`);
    expect(hap.status?.failoverCount).toBe(failoverCount + 1);
    expect(hap.metadata.generation).toBe(generation);
    // Every watcher came back (the watch resumed, or re-listed after a 410) and nothing was applied.
    const resumed = await restarts('unreachable');
    for (const kind of KINDS) expect(resumed[kind], kind).toBeGreaterThan(resumedBefore[kind] ?? 0);
    await sleep(2 * RESYNC_MS);
    expect(await applies()).toEqual(before);

    // Right after: an edit is applied, exactly once per host (and h1's keepalived, stopped, is started by it).
    const edited = await setPriorities(170, 110);
    const back = await observed(edited, 'the edit after the restart to be applied and observed', (p) => p.status?.activeNode === 'primary');
    expect([await priorityOn(0), await priorityOn(1)]).toEqual([170, 110]);
    expect(back.status?.failoverCount).toBe(failoverCount + 2);
    await sleep(2 * RESYNC_MS);
    const after = await applies();
    expect(after).toEqual({ changed: before.changed + 2, unchanged: before.unchanged, failed: before.failed });
  });
});

describe('etcd compacted while the watches are behind (410 Gone)', () => {
  it('the watchers re-list (watch_restarts_total{reason="expired"}), nothing is applied, and later edits still flow', async () => {
    const p = await getJson(`hap/${PAIR}`);
    const generation = p.metadata.generation;
    // Writes the controller does not watch move etcd's revision past every watch's resourceVersion.
    for (let i = 0; i < 10; i++) await kubectl.run(['create', 'configmap', `filler-${i}`, '-n', namespace, `--from-literal=i=${i}`]);
    const before = await applies();
    const expiredBefore = await restarts('expired');
    let compactedAt = 0;
    const { stopMs, startMs } = await restartApiserver(5_000, async () => {
      compactedAt = await cp.compactEtcd();
    });
    const t0 = Date.now();
    const expired = await eventually(
      'every watcher to get 410 and re-list',
      async () => {
        const now = await restarts('expired');
        return KINDS.every((k) => (now[k] ?? 0) > (expiredBefore[k] ?? 0)) ? now : undefined;
      },
      90_000,
      500,
    );
    console.log(`compaction at revision ${compactedAt}: every watcher re-listed after 410 within ${Date.now() - t0} ms of the start (stopped in ${stopMs} ms, started in ${startMs} ms); expired: ${JSON.stringify(expired)}`);
    // The re-list found nothing new: no pass applied anything, the pair stays as it was.
    await sleep(3 * RESYNC_MS);
    expect(await applies()).toEqual(before);
    const still = await getJson(`hap/${PAIR}`);
    expect(still.metadata.generation).toBe(generation);
    expect(condition(still, 'Ready')?.status).toBe('True');

    const edited = await setPriorities(180, 115);
    await observed(edited, 'an edit after the compaction to be applied and observed');
    expect([await priorityOn(0), await priorityOn(1)]).toEqual([180, 115]);
    const after = await applies();
    expect(after).toEqual({ changed: before.changed + 2, unchanged: before.unchanged, failed: before.failed });
  });

  it('no log line carries the SSH key', () => {
    const keyBody = lab.privateKey.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'))!;
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.some((l) => l.includes(keyBody))).toBe(false);
  });
});
