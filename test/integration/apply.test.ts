// The apply engine end to end on real lab hosts through the real SSH transport: keepalived HAPairs
// rendered by the keepalived module, applied to both hosts, observed on the hosts themselves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_GROUP_VERSION, type DDIHost, type HAPair, type KeaHACluster, keaHAClusterSpecSchema } from '../../src/api/index.js';
import { applyHostFiles, type ApplyResult, type RemovedFile } from '../../src/apply/index.js';
import { renderKeaCluster } from '../../src/daemons/kea/index.js';
import { keepalivedPairRemovals, renderKeepalivedPair } from '../../src/daemons/keepalived/index.js';
import type { RenderedFile } from '../../src/render/types.js';
import { SshTransport } from '../../src/ssh/index.js';
import type { LabHost } from '../lab/lab.js';
import { type ApplyLab, labHaPair, eventually, hostFileStamp, hostSha256, interfaceAddresses, labDDIHost, startApplyLab, unitSnapshot } from './apply-lab.js';

let env: ApplyLab;
let h1: LabHost;
let h2: LabHost;
let hosts: Map<string, DDIHost>;

const haPair = (name: string, virtualRouterID: number, vip: string): HAPair => labHaPair(h1, h2, name, virtualRouterID, vip);

const filesFor = (files: RenderedFile[], host: LabHost) => files.filter((f) => f.host === host.name);

/** Applies a pair's files on both hosts at once, as the operator's reconcilers would. */
async function applyPair(pair: HAPair, remove = false): Promise<[ApplyResult, ApplyResult]> {
  const files = renderKeepalivedPair(pair, hosts);
  const removals = keepalivedPairRemovals(pair);
  return (await Promise.all(
    [h1, h2].map((h, i) =>
      remove
        ? applyHostFiles(env.sessions[i]!, [], { remove: removals.filter((r) => r.host === h.name).map(({ host: _host, ...r }): RemovedFile => r) })
        : applyHostFiles(env.sessions[i]!, filesFor(files, h)),
    ),
  )) as [ApplyResult, ApplyResult];
}

const holds = async (host: LabHost, vip: string) => (await interfaceAddresses(host)).includes(`${vip}/24`);

let pairA: HAPair;
let pairB: HAPair;
let vipA: string;
let vipB: string;

beforeAll(async () => {
  env = await startApplyLab(2);
  [h1, h2] = env.lab.hosts as [LabHost, LabHost];
  hosts = new Map(env.ddiHosts.map((h) => [h.metadata.name, h]));
  vipA = env.lab.network.spare(0);
  vipB = env.lab.network.spare(1);
  pairA = haPair('vip-a', 51, vipA);
  pairB = haPair('vip-b', 52, vipB);
});

afterAll(async () => {
  await env?.stop();
});

describe('an HAPair applied to two fresh hosts', () => {
  it('writes the files, starts keepalived on both, and the VIP lands on the primary', async () => {
    const files = renderKeepalivedPair(pairA, hosts);
    const [r1, r2] = await applyPair(pairA);
    for (const [r, h] of [[r1, h1], [r2, h2]] as const) {
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, reloaded: ['keepalived.service'], unchanged: [], removed: [] });
      expect(r.changed).toEqual(filesFor(files, h).map((f) => f.path).sort());
      const unit = await unitSnapshot(h, 'keepalived.service');
      expect(unit).toMatchObject({ ActiveState: 'active', SubState: 'running' });
      expect((await h.exec(['systemctl', 'is-enabled', 'keepalived.service'])).stdout.trim()).toBe('enabled');
      for (const f of filesFor(files, h)) {
        const { createHash } = await import('node:crypto');
        expect(await hostSha256(h, f.path)).toBe(createHash('sha256').update(f.content).digest('hex'));
        expect((await h.run(['stat', '-c', '%a %U:%G', '--', f.path])).trim()).toBe(`${f.mode.toString(8)} root:root`);
      }
    }
    expect(await eventually(() => holds(h1, vipA), 20_000)).toBe(true);
    expect(await holds(h2, vipA)).toBe(false);
  });

  it('applied again, writes nothing and reloads nothing (checked on the hosts)', async () => {
    const files = renderKeepalivedPair(pairA, hosts);
    const before = await Promise.all(
      [h1, h2].map(async (h) => ({
        unit: await unitSnapshot(h, 'keepalived.service'),
        stamps: await Promise.all(filesFor(files, h).map((f) => hostFileStamp(h, f.path))),
        journal: (await h.run(['journalctl', '-u', 'keepalived.service', '--no-pager', '-o', 'cat'])).split('\n').length,
      })),
    );
    const results = await applyPair(pairA);
    for (const [i, h] of [h1, h2].entries()) {
      expect(results[i]).toMatchObject({ ok: true, changed: [], reloaded: [], removed: [] });
      expect(results[i]!.unchanged).toEqual(filesFor(files, h).map((f) => f.path).sort());
      const after = {
        unit: await unitSnapshot(h, 'keepalived.service'),
        stamps: await Promise.all(filesFor(files, h).map((f) => hostFileStamp(h, f.path))),
        journal: (await h.run(['journalctl', '-u', 'keepalived.service', '--no-pager', '-o', 'cat'])).split('\n').length,
      };
      // Same process, same start, same file inodes and mtimes, and no "Reloading" in the journal.
      expect(after).toEqual(before[i]);
      expect(before[i]!.unit.MainPID).toBeGreaterThan(0);
    }
    expect(await holds(h1, vipA)).toBe(true);
  });
});

describe('two HAPairs on the same hosts', () => {
  it('a second pair (another VRID) is added with a reload: both VIPs on the primary, same keepalived process', async () => {
    const pidBefore = (await unitSnapshot(h1, 'keepalived.service')).MainPID;
    const shaA = await hostSha256(h1, renderKeepalivedPair(pairA, hosts).find((f) => f.host === h1.name && f.ownership === 'owned')!.path);
    const [r1, r2] = await applyPair(pairB);
    const ownB1 = renderKeepalivedPair(pairB, hosts).find((f) => f.host === h1.name && f.ownership === 'owned')!;
    expect(r1, JSON.stringify(r1)).toMatchObject({ ok: true, changed: [ownB1.path], reloaded: ['keepalived.service'] });
    expect(r2.ok, JSON.stringify(r2)).toBe(true);
    expect(await eventually(() => holds(h1, vipB), 20_000)).toBe(true);
    expect(await holds(h1, vipA)).toBe(true);
    expect(await holds(h2, vipB)).toBe(false);
    expect((await unitSnapshot(h1, 'keepalived.service')).MainPID).toBe(pidBefore);
    expect(await hostSha256(h1, renderKeepalivedPair(pairA, hosts).find((f) => f.host === h1.name && f.ownership === 'owned')!.path)).toBe(shaA);
  });

  it('deleting one pair (deletionPolicy Remove) removes only its file; the other keeps running with its VIP', async () => {
    const fileA1 = renderKeepalivedPair(pairA, hosts).find((f) => f.host === h1.name && f.ownership === 'owned')!;
    const fileB1 = renderKeepalivedPair(pairB, hosts).find((f) => f.host === h1.name && f.ownership === 'owned')!;
    const fileB2 = renderKeepalivedPair(pairB, hosts).find((f) => f.host === h2.name && f.ownership === 'owned')!;
    const shaA = await hostSha256(h1, fileA1.path);
    const pidBefore = (await unitSnapshot(h1, 'keepalived.service')).MainPID;

    const [r1, r2] = await applyPair(pairB, true);

    expect(r1, JSON.stringify(r1)).toMatchObject({ ok: true, changed: [], removed: [fileB1.path], reloaded: ['keepalived.service'] });
    expect(r2, JSON.stringify(r2)).toMatchObject({ ok: true, removed: [fileB2.path] });
    expect(await hostSha256(h1, fileB1.path)).toBe('absent');
    expect(await hostSha256(h2, fileB2.path)).toBe('absent');
    expect(await hostSha256(h1, `${fileB1.path}.ddi-ha-bak`)).toBe('absent');
    expect(await hostSha256(h1, fileA1.path)).toBe(shaA);
    expect(await eventually(async () => !(await holds(h1, vipB)), 20_000)).toBe(true);
    expect(await holds(h1, vipA)).toBe(true);
    expect(await unitSnapshot(h1, 'keepalived.service')).toMatchObject({ ActiveState: 'active', SubState: 'running', MainPID: pidBefore });

    // Removing it again finds nothing to do.
    const [again] = await applyPair(pairB, true);
    expect(again).toMatchObject({ ok: true, removed: [], reloaded: [], unchanged: [fileB1.path] });
  });

  it('deleting a pair with deletionPolicy Retain leaves its instance on the hosts: the VIP stays', async () => {
    const vipC = env.lab.network.spare(2);
    const pairC = haPair('vip-c', 53, vipC);
    pairC.spec = { ...pairC.spec, deletionPolicy: 'Retain' };
    const [added1, added2] = await applyPair(pairC);
    expect([added1.ok, added2.ok], JSON.stringify([added1, added2])).toEqual([true, true]);
    expect(await eventually(() => holds(h1, vipC), 20_000)).toBe(true);
    const fileC1 = renderKeepalivedPair(pairC, hosts).find((f) => f.host === h1.name && f.ownership === 'owned')!;
    const shaC = await hostSha256(h1, fileC1.path);

    const [r1, r2] = await applyPair(pairC, true);

    for (const r of [r1, r2]) expect(r, JSON.stringify(r)).toMatchObject({ ok: true, changed: [], removed: [], reloaded: [] });
    expect(await hostSha256(h1, fileC1.path)).toBe(shaC);
    expect(await holds(h1, vipC)).toBe(true);
  });

  it('removing a pair from a host whose keepalived is stopped deletes the file and does not start keepalived', async () => {
    const fileA2 = renderKeepalivedPair(pairA, hosts).find((f) => f.host === h2.name && f.ownership === 'owned')!;
    await h2.stopService('keepalived.service');
    const removals = keepalivedPairRemovals(pairA)
      .filter((r) => r.host === h2.name)
      .map(({ host: _host, ...r }): RemovedFile => r);
    const result = await applyHostFiles(env.sessions[1]!, [], { remove: removals });
    expect(result, JSON.stringify(result)).toMatchObject({ ok: true, removed: [fileA2.path], reloaded: [] });
    expect(result.notes.join(' ')).toMatch(/keepalived\.service .* is not running; the removal needs no reload/);
    expect(await hostSha256(h2, fileA2.path)).toBe('absent');
    expect((await unitSnapshot(h2, 'keepalived.service')).ActiveState).toBe('inactive');
  });
});

describe('through sudo', () => {
  it('a non-root user with sudo -n applies the same way: root-owned files, the lock released, a no-op after', async () => {
    const transport = new SshTransport();
    try {
      const viaSudo = labDDIHost(h1);
      viaSudo.spec = { ...viaSudo.spec, user: env.lab.users.sudo, sudo: true };
      const session = await transport.session(viaSudo, { privateKey: env.lab.privateKey });
      const files = filesFor(renderKeepalivedPair(pairA, hosts), h1);
      const own = files.find((f) => f.ownership === 'owned')!;
      const changed = files.map((f) => (f === own ? { ...f, content: `${f.content}# applied through sudo\n` } : f));
      const result = await applyHostFiles(session, changed);
      expect(result, JSON.stringify(result)).toMatchObject({ ok: true, changed: [own.path], reloaded: ['keepalived.service'] });
      expect((await h1.run(['stat', '-c', '%U:%G %a', '--', own.path])).trim()).toBe('root:root 644');
      expect(await applyHostFiles(session, changed)).toMatchObject({ ok: true, changed: [], reloaded: [] });
      // The lock holder (flock, timeout, sh) is gone once the apply returns.
      expect((await h1.exec(['pgrep', '-f', 'ddi-ha-lock'])).stdout.trim()).toBe('');
      expect(await holds(h1, vipA)).toBe(true);
    } finally {
      await transport.closeAll();
    }
  });
});

describe('a KeaHACluster (the same protocol, Kea\'s checker with its scratch server)', () => {
  it('restarts kea-dhcp4 and the agent on both peers, and a second apply changes nothing', async () => {
    const cluster: KeaHACluster = {
      apiVersion: API_GROUP_VERSION,
      kind: 'KeaHACluster',
      metadata: { name: 'kea', namespace: 'lab' },
      spec: keaHAClusterSpecSchema.parse({
        mode: 'hot-standby',
        peers: [
          { name: 'server1', host: h1.name, role: 'primary' },
          { name: 'server2', host: h2.name, role: 'standby' },
        ],
      }),
    };
    const files = renderKeaCluster(cluster, hosts);
    const apply = () => Promise.all([h1, h2].map((h, i) => applyHostFiles(env.sessions[i]!, filesFor(files, h))));
    const first = await apply();
    for (const [i, h] of [h1, h2].entries()) {
      expect(first[i], JSON.stringify(first[i])).toMatchObject({ ok: true, reloaded: ['kea-dhcp4-server.service', 'kea-ctrl-agent.service'] });
      expect(first[i]!.changed).toEqual(['/etc/kea/kea-ctrl-agent.conf', '/etc/kea/kea-dhcp4.conf']);
      for (const unit of ['kea-dhcp4-server.service', 'kea-ctrl-agent.service'] as const) {
        expect(await unitSnapshot(h, unit)).toMatchObject({ ActiveState: 'active', SubState: 'running', NRestarts: 0 });
      }
    }
    const pids = await Promise.all([h1, h2].map((h) => unitSnapshot(h, 'kea-dhcp4-server.service')));
    const again = await apply();
    expect(again.map((r) => [r.ok, r.changed, r.reloaded])).toEqual([
      [true, [], []],
      [true, [], []],
    ]);
    expect(await Promise.all([h1, h2].map((h) => unitSnapshot(h, 'kea-dhcp4-server.service')))).toEqual(pids);
  });
});
