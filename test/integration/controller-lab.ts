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
