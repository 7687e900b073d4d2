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
import { type DhcpdOmapiKey, failoverPeerName, includeFilePath } from "../daemons/dhcpd/index.js";
import { peerUrl } from "../daemons/kea/index.js";
import { keepalivedInstanceNames } from "../daemons/keepalived/index.js";
import { withOnly } from "./drift.js";
import { gatherRenderInputs, groupByHost, omapiKeyFromIncludeFile, type SessionProvider, type VerifiedHostKey } from "./render-inputs.js";
import type { HostSession } from "../exec/host-io.js";
import {
  type DhcpFailoverSideObservation,
  type PairRole,
  classifyHostFailure,
  observeDhcpFailoverSide,
  observeHAPairNode,
  observeHostFacts,
  observeKeaPeer,
  observeServiceStates,
} from "../observe/index.js";
import { hostsInNamespace, omapiKeyFromSet, omapiKeyName, type RenderInputs, renderManifestSet, resourceKey } from "../render/render-set.js";
import {
  type ApplyOutcome,
  type HAPairNodeInput,
  computeDDIHostStatus,
  computeDhcpFailoverPeerStatus,
  computeHAPairStatus,
  computeKeaHAClusterStatus,
  requiredHAPairServices,
} from "../status/index.js";
import { describeResource, type ManifestSet, objectKey, type ValidationProblem } from "../validation/model.js";

export type RelationshipResource = HAPair | KeaHACluster | DhcpFailoverPeer;

export type ResourceStatus = DDIHostStatus | HAPairStatus | KeaHAClusterStatus | DhcpFailoverPeerStatus;

export interface ComputedStatus {
  resource: DDIResource;
  status: ResourceStatus;
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
  /** Problems from validateManifests: a resource with an error is not applied and is Stalled. */
  problems?: readonly ValidationProblem[];
  /** The status each resource has now (from the API server), for lastTransitionTime and counters. */
  previousStatus?: (resource: DDIResource) => unknown;
  memory?: PassMemory;
  applyOptions?: ApplyOptions;
  now?: () => Date;
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
): Promise<ReconcilePassResult["applied"]> {
  const applied: ReconcilePassResult["applied"] = new Map();
  let inputs: RenderInputs = {};
  let inputsError: string | undefined;
  try {
    inputs = await gatherRenderInputs(set, sessionOf);
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
        await Promise.all(
          [...groupByHost(rendered.files).entries()].map(async ([hostKey, files]) => {
            const host = set.hosts.get(hostKey)!;
            try {
              const session = await sessionOf(host);
              results.push(await applyHostFiles(session, files, { ...options, lockKey: `${host.spec.address}:${host.spec.port}` }));
            } catch (err) {
              errors.push({ host: host.metadata.name, message: err instanceof Error ? err.message : String(err) });
            }
          }),
        );
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

async function ddiHostStatus(host: DDIHost, sessionOf: SessionProvider, previous: DDIHostStatus | undefined, now: Date): Promise<DDIHostStatus> {
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
    const facts = await observeHostFacts(session);
    return computeDDIHostStatus({ host: host.metadata.name, reachable: true, facts, ...verified() }, previous, generation, now);
  } catch (err) {
    return computeDDIHostStatus({ host: host.metadata.name, reachable: false, failure: classifyHostFailure(err), ...verified() }, previous, generation, now);
  }
}

async function haPairStatus(
  pair: HAPair,
  set: ManifestSet,
  sessionOf: SessionProvider,
  outcome: ApplyOutcome | undefined,
  previous: HAPairStatus | undefined,
  memory: PassMemory,
  now: Date,
): Promise<HAPairStatus> {
  const ns = pair.metadata.namespace!;
  const required = requiredHAPairServices(pair.spec);
  const instance = keepalivedInstanceNames(pair).ipv4;
  const nodes = await Promise.all(
    (["primary", "secondary"] as const).map(async (role): Promise<HAPairNodeInput> => {
      const node = pair.spec[role];
      const { session, error } = await trySession(sessionOf, hostByName(set, ns, node.host), node.host);
      if (!session) {
        return {
          host: node.host,
          role,
          interface: node.interface,
          reachable: false,
          error: messageOf(error),
          keepalivedActive: false,
          vrrpState: "UNKNOWN",
          holdsVIP: false,
          interfaceFound: false,
          services: [],
        };
      }
      const [observed, services] = await Promise.all([
        observeHAPairNode(session, { role, interface: node.interface, vip: pair.spec.virtualIP, instance }),
        observeServiceStates(session, required).catch(() => []),
      ]);
      return { ...observed, services };
    }),
  );
  const key = resourceKey(pair);
  const status = computeHAPairStatus(
    {
      vip: pair.spec.virtualIP,
      nodes,
      requiredServices: required,
      preempt: pair.spec.preempt,
      ...(memory.lastHolders.has(key) ? { lastHolder: memory.lastHolders.get(key)! } : {}),
    },
    outcome,
    previous,
    pair.metadata.generation ?? 0,
    now,
  );
  if (status.activeNode === "primary" || status.activeNode === "secondary") memory.lastHolders.set(key, status.activeNode);
  return status;
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
): Promise<DhcpFailoverPeerStatus> {
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
    return observeDhcpFailoverSide(s.session, { peerName, omapiPort: peer.spec.omapi.port, key });
  };
  const secondary = await trySession(sessionOf, hostByName(set, ns, peer.spec.secondary.host), peer.spec.secondary.host);
  const [p, s] = await Promise.all([side("primary", primary), side("secondary", secondary)]);
  return computeDhcpFailoverPeerStatus(
    { peerName, primary: p, secondary: s, mcltSeconds: Math.round(durationToMs(peer.spec.mclt) / 1000) },
    outcome,
    previous,
    peer.metadata.generation ?? 0,
    now,
  );
}

async function keaClusterStatus(
  cluster: KeaHACluster,
  set: ManifestSet,
  sessionOf: SessionProvider,
  outcome: ApplyOutcome | undefined,
  previous: KeaHAClusterStatus | undefined,
  now: Date,
): Promise<KeaHAClusterStatus> {
  const ns = cluster.metadata.namespace!;
  const hosts = hostsInNamespace(set, ns);
  const peers = await Promise.all(
    cluster.spec.peers.map(async (peer, index) => {
      const { session, error } = await trySession(sessionOf, hostByName(set, ns, peer.host), peer.host);
      let url: string;
      try {
        url = peerUrl(cluster, hosts, index);
      } catch (err) {
        return { name: peer.name, host: peer.host, role: peer.role, reachable: false, state: "unavailable", error: messageOf(err) };
      }
      if (!session) return { name: peer.name, host: peer.host, role: peer.role, reachable: false, state: "unavailable", error: messageOf(error) };
      return observeKeaPeer(session, { name: peer.name, role: peer.role, url });
    }),
  );
  return computeKeaHAClusterStatus(
    { mode: cluster.spec.mode, configSync: cluster.spec.configSync, peers },
    outcome,
    previous,
    cluster.metadata.generation ?? 0,
    now,
  );
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
  const applied = relationships(set).some(wanted)
    ? await applyRelationships(set, sessionOf, wanted, options.problems ?? [], options.applyOptions ?? {})
    : new Map<string, { resource: RelationshipResource; outcome: ApplyOutcome }>();
  const outcomeOf = (r: RelationshipResource): ApplyOutcome | undefined => applied.get(kindKey(r))?.outcome;

  const statuses = await Promise.all<ComputedStatus>([
    ...[...set.hosts.values()].map(async (h) => ({ resource: h, status: await ddiHostStatus(h, sessionOf, previousOf(h), now()) })),
    ...set.haPairs.map(async (p) => ({ resource: p, status: await haPairStatus(p, set, sessionOf, outcomeOf(p), previousOf(p), memory, now()) })),
    ...set.failoverPeers.map(async (p) => ({ resource: p, status: await failoverPeerStatus(p, set, sessionOf, outcomeOf(p), previousOf(p), now()) })),
    ...set.keaClusters.map(async (c) => ({ resource: c, status: await keaClusterStatus(c, set, sessionOf, outcomeOf(c), previousOf(c), now()) })),
  ]);
  return { applied, statuses };
}
