// A real `ddi-ha controller` process with leader election, as a replica of the Deployment would
// run it: its log lines, its /metrics, its Lease identity. For tests and benchmarks of handovers.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Replica {
  name: string;
  child: ChildProcess;
  lines: string[];
  port: number;
  identity: string;
  exited: Promise<number | null>;
  log(): string;
}

export interface ReplicaOptions {
  name: string;
  kubeconfig: string;
  /** Watched namespace, also the Lease's. */
  namespace: string;
  leaseName: string;
  /** Flags after the ones above (durations, --resync). */
  args?: readonly string[];
  logLevel?: string;
  /** The CLI script node runs (default bin/ddi-ha.js); e.g. a build's src/cli/main.js. */
  entry?: string;
  /** Node's own flags before the script (e.g. --max-old-space-size=256). */
  nodeArgs?: readonly string[];
}

export async function startReplica(options: ReplicaOptions): Promise<Replica> {
  const argv = [
    ...(options.nodeArgs ?? []),
    options.entry ?? join(repoRoot, 'bin', 'ddi-ha.js'),
    'controller',
    '--kubeconfig',
    options.kubeconfig,
    '--namespace',
    options.namespace,
    '--metrics-port',
    '0',
    '--leader-elect',
    '--leader-election-namespace',
    options.namespace,
    '--leader-election-id',
    options.leaseName,
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: options.logLevel ?? 'debug' } });
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
  child.stderr!.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const serving = lines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; port?: number; identity?: string })
      .find((l) => l.msg?.startsWith('serving'));
    if (serving) return { name: options.name, child, lines, port: serving.port!, identity: serving.identity!, exited, log: () => lines.join('\n') };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`replica ${options.name} did not start serving:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The sum of a metric's samples whose line starts with `prefix` (name and labels); undefined when it has none. */
export async function replicaMetric(replica: Replica, prefix: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${replica.port}/metrics`)).text();
  const values = text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => Number(l.split(' ').pop()));
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
}

export const leaderGauge = (r: Replica) => replicaMetric(r, `ddi_ha_leader{identity="${r.identity}"}`);
export const reconcileCount = async (r: Replica) => (await replicaMetric(r, 'ddi_ha_reconcile_total')) ?? 0;
