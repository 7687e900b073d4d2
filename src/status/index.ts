// Pure status computation: observations (and this pass's apply outcome) → status objects with
// conditions. No I/O. See docs/adr/0009-observation-and-status.md.
export {
  type ConditionInput,
  type ConditionStatus,
  PRESENT_ONLY_WHILE_TRUE,
  READY,
  RECONCILING,
  STALLED,
  findCondition,
  isTrue,
  removeCondition,
  rfc3339,
  setCondition,
  setConditions,
} from "./conditions.js";
export { type ApplyOutcome, type ApplyVerdict, judgeApply } from "./apply-outcome.js";
export { type HAPairNodeInput, type HAPairObservation, type ServiceState, computeHAPairStatus, requiredHAPairServices } from "./hapair.js";
export { type DhcpFailoverPeerObservation, computeDhcpFailoverPeerStatus } from "./dhcpfailoverpeer.js";
export { type KeaHAClusterObservation, computeKeaHAClusterStatus } from "./keahacluster.js";
export { DEFAULT_MAX_CLOCK_OFFSET_SECONDS, type DDIHostObservation, type DDIHostStatusOptions, computeDDIHostStatus } from "./ddihost.js";
export { summarizeStatus } from "./summary.js";
