// `ddi-ha controller`: the in-cluster controller, with its metrics and probe endpoints. Runs until
// SIGTERM or SIGINT, then lets the passes in flight finish.
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { Controller, ControllerMetrics, startHealthServer } from "../controller/index.js";
import { LOG_REDACT_PATHS } from "../ssh/index.js";
import { HALT_ENV, faultTestHaltHooks } from "./fault-test-halt.js";

export interface ControllerCommandOptions {
  namespace?: string;
  metricsPort: number;
  resyncMs: number;
  kubeconfig?: string;
  workers: number;
}

export async function runController(options: ControllerCommandOptions): Promise<number> {
  // Credentials never reach a log line; the redaction is the last line of defence, not the first.
  const log = pino({ level: process.env.LOG_LEVEL ?? "info", redact: [...LOG_REDACT_PATHS] });
  const kubeConfig = new KubeConfig();
  // Without --kubeconfig: $KUBECONFIG, ~/.kube/config, or the pod's service account.
  if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
  else kubeConfig.loadFromDefault();

  // A test seam only (crash tests); unset in every deployment.
  const haltHooks = faultTestHaltHooks(process.env[HALT_ENV], (step) => log.warn({ step }, `halted for a fault test after ${step}`));
  if (haltHooks) log.warn({ [HALT_ENV]: process.env[HALT_ENV] }, "fault-test seam set: every apply halts at that step");

  const metrics = new ControllerMetrics({ processMetrics: true });
  const controller = new Controller({
    kubeConfig,
    namespace: options.namespace,
    resyncMs: options.resyncMs,
    workers: options.workers,
    log,
    metrics,
    ...(haltHooks ? { applyOptions: { hooks: haltHooks } } : {}),
  });
  const server = await startHealthServer({ port: options.metricsPort, registry: metrics.registry, isReady: () => controller.ready });
  log.info({ port: server.port }, "serving /metrics, /healthz and /readyz");
  controller.start();

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "stopping: finishing the passes in flight");
  await controller.stop();
  await server.close();
  return 0;
}
