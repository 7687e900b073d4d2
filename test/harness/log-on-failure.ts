// Setup file of the integration project: a failed test prints the tail of the control plane's
// logs (an admission or API error is often explained only there) and marks the run as failed,
// so the global teardown keeps the logs instead of deleting them.
import { appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeEach, inject } from 'vitest';
import { tailFile } from './control-plane.js';
import { FAILED_TESTS_MARKER } from './global-setup.js';

const TAIL_LINES = 30;

beforeEach((ctx) => {
  ctx.onTestFailed(() => {
    const { logDir } = inject('ddiHaControlPlane');
    if (!logDir) return; // started by hand: its owner has the logs
    appendFileSync(join(dirname(logDir), FAILED_TESTS_MARKER), `${ctx.task.file.name}: ${ctx.task.name}\n`);
    for (const name of ['kube-apiserver.log', 'etcd.log']) {
      const path = join(logDir, name);
      console.error(`--- last ${TAIL_LINES} lines of ${path} ---\n${tailFile(path, TAIL_LINES)}`);
    }
  });
});
