// Two real `ddi-ha controller --leader-elect` processes on the global-setup kube-apiserver and a
// two-host lab (issue 10): exactly one holds the coordination.k8s.io/v1 Lease and writes; the
// follower keeps its caches warm and writes nothing; the leader SIGKILLed while a failover happens
// on the hosts: the follower takes over and its status shows the failover within the lease duration
// plus 1 s; a leader frozen past its lease (SIGSTOP) wakes up not writing; SIGTERM hands over at
// once (the Lease is released). Host state comes from docker exec, leadership from the Lease itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { API_GROUP, API_GROUP_VERSION, API_VERSION } from '../../src/api/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type Replica, leaderGauge, reconcileCount, startReplica } from '../lab/controller-replica.js';
import { type Lab, startLab } from '../lab/lab.js';
import { interfaceAddresses } from './apply-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-le-${Date.now().toString(36)}`;
const PAIR = 'le-vip';
const LEASE = 'ddi-ha-operator';
// Shorter than the defaults (15 s, 10 s, 2 s) to keep the test short; same ratios as client-go's.
const LEASE_DURATION_S = 6;
const TIMING_FLAGS = ['--leader-elect-lease-duration', `${LEASE_DURATION_S}s`, '--leader-elect-renew-deadline', '4s', '--leader-elect-retry-period', '1s'];

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let coordination: CoordinationV1Api;
let custom: CustomObjectsApi;
const processes: Replica[] = [];

const startReplicaNamed = (name: string) =>
  startReplica({ name, kubeconfig: provided.kubeconfigPath, namespace, leaseName: LEASE, args: ['--resync', '5s', ...TIMING_FLAGS] }).then((r) => {
    processes.push(r);
    return r;
  });
const reconciles = reconcileCount;

async function lease() {
  const l = await coordination.readNamespacedLease({ namespace, name: LEASE });
  return { holder: l.spec?.holderIdentity ?? '', transitions: l.spec?.leaseTransitions ?? 0 };
}

async function pairStatus(): Promise<{ activeNode?: string; conditions?: { type: string; status: string; reason: string }[] }> {
  const hap = (await custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: 'hapairs', name: PAIR })) as { status?: object };
  return (hap.status ?? {}) as never;
}

const vip = () => `${lab.network.spare(0)}/${lab.network.prefixLength}`;

function manifests(): string {
  const meta = (name: string) => ({ name, namespace });
  const hosts = lab.hosts.map((h, i) => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'DDIHost',
    metadata: meta(`h${i + 1}`),
    spec: { address: h.sshHost, port: h.sshPort, credentialsSecretRef: { name: 'lab-ssh' }, hostKey: h.hostKeyLine, hostKeyPolicy: 'Pinned' },
  }));
  const pair = {
    apiVersion: API_GROUP_VERSION,
    kind: 'HAPair',
    metadata: meta(PAIR),
    spec: {
      primary: { host: 'h1', interface: lab.hosts[0]!.interface },
      secondary: { host: 'h2', interface: lab.hosts[1]!.interface },
      virtualIP: vip(),
      virtualRouterID: 83,
      services: { dns: false, dhcp: 'None' },
    },
  };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta('lab-ssh'), type: 'Opaque', stringData: { privateKey: lab.privateKey } },
    ...hosts,
    pair,
  ]
    .map((o) => stringify(o, { lineWidth: 0 }))
    .join('---\n');
}

const logOf = (r: Replica) => r.log();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-le-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(provided.kubeconfigPath);
  coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  custom = kubeConfig.makeApiClient(CustomObjectsApi);
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: manifests() });
});

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('two controller replicas with leader election, on a real kube-apiserver and lab', () => {
  let a: Replica;
  let b: Replica;

  it('one leads and writes; the other follows with warm caches and writes nothing', async () => {
    a = await startReplicaNamed('a');
    await eventually('a to hold the Lease', async () => ((await lease().catch(() => undefined))?.holder === a.identity ? true : undefined), 30_000);
    b = await startReplicaNamed('b');
    await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
    await eventually('b /readyz (every kind listed)', async () => ((await fetch(`http://127.0.0.1:${b.port}/readyz`)).status === 200 ? true : undefined), 30_000);
    // A few resyncs: the leader keeps reconciling, the follower never starts a pass.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await lease()).toMatchObject({ holder: a.identity });
    expect([await leaderGauge(a), await leaderGauge(b)]).toEqual([1, 0]);
    expect(await reconciles(a)).toBeGreaterThan(0);
    expect(await reconciles(b)).toBe(0);
    expect(logOf(b)).toContain('leader election: following');
    expect(logOf(b)).not.toMatch(/"msg":"(applied|reconciled)"/);
    expect(await pairStatus()).toMatchObject({ activeNode: 'primary' });
    // Events too come from the leader only (its identity as reportingInstance).
    const events = (JSON.parse(await kubectl.run(['get', 'events.events.k8s.io', '-n', namespace, '-o', 'json'])) as { items: { reason: string; reportingController: string; reportingInstance: string }[] }).items.filter(
      (e) => e.reportingController === 'ddi-ha.io/controller',
    );
    expect(events.map((e) => e.reason)).toContain('Applied');
    expect(events.filter((e) => e.reportingInstance !== a.identity)).toEqual([]);
  });

  it('the leader SIGKILLed while the VIP fails over on the hosts: the follower takes the Lease and its status shows the failover within the lease duration plus 1 s', async () => {
    const before = await lease();
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await lab.hosts[0]!.exec(['systemctl', 'stop', 'keepalived']);
    await a.exited;
    const shown = await eventually(
      'the failover in status',
      async () => ((await pairStatus()).activeNode === 'secondary' ? Date.now() : undefined),
      LEASE_DURATION_S * 1000 + 30_000,
      100,
    );
    const elapsed = shown - killedAt;
    console.log(`leader election: SIGKILL to the failover in the new leader's status: ${elapsed} ms (lease duration ${LEASE_DURATION_S} s)`);
    expect(await interfaceAddresses(lab.hosts[1]!)).toContain(vip());
    expect(await lease()).toEqual({ holder: b.identity, transitions: before.transitions + 1 });
    expect(await leaderGauge(b)).toBe(1);
    expect(elapsed, logOf(b)).toBeLessThanOrEqual(LEASE_DURATION_S * 1000 + 1_000);
    await lab.hosts[0]!.exec(['systemctl', 'start', 'keepalived']);
    await eventually('the VIP back on the primary in status', async () => ((await pairStatus()).activeNode === 'primary' ? true : undefined), 60_000);
  });

  it('a leader frozen past its lease (SIGSTOP) wakes up as a follower and writes nothing; the other replica leads meanwhile', async () => {
    a = await startReplicaNamed('a2');
    await eventually('a2 following', async () => (logOf(a).includes('leader election: following') ? true : undefined), 30_000);
    const pid = b.child.pid!;
    const reconcilesBefore = await reconciles(b);
    process.kill(pid, 'SIGSTOP');
    try {
      await eventually('a2 to take the Lease from the frozen leader', async () => ((await lease()).holder === a.identity ? true : undefined), LEASE_DURATION_S * 1000 + 15_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await eventually('b to notice it stopped leading', async () => (/stopped leading/.test(logOf(b)) ? true : undefined), 15_000);
    expect(await leaderGauge(b)).toBe(0);
    const afterWake = await reconciles(b);
    // At most the passes that were already queued when it froze ran on waking, and each wrote nothing: isLeader() was false at once.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await reconciles(b)).toBe(afterWake);
    expect(afterWake - reconcilesBefore).toBeLessThanOrEqual(4);
    expect(b.lines.slice(-200).join('\n')).not.toMatch(/"msg":"applied"/);
    expect(await lease()).toMatchObject({ holder: a.identity });
    expect(await leaderGauge(a)).toBe(1);
  });

  it('SIGTERM on the leader releases the Lease: the follower leads within a retry period, not a lease duration', async () => {
    const stoppedAt = Date.now();
    a.child.kill('SIGTERM');
    const led = await eventually('b to lead again', async () => ((await lease()).holder === b.identity ? Date.now() : undefined), 20_000, 100);
    console.log(`leader election: SIGTERM to the follower holding the Lease: ${led - stoppedAt} ms`);
    expect(await a.exited).toBe(0);
    expect(logOf(a)).toContain('leader election: Lease released');
    expect(led - stoppedAt).toBeLessThan(LEASE_DURATION_S * 1000);
    await eventually('b writes status again', async () => ((await reconciles(b)) > 0 && (await leaderGauge(b)) === 1 ? true : undefined), 15_000);
  });
});
