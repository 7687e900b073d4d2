// The in-cluster controller: watchers, the work queue, one reconcile per namespace, metrics.
export { CONTROLLER_NAME, Controller, type ControllerOptions, DEFAULT_RESYNC_MS, DEFAULT_WORKERS, isWorthAPass } from "./controller.js";
export { CLEANUP_FINALIZER, IN_USE_FINALIZER } from "./finalizer.js";
export { type HealthServer, startHealthServer } from "./health-server.js";
export { CONTROLLER_FIELD_MANAGER, KubeClient } from "./kube-client.js";
export { ControllerMetrics } from "./metrics.js";
export { type WorkResult, WorkQueue } from "./work-queue.js";
