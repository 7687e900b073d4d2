// Client-side rate limits (issue 9 item 1): the controller opens SSH connections and sends API
// requests at its configured pace, however many objects want them at once. Measured on the real
// things: each host's sshd log says when the controller's connection was accepted, and a watch on
// the real kube-apiserver says when each status write landed. The limits are set low (2/s, burst
// 1) so that the pace is far from what the lab does unlimited (every host at once).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_GROUP_VERSION } from '../../src/api/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type InProcessController, labPairManifests, startInProcessController } from './controller-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-rate-${Date.now().toString(36)}`;
const RATE = { perSecond: 2, burst: 1 };

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let running: InProcessController | undefined;
const statusWrites: number[] = [];
let stopWatch: (() => void) | undefined;

/** When sshd on the host accepted a publickey login (epoch ms; the containers share this machine's clock). */
async function acceptedAt(i: number): Promise<number[]> {
  // exec, not run: journalctl --grep exits 1 when nothing matches yet.
  const { stdout } = await lab.hosts[i]!.exec(['journalctl', '-u', 'ssh', '-o', 'short-unix', '--no-pager', '--grep', 'Accepted publickey']);
  return stdout
    .split('\n')
    .map((l) => Number.parseFloat(l.split(' ')[0] ?? ''))
    .filter((t) => Number.isFinite(t))
    .map((t) => t * 1000);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-rate-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 4 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], {
    stdin: labPairManifests(lab, { namespace, name: 'rate-vip', virtualIP: `${lab.network.spare(0)}/${lab.network.prefixLength}`, virtualRouterID: 94 }),
  });
  // Every status write the API server accepts, as a watch sees it (MODIFIED events of objects
  // with a status: nothing but the controller writes here), timed on arrival.
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(provided.kubeconfigPath);
  const watch = new Watch(kubeConfig);
  const requests = await Promise.all(
    ['ddihosts', 'hapairs'].map((plural) =>
      watch.watch(
        `/apis/${API_GROUP_VERSION}/namespaces/${namespace}/${plural}`,
        {},
        (type: string, object: { status?: unknown }) => {
          if (type === 'MODIFIED' && object.status) statusWrites.push(Date.now());
        },
        () => undefined,
      ),
    ),
  );
  stopWatch = () => requests.forEach((r) => r.abort());
  await new Promise((r) => setTimeout(r, 1_000)); // the watch is established
}, 240_000);

afterAll(async () => {
  stopWatch?.();
  await running?.stop();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('client-side rate limits of the controller', () => {
  it('opens the SSH connections of four hosts one every half second, and spaces its API writes the same way', async () => {
    const before = await Promise.all(lab.hosts.map((_, i) => acceptedAt(i)));
    const started = Date.now();
    running = startInProcessController({ kubeconfigPath: provided.kubeconfigPath, namespace, resyncMs: 60_000, kubeApiRate: RATE, sshConnectRate: RATE });
    await kubectl.run(['wait', '--for=condition=Ready', 'hap/rate-vip', 'ddih/h1', 'ddih/h2', 'ddih/h3', 'ddih/h4', '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });

    const firsts = (await Promise.all(lab.hosts.map((_, i) => acceptedAt(i))))
      .map((all, i) => all.filter((t) => !before[i]!.includes(t) && t >= started - 1_000)[0])
      .filter((t): t is number => t !== undefined)
      .sort((a, b) => a - b);
    expect(firsts).toHaveLength(4);
    console.log(`SSH connections accepted at +${firsts.map((t) => Math.round(t - firsts[0]!)).join(', +')} ms (limit ${RATE.perSecond}/s, burst ${RATE.burst})`);
    // A token every 500 ms: the fourth connection starts 1.5 s after the first (unlimited, all four
    // start at once). Each handshake's own time (tens to hundreds of ms on a loaded machine) blurs
    // the single gaps, not the span.
    expect(firsts[3]! - firsts[0]!).toBeGreaterThanOrEqual(1_200);

    // Five hosts' worth of status writes (4 DDIHosts, the pair, some twice) at most 2/s after one burst:
    // n writes span at least (n - 1 - burst) / rate seconds, whatever the watch's delivery bunching.
    expect(statusWrites.length).toBeGreaterThanOrEqual(5);
    const n = statusWrites.length;
    const spanMs = statusWrites[n - 1]! - statusWrites[0]!;
    console.log(`${n} status writes over ${spanMs} ms (limit ${RATE.perSecond}/s, burst ${RATE.burst})`);
    expect(spanMs).toBeGreaterThanOrEqual(((n - 1 - RATE.burst) / RATE.perSecond) * 1000 - 250);
  });
});
