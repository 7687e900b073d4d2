// DhcpFailoverPeer status from both sides' OMAPI answers and pool lines. Pure.
import type { DhcpFailoverPeerStatus } from "../api/index.js";
import type { DhcpFailoverSideObservation } from "../observe/dhcpd-failover.js";
import type { FailoverMaintenancePlan } from "../daemons/dhcpd/index.js";
import { type ApplyOutcome, judgeApply } from "./apply-outcome.js";
import { type ConditionInput, findCondition, setConditions } from "./conditions.js";
import { endedMaintenanceCondition } from "./maintenance.js";

export interface DhcpFailoverPeerObservation {
  peerName: string;
  primary: DhcpFailoverSideObservation;
  secondary: DhcpFailoverSideObservation;
  /** MCLT in seconds, for the partner-down message. */
  mcltSeconds?: number;
  /** DDIHost spec.maintenance on the sides' hosts, and what the pass did about it. */
  maintenance?: FailoverMaintenanceObservation;
}

export interface FailoverMaintenanceObservation {
  /** The sides whose DDIHost has spec.maintenance. */
  sides: readonly ("primary" | "secondary")[];
  /** planFailoverMaintenance over the states observed last (after the OMAPI update, when one was made). */
  plan: FailoverMaintenancePlan;
  /** The local-state this pass set through OMAPI, and dhcpd's answer. */
  set?: { side: "primary" | "secondary"; state: string; ok: boolean; error?: string };
}

function setText(set: FailoverMaintenanceObservation["set"], hosts: Record<"primary" | "secondary", string>): string {
  if (!set) return "";
  return `; set local-state ${set.state} on the ${set.side} ${hosts[set.side]} through OMAPI: ${set.ok ? "accepted" : `refused (${set.error ?? "no answer"})`}`;
}

/** Partner states a maintenance leaves on purpose on the side that serves. */
const SERVING_ALONE_STATES = new Set(["partner-down", "communications-interrupted"]);

/** States a pair passes through on its own on the way to normal. */
const CONVERGING_STATES = new Set(["startup", "recover", "recover-wait", "recover-done", "potential-conflict", "conflict-done"]);

type Side = "primary" | "secondary";

/** A side's own state: its OMAPI (or leases-file) answer while dhcpd runs; "unknown" otherwise. */
function ownState(side: DhcpFailoverSideObservation): string {
  if (!side.reachable || !side.dhcpdActive) return "unknown";
  return side.localState ?? "unknown";
}

/**
 * The DhcpFailoverPeer status for one pass. Ready is True only when both sides report normal;
 * PartnerDown and CommunicationsInterrupted appear while either side is in that state.
 */
export function computeDhcpFailoverPeerStatus(
  observation: DhcpFailoverPeerObservation,
  applyOutcome: ApplyOutcome | undefined,
  previousStatus: DhcpFailoverPeerStatus | undefined,
  generation: number,
  now: Date,
): DhcpFailoverPeerStatus {
  const apply = judgeApply(applyOutcome, "DhcpFailoverPeer", previousStatus, generation);
  const sides: Record<Side, DhcpFailoverSideObservation> = { primary: observation.primary, secondary: observation.secondary };
  const states: Record<Side, string> = { primary: ownState(sides.primary), secondary: ownState(sides.secondary) };
  const other = (s: Side): Side => (s === "primary" ? "secondary" : "primary");
  const conditions: ConditionInput[] = [];
  if (apply.configApplied) conditions.push(apply.configApplied);
  if (apply.configInSync) conditions.push(apply.configInSync);
  const configApplied = apply.configApplied ?? findCondition(previousStatus?.conditions, "ConfigApplied");

  const inState = (state: string) => (["primary", "secondary"] as Side[]).filter((s) => states[s] === state);
  const partnerDown = inState("partner-down");
  const interrupted = inState("communications-interrupted");
  const mclt = observation.mcltSeconds !== undefined ? ` (${observation.mcltSeconds} s)` : "";
  const partnerDownMessage = partnerDown
    .map(
      (s) =>
        `the ${s} ${sides[s].host} is in partner-down: it serves all clients alone and takes the ${other(s)}'s free leases after MCLT${mclt}; start dhcpd on the ${other(s)} ${sides[other(s)].host} and the pair recovers to normal`,
    )
    .join("; ");
  const interruptedMessage = interrupted
    .map(
      (s) =>
        `the ${s} ${sides[s].host} cannot reach its partner ${sides[other(s)].host} (peer "${observation.peerName}"): it serves only its own free leases; check that dhcpd runs on ${sides[other(s)].host} and the failover port is open between them`,
    )
    .join("; ");
  conditions.push({ type: "PartnerDown", status: partnerDown.length ? "True" : "False", reason: "PartnerDown", message: partnerDownMessage });
  conditions.push({
    type: "CommunicationsInterrupted",
    status: interrupted.length ? "True" : "False",
    reason: "CommunicationsInterrupted",
    message: interruptedMessage,
  });

  const problems: { reason: string; message: string }[] = [];
  if (apply.blocking) problems.push(apply.blocking);
  // A side in maintenance may be shut down, stopped or rebooting on purpose, and its partner
  // serves alone on purpose (partner-down, or communications-interrupted when left alone).
  const m = observation.maintenance;
  const resting = new Set<Side>(m?.sides ?? []);
  const expected = (s: Side) => resting.has(s) || (resting.size === 1 && SERVING_ALONE_STATES.has(states[s]));
  for (const s of ["primary", "secondary"] as Side[]) {
    if (resting.has(s)) continue;
    const side = sides[s];
    if (!side.reachable) problems.push({ reason: "HostUnreachable", message: `cannot observe the ${s} ${side.host}: ${side.error ?? "unreachable"}` });
    else if (!side.dhcpdActive) {
      problems.push({ reason: "DhcpdNotRunning", message: `dhcpd is not running on the ${s} ${side.host}: start it (systemctl start isc-dhcp-server); see journalctl -u isc-dhcp-server there` });
    } else if (side.source !== "omapi" && side.omapiError) {
      // The forward's failure first: it is why omshell was tried, and often the one to fix (sshd's AllowTcpForwarding).
      const why = side.forwardError ? `${side.forwardError}; omshell on the host, tried instead: ${side.omapiError}` : side.omapiError;
      problems.push({ reason: "OmapiFailed", message: `cannot read the failover state of the ${s} ${side.host} through OMAPI: ${why}` });
    }
  }
  if (!apply.blocking && configApplied && configApplied.status !== "True") problems.push({ reason: configApplied.reason, message: configApplied.message });
  if (!configApplied) problems.push({ reason: "ApplyPending", message: "the dhcpd failover config has not been applied to the hosts yet" });
  if (partnerDown.some((s) => !expected(s))) problems.push({ reason: "PartnerDown", message: partnerDownMessage });
  if (interrupted.some((s) => !expected(s))) problems.push({ reason: "CommunicationsInterrupted", message: interruptedMessage });
  const converging = (["primary", "secondary"] as Side[]).filter((s) => CONVERGING_STATES.has(states[s]) && !resting.has(s));
  if (converging.length) {
    problems.push({ reason: "FailoverConverging", message: converging.map((s) => `the ${s} ${sides[s].host} is in ${states[s]}`).join("; ") + "; dhcpd moves on to normal by itself" });
  }
  for (const s of ["primary", "secondary"] as Side[]) {
    const st = states[s];
    if (!resting.has(s) && st !== "normal" && st !== "unknown" && st !== "partner-down" && st !== "communications-interrupted" && !CONVERGING_STATES.has(st)) {
      problems.push({ reason: "NotNormal", message: `the ${s} ${sides[s].host} is in ${st}, not normal` });
    }
  }

  const hosts = { primary: sides.primary.host, secondary: sides.secondary.host };
  if (m && resting.size > 0) {
    if (m.set && !m.set.ok) problems.push({ reason: "HandOverFailed", message: `${m.plan.why}${setText(m.set, hosts)}` });
    else if (m.plan.phase === "NoPartnerToTakeOver" || m.plan.phase === "HandingOver") problems.push({ reason: m.plan.phase === "HandingOver" ? "HandingOver" : "NoPartnerToTakeOver", message: m.plan.why });
    if (problems.length === 0) problems.push({ reason: "Maintenance", message: `${m.plan.why} (DDIHost spec.maintenance)` });
  }

  const ready: ConditionInput = problems[0]
    ? { type: "Ready", status: "False", reason: problems[0].reason, message: problems.map((p) => p.message).join("; ") }
    : { type: "Ready", status: "True", reason: "BothNormal", message: `both ${sides.primary.host} and ${sides.secondary.host} are in normal for peer "${observation.peerName}"` };
  conditions.unshift(ready);
  const previousMaintenance = findCondition(previousStatus?.conditions, "Maintenance");
  if (m && resting.size > 0) {
    const reason = m.set && !m.set.ok ? "HandOverFailed" : m.plan.phase;
    conditions.push({ type: "Maintenance", status: "True", reason, message: `${m.plan.why}${setText(m.set, hosts)}` });
  } else {
    const back = ready.status === "True";
    const detail = back ? ready.reason : `${m?.plan.why ?? "waiting for both sides to be normal again"}${setText(m?.set, hosts)}`;
    const ended = endedMaintenanceCondition(previousMaintenance, back, detail, now);
    if (ended) conditions.push(ended);
  }
  conditions.push(apply.stalled ?? { type: "Stalled", status: "False", reason: "", message: "" });
  conditions.push(
    apply.reconciling ??
      (converging.length && !apply.stalled
        ? { type: "Reconciling", status: "True", reason: "FailoverConverging", message: problems.find((p) => p.reason === "FailoverConverging")!.message }
        : { type: "Reconciling", status: "False", reason: "", message: "" }),
  );

  // Pool balance: the primary's view (it drives balancing); the secondary's when the primary is silent.
  const poolSource = sides.primary.pools.length ? sides.primary.pools : sides.secondary.pools;
  const pools = poolSource.map((p) => ({ subnet: p.subnet, total: p.total, free: p.free, backup: p.backup }));

  return {
    observedGeneration: generation,
    conditions: setConditions(previousStatus?.conditions, conditions, generation, now),
    primaryState: states.primary,
    secondaryState: states.secondary,
    ...(pools.length ? { pools } : previousStatus?.pools ? { pools: previousStatus.pools } : {}),
  };
}
