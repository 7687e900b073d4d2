// Deleting a KeaHACluster or DhcpFailoverPeer (and, through the same door, an HAPair): what the
// cleanup finalizer asks of each host. The pure parts are the daemon modules' removal functions;
// this is the thin edge that reads the live files they need and hands the rest to the apply
// engine. See docs/adr/0028-finalizers-for-kea-and-dhcpd.md.
import type { DDIResource, DhcpFailoverPeer, KeaHACluster } from "../api/index.js";
import type { ApplyOptions } from "../apply/index.js";
import { dhcpdFailoverRemovals } from "../daemons/dhcpd/index.js";
import { keaClusterRemovals } from "../daemons/kea/index.js";
import type { SessionProvider } from "../engine/render-inputs.js";
import { type ManifestSet, objectKey } from "../validation/model.js";
import { type HostRemoval, type PairRemoval, applyRemovals, removeHAPairFromHosts } from "./finalizer.js";

export { stoppedMessage } from "./finalizer.js";

type GoneForGood = (host: string) => string | undefined;

/** Both sides at once: the include file and the marked line; a dhcpd left serving nothing is stopped. */
export function failoverPeerRemovalsByHost(peer: DhcpFailoverPeer): Map<string, HostRemoval> {
  const byHost = new Map<string, HostRemoval>();
  for (const { host, ...file } of dhcpdFailoverRemovals(peer)) byHost.set(host, { remove: [...(byHost.get(host)?.remove ?? []), file] });
  return byHost;
}

/**
 * The non-primary peers first (stopped, so that no second standalone server ever serves the
 * pool), then the primary (standalone, serving). Live configs come from `liveConfigOf`.
 */
export function keaRemovalWaves(cluster: KeaHACluster, liveConfigOf: (host: string) => string | undefined): Map<string, HostRemoval>[] {
  const primary = cluster.spec.peers.find((p) => p.role === "primary")?.host;
  const wave = (primaryWave: boolean) =>
    new Map(
      keaClusterRemovals(cluster, liveConfigOf)
        .filter((r) => (r.host === primary) === primaryWave)
        .map((r): [string, HostRemoval] => [r.host, { remove: [], files: r.files, stop: r.stop }]),
    );
  return [wave(false), wave(true)].filter((w) => w.size > 0);
}

async function removeKeaCluster(cluster: KeaHACluster, set: ManifestSet, sessionOf: SessionProvider, options: ApplyOptions, goneForGood: GoneForGood): Promise<PairRemoval> {
  const ns = cluster.metadata.namespace!;
  const live = new Map<string, string | undefined>();
  if (cluster.spec.deletionPolicy !== "Retain") {
    // Each reachable peer's own config: the HA hook comes out of what the host has now.
    await Promise.all(
      cluster.spec.peers.map(async ({ host: name }) => {
        const host = set.hosts.get(objectKey(ns, name));
        if (!host || goneForGood(name)) return;
        live.set(name, await (await sessionOf(host)).readFile(cluster.spec.configPath));
      }),
    );
  }
  return applyRemovals(`KeaHACluster ${cluster.metadata.name} from its peers`, ns, keaRemovalWaves(cluster, (h) => live.get(h)), set, sessionOf, options, goneForGood);
}

/** Takes a deleted relationship off its hosts (nothing under deletionPolicy Retain). */
export async function removeRelationshipFromHosts(
  resource: DDIResource,
  set: ManifestSet,
  sessionOf: SessionProvider,
  options: ApplyOptions = {},
  goneForGood: GoneForGood = () => undefined,
): Promise<PairRemoval> {
  switch (resource.kind) {
    case "HAPair":
      return removeHAPairFromHosts(resource, set, sessionOf, options, goneForGood);
    case "DhcpFailoverPeer":
      return applyRemovals(`DhcpFailoverPeer ${resource.metadata.name}'s dhcpd files`, resource.metadata.namespace!, [failoverPeerRemovalsByHost(resource)], set, sessionOf, options, goneForGood);
    case "KeaHACluster":
      return removeKeaCluster(resource, set, sessionOf, options, goneForGood);
    default:
      return { results: [], abandoned: [] };
  }
}

