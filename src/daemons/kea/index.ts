// Kea DHCPv4 HA (libdhcp_ha.so): render, lint, check with Kea itself, and read its status.
export { KeaConfigSyntaxError, parseKeaConfigText, stableStringify, stripKeaComments } from "./config-text.js";
export {
  type Dhcp4Settings,
  KeaRenderError,
  MINIMAL_DHCP4,
  type RenderKeaOptions,
  agentEndpoint,
  buildHARelationship,
  controlAgentConfig,
  dhcp4ForPeer,
  peerUrl,
  renderKeaCluster,
  withManagedHASection,
} from "./render.js";
export { type LintKeaOptions, lintKeaConfig } from "./lint.js";
export { type KeaPeerRemoval, STANDALONE_AGENT_URL, keaClusterRemovals, withoutHAHook } from "./removal.js";
export { type CheckKeaOptions, checkKeaFiles } from "./check.js";
export { DEFAULT_SCRATCH_SECONDS, type ScratchVerdict, interpretScratchRun, scratchServerArgv, toScratchConfig } from "./scratch.js";
export {
  type HARelationshipStatus,
  type HARemoteStatus,
  type HaHeartbeatResult,
  KEA_ANSWERING_WITHOUT_HA_STATES,
  KEA_SERVING_STATES,
  type KeaCommandFailure,
  type KeaHealth,
  type KeaPeerObservation,
  type StatusGetResult,
  aggregateKeaHealth,
  parseHaHeartbeat,
  parseKeaCommandAnswer,
  parseStatusGet,
} from "./observe.js";
export {
  type KeaMaintenanceCommandName,
  type KeaMaintenancePeer,
  type KeaMaintenancePlan,
  keaMaintenanceCommand,
  keaNormalState,
  planKeaMaintenance,
} from "./maintenance.js";
export * from "./platform.js";
export { type KeaSwitchoverPeer, type KeaSwitchoverPlan, effectivePeers, isSwitchedOver, planKeaSwitchover, wantedPrimary } from "./switchover.js";
