// Planned switchover of a hot-standby relationship (KeaHACluster.spec.preferredPrimary, ADR 0033),
// pure: which roles the hosts should carry, and what a pass does next to get them there with as
// short a time as possible in which no peer answers clients.
//
// Kea 2.2 cannot change a peer's role at run time: the role lives in the config, and the operator
// applies a config by restarting kea-dhcp4-server. So the order is (measured on the lab, ADR 0033):
// 1. ha-maintenance-start to the peer that becomes primary: the old primary goes to in-maintenance
//    (answers nothing) and the new one to partner-in-maintenance (answers every client);
// 2. apply the swapped configs one host at a time, the old primary first (it answers nothing, so
//    its restart costs nothing), then the new primary, whose restart is the only gap;
// 3. end whatever maintenance state is left (ha-maintenance-cancel / -notify), and wait for both
//    to be back in hot-standby with the new roles.
import type { KeaHAClusterSpec, KeaPeerSpec, KeaRole } from "../../api/index.js";
import { type KeaMaintenanceCommandName, planKeaMaintenance } from "./maintenance.js";

/** The primary the spec wants now: spec.preferredPrimary, else the peer declared primary. */
export function wantedPrimary(spec: Pick<KeaHAClusterSpec, "peers" | "preferredPrimary">): string | undefined {
  return spec.preferredPrimary ?? spec.peers.find((p) => p.role === "primary")?.name;
}

/** Whether spec.preferredPrimary names the standby: the roles on the hosts are swapped. */
export function isSwitchedOver(spec: Pick<KeaHAClusterSpec, "mode" | "peers" | "preferredPrimary">): boolean {
  if (spec.mode !== "hot-standby" || spec.preferredPrimary === undefined) return false;
  return spec.peers.some((p) => p.name === spec.preferredPrimary && p.role === "standby");
}

/** The peers with the roles rendered on the hosts: primary and standby swapped after a switchover. */
export function effectivePeers(spec: Pick<KeaHAClusterSpec, "mode" | "peers" | "preferredPrimary">): KeaPeerSpec[] {
  if (!isSwitchedOver(spec)) return spec.peers;
  const swap = (role: KeaRole): KeaRole => (role === "primary" ? "standby" : role === "standby" ? "primary" : role);
  return spec.peers.map((p) => ({ ...p, role: swap(p.role) }));
}

export interface KeaSwitchoverPeer {
  name: string;
  host: string;
  /** The role the spec now wants on the host (effectivePeers). */
  role: string;
  reachable: boolean;
  state: string;
  /** The role the running kea-dhcp4 reports (status-get local.role), when it answered. */
  runningRole?: string;
}

/**
 * What a pass does about a switchover. `phase`:
 * - Idle: the running roles are the wanted ones and nothing is left to finish;
 * - Waiting: the roles must change, but not now (a peer is converging, a host in maintenance);
 *   the apply is held;
 * - HandingOver: `send` ha-maintenance-start to the new primary; apply only once it serves all;
 * - Applying: apply the configs now, one host at a time in `order` (DDIHost names);
 * - Finishing: the roles are right; `send` ends a maintenance state left over, or Kea is converging;
 * - Done: both peers run the wanted roles in hot-standby.
 */
export interface KeaSwitchoverPlan {
  phase: "Idle" | "Waiting" | "HandingOver" | "Applying" | "Finishing" | "Done";
  send?: { command: KeaMaintenanceCommandName; peer: string };
  order?: string[];
  why: string;
}

/** States in which a peer answers every client of the relationship while its partner answers none. */
const SERVING_ALONE = new Set(["partner-in-maintenance", "partner-down"]);

/**
 * `inProgress`: the last status said a switchover was under way (so leftover maintenance states
 * are the operator's own to end). `hostMaintenance`: a peer's DDIHost has spec.maintenance, whose
 * own hand-over comes first.
 */
export function planKeaSwitchover(peers: readonly KeaSwitchoverPeer[], inProgress: boolean, hostMaintenance: boolean): KeaSwitchoverPlan {
  const active = peers.filter((p) => p.role !== "backup");
  const newPrimary = active.find((p) => p.role === "primary");
  const oldPrimary = active.find((p) => p.role !== "primary");
  if (!newPrimary || !oldPrimary) return { phase: "Idle", why: "no primary and standby pair to switch over" };
  const pending = active.some((p) => p.reachable && p.runningRole !== undefined && p.runningRole !== p.role);
  const roles = `${newPrimary.name} primary, ${oldPrimary.name} standby`;
  if (!pending) {
    if (!inProgress) return { phase: "Idle", why: `the peers run the wanted roles (${roles})` };
    const left = planKeaMaintenance("hot-standby", peers.map((p) => ({ name: p.name, role: p.role, reachable: p.reachable, state: p.state })), new Set(), true);
    if (left.phase === "Idle") return { phase: "Done", why: `${roles}, both in hot-standby` };
    return { phase: "Finishing", ...(left.send ? { send: left.send } : {}), why: `the configs carry the new roles (${roles}); ${left.why}` };
  }
  if (hostMaintenance) return { phase: "Waiting", why: `a peer's DDIHost is in maintenance: the switchover to ${roles} waits until the maintenance ends` };
  const order = [oldPrimary.host, newPrimary.host];
  if (!newPrimary.reachable) return { phase: "Waiting", why: `${newPrimary.name} does not answer: it cannot take over; the switchover waits for it` };
  if (SERVING_ALONE.has(newPrimary.state)) {
    return { phase: "Applying", order, why: `${newPrimary.name} is in ${newPrimary.state} and answers every client: applying the swapped roles (${roles}), ${oldPrimary.host} first, then ${newPrimary.host}` };
  }
  // The old primary answers nothing anyway: nothing to hand over, apply at once.
  if (!oldPrimary.reachable || ["in-maintenance", "terminated", "unavailable", "unknown"].includes(oldPrimary.state)) {
    return { phase: "Applying", order, why: `${oldPrimary.name} is ${oldPrimary.reachable ? `in ${oldPrimary.state}` : "not answering"}, so there is no service to hand over: applying the swapped roles (${roles})` };
  }
  if (newPrimary.state === "hot-standby" && oldPrimary.state === "hot-standby") {
    return { phase: "HandingOver", send: { command: "ha-maintenance-start", peer: newPrimary.name }, why: `switching over to ${roles}: ${newPrimary.name} takes over every client first (ha-maintenance-start)` };
  }
  return { phase: "Waiting", why: `the switchover to ${roles} waits for ${newPrimary.name} (${newPrimary.state}) and ${oldPrimary.name} (${oldPrimary.state}) to reach hot-standby` };
}
