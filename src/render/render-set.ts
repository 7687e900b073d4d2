// Renders every file of a validated manifest set, host by host. Each daemon module renders its
// own resources; this module only gathers them and refuses two resources fighting over a file.
import type { DDIHost, DDIResource, DhcpFailoverPeer } from "../api/index.js";
import { type DhcpdOmapiKey, failoverPeerName, generateOmapiKey, renderDhcpFailover } from "../daemons/dhcpd/index.js";
import { type Dhcp4Settings, renderKeaCluster } from "../daemons/kea/index.js";
import { renderKeepalivedPair } from "../daemons/keepalived/index.js";
import { describeResource, type ManifestSet, objectKey } from "../validation/model.js";
import type { RenderedFile } from "./types.js";

export class RenderConflictError extends Error {}

/** What rendering needs beyond the manifests; at apply time it is read from the hosts. */
export interface RenderInputs {
  /** OMAPI key per DhcpFailoverPeer (`namespace/name`). */
  omapiKeys?: ReadonlyMap<string, DhcpdOmapiKey>;
  /** Under PrimaryIsSourceOfTruth: the primary's Dhcp4 settings per KeaHACluster (`namespace/name`). */
  keaBaseDhcp4?: ReadonlyMap<string, Dhcp4Settings>;
  /** Under HAOnly: each peer host's current Dhcp4 settings per KeaHACluster (`namespace/name`). */
  keaCurrentDhcp4?: ReadonlyMap<string, ReadonlyMap<string, Dhcp4Settings>>;
}

export interface RenderFailure {
  resource: string;
  message: string;
}

export interface RenderedSet {
  files: RenderedFile[];
  /** Resources that could not be rendered; the others still are. */
  failures: RenderFailure[];
  notes: string[];
}

/** The DDIHosts of one namespace, by name: what the renderers resolve references against. */
export function hostsInNamespace(set: ManifestSet, namespace: string): Map<string, DDIHost> {
  const hosts = new Map<string, DDIHost>();
  for (const host of set.hosts.values()) if (host.metadata.namespace === namespace) hosts.set(host.metadata.name, host);
  return hosts;
}

export function resourceKey(r: DDIResource): string {
  return objectKey(r.metadata.namespace, r.metadata.name);
}

/** The OMAPI key from the referenced Secret (`secret`, optional `algorithm`), if the set has it. */
export function omapiKeyFromSet(set: ManifestSet, peer: DhcpFailoverPeer): DhcpdOmapiKey | undefined {
  const ref = peer.spec.omapi.keySecretRef;
  if (!ref) return undefined;
  const secret = set.secrets.get(objectKey(peer.metadata.namespace, ref.name))?.values;
  if (!secret?.secret) return undefined;
  return { name: omapiKeyName(peer), algorithm: secret.algorithm === "hmac-md5" ? "hmac-md5" : "hmac-sha256", secret: secret.secret.trim() };
}

export function omapiKeyName(peer: DhcpFailoverPeer): string {
  return `omapi-${failoverPeerName(peer)}`;
}

/** Merges files from several resources: shared files must agree, owned files must not collide. */
export function mergeRenderedFiles(files: readonly RenderedFile[]): RenderedFile[] {
  const byTarget = new Map<string, RenderedFile>();
  for (const file of files) {
    const target = `${file.host}:${file.path}`;
    const existing = byTarget.get(target);
    if (!existing) {
      byTarget.set(target, file);
      continue;
    }
    if (existing.ownership === "shared" && file.ownership === "shared" && existing.content === file.content) continue;
    throw new RenderConflictError(
      `${file.path} on DDIHost ${file.host} is rendered by both ${existing.owner} and ${file.owner}: give them different config paths or hosts`,
    );
  }
  return [...byTarget.values()].sort((a, b) => (a.host === b.host ? a.path.localeCompare(b.path) : a.host.localeCompare(b.host)));
}

function renderOne(set: ManifestSet, resource: DDIResource, inputs: RenderInputs, notes: string[]): RenderedFile[] {
  const hosts = hostsInNamespace(set, resource.metadata.namespace!);
  const key = resourceKey(resource);
  switch (resource.kind) {
    case "HAPair":
      return renderKeepalivedPair(resource, hosts);
    case "KeaHACluster": {
      const baseDhcp4 = inputs.keaBaseDhcp4?.get(key);
      const currentDhcp4ByHost = inputs.keaCurrentDhcp4?.get(key);
      return renderKeaCluster(resource, hosts, { ...(baseDhcp4 ? { baseDhcp4 } : {}), ...(currentDhcp4ByHost ? { currentDhcp4ByHost } : {}) });
    }
    case "DhcpFailoverPeer": {
      let omapiKey = inputs.omapiKeys?.get(key) ?? omapiKeyFromSet(set, resource);
      if (!omapiKey) {
        omapiKey = { name: omapiKeyName(resource), ...generateOmapiKey() };
        notes.push(`${describeResource(resource)}: no OMAPI key Secret in the manifest set, so a fresh key was rendered (the operator keeps it in a Secret)`);
      }
      return renderDhcpFailover(resource, hosts, omapiKey);
    }
    case "DDIHost":
      return [];
  }
}

export function renderManifestSet(set: ManifestSet, inputs: RenderInputs = {}): RenderedSet {
  const notes: string[] = [];
  const failures: RenderFailure[] = [];
  const files: RenderedFile[] = [];
  for (const resource of [...set.haPairs, ...set.keaClusters, ...set.failoverPeers]) {
    try {
      files.push(...renderOne(set, resource, inputs, notes));
    } catch (err) {
      failures.push({ resource: describeResource(resource), message: err instanceof Error ? err.message : String(err) });
    }
  }
  return { files: mergeRenderedFiles(files), failures, notes };
}
