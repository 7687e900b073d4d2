// The Helm chart (charts/ddi-ha-operator) as helm and a real kube-apiserver see it: `helm lint`,
// `helm template` with the defaults and with watchNamespace, its crds/ and manifests/install.yaml
// not stale, the API server accepting every object, a real `helm install`, `kubectl auth can-i`
// as its service account for every call the controller makes (and some it must not make), and
// the `ddi-ha controller` command run with the Deployment's own arguments and a token of the
// chart's service account (watching every namespace on an API server of its own, and one
// namespace on the shared one): it lists and watches every kind, reads the Secrets, writes every
// status, adds the HAPair finalizer and drops it again. helm is hack/helm.sh's ($HELM).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KINDS } from '../../src/api/index.js';
import { CLEANUP_FINALIZER, IN_USE_FINALIZER } from '../../src/controller/index.js';
import { type KubeObject, defaultLabManifests } from '../../src/lab/default-manifests.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.js';
import { eventually } from './observe-lab.js';

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const chartDir = join(repoRoot, 'charts', 'ddi-ha-operator');
const RULES_FILE = 'files/ddi-ha-alerts.rules.yaml';
const provided = inject('ddiHaControlPlane');
// Unique per run: without a controller-manager, namespaces never finish deleting.
const run = Date.now().toString(36);

type Doc = Record<string, any> & { kind: string; metadata: Record<string, any> & { name: string; namespace?: string } };

const plurals = KINDS.map((k) => k.plural).sort();
/** What the controller calls (src/controller/kube-client.ts, watcher.ts), rule by rule. */
const EXPECTED_RULES = [
  { apiGroups: ['ddi-ha.io'], resources: plurals, verbs: ['list', 'watch'] },
  { apiGroups: ['ddi-ha.io'], resources: plurals.map((p) => `${p}/status`), verbs: ['patch'] },
  { apiGroups: ['ddi-ha.io'], resources: ['ddihosts', 'hapairs', 'dhcpfailoverpeers', 'keahaclusters'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
];
/** The leader election's Role, in the release's namespace: its one Lease by name, and create. */
const leaseRules = (lease: string) => [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [lease], verbs: ['get', 'list', 'update', 'watch'] },
];
const LEADER_ARGS = (lease: string, namespace: string) => [
  '--leader-elect',
  '--leader-election-namespace',
  namespace,
  '--leader-election-id',
  lease,
  '--leader-elect-lease-duration',
  '15s',
  '--leader-elect-renew-deadline',
  '10s',
  '--leader-elect-retry-period',
  '2s',
];
const POD_ENV = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
];
const sortedRule = (r: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }) => ({
  apiGroups: [...r.apiGroups].sort(),
  resources: [...r.resources].sort(),
  ...(r.resourceNames ? { resourceNames: [...r.resourceNames].sort() } : {}),
  verbs: [...r.verbs].sort(),
});
const named = (docs: Doc[], kind: string, name: string) => {
  const found = docs.filter((d) => d.kind === kind && d.metadata.name === name);
  expect(found, `${kind} ${name}`).toHaveLength(1);
  return found[0]!;
};

let work: string;
let helmBinary: string;

async function helm(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(helmBinary, args, {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
      // helm's config, cache and the discovery cache stay in the test's dir, not in $HOME.
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(work, 'helm-cache'),
        HELM_CONFIG_HOME: join(work, 'helm-config'),
        HELM_DATA_HOME: join(work, 'helm-data'),
        KUBECACHEDIR: join(work, 'kube-cache'),
      },
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`, { cause: err });
  }
}

async function render(namespace: string, sets: readonly string[] = [], chart = chartDir, release = 'ddi-ha-operator'): Promise<Doc[]> {
  const out = await helm(['template', release, chart, '--namespace', namespace, ...sets.flatMap((s) => ['--set', s])]);
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

const ofKind = (docs: readonly Doc[], kind: string) => docs.filter((d) => d.kind === kind);
const only = (docs: readonly Doc[], kind: string): Doc => {
  const found = ofKind(docs, kind);
  expect(found.map((d) => d.metadata.name), kind).toHaveLength(1);
  return found[0]!;
};
const container = (docs: readonly Doc[]) => only(docs, 'Deployment').spec.template.spec.containers[0];

/** The chart copied to a temp dir, for variants of files/ the repository must not get. */
function chartCopy(name: string): string {
  const dir = join(work, name);
  cpSync(chartDir, dir, { recursive: true });
  return dir;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ddi-ha-chart-'));
  helmBinary = process.env.HELM ?? (await helmFromScript());
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the chart, rendered', () => {
  it("crds/ is a byte-for-byte copy of the repository's crds/", () => {
    const repoCrds = readdirSync(join(repoRoot, 'crds')).sort();
    expect(readdirSync(join(chartDir, 'crds')).sort(), 'run manifests/generate.sh').toEqual(repoCrds);
    for (const f of repoCrds) {
      const same = readFileSync(join(repoRoot, 'crds', f)).equals(readFileSync(join(chartDir, 'crds', f)));
      expect(same, `charts/ddi-ha-operator/crds/${f} differs from crds/${f}: run manifests/generate.sh`).toBe(true);
    }
  });

  it("Chart.yaml's version and appVersion are package.json's version", () => {
    const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect({ version: chart.version, appVersion: chart.appVersion }).toEqual({ version, appVersion: version });
  });

  it('helm lint --strict passes with the defaults and with every option on', async () => {
    expect(await helm(['lint', '--strict', chartDir])).toContain('0 chart(s) failed');
    const all = ['watchNamespace=ddi', 'serviceMonitor.enabled=true', 'prometheusRule.enabled=true', 'rbac.create=true'];
    expect(await helm(['lint', '--strict', chartDir, ...all.flatMap((s) => ['--set', s])])).toContain('0 chart(s) failed');
  });

  it('defaults: a ClusterRole of exactly what the controller calls, two leader-elected replicas rolled one at a time, a PodDisruptionBudget, probes on 8080, a locked-down container', async () => {
    const docs = await render('ddi-ha-system');
    expect(docs.map((d) => d.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
    const leaseRole = named(docs, 'Role', 'ddi-ha-operator-leader-election');
    expect(leaseRole.metadata.namespace).toBe('ddi-ha-system');
    expect(leaseRole.rules.map(sortedRule)).toEqual(leaseRules('ddi-ha-operator').map(sortedRule));
    expect(named(docs, 'RoleBinding', 'ddi-ha-operator-leader-election')).toMatchObject({
      metadata: { namespace: 'ddi-ha-system' },
      roleRef: { kind: 'Role', name: 'ddi-ha-operator-leader-election' },
      subjects: [{ kind: 'ServiceAccount', name: 'ddi-ha-operator', namespace: 'ddi-ha-system' }],
    });
    expect(only(docs, 'ClusterRole').rules.map(sortedRule)).toEqual(EXPECTED_RULES.map(sortedRule));
    const binding = only(docs, 'ClusterRoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ddi-ha-operator' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'ddi-ha-operator', namespace: 'ddi-ha-system' }]);

    const deployment = only(docs, 'Deployment');
    expect(deployment.spec.replicas).toBe(2);
    // The new pod (a follower) comes up before an old one goes.
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pdb = only(docs, 'PodDisruptionBudget');
    expect(pdb.spec).toEqual({ minAvailable: 1, selector: { matchLabels: deployment.spec.selector.matchLabels } });
    const pod = deployment.spec.template.spec;
    expect(pod.topologySpreadConstraints.map((t: { topologyKey: string; labelSelector: unknown; whenUnsatisfiable: string }) => [t.topologyKey, t.whenUnsatisfiable, t.labelSelector])).toEqual([
      ['kubernetes.io/hostname', 'ScheduleAnyway', { matchLabels: deployment.spec.selector.matchLabels }],
      ['topology.kubernetes.io/zone', 'ScheduleAnyway', { matchLabels: deployment.spec.selector.matchLabels }],
    ]);
    expect(pod.serviceAccountName).toBe('ddi-ha-operator');
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    const c = container(docs);
    expect(c.image).toBe('ddi-ha-operator:0.1.0');
    expect(c.args).toEqual(['controller', '--metrics-port', '8080', '--resync', '60s', '--workers', '4', ...LEADER_ARGS('ddi-ha-operator', 'ddi-ha-system')]);
    expect(c.env).toEqual([{ name: 'LOG_LEVEL', value: 'info' }, ...POD_ENV]);
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });

    const service = only(docs, 'Service');
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(service.spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
  });

  it('watchNamespace: a Role and RoleBinding in that namespace instead, and --namespace', async () => {
    const docs = await render('ops', ['watchNamespace=dns-site']);
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'PodDisruptionBudget', 'Role', 'Role', 'RoleBinding', 'RoleBinding', 'Service', 'ServiceAccount']);
    const role = named(docs, 'Role', 'ddi-ha-operator');
    expect(role.metadata.namespace).toBe('dns-site');
    expect(role.rules.map(sortedRule)).toEqual(EXPECTED_RULES.map(sortedRule));
    // The Lease stays in the release's namespace, whatever namespace is watched.
    expect(named(docs, 'Role', 'ddi-ha-operator-leader-election').metadata.namespace).toBe('ops');
    const binding = named(docs, 'RoleBinding', 'ddi-ha-operator');
    expect(binding.metadata.namespace).toBe('dns-site');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'ddi-ha-operator', namespace: 'ops' }]);
    expect(container(docs).args).toEqual(['controller', '--metrics-port', '8080', '--resync', '60s', '--workers', '4', '--namespace', 'dns-site', ...LEADER_ARGS('ddi-ha-operator', 'ops')]);
    expect(only(docs, 'Deployment').metadata.namespace).toBe('ops');
  });

  it('values reach the Deployment: image, resync, workers, logLevel, scheduling', async () => {
    const docs = await render('ddi-ha-system', [
      'image.repository=registry.invalid/ddi/ddi-ha-operator',
      'image.tag=0.1.0-test',
      'resync=5m',
      'workers=2',
      'logLevel=debug',
      'nodeSelector.kubernetes\\.io/os=linux',
    ]);
    const c = container(docs);
    expect(c.image).toBe('registry.invalid/ddi/ddi-ha-operator:0.1.0-test');
    expect(c.args).toEqual(['controller', '--metrics-port', '8080', '--resync', '5m', '--workers', '2', ...LEADER_ARGS('ddi-ha-operator', 'ddi-ha-system')]);
    expect(c.env).toEqual([{ name: 'LOG_LEVEL', value: 'debug' }, ...POD_ENV]);
    expect(only(docs, 'Deployment').spec.template.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
  });

  it('leader election values: durations reach the flags; one replica without it is a Recreate Deployment with no Lease Role and no PDB; two without it are refused', async () => {
    const tuned = await render('ddi-ha-system', ['leaderElection.leaseDuration=30s', 'leaderElection.renewDeadline=20s', 'leaderElection.retryPeriod=4s', 'replicaCount=3']);
    expect(container(tuned).args).toEqual(expect.arrayContaining(['--leader-elect-lease-duration', '30s', '--leader-elect-renew-deadline', '20s', '--leader-elect-retry-period', '4s']));
    expect(only(tuned, 'Deployment').spec.replicas).toBe(3);
    const single = await render('ddi-ha-system', ['replicaCount=1', 'leaderElection.enabled=false']);
    expect(single.map((d) => d.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Service', 'ServiceAccount']);
    expect(only(single, 'Deployment').spec.strategy).toEqual({ type: 'Recreate' });
    expect(container(single).args).not.toContain('--leader-elect');
    await expect(render('ddi-ha-system', ['leaderElection.enabled=false'])).rejects.toThrow('replicaCount > 1 needs leaderElection.enabled=true');
  });

  it(`ServiceMonitor and PrometheusRule are off by default; the PrometheusRule carries ${RULES_FILE} verbatim`, async () => {
    // The rules file is another part's; until it exists, a placeholder in a copy of the chart stands in.
    const hasRules = readdirSync(join(chartDir, 'files'), { withFileTypes: true }).some((e) => e.name === 'ddi-ha-alerts.rules.yaml');
    let chart = chartDir;
    if (!hasRules) {
      chart = chartCopy('chart-with-placeholder-rules');
      writeFileSync(join(chart, RULES_FILE), 'groups:\n  - name: placeholder\n    rules:\n      - alert: Placeholder\n        expr: vector(1)\n');
    }
    const docs = await render('ddi-ha-system', ['serviceMonitor.enabled=true', 'prometheusRule.enabled=true', 'serviceMonitor.labels.release=prom'], chart);
    const monitor = only(docs, 'ServiceMonitor');
    expect(monitor.metadata.labels.release).toBe('prom');
    expect(monitor.spec.selector.matchLabels).toEqual(only(docs, 'Service').spec.selector);
    expect(monitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
    const rule = only(docs, 'PrometheusRule');
    expect(rule.spec).toEqual(parse(readFileSync(join(chart, RULES_FILE), 'utf8')));
    // Prometheus templates survive: .Files.Get is not templated by helm.
    if (hasRules) expect(JSON.stringify(rule.spec)).toContain('{{ $labels.');

    const bare = chartCopy('chart-without-rules');
    rmSync(join(bare, 'files'), { recursive: true, force: true });
    expect(ofKind(await render('ddi-ha-system', [], bare), 'PrometheusRule')).toEqual([]);
    await expect(render('ddi-ha-system', ['prometheusRule.enabled=true'], bare)).rejects.toThrow(`prometheusRule.enabled needs ${RULES_FILE}`);
  });

  it('manifests/install.yaml is what manifests/generate.sh writes from the chart', async () => {
    await execFileAsync('bash', [join(repoRoot, 'manifests', 'generate.sh'), '--check'], { env: { ...process.env, HELM: helmBinary } }).catch((err: { stderr?: string }) => {
      throw new Error(err.stderr ?? String(err));
    });
  });
});

/** The Lease: create, and get/update/watch it by name, in the release's namespace only; no other Lease, no delete. */
async function expectLeaseAccess(kc: Kubectl, sa: string, releaseNamespace: string, lease: string, elsewhere: string): Promise<void> {
  const ask = async (verb: string, resource: string, namespace: string) => `${verb} ${resource} in ${namespace} -> ${await canI(kc, sa, verb, resource, ['-n', namespace])}`;
  const leases = 'leases.coordination.k8s.io';
  const yes = await Promise.all([ask('create', leases, releaseNamespace), ...['get', 'update', 'watch'].map((v) => ask(v, `${leases}/${lease}`, releaseNamespace))]);
  expectAll(yes, 'yes');
  const no = await Promise.all([
    ask('delete', `${leases}/${lease}`, releaseNamespace),
    ask('get', `${leases}/kube-controller-manager`, releaseNamespace),
    ask('update', `${leases}/other`, releaseNamespace),
    ask('list', leases, releaseNamespace),
    ask('create', leases, elsewhere),
    ask('get', `${leases}/${lease}`, elsewhere),
  ]);
  expectAll(no, 'no');
}

/** A namespace whose pods must meet the restricted Pod Security Standard. */
async function restrictedNamespace(kc: Kubectl, name: string): Promise<void> {
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } };
  await kc.run(['apply', '--server-side', '--field-manager=ddi-ha-chart-test', '-f', '-'], { stdin: JSON.stringify(ns) });
}

async function installCrds(kc: Kubectl): Promise<void> {
  await kc.applyServerSide([join(repoRoot, 'crds')]);
  await kc.waitForCrds();
}

async function canI(kc: Kubectl, serviceAccount: string, verb: string, resource: string, where: string[]): Promise<string> {
  const { binary, kubeconfig, cacheDir } = kc.options;
  const args = ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir!, 'auth', 'can-i', verb, resource, `--as=${serviceAccount}`, ...where];
  // can-i exits 1 for "no"; the answer is on stdout either way.
  const { stdout } = await execFileAsync(binary, args).catch((err: { stdout?: string; stderr?: string }) => {
    if (err.stdout?.trim() === 'no') return { stdout: 'no' };
    throw new Error(`kubectl ${args.join(' ')}: ${err.stderr ?? String(err)}`);
  });
  return stdout.trim();
}

/** Every can-i answer at once: "verb resource[/sub] -> yes|no". */
async function answers(kc: Kubectl, serviceAccount: string, checks: readonly [string, string][], where: string[]): Promise<string[]> {
  return Promise.all(
    checks.map(async ([verb, resource]) => {
      const [res, sub] = resource.split('/');
      const answer = await canI(kc, serviceAccount, verb, res!, [...where, ...(sub ? [`--subresource=${sub}`] : [])]);
      return `${verb} ${resource} -> ${answer}`;
    }),
  );
}

const NEEDED: [string, string][] = [
  ...plurals.flatMap((p): [string, string][] => [
    ['list', `${p}.ddi-ha.io`],
    ['watch', `${p}.ddi-ha.io`],
    ['patch', `${p}.ddi-ha.io/status`],
  ]),
  ['patch', 'hapairs.ddi-ha.io'],
  ['patch', 'ddihosts.ddi-ha.io'],
  ['patch', 'dhcpfailoverpeers.ddi-ha.io'],
  ['patch', 'keahaclusters.ddi-ha.io'],
  ['get', 'secrets'],
  ['create', 'events.events.k8s.io'],
  ['patch', 'events.events.k8s.io'],
];
const FORBIDDEN: [string, string][] = [
  ['list', 'secrets'],
  ['watch', 'secrets'],
  ['update', 'secrets'],
  ['delete', 'hapairs.ddi-ha.io'],
  ['create', 'hapairs.ddi-ha.io'],
  ['update', 'hapairs.ddi-ha.io'],
  ['get', 'hapairs.ddi-ha.io'],
  ['delete', 'ddihosts.ddi-ha.io'],
  ['delete', 'dhcpfailoverpeers.ddi-ha.io'],
  ['update', 'keahaclusters.ddi-ha.io'],
  ['create', 'pods'],
  ['get', 'events.events.k8s.io'],
  ['list', 'events.events.k8s.io'],
  ['watch', 'events.events.k8s.io'],
  ['update', 'events.events.k8s.io'],
  ['delete', 'events.events.k8s.io'],
  // The core group's Events are the same objects: the controller writes them through events.k8s.io only.
  ['create', 'events'],
  ['list', 'configmaps'],
];
const expectAll = (lines: string[], answer: 'yes' | 'no') => expect(lines.filter((l) => !l.endsWith(`-> ${answer}`)), `expected ${answer} for all`).toEqual([]);

describe('the chart on kube-apiserver', () => {
  let kubectl: Kubectl;

  beforeAll(async () => {
    kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(work, 'kubectl-cache') });
    await installCrds(kubectl);
  });

  it('install.yaml: the API server accepts every object (server-side dry run) and the pod meets Pod Security "restricted"', async () => {
    const install = join(repoRoot, 'manifests', 'install.yaml');
    const docs = parseAllDocuments(readFileSync(install, 'utf8')).map((d) => d.toJS() as Doc);
    // Its Namespace for real (a dry-run namespace holds nothing), then everything dry.
    const ns = only(docs, 'Namespace');
    await kubectl.run(['apply', '--server-side', '--field-manager=ddi-ha-chart-test', '-f', '-'], { stdin: JSON.stringify(ns) });
    // --force-conflicts: other tests applied the same CRDs under their own field managers.
    const out = await kubectl.run(['apply', '--server-side', '--dry-run=server', '--force-conflicts', '--field-manager=ddi-ha-chart-test', '-f', install]);
    expect(out.trim().split('\n')).toHaveLength(docs.length);

    // The Deployment's pod, created (dry) where "restricted" is enforced: PodSecurity admission judges it.
    const podOf = (spec: object) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'controller', namespace: ns.metadata.name }, spec });
    const podSpec = only(docs, 'Deployment').spec.template.spec;
    await kubectl.run(['create', '--dry-run=server', '-f', '-'], { stdin: JSON.stringify(podOf(podSpec)) });
    // The check is real: the same pod allowed to escalate privileges is refused.
    const escalating = structuredClone(podSpec);
    escalating.containers[0].securityContext.allowPrivilegeEscalation = true;
    await expect(kubectl.run(['create', '--dry-run=server', '-f', '-'], { stdin: JSON.stringify(podOf(escalating)) })).rejects.toThrow(/violates PodSecurity "restricted/);
  });

  // A controller watching every namespace of the shared API server would reconcile the other
  // test files' objects (and dial their hosts' addresses): this release gets an API server of its own.
  describe('installed with helm, watching every namespace (an API server of its own)', () => {
    const release = `chart-${run}`;
    const namespace = `chart-op-${run}`;
    const objects = `chart-objs-${run}`;
    const sa = `system:serviceaccount:${namespace}:${release}-ddi-ha-operator`;
    let own: ControlPlane;
    let kc: Kubectl;

    beforeAll(async () => {
      own = await startControlPlane({ binDir: dirname(provided.kubectl) });
      kc = new Kubectl({ binary: provided.kubectl, kubeconfig: own.kubeconfigPath, cacheDir: join(work, 'kubectl-cache-own') });
      await installCrds(kc);
      await restrictedNamespace(kc, namespace);
      await helm(['install', release, chartDir, '--namespace', namespace, '--kubeconfig', own.kubeconfigPath]);
    });

    afterAll(async () => {
      await own?.stop();
    });

    it('helm install creates the ServiceAccount, ClusterRole, ClusterRoleBinding, Service and Deployment', async () => {
      const status = JSON.parse(await helm(['status', release, '--namespace', namespace, '--kubeconfig', own.kubeconfigPath, '-o', 'json'])) as { info: { status: string } };
      expect(status.info.status).toBe('deployed');
      const names = (await kc.run(['get', 'serviceaccount,service,deployment', '-n', namespace, '-o', 'name'])).trim().split('\n').sort();
      expect(names).toEqual([`deployment.apps/${release}-ddi-ha-operator`, `service/${release}-ddi-ha-operator-metrics`, `serviceaccount/${release}-ddi-ha-operator`]);
      const role = JSON.parse(await kc.run(['get', 'clusterrole', `${release}-ddi-ha-operator`, '-o', 'json'])) as { rules: typeof EXPECTED_RULES };
      expect(role.rules.map(sortedRule)).toEqual(EXPECTED_RULES.map(sortedRule));
    });

    it('kubectl auth can-i: yes for every call the controller makes, in any namespace; no for others', async () => {
      expectAll(await answers(kc, sa, NEEDED, ['--all-namespaces']), 'yes');
      expectAll(await answers(kc, sa, NEEDED, ['-n', objects]), 'yes');
      expectAll(await answers(kc, sa, FORBIDDEN, ['-n', objects]), 'no');
      await expectLeaseAccess(kc, sa, namespace, `${release}-ddi-ha-operator`, objects);
    });

    it("the controller, with the Deployment's arguments and the service account's token, lists, watches, reads Secrets, writes every status and handles the finalizer", async () => {
      await restrictedNamespace(kc, objects);
      await controllerRoundTrip({ kc, releaseNamespace: namespace, release, objectsNamespace: objects, sets: [] });
    });
  });

  describe('installed with helm, watchNamespace set', () => {
    const release = `chart-ns-${run}`;
    const namespace = `chart-op-ns-${run}`;
    const watched = `chart-watched-${run}`;
    const other = `chart-other-${run}`;
    const sa = `system:serviceaccount:${namespace}:${release}-ddi-ha-operator`;

    beforeAll(async () => {
      for (const ns of [namespace, watched, other]) await restrictedNamespace(kubectl, ns);
      await helm(['install', release, chartDir, '--namespace', namespace, '--kubeconfig', provided.kubeconfigPath, '--set', `watchNamespace=${watched}`]);
    });

    it('kubectl auth can-i: yes in the watched namespace only; no cluster-wide or elsewhere', async () => {
      const role = JSON.parse(await kubectl.run(['get', 'role', `${release}-ddi-ha-operator`, '-n', watched, '-o', 'json'])) as { rules: typeof EXPECTED_RULES };
      expect(role.rules.map(sortedRule)).toEqual(EXPECTED_RULES.map(sortedRule));
      expectAll(await answers(kubectl, sa, NEEDED, ['-n', watched]), 'yes');
      expectAll(await answers(kubectl, sa, FORBIDDEN, ['-n', watched]), 'no');
      expectAll(await answers(kubectl, sa, NEEDED, ['-n', other]), 'no');
      expectAll(await answers(kubectl, sa, NEEDED, ['-n', namespace]), 'no');
      expectAll(await answers(kubectl, sa, [['list', 'hapairs.ddi-ha.io']], ['--all-namespaces']), 'no');
      await expectLeaseAccess(kubectl, sa, namespace, `${release}-ddi-ha-operator`, watched);
    });

    it('the controller with --namespace and this Role does the same in the watched namespace', async () => {
      await controllerRoundTrip({ kc: kubectl, releaseNamespace: namespace, release, objectsNamespace: watched, sets: [`watchNamespace=${watched}`] });
    });

    it('helm uninstall removes the Role, RoleBinding and ServiceAccount', async () => {
      await helm(['uninstall', release, '--namespace', namespace, '--kubeconfig', provided.kubeconfigPath, '--wait']);
      const left = await kubectl.run(['get', 'role,rolebinding', '-n', watched, '-o', 'name']);
      expect(left.trim()).toBe('');
      expect((await kubectl.run(['get', 'serviceaccount', '-n', namespace, '-o', 'name'])).trim()).not.toContain(release);
    });
  });
});

/**
 * The lab's default set (every kind, two Secrets) in `namespace`, its hosts on loopback ports
 * where nothing listens: every SSH connection is refused at once, so each pass fails to apply
 * and writes that into the statuses, and nothing outside this machine is contacted.
 */
async function objectsFor(namespace: string): Promise<KubeObject[]> {
  const ports = await Promise.all([0, 1, 2, 3].map(() => freePort()));
  const files = defaultLabManifests(
    {
      // Test-network addresses in the configs (a VIP or failover peer on the loopback is refused at
      // admission); SSH goes to closed local ports below, so nothing is ever contacted.
      subnet: '198.18.250.0/24',
      gateway: '198.18.250.1',
      vip: '198.18.250.200',
      hosts: ports.map((_, i) => ({ address: `198.18.250.${11 + i}`, interface: 'lo', hostKeyLine: '' })),
      privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      omapiSecret: randomBytes(32).toString('base64'),
    },
    { namespace },
  );
  return files
    .flatMap((f) => f.objects)
    .filter((o) => o.kind !== 'Namespace')
    .map((o) => {
      const spec = o.spec as Record<string, unknown> | undefined;
      if (o.kind === 'DDIHost') {
        const i = Number(o.metadata.name.slice(1)) - 1;
        const { hostKey: _pinned, ...rest } = spec!;
        return { ...o, spec: { ...rest, address: `127.0.0.${11 + i}`, port: ports[i], hostKeyPolicy: 'TrustOnFirstUse' } };
      }
      // The HAPair keeps deletionPolicy Remove, so its DDIHosts get the in-use finalizer; the
      // round trip switches it to Retain before deleting it (the hosts are never reachable).
      return o;
    });
}

/**
 * A log line of a call the API server refused (a list or watch retried after a 429 while a
 * CRD's storage re-initialises is not one), or of a failed pass (a status or finalizer write).
 */
const isRefusal = (line: string) => /forbidden|HTTP 403|"level":50/i.test(line);

interface RoundTrip {
  /** kubectl as the API server's admin. */
  kc: Kubectl;
  releaseNamespace: string;
  release: string;
  objectsNamespace: string;
  /** The --set flags the release was installed with, to render the same Deployment. */
  sets: string[];
}

async function controllerRoundTrip({ kc, releaseNamespace, release, objectsNamespace, sets }: RoundTrip): Promise<void> {
  const serviceAccount = `${release}-ddi-ha-operator`;
  const token = (await kc.run(['create', 'token', serviceAccount, '-n', releaseNamespace, '--duration=30m'])).trim();
  const adminConfig = parse(readFileSync(kc.options.kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[] };
  const kubeconfig = join(work, `${serviceAccount}.kubeconfig`);
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: adminConfig.clusters[0]!.cluster }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'test', user: serviceAccount } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );

  // The Deployment's container exactly as the release rendered it, but for the port: this
  // machine's 8080 may be taken, so the server gets a free one.
  const c = container(await render(releaseNamespace, sets, chartDir, release));
  const args = (c.args as string[]).map((a, i, all) => (all[i - 1] === '--metrics-port' ? '0' : a));
  // The downward API's values, as the kubelet would fill them in.
  const downward: Record<string, string> = { 'metadata.name': `${release}-ddi-ha-operator-test-pod`, 'metadata.namespace': releaseNamespace };
  const env = Object.fromEntries(
    (c.env as { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[]).map((e) => [e.name, e.value ?? downward[e.valueFrom!.fieldRef.fieldPath]!]),
  );
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ddi-ha.js'), ...args], {
    // No --kubeconfig in the args: the token's kubeconfig comes in as a pod's would, by default.
    env: { ...process.env, ...env, KUBECONFIG: kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  child.stdout.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
  child.stderr.on('data', (d: Buffer) => lines.push(...String(d).trimEnd().split('\n')));
  const logs = () => lines.join('\n');
  try {
    const port = await eventually('the serving line', async () => lines.map((l) => /"port":(\d+)/.exec(l)?.[1]).find(Boolean), 30_000);
    // 200 once every watcher has listed its kind.
    await eventually('/readyz = 200', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined), 30_000);

    const objects = await objectsFor(objectsNamespace);
    await kc.run(['apply', '--server-side', '--field-manager=ddi-ha-chart-test', '-f', '-'], { stdin: objects.map((o) => JSON.stringify(o)).join('\n') });
    const ddiObjects = objects.filter((o) => o.kind !== 'Secret');
    const resources = KINDS.map((k) => `${k.plural}.ddi-ha.io`).join(',');
    type Item = { kind: string; metadata: { name: string; finalizers?: string[] }; status?: { conditions?: { type: string; message?: string }[] } };
    const seen = await eventually(
      'a status on every object, the finalizer on the HAPair and the in-use one on its DDIHosts',
      async () => {
        // A refusal shows up in the log first: stop waiting, it will not pass.
        const refusal = lines.find(isRefusal);
        if (refusal) return { refusal };
        const list = JSON.parse(await kc.run(['get', resources, '-n', objectsNamespace, '-o', 'json'])) as { items: Item[] };
        const done =
          list.items.length === ddiObjects.length &&
          list.items.every((i) => i.status?.conditions?.some((c) => c.type === 'Ready')) &&
          list.items.some((i) => i.kind === 'HAPair' && i.metadata.finalizers?.includes(CLEANUP_FINALIZER)) &&
          list.items.some((i) => i.kind === 'DDIHost' && i.metadata.finalizers?.includes(IN_USE_FINALIZER));
        return done ? { items: list.items } : undefined;
      },
      60_000,
    ).catch((err: Error) => Promise.reject(new Error(`${err.message}\n${logs()}`)));
    expect(seen.refusal, logs()).toBeUndefined();
    const items = seen.items!;
    // It led (only a leader writes status), through the Lease the chart's Role allows.
    const lease = JSON.parse(await kc.run(['get', 'leases.coordination.k8s.io', `${release}-ddi-ha-operator`, '-n', releaseNamespace, '-o', 'json'])) as { spec: { holderIdentity: string } };
    expect(lease.spec.holderIdentity).toMatch(new RegExp(`^${release}-ddi-ha-operator-test-pod_`));
    // The Secrets were read: a DDIHost whose Secret is unreadable says so in its status.
    for (const item of items) expect(JSON.stringify(item.status), `${item.kind} ${item.metadata.name}`).not.toMatch(/could not read it|forbidden/i);
    // Its Events went through with the service account's create (hosts on closed ports: HostUnreachable).
    const events = await eventually(
      'HostUnreachable Events about the DDIHosts',
      async () => {
        const list = JSON.parse(await kc.run(['get', 'events.events.k8s.io', '-n', objectsNamespace, '-o', 'json'])) as {
          items: { reason: string; reportingController: string; regarding: { kind: string } }[];
        };
        const ours = list.items.filter((e) => e.reportingController === 'ddi-ha.io/controller' && e.reason === 'HostUnreachable' && e.regarding.kind === 'DDIHost');
        return ours.length > 0 ? ours : undefined;
      },
      30_000,
    ).catch((err: Error) => Promise.reject(new Error(`${err.message}\n${logs()}`)));
    expect(events.length).toBeGreaterThan(0);
    expect(logs()).not.toMatch(/event \w+ about .* not written/);

    const pair = items.find((i) => i.kind === 'HAPair')!;
    // Retain: deleting the pair drops its finalizer without reaching the (absent) hosts, and
    // the hosts lose theirs (a patch of DDIHosts, which the chart must allow).
    // Every relationship kind carries the cleanup finalizer (ADR 0028) and keeps the hosts in use.
    const relationships = items.filter((i) => ['HAPair', 'KeaHACluster', 'DhcpFailoverPeer'].includes(i.kind));
    expect(relationships.map((i) => i.metadata.name)).toContain(pair.metadata.name);
    for (const r of relationships) {
      const resource = `${r.kind.toLowerCase()}s.ddi-ha.io`;
      await kc.run(['patch', resource, r.metadata.name, '-n', objectsNamespace, '--type=merge', '-p', '{"spec":{"deletionPolicy":"Retain"}}']);
      await kc.run(['delete', resource, r.metadata.name, '-n', objectsNamespace, '--wait=true', '--timeout=60s']);
    }
    await eventually(
      'the DDIHosts to lose the in-use finalizer',
      async () => {
        const hosts = JSON.parse(await kc.run(['get', 'ddihosts.ddi-ha.io', '-n', objectsNamespace, '-o', 'json'])) as { items: Item[] };
        return hosts.items.every((i) => !i.metadata.finalizers?.includes(IN_USE_FINALIZER)) ? true : undefined;
      },
      60_000,
    ).catch((err: Error) => Promise.reject(new Error(`${err.message}\n${logs()}`)));

    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
    process.stdout.write(`controller (tsx, ${sets.length ? 'one namespace' : 'all namespaces'}): RSS ${Math.round(Number(rss) / 1024)} MiB after its passes\n`);
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = await once(child, 'exit');
  expect(code, logs()).toBe(0);
  // Nothing refused, no pass failed, from the first list to the shutdown.
  expect(lines.filter(isRefusal), logs()).toEqual([]);
  expect(lines.some((l) => l.includes('"msg":"controller stopped"'))).toBe(true);
}

async function helmFromScript(): Promise<string> {
  // hack/setup.sh exports HELM; without it, hack/helm.sh builds (cold) or finds (warm) it.
  const { stdout } = await execFileAsync('bash', [join(repoRoot, 'hack', 'helm.sh')], { timeout: 30 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  const m = /^HELM=(.*)$/m.exec(stdout);
  if (!m) throw new Error('hack/helm.sh did not print HELM=');
  return m[1]!.replace(/\\(.)/g, '$1');
}
