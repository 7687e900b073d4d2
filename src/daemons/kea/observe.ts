// Reading Kea's own answers about HA (status-get, ha-heartbeat) and folding the peers' states
// into Micetro's OK / Impaired / Down. Pure: the transport (agent over HTTP, or the unix socket)
// is someone else's job. Response shapes are from real Kea 2.2.0 (testdata/observe/).

/** Whether a peer in this HA state takes part in HA normally. The one definition of "serving". */
export const KEA_SERVING_STATES: ReadonlySet<string> = new Set([
  "load-balancing",
  "hot-standby",
  "passive-backup",
  "backup", // a backup peer's normal state: it receives lease updates
  "partner-down", // serving alone; the partner is the one reported as not serving
  "partner-in-maintenance",
  "communication-recovery", // load-balancing with the partner briefly out of reach; still answering
]);
/**
 * Not serving in HA terms, but still answering DHCP clients: terminated (clock skew > 60 s)
 * keeps leasing without lease updates. Such a pair is Impaired, not Down.
 */
export const KEA_ANSWERING_WITHOUT_HA_STATES: ReadonlySet<string> = new Set(["terminated"]);

export interface KeaCommandFailure {
  ok: false;
  /** Kea's result code: 1 error, 2 unsupported, 3 empty; -1 when the answer was not Kea's shape. */
  result: number;
  text: string;
}

export interface HARemoteStatus {
  role?: string;
  inTouch: boolean;
  lastState: string;
  lastScopes: string[];
  communicationInterrupted: boolean;
  unackedClients: number;
  unackedClientsLeft?: number;
  connectingClients?: number;
  analyzedPackets?: number;
  /** Seconds since the last answer from the partner. */
  age: number;
}

export interface HARelationshipStatus {
  mode?: string;
  localRole: string;
  localState: string;
  scopes: string[];
  /** Absent where Kea reports no partner (e.g. on a backup server). */
  remote?: HARemoteStatus;
}

export type StatusGetResult =
  | { ok: true; pid?: number; uptimeSeconds?: number; relationships: HARelationshipStatus[] }
  | KeaCommandFailure;

export type HaHeartbeatResult =
  | { ok: true; state: string; dateTime: string; scopes: string[]; unsentUpdateCount?: number }
  | KeaCommandFailure;

/** The Control Agent wraps each service's answer in a list; the unix socket answers with the object itself. */
function unwrapAnswer(response: unknown): { answer: Record<string, unknown> } | KeaCommandFailure {
  let value = response;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch (err) {
      return { ok: false, result: -1, text: `not JSON: ${(err as Error).message}` };
    }
  }
  if (Array.isArray(value)) value = value[0];
  if (!isObject(value) || typeof value.result !== "number") {
    return { ok: false, result: -1, text: "not a Kea command answer (no numeric result)" };
  }
  if (value.result !== 0) return { ok: false, result: value.result, text: typeof value.text === "string" ? value.text : "" };
  return { answer: value };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
const str = (v: unknown, fallback = "unknown") => (typeof v === "string" ? v : fallback);
const num = (v: unknown) => (typeof v === "number" ? v : undefined);
const strings = (v: unknown) => (Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : []);

/** Any command's answer: result 0 and its text, or the failure (a maintenance command, say). */
export function parseKeaCommandAnswer(response: unknown): { ok: true; text: string } | KeaCommandFailure {
  const unwrapped = unwrapAnswer(response);
  if (!("answer" in unwrapped)) return unwrapped;
  return { ok: true, text: typeof unwrapped.answer.text === "string" ? unwrapped.answer.text : "" };
}

/** `{"command":"status-get","service":["dhcp4"]}`, answered by the agent or the unix socket. */
export function parseStatusGet(response: unknown): StatusGetResult {
  const unwrapped = unwrapAnswer(response);
  if (!("answer" in unwrapped)) return unwrapped;
  const args = isObject(unwrapped.answer.arguments) ? unwrapped.answer.arguments : {};
  const ha = Array.isArray(args["high-availability"]) ? args["high-availability"] : [];
  const relationships = ha.filter(isObject).map((rel): HARelationshipStatus => {
    const servers = isObject(rel["ha-servers"]) ? rel["ha-servers"] : {};
    const local = isObject(servers.local) ? servers.local : {};
    const remote = isObject(servers.remote) ? servers.remote : undefined;
    return {
      ...(typeof rel["ha-mode"] === "string" ? { mode: rel["ha-mode"] } : {}),
      localRole: str(local.role),
      localState: str(local.state),
      scopes: strings(local.scopes),
      ...(remote
        ? {
            remote: {
              ...(typeof remote.role === "string" ? { role: remote.role } : {}),
              inTouch: remote["in-touch"] === true,
              lastState: str(remote["last-state"]),
              lastScopes: strings(remote["last-scopes"]),
              communicationInterrupted: remote["communication-interrupted"] === true,
              unackedClients: num(remote["unacked-clients"]) ?? 0,
              ...optionalNumber("unackedClientsLeft", remote["unacked-clients-left"]),
              ...optionalNumber("connectingClients", remote["connecting-clients"]),
              ...optionalNumber("analyzedPackets", remote["analyzed-packets"]),
              age: num(remote.age) ?? 0,
            },
          }
        : {}),
    };
  });
  return {
    ok: true,
    ...optionalNumber("pid", args.pid),
    ...optionalNumber("uptimeSeconds", args.uptime),
    relationships,
  };
}

function optionalNumber<K extends string>(key: K, value: unknown): { [k in K]?: number } {
  return typeof value === "number" ? ({ [key]: value } as { [k in K]: number }) : {};
}

/** `{"command":"ha-heartbeat","service":["dhcp4"]}`: the peer's state and clock (for skew). */
export function parseHaHeartbeat(response: unknown): HaHeartbeatResult {
  const unwrapped = unwrapAnswer(response);
  if (!("answer" in unwrapped)) return unwrapped;
  const args = isObject(unwrapped.answer.arguments) ? unwrapped.answer.arguments : {};
  if (typeof args.state !== "string") return { ok: false, result: -1, text: "ha-heartbeat answer has no arguments.state" };
  return {
    ok: true,
    state: args.state,
    dateTime: str(args["date-time"], ""),
    scopes: strings(args.scopes),
    ...optionalNumber("unsentUpdateCount", args["unsent-update-count"]),
  };
}

export type KeaHealth = "OK" | "Impaired" | "Down";

export interface KeaPeerObservation {
  name: string;
  role: string;
  /** Whether the operator got an answer from the peer's kea-dhcp4 (through the agent). */
  reachable: boolean;
  /** The peer's own HA state (status-get local.state), when reachable. */
  state?: string;
}

/**
 * Micetro's aggregate (seed 001): OK when every peer is reachable and serving; Down when no
 * primary/secondary/standby answers clients (backups never do); Impaired otherwise.
 */
export function aggregateKeaHealth(peers: readonly KeaPeerObservation[]): KeaHealth {
  const serving = (p: KeaPeerObservation) => p.reachable && p.state !== undefined && KEA_SERVING_STATES.has(p.state);
  const answering = (p: KeaPeerObservation) =>
    p.role !== "backup" && p.reachable && p.state !== undefined && p.state !== "backup" && (KEA_SERVING_STATES.has(p.state) || KEA_ANSWERING_WITHOUT_HA_STATES.has(p.state));
  if (peers.length > 0 && peers.every(serving)) return "OK";
  if (!peers.some(answering)) return "Down";
  return "Impaired";
}
