// Issue 13 item 7 on the real thing: every hostile value of src/render/hostile-values.ts that a
// lab can carry, admitted by the real kube-apiserver (and one step nastier refused there),
// applied by the in-process controller to four lab hosts (an HAPair and a DhcpFailoverPeer on
// h1/h2, a KeaHACluster on h3/h4), then read back as each daemon understood it:
// keepalived -t and keepalived's own JSON dump of its running instances; dhcpd -t and the
// failover peers dhcpd itself wrote to its leases file; kea-dhcp4 -t and config-get from the
// running kea-dhcp4. The files on the hosts must have the structure of the plain-valued twin,
// and the hostile strings may appear in the running config only where the file put them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_GROUP_VERSION, type HAPair } from '../../src/api/index.js';
import { failoverPeerName, includeFilePath } from '../../src/daemons/dhcpd/index.js';
import { keepalivedInstanceNames } from '../../src/daemons/keepalived/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { ipv4ToNumber, numberToIpv4, parseIpv4Cidr } from '../../src/net/ipv4.js';
import { HOSTILE_CASES, HOSTILE_INTERFACE, caseLabel, fileTrees, jsonOccurrences, masksFor, withValues } from '../../src/render/hostile-values.js';
import { renderManifestSet } from '../../src/render/render-set.js';
import type { RenderedFile } from '../../src/render/types.js';
import { validateManifests } from '../../src/validation/validate.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type InProcessController, labHostObjects, startInProcessController } from './in-process-controller.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
// A namespace name with a keyword and a double dash: it is part of the keepalived names too.
const namespace = `include--${Date.now().toString(36)}`;
const CASES = HOSTILE_CASES.filter((c) => c.lab);
const OMAPI_SECRET = Buffer.alloc(32, 9).toString('base64');
type Obj = Record<string, unknown>;

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let ctl: InProcessController | undefined;
/** The objects as applied (hostile) and their plain twins, with the DDIHosts. */
let hostile: Obj[];
let plain: Obj[];
/** A subnet of the lab's own for the hostile-named interfaces (a macvlan on eth0 of each host). */
let side: { prefix: string; vip: string };

const byKind = (objects: Obj[], kind: string) => objects.find((o) => o.kind === kind)! as Obj & { metadata: { name: string } };

function renderOffline(objects: Obj[]): RenderedFile[] {
  const { set, problems } = validateManifests(objects.map((object) => ({ source: 'test', object })));
  expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
  const omapiKeys = new Map(set.failoverPeers.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, { name: `omapi-${failoverPeerName(p)}`, algorithm: 'hmac-sha256' as const, secret: OMAPI_SECRET }]));
  const rendered = renderManifestSet(set, { omapiKeys });
  expect(rendered.failures).toEqual([]);
  return rendered.files;
}

async function hostFile(host: string, path: string): Promise<string> {
  return lab.hosts[Number(host.slice(1)) - 1]!.run(['cat', path]);
}

/** The rendered files of one daemon as the hosts have them now (same host, path and check as our offline render). */
async function onHosts(files: RenderedFile[]): Promise<RenderedFile[]> {
  return Promise.all(files.map(async (f) => ({ ...f, content: await hostFile(f.host, f.path) })));
}

/**
 * Kea 2.2's JSON writer escapes each byte of a non-ASCII string as \u00XX, so a UTF-8 string
 * comes back as one character per byte: turn those bytes back into the string Kea holds.
 */
function utf8Strings(value: unknown): unknown {
  const fix = (s: string) => (/^[\u0000-\u00ff]*$/.test(s) ? Buffer.from(s, 'latin1').toString('utf8') : s);
  if (Array.isArray(value)) return value.map(utf8Strings);
  if (value !== null && typeof value === 'object') {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, fix(k), { value: utf8Strings(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return typeof value === 'string' ? fix(value) : value;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-hostile-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 4 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  const third = Number(lab.network.subnet.split('.')[2]);
  side = { prefix: `198.18.${third === 254 ? 253 : 254}`, vip: '' };
  side.vip = `${side.prefix}.100`;
  // The interface every case names: a macvlan on eth0 (it reaches the other hosts), with an address of its own.
  await Promise.all(
    lab.hosts.map((h, i) =>
      h.run(['sh', '-c', 'ip link add link eth0 name "$1" type macvlan mode bridge && ip addr add "$2/24" dev "$1" && ip link set "$1" up', 'sh', HOSTILE_INTERFACE, `${side.prefix}.${11 + i}`]),
    ),
  );
  const { network, prefix } = parseIpv4Cidr(lab.network.subnet);
  const base = ipv4ToNumber(network);
  const [h1, h2] = lab.hosts as [Lab['hosts'][0], Lab['hosts'][0]];
  const meta = (name: string) => ({ name, namespace });
  const objects: Obj[] = [
    ...labHostObjects(lab, namespace),
    { apiVersion: 'v1', kind: 'Secret', metadata: meta('omapi'), type: 'Opaque', stringData: { algorithm: 'hmac-sha256', secret: OMAPI_SECRET } },
    {
      apiVersion: API_GROUP_VERSION,
      kind: 'HAPair',
      metadata: meta('hostile-vip'),
      spec: {
        primary: { host: 'h1', interface: 'eth0' },
        secondary: { host: 'h2', interface: 'eth0' },
        virtualIP: `${side.vip}/24`,
        virtualRouterID: 93,
        services: { dns: false, dhcp: 'None' },
      },
    },
    {
      apiVersion: API_GROUP_VERSION,
      kind: 'DhcpFailoverPeer',
      metadata: meta('hostile-dhcp'),
      spec: {
        primary: { host: 'h1', address: h1.address },
        secondary: { host: 'h2', address: h2.address },
        maxResponseDelay: '10s',
        mclt: '30s',
        split: 128,
        omapi: { keySecretRef: { name: 'omapi' } },
        subnets: [{ subnet: `${numberToIpv4(base)}/${prefix}`, options: {}, pools: [{ range: [numberToIpv4(base + 100), numberToIpv4(base + 139)] }] }],
      },
    },
    {
      apiVersion: API_GROUP_VERSION,
      kind: 'KeaHACluster',
      metadata: meta('hostile-kea'),
      spec: {
        mode: 'hot-standby',
        heartbeatDelay: '1s',
        maxResponseDelay: '4s',
        maxAckDelay: '2s',
        maxUnackedClients: 0,
        peers: [
          { name: 'a', host: 'h3', role: 'primary' },
          { name: 'b', host: 'h4', role: 'standby' },
        ],
        dhcp4: { 'valid-lifetime': 3600 },
      },
    },
  ];
  hostile = withValues(objects, CASES, 'value');
  plain = withValues(objects, CASES, 'benign');
  // Created as JSON (a POST), not server-side applied: an apply body is YAML to the API server,
  // and YAML refuses control characters that JSON carries. JSON.stringify keeps an own "__proto__".
  await kubectl.run(['create', '-f', '-'], { stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: hostile }) });
  ctl = startInProcessController({ kubeconfigPath: provided.kubeconfigPath, namespace, resyncMs: 3_000, pollMs: 2_000 });
  const names = ['HAPair', 'DhcpFailoverPeer', 'KeaHACluster'].map((k) => `${k.toLowerCase()}s.ddi-ha.io/${byKind(hostile, k).metadata.name}`);
  await kubectl.run(['wait', '--for=condition=Ready', ...names, '-n', namespace, '--timeout=240s'], { timeoutMs: 250_000 });
}, 330_000);

afterAll(async () => {
  await ctl?.stop();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('hostile values through the controller (issue 13 item 7)', () => {
  it('the API server admitted every hostile value as given, and refuses one step nastier with the field named', async () => {
    for (const kind of ['HAPair', 'DhcpFailoverPeer', 'KeaHACluster']) {
      const stored = JSON.parse(await kubectl.run(['get', `${kind.toLowerCase()}s.ddi-ha.io/${byKind(hostile, kind).metadata.name}`, '-n', namespace, '-o', 'json'])) as Obj;
      // What was sent is what is stored, every hostile value byte for byte (plus the schema's defaults).
      expect(stored.spec).toMatchObject(byKind(hostile, kind).spec as Obj);
    }
    let refusedCount = 0;
    for (const c of CASES.filter((c) => c.refused.length > 0 && c.field !== 'metadata.name')) {
      const [object] = withValues([byKind(hostile, c.kind)], [{ ...c, value: c.refused[0] }], 'value');
      const r = await kubectl.run(['replace', '--dry-run=server', '-f', '-'], { stdin: JSON.stringify(object) }).then(
        () => 'accepted',
        (err: Error) => err.message,
      );
      if (c.refusedByOperatorOnly) {
        // CEL cannot walk JSON of any depth: admission lets it in, the operator's validation refuses it (src/api/kea-keys.test.ts).
        expect(r, caseLabel(c)).toBe('accepted');
        continue;
      }
      const leaf = c.field.split('.').at(-1)!;
      expect(r, `${caseLabel(c)} = ${JSON.stringify(c.refused[0])}`).toContain(leaf);
      expect(r).toMatch(/Invalid value|should match|must/);
      refusedCount++;
    }
    expect(refusedCount).toBeGreaterThanOrEqual(8);
  });

  it('keepalived: the files on h1 and h2 have the plain twin\'s structure, keepalived -t accepts them, and its own dump lists exactly the expected instance', async () => {
    const kaCases = CASES.filter((c) => c.daemon === 'keepalived');
    const files = renderOffline(hostile).filter((f) => f.check.kind === 'keepalived');
    const twin = renderOffline(plain).filter((f) => f.check.kind === 'keepalived');
    const live = await onHosts(files);
    expect(fileTrees(live, kaCases, 'value')).toEqual(fileTrees(twin, kaCases, 'benign'));
    const pair = byKind(hostile, 'HAPair') as unknown as HAPair;
    const instance = keepalivedInstanceNames({ ...pair, metadata: { ...pair.metadata, namespace } }).ipv4;
    for (const h of lab.hosts.slice(0, 2)) {
      const check = await h.exec(['keepalived', '-t', '-f', '/etc/keepalived/keepalived.conf']);
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      await h.exec(['rm', '-f', '/tmp/keepalived.json']);
      await h.run(['sh', '-c', 'kill -s "$(keepalived --signum=JSON)" "$(cat /run/keepalived.pid)"']);
      let dump = '';
      for (let i = 0; i < 50 && !dump; i++) {
        await new Promise((r) => setTimeout(r, 100));
        dump = (await h.exec(['cat', '/tmp/keepalived.json'])).stdout;
      }
      const instances = JSON.parse(dump) as { data: Obj }[];
      console.log(`hostile: ${h.name} keepalived JSON dump, instance 0 data keys: ${Object.keys(instances[0]?.data ?? {}).join(', ')}`);
      expect(instances.map((i) => i.data.iname)).toEqual([instance]);
      expect(instances[0]!.data.ifp_ifname).toBe(HOSTILE_INTERFACE);
      const vips = JSON.stringify(instances[0]!.data.vips);
      expect(vips).toContain(side.vip);
      expect(JSON.stringify(instances[0]!.data)).toContain('-include');
    }
    // And it works: the VIP is on the primary's hostile-named interface.
    expect(await lab.hosts[0]!.run(['ip', '-o', 'addr', 'show', 'dev', HOSTILE_INTERFACE])).toContain(` ${side.vip}/24`);
    const hap = JSON.parse(await kubectl.run(['get', `hap/${byKind(hostile, 'HAPair').metadata.name}`, '-n', namespace, '-o', 'json'])) as { status: { activeNode: string } };
    expect(hap.status.activeNode).toBe('primary');
  });

  it('dhcpd: the include files have the plain twin\'s structure, dhcpd -t accepts the config, and dhcpd knows exactly one failover peer, by the hostile name', async () => {
    const dCases = CASES.filter((c) => c.daemon === 'dhcpd');
    const owned = (files: RenderedFile[]) => files.filter((f) => f.check.kind === 'dhcpd' && f.ownership === 'owned');
    const files = owned(renderOffline(hostile));
    const live = await onHosts(files);
    expect(fileTrees(live, dCases, 'value')).toEqual(fileTrees(owned(renderOffline(plain)), dCases, 'benign'));
    const peer = byKind(hostile, 'DhcpFailoverPeer') as unknown as { metadata: { name: string }; spec: { peerName: string } };
    const peerName = peer.spec.peerName;
    expect(files.map((f) => f.path)).toEqual([includeFilePath({ configPath: '/etc/dhcp/dhcpd.conf' }, peerName), includeFilePath({ configPath: '/etc/dhcp/dhcpd.conf' }, peerName)]);
    for (const h of lab.hosts.slice(0, 2)) {
      const check = await h.exec(['dhcpd', '-t', '-cf', '/etc/dhcp/dhcpd.conf']);
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      // The main file got one include line, of our file, and nothing else of ours.
      const main = await h.run(['cat', '/etc/dhcp/dhcpd.conf']);
      expect(main.split('\n').filter((l) => /^\s*include\b/.test(l))).toEqual([`include "${files[0]!.path}"; # managed by ddi-ha-operator: ${namespace}/${peer.metadata.name}`]);
      // dhcpd's own record of its failover peers: one, with the hostile name, byte for byte.
      const leases = await h.run(['cat', '/var/lib/dhcp/dhcpd.leases']);
      const peers = [...new Set([...leases.matchAll(/^failover peer "([^"]*)" state \{/gm)].map((m) => m[1]))];
      expect(peers).toEqual([peerName]);
    }
    // The operator read both states through OMAPI with the key omapi-<peer name> (69 characters).
    const dfp = JSON.parse(await kubectl.run(['get', `dfp/${peer.metadata.name}`, '-n', namespace, '-o', 'json'])) as { status: { primaryState: string; secondaryState: string } };
    expect(dfp.status).toMatchObject({ primaryState: 'normal', secondaryState: 'normal' });
  });

  it('Kea: the files have the plain twin\'s structure, kea-dhcp4 -t accepts them, and config-get from the running server has each hostile string where the file has it and nowhere else', async () => {
    const kCases = CASES.filter((c) => c.kind === 'KeaHACluster');
    const isKea = (f: RenderedFile) => f.check.kind === 'kea-dhcp4' || f.check.kind === 'kea-ctrl-agent';
    const files = renderOffline(hostile).filter(isKea);
    const live = await onHosts(files);
    expect(fileTrees(live, kCases, 'value')).toEqual(fileTrees(renderOffline(plain).filter(isKea), kCases, 'benign'));
    const masks = masksFor(kCases, 'value');
    for (const [i, h] of lab.hosts.slice(2, 4).entries()) {
      const hostName = `h${i + 3}`;
      const check = await h.exec(['kea-dhcp4', '-t', '/etc/kea/kea-dhcp4.conf']);
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      const reply = JSON.parse(
        await h.run(['curl', '-sS', '-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{"command":"config-get","service":["dhcp4"]}', `http://${h.sshHost}:8000/`]),
      ) as { result: number; text?: string; arguments: { Dhcp4: Obj } }[];
      expect(reply[0]!.result, reply[0]!.text).toBe(0);
      const running = utf8Strings({ Dhcp4: reply[0]!.arguments.Dhcp4 }) as { Dhcp4: Obj };
      const file = JSON.parse(files.find((f) => f.host === hostName && f.check.kind === 'kea-dhcp4')!.content) as Obj;
      const inFile = jsonOccurrences(file, masks);
      const inRunning = jsonOccurrences(running, masks);
      console.log(`hostile: ${hostName} hostile strings in the running config: ${inRunning.length} (in the file ${inFile.length})`);
      expect(inRunning).toEqual(inFile);
      // Only the operator's two hooks are loaded: no breakout added one.
      const hooks = (running.Dhcp4['hooks-libraries'] as { library: string }[]).map((l) => l.library.split('/').at(-1));
      expect(hooks).toEqual(['libdhcp_lease_cmds.so', 'libdhcp_ha.so']);
      // The dropped top-level __proto__ left nothing (its valid-lifetime 1 would show).
      expect(running.Dhcp4['valid-lifetime']).toBe(3600);
    }
    const kha = JSON.parse(await kubectl.run(['get', `kha/${byKind(hostile, 'KeaHACluster').metadata.name}`, '-n', namespace, '-o', 'json'])) as { status: { health: string } };
    expect(kha.status.health).toBe('OK');
  });
});

describe('a value only the operator can refuse (issue 13 item 7)', () => {
  it('a spec.dhcp4 key with a quote passes admission, and the controller refuses it: Stalled naming spec.dhcp4, the Kea files untouched', async () => {
    const c = CASES.find((x) => x.refusedByOperatorOnly)!;
    const name = byKind(hostile, 'KeaHACluster').metadata.name;
    const before = await Promise.all(lab.hosts.slice(2, 4).map((h) => h.run(['sha256sum', '/etc/kea/kea-dhcp4.conf'])));
    const patch = (key: string, value: unknown) => JSON.stringify([{ op: 'add', path: `/spec/dhcp4/user-context/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, value }]);
    await kubectl.run(['patch', `kha/${name}`, '-n', namespace, '--type=json', '-p', patch(c.refused[0]!, 'k')]);
    type Status = { metadata: { generation: number }; status?: { observedGeneration?: number; conditions?: { type: string; status: string; message: string }[] } };
    let stalled: { message: string } | undefined;
    for (let i = 0; i < 120 && !stalled; i++) {
      const o = JSON.parse(await kubectl.run(['get', `kha/${name}`, '-n', namespace, '-o', 'json'])) as Status;
      stalled = o.status?.conditions?.find((x) => x.type === 'Stalled' && x.status === 'True');
      if (!stalled) await new Promise((r) => setTimeout(r, 500));
    }
    expect(stalled?.message).toMatch(/spec\.dhcp4 must not have a key \(at any depth\) containing/);
    expect(await Promise.all(lab.hosts.slice(2, 4).map((h) => h.run(['sha256sum', '/etc/kea/kea-dhcp4.conf'])))).toEqual(before);
  });
});
