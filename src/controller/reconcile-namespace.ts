// One controller reconcile: one reconcilePass over every ddi-ha object of a namespace, read from
// the watchers' caches (the Secrets they reference from the API server). Like the lab's
// runLabPass, with client-node instead of kubectl, plus the HAPair finalizer. See ADR 0011 for
// why the namespace, not the object, is the unit.
import type { Logger } from "pino";
import type { DDIResource } from "../api/index.js";
import type { ApplyOptions } from "../apply/index.js";
import { type KubeItem, indexItems, itemsAsDocuments, kubeItemKey, needsApply, pinsFromStatus, statusPatchIfChanged } from "../engine/kube-status.js";
import { type ComputedStatus, type PassMemory, reconcilePass } from "../engine/reconcile-pass.js";
import { manifestSessionProvider } from "../engine/sessions.js";
import type { SshTransport } from "../ssh/index.js";
import { isTrue, setCondition } from "../status/index.js";
import { validateManifests } from "../validation/validate.js";
import {
  type AbandonedHost,
  CLEANUP_FINALIZER,
  IN_USE_FINALIZER as IN_USE,
  addingFinalizer,
  hostsInUse,
  inUseFinalizerChange,
  removeHAPairFromHosts,
  removingFinalizer,
} from "./finalizer.js";
import { type KubeClient, kubeErrorMessage, statusCodeOf } from "./kube-client.js";
import type { ControllerMetrics } from "./metrics.js";

export interface NamespaceReconcilerDeps {
  client: KubeClient;
  transport: SshTransport;
  /** The namespace's ddi-ha objects as the watchers' caches hold them. */
  objectsIn(namespace: string): KubeItem[];
  /** What passes over this namespace remember between them (the last VIP holders). */
  memoryOf(namespace: string): PassMemory;
  metrics: ControllerMetrics;
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

export interface NamespaceOutcome {
  resources: number;
  /** What failed that a retry may fix (API writes, cleanups on hosts); also in the statuses where it belongs. */
  errors: string[];
  /** Resources neither Ready nor Stalled: worth another look soon. */
  waiting: string[];
  statusesWritten: number;
}

/** The warning a pair deleted without reaching some of its hosts leaves in its last status and the log. */
export function abandonedMessage(abandoned: readonly AbandonedHost[]): string {
  return `deleted without cleaning up ${abandoned.map((a) => `${a.host} (${a.why}; left on it: ${a.files.join(", ")})`).join("; ")}: remove those files by hand and reload keepalived`;
}

type Named = { kind: string; metadata: { name: string; namespace?: string | undefined } };
const keyOf = kubeItemKey;
const label = (r: Named) => `${r.kind} ${r.metadata.name}`;

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

export async function reconcileNamespace(namespace: string, deps: NamespaceReconcilerDeps): Promise<NamespaceOutcome> {
  const { client, log } = deps;
  const now = deps.now ?? (() => new Date());
  const cache = deps.secretCache ?? new Map<string, KubeItem>();
  const cachePrefix = `${namespace}/`;
  let items = deps.objectsIn(namespace);
  // Copies of Secrets nothing names any more are forgotten.
  const named = new Set(referencedSecretNames(items).map((name) => `${cachePrefix}${name}`));
  for (const key of cache.keys()) if (key.startsWith(cachePrefix) && !named.has(key)) cache.delete(key);
  if (items.length === 0) {
    deps.metrics.publishNamespace(namespace, []);
    return { resources: 0, errors: [], waiting: [], statusesWritten: 0 };
  }
  const errors: string[] = [];
  // A Secret we may not read (RBAC, say) is left out: the hosts that need it report why, and the pass is retried.
  const unreadable = new Map<string, string>();
  // Secrets the API server says do not exist (404).
  const missing = new Set<string>();
  const secrets = (
    await Promise.all(
      referencedSecretNames(items).map((name) =>
        client.readSecret(namespace, name).then(
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
    try {
      const updated = await client.setFinalizers(item, finalizers);
      log.debug({ kind: item.kind, name: item.metadata.name }, what);
      return withMetadata(item, updated);
    } catch (err) {
      if (statusCodeOf(err) !== 409) throw err;
      conflicts.push(`${label(item)}: changed while the pass ran (${what}: not yet)`);
      return undefined;
    }
  };
  // Our finalizer goes on before anything is applied, so no applied pair can vanish unseen.
  items = await Promise.all(
    items.map(async (item) => {
      const finalizers = item.kind === "HAPair" && !item.metadata.deletionTimestamp ? addingFinalizer(item.metadata.finalizers) : undefined;
      return (finalizers && (await patchFinalizers(item, finalizers, "finalizer added"))) || item;
    }),
  );
  // And the hosts those pairs will have to be taken off keep theirs until the pairs are gone.
  const inUse = hostsInUse(items.filter((i) => i.kind === "HAPair"));
  items = await Promise.all(
    items.map(async (item) => {
      if (item.kind !== "DDIHost" || item.metadata.finalizers?.includes(IN_USE) || !inUse.has(item.metadata.name)) return item;
      const finalizers = inUseFinalizerChange(item, inUse);
      return (finalizers && (await patchFinalizers(item, finalizers, "in-use finalizer added"))) || item;
    }),
  );
  // Nothing is applied before every finalizer is on.
  if (conflicts.length > 0) return { resources: items.length, errors, waiting: conflicts, statusesWritten: 0 };

  const { set, problems } = validateManifests(itemsAsDocuments([...items, ...secrets], "kube-apiserver"));
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
  const writeStatus = async (item: KubeItem, status: object): Promise<KubeItem | undefined> => {
    const patch = statusPatchIfChanged(item.status, status);
    if (!patch) return undefined;
    try {
      const written = await client.patchStatus(item, patch);
      statusesWritten++;
      return written;
    } catch (err) {
      errors.push(`${item.kind} ${item.metadata.name}: status not written: ${kubeErrorMessage(err)}`);
      return undefined;
    }
  };
  const readyCondition = (item: KubeItem, reason: string, message: string) => {
    const previous = (item.status ?? {}) as { conditions?: Parameters<typeof setCondition>[0] };
    const ready = { type: "Ready", status: "False" as const, reason, message };
    return { ...previous, conditions: setCondition(previous.conditions, ready, item.metadata.generation ?? 0, now()) };
  };

  const cleanups = items.filter((i) => i.kind === "HAPair" && i.metadata.deletionTimestamp && i.metadata.finalizers?.includes(CLEANUP_FINALIZER));
  // Deleted together with its Secret: the cleanup uses the last copy read of it.
  const cached = [...missing].flatMap((name) => cache.get(`${cachePrefix}${name}`) ?? []);
  const cleanupSessionOf =
    cleanups.length > 0 && cached.length > 0
      ? manifestSessionProvider(validateManifests(itemsAsDocuments([...items, ...secrets, ...cached], "kube-apiserver")).set, deps.transport, pins)
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
      const pair = set.haPairs.find((p) => keyOf(p) === keyOf(item));
      try {
        let current = item;
        // A pair not in the set failed the schema, which admission enforces too: never applied, nothing to remove.
        if (pair) {
          const { results, abandoned } = await removeHAPairFromHosts(pair, set, cleanupSessionOf, deps.applyOptions, goneForGood);
          const removed = results.flatMap((r) => r.removed.map((path) => `${r.host}:${path}`));
          log.info({ kind: "HAPair", name: item.metadata.name, removed, deletionPolicy: pair.spec.deletionPolicy }, "pair removed from its hosts");
          if (abandoned.length > 0) {
            const message = abandonedMessage(abandoned);
            log.warn({ kind: "HAPair", name: item.metadata.name, abandoned }, `HAPair ${item.metadata.name} ${message}`);
            // The last status the object has, for whoever watches it go (kubectl get -w, Argo CD).
            const written = await writeStatus(item, readyCondition(item, "DeletedWithoutCleanup", message));
            if (written) current = withMetadata(item, written);
          }
        }
        await client.setFinalizers(current, removingFinalizer(current.metadata.finalizers));
        released.add(keyOf(item));
      } catch (err) {
        // The finalizer patch met a newer object (our own status write, say): the cleanup is
        // done or idempotent, so look again soon rather than call it a failure.
        if (statusCodeOf(err) === 409) {
          conflicts.push(`${label(item)}: changed while the pass ran (finalizer removal: not yet)`);
          return;
        }
        const message = kubeErrorMessage(err);
        errors.push(`HAPair ${item.metadata.name}: ${message}`);
        await writeStatus(item, readyCondition(item, "CleanupFailed", `being deleted, but ${message}`));
      }
    }),
  );

  // Hosts no pair still has to be taken off lose the in-use finalizer (and go, if being deleted).
  const stillInUse = hostsInUse(items.filter((i) => i.kind === "HAPair" && !released.has(keyOf(i))));
  const gone = new Set<string>();
  await Promise.all(
    items
      .filter((i) => i.kind === "DDIHost" && i.metadata.finalizers?.includes(IN_USE) && !stillInUse.has(i.metadata.name))
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

  // A pair on its way out is neither applied nor observed again; nor is a host that just went.
  const live = {
    ...set,
    haPairs: set.haPairs.filter((p) => !deleting(p)),
    hosts: new Map([...set.hosts].filter(([, h]) => !gone.has(keyOf(h)))),
  };

  const result = await reconcilePass(live, sessionOf, {
    apply: (r) => needsApply(itemOf(r)),
    problems,
    previousStatus: (r) => itemOf(r)?.status,
    memory: deps.memoryOf(namespace),
    ...(deps.applyOptions ? { applyOptions: deps.applyOptions } : {}),
    now,
  });
  for (const { resource, outcome } of result.applied.values()) {
    const changed = (outcome.results ?? []).filter((r) => r.changed.length > 0 || r.removed.length > 0).map((r) => r.host);
    if (changed.length > 0 || outcome.errors?.length || outcome.specProblems?.length) {
      log.info({ kind: resource.kind, name: resource.metadata.name, generation: resource.metadata.generation, changedOn: changed }, "applied");
    }
  }

  const statuses = result.statuses.filter(({ resource }) => !gone.has(keyOf(resource)));
  await Promise.all(
    statuses.map(async ({ resource, status }) => {
      const item = itemOf(resource);
      if (item) await writeStatus(item, status);
    }),
  );
  deps.metrics.publishNamespace(namespace, statuses);
  return { resources: items.length, errors, waiting: [...conflicts, ...waitingResources(statuses)], statusesWritten };
}
