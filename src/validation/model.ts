// The validated form of a manifest set, shared by the validator, the renderers and the CLI.
import type { DDIHost, DDIResource, DhcpFailoverPeer, HAPair, KeaHACluster, ObjectMeta } from "../api/index.js";

export interface ValidationProblem {
  severity: "error" | "warning";
  /** `Kind namespace/name`, or the source file when the object has no usable identity. */
  resource: string;
  source?: string;
  /** Dotted field path, e.g. `spec.primary.host`. */
  path: string;
  message: string;
  /**
   * "reference": the field names another object (a DDIHost) that is not in the set. Not a fault of
   * this spec: it resolves when that object appears (Argo CD sync order, delete and recreate), so
   * the operator retries it instead of stalling.
   */
  kind?: "reference";
}

export interface SecretData {
  metadata: ObjectMeta;
  /** Decoded values of `data` (base64) and `stringData`. Never logged. */
  values: Record<string, string>;
}

/** Every object of a manifest set, validated, with defaults applied; keyed by `namespace/name`. */
export interface ManifestSet {
  hosts: Map<string, DDIHost>;
  haPairs: HAPair[];
  keaClusters: KeaHACluster[];
  failoverPeers: DhcpFailoverPeer[];
  secrets: Map<string, SecretData>;
  /** Where each resource came from, for messages. */
  sources: Map<DDIResource, string>;
}

export const DEFAULT_NAMESPACE = "default";

export function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? DEFAULT_NAMESPACE}/${name}`;
}

export function describeResource(r: { kind: string; metadata: ObjectMeta }): string {
  return `${r.kind} ${objectKey(r.metadata.namespace, r.metadata.name)}`;
}

