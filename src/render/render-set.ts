// Renders every file of a validated manifest set, host by host. Each daemon module renders its
// own resources; this module only gathers them and refuses two resources fighting over a file.
import type { DDIHost, DDIResource, DhcpFailoverPeer } from "../api/index.js";
import { type DhcpdOmapiKey, failoverPeerName, generateOmapiKey, renderDhcpFailover } from "../daemons/dhcpd/index.js";
import { type Dhcp4Settings, renderKeaCluster } from "../daemons/kea/index.js";
import { renderKeepalivedPair } from "../daemons/keepalived/index.js";
import { describeResource, type ManifestSet, objectKey } from "../validation/model.js";
import type { RenderedFile } from "./types.js";

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

/** Two rendered files at one target that cannot both be written: shared files must agree, owned files must not collide. */
function collides(a: RenderedFile, b: RenderedFile): boolean {
  return !(a.ownership === "shared" && b.ownership === "shared" && a.content === b.content);
}

const byTarget = (a: RenderedFile, b: RenderedFile) => (a.host === b.host ? a.path.localeCompare(b.path) : a.host.localeCompare(b.host));

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
  const rendered: { resource: DDIResource; files: RenderedFile[] }[] = [];
  for (const resource of [...set.haPairs, ...set.keaClusters, ...set.failoverPeers]) {
    try {
      rendered.push({ resource, files: renderOne(set, resource, inputs, notes) });
    } catch (err) {
      failures.push({ resource: describeResource(resource), message: err instanceof Error ? err.message : String(err) });
    }
  }
  // A file two resources fight over fails both (whichever came first might overwrite the other's
  // live file); the other resources are still rendered.
  const claims = new Map<string, { resource: DDIResource; file: RenderedFile }>();
  const conflicting = new Set<DDIResource>();
  for (const { resource, files } of rendered) {
    for (const file of files) {
      const target = `${file.host}:${file.path}`;
      const earlier = claims.get(target);
      if (!earlier) {
        claims.set(target, { resource, file });
        continue;
      }
      if (!collides(earlier.file, file)) continue;
      const both = earlier.resource === resource ? `twice by ${describeResource(resource)}` : `by both ${describeResource(earlier.resource)} and ${describeResource(resource)}`;
      const message = `${file.path} on DDIHost ${file.host} is rendered ${both}: give them different config paths or hosts`;
      for (const r of new Set([earlier.resource, resource])) {
        if (!conflicting.has(r)) failures.push({ resource: describeResource(r), message });
        conflicting.add(r);
      }
    }
  }
  const files = new Map<string, RenderedFile>();
  for (const { resource, files: own } of rendered) {
    if (conflicting.has(resource)) continue;
    for (const file of own) if (!files.has(`${file.host}:${file.path}`)) files.set(`${file.host}:${file.path}`, file);
  }
  return { files: [...files.values()].sort(byTarget), failures, notes };
}
