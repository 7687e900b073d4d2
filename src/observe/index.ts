// Live observation of hosts and relationships: thin I/O over HostSession, parsing in pure
// functions (here and in the daemon modules). See docs/adr/0009-observation-and-status.md.
export {
  type ClockSample,
  type HostFacts,
  type InterfaceFact,
  type ObserveHostFactsOptions,
  SERVICE_UNIT_CANDIDATES,
  type ServiceFact,
  type ServiceName,
  type UnitShow,
  estimateClockOffset,
  hostFactsScript,
  observeHostFacts,
  observeServiceStates,
  parseDaemonVersion,
  parseDateSecondsNanos,
  parseHostFactsOutput,
  parseIpAddrJson,
  parseNtpSynchronized,
  parseOsReleasePrettyName,
  parseSystemctlShowBlocks,
  sampleClock,
  servicesFromUnits,
  servicesFromUnitsFor,
  splitFactSections,
} from "./host-facts.js";
export { type HostFailure, type HostFailureKind, classifyHostFailure } from "./host-failure.js";
export {
  type AddressChange,
  type AddressEvent,
  type AddressWatch,
  type HostEvent,
  type WatchAddressesOptions,
  HOST_EVENTS_SCRIPT,
  parseAddressMonitorLine,
  parseHostEventLine,
  sameAddress,
  watchAddresses,
  watchHostEvents,
} from "./address-monitor.js";
export {
  type ActiveNode,
  type HAPairNodeObservation,
  type HAPairNodeTarget,
  type PairRole,
  type VipObservation,
  type VrrpState,
  interfaceHoldsAddress,
  observeHAPairNode,
  observeVip,
  parseVrrpStateRecord,
  summarizePair,
} from "./keepalived.js";
export {
  DHCPD_LEASES_FILES,
  type DhcpFailoverSideObservation,
  type DhcpFailoverSideTarget,
  type PoolBalanceFact,
  latestPoolBalances,
  observeDhcpFailoverSide,
  setDhcpFailoverLocalState,
} from "./dhcpd-failover.js";
export {
  KEA_STATUS_GET_COMMAND,
  type KeaCommandOutcome,
  type KeaPeerObservation,
  type KeaPeerTarget,
  keaClusterHealth,
  observeKeaPeer,
  peerFromStatusGet,
  postKeaCommand,
  sendKeaMaintenanceCommand,
} from "./kea-ha.js";
export {
  type HostProbe,
  type HostProbeRequest,
  type ProbedFile,
  clockFromProbe,
  contentSha256,
  hostProbeArgv,
  hostProbeScript,
  parseHostProbeOutput,
  probeHost,
  probedUnitActive,
} from "./host-probe.js";
export { haPairNodeFromProbe, interfaceIpJson } from "./keepalived.js";
export { dhcpdPoolJournal } from "./dhcpd-failover.js";
