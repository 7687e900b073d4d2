// The fault matrix through the operator (issue 13): the real per-object controller in-process on
// the global-setup kube-apiserver, one HAPair on two real lab hosts, and one real fault at a time.
// Each case asserts what the hosts do (read with docker exec) and what the status says.
//   - partition between the peers (VRRP dropped both ways): both hold the VIP, SplitBrain=True,
//     the DDIHASplitBrain alert fires in promtool on the metrics scraped here; healed: one holder.
//   - a split brain hidden behind an unreachable node (the operator cut off from h2, the peers
//     from each other): both hold the VIP, the operator sees only h1's, and Ready says
//     HostUnreachable with "possible split brain", not only that h2 cannot be observed.
//   - power cut of the primary (container killed) and boot: the VIP moves and comes back, the
//     config survives, status follows each step.
//   - a full disk under the managed directory (a tiny tmpfs): the apply fails naming the disk,
//     the live file is byte-identical, keepalived keeps running.
//   - a real host-key rotation (new keys, sshd restarted, the pooled connection cut): the next
//     connection is refused, DDIHost status says HostKeyMismatch naming the host and the fix, and
//     the spec edit that wanted a write writes nothing there.
//   - a sudo user whose rights lack one command the apply needs (chown): the apply says which
//     command and gives the sudoers line, and nothing is half-applied on that host.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { Controller, ControllerMetrics } from '../../src/controller/index.js';
import { localRunner } from '../../src/exec/runner.js';
import { Kubectl } from '../../src/lab/kubectl.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import { type Lab, type LabHost, startLab } from '../lab/lab.js';
import { cutSshConnections, hostFileStamp, hostSha256, interfaceAddresses, unitSnapshot } from './apply-lab.js';
import { type Condition, labPairManifests } from './controller-lab.js';
import { eventually } from './observe-lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const provided = inject('ddiHaControlPlane');
const namespace = `ddi-ha-faults-${Date.now().toString(36)}`;
const RESYNC_MS = 3_000;
const PAIR = 'vip-a';
const MANAGED_DIR = '/etc/keepalived/ddi-ha.d';
const pairFile = `${MANAGED_DIR}/${namespace}_${PAIR}.conf`;

let lab: Lab;
let dir: string;
let kubectl: Kubectl;
let controller: Controller | undefined;
let transport: SshTransport | undefined;
let metrics: ControllerMetrics;
let vip: string;


async function getJson(resource: string): Promise<{ metadata: { generation: number }; status: any }> {
  return JSON.parse(await kubectl.run(['get', resource, '-n', namespace, '-o', 'json']));
}
const condition = (status: { conditions?: Condition[] } | undefined, type: string) => status?.conditions?.find((c) => c.type === type);

async function holdsVip(host: LabHost): Promise<boolean> {
  return (await interfaceAddresses(host)).some((a) => a.startsWith(`${vip}/`));
}
/** Which lab hosts hold the VIP now, by name h1/h2. */
async function holders(): Promise<string[]> {
  const held = await Promise.all(lab.hosts.map(holdsVip));
  return held.flatMap((h, i) => (h ? [`h${i + 1}`] : []));
}
/** Waits until `predicate` holds for the HAPair's status; returns that status. */
function waitForPair(what: string, predicate: (status: any) => boolean, timeoutMs: number): Promise<any> {
  return eventually(
    what,
    async () => {
      const s = (await getJson(`hap/${PAIR}`)).status;
      return s && predicate(s) ? s : undefined;
    },
    timeoutMs,
    200,
  );
}
function waitForHost(name: string, what: string, predicate: (status: any) => boolean, timeoutMs: number): Promise<any> {
  return eventually(
    `${name} ${what}`,
    async () => {
      const s = (await getJson(`ddih/${name}`)).status;
      return s && predicate(s) ? s : undefined;
    },
    timeoutMs,
    250,
  );
}
/**
 * The failed apply removed its staged file. The operator keeps retrying with backoff, and each retry
 * stages the file again for a moment before failing, so this waits for a moment between retries; a
 * staged file that a failure left behind would be there at every look.
 */
function noStagedFileLeft(host: LabHost): Promise<true> {
  const staged = `${namespace}_${PAIR}.conf.ddi-ha-new`;
  return eventually(`no ${staged} left on the host`, async () => ((await host.run(['ls', '-A', MANAGED_DIR])).split('\n').includes(staged) ? undefined : true), 15_000, 100);
}
const splitBrainSample = async () => new RegExp(`^ddi_ha_hapair_split_brain\\{namespace="${namespace}",name="${PAIR}"\\} (\\d+)$`, 'm').exec(await metrics.registry.metrics())?.[1];


beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-faults-'));
  kubectl = new Kubectl({ binary: provided.kubectl, kubeconfig: provided.kubeconfigPath, cacheDir: join(dir, 'kube-cache') });
  lab = await startLab({ hosts: 2 });
  vip = lab.network.spare(0);
  await kubectl.applyServerSide([join(repoRoot, 'crds')]);
  await kubectl.waitForCrds();
  await kubectl.run(['apply', '--server-side', '--field-manager=test', '-f', '-'], { stdin: labPairManifests(lab, { namespace, name: PAIR, virtualIP: `${vip}/${lab.network.prefixLength}`, virtualRouterID: 81 }) });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(provided.kubeconfigPath);
  const log = pino({ level: 'warn', redact: [...LOG_REDACT_PATHS] });
  metrics = new ControllerMetrics();
  // A dead host must not hold a worker for the default minute.
  transport = new SshTransport({ logger: log, commandTimeoutMs: 8_000, connectTimeoutMs: 4_000 });
  controller = new Controller({ kubeConfig, namespace, resyncMs: RESYNC_MS, log, metrics, transport });
  controller.start();
  await kubectl.run(['wait', '--for=condition=Ready', `hap/${PAIR}`, 'ddih/h1', 'ddih/h2', '-n', namespace, '--timeout=150s'], { timeoutMs: 160_000 });
}, 240_000);

afterAll(async () => {
  await controller?.stop();
  await transport?.closeAll();
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the fault matrix through the operator', () => {
  it('partition between the peers: both hold the VIP, SplitBrain=True within seconds, the alert fires; healed, one holder', async () => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    expect(await holders()).toEqual(['h1']);
    const before = await splitBrainSample();
    expect(before).toBe('0');

    await h1.isolateFrom(h2);
    let during: string | undefined;
    try {
      const cut = Date.now();
      await eventually('both hosts hold the VIP', async () => ((await holders()).length === 2 ? true : undefined), 20_000, 200);
      const bothHold = Date.now();
      const status = await waitForPair('SplitBrain=True', (s) => condition(s, 'SplitBrain')?.status === 'True', 15_000);
      const seen = Date.now();
      console.log(`partition: both hold the VIP ${bothHold - cut} ms after the cut; SplitBrain=True in status ${seen - bothHold} ms later`);
      expect(seen - bothHold).toBeLessThan(10_000);
      expect(status.activeNode).toBe('both');
      expect(condition(status, 'SplitBrain')).toMatchObject({ reason: 'BothNodesHoldVIP' });
      expect(condition(status, 'SplitBrain')!.message).toContain(`both h1 and h2 hold ${vip}`);
      expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'SplitBrain' });
      during = await eventually('the split-brain gauge at 1', async () => ((await splitBrainSample()) === '1' ? '1' : undefined), 5_000, 100);
      // Both hosts still answer the operator: this is a split brain, not an unreachable host.
      for (const h of ['h1', 'h2']) expect(condition((await getJson(`ddih/${h}`)).status, 'Reachable')?.status).toBe('True');
    } finally {
      await h1.heal();
    }
    const healed = Date.now();
    await eventually('one holder again', async () => ((await holders()).length === 1 ? true : undefined), 20_000, 200);
    expect(await holders()).toEqual(['h1']);
    const after = await waitForPair('SplitBrain gone', (s) => s.activeNode === 'primary' && condition(s, 'SplitBrain')?.status !== 'True', 15_000);
    console.log(`healed: one holder and SplitBrain gone from status ${Date.now() - healed} ms after the heal`);
    expect(condition(after, 'VIPAssigned')).toMatchObject({ status: 'True', reason: 'HeldByPrimary' });
    const afterSample = await eventually('the split-brain gauge at 0', async () => ((await splitBrainSample()) === '0' ? '0' : undefined), 5_000, 100);

    // The alert, from the samples scraped above: the series as the registry printed it, each
    // scraped value held for its phase, one sample a minute (the rule's for: is 1m).
    const rules = join(repoRoot, 'charts', 'ddi-ha-operator', 'files', 'ddi-ha-alerts.rules.yaml');
    const promtoolCase = {
      rule_files: [rules],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [{ series: `ddi_ha_hapair_split_brain{namespace="${namespace}",name="${PAIR}"}`, values: `${before} ${during}x2 ${afterSample}x3` }],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'DDIHASplitBrain', exp_alerts: [] },
            {
              eval_time: '3m',
              alertname: 'DDIHASplitBrain',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical', namespace, name: PAIR },
                  exp_annotations: {
                    summary: `HAPair ${namespace}/${PAIR}: both nodes hold the VIP (split brain)`,
                    description: `Both nodes of HAPair ${PAIR} in namespace ${namespace} hold its virtual IP, so clients reach whichever answered ARP last. The nodes do not hear each other's VRRP adverts: check that VRRP (IP protocol 112) passes between them on the pair's interface, and that no other pair on the segment uses the same virtualRouterID. kubectl -n ${namespace} describe hapair ${PAIR}`,
                  },
                },
              ],
            },
            { eval_time: '5m', alertname: 'DDIHASplitBrain', exp_alerts: [] },
          ],
        },
      ],
    };
    const caseFile = join(dir, 'split-brain.test.yaml');
    writeFileSync(caseFile, stringify(promtoolCase, { lineWidth: 0 }));
    const r = await localRunner.run(['promtool', 'test', 'rules', caseFile], { timeoutMs: 60_000 });
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
  }, 120_000);

  it('a split brain hidden behind an unreachable node: reported as a possible split brain', async () => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    const operator = lab.network.gateway;
    const rules = [`INPUT -s ${operator}`, `OUTPUT -d ${operator}`].map((r) => `${r} -j DROP -m comment --comment ddi-ha-faults`);
    await h1.isolateFrom(h2);
    await h2.run(rules.map((r) => `iptables -I ${r}`).join(' && '));
    try {
      await eventually('both hosts hold the VIP', async () => ((await holders()).length === 2 ? true : undefined), 20_000, 200);
      const status = await waitForPair('Ready=False HostUnreachable', (s) => condition(s, 'Ready')?.reason === 'HostUnreachable', 45_000);
      const message = condition(status, 'Ready')!.message;
      console.log(`hidden split brain: ${message}`);
      expect(message).toContain('cannot observe the secondary h2');
      expect(message).toContain(`possible split brain: the primary h1 holds ${vip}/${lab.network.prefixLength}, and if h2 is up but cut off from h1 too, it holds it as well`);
      // What the operator can see is one holder: the pair is not reported as a certain split brain.
      expect(status.activeNode).toBe('primary');
      expect(condition(status, 'SplitBrain')).toBeUndefined();
      expect(condition((await getJson('ddih/h2')).status, 'Reachable')?.status).toBe('False');
    } finally {
      await h2.run(rules.map((r) => `iptables -D ${r}`).join(' && '));
      await h1.heal();
    }
    await eventually('one holder again', async () => ((await holders()).join() === 'h1' ? true : undefined), 20_000, 200);
    await waitForPair('Ready=True again', (s) => condition(s, 'Ready')?.status === 'True', 60_000);
  }, 150_000);

  it('power cut of the primary and boot: the VIP moves away and back, the config survives, status follows', async () => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    const file = await hostSha256(h1, pairFile);
    await h1.kill();
    const killed = Date.now();
    try {
      await eventually('the VIP on h2', async () => ((await holdsVip(h2)) ? true : undefined), 20_000, 200);
      const away = await waitForPair('activeNode secondary', (s) => s.activeNode === 'secondary', 20_000);
      console.log(`power cut: activeNode secondary in status ${Date.now() - killed} ms after the kill`);
      expect(condition(away, 'VIPAssigned')).toMatchObject({ status: 'True', reason: 'HeldBySecondary' });
      const unreachable = await waitForPair('Ready=False HostUnreachable', (s) => condition(s, 'Ready')?.reason === 'HostUnreachable', 30_000);
      expect(condition(unreachable, 'Ready')!.message).toContain('cannot observe the primary h1');
      const host = await waitForHost('h1', 'Reachable=False', (s) => condition(s, 'Reachable')?.status === 'False', 30_000);
      expect(condition(host, 'Reachable')!.reason).toBe('HostUnreachable');
      expect(condition(host, 'Ready')).toMatchObject({ status: 'False', reason: 'HostUnreachable' });
      expect(condition((await getJson('ddih/h2')).status, 'Ready')?.status).toBe('True');
    } finally {
      await h1.start();
    }
    const booted = Date.now();
    expect(await hostSha256(h1, pairFile)).toBe(file);
    await eventually('the VIP back on h1', async () => ((await holders()).join() === 'h1' ? true : undefined), 30_000, 200);
    await waitForHost('h1', 'Ready again', (s) => condition(s, 'Ready')?.status === 'True', 60_000);
    const back = await waitForPair('Ready=True on the primary', (s) => s.activeNode === 'primary' && condition(s, 'Ready')?.status === 'True', 60_000);
    console.log(`boot: HAPair Ready on the primary ${Date.now() - booted} ms after the host was up`);
    expect(back.failoverCount).toBeGreaterThanOrEqual(2);
    expect(await hostSha256(h1, pairFile)).toBe(file);
  }, 150_000);

  it('a full disk under the managed directory: the apply fails naming the disk, the live file is intact, keepalived keeps running', async () => {
    const h1 = lab.hosts[0]!;
    const original = await hostSha256(h1, pairFile);
    const unit = await unitSnapshot(h1, 'keepalived.service');
    // A 64 KiB tmpfs over the managed directory, holding a copy of its files, then filled up.
    await h1.run(
      `cp -a ${MANAGED_DIR} /root/managed-copy && mount -t tmpfs -o size=64k tmpfs ${MANAGED_DIR} && ` +
        `cp -a /root/managed-copy/. ${MANAGED_DIR}/ && (dd if=/dev/zero of=${MANAGED_DIR}/.fill bs=4k 2>/dev/null || true)`,
    );
    try {
      expect(await hostSha256(h1, pairFile)).toBe(original);
      expect((await h1.run(['df', '--output=avail', MANAGED_DIR])).trim().split('\n').pop()!.trim()).toBe('0');
      await kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { primary: { priority: 210 } } })]);
      const failed = await waitForPair('ConfigApplied=False', (s) => condition(s, 'ConfigApplied')?.status === 'False', 30_000);
      const message = condition(failed, 'ConfigApplied')!.message;
      console.log(`full disk: ${message}`);
      expect(message).toContain(`no space left on device on h1:${MANAGED_DIR}`);
      expect(message).toContain(`df -h ${MANAGED_DIR}`);
      expect(await hostSha256(h1, pairFile)).toBe(original);
      await noStagedFileLeft(h1);
      const still = await unitSnapshot(h1, 'keepalived.service');
      expect([still.ActiveState, still.MainPID]).toEqual(['active', unit.MainPID]);
      expect(await holders()).toEqual(['h1']);
    } finally {
      await h1.run(`umount ${MANAGED_DIR} && rm -rf /root/managed-copy`);
    }
    // Space again: the next pass applies the edit.
    await waitForPair('ConfigApplied=True again', (s) => condition(s, 'ConfigApplied')?.status === 'True' && condition(s, 'Ready')?.status === 'True', 60_000);
    expect(await h1.run(['grep', '-c', 'priority 210', pairFile])).toMatch(/^1/);
  }, 120_000);

  it('a real host-key rotation while a pooled session is open: refused, reported, nothing written', async () => {
    const h2 = lab.hosts[1]!;
    const key = `${namespace}/h2`;
    expect(controller!.channelsOpened().get(key)?.exec ?? 0).toBeGreaterThan(0);
    const stamp = await hostFileStamp(h2, pairFile);
    const content = await hostSha256(h2, pairFile);
    await h2.run('mkdir -p /root/old-host-keys && cp -a /etc/ssh/ssh_host_* /root/old-host-keys/');
    // What a reinstall does: fresh keys, sshd restarted; the pooled connection then drops.
    await h2.run('rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh');
    await cutSshConnections(h2);
    try {
      await kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { secondary: { priority: 110 } } })]);
      const host = await waitForHost('h2', 'Reachable=False HostKeyMismatch', (s) => condition(s, 'Reachable')?.reason === 'HostKeyMismatch', 30_000);
      const message = condition(host, 'Reachable')!.message;
      console.log(`host key rotated: ${message}`);
      expect(message).toContain('has changed');
      expect(message).toContain(`expected ${h2.hostKeyFingerprint}`);
      expect(message).toContain('put it in spec.hostKey');
      expect(condition(host, 'Ready')).toMatchObject({ status: 'False', reason: 'HostKeyMismatch' });
      expect(condition(host, 'Stalled')).toMatchObject({ status: 'True', reason: 'HostKeyMismatch' });
      // Ready=False naming h2: a Ready=False left from an earlier case would name h1.
      await waitForPair('Ready=False naming h2', (s) => condition(s, 'Ready')?.status === 'False' && condition(s, 'Ready')!.message.includes('h2'), 15_000);
      // Two more resyncs: nothing reached the host.
      await new Promise((r) => setTimeout(r, 2 * RESYNC_MS));
      expect(await hostFileStamp(h2, pairFile)).toBe(stamp);
      expect(await hostSha256(h2, pairFile)).toBe(content);
      expect((await h2.run(['ls', '-A', MANAGED_DIR])).split('\n')).not.toContain(`${namespace}_${PAIR}.conf.ddi-ha-new`);
    } finally {
      await h2.run('rm -f /etc/ssh/ssh_host_* && cp -a /root/old-host-keys/. /etc/ssh/ && rm -rf /root/old-host-keys && systemctl restart ssh');
    }
    // The pinned key back: the edit is applied on the next pass.
    await waitForHost('h2', 'Ready again', (s) => condition(s, 'Ready')?.status === 'True', 60_000);
    await waitForPair('Ready=True', (s) => condition(s, 'Ready')?.status === 'True' && condition(s, 'ConfigApplied')?.status === 'True', 60_000);
    expect(await h2.run(['grep', '-c', 'priority 110', pairFile])).toMatch(/^1/);
  }, 150_000);

  it('a sudo user missing the right to one command: the apply names it and the sudoers line, nothing half-applied', async () => {
    const h2 = lab.hosts[1]!;
    const dropIn = '/etc/sudoers.d/zz-ddi-ha-faults';
    // Everything but chown, which staging needs (after the read, before anything is live).
    await h2.run(`printf '%s\\n' 'ddi ALL=(ALL) NOPASSWD: ALL, !/usr/bin/chown' > ${dropIn} && chmod 0440 ${dropIn} && visudo -c`);
    try {
      await kubectl.run(['patch', 'ddih/h2', '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { user: lab.users.sudo, sudo: true } })]);
      const generation = (await getJson('ddih/h2')).metadata.generation;
      await waitForHost('h2', 'Ready as ddi', (s) => s.observedGeneration === generation && condition(s, 'Ready')?.status === 'True', 30_000);
      const stamp = await hostFileStamp(h2, pairFile);
      const unit = await unitSnapshot(h2, 'keepalived.service');
      await kubectl.run(['patch', `hap/${PAIR}`, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec: { secondary: { priority: 120 } } })]);
      const failed = await waitForPair('ConfigApplied=False', (s) => condition(s, 'ConfigApplied')?.status === 'False', 30_000);
      const message = condition(failed, 'ConfigApplied')!.message;
      console.log(`missing sudo right: ${message}`);
      expect(message).toMatch(/sudo refused "chown [^"]*" for user ddi/);
      expect(message).toContain('"ddi ALL=(root) NOPASSWD: /usr/bin/chown"');
      expect(await hostFileStamp(h2, pairFile)).toBe(stamp);
      await noStagedFileLeft(h2);
      const still = await unitSnapshot(h2, 'keepalived.service');
      expect([still.ActiveState, still.MainPID]).toEqual(['active', unit.MainPID]);
    } finally {
      await h2.run(['rm', '-f', dropIn]);
    }
    // The right granted: the edit is applied on a later pass.
    await waitForPair('ConfigApplied=True', (s) => condition(s, 'ConfigApplied')?.status === 'True' && condition(s, 'Ready')?.status === 'True', 60_000);
    expect(await h2.run(['grep', '-c', 'priority 120', pairFile])).toMatch(/^1/);
  }, 120_000);
});
