// Vitest global setup for integration tests: one real control plane for the whole run.
//
// Tests get it through `inject('ddiHaControlPlane')` or the environment
// (KUBECONFIG_DDI_HA_TEST, DDI_HA_KUBECTL, DDI_HA_K8S_VERSION). If KUBECONFIG_DDI_HA_TEST is
// already set, e.g. to a control plane started by hand with
// `npx tsx test/harness/control-plane.ts`, that one is used and nothing is started.
//
// When a test fails, test/harness/log-on-failure.ts prints the tail of the control plane's logs
// and leaves a marker here; teardown then keeps the work dir (logs, certs, etcd data) and says where.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { findTestBinaries, startControlPlane } from './control-plane.js';

export interface ProvidedControlPlane {
  kubeconfigPath: string;
  /** Path of a kubectl of the same release as the apiserver. */
  kubectl: string;
  /** The apiserver's release, e.g. "v1.36.3". */
  version: string;
  /** Where etcd.log and kube-apiserver.log are written; absent for a control plane started by hand. */
  logDir?: string;
}

/** File in the control plane's work dir whose presence means a test failed during this run. */
export const FAILED_TESTS_MARKER = 'failed-tests.txt';

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
    provided = { kubeconfigPath: cp.kubeconfigPath, kubectl: cp.binaries.kubectl, version: cp.binaries.version, logDir: cp.logDir };
    stop = async () => {
      const failed = existsSync(join(cp.workDir, FAILED_TESTS_MARKER));
      await cp.stop({ keepWorkDir: failed });
      if (failed) process.stderr.write(`\ncontrol plane kept after failed tests: ${cp.workDir} (logs in ${cp.logDir})\n`);
    };
  }
  project.provide('ddiHaControlPlane', provided);
  // Workers are started after global setup and inherit these.
  process.env.KUBECONFIG_DDI_HA_TEST = provided.kubeconfigPath;
  process.env.DDI_HA_KUBECTL = provided.kubectl;
  process.env.DDI_HA_K8S_VERSION = provided.version;
  return stop;
}
