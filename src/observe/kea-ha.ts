// Each Kea HA peer's own view (status-get), asked through its Control Agent over an SSH port
// forward: the agent listens on the peer-facing address, which the operator may not reach, but
// the peer's host always can. The parsing and the OK/Impaired/Down rule are the kea module's.
import { request } from "node:http";
import type { HostSession } from "../exec/host-io.js";
import {
  type KeaHealth,
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
  let forward: Awaited<ReturnType<HostSession["forward"]>> | undefined;
  try {
    const { host, port, tls } = agentEndpoint(target.url);
    if (tls) throw new Error(`${target.url} uses https; the operator speaks plain HTTP to the agent`);
    forward = await session.forward(host, port);
    const body = await postKeaCommand(forward.localPort, KEA_STATUS_GET_COMMAND, timeoutMs);
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
  } finally {
    await forward?.close().catch(() => undefined);
  }
}

/** Micetro's OK/Impaired/Down over the peers' observations (the kea module's rule). */
export function keaClusterHealth(peers: readonly KeaPeerObservation[]): KeaHealth {
  return aggregateKeaHealth(peers.map((p): KeaHealthInput => ({ name: p.name, role: p.role, reachable: p.reachable, state: p.state })));
}
