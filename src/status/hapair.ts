// HAPair status from what was observed on both nodes: who holds the VIP, keepalived's state, and
// whether every service the VIP stands for runs on both hosts. Pure.
import type { HAPairSpec, HAPairStatus } from "../api/index.js";
import type { ServiceName } from "../observe/host-facts.js";
import { type ActiveNode, type HAPairNodeObservation, type PairRole, summarizePair } from "../observe/keepalived.js";
import { type ApplyOutcome, judgeApply } from "./apply-outcome.js";
import { type ConditionInput, findCondition, rfc3339, setConditions } from "./conditions.js";
import { endedMaintenanceCondition } from "./maintenance.js";

/** A required service as seen on one node (from the DDIHost facts or a fresh `systemctl show`). */
export interface ServiceState {
  name: ServiceName;
  unit?: string;
  installed: boolean;
  active: boolean;
}

export interface HAPairNodeInput extends HAPairNodeObservation {
  /** The states of the services in HAPairObservation.requiredServices on this node; a missing one is unknown. */
  services: readonly ServiceState[];
}

export interface HAPairObservation {
  /** The VIP, for messages. */
  vip: string;
  /** Both nodes, primary first. */
  nodes: readonly HAPairNodeInput[];
  /** From requiredHAPairServices(spec). */
  requiredServices: readonly ServiceName[];
  preempt: boolean;
  /** spec.preferredNode: where the VIP belongs when both nodes are healthy (default primary). */
  preferredNode?: PairRole;
  /** The nodes whose DDIHost has spec.maintenance set. */
  maintenance?: readonly PairRole[];
  /**
   * The node that last held the VIP alone, as the engine remembers it across a none/both gap
   * (the status only keeps the current activeNode). Without it, a move through a gap is counted
   * only when the previous status named a single holder.
   */
  lastHolder?: PairRole;
}

/** What each service is for, in messages: "HA for DNS needs it on both hosts". */
const SERVICE_PURPOSE: Readonly<Record<ServiceName, string>> = {
  keepalived: "the VIP",
  named: "DNS",
  "isc-dhcp-server": "DHCPv4",
  "isc-dhcp-server6": "DHCPv6",
  "kea-dhcp4": "DHCPv4",
  "kea-dhcp6": "DHCPv6",
  "kea-ctrl-agent": "Kea's control channel",
};

/** The spec field that enables each service, for the "or turn it off" half of a fix. */
function specFieldFor(service: ServiceName): string {
  if (service === "named") return "spec.services.dns: false";
  if (service === "isc-dhcp-server" || service === "kea-dhcp4") return "spec.services.dhcp to None or DHCPv6";
  return "spec.services.dhcp to None or DHCPv4";
}

/** Debian package that provides each service, for the install fix. */
const SERVICE_PACKAGE: Readonly<Record<ServiceName, string>> = {
  keepalived: "keepalived",
  named: "bind9",
  "isc-dhcp-server": "isc-dhcp-server",
  "isc-dhcp-server6": "isc-dhcp-server",
  "kea-dhcp4": "kea-dhcp4-server",
  "kea-dhcp6": "kea-dhcp6-server",
  "kea-ctrl-agent": "kea-ctrl-agent",
};

/** The services (besides keepalived) that must run on both hosts for this spec. */
export function requiredHAPairServices(spec: Pick<HAPairSpec, "services">): ServiceName[] {
  const s = spec.services;
  const out: ServiceName[] = [];
  if (s.dns) out.push("named");
  if (s.dhcp === "DHCPv4" || s.dhcp === "Both") out.push(s.dhcpv4Server);
  if (s.dhcp === "DHCPv6" || s.dhcp === "Both") out.push(s.dhcpv6Server);
  return out;
}

interface NodeProblem {
  reason: string;
  message: string;
}

function serviceProblems(node: HAPairNodeInput, required: readonly ServiceName[]): NodeProblem[] {
  const problems: NodeProblem[] = [];
  for (const name of required) {
    const s = node.services.find((x) => x.name === name);
    const purpose = SERVICE_PURPOSE[name];
    if (!s) {
      problems.push({ reason: "ServiceStateUnknown", message: `the state of ${name} on ${node.host} is unknown: HA for ${purpose} needs it on both hosts` });
    } else if (!s.installed) {
      problems.push({
        reason: "ServiceNotInstalled",
        message: `${name} is not installed on ${node.host}: HA for ${purpose} needs it on both hosts; install ${SERVICE_PACKAGE[name]} there or set ${specFieldFor(name)}`,
      });
    } else if (!s.active) {
      problems.push({
        reason: "ServiceNotRunning",
        message: `${name} is not running on ${node.host}: HA for ${purpose} needs it on both hosts; start it (systemctl start ${s.unit ?? name}) or set ${specFieldFor(name)}`,
      });
    }
  }
  return problems;
}

function nodeLabel(node: HAPairNodeInput): string {
  return `the ${node.role} ${node.host}`;
}

/**
 * The pair's Maintenance condition. True while a node's host is in maintenance: handing over (the
 * node still holds the VIP) or handed over. Once it ends: Returning until Ready, then Returned with
 * how long that took from the end of the maintenance (the condition's lastTransitionTime, to the
 * second). Absent on a pair that never had a node in maintenance.
 */
function pairMaintenanceCondition(
  observation: HAPairObservation,
  ready: ConditionInput,
  previous: { status: string; reason: string; lastTransitionTime?: string } | undefined,
  now: Date,
): ConditionInput | undefined {
  const resting = observation.nodes.filter((n) => observation.maintenance?.includes(n.role));
  if (resting.length > 0) {
    const handingOver = resting.some((n) => n.reachable && n.holdsVIP);
    return {
      type: "Maintenance",
      status: "True",
      reason: handingOver ? "HandingOver" : "HandedOver",
      message: handingOver
        ? `${resting.map((n) => n.host).join(", ")} in maintenance: keepalived gives ${observation.vip} away`
        : `${resting.map((n) => n.host).join(", ")} in maintenance: ${observation.vip} handed over`,
    };
  }
  const back = ready.status === "True";
  return endedMaintenanceCondition(previous, back, back ? ready.reason : `waiting for the pair to be Ready again (${ready.reason})`, now);
}

/** Counts VIP moves: a new single holder that differs from the last known single holder. */
function countFailover(
  activeNode: ActiveNode,
  previous: HAPairStatus | undefined,
  lastHolder: PairRole | undefined,
  now: Date,
): { failoverCount: number; lastFailoverTime?: string } {
  const count = previous?.failoverCount ?? 0;
  const kept = { failoverCount: count, ...(previous?.lastFailoverTime ? { lastFailoverTime: previous.lastFailoverTime } : {}) };
  if (activeNode !== "primary" && activeNode !== "secondary") return kept;
  const prev = previous?.activeNode;
  const before = prev === "primary" || prev === "secondary" ? prev : lastHolder;
  if (before === undefined || before === activeNode) return kept;
  return { failoverCount: count + 1, lastFailoverTime: rfc3339(now) };
}

/**
 * The HAPair status for one pass. `applyOutcome` undefined means this pass only observed (the
 * previous ConfigApplied stands). Ready is True only when the config is applied, nothing is
 * split, keepalived and every enabled service run on both nodes, and the VIP is where it
 * belongs (on the primary, or anywhere single without preempt).
 */
export function computeHAPairStatus(
  observation: HAPairObservation,
  applyOutcome: ApplyOutcome | undefined,
  previousStatus: HAPairStatus | undefined,
  generation: number,
  now: Date,
): HAPairStatus {
  const apply = judgeApply(applyOutcome, "HAPair", previousStatus, generation);
  const nodes = observation.nodes;
  const activeNode = summarizePair(nodes);
  const holder = nodes.find((n) => n.role === activeNode);
  const conditions: ConditionInput[] = [];

  if (apply.configApplied) conditions.push(apply.configApplied);
  if (apply.configInSync) conditions.push(apply.configInSync);
  const configApplied = apply.configApplied ?? findCondition(previousStatus?.conditions, "ConfigApplied");

  // VIPAssigned and SplitBrain.
  if (activeNode === "both") {
    const message = `both ${nodes.map((n) => n.host).join(" and ")} hold ${observation.vip}: they do not hear each other's VRRP adverts; check that VRRP (IP protocol 112) passes between them on the interface and that no other pair on the segment uses the same virtualRouterID`;
    conditions.push({ type: "VIPAssigned", status: "False", reason: "SplitBrain", message });
    conditions.push({ type: "SplitBrain", status: "True", reason: "BothNodesHoldVIP", message });
  } else {
    conditions.push({ type: "SplitBrain", status: "False", reason: "SingleHolder", message: "" });
    if (holder) {
      conditions.push({
        type: "VIPAssigned",
        status: "True",
        reason: activeNode === "primary" ? "HeldByPrimary" : "HeldBySecondary",
        message: `${observation.vip} is on ${nodeLabel(holder)}`,
      });
    } else {
      const states = nodes.map((n) => `${n.host}: ${n.reachable ? n.vrrpState : "unreachable"}`).join(", ");
      conditions.push({
        type: "VIPAssigned",
        status: "False",
        reason: "NotHeld",
        message: `${observation.vip} is on neither host (${states}): no keepalived is MASTER; check journalctl -u keepalived on both hosts`,
      });
    }
  }

  // Ready: the first problem wins, in the order a person would fix them.
  const problems: NodeProblem[] = [];
  const preferred = observation.preferredNode ?? "primary";
  const inMaintenance = new Set(observation.maintenance ?? []);
  // A node in maintenance may be stopped, rebooted or in FAULT on purpose: none of that is a problem.
  const serving = nodes.filter((n) => !inMaintenance.has(n.role));
  if (apply.blocking) problems.push(apply.blocking);
  for (const n of serving.filter((x) => !x.reachable)) {
    // The operator's view and VRRP's are different paths: a node cut off from both the operator
    // and its peer takes the VIP too, and only the other holder is seen.
    const seenHolder = nodes.find((x) => x !== n && x.reachable && x.holdsVIP);
    const consequence = seenHolder
      ? `possible split brain: ${nodeLabel(seenHolder)} holds ${observation.vip}, and if ${n.host} is up but cut off from ${seenHolder.host} too, it holds it as well; check ${n.host} from its console (ip addr show ${n.interface}) and that VRRP passes between them`
      : "the VIP may move there unseen";
    problems.push({ reason: "HostUnreachable", message: `cannot observe ${nodeLabel(n)}: ${n.error ?? "unreachable"}; ${consequence}` });
  }
  if (activeNode === "both") problems.push({ reason: "SplitBrain", message: conditions.find((c) => c.type === "SplitBrain")!.message });
  if (!apply.blocking && configApplied && configApplied.status !== "True") problems.push({ reason: configApplied.reason, message: configApplied.message });
  if (!configApplied) problems.push({ reason: "ApplyPending", message: "the keepalived config has not been applied to the hosts yet" });
  for (const n of nodes.filter((x) => x.reachable && inMaintenance.has(x.role) && x.holdsVIP && activeNode !== "both")) {
    problems.push({ reason: "HandingOver", message: `${n.host} is in maintenance but still holds ${observation.vip}: waiting for keepalived to give it away (a priority-0 advert)` });
  }
  for (const n of serving.filter((x) => x.reachable)) {
    if (!n.interfaceFound) {
      problems.push({ reason: "InterfaceNotFound", message: `interface ${n.interface} does not exist on ${n.host}: set spec.${n.role}.interface to the NIC that carries the VIP's subnet` });
    } else if (n.vipInSubnet === false) {
      const own = n.interfaceAddresses?.length ? n.interfaceAddresses.join(", ") : "no address of the VIP's family";
      problems.push({
        reason: "VIPNotInSubnet",
        message: `${observation.vip} is not in the subnet of ${n.interface} on ${n.host} (${own}): its clients would never hear the VIP's ARP; choose spec.virtualIP in the hosts' subnet, or set spec.${n.role}.interface to the NIC that carries it`,
      });
    }
    if (!n.keepalivedActive) {
      problems.push({ reason: "KeepalivedNotRunning", message: `keepalived is not running on ${n.host}: the VIP cannot move there; see journalctl -u keepalived on ${n.host}` });
    } else if (n.vrrpState === "FAULT") {
      problems.push({ reason: "VRRPFault", message: `keepalived on ${n.host} is in FAULT: its interface is down or a tracked service failed, so it will not take the VIP` });
    }
    problems.push(...serviceProblems(n, observation.requiredServices));
  }
  if (activeNode === "none") problems.push({ reason: "VIPNotHeld", message: conditions.find((c) => c.type === "VIPAssigned")!.message });
  if ((activeNode === "primary" || activeNode === "secondary") && activeNode !== preferred && observation.preempt && !inMaintenance.has(preferred)) {
    const want = nodes.find((n) => n.role === preferred);
    problems.push({
      reason: "FailedOver",
      message: `${observation.vip} is on the ${activeNode} ${holder!.host}: the ${preferred} ${want?.host ?? ""}${preferred === "secondary" ? " (spec.preferredNode)" : ""} is ${want?.reachable ? `in ${want.vrrpState}` : "unreachable"}; with preempt the VIP returns once it is healthy`,
    });
  }
  if (problems.length === 0 && inMaintenance.size > 0) {
    const resting = nodes.filter((n) => inMaintenance.has(n.role)).map((n) => `the ${n.role} ${n.host}`);
    problems.push({
      reason: "Maintenance",
      message: `${resting.join(" and ")} is in maintenance (DDIHost spec.maintenance): ${observation.vip} is on ${nodeLabel(holder!)}, with no standby until the maintenance ends`,
    });
  }

  const ready: ConditionInput = problems[0]
    ? { type: "Ready", status: "False", reason: problems[0].reason, message: problems.map((p) => p.message).join("; ") }
    : {
        type: "Ready",
        status: "True",
        reason: activeNode === "primary" ? "VIPOnPrimary" : "VIPOnSecondary",
        message: `${observation.vip} is on ${nodeLabel(holder!)}; keepalived${observation.requiredServices.length ? ` and ${observation.requiredServices.join(", ")}` : ""} run on both hosts`,
      };
  conditions.unshift(ready);
  const maintenance = pairMaintenanceCondition(observation, ready, findCondition(previousStatus?.conditions, "Maintenance"), now);
  if (maintenance) conditions.push(maintenance);

  conditions.push(apply.stalled ?? { type: "Stalled", status: "False", reason: "", message: "" });
  const reconciling =
    apply.reconciling ??
    (apply.changed && ready.status !== "True"
      ? { type: "Reconciling", status: "True", reason: "Progressing", message: "the config changed in this pass; waiting for keepalived to settle" }
      : { type: "Reconciling", status: "False", reason: "", message: "" });
  conditions.push(reconciling as ConditionInput);

  return {
    observedGeneration: generation,
    conditions: setConditions(previousStatus?.conditions, conditions, generation, now),
    activeNode,
    nodes: nodes.map((n) => ({
      host: n.host,
      role: n.role,
      vrrpState: n.vrrpState,
      holdsVIP: n.reachable && n.holdsVIP,
      servicesHealthy: n.reachable && n.keepalivedActive && serviceProblems(n, observation.requiredServices).length === 0,
    })),
    ...countFailover(activeNode, previousStatus, observation.lastHolder, now),
  };
}
