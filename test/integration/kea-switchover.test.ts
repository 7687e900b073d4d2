// Planned switchover of a Kea hot-standby relationship (KeaHACluster.spec.preferredPrimary, ADR
// 0033) through the in-process controller on the global-setup kube-apiserver and two lab hosts
// with real Kea 2.2. What Kea does is read on the hosts, independent of the operator's clients: a
// poller on h1 asks both Control Agents for status-get every 50 ms, and the test measures how
// long no peer served any scope (status-get local.scopes empty on both).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type Condition, type InProcessController, asYamlDocuments, keaLocalStatus, labHostObjects, labKeaHotStandby, startInProcessController } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-ksw-${Date.now().toString(36)}`;
const KEA = 'sw-kea';
let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let running: InProcessController | undefined;

type Json = { metadata: { generation: number }; status?: { conditions?: Condition[]; peers?: { name: string; role: string; state: string }[] } };
const getJson = async (): Promise<Json> => JSON.parse(await kubectl.run(['get', `kha/${KEA}`, '-n', namespace, '-o', 'json']));
const condition = (o: Json, type: string) => o.status?.conditions?.find((c) => c.type === type);
const statusUntil = (what: string, ready: (o: Json) => boolean, timeoutMs: number) =>
  eventually(what, async () => {
    const o = await getJson();
    return ready(o) ? o : undefined;
  }, timeoutMs, 500);

/** Kea's own role, state and scopes on lab host i (status-get with curl to its Control Agent). */
async function kea(i: number): Promise<string> {
  const local = await keaLocalStatus(lab, i);
  return local.state !== undefined ? `${local.role} ${local.state} [${(local.scopes ?? []).join(',')}]` : `no state in ${local.raw}`;
}

// Both agents every 50 ms, from h1, into /tmp/ksw-poll.log: "<epoch>|<h1 local>|<h2 local>".
// Only the lab's own addresses are interpolated (IPv4 literals from the lab network).
const pollScript = (a1: string, a2: string) => {
  const q = (a: string) => `curl -s -m 1 -X POST -H 'Content-Type: application/json' -d '{"command":"status-get","service":["dhcp4"]}' http://${a}:8000/ | grep -o '"local": {[^}]*}' | tr -d '\\n'`;
  return `rm -f /tmp/ksw-poll.log; while [ ! -e /tmp/ksw-poll.stop ]; do t=$(date +%s.%N); a=$(${q(a1)}); b=$(${q(a2)}); echo "$t|$a|$b" >> /tmp/ksw-poll.log; sleep 0.05; done`;
};
async function startPoll() {
  const [h1, h2] = lab.hosts as [Lab['hosts'][0], Lab['hosts'][0]];
  for (const a of [h1.address, h2.address]) expect(a).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  await h1.exec(['sh', '-c', `rm -f /tmp/ksw-poll.stop; (${pollScript(h1.address, h2.address)}) >/dev/null 2>&1 &`]);
}
/** Stops the poller; returns the transitions seen and the longest time in which no peer served a scope. */
async function stopPoll(label: string): Promise<{ longestGapS: number; totalGapS: number; transitions: string[] }> {
  const h1 = lab.hosts[0]!;
  await h1.run(['touch', '/tmp/ksw-poll.stop']);
  await new Promise((r) => setTimeout(r, 1_500));
  const rows = (await h1.run(['cat', '/tmp/ksw-poll.log'])).trim().split('\n').map((line) => {
    const [t, a, b] = line.split('|');
    const f = (s = '') => ({ state: /"state": "([^"]*)"/.exec(s)?.[1] ?? '-', role: /"role": "([^"]*)"/.exec(s)?.[1] ?? '-', scopes: /"scopes": \[([^\]]*)\]/.exec(s)?.[1]?.replace(/[\s"]/g, '') ?? '' });
    return { t: Number(t), a: f(a), b: f(b) };
  });
  const transitions: string[] = [];
  let gapStart: number | undefined;
  let longestGapS = 0;
  let totalGapS = 0;
  for (const r of rows) {
    const line = `h1 ${r.a.role}/${r.a.state}/[${r.a.scopes}]  h2 ${r.b.role}/${r.b.state}/[${r.b.scopes}]`;
    if (transitions.at(-1)?.endsWith(line) !== true) transitions.push(`${(r.t - rows[0]!.t).toFixed(2)} s ${line}`);
    const serving = r.a.scopes !== '' || r.b.scopes !== '';
    if (!serving && gapStart === undefined) gapStart = r.t;
    if (serving && gapStart !== undefined) {
      totalGapS += r.t - gapStart;
      longestGapS = Math.max(longestGapS, r.t - gapStart);
      gapStart = undefined;
    }
  }
  console.log(`${label}: ${rows.length} samples; no peer served for ${totalGapS.toFixed(2)} s in all, longest ${longestGapS.toFixed(2)} s\n  ${transitions.join('\n  ')}`);
  expect(rows.length).toBeGreaterThan(20);
  // The poller ran to the end with both serving again.
  expect(gapStart).toBeUndefined();
  return { longestGapS, totalGapS, transitions };
}

const patchPreferred = (value: string | undefined) =>
  kubectl.run(['patch', `kha/${KEA}`, '-n', namespace, '--type=json', '-p', JSON.stringify(value ? [{ op: 'add', path: '/spec/preferredPrimary', value }] : [{ op: 'remove', path: '/spec/preferredPrimary' }])]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-ksw-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  const kha = labKeaHotStandby(lab, namespace, KEA, 0, 1);
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: asYamlDocuments([...labHostObjects(lab, namespace), kha]) });
  running = startInProcessController({ kubeconfigPath: provided.kubeconfigPath, namespace, resyncMs: 3_000, pollMs: 2_000 });
  await kubectl.run(['wait', '--for=condition=Ready', `kha/${KEA}`, '-n', namespace, '--timeout=240s'], { timeoutMs: 250_000 });
}, 330_000);

afterAll(async () => {
  await running?.stop();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Kea hot-standby: planned switchover with spec.preferredPrimary', () => {
  it('admission refuses a backup or unknown peer, and the field outside hot-standby', async () => {
    await expect(kubectl.run(['patch', `kha/${KEA}`, '-n', namespace, '--type=merge', '-p', '{"spec":{"preferredPrimary":"nobody"}}'])).rejects.toThrow(
      'spec.preferredPrimary must name the primary or the standby peer',
    );
    await expect(
      kubectl.run(['patch', `kha/${KEA}`, '-n', namespace, '--type=merge', '-p', '{"spec":{"preferredPrimary":"server2","mode":"load-balancing"}}']),
    ).rejects.toThrow('spec.preferredPrimary is allowed only in mode hot-standby');
    expect((await getJson()).status?.peers?.map((p) => p.role)).toEqual(['primary', 'standby']);
  });

  it('preferredPrimary: server2 — h2 becomes primary, h1 standby, both hot-standby; Switchover SwitchedOver with the seconds; the gap is measured', async () => {
    expect([await kea(0), await kea(1)]).toEqual(['primary hot-standby [server1]', 'standby hot-standby []']);
    await startPoll();
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await patchPreferred('server2');
    const kha = await statusUntil('Switchover SwitchedOver and Ready', (k) => condition(k, 'Switchover')?.reason === 'SwitchedOver' && condition(k, 'Ready')?.status === 'True', 120_000);
    console.log(`switchover: Ready with SwitchedOver ${Date.now() - t0} ms after the patch; status says "${condition(kha, 'Switchover')!.message}"`);
    const gap = await stopPoll('switchover to server2');
    // Kea's own answer on the hosts: the roles are swapped, the new primary serves its scope.
    expect([await kea(0), await kea(1)]).toEqual(['standby hot-standby []', 'primary hot-standby [server2]']);
    expect(kha.status?.peers?.map((p) => `${p.name} ${p.role} ${p.state}`)).toEqual(['server1 standby hot-standby', 'server2 primary hot-standby']);
    const seconds = Number(/done (\d+) s after the switchover started/.exec(condition(kha, 'Switchover')!.message)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(120);
    // The hand-over ran first: h2 served alone (partner-in-maintenance) before any restart.
    expect(gap.transitions.some((t) => /h1 primary\/in-maintenance\/\[\]  h2 standby\/partner-in-maintenance\/\[server1\]/.test(t))).toBe(true);
  }, 180_000);

  it('removing the field switches back the same way: h1 primary again; Switchover SwitchedBack', async () => {
    await startPoll();
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await patchPreferred(undefined);
    const kha = await statusUntil('Switchover SwitchedBack and Ready', (k) => condition(k, 'Switchover')?.reason === 'SwitchedBack' && condition(k, 'Ready')?.status === 'True', 120_000);
    console.log(`switch back: Ready with SwitchedBack ${Date.now() - t0} ms after the patch; status says "${condition(kha, 'Switchover')!.message}"`);
    await stopPoll('switch back to server1');
    expect([await kea(0), await kea(1)]).toEqual(['primary hot-standby [server1]', 'standby hot-standby []']);
    expect(kha.status?.peers?.map((p) => `${p.name} ${p.role}`)).toEqual(['server1 primary', 'server2 standby']);
  }, 180_000);
});
