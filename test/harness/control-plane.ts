// A real, single-node Kubernetes control plane (etcd + kube-apiserver) for integration tests.
//
// The binaries come from hack/testbin.sh, which builds them from the Go module proxy. There is
// no controller-manager: nothing garbage-collects, and namespaces never finish deleting, so
// tests should use unique names rather than rely on cleanup.
//
// Everything listens on 127.0.0.1 only, in a fresh temp dir with its own CA. The children run
// in their own process groups behind a small shell guard that kills them when this Node
// process goes away, even by SIGKILL, so a crashed test run does not leave an apiserver behind.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface TestBinaries {
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  /** The Kubernetes release the binaries were built from, e.g. "v1.36.3". */
  version: string;
}

export interface ControlPlaneOptions {
  /** Where kube-apiserver, etcd and kubectl live. Default: $DDI_HA_TESTBIN_DIR, else hack/testbin.sh. */
  binDir?: string;
  /** How long to wait for /readyz. Default 60 s. */
  readyTimeoutMs?: number;
  /** Keep the temp dir (certs, logs, etcd data) after stop(). Default: $DDI_HA_KEEP_CONTROL_PLANE=1. */
  keepWorkDir?: boolean;
  /** Extra kube-apiserver flags, e.g. ["--feature-gates=Foo=true"]. */
  apiserverFlags?: string[];
}

export interface ControlPlane {
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  caCertPath: string;
  logDir: string;
  workDir: string;
  binaries: TestBinaries;
  /** etcd's client URL (plain HTTP on 127.0.0.1), for its v3 JSON gateway. */
  etcdUrl: string;
  /** Stops both processes; `keepWorkDir` keeps certificates, logs and etcd data this once. */
  stop(options?: { keepWorkDir?: boolean }): Promise<void>;
  /** Stops kube-apiserver only (SIGTERM, SIGKILL after 10 s); etcd and its data stay. */
  stopApiserver(): Promise<void>;
  /** Starts kube-apiserver again with the same port, certificates, flags and etcd, and waits for /readyz. */
  startApiserver(): Promise<void>;
  /**
   * Compacts etcd at its current revision (physically: the old revisions are gone from disk), so
   * any watch from an older resourceVersion gets 410 Gone. Returns the revision compacted at.
   */
  compactEtcd(): Promise<number>;
}

/**
 * Finds the control-plane binaries: $DDI_HA_TESTBIN_DIR if set (a directory holding
 * kube-apiserver, etcd and kubectl, as printed by hack/testbin.sh), else runs
 * hack/testbin.sh, which builds them on a cold cache and is a no-op on a warm one.
 */
export async function findTestBinaries(binDir = process.env.DDI_HA_TESTBIN_DIR): Promise<TestBinaries> {
  let vars: Record<string, string>;
  if (binDir) {
    vars = { DDI_HA_TESTBIN_DIR: binDir, K8S_VERSION: readVersionFromGoMod() };
  } else {
    const script = join(repoRoot, 'hack', 'testbin.sh');
    // A cold build takes many minutes on a small machine; the script prints progress to stderr.
    const { stdout } = await execFileAsync(script, { maxBuffer: 16 * 1024 * 1024, timeout: 60 * 60 * 1000 });
    vars = Object.fromEntries(
      stdout
        .split('\n')
        .map((line) => /^([A-Z0-9_]+)=(.*)$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        // The script prints shell-quoted values (printf %q); undo the backslash escapes.
        .map((m) => [m[1]!, m[2]!.replace(/\\(.)/g, '$1')]),
    );
  }
  const dir = vars.DDI_HA_TESTBIN_DIR;
  if (!dir) throw new Error('hack/testbin.sh did not print DDI_HA_TESTBIN_DIR');
  const binaries: TestBinaries = {
    kubeApiserver: vars.KUBE_APISERVER ?? join(dir, 'kube-apiserver'),
    etcd: vars.ETCD ?? join(dir, 'etcd'),
    kubectl: vars.KUBECTL ?? join(dir, 'kubectl'),
    version: vars.K8S_VERSION ?? readVersionFromGoMod(),
  };
  for (const path of [binaries.kubeApiserver, binaries.etcd, binaries.kubectl]) {
    if (!existsSync(path)) throw new Error(`control-plane binary ${path} is missing; run hack/testbin.sh`);
  }
  return binaries;
}

/** The pinned Kubernetes release, read from the wrapper module that builds the binaries. */
export function readVersionFromGoMod(): string {
  const goMod = readFileSync(join(repoRoot, 'hack', 'testbin', 'go.mod'), 'utf8');
  const m = /^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)/m.exec(goMod);
  if (!m) throw new Error('cannot find k8s.io/kubernetes in hack/testbin/go.mod');
  return m[1]!;
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = await findTestBinaries(opts.binDir);
  // The free ports are picked before the binaries bind them; another process can win the race.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binaries, opts);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startOnce(binaries: TestBinaries, opts: ControlPlaneOptions): Promise<ControlPlane> {
  const keepWorkDir = opts.keepWorkDir ?? process.env.DDI_HA_KEEP_CONTROL_PLANE === '1';
  const workDir = mkdtempSync(join(tmpdir(), 'ddi-ha-control-plane-'));
  const logDir = join(workDir, 'logs');
  const pkiDir = join(workDir, 'pki');
  mkdirSync(logDir);
  mkdirSync(pkiDir);

  const [etcdClientPort, etcdPeerPort, apiserverPort] = await freePorts(3);
  const server = `https://127.0.0.1:${apiserverPort}`;
  const pki = await writePki(pkiDir);
  const children: Managed[] = [];
  let stopped = false;

  const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
  const apiserverArgs = [
    `--etcd-servers=${etcdUrl}`,
    `--cert-dir=${join(workDir, 'apiserver-certs')}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--client-ca-file=${pki.caCert}`,
    `--secure-port=${apiserverPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=RBAC',
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    `--service-account-issuer=${server}`,
    `--service-account-key-file=${pki.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    '--profiling=false',
    ...(opts.apiserverFlags ?? []),
  ];
  const isApiserver = (c: Managed) => c.name === 'kube-apiserver';
  const startApiserver = async (): Promise<void> => {
    if (stopped) throw new Error('the control plane is stopped');
    if (children.some(isApiserver)) throw new Error('kube-apiserver is already running');
    // Appends to the same log: one file tells the whole story of a restart.
    children.push(spawnManaged('kube-apiserver', binaries.kubeApiserver, logDir, apiserverArgs));
    await waitUntil('kube-apiserver /readyz', opts.readyTimeoutMs ?? 60_000, children, () => httpsOk(`${server}/readyz`, pki));
  };
  const stopApiserver = async (): Promise<void> => {
    const apiserver = children.find(isApiserver);
    if (!apiserver) return;
    await apiserver.stop(10_000);
    children.splice(children.indexOf(apiserver), 1);
  };
  const compactEtcd = async (): Promise<number> => {
    // etcd's gRPC gateway: JSON over HTTP, int64 as strings. etcdctl is not among the built binaries.
    const post = async (path: string, body: object): Promise<Record<string, unknown>> => {
      const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status}: ${text}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    // Any key: only the header's revision is wanted. "AA==" is the key "\0".
    const range = await post('/v3/kv/range', { key: 'AA==', limit: 1 });
    const revision = Number((range.header as { revision?: string } | undefined)?.revision);
    if (!Number.isInteger(revision) || revision <= 0) throw new Error(`etcd /v3/kv/range: no revision in ${JSON.stringify(range)}`);
    await post('/v3/kv/compaction', { revision: String(revision), physical: true });
    return revision;
  };

  const killAll = (signal: NodeJS.Signals): void => {
    for (const child of children) child.signal(signal);
  };
  // Exit and signal handlers must be synchronous: kill, then remove what we can.
  const abandon = (): void => {
    killAll('SIGKILL');
    if (!keepWorkDir) {
      try {
        rmSync(workDir, { recursive: true, force: true });
      } catch {
        // A child may still be writing; a temp dir left behind is harmless.
      }
    }
  };
  const onExit = (): void => abandon();
  const onSignal = (signal: NodeJS.Signals): void => {
    abandon();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Keep the default meaning of the signal unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const stop = async (options: { keepWorkDir?: boolean } = {}): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // apiserver first, so it does not log a storm of etcd errors while shutting down.
    for (const child of [...children].reverse()) await child.stop(10_000);
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!(options.keepWorkDir ?? keepWorkDir)) rmSync(workDir, { recursive: true, force: true });
  };

  try {
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    children.push(
      spawnManaged('etcd', binaries.etcd, logDir, [
        `--name=default`,
        `--data-dir=${join(workDir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${etcdPeerUrl}`,
        `--initial-advertise-peer-urls=${etcdPeerUrl}`,
        `--initial-cluster=default=${etcdPeerUrl}`,
        // Test data is disposable; fsync dominates etcd latency on small VMs.
        '--unsafe-no-fsync',
      ]),
    );
    await waitUntil('etcd /health', 30_000, children, () => httpOk(`${etcdUrl}/health`));

    await startApiserver();
  } catch (err) {
    const tails = [...children].reverse().map((c) => `--- ${c.name} (${c.logPath}), last lines:\n${tailFile(c.logPath, 40)}`).join('\n');
    // The logs are the only clue, so the work dir stays even if the caller asked for cleanup.
    stopped = true;
    for (const child of [...children].reverse()) await child.stop(5_000);
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw new Error(`control plane failed to start: ${(err as Error).message}\nwork dir kept: ${workDir}\n${tails}`, {
      cause: err,
    });
  }

  const kubeconfigPath = join(workDir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfig(server, pki), { mode: 0o600 });
  return { kubeconfigPath, server, caCertPath: pki.caCert, logDir, workDir, binaries, etcdUrl, stop, stopApiserver, startApiserver, compactEtcd };
}

// ---------------------------------------------------------------------------------------------

interface Pki {
  caCert: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
}

async function writePki(dir: string): Promise<Pki> {
  const p = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'];
  await openssl([
    'req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-subj', '/CN=ddi-ha-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const signed = ['-CA', p('ca.crt'), '-CAkey', p('ca.key')];
  await openssl([
    'req', '-x509', ...ec, ...signed, '-keyout', p('apiserver.key'), '-out', p('apiserver.crt'),
    '-subj', '/CN=kube-apiserver',
    '-addext', 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth',
  ]);
  await openssl([
    'req', '-x509', ...ec, ...signed, '-keyout', p('admin.key'), '-out', p('admin.crt'),
    '-subj', '/O=system:masters/CN=ddi-ha-test-admin',
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=clientAuth',
  ]);
  const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(p('sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(p('sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  return {
    caCert: p('ca.crt'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    serviceAccountKey: p('sa.key'),
    serviceAccountPublicKey: p('sa.pub'),
  };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

function kubeconfig(server: string, pki: Pki): string {
  // JSON is YAML; kubectl and @kubernetes/client-node read it as a kubeconfig.
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'ddi-ha-test', cluster: { server, 'certificate-authority': pki.caCert } }],
    users: [{ name: 'admin', user: { 'client-certificate': pki.adminCert, 'client-key': pki.adminKey } }],
    contexts: [{ name: 'ddi-ha-test', context: { cluster: 'ddi-ha-test', user: 'admin', namespace: 'default' } }],
    'current-context': 'ddi-ha-test',
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------

interface Managed {
  name: string;
  logPath: string;
  /** Non-null once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  signal(signal: NodeJS.Signals): void;
  stop(timeoutMs: number): Promise<void>;
}

// Runs "$@" and kills it when fd 3 (a pipe from Node) reaches EOF, i.e. when Node is gone.
// A non-interactive shell gives background jobs /dev/null as stdin, hence the explicit fd 3.
const PARENT_DEATH_GUARD = `
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
{ read -r _ <&3; kill -KILL "$child" 2>/dev/null; } &
guard=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  wait "$child"; status=$?
  kill -0 "$child" 2>/dev/null || break
done
kill "$guard" 2>/dev/null
exit "$status"
`;

function spawnManaged(name: string, binary: string, logDir: string, args: string[]): Managed {
  const logPath = join(logDir, `${name}.log`);
  const logFd = openSync(logPath, 'a');
  writeFileSync(logFd, `$ ${binary} ${args.join(' ')}\n`);
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', PARENT_DEATH_GUARD, name, binary, ...args], {
      // Own process group, so a group kill reaches the guard shell and the binary alike.
      detached: true,
      stdio: ['pipe', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  // Never let the guard pipe or the child keep the test runner alive.
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.stdin?.on('error', () => {});

  const managed: Managed = {
    name,
    logPath,
    exit: null,
    signal(signal) {
      if (managed.exit || child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    },
    async stop(timeoutMs) {
      if (managed.exit) return;
      child.ref(); // keep Node alive until the child is really gone
      const exited = new Promise<void>((res) => child.once('exit', () => res()));
      managed.signal('SIGTERM');
      const timer = setTimeout(() => managed.signal('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
  child.once('exit', (code, signal) => {
    managed.exit = { code, signal };
  });
  return managed;
}

async function waitUntil(what: string, timeoutMs: number, children: Managed[], probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = children.find((c) => c.exit);
    if (dead) {
      throw new Error(`${dead.name} exited (code ${dead.exit?.code}, signal ${dead.exit?.signal}) while waiting for ${what}`);
    }
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.ok;
  } catch {
    return false;
  }
}

function httpsOk(url: string, pki: Pki): Promise<boolean> {
  return new Promise((res) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 2_000,
      },
      (response) => {
        response.resume();
        res(response.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(false));
    req.end();
  });
}

/** Ports the kernel considers free right now. Small race, acceptable on a test machine. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<ReturnType<typeof createServer>>((res, rej) => {
        const s = createServer();
        s.once('error', rej);
        s.listen(0, '127.0.0.1', () => res(s));
      });
    }),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected listen address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export function tailFile(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch (err) {
    return `(cannot read: ${(err as Error).message})`;
  }
}

// By hand: `npx tsx test/harness/control-plane.ts` starts a control plane, prints how to use
// it and runs until Ctrl-C. Tests started meanwhile with KUBECONFIG_DDI_HA_TEST set reuse it.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const cp = await startControlPlane();
  process.stdout.write(
    [
      `# kube-apiserver ${cp.binaries.version} ready at ${cp.server} after ${Date.now() - started} ms; Ctrl-C stops it.`,
      `# logs: ${cp.logDir}`,
      `export KUBECONFIG_DDI_HA_TEST=${cp.kubeconfigPath}`,
      `export KUBECONFIG=${cp.kubeconfigPath}`,
      `export DDI_HA_TESTBIN_DIR=${dirname(cp.binaries.kubeApiserver)}`,
      '',
    ].join('\n'),
  );
  const shutdown = (): void => {
    void cp.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  setInterval(() => {}, 1 << 30);
}
