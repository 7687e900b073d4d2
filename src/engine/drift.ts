// Does each host still hold what the spec renders? `ddi-ha status` has no stored status to
// remember the last apply by, so it compares the live files with a fresh render instead.
import { DEFAULT_PATCH_OPS } from "../apply/checkers.js";
import { rebasePatchedContent } from "../apply/plan.js";
import type { Condition, DDIResource } from "../api/index.js";
import { renderManifestSet } from "../render/render-set.js";
import type { ManifestSet } from "../validation/model.js";
import { gatherRenderInputs, type SessionProvider } from "./render-inputs.js";

export interface ConfigDrift {
  /** Files whose live content differs from the render, as `host:path`. */
  differing: string[];
  /** Why the comparison could not be made (host unreachable, render refused). */
  error?: string;
}

/** The set with one relationship only, so its render yields exactly its own files. */
export function withOnly(set: ManifestSet, resource: DDIResource): ManifestSet {
  return {
    ...set,
    haPairs: resource.kind === "HAPair" ? [resource] : [],
    failoverPeers: resource.kind === "DhcpFailoverPeer" ? [resource] : [],
    keaClusters: resource.kind === "KeaHACluster" ? [resource] : [],
  };
}

export async function configDrift(set: ManifestSet, resource: DDIResource, sessionOf: SessionProvider): Promise<ConfigDrift> {
  try {
    const only = withOnly(set, resource);
    const rendered = renderManifestSet(only, await gatherRenderInputs(only, sessionOf));
    if (rendered.failures.length > 0) return { differing: [], error: rendered.failures.map((f) => f.message).join("; ") };
    const differing: string[] = [];
    for (const file of rendered.files) {
      const host = set.hosts.get(`${resource.metadata.namespace}/${file.host}`)!;
      const live = await (await sessionOf(host)).readFile(file.path);
      const desired = file.ownership === "patched" ? rebasePatchedContent(file, live, DEFAULT_PATCH_OPS) : file.content;
      if (live !== desired) differing.push(`${file.host}:${file.path}`);
    }
    return { differing };
  } catch (err) {
    return { differing: [], error: err instanceof Error ? err.message : String(err) };
  }
}

/** The ConfigApplied condition a drift check stands for. */
export function configAppliedFromDrift(drift: ConfigDrift, generation: number, now: Date): Condition {
  const base = { type: "ConfigApplied", observedGeneration: generation, lastTransitionTime: now.toISOString().replace(/\.\d+Z$/, "Z") };
  if (drift.error) return { ...base, status: "Unknown", reason: "DriftUnknown", message: `could not compare the hosts' files with the spec: ${drift.error}` };
  if (drift.differing.length > 0) {
    return { ...base, status: "False", reason: "HostsDiffer", message: `these files differ from what the spec renders: ${drift.differing.join(", ")}; run ddi-ha apply` };
  }
  return { ...base, status: "True", reason: "HostsMatchSpec", message: "every file on the hosts matches what the spec renders" };
}
