// The `ddi-ha.io/cleanup` finalizer on HAPairs, KeaHACluster and DhcpFailoverPeers: deleting one
// under deletionPolicy Remove takes what it put on its hosts off them before the object goes
// (ADR 0028 for Kea and dhcpd); Retain lets it go untouched.
// The `ddi-ha.io/in-use` finalizer on DDIHosts keeps a host (and so the address and credentials
// the cleanup needs) until no pair that still has to be taken off it is left: a bulk delete
// (`kubectl delete ns`, `kubectl delete -f site/`, an Argo CD app) removes them all at once.
import type { HAPair } from "../api/index.js";
import { type ApplyOptions, type ApplyResult, type RemovedFile, applyHostFiles } from "../apply/index.js";
import type { RenderedFile, ServiceUnit } from "../render/types.js";
import { keepalivedPairRemovals } from "../daemons/keepalived/index.js";
import type { SessionProvider } from "../engine/render-inputs.js";
import { type ManifestSet, objectKey } from "../validation/model.js";

export const CLEANUP_FINALIZER = "ddi-ha.io/cleanup";
export const IN_USE_FINALIZER = "ddi-ha.io/in-use";
/** The kinds that carry the cleanup finalizer: each is taken off its hosts when deleted. */
export const CLEANUP_KINDS: readonly string[] = ["HAPair", "KeaHACluster", "DhcpFailoverPeer"];

type Meta = { metadata: { name: string; deletionTimestamp?: string | Date | undefined; finalizers?: string[] | undefined }; spec?: unknown };

/** The finalizers with `finalizer` (ours) added (undefined: it is there already). */
export function addingFinalizer(finalizers: readonly string[] | undefined, finalizer = CLEANUP_FINALIZER): string[] | undefined {
  return finalizers?.includes(finalizer) ? undefined : [...(finalizers ?? []), finalizer];
}

/** The finalizers without `finalizer` (ours), others' kept in order. */
export function removingFinalizer(finalizers: readonly string[] | undefined, finalizer = CLEANUP_FINALIZER): string[] {
  return (finalizers ?? []).filter((f) => f !== finalizer);
}

/**
 * The DDIHost names that must outlive their relationships: those named by an HAPair,
 * KeaHACluster or DhcpFailoverPeer that has our cleanup finalizer (live or being deleted) and
 * deletionPolicy Remove (the default). `pairs` are raw objects, so one that failed validation
 * still protects its hosts.
 */
export function hostsInUse(pairs: readonly Meta[]): Set<string> {
  const names = new Set<string>();
  for (const pair of pairs) {
    if (!pair.metadata.finalizers?.includes(CLEANUP_FINALIZER)) continue;
    const spec = (pair.spec ?? {}) as { deletionPolicy?: string; primary?: { host?: string }; secondary?: { host?: string }; peers?: { host?: string }[] };
    if (spec.deletionPolicy === "Retain") continue;
    const peers = Array.isArray(spec.peers) ? spec.peers.map((p) => p?.host) : [];
    for (const host of [spec.primary?.host, spec.secondary?.host, ...peers]) if (typeof host === "string" && host) names.add(host);
  }
  return names;
}

/**
 * The in-use finalizer change a DDIHost needs: the list to set, or undefined for none. A host
 * being deleted gets no new finalizer (the API server refuses it), but keeps one it has while in use.
 */
export function inUseFinalizerChange(host: Meta, inUse: ReadonlySet<string>): string[] | undefined {
  const has = host.metadata.finalizers?.includes(IN_USE_FINALIZER) ?? false;
  const wanted = inUse.has(host.metadata.name);
  if (wanted && !has && !host.metadata.deletionTimestamp) return addingFinalizer(host.metadata.finalizers, IN_USE_FINALIZER);
  if (!wanted && has) return removingFinalizer(host.metadata.finalizers, IN_USE_FINALIZER);
  return undefined;
}

/** A host the cleanup will never reach: its DDIHost or its credentials Secret is gone (and no copy of the Secret is left). */
export interface AbandonedHost {
  host: string;
  files: string[];
  why: string;
}

export interface PairRemoval {
  results: ApplyResult[];
  /** Hosts left as they are, with the files still on them. */
  abandoned: AbandonedHost[];
}

/** What deleting the pair removes on each node's host (DDIHost name → files); empty under Retain. */
export function pairRemovalsByHost(pair: HAPair): Map<string, RemovedFile[]> {
  const byHost = new Map<string, RemovedFile[]>();
  for (const { host, ...file } of keepalivedPairRemovals(pair)) byHost.set(host, [...(byHost.get(host) ?? []), file]);
  return byHost;
}

/** What one host is asked to do when a relationship goes: files deleted or unpatched, files rewritten, services stopped. */
export interface HostRemoval {
  remove: RemovedFile[];
  files?: RenderedFile[];
  stop?: ServiceUnit[];
}

/**
 * Applies removals host by host through the apply engine (host lock, check, swap, reload or
 * stop, verify, rollback): the hosts of one wave at once, the next wave only when every host of
 * this one succeeded. `goneForGood(host)` says why a host can never be reached again (its
 * DDIHost or credentials were deleted), or undefined: such a host is abandoned, its files named,
 * instead of failing the removal forever. Throws, naming every host that failed.
 */
export async function applyRemovals(
  what: string,
  namespace: string,
  waves: readonly ReadonlyMap<string, HostRemoval>[],
  set: ManifestSet,
  sessionOf: SessionProvider,
  options: ApplyOptions = {},
  goneForGood: (host: string) => string | undefined = () => undefined,
): Promise<PairRemoval> {
  const failures: string[] = [];
  const results: ApplyResult[] = [];
  const abandoned: AbandonedHost[] = [];
  for (const wave of waves) {
    await Promise.all(
      [...wave].map(async ([hostName, { remove, files = [], stop = [] }]) => {
        const why = goneForGood(hostName);
        if (why) {
          abandoned.push({ host: hostName, files: [...remove, ...files].map((f) => f.path), why });
          return;
        }
        const host = set.hosts.get(objectKey(namespace, hostName));
        if (!host) {
          failures.push(`DDIHost ${hostName} is not valid: fix it, or set spec.deletionPolicy to Retain to delete the resource without touching its hosts`);
          return;
        }
        try {
          const result = await applyHostFiles(await sessionOf(host), files, { ...options, remove, stop, lockKey: `${host.spec.address}:${host.spec.port}` });
          results.push(result);
          if (!result.ok) failures.push(`${hostName}: ${result.failure?.message ?? "the removal failed"}${result.rolledBack ? ` (${result.rolledBack.message})` : ""}`);
        } catch (err) {
          failures.push(`${hostName}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
    );
    // What the hosts that succeeded were left with is said too: it stays so while the others are retried.
    const meanwhile = stoppedMessage(results);
    if (failures.length > 0) throw new Error(`could not remove ${what}: ${failures.join("; ")}${meanwhile ? `; meanwhile ${meanwhile}` : ""}`);
  }
  abandoned.sort((a, b) => a.host.localeCompare(b.host));
  return { results, abandoned };
}

/** Removes the pair's keepalived files from both hosts at once. */
export async function removeHAPairFromHosts(
  pair: HAPair,
  set: ManifestSet,
  sessionOf: SessionProvider,
  options: ApplyOptions = {},
  goneForGood: (host: string) => string | undefined = () => undefined,
): Promise<PairRemoval> {
  const wave = new Map([...pairRemovalsByHost(pair)].map(([host, remove]) => [host, { remove }]));
  return applyRemovals("the pair's keepalived files", pair.metadata.namespace!, [wave], set, sessionOf, options, goneForGood);
}

/** The services a removal stopped and disabled, as one sentence for status and log; undefined for none. */
export function stoppedMessage(results: readonly ApplyResult[]): string | undefined {
  const stopped = results.flatMap((r) => (r.stopped ?? []).map((unit) => `${unit} on DDIHost ${r.host}`)).sort();
  if (stopped.length === 0) return undefined;
  return `stopped and disabled ${stopped.join(", ")}: the removal left it nothing to serve (its config is kept on disk; start it by hand once it has a subnet again)`;
}
