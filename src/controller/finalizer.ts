// The `ddi-ha.io/cleanup` finalizer on HAPairs: deleting a pair under deletionPolicy Remove takes
// its keepalived file off both hosts before the object goes; Retain lets it go untouched.
import type { HAPair } from "../api/index.js";
import { type ApplyOptions, type ApplyResult, type RemovedFile, applyHostFiles } from "../apply/index.js";
import { keepalivedPairRemovals } from "../daemons/keepalived/index.js";
import type { SessionProvider } from "../engine/render-inputs.js";
import { type ManifestSet, objectKey } from "../validation/model.js";

export const CLEANUP_FINALIZER = "ddi-ha.io/cleanup";

/** The finalizers with ours added (undefined: it is there already). */
export function addingFinalizer(finalizers: readonly string[] | undefined): string[] | undefined {
  return finalizers?.includes(CLEANUP_FINALIZER) ? undefined : [...(finalizers ?? []), CLEANUP_FINALIZER];
}

/** The finalizers without ours, others' kept in order. */
export function removingFinalizer(finalizers: readonly string[] | undefined): string[] {
  return (finalizers ?? []).filter((f) => f !== CLEANUP_FINALIZER);
}

/** What deleting the pair removes on each node's host (DDIHost name → files); empty under Retain. */
export function pairRemovalsByHost(pair: HAPair): Map<string, RemovedFile[]> {
  const byHost = new Map<string, RemovedFile[]>();
  for (const { host, ...file } of keepalivedPairRemovals(pair)) byHost.set(host, [...(byHost.get(host) ?? []), file]);
  return byHost;
}

/**
 * Removes the pair's files from its hosts, both at once, each through the apply engine (host
 * lock, reload, verify). Throws, naming every host that failed, unless all removals succeeded.
 */
export async function removeHAPairFromHosts(
  pair: HAPair,
  set: ManifestSet,
  sessionOf: SessionProvider,
  options: ApplyOptions = {},
): Promise<ApplyResult[]> {
  const ns = pair.metadata.namespace!;
  const failures: string[] = [];
  const results: ApplyResult[] = [];
  await Promise.all(
    [...pairRemovalsByHost(pair)].map(async ([hostName, remove]) => {
      const host = set.hosts.get(objectKey(ns, hostName));
      if (!host) {
        failures.push(`DDIHost ${hostName} does not exist: recreate it, or set spec.deletionPolicy to Retain to delete the pair without touching its hosts`);
        return;
      }
      try {
        const result = await applyHostFiles(await sessionOf(host), [], { ...options, remove, lockKey: `${host.spec.address}:${host.spec.port}` });
        results.push(result);
        if (!result.ok) failures.push(`${hostName}: ${result.failure?.message ?? "the removal failed"}`);
      } catch (err) {
        failures.push(`${hostName}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }),
  );
  if (failures.length > 0) throw new Error(`could not remove the pair's keepalived files: ${failures.join("; ")}`);
  return results;
}
