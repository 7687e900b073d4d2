// Crash-safe applies across controller processes (issue 10 item 3): the real `ddi-ha controller`
// command, run as a child process against the global-setup kube-apiserver and a two-host lab,
// is halted by its test seam (DDI_HA_TEST_HALT_AFTER) at one step of the safe-apply protocol
// and SIGKILLed there; a second `ddi-ha controller` process (in the four step cases a follower with
// leader election since before the crash, as the second replica) then takes over and must finish the
// apply. Everything is checked on the hosts with docker exec, independent of the engine: no
// staged file, no backup, no pending-reload marker, each target equal to what the spec in the
// API server renders, the running keepalived really on the new config (the VIP it holds), and
// status claiming Ready/ConfigInSync only once that is true. See ADR 0025.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, onTestFailed } from 'vitest';
import { API_GROUP_VERSION, type DDIHost, type HAPair, ddiHostSpecSchema, haPairSpecSchema } from '../../src/api/index.js';
import { PENDING_RELOAD_PATH, sha256 } from '../../src/apply/index.js';
import { renderKeepalivedPair } from '../../src/daemons/keepalived/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type Lab, type LabHost, startLab } from '../lab/lab.js';
import { hostSha256, interfaceAddresses } from './apply-lab.js';
import { type Condition, labPairManifests } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-crash-${Date.now().toString(36)}`;
const PAIR = 'crash-vip';
const HOST_LOCK = '/run/lock/ddi-ha-apply.lock';
/** Where the operator's files, staged copies and backups live on a keepalived host. */
const MANAGED_DIRS = ['/etc/keepalived'];

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
const controllers: RunningController[] = [];
/** Every controller a test started, for its logs when the test fails. */
let startedInTest: RunningController[] = [];

interface PairJson {
  metadata: { generation: number };
  spec: unknown;
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

interface RunningController {
  name: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

/**
 * One `ddi-ha controller` process (resync 2 s), logging at debug into `lines`. With
 * `leaderElection()` as `extraArgs`, B runs beside A as a follower and takes over when A dies.
 */
function startController(name: string, extraArgs: string[] = [], env: Record<string, string> = {}): RunningController {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'main.ts'), 'controller', '--kubeconfig', provided.kubeconfigPath, '--namespace', namespace, '--metrics-port', '0', '--resync', '2s', ...extraArgs],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'debug', ...env } },
  );
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
  child.stderr!.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const running = { name, child, lines, exited };
  controllers.push(running);
  startedInTest.push(running);
  return running;
}

async function stopController(c: RunningController, signal: NodeJS.Signals): Promise<number | null> {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
  const code = await c.exited;
  controllers.splice(controllers.indexOf(c), 1);
  return code;
}

const linesMatching = (c: RunningController, text: string) => c.lines.filter((l) => l.includes(text));

/**
 * Leader election on one Lease, with a lease long enough (10 s) for the checks of what the dead
 * leader left to finish before the follower may take over and touch the hosts.
 */
const leaderElection = () => [
  '--leader-elect',
  '--leader-election-namespace',
  namespace,
  '--leader-election-id',
  'crash-safe-apply',
  '--leader-elect-lease-duration',
  '10s',
  '--leader-elect-renew-deadline',
  '7s',
  '--leader-elect-retry-period',
  '1s',
];

async function getPair(): Promise<PairJson> {
  return JSON.parse(await kubectl.run(['get', `hap/${PAIR}`, '-n', namespace, '-o', 'json'])) as PairJson;
}
const condition = (pair: PairJson, type: string) => pair.status?.conditions?.find((c) => c.type === type);

const vipOf = (i: number) => `${lab.network.spare(i)}/${lab.network.prefixLength}`;
const holds = async (host: LabHost, vip: string) => (await interfaceAddresses(host)).includes(vip);
const pairFile = () => `/etc/keepalived/ddi-ha.d/${namespace}_${PAIR}.conf`;

/** What the spec the API server holds now renders, per lab host: the files a finished apply leaves. */
async function renderedNow(): Promise<Map<LabHost, { path: string; content: string }[]>> {
  const pairJson = await getPair();
  const ddiHosts = new Map<string, DDIHost>();
  for (const name of lab.hosts.map((_, i) => `h${i + 1}`)) {
    const item = JSON.parse(await kubectl.run(['get', `ddih/${name}`, '-n', namespace, '-o', 'json'])) as { spec: unknown };
    ddiHosts.set(name, { apiVersion: API_GROUP_VERSION, kind: 'DDIHost', metadata: { name, namespace }, spec: ddiHostSpecSchema.parse(item.spec) });
  }
  const pair: HAPair = { apiVersion: API_GROUP_VERSION, kind: 'HAPair', metadata: { name: PAIR, namespace }, spec: haPairSpecSchema.parse(pairJson.spec) };
  const files = renderKeepalivedPair(pair, ddiHosts).filter((f) => f.ownership !== 'patched');
  return new Map(lab.hosts.map((h, i) => [h, files.filter((f) => f.host === `h${i + 1}`)]));
}

/** The protocol's own leftovers on a host: staged copies and backups, found by name with find(1). */
async function leftovers(host: LabHost): Promise<string[]> {
  const out = await host.run(['find', ...MANAGED_DIRS, '-name', '*.ddi-ha-new', '-o', '-name', '*.ddi-ha-bak']);
  return out.split('\n').filter(Boolean).sort();
}
const markerOn = async (host: LabHost) => {
  const r = await host.exec(['cat', PENDING_RELOAD_PATH]);
  return r.exitCode === 0 ? r.stdout : undefined;
};

/** The lock of a dead holder must go with its SSH connection: ms until `flock -n` gets it on the host. */
async function lockFreedAfterMs(host: LabHost, since: number): Promise<number> {
  await eventually('the host lock to be free', async () => ((await host.exec(['flock', '-n', HOST_LOCK, 'true'])).exitCode === 0 ? true : undefined), 30_000, 100);
  return Date.now() - since;
}

/** Ready and ConfigInSync for the current generation, and only then. */
async function pairReadyAt(generation: number): Promise<PairJson> {
  return eventually(
    `HAPair ${PAIR} Ready and ConfigInSync at generation ${generation}`,
    async () => {
      const p = await getPair();
      const ready = condition(p, 'Ready');
      const inSync = condition(p, 'ConfigInSync');
      return p.status?.observedGeneration === generation && ready?.status === 'True' && ready.observedGeneration === generation && inSync?.status === 'True' ? p : undefined;
    },
    90_000,
    500,
  );
}

/** Everything a finished apply leaves: checked on both hosts and in status. */
async function expectFinished(vip: string, oldVip: string, generation: number): Promise<void> {
  const pair = await pairReadyAt(generation);
  expect(condition(pair, 'ConfigApplied')).toMatchObject({ status: 'True' });
  for (const [host, files] of await renderedNow()) {
    expect(await leftovers(host), host.name).toEqual([]);
    expect(await markerOn(host), host.name).toBeUndefined();
    for (const f of files) expect(await hostSha256(host, f.path), `${host.name}:${f.path}`).toBe(sha256(f.content));
    expect(await host.run(['cat', pairFile()])).toContain(vip);
  }
  // The daemons run that file: the primary holds the new VIP (priority), nobody the old one.
  const [primary, secondary] = lab.hosts as [LabHost, LabHost];
  const settled = async () => (await holds(primary, vip)) && !(await holds(secondary, vip)) && !(await holds(primary, oldVip)) && !(await holds(secondary, oldVip));
  expect(await eventually(`${vip} on the primary alone, ${oldVip} nowhere`, async () => ((await settled()) ? true : undefined), 20_000)).toBe(true);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-crash-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: labPairManifests(lab, { namespace, name: PAIR, virtualIP: vipOf(0), virtualRouterID: 73 }) });
  // A first, uninterrupted controller brings the pair up; each case starts from that settled state.
  const first = startController('setup');
  try {
    await pairReadyAt((await getPair()).metadata.generation);
  } finally {
    expect(await stopController(first, 'SIGTERM'), first.lines.join('\n')).toBe(0);
  }
}, 240_000);

afterAll(async () => {
  for (const c of [...controllers]) await stopController(c, 'SIGKILL');
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What the SIGKILL at each step leaves on the primary, before the next process touches it. */
const LEFT_BY_CRASH = {
  staged: { staged: true, backup: false, marker: false, targetNew: false, runningNew: false },
  'backed-up': { staged: true, backup: true, marker: false, targetNew: false, runningNew: false },
  swapped: { staged: false, backup: true, marker: true, targetNew: true, runningNew: false },
  reloading: { staged: false, backup: true, marker: true, targetNew: true, runningNew: true },
} as const;
type Step = keyof typeof LEFT_BY_CRASH;

describe('SIGKILL of the applying controller at each step of the safe apply; the next process finishes it', () => {
  let vipIndex = 0;

  beforeEach(() => {
    startedInTest = [];
    onTestFailed(() => {
      for (const c of startedInTest) console.log(`--- controller ${c.name}, last 60 lines:\n${c.lines.slice(-60).join('\n')}`);
    });
  });

  it.each(Object.keys(LEFT_BY_CRASH) as Step[])('halted and killed after %s', async (step) => {
    const oldVip = vipOf(vipIndex);
    const vip = vipOf(++vipIndex);
    const h1 = lab.hosts[0]!;

    const a = startController(`A-${step}`, leaderElection(), { DDI_HA_TEST_HALT_AFTER: step });
    await eventually('A to settle on the current spec', async () => (a.lines.some((l) => l.includes('"msg":"reconciled"') && l.includes('"kind":"HAPair"')) ? true : undefined), 60_000);
    expect(linesMatching(a, 'fault-test seam set')).toHaveLength(1);
    expect(linesMatching(a, 'leader election: leading')).toHaveLength(1);
    // B follows with warm caches from the start, as the Deployment's second replica does.
    const b = startController(`B-${step}`, leaderElection());
    await eventually('B to follow', async () => (linesMatching(b, 'leader election: following').length > 0 ? true : undefined), 30_000);
    await kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { virtualIP: vip } })]);
    const generation = (await getPair()).metadata.generation;
    // Both hosts' applies reach the step and stay there.
    await eventually(`A to halt after ${step} on both hosts`, async () => (linesMatching(a, `halted for a fault test after ${step}`).length === 2 ? true : undefined), 60_000, 100);
    const killedAt = Date.now();
    await stopController(a, 'SIGKILL');

    // The crash left exactly what this step leaves; nobody has touched it since.
    const left = LEFT_BY_CRASH[step];
    const names = await leftovers(h1);
    expect(names.some((n) => n.endsWith('.ddi-ha-new')), names.join(' ')).toBe(left.staged);
    expect(names.some((n) => n.endsWith('.ddi-ha-bak')), names.join(' ')).toBe(left.backup);
    const marker = await markerOn(h1);
    expect(marker !== undefined, String(marker)).toBe(left.marker);
    if (left.marker) expect(marker).toMatch(new RegExp(`^keepalived\\.service\\nfile existed ${pairFile().replace(/\./g, '\\.')}$`, 'm'));
    expect((await h1.run(['cat', pairFile()])).includes(vip)).toBe(left.targetNew);
    if (left.runningNew) expect(await eventually('the reloaded keepalived to take the new VIP', async () => ((await holds(h1, vip)) ? true : undefined), 20_000)).toBe(true);
    else {
      expect(await holds(h1, vip)).toBe(false);
      expect(await holds(h1, oldVip)).toBe(true);
    }
    // The dead process's host lock went with its SSH connection.
    const lockMs = await lockFreedAfterMs(h1, killedAt);
    console.log(`crash after ${step}: host lock free ${lockMs} ms after the SIGKILL`);
    // A wrote no status for the new generation: it never claimed the apply.
    expect((await getPair()).status?.observedGeneration).toBeLessThan(generation);

    // B wrote nothing while it followed; it takes the Lease a lease duration after A's last renewal.
    expect(b.lines.filter((l) => /"msg":"(applied|reconciled)"/.test(l))).toEqual([]);
    await expectFinished(vip, oldVip, generation);
    const ledAt = b.lines.find((l) => l.includes('leader election: leading'));
    expect(ledAt, b.lines.slice(-30).join('\n')).toBeDefined();
    console.log(`crash after ${step}: B (the follower) finished the apply ${Date.now() - killedAt} ms after the SIGKILL`);
    expect(b.lines.filter((l) => l.includes('halted for a fault test'))).toEqual([]);
    expect(await stopController(b, 'SIGTERM'), b.lines.slice(-30).join('\n')).toBe(0);
  }, 150_000);

  it('killed during the reload, and the new config then fails its reload: the next process rolls the files back and reloads the old ones', async () => {
    const h1 = lab.hosts[0]!;
    const oldVip = vipOf(vipIndex);
    const vip = vipOf(++vipIndex);
    const oldFiles = await renderedNow();
    const a = startController('A-failing', [], { DDI_HA_TEST_HALT_AFTER: 'reloading' });
    await eventually('A to settle on the current spec', async () => (a.lines.some((l) => l.includes('"msg":"reconciled"') && l.includes('"kind":"HAPair"')) ? true : undefined), 60_000);
    await kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { virtualIP: vip } })]);
    const generation = (await getPair()).metadata.generation;
    await eventually('A to halt after reloading on both hosts', async () => (linesMatching(a, 'halted for a fault test after reloading').length === 2 ? true : undefined), 60_000, 100);
    await stopController(a, 'SIGKILL');
    // From now on h1's keepalived refuses any reload with the new VIP in the pair's file, as a
    // daemon does with a config that passed its check but cannot run (no keepalived config in
    // the lab passes `keepalived -t` and then fails a reload, so systemd's ExecReload does it).
    const dropIn = '/run/systemd/system/keepalived.service.d/crash-test-refuse.conf';
    const refuse = `[Service]\nExecReload=\nExecReload=/bin/sh -c '! grep -qF ${vip} ${pairFile()}'\nExecReload=/bin/kill -HUP $MAINPID\n`;
    await h1.run(['sh', '-c', `mkdir -p "$(dirname "$1")" && printf '%s' "$2" > "$1" && systemctl daemon-reload`, 'sh', dropIn, refuse]);
    try {
      const b = startController('B-failing');
      const failed = await eventually(
        'B to report the rolled-back apply',
        async () => {
          const p = await getPair();
          const applied = condition(p, 'ConfigApplied');
          return p.status?.observedGeneration === generation && applied?.status === 'False' && /rolled back/.test(applied.message) ? p : undefined;
        },
        90_000,
        500,
      );
      // B retries with backoff; stopped between passes, the host shows the rollback alone.
      expect(await stopController(b, 'SIGTERM')).toBe(0);
      expect(condition(failed, 'ConfigApplied')).toMatchObject({ reason: 'ApplyFailed' });
      expect(condition(failed, 'ConfigApplied')!.message).toMatch(/h1: reload failed: .*rolled back/);
      expect(condition(failed, 'Ready')).toMatchObject({ status: 'False' });
      expect(condition(failed, 'ConfigInSync')?.status).not.toBe('True');
      expect(await leftovers(h1)).toEqual([]);
      expect(await markerOn(h1)).toBeUndefined();
      for (const f of oldFiles.get(h1)!) expect(await hostSha256(h1, f.path), f.path).toBe(sha256(f.content));
      // The old config really runs again: the reload after the restore took the new VIP off h1.
      expect(await eventually(`h1 to hold ${oldVip} again`, async () => ((await holds(h1, oldVip)) && !(await holds(h1, vip)) ? true : undefined), 20_000)).toBe(true);
    } finally {
      await h1.run(['sh', '-c', 'rm -f "$1" && systemctl daemon-reload', 'sh', dropIn]);
    }
    // With the reload possible again, the next process applies the spec.
    const c = startController('C-failing');
    await expectFinished(vip, oldVip, generation);
    expect(await stopController(c, 'SIGTERM')).toBe(0);
  }, 200_000);

  it('a drift correction killed after the swap: the file already matches, and the next process still reloads the daemon', async () => {
    const h1 = lab.hosts[0]!;
    const vip = vipOf(vipIndex);
    const handEdited = vipOf(20);
    const generation = (await getPair()).metadata.generation;
    // An admin's edit, loaded: keepalived on h1 runs a VIP the spec does not have.
    await h1.run(['sed', '-i', `s#${vip} #${handEdited} #`, pairFile()]);
    await h1.run(['systemctl', 'reload', 'keepalived']);
    expect(await eventually('h1 to run the hand edit', async () => ((await holds(h1, handEdited)) ? true : undefined), 20_000)).toBe(true);

    // A finds the drift on its first pass, corrects it (driftPolicy Correct) and halts after the swap.
    const a = startController('A-drift', [], { DDI_HA_TEST_HALT_AFTER: 'swapped' });
    await eventually('A to halt after the swap on h1', async () => (linesMatching(a, 'halted for a fault test after swapped').length === 1 ? true : undefined), 60_000, 100);
    await stopController(a, 'SIGKILL');
    // The file is what the spec renders, the daemon still runs the hand edit, and status
    // (written before the edit) still says in sync: only the marker tells.
    expect(await h1.run(['cat', pairFile()])).toContain(vip);
    expect(await holds(h1, handEdited)).toBe(true);
    expect(await markerOn(h1)).toMatch(/^keepalived\.service$/m);
    expect(condition(await getPair(), 'ConfigInSync')).toMatchObject({ status: 'True' });

    const b = startController('B-drift');
    // Status said Ready all along, so only the host tells when B is done: the marker goes last.
    const reloaded = async () => (await holds(h1, vip)) && !(await holds(h1, handEdited)) && (await markerOn(h1)) === undefined;
    expect(await eventually('B to reload h1 onto the spec and clear the marker', async () => ((await reloaded()) ? true : undefined), 60_000)).toBe(true);
    await expectFinished(vip, handEdited, generation);
    expect(await stopController(b, 'SIGTERM')).toBe(0);
  }, 150_000);
});
