// Vitest global setup for integration tests: one real control plane for the whole run.
//
// Tests get it through `inject('ddiHaControlPlane')` or the environment
// (KUBECONFIG_DDI_HA_TEST, DDI_HA_KUBECTL, DDI_HA_K8S_VERSION). If KUBECONFIG_DDI_HA_TEST is
// already set, e.g. to a control plane started by hand with
// `npx tsx test/harness/control-plane.ts`, that one is used and nothing is started.

import type { TestProject } from 'vitest/node';
import { findTestBinaries, startControlPlane } from './control-plane.js';

export interface ProvidedControlPlane {
  kubeconfigPath: string;
  /** Path of a kubectl of the same release as the apiserver. */
  kubectl: string;
  /** The apiserver's release, e.g. "v1.36.3". */
  version: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    ddiHaControlPlane: ProvidedControlPlane;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const existing = process.env.KUBECONFIG_DDI_HA_TEST;
  let provided: ProvidedControlPlane;
  let stop = async (): Promise<void> => {};
  if (existing) {
    const binaries = await findTestBinaries();
    provided = { kubeconfigPath: existing, kubectl: binaries.kubectl, version: binaries.version };
  } else {
    const cp = await startControlPlane();
    provided = { kubeconfigPath: cp.kubeconfigPath, kubectl: cp.binaries.kubectl, version: cp.binaries.version };
    stop = cp.stop;
  }
  project.provide('ddiHaControlPlane', provided);
  // Workers are started after global setup and inherit these.
  process.env.KUBECONFIG_DDI_HA_TEST = provided.kubeconfigPath;
  process.env.DDI_HA_KUBECTL = provided.kubectl;
  process.env.DDI_HA_K8S_VERSION = provided.version;
  return stop;
}
