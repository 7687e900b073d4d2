// What rendering needs from the hosts themselves: the Kea primary's config (the source of truth
// under PrimaryIsSourceOfTruth) and the OMAPI keys already in place.
import type { DDIHost } from "../api/index.js";
import { type DhcpdOmapiKey, failoverPeerName, includeFilePath } from "../daemons/dhcpd/index.js";
import { type Dhcp4Settings, parseKeaConfigText } from "../daemons/kea/index.js";
import type { HostSession } from "../exec/host-io.js";
import { omapiKeyFromSet, omapiKeyName, type RenderInputs, resourceKey } from "../render/render-set.js";
import type { RenderedFile } from "../render/types.js";
import { type ManifestSet, objectKey } from "../validation/model.js";

/** What the SSH transport's sessions tell about the host key they verified (others may not). */
export interface VerifiedHostKey {
  /** The key line (no comment) the host presented and the session accepted. */
  readonly observedHostKey?: string | undefined;
  /** Its `SHA256:` fingerprint. */
  readonly hostKeyFingerprint?: string | undefined;
}

/** Opens (or returns the pooled) session of a DDIHost. */
export type SessionProvider = (host: DDIHost) => Promise<HostSession & VerifiedHostKey>;

function hostOf(set: ManifestSet, namespace: string, name: string): DDIHost {
  const host = set.hosts.get(objectKey(namespace, name));
  if (!host) throw new Error(`DDIHost ${namespace}/${name} is not in the manifest set`);
  return host;
}

/** Reads `key "NAME" { algorithm ALG; secret "S"; }` back from the include file the operator wrote. */
export function omapiKeyFromIncludeFile(text: string, name: string): DhcpdOmapiKey | undefined {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const block = new RegExp(`key\\s+"?${escaped}"?\\s*\\{([^}]*)\\}`).exec(text)?.[1];
  if (!block) return undefined;
  const algorithm = /algorithm\s+(hmac-md5|hmac-sha256)\s*;/.exec(block)?.[1];
  const secret = /secret\s+"([A-Za-z0-9+/=]+)"\s*;/.exec(block)?.[1];
  if (!algorithm || !secret) return undefined;
  return { name, algorithm: algorithm as DhcpdOmapiKey["algorithm"], secret };
}

/** What rendering needs from the hosts: Kea base configs and OMAPI keys already in place. */
export async function gatherRenderInputs(set: ManifestSet, sessionOf: SessionProvider): Promise<RenderInputs> {
  const keaBaseDhcp4 = new Map<string, Dhcp4Settings>();
  const keaCurrentDhcp4 = new Map<string, Map<string, Dhcp4Settings>>();
  const omapiKeys = new Map<string, DhcpdOmapiKey>();

  const readDhcp4 = async (host: DDIHost, path: string): Promise<Dhcp4Settings | undefined> => {
    const text = await (await sessionOf(host)).readFile(path);
    if (text === undefined) return undefined;
    const parsed = parseKeaConfigText(text, `${host.metadata.name}:${path}`) as { Dhcp4?: Dhcp4Settings };
    return parsed.Dhcp4;
  };

  for (const cluster of set.keaClusters) {
    const ns = cluster.metadata.namespace!;
    if (cluster.spec.configSync === "HAOnly") {
      const current = new Map<string, Dhcp4Settings>();
      for (const peer of cluster.spec.peers) {
        const dhcp4 = await readDhcp4(hostOf(set, ns, peer.host), cluster.spec.configPath);
        if (dhcp4) current.set(peer.host, dhcp4);
      }
      keaCurrentDhcp4.set(resourceKey(cluster), current);
    } else if (!cluster.spec.dhcp4) {
      // Micetro's model: the primary's on-host config is the source of truth for every peer.
      const primary = cluster.spec.peers.find((p) => p.role === "primary")!;
      const dhcp4 = await readDhcp4(hostOf(set, ns, primary.host), cluster.spec.configPath);
      if (dhcp4) keaBaseDhcp4.set(resourceKey(cluster), dhcp4);
    }
  }

  for (const peer of set.failoverPeers) {
    if (omapiKeyFromSet(set, peer)) continue;
    // Without a Secret, keep the key already on the primary so a re-apply changes nothing.
    const primary = hostOf(set, peer.metadata.namespace!, peer.spec.primary.host);
    const text = await (await sessionOf(primary)).readFile(includeFilePath(peer.spec, failoverPeerName(peer)));
    const key = text ? omapiKeyFromIncludeFile(text, omapiKeyName(peer)) : undefined;
    if (key) omapiKeys.set(resourceKey(peer), key);
  }
  return { keaBaseDhcp4, keaCurrentDhcp4, omapiKeys };
}

/** Files per host, keyed `namespace/host` (a file's host is in its owner's namespace). */
export function groupByHost(files: readonly RenderedFile[]): Map<string, RenderedFile[]> {
  const byHost = new Map<string, RenderedFile[]>();
  for (const file of files) {
    const key = objectKey(file.owner.split("/")[0], file.host);
    byHost.set(key, [...(byHost.get(key) ?? []), file]);
  }
  return byHost;
}
