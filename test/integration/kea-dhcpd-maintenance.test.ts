// Maintenance of a host for Kea HA and ISC dhcpd failover (issue 12 item 1, ADR 0029), through the
// in-process controller on the global-setup kube-apiserver and a four-host lab: dhcpd failover on
// h1/h2, Kea hot-standby on h3/h4. What the daemons do is read on the hosts, independent of the
// operator's own clients: Kea's status-get with curl to the host's Control Agent, dhcpd's states
// with omshell on the host, and dhcpd's own journal lines ("I move from … to …").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_GROUP_VERSION } from '../../src/api/index.js';
import { generateOmapiKey, omshellFailoverScript, parseOmshellFailoverState } from '../../src/daemons/dhcpd/index.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type Condition, type InProcessController, keaLocalStatus, labKeaHotStandby, startInProcessController } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-kdm-${Date.now().toString(36)}`;
const DHCP = 'maint-dhcp';
const KEA = 'maint-kea';
const RESYNC_MS = 3_000;
const omapi = { name: `omapi-${DHCP}`, ...generateOmapiKey('hmac-sha256') };

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let running: InProcessController | undefined;

type Json = { metadata: { generation: number }; status?: { conditions?: Condition[]; health?: string; peers?: { name: string; state: string }[]; primaryState?: string; secondaryState?: string } };
const getJson = async (resource: string): Promise<Json> => JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
const condition = (o: Json, type: string) => o.status?.conditions?.find((c) => c.type === type);
/** The object once `ready` holds for it, read with kubectl. */
const statusUntil = (resource: string, what: string, ready: (o: Json) => boolean, timeoutMs: number) =>
  eventually(what, async () => {
    const o = await getJson(resource);
    return ready(o) ? o : undefined;
  }, timeoutMs);
const patchHost = (host: string, maintenance: boolean) =>
  kubectl.run(['patch', `ddih/${host}`, '-n', namespace, '--type=json', '-p', JSON.stringify(maintenance ? [{ op: 'add', path: '/spec/maintenance', value: true }] : [{ op: 'remove', path: '/spec/maintenance' }])]);

const gauge = (name: string, labels: Record<string, string>) => running!.gauge(name, labels);

/** Kea's own HA state on lab host i (status-get on the host). */
async function keaState(i: number): Promise<string> {
  const local = await keaLocalStatus(lab, i);
  return local.state ?? `no state in ${local.raw}`;
}

/** dhcpd's own failover state on lab host i, read with omshell on the host. */
async function dhcpdStates(i: number): Promise<{ local: string; partner: string }> {
  // The script holds only identifiers and base64 (omshellFailoverScript checks): safe in a quoted here-document.
  const r = await lab.hosts[i]!.exec(['sh', '-c', `omshell <<'EOS'\n${omshellFailoverScript(DHCP, omapi, 7911)}\nEOS`]);
  const st = parseOmshellFailoverState(`${r.stdout}\n${r.stderr}`);
  if (!st.ok) throw new Error(`omshell on ${lab.hosts[i]!.name}: ${st.error}`);
  return { local: st.localState, partner: st.partnerState };
}

/** dhcpd's "I move from A to B" lines for the peer on lab host i since `since` (the host's clock). */
async function dhcpdMoves(i: number, since: string): Promise<string[]> {
  const out = await lab.hosts[i]!.run(['journalctl', '-u', 'isc-dhcp-server', '--no-pager', '-o', 'cat', '--since', since]);
  return out.split('\n').filter((l) => l.includes(`failover peer ${DHCP}: I move from`)).map((l) => l.replace(/^.*I move from /, ''));
}

// With microseconds: journalctl --since a whole second would also show what the step before
// logged earlier in that second (the very transitions a test then says must not happen again).
const hostNow = async (i: number) => (await lab.hosts[i]!.run(['date', '+%Y-%m-%d %H:%M:%S.%6N'])).trim();

function manifests(): string {
  const meta = (name: string) => ({ name, namespace });
  const base = lab.network.subnet.split('/')[0]!.split('.').slice(0, 3).join('.');
  const hosts = lab.hosts.map((h, i) => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'DDIHost',
    metadata: meta(`h${i + 1}`),
    spec: { address: h.sshHost, port: h.sshPort, credentialsSecretRef: { name: 'lab-ssh' }, hostKey: h.hostKeyLine, hostKeyPolicy: 'Pinned' },
  }));
  const [h1, h2] = lab.hosts as [Lab['hosts'][0], Lab['hosts'][0]];
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta('lab-ssh'), type: 'Opaque', stringData: { privateKey: lab.privateKey } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta('lab-omapi'), type: 'Opaque', stringData: { algorithm: omapi.algorithm, secret: omapi.secret } },
    ...hosts,
    {
      apiVersion: API_GROUP_VERSION,
      kind: 'DhcpFailoverPeer',
      metadata: meta(DHCP),
      spec: {
        primary: { host: 'h1', address: h1.address },
        secondary: { host: 'h2', address: h2.address },
        maxResponseDelay: '10s',
        mclt: '30s',
        split: 128,
        omapi: { keySecretRef: { name: 'lab-omapi' } },
        subnets: [{ subnet: lab.network.subnet, pools: [{ range: [`${base}.100`, `${base}.139`] }] }],
      },
    },
    labKeaHotStandby(lab, namespace, KEA, 2, 3),
  ]
    .map((o) => stringify(o, { lineWidth: 0 }))
    .join('---\n');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-kdm-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 4 });
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: manifests() });
  running = startInProcessController({ kubeconfigPath: provided.kubeconfigPath, namespace, resyncMs: RESYNC_MS, pollMs: 2_000 });
  await kubectl.run(['wait', '--for=condition=Ready', `kha/${KEA}`, `dfp/${DHCP}`, '-n', namespace, '--timeout=240s'], { timeoutMs: 250_000 });
}, 330_000);

afterAll(async () => {
  await running?.stop();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Kea hot-standby: maintenance of the primary h3', () => {
  it('the standby is told with ha-maintenance-start: server2 partner-in-maintenance, server1 in-maintenance; Maintenance HandedOver, Ready Maintenance, alerts silenced', async () => {
    expect([await keaState(2), await keaState(3)]).toEqual(['hot-standby', 'hot-standby']);
    const t0 = Date.now();
    await patchHost('h3', true);
    // Kea's own answer on the hosts, not the operator's.
    await eventually('h4 in partner-in-maintenance (status-get on h4)', async () => ((await keaState(3)) === 'partner-in-maintenance' ? true : undefined), 30_000, 200);
    const handedOver = Date.now() - t0;
    expect(await keaState(2)).toBe('in-maintenance');
    console.log(`kea maintenance: h4 partner-in-maintenance ${handedOver} ms after the patch`);
    const kha = await statusUntil(`kha/${KEA}`, 'the cluster to report the maintenance', (k) => condition(k, 'Maintenance')?.reason === 'HandedOver' && condition(k, 'Ready')?.reason === 'Maintenance', 30_000);
    expect(condition(kha, 'Maintenance')).toMatchObject({ status: 'True' });
    expect(condition(kha, 'Maintenance')!.message).toContain('server2 is in partner-in-maintenance and answers every client while server1 is in maintenance');
    expect(condition(kha, 'Ready')).toMatchObject({ status: 'False', reason: 'Maintenance' });
    expect(kha.status?.peers?.map((p) => p.state)).toEqual(['in-maintenance', 'partner-in-maintenance']);
    await eventually('the metrics', async () => ((await gauge('ddi_ha_resource_in_maintenance', { kind: 'KeaHACluster', name: KEA })) === 1 ? true : undefined), 15_000);
    expect(await gauge('ddi_ha_kea_health', { name: KEA, health: 'Impaired' })).toBe(1);
  });

  it('resyncs during maintenance send nothing more: the states stay, Kea logs no second maintenance', async () => {
    const since = await hostNow(3);
    await new Promise((r) => setTimeout(r, 3 * RESYNC_MS));
    expect([await keaState(2), await keaState(3)]).toEqual(['in-maintenance', 'partner-in-maintenance']);
    const journal = await lab.hosts[3]!.run(['journalctl', '-u', 'kea-dhcp4-server', '--no-pager', '-o', 'cat', '--since', since]);
    expect(journal).not.toMatch(/ha-maintenance-start/);
    expect(journal).not.toMatch(/HA_STATE_TRANSITION/);
  });

  it('removing the field sends ha-maintenance-cancel: both back in hot-standby, Maintenance Returned with the seconds', async () => {
    const t0 = Date.now();
    await patchHost('h3', false);
    await eventually('both hot-standby (status-get on the hosts)', async () => ((await keaState(2)) === 'hot-standby' && (await keaState(3)) === 'hot-standby' ? true : undefined), 60_000, 200);
    console.log(`kea maintenance ended: both hot-standby ${Date.now() - t0} ms after the patch`);
    const kha = await statusUntil(`kha/${KEA}`, 'the cluster back to normal', (k) => condition(k, 'Ready')?.status === 'True' && condition(k, 'Maintenance')?.reason === 'Returned', 60_000);
    const returned = condition(kha, 'Maintenance')!;
    console.log(`kea maintenance ended: status says "${returned.message}"`);
    expect(returned.status).toBe('False');
    const seconds = Number(/back to normal (\d+) s after the maintenance ended/.exec(returned.message)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(60);
    expect(returned.message).toContain('server1 hot-standby, server2 hot-standby');
    await eventually('the metrics', async () => ((await gauge('ddi_ha_resource_in_maintenance', { kind: 'KeaHACluster', name: KEA })) === 0 ? true : undefined), 15_000);
  });
});

describe('dhcpd failover: maintenance of the primary h1', () => {
  it('without maintenancePartnerDown dhcpd is left alone: both stay normal, the status says so', async () => {
    const since = await hostNow(0);
    await patchHost('h1', true);
    const dfp = await statusUntil(`dfp/${DHCP}`, 'the peer to report the maintenance', (d) => condition(d, 'Maintenance')?.reason === 'LeftAlone', 30_000);
    expect(condition(dfp, 'Maintenance')!.message).toContain('dhcpd is left alone (spec.maintenancePartnerDown is not set)');
    expect(condition(dfp, 'Maintenance')!.message).toContain('communications-interrupted');
    expect(condition(dfp, 'Ready')).toMatchObject({ status: 'False', reason: 'Maintenance' });
    await new Promise((r) => setTimeout(r, 2 * RESYNC_MS));
    expect(await dhcpdStates(0)).toEqual({ local: 'normal', partner: 'normal' });
    expect(await dhcpdStates(1)).toEqual({ local: 'normal', partner: 'normal' });
    expect(await dhcpdMoves(0, since)).toEqual([]);
    await patchHost('h1', false);
    await statusUntil(`dfp/${DHCP}`, 'the peer back', (d) => condition(d, 'Ready')?.status === 'True' && condition(d, 'Maintenance')?.reason === 'Returned', 30_000);
  });

  it('with maintenancePartnerDown: h1 goes to shutdown through OMAPI, h2 to partner-down; Maintenance HandedOver, alerts silenced', async () => {
    await kubectl.run(['patch', `dfp/${DHCP}`, '-n', namespace, '--type=merge', '-p', '{"spec":{"maintenancePartnerDown":true}}']);
    const since = [await hostNow(0), await hostNow(1)];
    const t0 = Date.now();
    await patchHost('h1', true);
    await eventually('h2 in partner-down (omshell on h2)', async () => ((await dhcpdStates(1)).local === 'partner-down' ? true : undefined), 30_000, 200);
    console.log(`dhcpd maintenance: h2 partner-down ${Date.now() - t0} ms after the patch`);
    expect(await dhcpdStates(0)).toEqual({ local: 'shutdown', partner: 'partner-down' });
    expect(await dhcpdMoves(0, since[0]!)).toEqual(['normal to shutdown']);
    expect(await dhcpdMoves(1, since[1]!)).toEqual(['normal to partner-down']);
    const dfp = await statusUntil(`dfp/${DHCP}`, 'the peer to report the hand-over', (d) => condition(d, 'Maintenance')?.reason === 'HandedOver' && condition(d, 'Ready')?.reason === 'Maintenance', 30_000);
    expect(dfp.status).toMatchObject({ primaryState: 'shutdown', secondaryState: 'partner-down' });
    expect(condition(dfp, 'PartnerDown')).toMatchObject({ status: 'True' });
    await eventually('the metrics', async () => ((await gauge('ddi_ha_resource_in_maintenance', { kind: 'DhcpFailoverPeer', name: DHCP })) === 1 ? true : undefined), 15_000);
    expect(await gauge('ddi_ha_dhcp_failover_state', { name: DHCP, side: 'secondary', state: 'partner-down' })).toBe(1);
  });

  it('removing the field moves h1 to recover: both normal again without waiting MCLT, Maintenance Returned with the seconds', async () => {
    const since = await hostNow(0);
    const t0 = Date.now();
    await patchHost('h1', false);
    await eventually(
      'both normal (omshell on the hosts)',
      async () => ((await dhcpdStates(0)).local === 'normal' && (await dhcpdStates(1)).local === 'normal' ? true : undefined),
      90_000,
      500,
    );
    const took = Date.now() - t0;
    console.log(`dhcpd maintenance ended: both normal ${took} ms after the patch; h1 moved ${JSON.stringify(await dhcpdMoves(0, since))}`);
    // recover → recover-done → normal on the side that was shut down, with no recover-wait: MCLT
    // (30 s) was skipped. (journalctl --since is to the second: the shutdown may be listed too.)
    expect((await dhcpdMoves(0, since)).slice(-3)).toEqual(['shutdown to recover', 'recover to recover-done', 'recover-done to normal']);
    expect(took).toBeLessThan(30_000);
    const dfp = await statusUntil(`dfp/${DHCP}`, 'the peer back to normal', (d) => condition(d, 'Ready')?.status === 'True' && condition(d, 'Maintenance')?.reason === 'Returned', 60_000);
    const returned = condition(dfp, 'Maintenance')!;
    console.log(`dhcpd maintenance ended: status says "${returned.message}"`);
    const seconds = Number(/back to normal (\d+) s after the maintenance ended/.exec(returned.message)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(60);
    expect(dfp.status).toMatchObject({ primaryState: 'normal', secondaryState: 'normal' });
    await eventually('the metrics', async () => ((await gauge('ddi_ha_resource_in_maintenance', { kind: 'DhcpFailoverPeer', name: DHCP })) === 0 ? true : undefined), 15_000);
  });
});
