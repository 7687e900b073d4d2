// ISC dhcpd failover maintenance, pure: which side's local-state to set through OMAPI so that
// the side whose host is in maintenance stops serving before anything stops, and how to bring it
// back. Only with DhcpFailoverPeer.spec.maintenancePartnerDown; without it dhcpd is left alone.
//
// dhcpd 4.4 (server/failover.c): a server moved to shutdown tells its partner, and a partner in
// normal or communications-interrupted that hears "shutdown" moves itself to partner-down. That
// is the hand-over: setting the partner to partner-down while the other side still runs and is
// connected would make both go to potential-conflict instead (normal hearing partner-down). Only
// when the side in maintenance no longer talks (dhcpd stopped, host down) is the partner set to
// partner-down directly. To undo, the shut-down side is moved to recover: with its partner in
// partner-down and nothing queued, dhcpd skips the MCLT wait ("a server moved administratively
// into shutdown prior to actually shutting down"), asks for every update, passes recover-done,
// and both go to normal.
import type { OmapiSettableState } from "./omapi.js";

export type FailoverSide = "primary" | "secondary";

export interface FailoverMaintenanceSide {
  host: string;
  /** Its DDIHost has spec.maintenance. */
  inMaintenance: boolean;
  /** dhcpd runs and its failover state was read live (OMAPI). */
  live: boolean;
  /** Its own failover state ("unknown" when not read). */
  state: string;
}

/**
 * What a pass does about maintenance: `set` a side's local-state, or nothing. `phase`:
 * - LeftAlone: maintenancePartnerDown is off; dhcpd is not touched;
 * - HandingOver: a state is due (`set`) or dhcpd is getting there;
 * - HandedOver: the partner is in partner-down;
 * - NoPartnerToTakeOver: both sides in maintenance, or the partner does not serve: nothing set;
 * - Returning, Idle: as for Kea.
 */
export interface FailoverMaintenancePlan {
  phase: "LeftAlone" | "HandingOver" | "HandedOver" | "NoPartnerToTakeOver" | "Returning" | "Idle";
  set?: { side: FailoverSide; state: OmapiSettableState };
  why: string;
}

const other = (s: FailoverSide): FailoverSide => (s === "primary" ? "secondary" : "primary");
/** States of a running side that the shutdown hand-over starts from. */
const SHUT_DOWN_FROM = new Set(["normal", "communications-interrupted"]);

/**
 * The next step. `undoing`: the peer's last status said a maintenance was on (or returning), so a
 * side left in shutdown is the operator's to bring back; one shut down by hand never is.
 */
export function planFailoverMaintenance(
  sides: Readonly<Record<FailoverSide, FailoverMaintenanceSide>>,
  partnerDown: boolean,
  undoing: boolean,
): FailoverMaintenancePlan {
  const resting = (["primary", "secondary"] as const).filter((s) => sides[s].inMaintenance);
  if (resting.length === 0) return planReturn(sides, undoing);
  if (resting.length === 2) {
    return { phase: "NoPartnerToTakeOver", why: `both ${sides.primary.host} and ${sides.secondary.host} are in maintenance: no side would serve; nothing set` };
  }
  const m = resting[0]!;
  const s = other(m);
  const M = sides[m];
  const S = sides[s];
  if (!partnerDown) {
    return {
      phase: "LeftAlone",
      why: `the ${m} ${M.host} is in maintenance and dhcpd is left alone (spec.maintenancePartnerDown is not set): once dhcpd on ${M.host} stops, the ${s} ${S.host} goes to communications-interrupted and serves only its own free leases; with maintenancePartnerDown: true it would take the whole pool after MCLT`,
    };
  }
  if (S.state === "partner-down") return { phase: "HandedOver", why: `the ${s} ${S.host} is in partner-down and serves every client while the ${m} ${M.host} is in maintenance` };
  if (!S.live || !SHUT_DOWN_FROM.has(S.state)) {
    return {
      phase: "NoPartnerToTakeOver",
      why: `the ${m} ${M.host} is in maintenance, but the ${s} ${S.host} does not serve (${S.live ? S.state : "dhcpd not observed"}): nothing set; bring dhcpd on ${S.host} back first`,
    };
  }
  if (M.live && SHUT_DOWN_FROM.has(M.state)) {
    return { phase: "HandingOver", set: { side: m, state: "shutdown" }, why: `the ${m} ${M.host} goes to shutdown, so that the ${s} ${S.host} moves to partner-down` };
  }
  if ((!M.live || M.state === "shutdown") && S.state === "communications-interrupted") {
    return {
      phase: "HandingOver",
      set: { side: s, state: "partner-down" },
      why: `the ${m} ${M.host} no longer talks to the ${s} ${S.host} (${M.live ? M.state : "dhcpd not observed"}): ${S.host} is set to partner-down`,
    };
  }
  return { phase: "HandingOver", why: `waiting for the ${s} ${S.host} (${S.state}) to hear that the ${m} ${M.host} is ${M.live ? `in ${M.state}` : "gone"}` };
}

function planReturn(sides: Readonly<Record<FailoverSide, FailoverMaintenanceSide>>, undoing: boolean): FailoverMaintenancePlan {
  if (!undoing) return { phase: "Idle", why: "no side is in maintenance" };
  const shut = (["primary", "secondary"] as const).find((s) => sides[s].live && sides[s].state === "shutdown");
  if (shut) return { phase: "Returning", set: { side: shut, state: "recover" }, why: `the maintenance ended: the ${shut} ${sides[shut].host} returns through recover` };
  const away = (["primary", "secondary"] as const).filter((s) => !sides[s].live || sides[s].state !== "normal");
  if (away.length === 0) return { phase: "Idle", why: "both sides are normal" };
  return {
    phase: "Returning",
    why: `the maintenance ended; waiting for ${away.map((s) => `the ${s} ${sides[s].host} (${sides[s].live ? sides[s].state : "dhcpd not observed"})`).join(" and ")} to reach normal`,
  };
}
