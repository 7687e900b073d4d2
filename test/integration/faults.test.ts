// The apply engine under faults, on real lab hosts through the real SSH transport: configs the
// daemons reject, configs they accept but cannot run, SSH connections cut mid-apply, and two
// appliers racing for one host. Every verdict is taken on the host (sha256, PIDs, systemd), over
// `docker exec`, independent of the SSH session under test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_GROUP_VERSION, type DDIHost, type DhcpFailoverPeer, type HAPair, dhcpFailoverPeerSpecSchema, haPairSpecSchema } from '../../src/api/index.js';
import { type ApplyResult, applyHostFiles } from '../../src/apply/index.js';
import { ensureIncludeLine, generateOmapiKey, removeIncludeLine, renderDhcpFailover } from '../../src/daemons/dhcpd/index.js';
import { renderKeepalivedPair } from '../../src/daemons/keepalived/index.js';
import type { HostSession } from '../../src/exec/host-io.js';
import type { RenderedFile } from '../../src/render/types.js';
import { SshTransport } from '../../src/ssh/index.js';
import type { LabHost } from '../lab/lab.js';
import { type ApplyLab, cutSshConnections, dhcpdPid, eventually, hostSha256, startApplyLab, throttleTrafficTo, unitSnapshot } from './apply-lab.js';

let env: ApplyLab;
let h1: LabHost;
let h2: LabHost;
let s1: HostSession;
let dhcpdFiles: RenderedFile[];
const OMAPI = { name: 'omapi-faults', ...generateOmapiKey() };

function failoverPeer(subnet: string, pool: [string, string]): DhcpFailoverPeer {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'DhcpFailoverPeer',
    metadata: { name: 'faults', namespace: 'lab' },
    spec: dhcpFailoverPeerSpecSchema.parse({
      primary: { host: h1.name, address: h1.address },
      secondary: { host: h2.name, address: h2.address },
      split: 128,
      subnets: [{ subnet, pools: [{ range: pool }] }],
    }),
  };
}

function renderDhcpdFor(host: LabHost, peer: DhcpFailoverPeer): RenderedFile[] {
  const hosts = new Map<string, DDIHost>(env.ddiHosts.map((h) => [h.metadata.name, h]));
  return renderDhcpFailover(peer, hosts, OMAPI).filter((f) => f.host === host.name);
}

const prefix = () => env.lab.network.subnet.replace(/\.0\/24$/, '');
const includeOf = (files: RenderedFile[]) => files.find((f) => f.ownership === 'owned')!;
const mainOf = (files: RenderedFile[]) => files.find((f) => f.ownership === 'patched')!;
const withContent = (files: RenderedFile[], path: string, content: string) => files.map((f) => (f.path === path ? { ...f, content } : f));

async function noLeftovers(host: LabHost): Promise<string> {
  const r = await host.exec(['sh', '-c', 'ls -d /etc/dhcp/*.ddi-ha-new /etc/dhcp/ddi-ha/*.ddi-ha-new /etc/dhcp/.ddi-ha-check.* /run/.ddi-ha-check.* /etc/kea/*.ddi-ha-new 2>/dev/null; true']);
  return r.stdout.trim();
}

beforeAll(async () => {
  env = await startApplyLab(2);
  [h1, h2] = env.lab.hosts as [LabHost, LabHost];
  s1 = env.sessions[0]!;
  dhcpdFiles = renderDhcpdFor(h1, failoverPeer(env.lab.network.subnet, [`${prefix()}.100`, `${prefix()}.150`]));
  const first = await applyHostFiles(s1, dhcpdFiles);
  expect(first, JSON.stringify(first)).toMatchObject({ ok: true, reloaded: ['isc-dhcp-server.service'] });
  expect(await dhcpdPid(h1)).toBeGreaterThan(0);
});

afterAll(async () => {
  await env?.stop();
});

describe('a config the daemon rejects never reaches the live file', () => {
  it('dhcpd: a syntax error in the include file leaves both files byte-identical and dhcpd running', async () => {
    const include = includeOf(dhcpdFiles);
    const main = mainOf(dhcpdFiles);
    const before = { include: await hostSha256(h1, include.path), main: await hostSha256(h1, main.path), pid: await dhcpdPid(h1) };

    const broken = withContent(dhcpdFiles, include.path, `${include.content}\nthis is not dhcpd syntax;\n`);
    const result = await applyHostFiles(s1, broken);

    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject({ stage: 'validate', path: include.path, service: 'isc-dhcp-server.service' });
    expect(result.failure!.message).toContain(include.path);
    expect(result.failure!.message).toContain('lab/faults');
    expect(result.failure!.checkerOutput).toMatch(/line \d+/);
    expect(result.changed).toEqual([]);
    expect(result.reloaded).toEqual([]);
    expect(result.rolledBack).toBeUndefined();
    expect({ include: await hostSha256(h1, include.path), main: await hostSha256(h1, main.path), pid: await dhcpdPid(h1) }).toEqual(before);
    expect((await h1.exec(['kill', '-0', String(before.pid)])).exitCode).toBe(0);
    expect(await noLeftovers(h1)).toBe('');
  });
  it('keepalived: a VRID out of range in the pair file leaves every keepalived file byte-identical and keepalived running', async () => {
    const hosts = new Map<string, DDIHost>(env.ddiHosts.map((h) => [h.metadata.name, h]));
    const pair: HAPair = {
      apiVersion: API_GROUP_VERSION,
      kind: 'HAPair',
      metadata: { name: 'faults-vip', namespace: 'lab' },
      spec: haPairSpecSchema.parse({
        primary: { host: h2.name, interface: h2.interface },
        secondary: { host: h1.name, interface: h1.interface },
        virtualIP: `${env.lab.network.spare(30)}/24`,
        virtualRouterID: 61,
        services: {},
      }),
    };
    const files = renderKeepalivedPair(pair, hosts).filter((f) => f.host === h2.name);
    const s2 = env.sessions[1]!;
    const good = await applyHostFiles(s2, files);
    expect(good, JSON.stringify(good)).toMatchObject({ ok: true, reloaded: ['keepalived.service'] });
    const before = { unit: await unitSnapshot(h2, 'keepalived.service'), sha: await Promise.all(files.map((f) => hostSha256(h2, f.path))) };
    expect(before.unit.MainPID).toBeGreaterThan(0);

    const own = files.find((f) => f.ownership === 'owned')!;
    expect(own.content).toMatch(/virtual_router_id 61/);
    const broken = files.map((f) => (f === own ? { ...f, content: f.content.replace('virtual_router_id 61', 'virtual_router_id 999') } : f));
    const result = await applyHostFiles(s2, broken);

    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject({ stage: 'validate', path: own.path, service: 'keepalived.service' });
    expect(result.failure!.message).toContain(own.path);
    expect(result.failure!.message).toMatch(/virtual_router_id|999/);
    expect(result.reloaded).toEqual([]);
    const after = { unit: await unitSnapshot(h2, 'keepalived.service'), sha: await Promise.all(files.map((f) => hostSha256(h2, f.path))) };
    expect(after).toEqual(before);
    expect(await hostSha256(h2, `${own.path}.ddi-ha-new`)).toBe('absent');
    expect((await h2.run(['sh', '-c', 'ls -d /run/.ddi-ha-check.* 2>/dev/null; true'])).trim()).toBe('');
  });
});

describe('a config the checker accepts but the daemon cannot run is rolled back', () => {
  it('dhcpd: a subnet that is not on eth0 passes dhcpd -t, the restart fails, and the old files come back', async () => {
    const include = includeOf(dhcpdFiles);
    const main = mainOf(dhcpdFiles);
    const before = { include: await hostSha256(h1, include.path), main: await hostSha256(h1, main.path) };
    const elsewhere = renderDhcpdFor(h1, failoverPeer('198.19.250.0/24', ['198.19.250.100', '198.19.250.150']));

    const result = await applyHostFiles(s1, elsewhere);

    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject({ stage: 'reload', service: 'isc-dhcp-server.service', path: include.path });
    expect(result.failure!.message).toMatch(/systemctl restart isc-dhcp-server\.service failed/);
    expect(result.failure!.journal).toMatch(/No subnet declaration for eth0|check syslog/);
    expect(result.changed).toEqual([include.path]);
    expect(result.rolledBack).toMatchObject({ ok: true });
    expect(result.rolledBack!.message).toContain(`restored ${include.path}`);
    expect({ include: await hostSha256(h1, include.path), main: await hostSha256(h1, main.path) }).toEqual(before);
    expect(await unitSnapshot(h1, 'isc-dhcp-server.service')).toMatchObject({ ActiveState: 'active', SubState: 'running' });
    expect(await dhcpdPid(h1)).toBeGreaterThan(0);
    expect(await noLeftovers(h1)).toBe('');
  });

  it('kea-ctrl-agent: an http-host the host does not have passes kea-ctrl-agent -t, crash-loops, fails verify, and is rolled back and stopped', async () => {
    const path = '/etc/kea/kea-ctrl-agent.conf';
    const stock = await h1.run(['cat', path]);
    expect(stock).toContain('"http-host": "127.0.0.1"');
    const before = await hostSha256(h1, path);
    const agent: RenderedFile = {
      host: h1.name,
      path,
      content: stock.replace('"http-host": "127.0.0.1"', `"http-host": "${env.lab.network.spare(40)}"`),
      mode: 0o644,
      ownership: 'owned',
      service: 'kea-ctrl-agent.service',
      check: { kind: 'kea-ctrl-agent' },
      owner: 'lab/faults-agent',
    };

    const result = await applyHostFiles(s1, [agent]);

    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject({ stage: 'verify', service: 'kea-ctrl-agent.service', path });
    expect(result.failure!.message).toMatch(/restart loop|did not stay up|failed/);
    expect(result.reloaded).toEqual(['kea-ctrl-agent.service']);
    expect(result.rolledBack).toMatchObject({ ok: true });
    expect(result.rolledBack!.message).toMatch(/kea-ctrl-agent\.service is stopped again/);
    expect(await hostSha256(h1, path)).toBe(before);
    expect((await unitSnapshot(h1, 'kea-ctrl-agent.service')).ActiveState).toMatch(/inactive/);
    expect((await h1.exec(['systemctl', 'is-enabled', 'kea-ctrl-agent.service'])).stdout.trim()).toBe('disabled');
  });
});

describe('the live file is never clobbered behind anyone\'s back', () => {
  it('an edit on the host between read and swap stops the apply and keeps the edit', async () => {
    const main = mainOf(dhcpdFiles);
    const setFile = (text: string) => h1.run(['sh', '-c', 'printf "%s" "$1" > "$2"', 'sh', text, main.path]);
    // The admin removed our include line, so the apply must patch dhcpd.conf again ...
    const withoutLine = removeIncludeLine(await h1.run(['cat', main.path]), main.patch!.marker);
    await setFile(withoutLine);
    // ... and edits the file once more while the apply runs.
    const edited = `${withoutLine}# added by the admin during the apply\n`;
    const result = await applyHostFiles(s1, dhcpdFiles, { hooks: { afterStage: () => setFile(edited).then(() => undefined) } });
    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject({ stage: 'swap', path: main.path });
    expect(result.failure!.message).toMatch(/\/etc\/dhcp\/dhcpd\.conf on DDIHost .* changed while this apply ran \(someone edited it\); nothing was replaced/);
    expect(await h1.run(['cat', main.path])).toBe(edited);
    expect(await noLeftovers(h1)).toBe('');
    // The next apply rebases on the admin's edit.
    const next = await applyHostFiles(s1, dhcpdFiles);
    expect(next, JSON.stringify(next)).toMatchObject({ ok: true, changed: [main.path], reloaded: ['isc-dhcp-server.service'] });
    expect(await h1.run(['cat', main.path])).toBe(ensureIncludeLine(edited, main.patch!.line, main.patch!.marker));
  });

  it('a masked unit is refused before anything is swapped', async () => {
    const path = '/etc/kea/kea-ctrl-agent.conf';
    const before = await hostSha256(h1, path);
    await h1.run(['systemctl', 'mask', 'kea-ctrl-agent.service']);
    try {
      const stock = await h1.run(['cat', path]);
      const result = await applyHostFiles(s1, [
        { host: h1.name, path, content: `${stock}\n`, mode: 0o644, ownership: 'owned', service: 'kea-ctrl-agent.service', check: { kind: 'kea-ctrl-agent' }, owner: 'lab/masked' },
      ]);
      expect(result).toMatchObject({ ok: false, changed: [], reloaded: [], failure: { stage: 'validate', service: 'kea-ctrl-agent.service' } });
      expect(result.failure!.message).toMatch(/kea-ctrl-agent\.service is masked; unmask it/);
      expect(await hostSha256(h1, path)).toBe(before);
    } finally {
      await h1.run(['systemctl', 'unmask', 'kea-ctrl-agent.service']);
    }
  });
});

describe('an SSH connection cut mid-apply never leaves a half-written target', () => {
  const blockSsh = (h: LabHost) => h.run(['iptables', '-I', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'DROP']);
  const unblockSsh = (h: LabHost) => h.run(['iptables', '-D', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'DROP']);
  const reconnected = () =>
    eventually(async () => {
      try {
        await (s1 as unknown as { connect(): Promise<void> }).connect();
        return true;
      } catch {
        return false;
      }
    }, 60_000, 500);

  it('while the new file is still being staged: the target keeps its old bytes', async () => {
    const include = includeOf(dhcpdFiles);
    const before = await hostSha256(h1, include.path);
    // 1 MB at 2 Mbit/s takes about 4 s: long enough to cut it for sure mid-stream.
    const big = `${include.content}\n${'# padding to make the transfer slow enough to cut\n'.repeat(20_000)}`;
    const unthrottle = await throttleTrafficTo(h1, '2mbit');
    try {
      const applying = applyHostFiles(s1, withContent(dhcpdFiles, include.path, big));
      const staged = `${include.path}.ddi-ha-new`;
      const seen = await eventually(async () => Number((await h1.exec(['stat', '-c', '%s', staged])).stdout.trim() || 0) > 65_536, 30_000, 100);
      expect(seen).toBe(true);
      await blockSsh(h1);
      await cutSshConnections(h1);
      const result = await applying;
      expect(result.ok, JSON.stringify(result)).toBe(false);
      expect(result.failure!.stage).toBe('stage');
      expect(result.changed).toEqual([]);
      expect(await hostSha256(h1, include.path)).toBe(before);
    } finally {
      await unblockSsh(h1).catch(() => undefined);
      await unthrottle();
      expect(await reconnected()).toBe(true);
    }
    // The next apply finds the partial staged file, removes it, and has nothing else to do.
    const next = await applyHostFiles(s1, dhcpdFiles);
    expect(next).toMatchObject({ ok: true, changed: [], reloaded: [] });
    expect(next.notes.join(' ')).toMatch(/left by an apply that was cut off/);
    expect(await noLeftovers(h1)).toBe('');
  });

  it('between stage and swap: the target keeps its old bytes', async () => {
    const include = includeOf(dhcpdFiles);
    const before = await hostSha256(h1, include.path);
    const pidBefore = await dhcpdPid(h1);
    try {
      const result = await applyHostFiles(s1, withContent(dhcpdFiles, include.path, `${include.content}# cut between stage and swap\n`), {
        hooks: {
          afterStage: async () => {
            await blockSsh(h1);
            await cutSshConnections(h1);
          },
        },
      });
      expect(result.ok, JSON.stringify(result)).toBe(false);
      expect(result.failure!.stage).toBe('validate');
      expect(result.changed).toEqual([]);
      expect(await hostSha256(h1, include.path)).toBe(before);
      expect(await dhcpdPid(h1)).toBe(pidBefore);
    } finally {
      await unblockSsh(h1).catch(() => undefined);
      expect(await reconnected()).toBe(true);
    }
  });

  it('after the swap, before the restart: the target has the new bytes, and the next apply restarts the service it owes', async () => {
    const include = includeOf(dhcpdFiles);
    const newContent = `${include.content}# cut after the swap\n`;
    const files = withContent(dhcpdFiles, include.path, newContent);
    const pidBefore = await dhcpdPid(h1);
    let result: ApplyResult | undefined;
    try {
      result = await applyHostFiles(s1, files, {
        hooks: {
          afterSwap: async () => {
            await blockSsh(h1);
            await cutSshConnections(h1);
          },
        },
      });
    } finally {
      await unblockSsh(h1).catch(() => undefined);
      expect(await reconnected()).toBe(true);
    }
    expect(result!.ok, JSON.stringify(result)).toBe(false);
    expect(result!.failure!.stage).toBe('reload');
    expect(result!.rolledBack?.ok).toBe(false);
    const { createHash } = await import('node:crypto');
    expect(await hostSha256(h1, include.path)).toBe(createHash('sha256').update(newContent).digest('hex'));
    expect(await dhcpdPid(h1)).toBe(pidBefore); // never restarted: the restart is owed
    // The unit owed, and the file replaced (whose backup a failed reload would restore).
    expect((await h1.run(['cat', '/run/ddi-ha/pending-reload'])).trim()).toBe(`isc-dhcp-server.service\nfile existed ${include.path}`);

    const next = await applyHostFiles(s1, files);
    expect(next).toMatchObject({ ok: true, changed: [], reloaded: ['isc-dhcp-server.service'] });
    expect(next.notes.join(' ')).toMatch(/cut off before it verified isc-dhcp-server\.service/);
    expect(await dhcpdPid(h1)).not.toBe(pidBefore);
    expect((await h1.exec(['cat', '/run/ddi-ha/pending-reload'])).exitCode).not.toBe(0);
    // Verified: the backup is gone with the marker.
    expect(await hostSha256(h1, `${include.path}.ddi-ha-bak`)).toBe('absent');
    dhcpdFiles = files;
  });
});

describe('the host lock', () => {
  it('serialises two appliers with their own connections (as two operator processes would be)', async () => {
    const other = new SshTransport();
    try {
      const s1b = await other.session(env.ddiHosts[0]!, { privateKey: env.lab.privateKey });
      const windows: Record<string, [number, number]> = {};
      const note = (name: string) => ({
        afterStage: async () => {
          windows[name] = [Date.now(), 0];
          await new Promise((r) => setTimeout(r, 1_500));
        },
        afterSwap: async () => {
          windows[name]![1] = Date.now();
        },
      });
      const file = (name: string): RenderedFile => ({
        host: h1.name,
        path: `/etc/dhcp/ddi-ha/lock-${name}.txt`,
        content: `${name} ${Date.now()}\n`,
        mode: 0o644,
        ownership: 'owned',
        service: 'isc-dhcp-server.service',
        check: { kind: 'none' },
        owner: `lab/lock-${name}`,
      });
      // Different lock keys: the in-process mutex does not order them, only the host lock can.
      const [a, b] = await Promise.all([
        applyHostFiles(s1, [file('a')], { lockKey: 'process-a', hooks: note('a') }),
        applyHostFiles(s1b, [file('b')], { lockKey: 'process-b', hooks: note('b') }),
      ]);
      expect(a.ok && b.ok, JSON.stringify([a, b])).toBe(true);
      const [first, second] = Object.values(windows).sort((x, y) => x[0] - y[0]) as [[number, number], [number, number]];
      expect(second[0]).toBeGreaterThanOrEqual(first[1]);
    } finally {
      await other.closeAll();
    }
  });
});
