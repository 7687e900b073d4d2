// The host-events stream (issue 9 item 4): besides address changes, the one stream per host
// carries the journal's lines about the DDI units and keepalived's VRRP transitions, so a change
// that moves no address (keepalived stopped on the backup) reaches status at once. The resync is
// a minute here, so nothing but the stream can explain a status change within seconds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type Condition, type InProcessController, labPairManifests, startInProcessController } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-events-stream-${Date.now().toString(36)}`;
const PAIR = 'stream-vip';
const RESYNC_MS = 60_000;
const BOUND_MS = 5_000;

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let running: InProcessController | undefined;
const logLines = () => running!.logLines;

type Node = { host: string; vrrpState: string; holdsVIP: boolean };
type Json = { status?: { activeNode?: string; nodes?: Node[]; conditions?: Condition[] } };
const getPair = async (): Promise<Json> => JSON.parse(await kubectl.run(['get', `hap/${PAIR}`, '-n', namespace, '-o', 'json']));
const ready = (o: Json) => o.status?.conditions?.find((c) => c.type === 'Ready');
const node = (o: Json, host: string) => o.status?.nodes?.find((n) => n.host === host);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-host-events-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], {
    stdin: labPairManifests(lab, { namespace, name: PAIR, virtualIP: `${lab.network.spare(0)}/${lab.network.prefixLength}`, virtualRouterID: 93 }),
  });
  running = startInProcessController({ kubeconfigPath: provided.kubeconfigPath, namespace, resyncMs: RESYNC_MS });
  await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, '-n', namespace, '--timeout=180s'], { timeoutMs: 190_000 });
  // Both nodes settled (the backup reports BACKUP), so what follows starts from a quiet pair.
  await eventually('h2 to report BACKUP', async () => (node(await getPair(), 'h2')?.vrrpState === 'BACKUP' ? true : undefined), 30_000);
}, 240_000);

afterAll(async () => {
  await running?.stop();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the host-events stream', () => {
  it('shows keepalived stopped on the backup in status within seconds, with no address moving and a minute-long resync', async () => {
    expect((await getPair()).status?.activeNode).toBe('primary');
    const before = logLines().length;
    const t0 = Date.now();
    await lab.hosts[1]!.run(['systemctl', 'stop', 'keepalived']);
    const pair = await eventually(
      'the pair to report keepalived stopped on h2',
      async () => {
        const p = await getPair();
        return ready(p)?.reason === 'KeepalivedNotRunning' ? p : undefined;
      },
      BOUND_MS,
      50,
    );
    console.log(`keepalived stopped on the backup: in status ${Date.now() - t0} ms later (resync ${RESYNC_MS} ms)`);
    expect(node(pair, 'h2')).toMatchObject({ holdsVIP: false });
    expect(node(pair, 'h2')?.vrrpState).not.toBe('BACKUP');
    expect(pair.status?.activeNode).toBe('primary');
    expect(ready(pair)!.message).toContain('keepalived is not running on h2');
    // What woke the controller: the journal line on the stream (systemd's "Stopping ..." or
    // "Stopped ..."), not a resync.
    const woke = logLines()
      .slice(before)
      .map((l) => JSON.parse(l) as { time: number; why?: string })
      .filter((e) => /^journal: Stopp(ing|ed) keepalived/.test(e.why ?? ''));
    expect(woke.length).toBeGreaterThan(0);
    console.log(`the stream delivered "${woke[0]!.why}" ${woke[0]!.time - t0} ms after the stop`);
  });

  it('shows it back, and Ready again, within seconds of keepalived starting', async () => {
    const t0 = Date.now();
    await lab.hosts[1]!.run(['systemctl', 'start', 'keepalived']);
    const pair = await eventually(
      'the pair to be Ready with h2 BACKUP again',
      async () => {
        const p = await getPair();
        return ready(p)?.status === 'True' && node(p, 'h2')?.vrrpState === 'BACKUP' ? p : undefined;
      },
      BOUND_MS,
      50,
    );
    console.log(`keepalived started on the backup: Ready with h2 BACKUP ${Date.now() - t0} ms later`);
    expect(pair.status?.activeNode).toBe('primary');
  });

  it('shows the VIP on the secondary within seconds when the holder freezes, with the frozen node in doubt', async () => {
    const h1 = lab.hosts[0]!;
    expect((await getPair()).status?.activeNode).toBe('primary');
    const t0 = Date.now();
    await h1.pause();
    try {
      // VRRP's own time (three missed adverts, about 3.6 s) plus the stream and one pass, with the
      // frozen primary's probe given 1 s: far under its SSH session's dead-peer time (about 20 s).
      const pair = await eventually(
        'the pair to show the VIP on the secondary',
        async () => {
          const p = await getPair();
          return p.status?.activeNode === 'secondary' ? p : undefined;
        },
        12_000,
        50,
      );
      console.log(`primary frozen: the VIP on the secondary in status ${Date.now() - t0} ms after the pause`);
      expect(ready(pair)?.reason).toBe('HostUnreachable');
      expect(ready(pair)!.message).toMatch(/h1 has not answered its probe for 1\.0 s while a peer took the VIP/);
      expect(ready(pair)!.message).toContain('possible split brain');
    } finally {
      await h1.unpause();
    }
    await eventually(
      'the pair to be Ready on the primary again',
      async () => {
        const p = await getPair();
        return p.status?.activeNode === 'primary' && ready(p)?.status === 'True' ? true : undefined;
      },
      60_000,
      250,
    );
  }, 90_000);
});
