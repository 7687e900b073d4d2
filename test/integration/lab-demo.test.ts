// hack/lab.sh's --once path, as functions, against the global-setup kube-apiserver and a fresh
// four-host lab: what a user sees. The CRDs accept the embedded default set, one reconcile pass
// applies it over SSH, `kubectl wait --for=condition=Ready` returns, and the statuses on the API
// server say where the VIP is and that the failover pair is normal/normal. The VIP's place is
// also checked on the host itself (docker exec), independent of the engine under test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadManifests } from '../../src/manifests/load.js';
import { LAB_FAILOVER_PEER, LAB_HAPAIR, LAB_KEA_CLUSTER } from '../../src/lab/default-manifests.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { validateManifests } from '../../src/validation/validate.js';
import { type Lab, startLab } from '../lab/lab.js';
import { type LabDemo, prepareLabDemo, reconcileUntilSettled, stopLabDemo } from '../lab/demo.js';
import { generateEd25519KeyPair } from '../lab/ssh-keys.js';

const provided = inject('ddiHaControlPlane');
// Each run gets its own namespace: without a controller-manager, namespaces never finish deleting.
const namespace = `ddi-ha-lab-${Date.now().toString(36)}`;

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let demo: LabDemo | undefined;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

async function getJson(resource: string): Promise<{ metadata: { generation: number }; spec: any; status: any }> {
  return JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
}

const condition = (status: { conditions?: Condition[] }, type: string) => status.conditions?.find((c) => c.type === type);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-lab-demo-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 4 });
});

afterAll(async () => {
  await stopLabDemo(demo);
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('hack/lab.sh --once on a real kube-apiserver and four lab hosts', () => {
  it('writes the embedded default set, which ddi-ha validate and the API server both accept', async () => {
    demo = await prepareLabDemo({ lab, kubectl, dir, namespace });
    const { problems } = validateManifests(await loadManifests([demo.manifestsDir]));
    expect(problems).toEqual([]);
    const names = (await kubectl.run(['get', 'ddi-ha', '-n', namespace, '-o', 'name'])).trim().split('\n').sort();
    expect(names).toEqual([
      'ddihost.ddi-ha.io/h1',
      'ddihost.ddi-ha.io/h2',
      'ddihost.ddi-ha.io/h3',
      'ddihost.ddi-ha.io/h4',
      `dhcpfailoverpeer.ddi-ha.io/${LAB_FAILOVER_PEER}`,
      `hapair.ddi-ha.io/${LAB_HAPAIR}`,
      `keahacluster.ddi-ha.io/${LAB_KEA_CLUSTER}`,
    ]);
    // Admission filled in the CRD defaults: the engine reads the set back from the API server.
    const hap = await getJson(`hap/${LAB_HAPAIR}`);
    expect(hap.spec).toMatchObject({ primary: { priority: 150 }, secondary: { priority: 100 }, preempt: true, virtualRouterID: 51 });
    expect(hap.status).toBeUndefined();
  });

  it('the controller applies over SSH, and kubectl wait --for=condition=Ready returns while it writes status', async () => {
    expect(demo).toBeDefined();
    const started = Date.now();
    // What a user types in another terminal while hack/lab.sh runs.
    const waited = kubectl.run(
      ['wait', '--for=condition=Ready', `hap/${LAB_HAPAIR}`, `dfp/${LAB_FAILOVER_PEER}`, `kha/${LAB_KEA_CLUSTER}`, '-n', namespace, '--timeout=180s'],
      { timeoutMs: 190_000 },
    );
    const [settle, waitOutput] = await Promise.all([reconcileUntilSettled(demo!, provided.kubeconfigPath, { timeoutMs: 180_000, resources: 7 }), waited]);
    const notReady = [...settle.summary].filter(([, line]) => !line.startsWith('Ready=True'));
    expect(notReady, JSON.stringify(notReady)).toEqual([]);
    expect(settle.settled).toBe(true);
    expect(waitOutput).toContain(`hapair.ddi-ha.io/${LAB_HAPAIR} condition met`);
    expect(waitOutput).toContain(`dhcpfailoverpeer.ddi-ha.io/${LAB_FAILOVER_PEER} condition met`);
    console.log(`lab-demo: Ready after ${Date.now() - started} ms`);
  });

  it('the HAPair status says the primary h1 holds the VIP, and h1 really has it', async () => {
    const hap = await getJson(`hap/${LAB_HAPAIR}`);
    expect(hap.status).toMatchObject({
      observedGeneration: hap.metadata.generation,
      activeNode: 'primary',
      nodes: [
        { host: 'h1', role: 'primary', vrrpState: 'MASTER', holdsVIP: true, servicesHealthy: true },
        { host: 'h2', role: 'secondary', vrrpState: 'BACKUP', holdsVIP: false, servicesHealthy: true },
      ],
    });
    expect(condition(hap.status, 'Ready')).toMatchObject({ status: 'True', reason: 'VIPOnPrimary', observedGeneration: hap.metadata.generation });
    expect(condition(hap.status, 'ConfigApplied')).toMatchObject({ status: 'True' });
    expect(condition(hap.status, 'VIPAssigned')).toMatchObject({ status: 'True', reason: 'HeldByPrimary' });
    // kstatus: present only while true.
    for (const type of ['Reconciling', 'Stalled', 'SplitBrain']) expect(condition(hap.status, type)).toBeUndefined();
    const vip = `${lab.network.spare(0)}/${lab.network.prefixLength}`;
    expect(hap.spec.virtualIP).toBe(vip);
    expect(await lab.hosts[0]!.run(['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).toContain(`inet ${vip}`);
    expect(await lab.hosts[1]!.run(['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).not.toContain(`inet ${vip}`);
  });

  it('the DhcpFailoverPeer is normal/normal and the KeaHACluster is hot-standby on both peers', async () => {
    const dfp = await getJson(`dfp/${LAB_FAILOVER_PEER}`);
    expect(dfp.status).toMatchObject({ observedGeneration: dfp.metadata.generation, primaryState: 'normal', secondaryState: 'normal' });
    expect(condition(dfp.status, 'Ready')).toMatchObject({ status: 'True', reason: 'BothNormal' });
    for (const type of ['PartnerDown', 'CommunicationsInterrupted', 'Reconciling', 'Stalled']) expect(condition(dfp.status, type)).toBeUndefined();

    const kha = await getJson(`kha/${LAB_KEA_CLUSTER}`);
    expect(kha.status).toMatchObject({
      health: 'OK',
      peers: [
        { name: 'h3', role: 'primary', state: 'hot-standby', reachable: true },
        { name: 'h4', role: 'standby', state: 'hot-standby', reachable: true },
      ],
    });
    expect(condition(kha.status, 'ConfigInSync')).toMatchObject({ status: 'True' });

    const printed = await kubectl.run(['get', 'ddi-ha', '-n', namespace, '-o', 'wide']);
    expect(printed).toMatch(new RegExp(`hapair\\.ddi-ha\\.io/${LAB_HAPAIR}\\s+\\S+\\s+51\\s+primary\\s+True\\s+VIPOnPrimary`));
    expect(printed).toMatch(new RegExp(`dhcpfailoverpeer\\.ddi-ha\\.io/${LAB_FAILOVER_PEER}\\s+normal\\s+normal\\s+True`));
  });

  it('after keepalived stops on h1 the controller reports the VIP on h2 and counts the failover', async () => {
    await lab.hosts[0]!.stopService('keepalived');
    try {
      const deadline = Date.now() + 30_000;
      let hap = await getJson(`hap/${LAB_HAPAIR}`);
      // keepalived's STOP on h1 shows once the VIP moved (the address stream) or at the next resync.
      while ((hap.status.activeNode !== 'secondary' || hap.status.nodes?.[0]?.vrrpState !== 'STOP') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        hap = await getJson(`hap/${LAB_HAPAIR}`);
      }
      expect(hap.status).toMatchObject({ activeNode: 'secondary', failoverCount: 1, nodes: [{ vrrpState: 'STOP', holdsVIP: false }, { vrrpState: 'MASTER', holdsVIP: true }] });
      expect(condition(hap.status, 'Ready')).toMatchObject({ status: 'False', reason: 'KeepalivedNotRunning' });
      expect(condition(hap.status, 'Ready')!.message).toContain('keepalived is not running on h1');
    } finally {
      await lab.hosts[0]!.startService('keepalived');
    }
  });

  it('TrustOnFirstUse pins through status.observedHostKey: recorded on first use, a changed key refused, spec.hostKey re-pins', async () => {
    const h4 = lab.hosts[3]!;
    const bareKey = h4.hostKeyLine.split(' ').slice(0, 2).join(' ');
    const ddih = { kind: 'DDIHost', metadata: { name: 'h4', namespace } };
    // The controller's next pass of h4 (a spec change: at once; a status edit: its 10 s resync).
    const host4 = () => getJson('ddih/h4');
    const until = async (what: string, ok: (h: any) => boolean) => {
      const deadline = Date.now() + 40_000;
      for (;;) {
        const h = await host4();
        if (ok(h)) return;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(h.status)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    const patchSpec = (patch: object, type = 'merge') => kubectl.run(['patch', 'ddih', 'h4', '-n', namespace, `--type=${type}`, '-p', JSON.stringify(patch)]);
    try {
      // As a user would set it up: no key in the spec.
      await patchSpec([{ op: 'remove', path: '/spec/hostKey' }, { op: 'replace', path: '/spec/hostKeyPolicy', value: 'TrustOnFirstUse' }], 'json');
      await until('the key pinned', (h) => h.status?.observedGeneration === h.metadata.generation && h.status?.observedHostKey === bareKey);
      let host = await getJson('ddih/h4');
      expect(host.spec.hostKey).toBeUndefined();
      expect(host.status).toMatchObject({ observedHostKey: bareKey, hostKeyFingerprint: h4.hostKeyFingerprint });
      expect(condition(host.status, 'Reachable')).toMatchObject({ status: 'True' });

      // The pin recorded in status is what the next pass expects: another key there means the host's key changed.
      const other = generateEd25519KeyPair('before-reinstall').publicKeyLine.split(' ').slice(0, 2).join(' ');
      await kubectl.patchStatus(ddih, { status: { observedHostKey: other } });
      await until('HostKeyMismatch', (h) => condition(h.status, 'Reachable')?.reason === 'HostKeyMismatch');
      host = await getJson('ddih/h4');
      expect(condition(host.status, 'Reachable')).toMatchObject({ status: 'False', reason: 'HostKeyMismatch' });
      expect(condition(host.status, 'Stalled')).toMatchObject({ status: 'True', reason: 'HostKeyMismatch' });
      expect(condition(host.status, 'Reachable')!.message).toContain('pinned on first use in status.observedHostKey');
      expect(condition(host.status, 'Reachable')!.message).toContain('set spec.hostKey to it');
      expect(host.status.observedHostKey).toBe(other);

      // The key verified out of band, set in the spec: it wins over the recorded pin, which follows it.
      await patchSpec({ spec: { hostKey: h4.hostKeyLine } });
      await until('Reachable again', (h) => h.status?.observedGeneration === h.metadata.generation && condition(h.status, 'Reachable')?.status === 'True');
      host = await getJson('ddih/h4');
      expect(condition(host.status, 'Reachable')).toMatchObject({ status: 'True' });
      expect(host.status).toMatchObject({ observedHostKey: bareKey, hostKeyFingerprint: h4.hostKeyFingerprint });
    } finally {
      await patchSpec({ spec: { hostKeyPolicy: 'Pinned', hostKey: h4.hostKeyLine } });
    }
  });
});
