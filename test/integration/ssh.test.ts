// The SSH transport against real OpenSSH servers: the host lab's Debian containers (sshd with
// per-host generated host keys, users root, ddi (passwordless sudo) and nosudo). Nothing here
// is mocked: host keys, sudo refusals, timeouts, streams, forwards and dropped connections are
// produced by the real sshd, sudo and kernel.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_GROUP_VERSION, type DDIHost, ddiHostSpecSchema } from '../../src/api/index.js';
import {
  CommandTimeoutError,
  ConnectionLostError,
  HostKeyMismatchError,
  HostUnreachableError,
  LOG_REDACT_PATHS,
  SshAuthenticationError,
  SshTransport,
  SudoError,
  fingerprintOf,
} from '../../src/ssh/index.js';
import { generateOmapiKey } from '../../src/daemons/dhcpd/index.js';
import { generateEd25519KeyPair } from '../lab/ssh-keys.js';
import { startLab, type Lab, type LabHost } from '../lab/lab.js';

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let lab: Lab;
let a: LabHost;
let b: LabHost;
let transport: SshTransport;
const logLines: string[] = [];

function ddiHost(h: LabHost, spec: Record<string, unknown> = {}, name = h.name): DDIHost {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'DDIHost',
    metadata: { name, namespace: 'lab' },
    spec: ddiHostSpecSchema.parse({
      address: h.sshHost,
      port: h.sshPort,
      credentialsSecretRef: { name: 'lab-ssh' },
      hostKey: h.hostKeyLine,
      ...spec,
    }),
  };
}

const creds = () => ({ privateKey: lab.privateKey });

/** Resolves with how long `p` took to settle, and its rejection. */
async function timed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const start = Date.now();
  try {
    await p;
    return { ms: Date.now() - start, error: undefined };
  } catch (error) {
    return { ms: Date.now() - start, error };
  }
}

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  [a, b] = lab.hosts as [LabHost, LabHost];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  transport = new SshTransport({
    logger: pino({ level: 'debug', redact: [...LOG_REDACT_PATHS] }, sink),
    connectTimeoutMs: 5_000,
    commandTimeoutMs: 20_000,
  });
});

afterAll(async () => {
  await transport?.closeAll();
  await lab?.stop();
});

describe('commands and files as root', () => {
  it('runs argv commands and quotes every word', async () => {
    const s = await transport.session(ddiHost(a), creds());
    expect((await s.run(['id', '-u'])).stdout.trim()).toBe('0');
    const tricky = `it's "quoted" $HOME \`id\` ; rm -rf / #`;
    const r = await s.run(['printf', '%s', tricky]);
    expect(r).toEqual({ code: 0, stdout: tricky, stderr: '' });
    expect((await s.run(['sh', '-c', 'echo oops >&2; exit 3'])).code).toBe(3);
    expect((await s.run(['cat'], { stdin: 'from stdin\n' })).stdout).toBe('from stdin\n');
    // A missing command: the shell's 127, as without SSH.
    expect((await s.run(['no-such-command-xyz'])).code).toBe(127);
  });

  it('reads and writes files with modes; a missing file reads as undefined', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const path = '/etc/ddi-ssh-test/dir with space/it\'s.conf';
    const content = 'line one\n"quoted" $VAR `cmd`\nünïcödé\n';
    await s.writeFile(path, content, 0o640);
    expect(await s.readFile(path)).toBe(content);
    expect((await a.run(['stat', '-c', '%a %U', path])).trim()).toBe('640 root');
    expect((await a.run(['stat', '-c', '%a', '/etc/ddi-ssh-test'])).trim()).toBe('755');
    expect(await s.readFile('/etc/ddi-ssh-test/nope')).toBeUndefined();
    await expect(s.readFile('/etc/ddi-ssh-test')).rejects.toThrow(/Is a directory/);
  });

  it('returns the pooled session for the same host and settings', async () => {
    const s1 = await transport.session(ddiHost(a), creds());
    const s2 = await transport.session(ddiHost(a), creds());
    expect(s2).toBe(s1);
    expect(s1.hostName).toBe(a.name);
  });
});

describe('host key verification', () => {
  it('accepts the pinned key and reports its fingerprint', async () => {
    const s = await transport.session(ddiHost(a), creds());
    expect(s.observedHostKey).toBe(a.hostKeyLine.split(' ').slice(0, 2).join(' '));
    expect(s.hostKeyFingerprint).toBe(a.hostKeyFingerprint);
    expect(fingerprintOf(a.hostKeyLine)).toBe(a.hostKeyFingerprint);
  });

  it('refuses a host whose key differs from the pinned one', async () => {
    const wrong = generateEd25519KeyPair('someone-else').publicKeyLine;
    const { error } = await timed(transport.session(ddiHost(b, { hostKey: wrong }, 'pinned-wrong'), creds()));
    expect(error).toBeInstanceOf(HostKeyMismatchError);
    const e = error as HostKeyMismatchError;
    expect(e.expectedFingerprint).toBe(fingerprintOf(wrong));
    expect(e.seenFingerprint).toBe(b.hostKeyFingerprint);
    expect(e.message).toContain('lab/pinned-wrong');
    expect(e.message).toContain(`expected ${fingerprintOf(wrong)}, the host presented ${b.hostKeyFingerprint}`);
    expect(e.message).toMatch(/spec\.hostKey/);
  });

  it('a pinned key of a type the host does not have is a changed key, reported with the key the host has', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddi-ssh-ecdsa-'));
    try {
      await execFileAsync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', join(dir, 'k')]);
      const ecdsa = readFileSync(join(dir, 'k.pub'), 'utf8').trim();
      const { error } = await timed(transport.session(ddiHost(b, { hostKey: ecdsa }, 'pinned-ecdsa'), creds()));
      expect(error).toBeInstanceOf(HostKeyMismatchError);
      expect((error as HostKeyMismatchError).expectedFingerprint).toBe(fingerprintOf(ecdsa));
      expect((error as HostKeyMismatchError).seenFingerprint).toBe(b.hostKeyFingerprint);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TrustOnFirstUse accepts and reports the first key, then refuses a different pinned key', async () => {
    const pinned: string[] = [];
    const host = ddiHost(b, { hostKey: undefined, hostKeyPolicy: 'TrustOnFirstUse' }, 'tofu');
    const s = await transport.session(host, creds(), { onHostKeyPinned: (line, fp) => void pinned.push(`${line}|${fp}`) });
    const bare = b.hostKeyLine.split(' ').slice(0, 2).join(' ');
    expect(pinned).toEqual([`${bare}|${b.hostKeyFingerprint}`]);
    expect(s.observedHostKey).toBe(bare);
    expect((await s.run(['hostname'])).stdout.trim()).toBe(b.name);

    // Recorded earlier: a different key. The host's real key is now a changed key.
    const earlier = generateEd25519KeyPair().publicKeyLine;
    const { error } = await timed(transport.session(host, creds(), { pinnedHostKey: earlier }));
    expect(error).toBeInstanceOf(HostKeyMismatchError);
    expect((error as HostKeyMismatchError).expectedFingerprint).toBe(fingerprintOf(earlier));
    expect((error as HostKeyMismatchError).seenFingerprint).toBe(b.hostKeyFingerprint);
    expect((error as Error).message).toContain('pinned on first use in status.observedHostKey');
    expect((error as Error).message).toMatch(/set spec\.hostKey to it/);

    // Re-pinned in the spec after verifying the key out of band: spec.hostKey wins over the old pin.
    const repinned = ddiHost(b, { hostKeyPolicy: 'TrustOnFirstUse' }, 'tofu');
    const again = await transport.session(repinned, creds(), { pinnedHostKey: earlier, pinnedHostKeyStore: '/nonexistent/known_hosts.json' });
    expect(again.hostKeyFingerprint).toBe(b.hostKeyFingerprint);
    expect((await again.run(['hostname'])).stdout.trim()).toBe(b.name);
  });
});

describe('sudo', () => {
  it('user ddi runs commands and file operations as root through sudo -n', async () => {
    const s = await transport.session(ddiHost(a, { user: 'ddi', sudo: true }, 'sudo-ddi'), creds());
    expect((await s.run(['id', '-un'])).stdout.trim()).toBe('root');
    expect(await s.readFile('/etc/shadow')).toMatch(/^root:/m);
    await s.writeFile('/etc/ddi-ssh-sudo/owned-by-root', 'x\n', 0o600);
    expect((await a.run(['stat', '-c', '%a %U', '/etc/ddi-ssh-sudo/owned-by-root'])).trim()).toBe('600 root');
    expect(await s.readFile('/etc/ddi-ssh-sudo/missing')).toBeUndefined();
    // sudo's "command not found" (exit 1) is reported as a shell would: 127.
    expect((await s.run(['no-such-command-xyz'])).code).toBe(127);
  });

  it('user nosudo gets a SudoError naming the user, the host and the fix, quickly', async () => {
    const s = await transport.session(ddiHost(a, { user: 'nosudo', sudo: true }, 'no-sudo'), creds());
    const { ms, error } = await timed(s.run(['true']));
    expect(error).toBeInstanceOf(SudoError);
    expect((error as Error).message).toMatch(/sudo refused "true" for user nosudo on lab\/no-sudo/);
    expect((error as Error).message).toMatch(/a password is required/);
    expect((error as Error).message).toMatch(/NOPASSWD|spec\.user: root/);
    expect(ms).toBeLessThan(5_000);
    await expect(s.readFile('/etc/hostname')).rejects.toBeInstanceOf(SudoError);
  });
});

describe('failures', () => {
  it('an address where nothing answers gives HostUnreachableError within the connect timeout', async () => {
    const ghost = { ...a, sshHost: lab.network.spare(3) } as LabHost;
    const { ms, error } = await timed(transport.session(ddiHost(ghost, {}, 'ghost'), creds(), { connectTimeoutMs: 3_000 }));
    expect(error).toBeInstanceOf(HostUnreachableError);
    expect((error as Error).message).toContain(`cannot reach lab/ghost (root@${lab.network.spare(3)}:22)`);
    expect(ms).toBeLessThan(3_000 + 1_500);
    // Backoff: a second attempt right away fails fast, saying when the next attempt is.
    const again = await timed(transport.session(ddiHost(ghost, {}, 'ghost'), creds(), { connectTimeoutMs: 3_000 }));
    expect(again.error).toBeInstanceOf(HostUnreachableError);
    expect((again.error as Error).message).toMatch(/next connection attempt in \d+\.\d s/);
    expect(again.ms).toBeLessThan(100);
  });

  it('a frozen host (TCP answers, sshd does not) gives HostUnreachableError within the connect timeout', async () => {
    await b.pause();
    try {
      const { ms, error } = await timed(transport.session(ddiHost(b, {}, 'frozen'), creds(), { connectTimeoutMs: 2_000 }));
      expect(error).toBeInstanceOf(HostUnreachableError);
      expect((error as Error).message).toMatch(/cannot reach lab\/frozen .*(no SSH handshake within 2000 ms|ETIMEDOUT|EHOSTUNREACH)/);
      expect(ms).toBeLessThan(2_000 + 1_500);
    } finally {
      await b.unpause();
    }
  });

  it('a command that outlives its timeout is reported and killed on the host', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const { ms, error } = await timed(s.run(['sleep', '4242'], { timeoutMs: 1_000 }));
    expect(error).toBeInstanceOf(CommandTimeoutError);
    expect((error as Error).message).toContain(`command "sleep 4242" on lab/${a.name} (root@${a.address}:22) did not finish within 1000 ms`);
    expect(ms).toBeGreaterThanOrEqual(1_000);
    expect(ms).toBeLessThan(2_000);
    await expect.poll(async () => (await a.exec(['pgrep', '-f', 'sleep 4242'])).exitCode, { timeout: 5_000 }).toBe(1);
    // The connection is still good.
    expect((await s.run(['true'])).code).toBe(0);
  });

  it('a command through sudo that outlives its timeout is killed too (sudo relays SIGTERM)', async () => {
    const s = await transport.session(ddiHost(a, { user: 'ddi', sudo: true }, 'sudo-ddi'), creds());
    const { error } = await timed(s.run(['sleep', '4343'], { timeoutMs: 1_000 }));
    expect(error).toBeInstanceOf(CommandTimeoutError);
    await expect.poll(async () => (await a.exec(['pgrep', '-f', 'sleep 4343'])).exitCode, { timeout: 5_000 }).toBe(1);
  });

  it('a connection killed on the host is reconnected transparently by the next command', async () => {
    const s = await transport.session(ddiHost(a), creds());
    // $PPID of the command is the sshd process serving this connection.
    const before = (await s.run(['sh', '-c', 'echo $PPID'])).stdout.trim();
    await a.run(['pkill', '-KILL', '-f', '^sshd: root']);
    const after = (await s.run(['sh', '-c', 'echo $PPID'])).stdout.trim();
    expect(after).toMatch(/^\d+$/);
    expect(after).not.toBe(before);
    expect(s.connected).toBe(true);
  });
});

describe('a connection lost while a command runs', () => {
  it('is reported as ConnectionLostError and the command is not re-run', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const marker = `/tmp/ran-${Date.now()}`;
    const running = timed(s.run(['sh', '-c', 'echo x >> "$1"; sleep 5', 'sh', marker]));
    await expect.poll(async () => (await a.exec(['test', '-e', marker])).exitCode, { timeout: 5_000 }).toBe(0);
    await a.run(['pkill', '-KILL', '-f', '^sshd: root']);
    const { ms, error } = await running;
    expect(error).toBeInstanceOf(ConnectionLostError);
    expect((error as Error).message).toMatch(/was lost while "sh -c .*" ran; it may or may not have taken effect/);
    expect(ms).toBeLessThan(5_000);
    expect((await a.run(['cat', marker])).trim()).toBe('x'); // ran exactly once
    expect((await s.run(['true'])).code).toBe(0);
  });
});

describe('credentials', () => {
  it('a key the host does not accept gives SshAuthenticationError naming the user', async () => {
    const stranger = generateEd25519KeyPair().privateKey;
    const { error } = await timed(transport.session(ddiHost(a, {}, 'stranger'), { privateKey: stranger }));
    expect(error).toBeInstanceOf(SshAuthenticationError);
    expect((error as Error).message).toMatch(/SSH authentication to lab\/stranger .* failed: the host refused the private key for user root/);
  });

  it('a passphrase-protected key works with its passphrase and is refused clearly without', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddi-ssh-pass-'));
    try {
      const path = join(dir, 'id');
      await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-C', 'pass', '-f', path]);
      const pub = readFileSync(`${path}.pub`, 'utf8');
      await a.run(['sh', '-c', `printf '%s' "$1" >> /etc/ssh/authorized_keys/root`, 'sh', pub]);
      const privateKey = readFileSync(path, 'utf8');
      const s = await transport.session(ddiHost(a, {}, 'passphrase'), { privateKey, passphrase: 'correct horse' });
      expect((await s.run(['id', '-u'])).stdout.trim()).toBe('0');
      const wrong = await timed(transport.session(ddiHost(a, {}, 'passphrase-wrong'), { privateKey, passphrase: 'wrong' }));
      expect(wrong.error).toBeInstanceOf(SshAuthenticationError);
      expect((wrong.error as Error).message).toMatch(/the private key cannot be used/);
      const none = await timed(transport.session(ddiHost(a, {}, 'passphrase-none'), { privateKey }));
      expect(none.error).toBeInstanceOf(SshAuthenticationError);
      for (const e of [wrong.error, none.error]) {
        expect((e as Error).message).not.toContain('correct horse');
        expect((e as Error).message).not.toContain(privateKey.split('\n')[1]!);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('keepalive', () => {
  it('notices a host that froze under an open connection, and reconnects once it thaws', async () => {
    const t = new SshTransport({ keepaliveIntervalMs: 500, keepaliveCountMax: 2, connectTimeoutMs: 3_000 });
    try {
      const s = await t.session(ddiHost(b, {}, 'keepalive'), creds());
      expect((await s.run(['true'])).code).toBe(0);
      await b.pause();
      try {
        const start = Date.now();
        const { error } = await timed(s.run(['true'], { timeoutMs: 5_000 }));
        // Either keepalive closed the connection first, or the command timed out: never a hang.
        expect(error).toBeDefined();
        expect(Date.now() - start).toBeLessThan(5_500);
        await expect.poll(() => s.connected, { timeout: 5_000 }).toBe(false);
      } finally {
        await b.unpause();
      }
      // The failed attempts (if any) put the host in backoff; wait for it, then a command reconnects.
      await expect.poll(async () => (await s.run(['hostname']).catch(() => undefined))?.stdout.trim(), { timeout: 20_000, interval: 500 }).toBe(b.name);
    } finally {
      await t.closeAll();
    }
  });
});

describe('bounded concurrency', () => {
  it('runs at most 4 commands at once on one host', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const start = Date.now();
    await Promise.all(Array.from({ length: 8 }, () => s.run(['sleep', '0.6'])));
    const ms = Date.now() - start;
    // Two waves of four: at least 1.2 s; unbounded, all eight would finish in about 0.7 s.
    expect(ms).toBeGreaterThanOrEqual(1_200);
    expect(ms).toBeLessThan(4_000);
  });
});

describe('bounded concurrency over all hosts', () => {
  it('a transport with maxConcurrentCommands 2 runs at most 2 commands at once across two hosts', async () => {
    const t = new SshTransport({ maxConcurrentCommands: 2 });
    try {
      const sessions = await Promise.all([t.session(ddiHost(a, {}, 'overall-a'), creds()), t.session(ddiHost(b, {}, 'overall-b'), creds())]);
      // Start and end stamped on the hosts, which share the lab machine's kernel clock.
      const stamped = ['sh', '-c', 'date +%s.%N; sleep 0.3; date +%s.%N'];
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => sessions[i % 2]!.run(stamped)));
      const events = results.flatMap((r) => {
        const [start, end] = r.stdout.trim().split('\n').map(Number);
        return [{ at: start!, delta: 1 }, { at: end!, delta: -1 }];
      });
      // An end before a start at the same instant: the slot was free again.
      events.sort((x, y) => x.at - y.at || x.delta - y.delta);
      let running = 0;
      let most = 0;
      for (const e of events) most = Math.max(most, (running += e.delta));
      // The per-host limit (4) alone would let all six run at once.
      expect(most).toBe(2);
    } finally {
      await t.closeAll();
    }
  });
});

describe('latency', () => {
  it('a trivial command takes a few ms, not a Nagle delay (TCP_NODELAY)', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const times: number[] = [];
    for (let i = 0; i < 21; i++) {
      const start = performance.now();
      await s.run(['true']);
      times.push(performance.now() - start);
    }
    times.sort((x, y) => x - y);
    // About 8 ms measured in the lab; with Nagle's algorithm on, about 45 ms.
    expect(times[10]).toBeLessThan(30);
  });
});

describe('streams and forwards', () => {
  it('streams `ip -o monitor address` and sees an address being added', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const vip = lab.network.spare(7);
    const lines: string[] = [];
    const mon = await s.stream(['ip', '-o', 'monitor', 'address'], (l) => lines.push(l));
    try {
      // The monitor subscribes a moment after the channel opens: add until one event is seen.
      await expect
        .poll(
          async () => {
            await a.exec(['ip', 'addr', 'del', `${vip}/32`, 'dev', 'lo']);
            await a.run(['ip', 'addr', 'add', `${vip}/32`, 'dev', 'lo']);
            return lines.some((l) => l.includes(`inet ${vip}/32`) && l.includes(' lo '));
          },
          { timeout: 10_000, interval: 300 },
        )
        .toBe(true);
    } finally {
      await mon.stop();
      await a.exec(['ip', 'addr', 'del', `${vip}/32`, 'dev', 'lo']);
    }
    const done = await mon.done;
    expect(done.code).toBe(143);
    expect((await a.exec(['pgrep', '-f', 'ip -o monitor'])).exitCode).toBe(1);
  });

  it('forwards a local port to a TCP service the host reaches (sshd on 127.0.0.1:22)', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const fwd = await s.forward('127.0.0.1', 22);
    const banner = await new Promise<string>((resolvePromise, reject) => {
      const sock = connect({ host: '127.0.0.1', port: fwd.localPort });
      sock.once('data', (d) => {
        resolvePromise(d.toString());
        sock.destroy();
      });
      sock.once('error', reject);
    });
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    await fwd.close();
    await expect(
      new Promise((resolvePromise, reject) => connect({ host: '127.0.0.1', port: fwd.localPort }).once('connect', resolvePromise).once('error', reject)),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('hygiene', () => {
  const omapiSecret = generateOmapiKey('hmac-sha256').secret;

  it('an OMAPI key sent as file content and on stdin, also to commands that fail or time out, stays out of the logs', async () => {
    const s = await transport.session(ddiHost(a), creds());
    const keyBlock = `key "omapi" {\n  algorithm hmac-sha256;\n  secret "${omapiSecret}";\n}\n`;
    await s.writeFile('/etc/ddi-ssh-test/omapi-key.conf', keyBlock, 0o600);
    expect(await s.readFile('/etc/ddi-ssh-test/omapi-key.conf')).toBe(keyBlock);
    // As the dhcpd observer feeds omshell: the key on stdin.
    expect((await s.run(['sh', '-c', 'cat >/dev/null; exit 1'], { stdin: keyBlock })).code).toBe(1);
    await expect(s.run(['sleep', '4444'], { stdin: keyBlock, timeoutMs: 500 })).rejects.toBeInstanceOf(CommandTimeoutError);
  });

  it('logs carry the host and never a credential', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const keyBody = lab.privateKey.split('\n')[1]!;
    for (const line of logLines) {
      expect(line).not.toContain('PRIVATE KEY');
      expect(line).not.toContain(keyBody);
      // The passphrase of the passphrase test, and the OMAPI key of the test above.
      expect(line).not.toContain('correct horse');
      expect(line).not.toContain(omapiSecret);
    }
    expect(logLines.some((l) => l.includes('command timed out') && l.includes('sleep 4444'))).toBe(true);
    expect(logLines.some((l) => l.includes('"host":"lab/') && l.includes('connect failed'))).toBe(true);
  });

  it('closeAll leaves nothing that keeps node alive (a child process exits by itself)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddi-ssh-exit-'));
    try {
      const script = join(dir, 'exit-check.mts');
      const ssh = pathToFileURL(join(repoRoot, 'src/ssh/index.ts')).href;
      writeFileSync(
        script,
        `import { SshTransport } from ${JSON.stringify(ssh)};
const host = JSON.parse(process.env.HOST);
const t = new SshTransport();
const s = await t.session(host, { privateKey: process.env.KEY });
await s.run(['true']);
const mon = await s.stream(['sleep', '600'], () => {});
const fwd = await s.forward('127.0.0.1', 22);
await t.closeAll();
console.log('closed', (await mon.done).code, fwd.localPort > 0);
`,
      );
      const start = Date.now();
      const { stdout } = await execFileAsync(join(repoRoot, 'node_modules/.bin/tsx'), [script], {
        cwd: repoRoot,
        timeout: 30_000,
        env: { ...process.env, HOST: JSON.stringify(ddiHost(a)), KEY: lab.privateKey },
      });
      expect(stdout.trim()).toBe('closed 143 true');
      expect(Date.now() - start).toBeLessThan(8_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
