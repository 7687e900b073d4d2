// `ddi-ha controller`: the in-cluster controller, with its metrics and probe endpoints. Runs until
// SIGTERM or SIGINT, then lets the passes in flight finish. With --leader-elect, one of several
// replicas: every replica watches (warm caches), only the Lease holder writes. See ADR 0023.
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { Controller, ControllerMetrics, startHealthServer } from "../controller/index.js";
import { type ElectionTimings, KubeLeaseStore, LeaderElector, defaultIdentity, defaultLeaseNamespace, timingsProblem } from "../controller/leader-election.js";
import type { RateLimit } from "../exec/rate-limit.js";
import { LOG_REDACT_PATHS } from "../ssh/index.js";
import { HALT_ENV, faultTestHaltHooks } from "./fault-test-halt.js";

export interface ControllerCommandOptions {
  namespace?: string;
  metricsPort: number;
  resyncMs: number;
  kubeconfig?: string;
  workers: number;
  kubeApiRate?: RateLimit;
  sshConnectRate?: RateLimit;
  leaderElection?: ElectionTimings & { leaseName: string; leaseNamespace?: string };
}

export async function runController(options: ControllerCommandOptions): Promise<number> {
  // Credentials never reach a log line; the redaction is the last line of defence, not the first.
  const log = pino({ level: process.env.LOG_LEVEL ?? "info", redact: [...LOG_REDACT_PATHS] });
  const election = options.leaderElection;
  const problem = election && timingsProblem(election);
  if (problem) {
    process.stderr.write(`ddi-ha controller: ${problem}\n`);
    return 2;
  }
  const kubeConfig = new KubeConfig();
  // Without --kubeconfig: $KUBECONFIG, ~/.kube/config, or the pod's service account.
  if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
  else kubeConfig.loadFromDefault();

  // A test seam only (crash tests); unset in every deployment.
  const haltHooks = faultTestHaltHooks(process.env[HALT_ENV], (step) => log.warn({ step }, `halted for a fault test after ${step}`));
  if (haltHooks) log.warn({ [HALT_ENV]: process.env[HALT_ENV] }, "fault-test seam set: every apply halts at that step");

  const metrics = new ControllerMetrics({ processMetrics: true });
  const identity = defaultIdentity();
  let controller: Controller | undefined;
  const elector = election
    ? new LeaderElector({
        ...election,
        store: new KubeLeaseStore(kubeConfig, election.leaseNamespace ?? defaultLeaseNamespace(), election.leaseName),
        identity,
        log,
        onStartedLeading: () => {
          metrics.leader.set({ identity }, 1);
          void controller?.leadershipChanged();
        },
        onStoppedLeading: () => {
          metrics.leader.set({ identity }, 0);
          void controller?.leadershipChanged();
        },
      })
    : undefined;
  metrics.leader.set({ identity }, elector ? 0 : 1);
  controller = new Controller({
    kubeConfig,
    namespace: options.namespace,
    resyncMs: options.resyncMs,
    workers: options.workers,
    ...(options.kubeApiRate ? { kubeApiRate: options.kubeApiRate } : {}),
    ...(options.sshConnectRate ? { sshConnectRate: options.sshConnectRate } : {}),
    log,
    metrics,
    identity,
    ...(elector ? { isLeader: () => elector.isLeader() } : {}),
    ...(haltHooks ? { applyOptions: { hooks: haltHooks } } : {}),
  });
  // A follower is ready too (a warm standby): /readyz means "every kind listed".
  const server = await startHealthServer({ port: options.metricsPort, registry: metrics.registry, isReady: () => controller.ready });
  log.info({ port: server.port, identity, leaderElection: Boolean(elector) }, "serving /metrics, /healthz and /readyz");
  controller.start();
  elector?.start();

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "stopping: finishing the passes in flight");
  // The passes in flight finish first (they may be mid-apply); then the Lease goes to a follower at once.
  await controller.stop();
  await elector?.stop();
  await server.close();
  return 0;
}
