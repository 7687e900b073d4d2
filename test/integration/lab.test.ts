// Proves the host lab with real things: OpenSSH with pinned host keys, the daemons' binaries,
// traffic between hosts, and the fault knobs that later tests rely on (pause, stopService with a
// real VRRP failover, isolation, disconnect, power cut).

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSshBanner, startLab, type Lab, type LabHost } from '../lab/lab.js';

const execFileAsync = promisify(execFile);

let lab: Lab;
let dir: string;
let a: LabHost;
let b: LabHost;

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  [a, b] = lab.hosts as [LabHost, LabHost];
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-lab-test-'));
  writeFileSync(join(dir, 'id_ed25519'), lab.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'known_hosts'), lab.knownHosts);
});

afterAll(async () => {
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs `command` on `host` with the OpenSSH client, refusing any host key but the pinned one. */
async function ssh(
  host: LabHost,
  command: string,
  opts: { user?: string; knownHosts?: string; timeoutS?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = [
    '-i', join(dir, 'id_ed25519'),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${opts.knownHosts ?? join(dir, 'known_hosts')}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', `ConnectTimeout=${opts.timeoutS ?? 5}`,
    '-o', 'LogLevel=ERROR',
    '-p', String(host.sshPort),
    `${opts.user ?? 'root'}@${host.sshHost}`,
    command,
  ];
  try {
    const { stdout, stderr } = await execFileAsync('ssh', args, { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

const pings = async (from: LabHost, to: string): Promise<boolean> =>
  (await from.exec(['ping', '-c', '1', '-W', '1', to])).exitCode === 0;

describe('host lab', () => {
  it('gives every host its own address and host key in the lab subnet', () => {
    expect(lab.network.subnet).toMatch(/^198\.1[89]\.\d{1,3}\.0\/24$/);
    expect(new Set(lab.hosts.map((h) => h.address)).size).toBe(2);
    expect(new Set(lab.hosts.map((h) => h.hostKeyLine)).size).toBe(2);
    for (const h of lab.hosts) {
      expect(h.address.startsWith(lab.network.subnet.replace(/0\/24$/, ''))).toBe(true);
      expect(h.hostKeyLine).toMatch(/^ssh-ed25519 AAAA/);
    }
  });

  it('reaches sshd with the pinned host key, and systemd is up', async () => {
    for (const h of lab.hosts) {
      const r = await ssh(h, 'systemctl is-system-running; hostname');
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n')[0]).toMatch(/^(running|degraded)$/);
      expect(r.stdout.split('\n')[1]).toBe(h.name);
    }
  });

  it('refuses a host whose key does not match known_hosts', async () => {
    const wrong = join(dir, 'known_hosts.wrong');
    writeFileSync(wrong, `${a.address} ${b.hostKeyLine}\n`);
    const r = await ssh(a, 'true', { knownHosts: wrong });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('has a sudo user and a user without sudo rights', async () => {
    const sudo = await ssh(a, 'sudo -n id -u', { user: lab.users.sudo });
    expect(sudo.stdout.trim()).toBe('0');
    const noSudo = await ssh(a, 'sudo -n id -u', { user: lab.users.noSudo });
    expect(noSudo.code).not.toBe(0);
    expect(noSudo.stderr).toMatch(/sudo/);
  });

  it('has the daemons installed but not running', async () => {
    const r = await ssh(
      a,
      'keepalived --version 2>&1 | head -1; dhcpd --version 2>&1; kea-dhcp4 -V | head -1; command -v omshell; ' +
        'systemctl is-active keepalived isc-dhcp-server kea-dhcp4-server kea-ctrl-agent named || true',
    );
    expect(r.stdout).toMatch(/Keepalived v2\.2\./);
    expect(r.stdout).toMatch(/isc-dhcpd-4\.4\./);
    expect(r.stdout).toMatch(/^2\.2\.\d/m);
    expect(r.stdout).toContain('/usr/bin/omshell');
    expect(r.stdout.match(/^inactive$/gm)).toHaveLength(5);
  });

  it('lets the hosts reach each other', async () => {
    expect(await pings(a, b.address)).toBe(true);
    expect(await pings(b, a.address)).toBe(true);
  });

  it('moves a real VRRP VIP when stopService stops the master', async () => {
    const vip = lab.network.spare(0);
    const conf = (prio: number) =>
      [
        'vrrp_instance VI_LAB {',
        '  state BACKUP',
        `  interface ${a.interface}`,
        '  virtual_router_id 51',
        `  priority ${prio}`,
        '  advert_int 1',
        `  virtual_ipaddress { ${vip}/${lab.network.prefixLength} }`,
        '}',
        '',
      ].join('\n');
    await a.run(`cat > /etc/keepalived/keepalived.conf <<'EOF'\n${conf(150)}EOF`);
    await b.run(`cat > /etc/keepalived/keepalived.conf <<'EOF'\n${conf(100)}EOF`);
    await Promise.all([a.startService('keepalived'), b.startService('keepalived')]);
    const holds = async (h: LabHost) => (await h.run(['ip', '-o', '-4', 'addr', 'show', h.interface])).includes(` ${vip}/`);

    await eventually('the VIP on the higher-priority host', async () => (await holds(a)) && !(await holds(b)));
    await a.stopService('keepalived');
    expect((await a.exec(['systemctl', 'is-active', 'keepalived'])).stdout.trim()).toBe('inactive');
    await eventually('the VIP on the other host', async () => (await holds(b)) && !(await holds(a)));
    await b.stopService('keepalived');
  });

  it('pauses a host like a hang: the kernel answers, sshd does not', async () => {
    await a.pause();
    try {
      await expect(readSshBanner(a.sshHost, a.sshPort, 1500)).rejects.toThrow(/no SSH banner/);
    } finally {
      await a.unpause();
    }
    await expect(readSshBanner(a.sshHost, a.sshPort, 5000)).resolves.toMatch(/^SSH-2\.0-OpenSSH/);
    expect((await ssh(a, 'true')).code).toBe(0);
  });

  it('isolates two hosts from each other while SSH keeps working, and heals', async () => {
    await a.isolateFrom(b);
    expect(await pings(a, b.address)).toBe(false);
    expect(await pings(b, a.address)).toBe(false);
    expect((await ssh(a, 'true')).code).toBe(0);
    await a.heal();
    expect(await pings(a, b.address)).toBe(true);
    expect(await pings(b, a.address)).toBe(true);
  });

  it('disconnects a host and reconnects it as eth0 with the same address, twice', async () => {
    for (let round = 0; round < 2; round++) {
      await b.disconnect();
      expect(await pings(a, b.address)).toBe(false);
      await b.reconnect();
      await eventually('b reachable again', () => pings(a, b.address));
      expect(await b.run(['ip', '-o', '-4', 'addr', 'show', b.interface])).toContain(` ${b.address}/`);
      expect((await ssh(b, 'true')).code).toBe(0);
    }
  });

  it('pulls the cable: eth0 loses carrier and keeps its address', async () => {
    await b.linkDown();
    try {
      await eventually('no carrier on b', async () => (await b.run(['cat', '/sys/class/net/eth0/carrier'])).trim() === '0');
      expect(await pings(a, b.address)).toBe(false);
    } finally {
      await b.linkUp();
    }
    await eventually('b reachable again', () => pings(a, b.address));
    expect((await ssh(b, 'true')).code).toBe(0);
  });

  it('survives a power cut: kill, boot, same host key', async () => {
    await b.kill();
    expect(await pings(a, b.address)).toBe(false);
    await b.start();
    const r = await ssh(b, 'systemctl is-system-running');
    expect(r.stdout.trim()).toMatch(/^(running|degraded)$/);
  });
});
