// Shared by the controller tests on a two-host lab: the manifests of one HAPair on h1 (primary)
// and h2 with their namespace, the lab's SSH Secret and pinned DDIHosts, and the condition shape.
import { stringify } from 'yaml';
import { API_GROUP_VERSION } from '../../src/api/index.js';
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
