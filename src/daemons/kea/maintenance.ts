// Kea HA maintenance (the ARM's "Controlled Shutdown and Maintenance"), pure: which command to
// send to which peer so that a peer whose host is in maintenance hands its clients over before
// anything stops, and which to send to undo it. The engine sends the command through the peer's
// Control Agent and observes again; re-planning from the observed states makes every resync
// idempotent (nothing is sent once the peers are where the plan wants them).
//
// Kea 2.2 (ha_service.cc): ha-maintenance-start goes to the server that stays in service. It
// sends ha-maintenance-notify to its partner, which moves to in-maintenance (it stops answering
// clients), then moves itself to partner-in-maintenance (it answers every client and still sends
// lease updates). With the partner unreachable it moves to partner-down at once instead of after
// max-response-delay. ha-maintenance-cancel, to the partner-in-maintenance server, returns both
// to their previous states; once that server is in partner-down (its partner went away) there is
// nothing to cancel, and the partner comes back by itself when it restarts. A peer left alone in
// in-maintenance leaves it on ha-maintenance-notify with cancel true.
import type { KeaHAClusterSpec } from "../../api/index.js";

export type KeaMaintenanceCommandName = "ha-maintenance-start" | "ha-maintenance-cancel" | "ha-maintenance-notify";

/** The Control Agent command (always for dhcp4 here). */
export function keaMaintenanceCommand(name: KeaMaintenanceCommandName): { command: string; service: string[]; arguments?: { cancel: boolean } } {
  return name === "ha-maintenance-notify"
    ? { command: name, service: ["dhcp4"], arguments: { cancel: true } }
    : { command: name, service: ["dhcp4"] };
}

/** The state a peer is in when its HA relationship runs normally (a maintenance has returned). */
export function keaNormalState(mode: KeaHAClusterSpec["mode"], role: string): string {
  if (role === "backup") return "backup";
  return mode;
}

export interface KeaMaintenancePeer {
  name: string;
  role: string;
  reachable: boolean;
  state: string;
}

/**
 * What a pass does about maintenance. `phase` names where the relationship is:
 * - HandingOver: a command is due (`send`) or Kea is getting there;
 * - HandedOver: the peers in maintenance serve no client, another peer serves them all;
 * - NoPartnerToTakeOver: nothing can take over (passive-backup, every active peer in maintenance,
 *   the partner unreachable or terminated): nothing is sent;
 * - Returning: the maintenance ended and a cancel is due or Kea is getting back;
 * - Idle: no maintenance, nothing to undo.
 */
export interface KeaMaintenancePlan {
  phase: "HandingOver" | "HandedOver" | "NoPartnerToTakeOver" | "Returning" | "Idle";
  send?: { command: KeaMaintenanceCommandName; peer: string };
  why: string;
}

/** Survivor states in which ha-maintenance-start is accepted and useful. */
const START_FROM = new Set(["hot-standby", "load-balancing", "communication-recovery"]);
/** Survivor states that already serve the partner's clients. */
const TAKEN_OVER = new Set(["partner-in-maintenance", "partner-down"]);

/**
 * The next step. `inMaintenance`: names of the peers whose DDIHost has spec.maintenance.
 * `undoing`: the cluster's last status said a maintenance was on (or returning), so maintenance
 * states left on its peers are the operator's to cancel; a maintenance started by hand with no
 * spec.maintenance is never cancelled.
 */
export function planKeaMaintenance(
  mode: KeaHAClusterSpec["mode"],
  peers: readonly KeaMaintenancePeer[],
  inMaintenance: ReadonlySet<string>,
  undoing: boolean,
): KeaMaintenancePlan {
  if (inMaintenance.size === 0) return planReturn(mode, peers, undoing);
  const active = peers.filter((p) => p.role !== "backup");
  const resting = active.filter((p) => inMaintenance.has(p.name));
  const names = peers.filter((p) => inMaintenance.has(p.name)).map((p) => p.name).join(", ");
  if (resting.length === 0) return { phase: "HandedOver", why: `${names} in maintenance: backup peers answer no clients, nothing to hand over` };
  const survivors = active.filter((p) => !inMaintenance.has(p.name));
  if (mode === "passive-backup" || survivors.length === 0) {
    return {
      phase: "NoPartnerToTakeOver",
      why:
        mode === "passive-backup"
          ? `${names} in maintenance, but in passive-backup no peer takes over from the primary: its clients get no leases; nothing sent`
          : `every active peer (${names}) is in maintenance: no peer would answer clients; nothing sent. Take one out of maintenance`,
    };
  }
  const survivor = survivors[0]!;
  const who = resting.map((p) => p.name).join(", ");
  if (!survivor.reachable) {
    return { phase: "NoPartnerToTakeOver", why: `${who} in maintenance, but its partner ${survivor.name} does not answer: nothing sent; bring ${survivor.name} back first` };
  }
  if (TAKEN_OVER.has(survivor.state)) return { phase: "HandedOver", why: `${survivor.name} is in ${survivor.state} and answers every client while ${who} is in maintenance` };
  if (survivor.state === "in-maintenance") {
    // The other way round (started by hand toward the survivor): undo that first.
    const other = resting.find((p) => p.reachable && p.state === "partner-in-maintenance");
    return other
      ? { phase: "HandingOver", send: { command: "ha-maintenance-cancel", peer: other.name }, why: `${survivor.name} is in in-maintenance the wrong way round: cancelling it on ${other.name} first` }
      : { phase: "NoPartnerToTakeOver", why: `${survivor.name} is itself in in-maintenance: end it (ha-maintenance-cancel on its partner) before ${who} can be` };
  }
  if (START_FROM.has(survivor.state)) {
    return { phase: "HandingOver", send: { command: "ha-maintenance-start", peer: survivor.name }, why: `${who} in maintenance: ${survivor.name} takes over its clients (ha-maintenance-start)` };
  }
  if (survivor.state === "terminated") {
    return { phase: "NoPartnerToTakeOver", why: `${who} in maintenance, but its partner ${survivor.name} is terminated (Kea refuses a maintenance then): nothing sent` };
  }
  return { phase: "HandingOver", why: `${who} in maintenance: waiting for ${survivor.name} to leave ${survivor.state} before telling it to take over` };
}

function planReturn(mode: KeaHAClusterSpec["mode"], peers: readonly KeaMaintenancePeer[], undoing: boolean): KeaMaintenancePlan {
  if (!undoing) return { phase: "Idle", why: "no peer is in maintenance" };
  const survivor = peers.find((p) => p.reachable && p.state === "partner-in-maintenance");
  if (survivor) return { phase: "Returning", send: { command: "ha-maintenance-cancel", peer: survivor.name }, why: `the maintenance ended: ${survivor.name} returns both peers to normal (ha-maintenance-cancel)` };
  const stuck = peers.find((p) => p.reachable && p.state === "in-maintenance");
  if (stuck) return { phase: "Returning", send: { command: "ha-maintenance-notify", peer: stuck.name }, why: `the maintenance ended: ${stuck.name} leaves in-maintenance (ha-maintenance-notify, cancel)` };
  const away = peers.filter((p) => !p.reachable || p.state !== keaNormalState(mode, p.role));
  if (away.length === 0) return { phase: "Idle", why: `every peer is back in ${mode}` };
  return { phase: "Returning", why: `the maintenance ended; waiting for ${away.map((p) => `${p.name} (${p.reachable ? p.state : "not answering"})`).join(", ")} to reach ${mode}` };
}
