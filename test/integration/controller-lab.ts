// Shared by the controller tests on a two-host lab: the manifests of one HAPair on h1 (primary)
// and h2 with their namespace, the lab's SSH Secret and pinned DDIHosts, and the condition shape.
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { API_GROUP_VERSION } from '../../src/api/index.js';
import { Controller, ControllerMetrics } from '../../src/controller/index.js';
import type { RateLimit } from '../../src/exec/rate-limit.js';
import { LOG_REDACT_PATHS, SshTransport } from '../../src/ssh/index.js';
import type { Lab } from '../lab/lab.js';

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** Namespace, Secret `lab-ssh` and DDIHosts h1…hN (host keys pinned), as objects. */
export function labHostObjects(lab: Lab, namespace: string): object[] {
  const meta = (name: string) => ({ name, namespace });
  const hosts = lab.hosts.map((h, i) => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'DDIHost',
    metadata: meta(`h${i + 1}`),
    spec: { address: h.sshHost, port: h.sshPort, credentialsSecretRef: { name: 'lab-ssh' }, hostKey: h.hostKeyLine, hostKeyPolicy: 'Pinned' },
  }));
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta('lab-ssh'), type: 'Opaque', stringData: { privateKey: lab.privateKey } },
    ...hosts,
  ];
}

/** Objects as YAML documents for `kubectl apply -f -`. */
export function asYamlDocuments(objects: readonly object[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

/** YAML for `kubectl apply -f -`: Namespace, Secret `lab-ssh`, DDIHosts h1…hN, and the HAPair on h1/h2. */
export function labPairManifests(lab: Lab, pair: { namespace: string; name: string; virtualIP: string; virtualRouterID: number }): string {
  const haPair = {
    apiVersion: API_GROUP_VERSION,
    kind: 'HAPair',
    metadata: { name: pair.name, namespace: pair.namespace },
    spec: {
      primary: { host: 'h1', interface: lab.hosts[0]!.interface },
      secondary: { host: 'h2', interface: lab.hosts[1]!.interface },
      virtualIP: pair.virtualIP,
      virtualRouterID: pair.virtualRouterID,
      services: { dns: false, dhcp: 'None' },
    },
  };
  return asYamlDocuments([...labHostObjects(lab, pair.namespace), haPair]);
}

/**
 * A hot-standby KeaHACluster on two lab hosts (by index: primary, standby), with the short HA
 * timers the Kea lab tests use (heartbeat 1 s) and a pool of 40 leases in the lab subnet.
 */
export function labKeaHotStandby(lab: Lab, namespace: string, name: string, primary: number, standby: number): object {
  const base = lab.network.subnet.split('/')[0]!.split('.').slice(0, 3).join('.');
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'KeaHACluster',
    metadata: { name, namespace },
    spec: {
      mode: 'hot-standby',
      heartbeatDelay: '1s',
      maxResponseDelay: '4s',
      maxAckDelay: '2s',
      maxUnackedClients: 0,
      peers: [
        { name: 'server1', host: `h${primary + 1}`, role: 'primary', interface: lab.hosts[primary]!.interface },
        { name: 'server2', host: `h${standby + 1}`, role: 'standby', interface: lab.hosts[standby]!.interface },
      ],
      dhcp4: { 'valid-lifetime': 3600, subnet4: [{ id: 1, subnet: lab.network.subnet, pools: [{ pool: `${base}.150 - ${base}.189` }] }] },
    },
  };
}

/** Kea's own view on lab host i: status-get with curl to the host's Control Agent, on the host (independent of the operator's clients). */
export async function keaLocalStatus(lab: Lab, i: number): Promise<{ role?: string; state?: string; scopes?: string[]; raw: string }> {
  const h = lab.hosts[i]!;
  const raw = await h.run(['curl', '-s', '-m', '5', '-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{"command":"status-get","service":["dhcp4"]}', `http://${h.address}:8000/`]);
  const answer = JSON.parse(raw) as { arguments?: { 'high-availability'?: { 'ha-servers'?: { local?: { role?: string; state?: string; scopes?: string[] } } }[] } }[];
  return { ...answer[0]?.arguments?.['high-availability']?.[0]?.['ha-servers']?.local, raw };
}

/** The value of one series of a controller gauge, by a subset of its labels. */
export async function gaugeValue(metrics: ControllerMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = (metric as { values?: { labels: Record<string, string>; value: number }[] } | undefined)?.values?.find((v) =>
    Object.entries(labels).every(([k, want]) => v.labels[k] === want),
  );
  return value?.value;
}

/** A controller running in this process against the test's API server, with its log kept in memory and its metrics readable. */
export interface InProcessController {
  controller: Controller;
  transport: SshTransport;
  metrics: ControllerMetrics;
  logLines: string[];
  kubeConfig: KubeConfig;
  /** The value of one series of a gauge, undefined when there is none. */
  gauge(name: string, labels: Record<string, string>): Promise<number | undefined>;
  stop(): Promise<void>;
}

export function startInProcessController(options: {
  kubeconfigPath: string;
  namespace: string;
  resyncMs: number;
  pollMs?: number;
  kubeApiRate?: RateLimit;
  sshConnectRate?: RateLimit;
}): InProcessController {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(options.kubeconfigPath);
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(...String(chunk).trimEnd().split('\n'));
      done();
    },
  });
  const log = pino({ level: 'debug', redact: [...LOG_REDACT_PATHS] }, sink);
  const metrics = new ControllerMetrics();
  const transport = new SshTransport({ logger: log, ...(options.sshConnectRate ? { connectRate: options.sshConnectRate } : {}) });
  const controller = new Controller({
    kubeConfig,
    namespace: options.namespace,
    resyncMs: options.resyncMs,
    ...(options.pollMs ? { pollMs: options.pollMs } : {}),
    log,
    metrics,
    transport,
    ...(options.kubeApiRate ? { kubeApiRate: options.kubeApiRate } : {}),
  });
  controller.start();
  return {
    controller,
    transport,
    metrics,
    logLines,
    kubeConfig,
    gauge: (name, labels) => gaugeValue(metrics, name, labels),
    async stop() {
      await controller.stop();
      await transport.closeAll();
    },
  };
}
