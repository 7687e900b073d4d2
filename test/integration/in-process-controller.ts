// Shared by the lab tests that run the per-object controller in this process (hostile-values,
// dhcpd-mclt): the lab's Namespace, SSH Secret and pinned DDIHosts, the controller itself with
// its log kept in memory, and a watch that records every status the controller writes.
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { API_GROUP, API_GROUP_VERSION, API_VERSION } from '../../src/api/index.js';
import type { Lab } from '../lab/lab.js';

type Manifest = Record<string, unknown>;

/** Namespace, Secret `lab-ssh` and DDIHosts h1…hN (Pinned), as objects. */
export function labHostObjects(lab: Lab, namespace: string): Manifest[] {
  const meta = (name: string) => ({ name, namespace });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta('lab-ssh'), type: 'Opaque', stringData: { privateKey: lab.privateKey } },
    ...lab.hosts.map((h, i) => ({
      apiVersion: API_GROUP_VERSION,
      kind: 'DDIHost',
      metadata: meta(`h${i + 1}`),
      spec: { address: h.sshHost, port: h.sshPort, credentialsSecretRef: { name: 'lab-ssh' }, hostKey: h.hostKeyLine, hostKeyPolicy: 'Pinned' },
    })),
  ];
}

/** YAML for `kubectl apply -f -`. */
export function manifestYaml(objects: readonly Manifest[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

// The controller itself: one helper for every in-process lab test.
export { type InProcessController, startInProcessController } from './controller-lab.js';

export interface StatusRecord<S> {
  /** Date.now() when the watch event arrived. */
  at: number;
  status: S | undefined;
}

/**
 * Every version of one object's status, as the API server announces it (a watch, so no write
 * between two polls is missed). `plural` is the resource, e.g. "dhcpfailoverpeers".
 */
export async function recordStatuses<S>(kubeConfig: KubeConfig, namespace: string, plural: string, name: string): Promise<{ records: StatusRecord<S>[]; stop(): void }> {
  const records: StatusRecord<S>[] = [];
  let stopped = false;
  let request: { abort(): void } | undefined;
  const path = `/apis/${API_GROUP}/${API_VERSION}/namespaces/${namespace}/${plural}`;
  const start = async () => {
    if (stopped) return;
    request = await new Watch(kubeConfig).watch(
      path,
      { fieldSelector: `metadata.name=${name}` },
      (type: string, obj: { status?: S }) => {
        if (type === 'ADDED' || type === 'MODIFIED') records.push({ at: Date.now(), status: obj.status });
      },
      () => {
        // The API server ends watches now and then: start again (a re-list repeats the last status, which the reader dedups).
        if (!stopped) setTimeout(() => void start().catch(() => undefined), 100);
      },
    );
  };
  await start();
  return {
    records,
    stop: () => {
      stopped = true;
      request?.abort();
    },
  };
}
