// Shared by apply.test.ts and faults.test.ts: a host lab reached through the real SSH transport,
// and observations taken with `docker exec` (a channel independent of the engine under test).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { API_GROUP_VERSION, type DDIHost, type HAPair, ddiHostSpecSchema, haPairSpecSchema } from '../../src/api/index.js';
import type { HostSession } from '../../src/exec/host-io.js';
import type { ServiceUnit } from '../../src/render/types.js';
import { SshTransport, type SshTransportOptions } from '../../src/ssh/index.js';
import { type Lab, type LabHost, startLab } from '../lab/lab.js';

export interface ApplyLab {
  lab: Lab;
  transport: SshTransport;
  ddiHosts: DDIHost[];
  sessions: HostSession[];
  stop(): Promise<void>;
}

export function labDDIHost(h: LabHost, namespace = 'lab'): DDIHost {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'DDIHost',
    metadata: { name: h.name, namespace },
    spec: ddiHostSpecSchema.parse({
      address: h.sshHost,
      port: h.sshPort,
      credentialsSecretRef: { name: 'lab-ssh' },
      hostKey: h.hostKeyLine,
    }),
  };
}

/** An HAPair of two lab hosts (primary first) in namespace lab, with no tracked services. */
export function labHaPair(primary: LabHost, secondary: LabHost, name: string, virtualRouterID: number, vip: string): HAPair {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'HAPair',
    metadata: { name, namespace: 'lab' },
    spec: haPairSpecSchema.parse({
      primary: { host: primary.name, interface: primary.interface },
      secondary: { host: secondary.name, interface: secondary.interface },
      virtualIP: `${vip}/24`,
      virtualRouterID,
      services: {},
    }),
  };
}

/** A lab of `hosts` hosts with a session to each through the real SSH transport. */
export async function startApplyLab(hosts: number, transportOptions: SshTransportOptions = {}): Promise<ApplyLab> {
  const lab = await startLab({ hosts });
  const transport = new SshTransport(transportOptions);
  try {
    const ddiHosts = lab.hosts.map((h) => labDDIHost(h));
    const sessions = await Promise.all(ddiHosts.map((h) => transport.session(h, { privateKey: lab.privateKey })));
    return {
      lab,
      transport,
      ddiHosts,
      sessions,
      async stop() {
        // A stream on a silently dead connection may never report its close: bound the wait.
        await withTimeout('closing the SSH transport', transport.closeAll(), 15_000).catch((err: Error) => console.warn(err.message));
        await lab.stop();
      },
    };
  } catch (err) {
    await transport.closeAll();
    await lab.stop();
    throw err;
  }
}

/** Rejects when `p` takes longer than `ms`, naming what hung. */
export function withTimeout<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** sha256 of a file on the host, or "absent". */
export async function hostSha256(host: LabHost, path: string): Promise<string> {
  const r = await host.exec(['sha256sum', '--', path]);
  if (r.exitCode !== 0) return 'absent';
  return r.stdout.split(' ')[0]!;
}

/** mtime (ns resolution) and inode of a file on the host. */
export async function hostFileStamp(host: LabHost, path: string): Promise<string> {
  return (await host.run(['stat', '-c', '%y %i', '--', path])).trim();
}

export interface UnitSnapshot {
  ActiveState: string;
  SubState: string;
  MainPID: number;
  NRestarts: number;
  ExecMainStartTimestampMonotonic: number;
}

export async function unitSnapshot(host: LabHost, unit: ServiceUnit): Promise<UnitSnapshot> {
  const out = await host.run(['systemctl', 'show', '-p', 'ActiveState,SubState,MainPID,NRestarts,ExecMainStartTimestampMonotonic', '--', unit]);
  const props = Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return {
    ActiveState: props.ActiveState ?? '',
    SubState: props.SubState ?? '',
    MainPID: Number(props.MainPID),
    NRestarts: Number(props.NRestarts),
    ExecMainStartTimestampMonotonic: Number(props.ExecMainStartTimestampMonotonic),
  };
}

/** dhcpd's PID from its pid file (the SysV unit has no MainPID), or 0. */
export async function dhcpdPid(host: LabHost): Promise<number> {
  const r = await host.exec(['cat', '/run/dhcpd.pid']);
  return r.exitCode === 0 ? Number(r.stdout.trim()) : 0;
}

/** Addresses on the host's interface (`ip -o addr show`), e.g. ["198.18.7.11/24", "198.18.7.200/24"]. */
export async function interfaceAddresses(host: LabHost, iface = host.interface): Promise<string[]> {
  const out = await host.run(['ip', '-o', '-4', 'addr', 'show', 'dev', iface]);
  return [...out.matchAll(/\binet (\S+)/g)].map((m) => m[1]!);
}

/** Polls `check` until it returns true or the time is up; returns the last value. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 20_000, everyMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Cuts every SSH connection to the host (`ss -K` on sshd's established sockets): a dropped link, as the client sees it. */
export async function cutSshConnections(host: LabHost): Promise<void> {
  await host.exec(['ss', '-K', 'state', 'established', '( sport = :22 )']);
}

const execFileAsync = promisify(execFile);

/**
 * Slows traffic TO the host down to `rate` (tc tbf on the host-side veth of its eth0; shaping inside
 * the container would only slow what the host sends). Returns the undo. Needs root on this machine.
 */
export async function throttleTrafficTo(host: LabHost, rate = '2mbit'): Promise<() => Promise<void>> {
  const index = (await host.run(['cat', '/sys/class/net/eth0/iflink'])).trim();
  const { stdout } = await execFileAsync('ip', ['-o', 'link']);
  const line = stdout.split('\n').find((l) => l.startsWith(`${index}: `));
  const veth = line?.split(': ')[1]?.split('@')[0];
  if (!veth) throw new Error(`no host interface with index ${index} for ${host.name}`);
  await execFileAsync('tc', ['qdisc', 'add', 'dev', veth, 'root', 'tbf', 'rate', rate, 'burst', '32kbit', 'latency', '400ms']);
  return async () => {
    await execFileAsync('tc', ['qdisc', 'del', 'dev', veth, 'root']).catch(() => undefined);
  };
}
