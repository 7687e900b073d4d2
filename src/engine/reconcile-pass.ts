// One reconcile pass over a whole manifest set, as the lab runs it: apply each relationship to its
// hosts over SSH (optional), observe every host and relationship, and compute each resource's
// status with src/status. No Kubernetes I/O here: the caller reads the set and writes the
// statuses (see kube-status.ts), so the same pass serves the lab and, later, the controller.
import {
  type DDIHost,
  type DDIHostStatus,
  type DDIResource,
  type DhcpFailoverPeer,
  type DhcpFailoverPeerStatus,
  type HAPair,
  type HAPairStatus,
  type KeaHACluster,
  type KeaHAClusterStatus,
  durationToMs,
} from "../api/index.js";
import { type ApplyOptions, type ApplyResult, applyHostFiles } from "../apply/index.js";
import { type DhcpdOmapiKey, type FailoverSide, failoverPeerName, includeFilePath, planFailoverMaintenance } from "../daemons/dhcpd/index.js";
import { type KeaSwitchoverPlan, effectivePeers, isSwitchedOver, peerUrl, planKeaMaintenance, planKeaSwitchover } from "../daemons/kea/index.js";
import { keepalivedInstanceNames } from "../daemons/keepalived/index.js";
import { withOnly } from "./drift.js";
import { type FileDrift, driftFromProbes, hostNamesOf, probedSessionProvider } from "./host-probes.js";
import { gatherRenderInputs, groupByHost, omapiKeyFromIncludeFile, type SessionProvider, type VerifiedHostKey } from "./render-inputs.js";
import type { HostSession } from "../exec/host-io.js";
import type { RenderedFile } from "../render/types.js";
import {
  type DhcpFailoverSideObservation,
  type HostProbe,
  haPairNodeFromProbe,
  type PairRole,
  classifyHostFailure,
  observeDhcpFailoverSide,
  observeHAPairNode,
  observeHostFacts,
  type KeaCommandOutcome,
  type KeaPeerObservation,
  observeKeaPeer,
  observeServiceStates,
  sendKeaMaintenanceCommand,
  setDhcpFailoverLocalState,
} from "../observe/index.js";
import { hostsInNamespace, omapiKeyFromSet, omapiKeyName, type RenderInputs, renderManifestSet, resourceKey } from "../render/render-set.js";
import {
  type ApplyOutcome,
  type HAPairNodeInput,
  computeDDIHostStatus,
  computeDhcpFailoverPeerStatus,
  computeHAPairStatus,
  computeKeaHAClusterStatus,
  findCondition,
  requiredHAPairServices,
} from "../status/index.js";
import { maintenanceWasOn } from "../status/maintenance.js";
import type { FailoverMaintenanceObservation } from "../status/dhcpfailoverpeer.js";
import { describeResource, type ManifestSet, objectKey, type ValidationProblem } from "../validation/model.js";

export type RelationshipResource = HAPair | KeaHACluster | DhcpFailoverPeer;

export type ResourceStatus = DDIHostStatus | HAPairStatus | KeaHAClusterStatus | DhcpFailoverPeerStatus;

export interface ComputedStatus {
  resource: DDIResource;
  status: ResourceStatus;
  /**
   * The same observation against another previous status: a status write that met a newer
   * object (409) re-reads it and recomputes, so counters such as failoverCount never go back.
   */
  recompute?: (previous: unknown) => ResourceStatus;
}

/** What a pass remembers for the next one, beyond the statuses it wrote. */
export interface PassMemory {
  /** Per HAPair (`namespace/name`): the last node that held the VIP alone, to count moves through a gap. */
  lastHolders: Map<string, PairRole>;
}

export function newPassMemory(): PassMemory {
  return { lastHolders: new Map() };
}

export interface ReconcilePassOptions {
  /**
   * Apply the rendered files before observing: all relationships, none (observe only: the
   * previous ConfigApplied stands), or those the predicate picks.
   */
  apply: boolean | ((resource: RelationshipResource) => boolean);
  /** Asked right before anything is applied (leader election): false skips every apply of the pass. */
  mayApply?: () => boolean;
  /** Problems from validateManifests: a resource with an error is not applied and is Stalled. */
  problems?: readonly ValidationProblem[];
  /** The status each resource has now (from the API server), for lastTransitionTime and counters. */
  previousStatus?: (resource: DDIResource) => unknown;
  memory?: PassMemory;
  applyOptions?: ApplyOptions;
  now?: () => Date;
  /**
   * Each host's probe of this resync (see host-probes.ts). When given, every status is computed
   * from it (one exec per host), and each relationship not applied is checked for drift against
   * the hashes it brought: re-applied (spec.driftPolicy Correct) or reported.
   */
  probeOf?: (host: DDIHost) => Promise<HostProbe>;
  /** Called for each host an apply touched, so its next probe is taken afresh. */
  onHostApplied?: (host: DDIHost) => void;
  /**
   * With probeOf: apply every relationship whose files differ from what its spec renders, as an
   * apply the user asked for (`ddi-ha apply`), not as drift: no DriftCorrected, and whatever
   * spec.driftPolicy says. A relationship whose hosts already match costs no exec beyond the probe.
   */
  applyWhenDiffering?: boolean;
  /**
   * With probeOf: apply every relationship whose services an unfinished apply left owed a reload
   * on one of its hosts (see FileDrift.pendingReload), whatever its files look like, so the reload
   * is done and verified (or the files rolled back) before anything calls them in sync. Not when
   * a driftPolicy Report drift is there too: that apply would overwrite the hand edit, so both are
   * reported instead. Default: as applyWhenDiffering. Off for observe-only passes.
   */
  finishPendingReloads?: boolean;
  /**
   * Send the hand-over commands a DDIHost's spec.maintenance asks for (Kea's
   * ha-maintenance-start/-cancel, dhcpd's local-state through OMAPI), and their undo. Asked
   * again through mayApply right before each one. Default: unless the pass only observes
   * (apply false without applyWhenDiffering, as `ddi-ha status`).
   */
  maintenanceActions?: boolean;
}

export interface ReconcilePassResult {
  /** Per relationship (`namespace/name` of its kind): what the apply did; absent when not applied. */
  applied: Map<string, { resource: RelationshipResource; outcome: ApplyOutcome }>;
  statuses: ComputedStatus[];
}

function relationships(set: ManifestSet): RelationshipResource[] {
  return [...set.haPairs, ...set.failoverPeers, ...set.keaClusters];
}

const kindKey = (r: DDIResource): string => `${r.kind}/${resourceKey(r)}`;

function hostByName(set: ManifestSet, namespace: string, name: string): DDIHost | undefined {
  return set.hosts.get(objectKey(namespace, name));
}


/**
 * Applies every relationship on its own (its files only, on each of its hosts at once), so that
 * each status says what happened to that resource. Two relationships on one host take turns
 * through the engine's host lock.
 */
async function applyRelationships(
  set: ManifestSet,
  sessionOf: SessionProvider,
  wanted: (resource: RelationshipResource) => boolean,
  problems: readonly ValidationProblem[],
  options: ApplyOptions,
  inputsSessionOf: SessionProvider = sessionOf,
  onHostApplied?: (host: DDIHost) => void,
  /** DDIHost names to apply one after the other, in this order (a Kea switchover); others at once. */
  hostOrder?: (resource: RelationshipResource) => readonly string[] | undefined,
): Promise<ReconcilePassResult["applied"]> {
  const applied: ReconcilePassResult["applied"] = new Map();
  let inputs: RenderInputs = {};
  let inputsError: string | undefined;
  try {
    inputs = await gatherRenderInputs(set, inputsSessionOf);
  } catch (err) {
    inputsError = err instanceof Error ? err.message : String(err);
  }
  // Rendering the whole set once finds files two resources fight over.
  const whole = renderManifestSet(set, inputs);
  await Promise.all(
    relationships(set)
      .filter(wanted)
      .map(async (resource) => {
        const name = describeResource(resource);
        const own = problems.filter((p) => p.severity === "error" && p.resource === name);
        const format = (p: ValidationProblem) => `${p.path}: ${p.message}`;
        const references = own.filter((p) => p.kind === "reference").map(format);
        const specProblems = [
          ...own.filter((p) => p.kind !== "reference").map(format),
          // With a reference missing, the renderer fails on it too: that says nothing of the spec yet.
          ...(references.length > 0 ? [] : whole.failures.filter((f) => f.resource === name).map((f) => f.message)),
        ];
        if (specProblems.length > 0) {
          applied.set(kindKey(resource), { resource, outcome: { specProblems } });
          return;
        }
        if (references.length > 0) {
          applied.set(kindKey(resource), { resource, outcome: { unresolvedReferences: references } });
          return;
        }
        if (inputsError !== undefined) {
          applied.set(kindKey(resource), { resource, outcome: { errors: [{ host: "(render inputs)", message: inputsError }] } });
          return;
        }
        const rendered = renderManifestSet(withOnly(set, resource), inputs);
        if (rendered.failures.length > 0) {
          applied.set(kindKey(resource), { resource, outcome: { specProblems: rendered.failures.map((f) => f.message) } });
          return;
        }
        const results: ApplyResult[] = [];
        const errors: { host: string; message: string }[] = [];
        const applyOn = async ([hostKey, files]: [string, RenderedFile[]]) => {
          const host = set.hosts.get(hostKey)!;
          try {
            const session = await sessionOf(host);
            results.push(await applyHostFiles(session, files, { ...options, lockKey: `${host.spec.address}:${host.spec.port}` }));
            onHostApplied?.(host);
          } catch (err) {
            onHostApplied?.(host);
            errors.push({ host: host.metadata.name, message: err instanceof Error ? err.message : String(err) });
          }
        };
        const byHost = [...groupByHost(rendered.files).entries()];
        const order = hostOrder?.(resource);
        if (order) {
          // One after the other: the next host's daemon restarts only once this one's apply is verified.
          const rank = (key: string) => {
            const i = order.indexOf(set.hosts.get(key)?.metadata.name ?? "");
            return i === -1 ? order.length : i;
          };
          for (const entry of byHost.sort((a, b) => rank(a[0]) - rank(b[0]))) await applyOn(entry);
        } else {
          await Promise.all(byHost.map(applyOn));
        }
        applied.set(kindKey(resource), { resource, outcome: { results, errors } });
      }),
  );
  return applied;
}

/** A session, or the failure to get one, without throwing. */
async function trySession(sessionOf: SessionProvider, host: DDIHost | undefined, name: string): Promise<{ session?: HostSession; error?: unknown }> {
  if (!host) return { error: new Error(`DDIHost ${name} is not in the manifest set`) };
  try {
    return { session: await sessionOf(host) };
  } catch (error) {
    return { error };
  }
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A status and the way to compute it again over a newer previous status. */
function computed(resource: DDIResource, compute: (previous: unknown) => ResourceStatus, previous: unknown): ComputedStatus {
  return { resource, status: compute(previous), recompute: compute };
}

async function ddiHostStatus(
  host: DDIHost,
  sessionOf: SessionProvider,
  previous: DDIHostStatus | undefined,
  now: Date,
  probeOf?: (host: DDIHost) => Promise<HostProbe>,
): Promise<ComputedStatus> {
  const generation = host.metadata.generation ?? 0;
  let session: (HostSession & VerifiedHostKey) | undefined;
  // The key the session verified, not spec.hostKey: under TrustOnFirstUse there is none in the
  // spec, and recording it in status.observedHostKey is what pins it (see statusHostKeyPins).
  const verified = () => ({
    ...(session?.hostKeyFingerprint ? { hostKeyFingerprint: session.hostKeyFingerprint } : {}),
    ...(session?.observedHostKey && host.spec.hostKeyPolicy === "TrustOnFirstUse" ? { observedHostKey: session.observedHostKey } : {}),
  });
  try {
    session = await sessionOf(host);
    const facts = probeOf ? (await probeOf(host)).facts : await observeHostFacts(session);
    const observation = { host: host.metadata.name, reachable: true as const, facts, ...verified() };
    return computed(host, (p) => computeDDIHostStatus(observation, p as DDIHostStatus | undefined, generation, now, { maintenance: host.spec.maintenance === true }), previous);
  } catch (err) {
    const observation = { host: host.metadata.name, reachable: false as const, failure: classifyHostFailure(err), ...verified() };
    return computed(host, (p) => computeDDIHostStatus(observation, p as DDIHostStatus | undefined, generation, now, { maintenance: host.spec.maintenance === true }), previous);
  }
}

function unreachableNode(host: string, role: PairRole, iface: string, error: string): Omit<HAPairNodeInput, "services"> {
  return { host, role, interface: iface, reachable: false, error, keepalivedActive: false, vrrpState: "UNKNOWN", holdsVIP: false, interfaceFound: false };
}

async function haPairStatus(
  pair: HAPair,
  set: ManifestSet,
  sessionOf: SessionProvider,
  outcome: ApplyOutcome | undefined,
  previous: HAPairStatus | undefined,
  memory: PassMemory,
  now: Date,
  probeOf?: (host: DDIHost) => Promise<HostProbe>,
): Promise<ComputedStatus> {
  const ns = pair.metadata.namespace!;
  const required = requiredHAPairServices(pair.spec);
  const instance = keepalivedInstanceNames(pair).ipv4;
  const nodes = await Promise.all(
    (["primary", "secondary"] as const).map(async (role): Promise<HAPairNodeInput> => {
      const node = pair.spec[role];
      const { session, error } = await trySession(sessionOf, hostByName(set, ns, node.host), node.host);
      if (!session) return { ...unreachableNode(node.host, role, node.interface, messageOf(error)), services: [] };
      const target = { role, interface: node.interface, vip: pair.spec.virtualIP, instance };
      if (probeOf) {
        try {
          const probe = await probeOf(hostByName(set, ns, node.host)!);
          return { ...haPairNodeFromProbe(probe, target), services: probe.facts.services.filter((s) => required.includes(s.name)) };
        } catch (err) {
          return { ...unreachableNode(node.host, role, node.interface, messageOf(err)), services: [] };
        }
      }
      const [observed, services] = await Promise.all([
        observeHAPairNode(session, target),
        observeServiceStates(session, required).catch(() => []),
      ]);
      return { ...observed, services };
    }),
  );
  const key = resourceKey(pair);
  const observation = {
    vip: pair.spec.virtualIP,
    nodes,
    requiredServices: required,
    preempt: pair.spec.preempt,
    preferredNode: pair.spec.preferredNode,
    maintenance: (["primary", "secondary"] as const).filter((role) => hostByName(set, ns, pair.spec[role].host)?.spec.maintenance === true),
    ...(memory.lastHolders.has(key) ? { lastHolder: memory.lastHolders.get(key)! } : {}),
  };
  const result = computed(pair, (p) => computeHAPairStatus(observation, outcome, p as HAPairStatus | undefined, pair.metadata.generation ?? 0, now), previous);
  const active = (result.status as HAPairStatus).activeNode;
  if (active === "primary" || active === "secondary") memory.lastHolders.set(key, active);
  return result;
}

/** The OMAPI key the observer needs: the Secret's, else the one the operator wrote on the primary. */
async function omapiKeyFor(peer: DhcpFailoverPeer, set: ManifestSet, session: HostSession | undefined): Promise<DhcpdOmapiKey | undefined> {
  const fromSet = omapiKeyFromSet(set, peer);
  if (fromSet || !session) return fromSet;
  const text = await session.readFile(includeFilePath(peer.spec, failoverPeerName(peer))).catch(() => undefined);
  return text ? omapiKeyFromIncludeFile(text, omapiKeyName(peer)) : undefined;
}

async function failoverPeerStatus(
  peer: DhcpFailoverPeer,
  set: ManifestSet,
  sessionOf: SessionProvider,
  outcome: ApplyOutcome | undefined,
  previous: DhcpFailoverPeerStatus | undefined,
  now: Date,
  mayAct: () => boolean,
  probeOf?: (host: DDIHost) => Promise<HostProbe>,
): Promise<ComputedStatus> {
  const ns = peer.metadata.namespace!;
  const peerName = failoverPeerName(peer);
  const primary = await trySession(sessionOf, hostByName(set, ns, peer.spec.primary.host), peer.spec.primary.host);
  const key = await omapiKeyFor(peer, set, primary.session);
  const side = async (role: "primary" | "secondary", s: { session?: HostSession; error?: unknown }): Promise<DhcpFailoverSideObservation> => {
    const host = peer.spec[role].host;
    if (!s.session) return { host, reachable: false, error: messageOf(s.error), source: "none", dhcpdActive: false, pools: [] };
    if (!key) {
      return {
        host,
        reachable: true,
        source: "none",
        omapiError: `no OMAPI key: spec.omapi.keySecretRef is unset and ${includeFilePath(peer.spec, peerName)} on the primary has none`,
        dhcpdActive: false,
        pools: [],
      };
    }
    let probe: HostProbe | undefined;
    if (probeOf) {
      try {
        probe = await probeOf(hostByName(set, ns, host)!);
      } catch (err) {
        return { host, reachable: false, error: messageOf(err), source: "none", dhcpdActive: false, pools: [] };
      }
    }
    return observeDhcpFailoverSide(s.session, { peerName, omapiPort: peer.spec.omapi.port, key, ...(probe ? { probe } : {}) });
  };
  const secondary = await trySession(sessionOf, hostByName(set, ns, peer.spec.secondary.host), peer.spec.secondary.host);
  const observeBoth = () => Promise.all([side("primary", primary), side("secondary", secondary)]);
  let [p, s] = await observeBoth();
  // DDIHost spec.maintenance: with maintenancePartnerDown, hand the side's clients over through OMAPI (and back).
  const resting = (["primary", "secondary"] as const).filter((role) => hostByName(set, ns, peer.spec[role].host)?.spec.maintenance === true);
  const undoing = maintenanceWasOn(findCondition(previous?.conditions, "Maintenance"));
  let maintenance: FailoverMaintenanceObservation | undefined;
  if (resting.length > 0 || undoing) {
    const plan = () => {
      const view = (role: FailoverSide, o: DhcpFailoverSideObservation) => ({
        host: o.host,
        inMaintenance: resting.includes(role),
        live: o.reachable && o.dhcpdActive && o.source === "omapi",
        state: o.localState ?? "unknown",
      });
      return planFailoverMaintenance({ primary: view("primary", p), secondary: view("secondary", s) }, peer.spec.maintenancePartnerDown, undoing);
    };
    let planned = plan();
    let done: FailoverMaintenanceObservation["set"];
    if (planned.set && key && mayAct()) {
      const { side: role, state } = planned.set;
      const session = (role === "primary" ? primary : secondary).session;
      const result = session
        ? await setDhcpFailoverLocalState(session, { peerName, omapiPort: peer.spec.omapi.port, key }, state)
        : { ok: false as const, error: messageOf((role === "primary" ? primary : secondary).error) };
      done = result.ok ? { side: role, state, ok: true } : { side: role, state, ok: false, error: result.error };
      [p, s] = await observeBoth();
      planned = plan();
    }
    maintenance = { sides: resting, plan: planned, ...(done ? { set: done } : {}) };
  }
  const observation = { peerName, primary: p, secondary: s, mcltSeconds: Math.round(durationToMs(peer.spec.mclt) / 1000), ...(maintenance ? { maintenance } : {}) };
  return computed(peer, (prev) => computeDhcpFailoverPeerStatus(observation, outcome, prev as DhcpFailoverPeerStatus | undefined, peer.metadata.generation ?? 0, now), previous);
}

/** Each peer of a cluster reached through its own host, and all of them observed (status-get). */
function keaPeers(cluster: KeaHACluster, set: ManifestSet, sessionOf: SessionProvider) {
  const ns = cluster.metadata.namespace!;
  const hosts = hostsInNamespace(set, ns);
  // The roles the spec now renders: swapped after a planned switchover (spec.preferredPrimary).
  const roles = effectivePeers(cluster.spec);
  const reach = async (index: number): Promise<{ session?: HostSession; url?: string; error?: string }> => {
    const peer = cluster.spec.peers[index]!;
    const { session, error } = await trySession(sessionOf, hostByName(set, ns, peer.host), peer.host);
    try {
      const url = peerUrl(cluster, hosts, index);
      return session ? { session, url } : { error: messageOf(error) };
    } catch (err) {
      return { error: messageOf(err) };
    }
  };
  const observeAll = () =>
    Promise.all(
      cluster.spec.peers.map(async (peer, index): Promise<KeaPeerObservation> => {
        const role = roles[index]!.role;
        const { session, url, error } = await reach(index);
        if (!session || !url) return { name: peer.name, host: peer.host, role, reachable: false, state: "unavailable", error: error ?? "no session" };
        return observeKeaPeer(session, { name: peer.name, role, url });
      }),
    );
  const send = async (command: KeaCommandOutcome["command"], peerName: string): Promise<KeaCommandOutcome> => {
    const index = cluster.spec.peers.findIndex((p) => p.name === peerName);
    const { session, url, error } = await reach(index);
    return session && url
      ? sendKeaMaintenanceCommand(session, { name: peerName, role: roles[index]!.role, url }, command)
      : { command, peer: peerName, ok: false, text: error ?? "no session" };
  };
  const inMaintenance = () => cluster.spec.peers.filter((p) => hostByName(set, ns, p.host)?.spec.maintenance === true).map((p) => p.name);
  return { observeAll, send, inMaintenance };
}

/** What the switchover step before an apply did (ADR 0033): a hand-over sent, the apply held, or the hosts' order. */
export interface KeaSwitchoverPrep {
  plan: KeaSwitchoverPlan;
  sent?: KeaCommandOutcome;
  /** Set when the apply must wait: ConfigApplied False with this reason, retried next pass. */
  hold?: { reason: string; message: string };
  order?: string[];
  /** When this step began: a switchover done within one pass is timed from here. */
  startedAt: Date;
}

const switchoverInProgress = (previous: KeaHAClusterStatus | undefined) => findCondition(previous?.conditions, "Switchover")?.status === "True";
const toSwitchoverPeers = (peers: readonly KeaPeerObservation[]) =>
  peers.map((p) => ({ name: p.name, host: p.host, role: p.role, reachable: p.reachable, state: p.state, ...(p.runningRole ? { runningRole: p.runningRole } : {}) }));

/** How long the step before an apply waits for the new primary to answer every client after ha-maintenance-start. */
const HAND_OVER_WAIT_MS = 10_000;

/**
 * Before a hot-standby cluster's configs are applied: when they change the running roles, hand
 * every client to the new primary first (ha-maintenance-start), then let the apply go one host at
 * a time, the old primary first. Holds the apply while that is not possible yet.
 */
async function prepareKeaSwitchover(
  cluster: KeaHACluster,
  set: ManifestSet,
  sessionOf: SessionProvider,
  previous: KeaHAClusterStatus | undefined,
  mayAct: () => boolean,
): Promise<KeaSwitchoverPrep> {
  const startedAt = new Date();
  const { observeAll, send, inMaintenance } = keaPeers(cluster, set, sessionOf);
  const plan = async () => planKeaSwitchover(toSwitchoverPeers(await observeAll()), switchoverInProgress(previous), inMaintenance().length > 0);
  let planned = await plan();
  let sent: KeaCommandOutcome | undefined;
  if (planned.phase === "HandingOver" && planned.send && mayAct()) {
    sent = await send(planned.send.command, planned.send.peer);
    // ha-maintenance-start returns once the partner is in in-maintenance; the new primary's own move follows at once.
    const deadline = Date.now() + HAND_OVER_WAIT_MS;
    do {
      planned = await plan();
      if (planned.phase !== "HandingOver" || !sent.ok) break;
      await new Promise((r) => setTimeout(r, 250));
    } while (Date.now() < deadline);
  }
  const base = { plan: planned, startedAt, ...(sent ? { sent } : {}) };
  if (planned.phase === "Applying") return { ...base, order: planned.order ?? [] };
  if (planned.phase === "Waiting" || planned.phase === "HandingOver") {
    const refused = sent && !sent.ok ? `; ${sent.command} to ${sent.peer} was refused: ${sent.text}` : "";
    return { ...base, hold: { reason: "SwitchoverPending", message: `${planned.why}${refused}` } };
  }
  return base;
}

async function keaClusterStatus(
  cluster: KeaHACluster,
  set: ManifestSet,
  sessionOf: SessionProvider,
  outcome: ApplyOutcome | undefined,
  previous: KeaHAClusterStatus | undefined,
  now: Date,
  mayAct: () => boolean,
  prep: KeaSwitchoverPrep | undefined,
): Promise<ComputedStatus> {
  const { observeAll, send, inMaintenance } = keaPeers(cluster, set, sessionOf);
  let peers = await observeAll();
  // DDIHost spec.maintenance: hand the peer's clients over (or back) before anything stops.
  const resting = inMaintenance();
  const undoing = maintenanceWasOn(findCondition(previous?.conditions, "Maintenance"));
  let maintenance;
  if (resting.length > 0 || undoing) {
    const plan = () => planKeaMaintenance(cluster.spec.mode, peers, new Set(resting), undoing);
    let planned = plan();
    let sent: KeaCommandOutcome | undefined;
    if (planned.send && mayAct()) {
      sent = await send(planned.send.command, planned.send.peer);
      peers = await observeAll();
      planned = plan();
    }
    maintenance = { peers: resting, plan: planned, ...(sent ? { sent } : {}) };
  }
  // A planned switchover (ADR 0033): after the apply, end the maintenance state it left and time it.
  let switchover;
  if (cluster.spec.mode === "hot-standby" && !maintenance) {
    const inProgress = switchoverInProgress(previous) || (prep !== undefined && prep.plan.phase !== "Idle");
    const plan = () => planKeaSwitchover(toSwitchoverPeers(peers), inProgress, false);
    let planned = plan();
    let sent = prep?.sent;
    if (planned.phase === "Finishing" && planned.send && mayAct()) {
      sent = await send(planned.send.command, planned.send.peer);
      peers = await observeAll();
      planned = plan();
    }
    switchover = { plan: planned, swapped: isSwitchedOver(cluster.spec), ...(sent ? { sent } : {}), ...(prep?.hold ? { held: prep.hold.message } : {}), ...(prep && prep.plan.phase !== "Idle" ? { startedAt: prep.startedAt } : {}) };
  }
  const observation = { mode: cluster.spec.mode, configSync: cluster.spec.configSync, peers, ...(maintenance ? { maintenance } : {}), ...(switchover ? { switchover } : {}) };
  return computed(cluster, (p) => computeKeaHAClusterStatus(observation, outcome, p as KeaHAClusterStatus | undefined, cluster.metadata.generation ?? 0, now), previous);
}

/**
 * The drift check of one relationship that this pass does not apply for its spec: render it with
 * inputs read from the probes and compare with the hashes they brought. Undefined when the
 * render fails (the resource's spec problems stand as the pass that found them wrote them).
 */
async function checkDrift(
  set: ManifestSet,
  resource: RelationshipResource,
  inputsSessionOf: SessionProvider,
  probeOf: (host: DDIHost) => Promise<HostProbe>,
): Promise<{ drift: FileDrift } | { errors: { host: string; message: string }[] } | undefined> {
  const only = withOnly(set, resource);
  const ns = resource.metadata.namespace!;
  const probes = new Map<string, HostProbe>();
  const errors: { host: string; message: string }[] = [];
  await Promise.all(
    hostNamesOf(resource).map(async (name) => {
      const host = hostByName(set, ns, name);
      if (!host) return;
      try {
        probes.set(name, await probeOf(host));
      } catch (err) {
        errors.push({ host: name, message: messageOf(err) });
      }
    }),
  );
  if (errors.length > 0) return { errors };
  let rendered;
  try {
    rendered = renderManifestSet(only, await gatherRenderInputs(only, inputsSessionOf));
  } catch (err) {
    return { errors: [{ host: "(render inputs)", message: messageOf(err) }] };
  }
  if (rendered.failures.length > 0) return undefined;
  return { drift: driftFromProbes(rendered.files, (name) => probes.get(name)) };
}

/**
 * One pass: apply (optionally), then observe every DDIHost and relationship in parallel and
 * compute their statuses. Never throws for a host that cannot be reached: that is a status.
 */
export async function reconcilePass(set: ManifestSet, sessionOf: SessionProvider, options: ReconcilePassOptions): Promise<ReconcilePassResult> {
  const now = options.now ?? (() => new Date());
  const memory = options.memory ?? newPassMemory();
  const previousOf = <T>(r: DDIResource): T | undefined => options.previousStatus?.(r) as T | undefined;
  const wanted = typeof options.apply === "function" ? options.apply : () => options.apply === true;
  const probeOf = options.probeOf;
  const inputsSessionOf = probeOf ? probedSessionProvider(sessionOf, probeOf) : sessionOf;
  const problems = options.problems ?? [];
  const finishPendingReloads = options.finishPendingReloads ?? options.applyWhenDiffering ?? false;

  // Every relationship not applied for its spec is checked against its hosts' probes.
  const drifts = new Map<string, { resource: RelationshipResource; outcome: ApplyOutcome }>();
  const correcting = new Set<string>();
  const following = new Set<string>();
  if (probeOf) {
    const ownErrors = new Set(problems.filter((p) => p.severity === "error").map((p) => p.resource));
    await Promise.all(
      relationships(set)
        .filter((r) => !wanted(r) && !ownErrors.has(describeResource(r)))
        .map(async (resource) => {
          const checked = await checkDrift(set, resource, inputsSessionOf, probeOf);
          if (!checked) return;
          if ("errors" in checked) return drifts.set(kindKey(resource), { resource, outcome: { errors: checked.errors } });
          const drift = { ...checked.drift, policy: options.applyWhenDiffering ? ("Correct" as const) : resource.spec.driftPolicy };
          if (drift.differing.length > 0 && drift.policy === "Correct") correcting.add(kindKey(resource));
          // A DDIHost's maintenance changed: its flag is applied, whatever the driftPolicy; no drift.
          if (drift.control.length > 0) following.add(kindKey(resource));
          const reportedDrift = drift.differing.length > 0 && drift.policy === "Report";
          if (drift.pendingReload.length > 0 && finishPendingReloads && !reportedDrift) correcting.add(kindKey(resource));
          // The user's own apply of a differing file is an apply, not a drift correction.
          if (options.applyWhenDiffering && drift.differing.length > 0) return;
          drifts.set(kindKey(resource), { resource, outcome: { drift } });
        }),
    );
  }

  const acting = options.maintenanceActions ?? (options.apply !== false || options.applyWhenDiffering === true);
  const mayAct = () => acting && (options.mayApply?.() ?? true);
  const willApply = (r: RelationshipResource) => wanted(r) || correcting.has(kindKey(r)) || following.has(kindKey(r));
  // A hot-standby cluster about to be applied may change the running roles (spec.preferredPrimary):
  // the clients go to the new primary first, and the hosts are applied one at a time (ADR 0033).
  const switchovers = new Map<string, KeaSwitchoverPrep>();
  const ownErrors = new Set(problems.filter((p) => p.severity === "error").map((p) => p.resource));
  if (options.mayApply?.() ?? true) {
    await Promise.all(
      set.keaClusters
        .filter((c) => c.spec.mode === "hot-standby" && willApply(c) && !ownErrors.has(describeResource(c)))
        .map(async (c) => switchovers.set(kindKey(c), await prepareKeaSwitchover(c, set, sessionOf, previousOf<KeaHAClusterStatus>(c), mayAct))),
    );
  }
  const applying = (r: RelationshipResource) => willApply(r) && !switchovers.get(kindKey(r))?.hold;
  // Asked at the last moment: a controller that lost its leader Lease during the probes applies nothing.
  const applied = relationships(set).some(applying) && (options.mayApply?.() ?? true)
    ? await applyRelationships(set, sessionOf, applying, problems, options.applyOptions ?? {}, inputsSessionOf, options.onHostApplied, (r) => switchovers.get(kindKey(r))?.order)
    : new Map<string, { resource: RelationshipResource; outcome: ApplyOutcome }>();
  for (const [key, prep] of switchovers) {
    const cluster = set.keaClusters.find((c) => kindKey(c) === key);
    if (prep.hold && cluster) applied.set(key, { resource: cluster, outcome: { deferred: prep.hold } });
  }
  for (const [key, checked] of drifts) {
    const apply = applied.get(key);
    applied.set(key, apply ? { resource: apply.resource, outcome: { ...apply.outcome, ...(checked.outcome.drift ? { drift: checked.outcome.drift } : {}) } } : checked);
  }
  const outcomeOf = (r: RelationshipResource): ApplyOutcome | undefined => applied.get(kindKey(r))?.outcome;

  const statuses = await Promise.all<ComputedStatus>([
    ...[...set.hosts.values()].map((h) => ddiHostStatus(h, sessionOf, previousOf(h), now(), probeOf)),
    ...set.haPairs.map((p) => haPairStatus(p, set, sessionOf, outcomeOf(p), previousOf(p), memory, now(), probeOf)),
    ...set.failoverPeers.map((p) => failoverPeerStatus(p, set, probeOf ? inputsSessionOf : sessionOf, outcomeOf(p), previousOf(p), now(), mayAct, probeOf)),
    ...set.keaClusters.map((c) => keaClusterStatus(c, set, sessionOf, outcomeOf(c), previousOf(c), now(), mayAct, switchovers.get(kindKey(c)))),
  ]);
  return { applied, statuses };
}
