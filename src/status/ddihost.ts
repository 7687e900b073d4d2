// DDIHost status from one observation pass: reachability, the discovered facts and the clock.
// Pure. Messages stay the same while the situation does (no measured numbers in a True
// condition), so that lastTransitionTime means "since when".
import type { DDIHostStatus } from "../api/index.js";
import type { HostFacts } from "../observe/host-facts.js";
import type { HostFailure } from "../observe/host-failure.js";
import { type ConditionInput, findCondition, setConditions } from "./conditions.js";

export type DDIHostObservation = { /** DDIHost name, for messages. */ host: string } & (
  | { reachable: true; facts: HostFacts; hostKeyFingerprint?: string; observedHostKey?: string }
  | { reachable: false; failure: HostFailure; hostKeyFingerprint?: string; observedHostKey?: string }
);

export interface DDIHostStatusOptions {
  /** Largest |clock offset| still counted as synchronized. Default 1 s. */
  maxClockOffsetSeconds?: number;
  /** spec.maintenance: the host is out of service on purpose. */
  maintenance?: boolean;
}

export const DEFAULT_MAX_CLOCK_OFFSET_SECONDS = 1;

const REACHABLE_REASONS: Record<HostFailure["kind"], string> = {
  Unreachable: "HostUnreachable",
  HostKeyMismatch: "HostKeyMismatch",
  AuthenticationFailed: "AuthenticationFailed",
  SudoRefused: "SudoRefused",
  Timeout: "CommandTimedOut",
  ConnectionLost: "ConnectionLost",
  Error: "ObservationFailed",
};

function describeOffset(seconds: number): string {
  const abs = Math.abs(seconds);
  const amount = abs >= 10 ? abs.toFixed(0) : abs.toFixed(2);
  return `${amount} s ${seconds >= 0 ? "ahead of" : "behind"}`;
}

function clockCondition(name: string, facts: HostFacts, maxOffset: number): ConditionInput {
  const ntpHint = "enable an NTP client (systemd-timesyncd or chrony) on the host";
  if (facts.clockOffsetSeconds === undefined) {
    return { type: "ClockSynchronized", status: "Unknown", reason: "OffsetNotMeasured", message: `could not read the clock of ${name} (date +%s.%N failed)` };
  }
  if (Math.abs(facts.clockOffsetSeconds) > maxOffset) {
    return {
      type: "ClockSynchronized",
      status: "False",
      reason: "ClockOffsetTooLarge",
      message: `the clock of ${name} is ${describeOffset(facts.clockOffsetSeconds)} the operator's (limit ${maxOffset} s): dhcpd failover and Kea HA need synchronized clocks (Kea stops HA above 60 s); ${ntpHint}`,
    };
  }
  if (facts.ntpSynchronized === false) {
    return {
      type: "ClockSynchronized",
      status: "True",
      reason: "OffsetWithinLimitWithoutNTP",
      message: `the clock of ${name} is within ${maxOffset} s of the operator's, but the host does not report NTP synchronization, so it will drift; ${ntpHint}`,
    };
  }
  return { type: "ClockSynchronized", status: "True", reason: "OffsetWithinLimit", message: `the clock of ${name} is within ${maxOffset} s of the operator's` };
}

/**
 * The offset to report: the previous one while the new measurement is within its uncertainty of
 * it (the same clock, measured again), else the new one rounded to 1 ms. A raw float differs on
 * every pass, and each difference would be a status write and a watch event.
 */
export function reportedClockOffset(measured: number | undefined, uncertainty: number | undefined, previous: number | undefined): number | undefined {
  if (measured === undefined) return undefined;
  if (previous !== undefined && Math.abs(measured - previous) <= (uncertainty ?? 0)) return previous;
  return Math.round(measured * 1000) / 1000;
}

/**
 * The DDIHost status for one pass. Ready is True when the host is reachable with the expected
 * key and its clock is synchronized. A changed host key stalls the object: nothing but a new
 * spec.hostKey (or a restored host) can fix it. When the host is unreachable the facts of the
 * previous status are kept (stale but useful), and the clock is Unknown.
 */
export function computeDDIHostStatus(
  observation: DDIHostObservation,
  previousStatus: DDIHostStatus | undefined,
  generation: number,
  now: Date,
  options: DDIHostStatusOptions = {},
): DDIHostStatus {
  const maxOffset = options.maxClockOffsetSeconds ?? DEFAULT_MAX_CLOCK_OFFSET_SECONDS;
  const name = observation.host;
  const conditions: ConditionInput[] = [];
  let status: DDIHostStatus;
  if (observation.reachable) {
    const offset = reportedClockOffset(observation.facts.clockOffsetSeconds, observation.facts.clockOffsetUncertaintySeconds, previousStatus?.clockOffsetSeconds);
    // The condition reads the reported offset too, so that its message is as steady as the field.
    const f = { ...observation.facts, clockOffsetSeconds: offset };
    const clock = clockCondition(name, f, maxOffset);
    conditions.push({ type: "Reachable", status: "True", reason: "Connected", message: `${name} answers over SSH with the expected host key` });
    conditions.push(clock);
    conditions.push(
      clock.status === "True"
        ? { type: "Ready", status: "True", reason: "HostReady", message: `${name} is reachable and its clock is synchronized` }
        : { type: "Ready", status: "False", reason: clock.reason, message: clock.message },
    );
    conditions.push({ type: "Stalled", status: "False", reason: "", message: "" });
    status = {
      ...pickPrevious(previousStatus),
      ...hostKeyFields(observation),
      ...(f.os !== undefined ? { os: f.os } : {}),
      ...(f.kernel !== undefined ? { kernel: f.kernel } : {}),
      ...(f.clockOffsetSeconds !== undefined ? { clockOffsetSeconds: f.clockOffsetSeconds } : {}),
      ...(f.ntpSynchronized !== undefined ? { ntpSynchronized: f.ntpSynchronized } : {}),
      services: f.services,
      interfaces: f.interfaces,
    };
    if (f.ntpSynchronized === undefined) delete status.ntpSynchronized;
  } else {
    const reason = REACHABLE_REASONS[observation.failure.kind];
    conditions.push({ type: "Reachable", status: "False", reason, message: observation.failure.message });
    conditions.push({ type: "ClockSynchronized", status: "Unknown", reason: "HostUnreachable", message: `${name} cannot be reached, so its clock cannot be read` });
    conditions.push({ type: "Ready", status: "False", reason, message: observation.failure.message });
    conditions.push(
      observation.failure.kind === "HostKeyMismatch"
        ? { type: "Stalled", status: "True", reason: "HostKeyMismatch", message: observation.failure.message }
        : { type: "Stalled", status: "False", reason: "", message: "" },
    );
    // Connected, then failed (sudo, a command): the key was still verified on this pass.
    status = { ...pickPrevious(previousStatus), ...hostKeyFields(observation) };
  }
  conditions.push({ type: "Reconciling", status: "False", reason: "", message: "" });
  const maintenance = maintenanceCondition(name, options.maintenance === true, findCondition(previousStatus?.conditions, "Maintenance"));
  if (maintenance) conditions.push(maintenance);
  return {
    ...status,
    observedGeneration: generation,
    conditions: setConditions(previousStatus?.conditions, conditions, generation, now),
  };
}

/**
 * The host's Maintenance condition: True while spec.maintenance is set; False (Ended) once it is
 * removed, kept from then on; absent on a host never put in maintenance. Whether each
 * relationship handed over, and how long its return took, is in the relationship's own status.
 */
export function maintenanceCondition(name: string, inMaintenance: boolean, previous: { status: string } | undefined): ConditionInput | undefined {
  if (inMaintenance) {
    return {
      type: "Maintenance",
      status: "True",
      reason: "InMaintenance",
      message: `spec.maintenance is set: the relationships on ${name} hand over to their partners (their own Maintenance conditions say how far); remove it to bring ${name} back`,
    };
  }
  if (previous?.status === "True") return { type: "Maintenance", status: "False", reason: "Ended", message: `${name} is back in service: spec.maintenance was removed` };
  return undefined;
}

/** The verified host key's fields, when the pass connected. */
function hostKeyFields(o: { hostKeyFingerprint?: string; observedHostKey?: string }): Pick<DDIHostStatus, "hostKeyFingerprint" | "observedHostKey"> {
  return {
    ...(o.hostKeyFingerprint ? { hostKeyFingerprint: o.hostKeyFingerprint } : {}),
    ...(o.observedHostKey ? { observedHostKey: o.observedHostKey } : {}),
  };
}

/** The facts of the previous status, without its bookkeeping. */
function pickPrevious(previous: DDIHostStatus | undefined): DDIHostStatus {
  if (!previous) return {};
  const { conditions: _c, observedGeneration: _g, ...facts } = previous;
  return facts;
}
