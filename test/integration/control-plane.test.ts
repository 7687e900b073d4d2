// Smoke test of the integration control plane: it is a real kube-apiserver of the pinned
// release, reachable with the kubeconfig that global setup hands out.

import { CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';

function kubeConfig(): KubeConfig {
  const path = inject('ddiHaControlPlane')?.kubeconfigPath ?? process.env.KUBECONFIG_DDI_HA_TEST;
  if (!path) throw new Error('no control plane: run with the integration project (globalSetup test/harness/global-setup.ts)');
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

describe('test control plane', () => {
  let kc: KubeConfig;
  beforeAll(() => {
    kc = kubeConfig();
  });

  it('serves /version of the pinned release', async () => {
    const expected = inject('ddiHaControlPlane')?.version ?? process.env.DDI_HA_K8S_VERSION;
    const info = await kc.makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).toBe(expected);
    expect(`v${info.major}.${info.minor.replace(/\+$/, '')}`).toBe(expected?.replace(/\.\d+$/, ''));
  });

  it('lists the namespaces the apiserver creates itself', async () => {
    const list = await kc.makeApiClient(CoreV1Api).listNamespace();
    const names = list.items.map((ns) => ns.metadata?.name);
    expect(names).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });

  it('listens on loopback only', () => {
    expect(new URL(kc.getCurrentCluster()?.server ?? '').hostname).toBe('127.0.0.1');
  });
});
