// `ddi-ha import` on real lab hosts (issue 12 item 4): hand-written configs in the seeds' shapes
// are put on two hosts and their daemons started; the real `ddi-ha` bin reads them over SSH
// (pinned host keys), and its manifests must validate, be admitted by the real kube-apiserver
// (server-side dry run), and, applied with `ddi-ha apply`, adopt the running keepalived pair with
// a reload only: same MainPID and start time, the VIP never leaves the primary.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { AddressLog } from '../lab/address-log.js';
import { type Lab, type LabHost, startLab } from '../lab/lab.js';

const execFileAsync = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'ddi-ha.js');
const provided = inject('ddiHaControlPlane');
const NAMESPACE = 'imported';

let lab: Lab;
let dir: string;
let vip: string;
let h1: LabHost;
let h2: LabHost;

async function ddiHa(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [bin, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 180_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function kubectl(args: string[], stdin?: string): Promise<string> {
  const child = execFileAsync(provided.kubectl, [`--kubeconfig=${provided.kubeconfigPath}`, ...args], { maxBuffer: 16 * 1024 * 1024 });
  if (stdin !== undefined) child.child.stdin?.end(stdin);
  return (await child).stdout;
}

/** DDI Central's keepalived pair (seed 000), as an admin would write it by hand. */
function keepalivedConf(host: LabHost, role: 'MASTER' | 'BACKUP', priority: number): string {
  return `! keepalived.conf for the DNS VIP, written by hand (DDI Central's shape)
global_defs {
  router_id ${host.name}
  enable_script_security
  script_user root
}

vrrp_script chk_named {
  script "/usr/bin/systemctl is-active --quiet named"
  interval 2
  fall 2
  rise 2
}

vrrp_script chk_upstream {
  script "/usr/local/bin/check-upstream"
  interval 5
}

vrrp_instance VI_1 {
  state ${role}
  interface ${host.interface}
  virtual_router_id 71
  priority ${priority}
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass ddi-lab
  }
  virtual_ipaddress {
    ${vip} dev ${host.interface}
  }
  track_script {
    chk_named
    chk_upstream
  }
  smtp_alert
}
`;
}

const OMAPI_SECRET = 'aW1wb3J0LXRlc3Qtb21hcGkta2V5LW9mLXRoZS1sYWItcGFpcg==';

/** The ISC failover pair (seed 003's shape), with OMAPI, one failover pool and a host reservation. */
function dhcpdConf(self: LabHost, partner: LabHost, role: 'primary' | 'secondary'): string {
  const net = lab.network.subnet.split('/')[0]!;
  const base = net.replace(/\.0$/, '');
  return `# /etc/dhcp/dhcpd.conf for the ${role} DHCP server, written by hand
authoritative;
ddns-update-style none;
default-lease-time 600;

omapi-port 7911;
key omapi_key {
  algorithm hmac-md5;
  secret "${OMAPI_SECRET}";
}
omapi-key omapi_key;

failover peer "dhcp-failover" {
  ${role};
  address ${self.address};
  port 647;
  peer address ${partner.address};
  peer port 647;
  max-response-delay 30;
  max-unacked-updates 10;
  load balance max seconds 3;
${role === 'primary' ? '  mclt 1800;\n  split 128;\n' : ''}}

subnet ${net} netmask 255.255.255.0 {
  option routers ${lab.network.gateway};
  option domain-name-servers ${lab.network.gateway};
  option ntp-servers ${lab.network.gateway};
  pool {
    failover peer "dhcp-failover";
    max-lease-time 1800;
    range ${base}.100 ${base}.150;
  }
}

host printer {
  hardware ethernet 00:16:3e:00:00:01;
  fixed-address ${base}.50;
}
`;
}

/** Kea hot-standby (Micetro's hook section, seed 001), with a backup peer that no --host stands for. */
function keaConf(self: 'server1' | 'server2'): string {
  const net = lab.network.subnet.split('/')[0]!.replace(/\.0$/, '');
  return `// kea-dhcp4.conf, written by hand
{
"Dhcp4": {
  "interfaces-config": { "interfaces": [ "eth0" ] },
  "control-socket": { "socket-type": "unix", "socket-name": "/run/kea/kea4-ctrl-socket" },
  "lease-database": { "type": "memfile", "lfc-interval": 3600 },
  "valid-lifetime": 4000,
  "hooks-libraries": [
    { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so" },
    { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so",
      "parameters": { "high-availability": [ {
        "this-server-name": "${self}",
        "mode": "hot-standby",
        "heartbeat-delay": 2000,
        "max-response-delay": 10000,
        "max-ack-delay": 5000,
        "max-unacked-clients": 0,
        "peers": [
          { "name": "server1", "url": "http://${h1.address}:8000/", "role": "primary", "auto-failover": true },
          { "name": "server2", "url": "http://${h2.address}:8000/", "role": "standby", "auto-failover": true },
          { "name": "server3", "url": "http://${lab.network.spare(9)}:8000/", "role": "backup", "auto-failover": false }
        ] } ] } }
  ],
  "subnet4": [ { "subnet": "${lab.network.subnet}", "pools": [ { "pool": "${net}.160 - ${net}.190" } ] } ]
}
}
`;
}

function keaAgentConf(host: LabHost): string {
  return `{
"Control-agent": {
  "http-host": "${host.address}",
  "http-port": 8000,
  "control-sockets": { "dhcp4": { "socket-type": "unix", "socket-name": "/run/kea/kea4-ctrl-socket" } }
}
}
`;
}

async function unitState(host: LabHost, unit: string): Promise<{ pid: string; since: string }> {
  const out = await host.run(['systemctl', 'show', unit, '-p', 'MainPID', '-p', 'ActiveEnterTimestampMonotonic']);
  return { pid: /MainPID=(\d+)/.exec(out)![1]!, since: /ActiveEnterTimestampMonotonic=(\d+)/.exec(out)![1]! };
}

async function holdsVip(host: LabHost): Promise<boolean> {
  return (await host.run(['ip', '-o', 'addr', 'show', 'dev', host.interface])).includes(` ${vip} `);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function importArgs(out: string): string[] {
  return [
    'import',
    '--host', `root@${h1.address}`,
    '--host', `root@${h2.address}`,
    '--identity', join(dir, 'id_ed25519'),
    '--host-key', `${h1.address}=${h1.hostKeyLine}`,
    '--host-key', `${h2.address}=${h2.hostKeyLine}`,
    '--namespace', NAMESPACE,
    '-o', out,
  ];
}

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  [h1, h2] = lab.hosts as [LabHost, LabHost];
  dir = mkdtempSync(join(tmpdir(), 'ddi-ha-import-'));
  writeFileSync(join(dir, 'id_ed25519'), lab.privateKey, { mode: 0o600 });
  vip = `${lab.network.spare(0)}/${lab.network.prefixLength}`;
  for (const [host, role, priority] of [[h1, 'MASTER', 150], [h2, 'BACKUP', 100]] as const) {
    await host.run(['sh', '-c', 'printf "#!/bin/sh\\nexit 0\\n" >/usr/local/bin/check-upstream && chmod 755 /usr/local/bin/check-upstream']);
    await host.run(['mkdir', '-p', '/etc/keepalived']);
    await host.container.copyContentToContainer([{ content: keepalivedConf(host, role, priority), target: '/etc/keepalived/keepalived.conf', mode: 0o644 }]);
    await host.startService('named');
    await host.startService('keepalived');
  }
  for (const [host, partner, role] of [[h1, h2, 'primary'], [h2, h1, 'secondary']] as const) {
    await host.container.copyContentToContainer([{ content: dhcpdConf(host, partner, role), target: '/etc/dhcp/dhcpd.conf', mode: 0o644 }]);
    await host.startService('isc-dhcp-server');
  }
  await until('the VIP on h1', () => holdsVip(h1));
}, 240_000);

afterAll(async () => {
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('ddi-ha import of a hand-written keepalived pair and ISC failover pair', () => {
  it('writes an HAPair that keeps the running instance, names what it cannot hold, and diffs each file', async () => {
    const out = join(dir, 'first');
    const r = await ddiHa(importArgs(out));
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const docs = parseAllDocuments(readFileSync(join(out, 'manifests.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> });
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(
      [`DDIHost/${h1.name}`, `DDIHost/${h2.name}`, 'HAPair/vi-1', 'DhcpFailoverPeer/dhcp-failover', 'Secret/dhcp-failover-omapi'].sort(),
    );
    const pair = docs.find((d) => d.kind === 'HAPair')!.spec;
    expect(pair).toMatchObject({
      instanceName: 'VI_1',
      primary: { host: h1.name, interface: 'eth0', priority: 150 },
      secondary: { host: h2.name, interface: 'eth0', priority: 100 },
      virtualIP: vip,
      virtualRouterID: 71,
      services: { dns: true, dhcp: 'None' },
      authPass: 'ddi-lab',
    });
    expect(docs.find((d) => d.metadata.name === h1.name)!.spec).toMatchObject({ address: h1.address, hostKey: h1.hostKeyLine, hostKeyPolicy: 'Pinned' });

    expect(docs.find((d) => d.kind === 'DhcpFailoverPeer')!.spec).toMatchObject({
      primary: { host: h1.name, address: h1.address, port: 647 },
      secondary: { host: h2.name, address: h2.address, port: 647 },
      maxResponseDelay: '30s',
      mclt: '1800s',
      split: 128,
      loadBalanceMaxSeconds: 3,
      omapi: { port: 7911, keySecretRef: { name: 'dhcp-failover-omapi' } },
      subnets: [{ subnet: lab.network.subnet, options: { routers: [lab.network.gateway] }, pools: [{ maxLeaseTime: '1800s' }] }],
    });

    const report = readFileSync(join(out, 'report.txt'), 'utf8');
    expect(report).toContain(`${h1.name}:/etc/dhcp/dhcpd.conf:29: option ntp-servers ${lab.network.gateway}: `);
    for (const host of [h1, h2]) {
      expect(report).toMatch(new RegExp(`${host.name}: isc-dhcp-server\\.service: restart: `));
      expect(report).toContain(`${host.name}:/etc/dhcp/dhcpd.conf: changed (EDIT FIRST`);
      const adopted = readFileSync(join(out, 'adopt', host.name, 'etc/dhcp/dhcpd.conf'), 'utf8');
      expect(adopted).not.toMatch(/failover peer|omapi|subnet /);
      expect(adopted).toContain('host printer {');
    }
    // Never dropped silently: the global router_id, a script that checks no known service, an instance keyword.
    for (const host of [h1, h2]) {
      expect(report).toContain(`${host.name}:/etc/keepalived/keepalived.conf:3 (global_defs): router_id ${host.name}`);
      expect(report).toContain(`${host.name}:/etc/keepalived/keepalived.conf:15 (vrrp_script chk_upstream): /usr/local/bin/check-upstream`);
      expect(report).toContain(`${host.name}:/etc/keepalived/keepalived.conf:37 (vrrp_instance VI_1): smtp_alert`);
      expect(report).toMatch(new RegExp(`${host.name}: keepalived\\.service: reload: `));
    }
    const mainDiff = readFileSync(join(out, 'diff', h1.name, 'etc/keepalived/keepalived.conf.diff'), 'utf8');
    expect(mainDiff).toContain('-vrrp_instance VI_1 {');
    expect(mainDiff).toContain('+include /etc/keepalived/ddi-ha.d/*.conf');
    const pairDiff = readFileSync(join(out, 'diff', h1.name, `etc/keepalived/ddi-ha.d/${NAMESPACE}_vi-1.conf.diff`), 'utf8');
    expect(pairDiff).toContain('+vrrp_instance VI_1 {');
    expect(pairDiff).toContain(`+    ${vip} dev eth0`);
    console.log(`import report:\n${report.split('\n').filter((l) => l.startsWith('#')).join('\n')}`);
  });

  it('produces manifests that ddi-ha validate accepts and the real kube-apiserver admits', async () => {
    const manifests = join(dir, 'first', 'manifests.yaml');
    const v = await ddiHa(['validate', '-f', manifests]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('4 resource(s) valid');
    await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=ddi-ha-import-test', '-f', join(root, 'crds')]);
    await until('the CRDs established', async () => (await kubectl(['get', 'crd', 'hapairs.ddi-ha.io', '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}'])) === 'True');
    await kubectl(['create', 'namespace', NAMESPACE]).catch(() => undefined);
    const dry = await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=ddi-ha-import-test', '-f', manifests]);
    expect(dry).toMatch(/hapair\.ddi-ha\.io\/vi-1 serverside-applied \(server dry run\)/);
    expect(dry.match(/ddihost\.ddi-ha\.io\/\S+ serverside-applied \(server dry run\)/g)).toHaveLength(2);
    expect(dry).toMatch(/dhcpfailoverpeer\.ddi-ha\.io\/dhcp-failover serverside-applied \(server dry run\)/);
    expect(dry).toMatch(/secret\/dhcp-failover-omapi serverside-applied \(server dry run\)/);
  });

  it('is adopted by ddi-ha apply: keepalived with a reload only (same PID and start time, the VIP never leaves h1), dhcpd restarted as reported', async () => {
    // The one manual step the report asks for: dhcpd.conf without the declarations the operator's include file takes over.
    for (const host of [h1, h2]) {
      await host.container.copyContentToContainer([{ content: readFileSync(join(dir, 'first', 'adopt', host.name, 'etc/dhcp/dhcpd.conf'), 'utf8'), target: '/etc/dhcp/dhcpd.conf', mode: 0o644 }]);
    }
    // Debian's isc-dhcp-server is a SysV script under systemd (MainPID 0): the daemon's own PID it is.
    const dhcpdPid = async (host: LabHost) => (await host.run(['pgrep', '-x', 'dhcpd'])).trim();
    const dhcpdBefore = { h1: await dhcpdPid(h1), h2: await dhcpdPid(h2) };
    expect(dhcpdBefore.h1, 'the hand-written dhcpd runs').toMatch(/^\d+$/);
    expect(dhcpdBefore.h2, 'the hand-written dhcpd runs').toMatch(/^\d+$/);
    const before = { h1: await unitState(h1, 'keepalived'), h2: await unitState(h2, 'keepalived') };
    writeFileSync(join(dir, 'secret.yaml'), stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ddi-ha-ssh', namespace: NAMESPACE }, stringData: { privateKey: lab.privateKey } }));
    const log = new AddressLog();
    log.follow(h1.name, h1.containerId);
    log.follow(h2.name, h2.containerId);
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    try {
      const r = await ddiHa(['apply', '-f', join(dir, 'first', 'manifests.yaml'), '-f', join(dir, 'secret.yaml'), '--known-hosts', join(dir, 'known_hosts.json')]);
      expect([0, 2], r.stdout + r.stderr).toContain(r.code);
      expect(r.stdout).toContain(`changed /etc/keepalived/ddi-ha.d/${NAMESPACE}_vi-1.conf`);
      expect(r.stdout).toMatch(/reloaded keepalived\.service/);
      console.log(`apply:\n${r.stdout}`);
      // Let keepalived settle for a few adverts after the reload before judging the VIP.
      await new Promise((res) => setTimeout(res, 5000));
    } finally {
      log.stop();
    }
    const after = { h1: await unitState(h1, 'keepalived'), h2: await unitState(h2, 'keepalived') };
    expect(after).toEqual(before);
    // dhcpd has no reload: the report said restart, and that is what happened (a new PID), with the adopted config.
    const dhcpdAfter = { h1: await dhcpdPid(h1), h2: await dhcpdPid(h2) };
    expect(dhcpdAfter.h1).toMatch(/^\d+$/);
    expect(dhcpdAfter.h1).not.toBe(dhcpdBefore.h1);
    expect(dhcpdAfter.h2).not.toBe(dhcpdBefore.h2);
    expect(await h1.run(['systemctl', 'is-active', 'isc-dhcp-server'])).toContain('active');
    expect(await h1.run(['cat', '/etc/dhcp/ddi-ha/dhcp-failover.conf'])).toContain(`secret "${OMAPI_SECRET}";`);
    // The adopted pair is back in failover: both sides normal, read through the OMAPI key the import kept.
    let states: Record<string, unknown> = {};
    await until('both dhcpd sides normal', async () => {
      const st = await ddiHa(['status', '-f', join(dir, 'first', 'manifests.yaml'), '-f', join(dir, 'secret.yaml'), '-o', 'json']);
      const peer = (JSON.parse(st.stdout || '[]') as { kind: string; status: Record<string, unknown> }[]).find((x) => x.kind === 'DhcpFailoverPeer');
      states = peer?.status ?? {};
      return states.primaryState === 'normal' && states.secondaryState === 'normal';
    }, 90_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(states)}`);
    });
    expect(await holdsVip(h1)).toBe(true);
    expect(await holdsVip(h2)).toBe(false);
    const address = vip.split('/')[0]!;
    expect(log.first(h1.name, address, false, started), 'h1 dropped the VIP').toBeUndefined();
    expect(log.first(h2.name, address, true, started), 'h2 took the VIP').toBeUndefined();
    // keepalived runs the operator's files now, under the instance's own name.
    expect(await h1.run(['cat', '/etc/keepalived/keepalived.conf'])).toContain('include /etc/keepalived/ddi-ha.d/*.conf');
    expect(existsSync(join(dir, 'known_hosts.json'))).toBe(false); // Pinned keys only: nothing trusted on first use
    expect((await h1.journal('keepalived', 200))).toMatch(/Reloading/);
  });

  it('finds nothing left to change when imported again', async () => {
    const out = join(dir, 'second');
    const r = await ddiHa(importArgs(out));
    expect(r.code, r.stderr).toBe(0);
    const report = readFileSync(join(out, 'report.txt'), 'utf8');
    for (const host of [h1, h2]) {
      expect(report).toContain(`${host.name}: keepalived.service: no reload, no restart`);
      expect(report).toContain(`${host.name}: isc-dhcp-server.service: no reload, no restart`);
    }
    expect(report).not.toContain('EDIT FIRST');
    expect(report).not.toMatch(/: (changed|created)$/m);
    const again = parseAllDocuments(readFileSync(join(out, 'manifests.yaml'), 'utf8')).map((d) => d.toJS());
    const first = parseAllDocuments(readFileSync(join(dir, 'first', 'manifests.yaml'), 'utf8')).map((d) => d.toJS());
    // The operator's own layout reads back as the same resources.
    expect(again).toEqual(first);
  });

  it('reads a running Kea HA pair: a KeaHACluster that validates and is admitted, the backup without a host named, restarts reported', async () => {
    for (const [host, self] of [[h1, 'server1'], [h2, 'server2']] as const) {
      await host.stopService('isc-dhcp-server'); // UDP 67 is Kea's now
      await host.container.copyContentToContainer([
        { content: keaConf(self), target: '/etc/kea/kea-dhcp4.conf', mode: 0o644 },
        { content: keaAgentConf(host), target: '/etc/kea/kea-ctrl-agent.conf', mode: 0o644 },
      ]);
      await host.startService('kea-dhcp4-server');
      await host.startService('kea-ctrl-agent');
    }
    for (const host of [h1, h2]) await until(`Kea running on ${host.name}`, async () => (await host.exec(['systemctl', 'is-active', 'kea-dhcp4-server', 'kea-ctrl-agent'])).stdout.trim() === 'active\nactive');
    const out = join(dir, 'kea');
    const r = await ddiHa(importArgs(out));
    expect(r.code, r.stderr).toBe(0);
    const docs = parseAllDocuments(readFileSync(join(out, 'manifests.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> });
    const cluster = docs.find((d) => d.kind === 'KeaHACluster')!;
    expect(cluster.metadata.name).toBe('kea-server1');
    expect(cluster.spec).toEqual({
      mode: 'hot-standby',
      peers: [
        { name: 'server1', host: h1.name, role: 'primary', interface: 'eth0' },
        { name: 'server2', host: h2.name, role: 'standby', interface: 'eth0' },
      ],
      configSync: 'PrimaryIsSourceOfTruth',
      heartbeatDelay: '2s',
      maxResponseDelay: '10s',
      maxAckDelay: '5s',
      maxUnackedClients: 0,
    });
    const report = readFileSync(join(out, 'report.txt'), 'utf8');
    expect(report).toContain(`${h1.name}:/etc/kea/kea-dhcp4.conf (Dhcp4.hooks-libraries[libdhcp_ha.so].parameters.high-availability[0]): peer server3 (http://${lab.network.spare(9)}:8000/): no --host names itself this peer`);
    for (const host of [h1, h2]) expect(report).toMatch(new RegExp(`${host.name}: kea-dhcp4-server\\.service: restart: `));
    console.log(`Kea import report:\n${report.split('\n').filter((l) => l.startsWith('#')).join('\n')}`);
    const v = await ddiHa(['validate', '-f', join(out, 'manifests.yaml')]);
    expect(v.code, v.stderr).toBe(0);
    const dry = await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=ddi-ha-import-test', '-f', join(out, 'manifests.yaml')]);
    expect(dry).toMatch(/keahacluster\.ddi-ha\.io\/kea-server1 serverside-applied \(server dry run\)/);
  });
});
