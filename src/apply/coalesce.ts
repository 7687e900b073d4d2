// Applies to one host that wait behind each other run as one transaction (ADR 0034): one stage,
// one check of the daemon's whole config, one reload and one settle for all of them. Without it a
// host carrying 48 HAPairs went through 48 serial applies of about 3 s each when they all changed.
//
// The pure parts (who may share a transaction, each caller's share of its result) are exported
// for unit tests; the queue itself is driven by engine.ts.
import type { RenderedFile } from "../render/types.js";
import type { ApplyOptions, ApplyResult, ApplyStage } from "./types.js";

export interface ApplyRequest {
  files: RenderedFile[];
  options: ApplyOptions;
}

/**
 * A request may wait for a shared transaction when it only writes files and carries no test hooks:
 * removals and stops (a deleted resource, ADR 0025/0028) keep their own, simpler, transaction.
 */
export function mayCoalesce(options: ApplyOptions): boolean {
  return !options.hooks && !(options.remove?.length) && !(options.stop?.length);
}

/** Two requests can share a transaction when every option but the lock key is the same value. */
export function sameApplyOptions(a: ApplyOptions, b: ApplyOptions): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => k !== "lockKey"));
  return [...keys].every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}

/**
 * The union of the requests' files, one per path; undefined when two requests want different
 * bytes (or modes, owners, services) at one path: they must not share a transaction then.
 */
export function mergeFiles(requests: readonly ApplyRequest[]): RenderedFile[] | undefined {
  const byPath = new Map<string, RenderedFile>();
  for (const { files } of requests) {
    for (const f of files) {
      const seen = byPath.get(f.path);
      if (!seen) byPath.set(f.path, f);
      else if (seen.content !== f.content || seen.mode !== f.mode || seen.service !== f.service || seen.ownership !== f.ownership || seen.host !== f.host) return undefined;
    }
  }
  return [...byPath.values()];
}

/**
 * Stages after which a shared transaction's failure may be one request's doing (its file refused by
 * the checker, the daemon not coming up with it): each request is then applied on its own, so the
 * failure lands on the resource that caused it. Before these (the lock, the read, staging) the
 * failure is the host's, and every request gets it.
 */
const ATTRIBUTABLE_STAGES: readonly ApplyStage[] = ["validate", "reload", "verify"];

export function shouldRetryAlone(result: ApplyResult, requestCount: number): boolean {
  return requestCount > 1 && !result.ok && result.failure !== undefined && ATTRIBUTABLE_STAGES.includes(result.failure.stage);
}

/** A request's share of a successful shared transaction: its own paths, the services of its files. */
export function shareOf(result: ApplyResult, request: ApplyRequest, others: number): ApplyResult {
  const own = new Set(request.files.map((f) => f.path));
  const services = new Set(request.files.map((f) => f.service));
  const changed = result.changed.filter((p) => own.has(p));
  return {
    host: result.host,
    changed,
    unchanged: result.unchanged.filter((p) => own.has(p)),
    removed: [],
    // The reload was everyone's; a request whose files were all current did not need it.
    reloaded: changed.length > 0 ? result.reloaded.filter((u) => services.has(u)) : [],
    ok: result.ok,
    ...(result.failure ? { failure: result.failure } : {}),
    ...(result.rolledBack ? { rolledBack: result.rolledBack } : {}),
    notes: [...result.notes, ...(others > 0 ? [`applied in one transaction with ${others} other request(s) for this host`] : [])],
  };
}
