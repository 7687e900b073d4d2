// One relationship's own slice of a manifest set: its render yields exactly its files, which is
// what a drift check or a per-object apply compares with the host (see host-probes.ts).
import type { DDIResource } from "../api/index.js";
import type { ManifestSet } from "../validation/model.js";

/** The set with one relationship only, so its render yields exactly its own files. */
export function withOnly(set: ManifestSet, resource: DDIResource): ManifestSet {
  return {
    ...set,
    haPairs: resource.kind === "HAPair" ? [resource] : [],
    failoverPeers: resource.kind === "DhcpFailoverPeer" ? [resource] : [],
    keaClusters: resource.kind === "KeaHACluster" ? [resource] : [],
  };
}
