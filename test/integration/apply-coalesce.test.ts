// Applies to one host at the same time share one transaction (ADR 0034), on real lab hosts through
// the real SSH transport: one keepalived start (or reload) for all of them, and a file keepalived
// refuses still lands on the pair it belongs to.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DDIHost, HAPair } from '../../src/api/index.js';
import { applyHostFiles, type ApplyResult } from '../../src/apply/index.js';
import { renderKeepalivedPair } from '../../src/daemons/keepalived/index.js';
import type { RenderedFile } from '../../src/render/types.js';
import type { LabHost } from '../lab/lab.js';
import { type ApplyLab, labHaPair, eventually, hostSha256, interfaceAddresses, startApplyLab } from './apply-lab.js';

let env: ApplyLab;
let h1: LabHost;
let h2: LabHost;
let hosts: Map<string, DDIHost>;

const haPair = (name: string, virtualRouterID: number, vip: string): HAPair => labHaPair(h1, h2, name, virtualRouterID, vip);

const ownFile = (files: RenderedFile[], host: LabHost) => files.find((f) => f.host === host.name && f.path.startsWith('/etc/keepalived/ddi-ha.d/'))!;

/** Each pair's files applied to both hosts, every call made in the same tick, as concurrent reconciles make them. */
function applyAtOnce(fileSets: RenderedFile[][]): Promise<ApplyResult[][]> {
  return Promise.all(fileSets.map((files) => Promise.all([h1, h2].map((h, i) => applyHostFiles(env.sessions[i]!, files.filter((f) => f.host === h.name))))));
}

/** keepalived's "Started" and "Reloaded" lines in its journal on a host. */
async function keepalivedActions(host: LabHost): Promise<{ started: number; reloaded: number }> {
  const lines = (await host.run(['journalctl', '-u', 'keepalived.service', '--no-pager', '-o', 'cat'])).split('\n');
  return { started: lines.filter((l) => /^Started keepalived/.test(l)).length, reloaded: lines.filter((l) => /^Reloaded keepalived/.test(l)).length };
}

const holds = async (host: LabHost, vip: string) => (await interfaceAddresses(host)).includes(`${vip}/24`);

beforeAll(async () => {
  env = await startApplyLab(2);
  [h1, h2] = env.lab.hosts as [LabHost, LabHost];
  hosts = new Map(env.ddiHosts.map((h) => [h.metadata.name, h]));
});

afterAll(async () => {
  await env?.stop();
});

describe('HAPairs applied to the same hosts at the same time', () => {
  it('four pairs on fresh hosts: one transaction per host (keepalived started once), each pair told of its own file, every VIP on its primary', async () => {
    const pairs = [0, 1, 2, 3].map((i) => haPair(`vip-${i}`, 61 + i, env.lab.network.spare(i)));
    const rendered = pairs.map((p) => renderKeepalivedPair(p, hosts));
    const results = await applyAtOnce(rendered);
    for (const [k, [r1, r2]] of results.entries()) {
      for (const [r, h] of [[r1!, h1], [r2!, h2]] as const) {
        expect(r, JSON.stringify(r)).toMatchObject({ ok: true, reloaded: ['keepalived.service'] });
        expect(r.changed).toContain(ownFile(rendered[k]!, h).path);
        // The other pairs' files are theirs: not in this pair's result.
        for (const [j, other] of rendered.entries()) if (j !== k) expect(r.changed).not.toContain(ownFile(other, h).path);
        expect(r.notes).toContain('applied in one transaction with 3 other request(s) for this host');
      }
    }
    for (const h of [h1, h2]) expect(await keepalivedActions(h)).toEqual({ started: 1, reloaded: 0 });
    for (const p of pairs) expect(await eventually(() => holds(h1, p.spec.virtualIP.split('/')[0]!), 20_000)).toBe(true);
    for (const [k, files] of rendered.entries()) {
      const { createHash } = await import('node:crypto');
      const f = ownFile(files, h2);
      expect(await hostSha256(h2, f.path), pairs[k]!.metadata.name).toBe(createHash('sha256').update(f.content).digest('hex'));
    }
  });

  it('a file keepalived -t refuses, applied with a good pair: the refusal lands on its pair alone, and the good pair is applied', async () => {
    const good = haPair('vip-good', 71, env.lab.network.spare(4));
    const bad = haPair('vip-bad', 72, env.lab.network.spare(5));
    const goodFiles = renderKeepalivedPair(good, hosts);
    // keepalived 2.2.7 refuses a preempt_delay above 1000 s (exit 5); the schema never renders one.
    const badFiles = renderKeepalivedPair(bad, hosts).map((f) =>
      f.path.startsWith('/etc/keepalived/ddi-ha.d/') ? { ...f, content: f.content.replace(/virtual_router_id 72\n/, '$&  preempt_delay 1001\n') } : f,
    );
    expect(ownFile(badFiles, h1).content).toContain('preempt_delay 1001');
    const before = await keepalivedActions(h1);
    const [[g1], [b1, b2]] = (await applyAtOnce([goodFiles, badFiles])) as [ApplyResult[], ApplyResult[]];
    expect(g1, JSON.stringify(g1)).toMatchObject({ ok: true, changed: [ownFile(goodFiles, h1).path], reloaded: ['keepalived.service'] });
    expect(g1!.notes.join(' ')).not.toMatch(/one transaction/);
    for (const [r, h] of [[b1!, h1], [b2!, h2]] as const) {
      expect(r, JSON.stringify(r)).toMatchObject({ ok: false, changed: [], failure: { stage: 'validate' } });
      expect(r.failure!.message).toMatch(/keepalived -t/);
      expect(r.failure!.message).toContain('lab/vip-bad');
      expect((await h.exec(['test', '-e', ownFile(badFiles, h).path])).exitCode).toBe(1);
    }
    expect(await eventually(() => holds(h1, good.spec.virtualIP.split('/')[0]!), 20_000)).toBe(true);
    // One reload for the good pair's own transaction after the shared one was refused.
    expect(await keepalivedActions(h1)).toEqual({ started: before.started, reloaded: before.reloaded + 1 });
  });
});
