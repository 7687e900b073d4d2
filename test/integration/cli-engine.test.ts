// `ddi-ha apply` and `ddi-ha status` without Kubernetes, on real lab hosts over real SSH: the
// manifest set (with its SSH Secret) is all the user gives.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runApply, runStatus } from '../../src/cli/commands.js';
import { type Lab, startLab } from '../lab/lab.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

function collector() {
  let text = '';
  return { write: (t: string) => (text += t), get text() { return text; } };
}

let lab: Lab;
let dir: string;
let vip: string;

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-cli-engine-'));
  vip = `${lab.network.spare(0)}/${lab.network.prefixLength}`;
  const [a, b] = lab.hosts;
  const docs = [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ssh', namespace: 'cli' }, stringData: { privateKey: lab.privateKey } },
    ...[a!, b!].map((h) => ({
      apiVersion: 'ddi-ha.io/v1alpha1',
      kind: 'DDIHost',
      metadata: { name: h.name, namespace: 'cli' },
      spec: { address: h.address, credentialsSecretRef: { name: 'ssh' }, hostKey: h.hostKeyLine },
    })),
    {
      apiVersion: 'ddi-ha.io/v1alpha1',
      kind: 'HAPair',
      metadata: { name: 'vip', namespace: 'cli' },
      spec: {
        primary: { host: a!.name, interface: a!.interface },
        secondary: { host: b!.name, interface: b!.interface },
        virtualIP: vip,
        virtualRouterID: 61,
        services: { dns: false, dhcp: 'None' },
      },
    },
  ];
  writeFileSync(join(dir, 'set.yaml'), docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n'));
});

afterAll(async () => {
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('ddi-ha apply and status on real hosts', () => {
  it('applies the pair, then reports the VIP on the primary', async () => {
    const out = collector();
    const err = collector();
    const code = await runApply([dir], out, err, { knownHosts: join(dir, 'known_hosts.json') });
    expect(err.text).toBe('');
    // 0 when Ready at once, 2 while keepalived is still electing; never 1 (a failed apply).
    expect([0, 2], out.text).toContain(code);
    expect(out.text).toContain('changed /etc/keepalived/ddi-ha.d/cli_vip.conf');

    let status: { kind: string; name: string; status: Record<string, unknown> }[] = [];
    for (let i = 0; i < 20; i++) {
      const json = collector();
      const statusCode = await runStatus([dir], json, collector(), { output: 'json', knownHosts: join(dir, 'known_hosts.json') });
      status = JSON.parse(json.text);
      if (statusCode === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const pair = status.find((s) => s.kind === 'HAPair')!.status;
    expect(pair.activeNode).toBe('primary');
    const ready = (pair.conditions as { type: string; status: string; message: string }[]).find((c) => c.type === 'Ready');
    expect(ready?.status, ready?.message).toBe('True');
    const ip = await lab.hosts[0]!.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(ip.stdout).toContain(vip);
  });

  it('changes nothing on a second apply', async () => {
    const out = collector();
    await runApply([dir], out, collector(), { knownHosts: join(dir, 'known_hosts.json') });
    expect(out.text).not.toContain('changed ');
    expect(out.text).toMatch(/h\d: ok: in sync/);
  });

  it('prints status as YAML through the bin, exit 0 when Ready', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'bin', 'ddi-ha.js'), 'status', '-f', dir, '-o', 'yaml', '--known-hosts', join(dir, 'known_hosts.json')]);
    expect(stdout).toContain('kind: HAPair');
    expect(stdout).toContain('activeNode: primary');
  });

  it('refuses a host whose key changed, naming both fingerprints', async () => {
    const changed = join(dir, 'changed');
    const { execSync } = await import('node:child_process');
    execSync(`mkdir -p ${changed}`);
    const text = (await import('node:fs')).readFileSync(join(dir, 'set.yaml'), 'utf8');
    // Pin host 1's key for host 2: the real host 2 must be refused.
    writeFileSync(join(changed, 'set.yaml'), text.replace(lab.hosts[1]!.hostKeyLine, lab.hosts[0]!.hostKeyLine));
    const out = collector();
    const code = await runStatus([changed], out, collector(), { knownHosts: join(dir, 'known_hosts.json') });
    expect(code).toBe(2);
    expect(out.text, out.text).toContain('HostKeyMismatch');
  });
});
