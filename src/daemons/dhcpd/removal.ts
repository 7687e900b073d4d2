// What deleting a DhcpFailoverPeer (deletionPolicy Remove) takes off its two hosts, and when the
// dhcpd left behind has nothing to serve. See docs/adr/0028-finalizers-for-kea-and-dhcpd.md.
import type { DhcpFailoverPeer } from "../../api/index.js";
import { parseDhcpdConf, startsWith, walk } from "./conf-parser.js";
import { failoverOwner, failoverPeerName, includeFilePath, includeMarker } from "./render.js";

const SERVICE = "isc-dhcp-server.service" as const;

/**
 * Whether a dhcpd.conf declares nothing dhcpd could serve: no subnet, subnet6 or shared-network,
 * and no include (another relationship's file, or the user's own, may hold subnets). dhcpd
 * refuses to start on such a file ("No subnet declaration for eth0"), though `dhcpd -t` passes it.
 */
export function dhcpdServesNothing(conf: string): boolean {
  let serves = false;
  walk(parseDhcpdConf(conf, "dhcpd.conf"), (s) => {
    if (startsWith(s, "subnet") || startsWith(s, "subnet6") || startsWith(s, "shared-network") || startsWith(s, "include")) serves = true;
  });
  return !serves;
}

export interface DhcpdRemoval {
  host: string;
  path: string;
  service: typeof SERVICE;
  ownership: "owned" | "patched";
  owner: string;
  patch?: { marker: string };
  stopServiceIf?: (remaining: string) => boolean;
}

/**
 * Per side: our include file, and our marked line in the user's dhcpd.conf (checked with
 * `dhcpd -t` as it will be). A dhcpd whose dhcpd.conf then serves nothing is stopped and
 * disabled instead of restarted. Under Retain: nothing.
 */
export function dhcpdFailoverRemovals(peer: DhcpFailoverPeer): DhcpdRemoval[] {
  if (peer.spec.deletionPolicy === "Retain") return [];
  const owner = failoverOwner(peer);
  const includePath = includeFilePath(peer.spec, failoverPeerName(peer));
  return (["primary", "secondary"] as const).flatMap((role): DhcpdRemoval[] => [
    { host: peer.spec[role].host, path: includePath, service: SERVICE, ownership: "owned", owner },
    {
      host: peer.spec[role].host,
      path: peer.spec.configPath,
      service: SERVICE,
      ownership: "patched",
      owner,
      patch: { marker: includeMarker(owner) },
      stopServiceIf: dhcpdServesNothing,
    },
  ]);
}
