// ISC dhcpd failover: render, lint, check and observe. See docs/adr/0005-dhcpd-include-file.md.
export {
  DEBIAN_DEFAULT_DHCPD_CONF,
  SUBNETS_HEADER,
  type DhcpdOmapiKey,
  type OmapiAlgorithm,
  failoverOwner,
  failoverPeerName,
  generateOmapiKey,
  includeFilePath,
  includeLine,
  includeMarker,
  renderDhcpFailover,
  renderFailoverSubnets,
} from "./render.js";
export { ensureIncludeLine, hasIncludeLine, removeIncludeLine } from "./include-line.js";
export { type DhcpdRemoval, dhcpdFailoverRemovals, dhcpdServesNothing } from "./removal.js";
export { type DhcpdSource, compareFailoverSides, lintDhcpdConfig, lintDhcpdSources } from "./lint.js";
export { DHCPD_BINARY, checkDhcpdFiles, dhcpdProblems, stagedPath } from "./check.js";
export {
  FAILOVER_STATE_CODES,
  type LeasesFailoverState,
  type OmshellFailoverState,
  type PoolBalance,
  failoverStateName,
  omshellFailoverScript,
  parseFailoverStateFromLeases,
  parseFailoverTransitionLog,
  parseOmshellFailoverState,
  parsePoolBalanceLog,
} from "./observe.js";
export {
  OMAPI_OP,
  OMAPI_SETTABLE_STATES,
  OmapiFailoverConversation,
  type OmapiConversationResult,
  type OmapiFailoverState,
  type OmapiSettableState,
  type OmapiMessage,
  type OmapiStep,
  decodeOmapiMessage,
  encodeOmapiMessage,
  omapiStatusText,
} from "./omapi.js";
export { type FailoverMaintenancePlan, type FailoverMaintenanceSide, type FailoverSide, planFailoverMaintenance } from "./maintenance.js";
