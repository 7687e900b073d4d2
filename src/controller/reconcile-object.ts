// One controller reconcile of ONE object (kind/namespace/name): its finalizers, then a
// reconcilePass over that object alone (a relationship and its own hosts, or a DDIHost), with
// statuses from each host's probe and cross-object rules computed from the watchers' caches of
// its namespace, with no I/O. Only the object's own status is written. See ADR 0015.
import type { Logger } from "pino";
import type { DDIHost, DDIResource } from "../api/index.js";
import type { ApplyOptions } from "../apply/index.js";
import { type KubeItem, indexItems, itemsAsDocuments, kubeItemKey, needsApply, pinsFromStatus, statusPatchIfChanged } from "../engine/kube-status.js";
import { type ComputedStatus, type PassMemory, reconcilePass } from "../engine/reconcile-pass.js";
import { hostNamesOf } from "../engine/host-probes.js";
import { withOnly } from "../engine/drift.js";
import type { HostProbe } from "../observe/index.js";
import type { SessionProvider } from "../engine/render-inputs.js";
import { manifestSessionProvider } from "../engine/sessions.js";
import type { SshTransport } from "../ssh/index.js";
import { isTrue, setCondition } from "../status/index.js";
import { transitionEvents } from "../status/transition-events.js";
import { type ValidatedSet, validateObjects, withSecrets } from "../validation/validate.js";
import { invalidSpecLines, invalidSpecStatus } from "./invalid-spec-status.js";
import {
  type AbandonedHost,
  CLEANUP_FINALIZER,
  CLEANUP_KINDS,
  IN_USE_FINALIZER as IN_USE,
  addingFinalizer,
  hostsInUse,
  inUseFinalizerChange,
  removingFinalizer,
} from "./finalizer.js";
import { type KubeClient, kubeErrorMessage, statusCodeOf } from "./kube-client.js";
import { removeRelationshipFromHosts, stoppedMessage } from "./relationship-removal.js";
import type { ControllerMetrics } from "./metrics.js";
import { type EventRecorder, regardingOf } from "./events.js";

export interface ObjectReconcilerDeps {
  client: KubeClient;
  transport: SshTransport;
  /** The namespace's ddi-ha objects as the watchers' caches hold them. */
  objectsIn(namespace: string): KubeItem[];
  /**
   * Those objects validated without Secrets, as of the same cache state: the controller keeps one
   * per namespace until one of them changes. Without it, each pass validates them itself.
   */
  validated?(namespace: string): ValidatedSet;
  /** What passes remember between them (the last VIP holder of each pair). */
  memory: PassMemory;
  /** A Secret of the namespace (cached briefly by the controller), undefined when it does not exist. */
  readSecret(namespace: string, name: string): Promise<KubeItem | undefined>;
  /** The host's probe for this pass: the controller's shared cache decides whether to take a new one. */
  probeOf(host: DDIHost, sessionOf: SessionProvider): Promise<HostProbe>;
  /** The API server's answer to a write of this pass (status, finalizers): the caches take it at once. */
  onWritten?(item: KubeItem): void;
  /** An apply touched the host: its next probe must be fresh. */
  onHostApplied?(host: DDIHost): void;
  /** False on a follower (leader election): nothing is written, neither to hosts nor to the API. */
  canWrite?(): boolean;
  metrics: ControllerMetrics;
  /** Where the pass's transition Events go (the leader's only, like every other write). */
  events?: Pick<EventRecorder, "record">;
  log: Logger;
  applyOptions?: ApplyOptions;
  now?: () => Date;
  /**
   * The last values read of each Secret the namespaces' objects name (`namespace/name` → Secret),
   * kept while an object names it: a pair deleted together with its credentials is still taken
   * off its hosts. Used for those cleanups only, never for a live pass.
   */
  secretCache?: Map<string, KubeItem>;
}

export interface ObjectOutcome {
  /** False when the object is not in the cache (deleted): nothing was done. */
  exists: boolean;
  /** The object's status as computed by this pass (for metrics and the caller's decisions). */
  computed?: ComputedStatus;
  /** Files this pass found drifted (`host:path`) and whether it corrected them. */
  drift?: { differing: readonly string[]; corrected: boolean };
  /** What failed that a retry may fix (API writes, cleanups on hosts); also in the statuses where it belongs. */
  errors: string[];
  /** Resources neither Ready nor Stalled: worth another look soon. */
  waiting: string[];
  statusesWritten: number;
}

/** The warning a pair deleted without reaching some of its hosts leaves in its last status and the log. */
export function abandonedMessage(abandoned: readonly AbandonedHost[], daemon = "keepalived"): string {
  return `deleted without cleaning up ${abandoned.map((a) => `${a.host} (${a.why}; left on it: ${a.files.join(", ")})`).join("; ")}: remove those files by hand and reload ${daemon}`;
}

const DAEMON_OF: Record<string, string> = { HAPair: "keepalived", KeaHACluster: "kea-dhcp4", DhcpFailoverPeer: "isc-dhcp-server" };

type Named = { kind: string; metadata: { name: string; namespace?: string | undefined } };
const keyOf = kubeItemKey;
const label = (r: Named) => `${r.kind} ${r.metadata.name}`;

/** The DDIHost names an object from the cache uses; none when its spec is not even shaped right (validation says why). */
export function hostNamesOfItem(item: KubeItem): string[] {
  try {
    return hostNamesOf(item as unknown as DDIResource).filter((n): n is string => typeof n === "string");
  } catch {
    return [];
  }
}

/** The Secrets the namespace's objects name: SSH credentials and OMAPI keys. */
export function referencedSecretNames(items: readonly KubeItem[]): string[] {
  const names = new Set<string>();
  for (const item of items) {
    const spec = (item.spec ?? {}) as { credentialsSecretRef?: { name?: string }; omapi?: { keySecretRef?: { name?: string } } };
    if (item.kind === "DDIHost" && spec.credentialsSecretRef?.name) names.add(spec.credentialsSecretRef.name);
    if (item.kind === "DhcpFailoverPeer" && spec.omapi?.keySecretRef?.name) names.add(spec.omapi.keySecretRef.name);
  }
  return [...names].sort();
}

/** Resources that are not Ready yet and not Stalled: the ones a sooner pass may see settle. */
export function waitingResources(statuses: readonly ComputedStatus[]): string[] {
  return statuses
    .filter(({ status }) => !isTrue(status.conditions, "Ready") && !isTrue(status.conditions, "Stalled"))
    .map(({ resource }) => label(resource));
}

export async function reconcileObject(key: string, deps: ObjectReconcilerDeps): Promise<ObjectOutcome> {
  const { client, log } = deps;
  const now = deps.now ?? (() => new Date());
  const cache = deps.secretCache ?? new Map<string, KubeItem>();
  const namespace = key.split("/")[1] ?? "default";
  const cachePrefix = `${namespace}/`;
  let items = deps.objectsIn(namespace);
  // Taken with the items, so both are of one cache state; finalizer patches below change no rule's input.
  const validatedObjects = deps.validated?.(namespace) ?? validateObjects(itemsAsDocuments(items, "kube-apiserver"));
  const focusOf = (list: readonly KubeItem[]) => list.find((i) => keyOf(i) === key);
  if (!focusOf(items)) return { exists: false, errors: [], waiting: [], statusesWritten: 0 };
  // A follower (or a leader that lost its Lease mid-pass) writes nothing, to hosts or to the API:
  // checked before every write, not once per pass.
  const mayWrite = deps.canWrite ?? (() => true);
  if (!mayWrite()) return { exists: true, errors: [], waiting: [], statusesWritten: 0 };
  const focusHosts = new Set(hostNamesOfItem(focusOf(items)!));
  // The Secrets this object's pass needs: its hosts' credentials and, for a failover peer, its OMAPI key.
  const needed = items.filter((i) => keyOf(i) === key || (i.kind === "DDIHost" && focusHosts.has(i.metadata.name)));
  const errors: string[] = [];
  // A Secret we may not read (RBAC, say) is left out: the hosts that need it report why, and the pass is retried.
  const unreadable = new Map<string, string>();
  // Secrets the API server says do not exist (404).
  const missing = new Set<string>();
  const secrets = (
    await Promise.all(
      referencedSecretNames(needed).map((name) =>
        deps.readSecret(namespace, name).then(
          (secret) => {
            if (secret) cache.set(`${cachePrefix}${name}`, secret);
            else missing.add(name);
            return secret;
          },
          (err: unknown) => {
            unreadable.set(name, kubeErrorMessage(err));
            errors.push(`Secret ${name}: cannot read it: ${kubeErrorMessage(err)}`);
            return undefined;
          },
        ),
      ),
    )
  ).filter((s) => s !== undefined);

  const withMetadata = (item: KubeItem, updated: KubeItem): KubeItem => ({ ...item, metadata: { ...item.metadata, ...updated.metadata } });
  // A finalizer patch carries the resourceVersion the cache had; a 409 means the object changed
  // since (often our own status write of the pass before, not in the cache yet): look again soon.
  const conflicts: string[] = [];
  const patchFinalizers = async (item: KubeItem, finalizers: string[], what: string): Promise<KubeItem | undefined> => {
    if (!mayWrite()) {
      conflicts.push(`${label(item)}: not leading any more (${what}: not done)`);
      return undefined;
    }
    try {
      const updated = await client.setFinalizers(item, finalizers);
      deps.onWritten?.(updated);
      log.debug({ kind: item.kind, name: item.metadata.name }, what);
      return withMetadata(item, updated);
    } catch (err) {
      if (statusCodeOf(err) !== 409) throw err;
      conflicts.push(`${label(item)}: changed while the pass ran (${what}: not yet)`);
      return undefined;
    }
  };
  // Our finalizer goes on before anything is applied, so no applied pair can vanish unseen.
  const isFocus = (item: KubeItem) => keyOf(item) === key;
  items = await Promise.all(
    items.map(async (item) => {
      const finalizers = isFocus(item) && CLEANUP_KINDS.includes(item.kind) && !item.metadata.deletionTimestamp ? addingFinalizer(item.metadata.finalizers) : undefined;
      return (finalizers && (await patchFinalizers(item, finalizers, "finalizer added"))) || item;
    }),
  );
  // And the hosts those pairs will have to be taken off keep theirs until the pairs are gone.
  const inUse = hostsInUse(items.filter((i) => CLEANUP_KINDS.includes(i.kind)));
  items = await Promise.all(
    items.map(async (item) => {
      if (!isFocus(item) || item.kind !== "DDIHost" || item.metadata.finalizers?.includes(IN_USE) || !inUse.has(item.metadata.name)) return item;
      const finalizers = inUseFinalizerChange(item, inUse);
      return (finalizers && (await patchFinalizers(item, finalizers, "in-use finalizer added"))) || item;
    }),
  );
  // Nothing is applied before every finalizer is on.
  if (conflicts.length > 0) return { exists: true, errors, waiting: conflicts, statusesWritten: 0 };

  const { set, problems } = withSecrets(validatedObjects, itemsAsDocuments(secrets, "kube-apiserver"));
  const itemOf = indexItems(items);
  const deleting = (r: DDIResource) => Boolean(itemOf(r)?.metadata.deletionTimestamp);
  // TrustOnFirstUse pins live in status.observedHostKey, which this pass reads and writes.
  const pins = pinsFromStatus(itemOf);
  const sessionOf = manifestSessionProvider(set, deps.transport, pins, (ns, name) =>
    unreadable.has(name)
      ? `the controller could not read it (${unreadable.get(name)}); let its service account get Secrets in ${ns}`
      : `create it in namespace ${ns} with the SSH private key under privateKey`,
  );

  let statusesWritten = 0;
  /** Returns the object written, or undefined when nothing changed or the write failed. */
  const writeStatus = async (
    item: KubeItem,
    status: object,
    recompute?: (previous: unknown) => object,
    /** Called with the status replaced and the one written, once the write succeeded. */
    onWritten?: (previous: unknown, written: object) => void,
  ): Promise<KubeItem | undefined> => {
    let current = item;
    let next = status;
    for (let attempt = 0; ; attempt++) {
      const patch = statusPatchIfChanged(current.status, next);
      if (!patch || !mayWrite()) return undefined;
      try {
        const written = await client.patchStatus(current, patch);
        deps.onWritten?.(written);
        statusesWritten++;
        onWritten?.(current.status, next);
        return written;
      } catch (err) {
        // A newer object than the one this status was computed over: re-read it and compute the
        // status again over its status, so counters and transition times never go backwards.
        if (statusCodeOf(err) === 409 && recompute && attempt < 2) {
          const fresh = await client.get(current).catch(() => undefined);
          if (!fresh) return undefined;
          current = fresh;
          next = recompute(fresh.status);
          continue;
        }
        if (statusCodeOf(err) === 409) {
          conflicts.push(`${label(item)}: changed while the pass ran (status: not yet)`);
          return undefined;
        }
        // Deleted since the cache saw it: nobody is left to read this status.
        if (statusCodeOf(err) === 404) return undefined;
        errors.push(`${item.kind} ${item.metadata.name}: status not written: ${kubeErrorMessage(err)}`);
        return undefined;
      }
    }
  };
  const readyCondition = (item: KubeItem, reason: string, message: string) => {
    const previous = (item.status ?? {}) as { conditions?: Parameters<typeof setCondition>[0] };
    const ready = { type: "Ready", status: "False" as const, reason, message };
    return { ...previous, conditions: setCondition(previous.conditions, ready, item.metadata.generation ?? 0, now()) };
  };

  const cleanups = items.filter((i) => isFocus(i) && CLEANUP_KINDS.includes(i.kind) && i.metadata.deletionTimestamp && i.metadata.finalizers?.includes(CLEANUP_FINALIZER));
  // Deleted together with its Secret: the cleanup uses the last copy read of it.
  const cached = [...missing].flatMap((name) => cache.get(`${cachePrefix}${name}`) ?? []);
  const cleanupSessionOf =
    cleanups.length > 0 && cached.length > 0
      ? manifestSessionProvider(withSecrets(validatedObjects, itemsAsDocuments([...secrets, ...cached], "kube-apiserver")).set, deps.transport, pins)
      : sessionOf;
  const hostItem = (name: string) => items.find((i) => i.kind === "DDIHost" && i.metadata.name === name);
  const goneForGood = (name: string): string | undefined => {
    const host = hostItem(name);
    if (!host) return `DDIHost ${name} does not exist any more`;
    const secret = (host.spec as { credentialsSecretRef?: { name?: string } } | undefined)?.credentialsSecretRef?.name;
    if (secret && missing.has(secret) && !cache.has(`${cachePrefix}${secret}`)) return `its credentials Secret ${secret} does not exist and the controller has no copy of it`;
    return undefined;
  };
  /** Pairs whose cleanup finalizer this pass dropped. */
  const released = new Set<string>();
  await Promise.all(
    cleanups.map(async (item) => {
      const pair = [...set.haPairs, ...set.keaClusters, ...set.failoverPeers].find((p) => keyOf(p) === keyOf(item));
      try {
        let current = item;
        // A pair not in the set failed the schema, which admission enforces too: never applied, nothing to remove.
        if (!mayWrite()) return;
        if (pair) {
          const { results, abandoned } = await removeRelationshipFromHosts(pair, set, cleanupSessionOf, deps.applyOptions, goneForGood);
          const removed = results.flatMap((r) => [...r.removed, ...r.changed].map((path) => `${r.host}:${path}`));
          log.info({ kind: item.kind, name: item.metadata.name, removed, deletionPolicy: pair.spec.deletionPolicy }, "pair removed from its hosts");
          // A daemon the removal left with nothing to serve was stopped: say so where the DDI team looks.
          const stopped = stoppedMessage(results);
          if (stopped) log.warn({ kind: item.kind, name: item.metadata.name, stopped: results.flatMap((r) => r.stopped ?? []) }, `${label(item)}: ${stopped}`);
          if (abandoned.length > 0 || stopped) {
            const message = [abandoned.length > 0 ? abandonedMessage(abandoned, DAEMON_OF[item.kind]) : "", stopped].filter(Boolean).join("; ");
            if (abandoned.length > 0) log.warn({ kind: item.kind, name: item.metadata.name, abandoned }, `${label(item)} ${message}`);
            // The last status the object has, for whoever watches it go (kubectl get -w, Argo CD).
            const last = { reason: abandoned.length > 0 ? "DeletedWithoutCleanup" : "RemovedFromHosts", message };
            const written = await writeStatus(item, readyCondition(item, last.reason, last.message));
            if (written) current = withMetadata(item, written);
          }
        }
        if (!mayWrite()) return;
        await client.setFinalizers(current, removingFinalizer(current.metadata.finalizers));
        released.add(keyOf(item));
      } catch (err) {
        // The finalizer patch met a newer object (our own status write, say): the cleanup is
        // done or idempotent, so look again soon rather than call it a failure.
        if (statusCodeOf(err) === 409) {
          conflicts.push(`${label(item)}: changed while the pass ran (finalizer removal: not yet)`);
          return;
        }
        // A pass over a stale cached copy: an earlier pass already dropped the finalizer and the
        // pair is gone. The removal is idempotent, so this is the same outcome, not a failure.
        if (statusCodeOf(err) === 404) {
          released.add(keyOf(item));
          return;
        }
        const message = kubeErrorMessage(err);
        errors.push(`${label(item)}: ${message}`);
        await writeStatus(item, readyCondition(item, "CleanupFailed", `being deleted, but ${message}`));
      }
    }),
  );

  // Hosts no pair still has to be taken off lose the in-use finalizer (and go, if being deleted).
  const stillInUse = hostsInUse(items.filter((i) => CLEANUP_KINDS.includes(i.kind) && !released.has(keyOf(i))));
  const gone = new Set<string>();
  await Promise.all(
    items
      .filter((i) => isFocus(i) && i.kind === "DDIHost" && i.metadata.finalizers?.includes(IN_USE) && !stillInUse.has(i.metadata.name))
      .map(async (item) => {
        try {
          const finalizers = removingFinalizer(item.metadata.finalizers, IN_USE);
          const updated = await patchFinalizers(item, finalizers, "in-use finalizer removed");
          if (updated && item.metadata.deletionTimestamp && finalizers.length === 0) gone.add(keyOf(item));
        } catch (err) {
          errors.push(`DDIHost ${item.metadata.name}: in-use finalizer not removed: ${kubeErrorMessage(err)}`);
        }
      }),
  );

  // This object alone: a relationship with its own hosts, or a DDIHost. A pair on its way out is
  // neither applied nor observed again; nor is a host that just went.
  const focus = [...set.hosts.values(), ...set.haPairs, ...set.keaClusters, ...set.failoverPeers].find((r) => keyOf(r) === key);
  if (!focus || (focus.kind !== "DDIHost" && deleting(focus)) || gone.has(key)) {
    // Admitted, but refused by the operator's own validation: say so, or the old status would stand.
    const item = focus ? undefined : items.find(isFocus);
    const refused = item && !item.metadata.deletionTimestamp ? invalidSpecLines(item, problems) : [];
    if (item && refused.length > 0) await writeStatus(item, invalidSpecStatus(item, refused, now()));
    return { exists: true, errors, waiting: conflicts, statusesWritten };
  }
  const own = focus.kind === "DDIHost" ? { ...withOnly(set, focus), haPairs: [] } : withOnly(set, focus);
  const live = { ...own, hosts: new Map([...set.hosts].filter(([, h]) => focusHosts.has(h.metadata.name) && !gone.has(keyOf(h)))) };
  const probeSessions = sessionOf;
  let drift: ObjectOutcome["drift"];
  const result = await reconcilePass(live, sessionOf, {
    apply: (r) => needsApply(itemOf(r)),
    problems,
    previousStatus: (r) => itemOf(r)?.status,
    memory: deps.memory,
    mayApply: mayWrite,
    // A reload a dead process (or a cut connection) left owed is finished by whoever leads next.
    finishPendingReloads: true,
    ...(deps.applyOptions ? { applyOptions: deps.applyOptions } : {}),
    now,
    probeOf: (host) => deps.probeOf(host, probeSessions),
    ...(deps.onHostApplied ? { onHostApplied: (host: DDIHost) => deps.onHostApplied!(host) } : {}),
  });
  for (const { resource, outcome } of result.applied.values()) {
    deps.metrics.recordApplies(resource.kind, outcome);
    const changed = (outcome.results ?? []).filter((r) => r.changed.length > 0 || r.removed.length > 0).map((r) => r.host);
    if (outcome.drift && outcome.drift.differing.length > 0) {
      drift = { differing: outcome.drift.differing, corrected: outcome.drift.policy === "Correct" && (outcome.results ?? []).length > 0 && (outcome.results ?? []).every((r) => r.ok) };
      log.warn({ kind: resource.kind, name: resource.metadata.name, differing: outcome.drift.differing, policy: outcome.drift.policy, corrected: drift.corrected }, "drift found");
    }
    if (changed.length > 0 || outcome.errors?.length || outcome.specProblems?.length) {
      log.info({ kind: resource.kind, name: resource.metadata.name, generation: resource.metadata.generation, changedOn: changed }, "applied");
    }
  }

  const computed = result.statuses.find(({ resource }) => keyOf(resource) === key);
  if (computed) {
    const item = itemOf(computed.resource);
    if (item) {
      // A status not written (unchanged, or refused) turned nothing: only what the pass did on the hosts is an Event then.
      let transition: [unknown, unknown] = [item.status, item.status];
      await writeStatus(item, computed.status, computed.recompute, (before, after) => (transition = [before, after]));
      const outcome = [...result.applied.values()].find(({ resource }) => keyOf(resource) === key)?.outcome;
      if (deps.events && mayWrite()) {
        const subject = { kind: item.kind, name: item.metadata.name, generation: item.metadata.generation, spec: item.spec };
        for (const event of transitionEvents(subject, transition[0], transition[1], outcome)) deps.events.record(regardingOf(item), event);
      }
    }
  }
  return { exists: true, ...(computed ? { computed } : {}), ...(drift ? { drift } : {}), errors, waiting: [...conflicts, ...(computed ? waitingResources([computed]) : [])], statusesWritten };
}
