// One controller reconcile: one reconcilePass over every ddi-ha object of a namespace, read from
// the watchers' caches (the Secrets they reference from the API server). Like the lab's
// runLabPass, with client-node instead of kubectl, plus the HAPair finalizer. See ADR 0011 for
// why the namespace, not the object, is the unit.
import type { Logger } from "pino";
import type { DDIHostStatus, DDIResource } from "../api/index.js";
import type { ApplyOptions } from "../apply/index.js";
import { type KubeItem, itemsAsDocuments, needsApply, statusPatchIfChanged } from "../engine/kube-status.js";
import { type ComputedStatus, type PassMemory, reconcilePass } from "../engine/reconcile-pass.js";
import { manifestSessionProvider, statusHostKeyPins } from "../engine/sessions.js";
import type { SshTransport } from "../ssh/index.js";
import { isTrue, setCondition } from "../status/index.js";
import { validateManifests } from "../validation/validate.js";
import { CLEANUP_FINALIZER, addingFinalizer, removeHAPairFromHosts, removingFinalizer } from "./finalizer.js";
import { type KubeClient, kubeErrorMessage } from "./kube-client.js";
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
}

export interface NamespaceOutcome {
  resources: number;
  /** What failed that a retry may fix (API writes, cleanups on hosts); also in the statuses where it belongs. */
  errors: string[];
  /** Resources neither Ready nor Stalled: worth another look soon. */
  waiting: string[];
  statusesWritten: number;
}

type Named = { kind: string; metadata: { name: string; namespace?: string | undefined } };
const keyOf = (r: Named) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
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
  let items = deps.objectsIn(namespace);
  if (items.length === 0) {
    deps.metrics.publishNamespace(namespace, []);
    return { resources: 0, errors: [], waiting: [], statusesWritten: 0 };
  }
  const errors: string[] = [];
  // A Secret we may not read (RBAC, say) is left out: the hosts that need it report why, and the pass is retried.
  const unreadable = new Map<string, string>();
  const secrets = (
    await Promise.all(
      referencedSecretNames(items).map((name) =>
        client.readSecret(namespace, name).catch((err: unknown) => {
          unreadable.set(name, kubeErrorMessage(err));
          errors.push(`Secret ${name}: cannot read it: ${kubeErrorMessage(err)}`);
          return undefined;
        }),
      ),
    )
  ).filter((s) => s !== undefined);

  // Our finalizer goes on before anything is applied, so no applied pair can vanish unseen.
  items = await Promise.all(
    items.map(async (item) => {
      const finalizers = item.kind === "HAPair" && !item.metadata.deletionTimestamp ? addingFinalizer(item.metadata.finalizers) : undefined;
      if (!finalizers) return item;
      const updated = await client.setFinalizers(item, finalizers);
      log.debug({ kind: item.kind, name: item.metadata.name }, "finalizer added");
      return { ...item, metadata: { ...item.metadata, ...updated.metadata } };
    }),
  );

  const { set, problems } = validateManifests(itemsAsDocuments([...items, ...secrets], "kube-apiserver"));
  const itemOf = new Map(items.map((i) => [keyOf(i), i]));
  const deleting = (r: DDIResource) => Boolean(itemOf.get(keyOf(r))?.metadata.deletionTimestamp);
  // TrustOnFirstUse pins live in status.observedHostKey, which this pass reads and writes.
  const pins = statusHostKeyPins((host) => (itemOf.get(keyOf(host))?.status as DDIHostStatus | undefined)?.observedHostKey);
  const sessionOf = manifestSessionProvider(set, deps.transport, pins, (ns, name) =>
    unreadable.has(name)
      ? `the controller could not read it (${unreadable.get(name)}); let its service account get Secrets in ${ns}`
      : `create it in namespace ${ns} with the SSH private key under privateKey`,
  );

  let statusesWritten = 0;
  const writeStatus = async (item: KubeItem, status: object): Promise<void> => {
    const patch = statusPatchIfChanged(item.status, status);
    if (!patch) return;
    try {
      await client.patchStatus(item, patch);
      statusesWritten++;
    } catch (err) {
      errors.push(`${item.kind} ${item.metadata.name}: status not written: ${kubeErrorMessage(err)}`);
    }
  };

  await Promise.all(
    items
      .filter((i) => i.kind === "HAPair" && i.metadata.deletionTimestamp && i.metadata.finalizers?.includes(CLEANUP_FINALIZER))
      .map(async (item) => {
        const pair = set.haPairs.find((p) => keyOf(p) === keyOf(item));
        try {
          // A pair not in the set failed the schema, which admission enforces too: never applied, nothing to remove.
          if (pair) {
            const results = await removeHAPairFromHosts(pair, set, sessionOf, deps.applyOptions);
            const removed = results.flatMap((r) => r.removed.map((path) => `${r.host}:${path}`));
            log.info({ kind: "HAPair", name: item.metadata.name, removed, deletionPolicy: pair.spec.deletionPolicy }, "pair removed from its hosts");
          }
          await client.setFinalizers(item, removingFinalizer(item.metadata.finalizers));
        } catch (err) {
          const message = kubeErrorMessage(err);
          errors.push(`HAPair ${item.metadata.name}: ${message}`);
          const previous = (item.status ?? {}) as { conditions?: Parameters<typeof setCondition>[0] };
          const ready = { type: "Ready", status: "False" as const, reason: "CleanupFailed", message: `being deleted, but ${message}` };
          await writeStatus(item, { ...previous, conditions: setCondition(previous.conditions, ready, item.metadata.generation ?? 0, now()) });
        }
      }),
  );
  // A pair on its way out is neither applied nor observed again.
  const live = { ...set, haPairs: set.haPairs.filter((p) => !deleting(p)) };

  const result = await reconcilePass(live, sessionOf, {
    apply: (r) => needsApply(itemOf.get(keyOf(r))),
    problems,
    previousStatus: (r) => itemOf.get(keyOf(r))?.status,
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

  await Promise.all(
    result.statuses.map(async ({ resource, status }) => {
      const item = itemOf.get(keyOf(resource));
      if (item) await writeStatus(item, status);
    }),
  );
  deps.metrics.publishNamespace(namespace, result.statuses);
  return { resources: items.length, errors, waiting: waitingResources(result.statuses), statusesWritten };
}
