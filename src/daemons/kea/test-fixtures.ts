// Shared by the Kea tests: the example manifest set of examples/micetro-kea-ha, validated the way
// the operator validates it, and small builders for variations.
import { fileURLToPath } from "node:url";
import type { DDIHost, KeaHACluster } from "../../api/index.js";
import { keaHAClusterSpecSchema } from "../../api/index.js";
import { loadManifests } from "../../manifests/load.js";
import { formatProblem, validateManifests } from "../../validation/validate.js";

export const EXAMPLE_DIR = fileURLToPath(new URL("../../../examples/micetro-kea-ha/", import.meta.url));

export async function loadExample(): Promise<{ cluster: KeaHACluster; hosts: Map<string, DDIHost> }> {
  const { set, problems } = validateManifests(await loadManifests([EXAMPLE_DIR]));
  const errors = problems.filter((p) => p.severity === "error");
  if (errors.length > 0) throw new Error(`the example does not validate:\n${errors.map(formatProblem).join("\n")}`);
  const cluster = set.keaClusters[0];
  if (!cluster || set.keaClusters.length !== 1) throw new Error("the example must hold exactly one KeaHACluster");
  const hosts = new Map<string, DDIHost>();
  for (const host of set.hosts.values()) if (host.metadata.namespace === cluster.metadata.namespace) hosts.set(host.metadata.name, host);
  return { cluster, hosts };
}

export function testHost(name: string, address: string, osFamily?: "Debian" | "RHEL"): DDIHost {
  return {
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "DDIHost",
    metadata: { name, namespace: "lab" },
    spec: {
      address,
      port: 22,
      user: "root",
      sudo: false,
      credentialsSecretRef: { name: "ssh" },
      hostKeyPolicy: "TrustOnFirstUse",
      ...(osFamily ? { osFamily } : {}),
    },
  };
}

/** A KeaHACluster with defaults applied by the real schema, so tests see what the operator sees. */
export function testCluster(spec: Record<string, unknown>, name = "kea"): KeaHACluster {
  return {
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "KeaHACluster",
    metadata: { name, namespace: "lab" },
    spec: keaHAClusterSpecSchema.parse(spec),
  };
}
