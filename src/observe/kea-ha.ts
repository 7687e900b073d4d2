// Each Kea HA peer's own view (status-get), asked through its Control Agent over an SSH port
// forward: the agent listens on the peer-facing address, which the operator may not reach, but
// the peer's host always can. The parsing and the OK/Impaired/Down rule are the kea module's.
import { request } from "node:http";
import type { HostSession } from "../exec/host-io.js";
import {
  type KeaHealth,
  type KeaMaintenanceCommandName,
  keaMaintenanceCommand,
  parseKeaCommandAnswer,
  type KeaPeerObservation as KeaHealthInput,
  agentEndpoint,
  aggregateKeaHealth,
  parseStatusGet,
} from "../daemons/kea/index.js";

export const KEA_STATUS_GET_COMMAND = { command: "status-get", service: ["dhcp4"] } as const;

export interface KeaPeerTarget {
  name: string;
  role: string;
  /** The peer's Control Agent URL as rendered (spec.peers[].url or its default). */
  url: string;
}

export interface KeaPeerObservation {
  name: string;
  host: string;
  role: string;
  /** Whether kea-dhcp4 itself answered (through the agent). */
  reachable: boolean;
  /** The peer's own HA state; "unavailable" when it did not answer. */
  state: string;
  /** The role the running kea-dhcp4 has (status-get local.role): its config's, whatever the spec says now. */
  runningRole?: string;
  /** Whether the peer is in touch with its partner (status-get remote.in-touch). */
  inTouch?: boolean;
  /** Unacked clients the peer counts against its partner. */
  unackedClients?: number;
  /** The partner's state as this peer last heard it. */
  partnerLastState?: string;
  communicationInterrupted?: boolean;
  error?: string;
}

/** POSTs one command to a Control Agent and returns the body text. */
export function postKeaCommand(port: number, command: unknown, timeoutMs = 10_000, host = "127.0.0.1"): Promise<string> {
  const body = JSON.stringify(command);
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, method: "POST", path: "/", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** status-get's answer (or the failure to get one) as a peer observation. Pure. */
export function peerFromStatusGet(target: KeaPeerTarget, host: string, response: unknown): KeaPeerObservation {
  const base = { name: target.name, host, role: target.role };
  const parsed = parseStatusGet(response);
  if (!parsed.ok) {
    return { ...base, reachable: false, state: "unavailable", error: `status-get through the Control Agent at ${target.url}: ${parsed.text} (result ${parsed.result})` };
  }
  const rel = parsed.relationships[0];
  if (!rel) {
    return {
      ...base,
      reachable: true,
      state: "unknown",
      error: `kea-dhcp4 at ${target.url} reports no high-availability relationship: libdhcp_ha.so is not loaded (check hooks-libraries)`,
    };
  }
  return {
    ...base,
    reachable: true,
    state: rel.localState,
    ...(rel.localRole !== "unknown" ? { runningRole: rel.localRole } : {}),
    ...(rel.remote
      ? {
          inTouch: rel.remote.inTouch,
          unackedClients: rel.remote.unackedClients,
          partnerLastState: rel.remote.lastState,
          communicationInterrupted: rel.remote.communicationInterrupted,
        }
      : {}),
  };
}

/**
 * One peer's status-get, POSTed to its Control Agent through a port forward from the peer's own
 * host (`session` is that host's session). Never throws: an unreachable agent is an observation.
 */
export async function observeKeaPeer(session: HostSession, target: KeaPeerTarget, timeoutMs = 10_000): Promise<KeaPeerObservation> {
  try {
    const body = await postThroughForward(session, target.url, KEA_STATUS_GET_COMMAND, timeoutMs);
    return peerFromStatusGet(target, session.hostName, body);
  } catch (err) {
    return {
      name: target.name,
      host: session.hostName,
      role: target.role,
      reachable: false,
      state: "unavailable",
      error: `status-get through the Control Agent at ${target.url} from ${session.hostName}: ${(err as Error).message}`,
    };
  }
}

/** POSTs one command to the agent at `url` through a port forward from `session`'s host. */
async function postThroughForward(session: HostSession, url: string, command: unknown, timeoutMs: number): Promise<string> {
  const { host, port, tls } = agentEndpoint(url);
  if (tls) throw new Error(`${url} uses https; the operator speaks plain HTTP to the agent`);
  const forward = await session.forward(host, port);
  try {
    return await postKeaCommand(forward.localPort, command, timeoutMs);
  } finally {
    await forward.close().catch(() => undefined);
  }
}

export interface KeaCommandOutcome {
  command: KeaMaintenanceCommandName;
  peer: string;
  ok: boolean;
  /** Kea's own answer text, or why there was none. */
  text: string;
}

/**
 * Sends a maintenance command to one peer through its Control Agent, the way status-get goes.
 * Never throws: a refusal or no answer is the outcome. ha-maintenance-start waits for the
 * partner's answer to ha-maintenance-notify, so it gets a longer timeout than status-get.
 */
export async function sendKeaMaintenanceCommand(session: HostSession, target: KeaPeerTarget, command: KeaMaintenanceCommandName, timeoutMs = 20_000): Promise<KeaCommandOutcome> {
  try {
    const answer = parseKeaCommandAnswer(await postThroughForward(session, target.url, keaMaintenanceCommand(command), timeoutMs));
    return answer.ok ? { command, peer: target.name, ok: true, text: answer.text } : { command, peer: target.name, ok: false, text: `${answer.text} (result ${answer.result})` };
  } catch (err) {
    return { command, peer: target.name, ok: false, text: `no answer through the Control Agent at ${target.url} from ${session.hostName}: ${(err as Error).message}` };
  }
}

/** Micetro's OK/Impaired/Down over the peers' observations (the kea module's rule). */
export function keaClusterHealth(peers: readonly KeaPeerObservation[]): KeaHealth {
  return aggregateKeaHealth(peers.map((p): KeaHealthInput => ({ name: p.name, role: p.role, reachable: p.reachable, state: p.state })));
}
