// Rules that need several objects at once. The API server validates one object at a time, so
// these run in `ddi-ha validate` and in the operator, which reports them in status.
import { isIP, isIPv4 } from "node:net";
import { type DDIHost, type DDIResource, durationToMs } from "../api/index.js";
import { type ParsedCidr, parseCidr, parsedCidrsOverlap } from "../net/ip.js";
import { describeResource, type ManifestSet, objectKey, type ValidationProblem } from "./model.js";

interface HostReference {
  path: string;
  hostName: string;
}

function hostReferences(r: DDIResource): HostReference[] {
  switch (r.kind) {
    case "HAPair":
    case "DhcpFailoverPeer":
      return [
        { path: "spec.primary.host", hostName: r.spec.primary.host },
        { path: "spec.secondary.host", hostName: r.spec.secondary.host },
      ];
    case "KeaHACluster":
      return r.spec.peers.map((p, i) => ({ path: `spec.peers[${i}].host`, hostName: p.host }));
    case "DDIHost":
      return [];
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const DEFAULT_KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf";

export function crossObjectProblems(set: ManifestSet): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  const all: DDIResource[] = [...set.haPairs, ...set.keaClusters, ...set.failoverPeers];
  const error = (r: DDIResource, path: string, message: string, severity: "error" | "warning" = "error", kind?: ValidationProblem["kind"]) =>
    problems.push({ severity, resource: describeResource(r), source: set.sources.get(r), path, message, ...(kind ? { kind } : {}) });
  const hostOf = (r: DDIResource, name: string): DDIHost | undefined => set.hosts.get(objectKey(r.metadata.namespace, name));

  // Every reference names a DDIHost of the same namespace.
  for (const r of all) {
    for (const ref of hostReferences(r)) {
      if (!hostOf(r, ref.hostName)) {
        error(r, ref.path, `DDIHost "${ref.hostName}" not found in namespace "${r.metadata.namespace}": add a DDIHost named ${ref.hostName} or fix the name`, "error", "reference");
      }
    }
  }

  // Two DDIHost objects for one machine would let one relationship use the same host twice.
  for (const r of all) {
    const byEndpoint = new Map<string, HostReference>();
    for (const ref of hostReferences(r)) {
      const host = hostOf(r, ref.hostName);
      if (!host) continue;
      const endpoint = `${host.spec.address}:${host.spec.port}`;
      const earlier = byEndpoint.get(endpoint);
      if (earlier && earlier.hostName !== ref.hostName) {
        error(r, ref.path, `DDIHost "${ref.hostName}" and "${earlier.hostName}" are the same machine (${endpoint}): one relationship needs different hosts`);
      }
      byEndpoint.set(endpoint, ref);
    }
  }

  // VRIDs must be unique among pairs whose VIPs share a subnet (one L2 segment), or both pairs
  // split-brain. Subnets written with different prefixes (10.0.0.5/24, 10.0.0.6/25) still overlap.
  // Each VIP is parsed once: many pairs may share a VRID on different segments (bench: 1000 on VRID 51).
  const vipsByVrid = new Map<number, { vip: string; parsed: ParsedCidr; pair: DDIResource }[]>();
  const pairsByVip = new Map<string, DDIResource>();
  for (const pair of set.haPairs) {
    const vips = [pair.spec.virtualIP, ...(pair.spec.virtualIPv6 ? [pair.spec.virtualIPv6] : [])];
    for (const vip of vips) {
      const field = vip === pair.spec.virtualIP ? "spec.virtualIP" : "spec.virtualIPv6";
      const parsed = parseCidr(vip);
      const sameVrid = vipsByVrid.get(pair.spec.virtualRouterID) ?? [];
      const other = parsed && sameVrid.find((o) => parsedCidrsOverlap(o.parsed, parsed));
      if (other) {
        error(pair, "spec.virtualRouterID", `VRID ${pair.spec.virtualRouterID} is already used by ${describeResource(other.pair)} in the same subnet (${vip} overlaps ${other.vip}): pick another virtualRouterID`);
      } else if (parsed) {
        sameVrid.push({ vip, parsed, pair });
        vipsByVrid.set(pair.spec.virtualRouterID, sameVrid);
      }
      const address = vip.split("/")[0]!;
      const sameVip = pairsByVip.get(address);
      if (sameVip) error(pair, field, `VIP ${address} is already used by ${describeResource(sameVip)}: a VIP belongs to one pair`);
      else pairsByVip.set(address, pair);
    }
  }

  // On one host, keepalived reads one main file, and a VRID is unique per interface whatever the subnet.
  const nodesByHost = new Map<string, { pair: DDIResource & { kind: "HAPair" }; role: "primary" | "secondary" }[]>();
  for (const pair of set.haPairs) {
    for (const role of ["primary", "secondary"] as const) {
      const key = objectKey(pair.metadata.namespace, pair.spec[role].host);
      const nodes = nodesByHost.get(key) ?? [];
      nodes.push({ pair, role });
      nodesByHost.set(key, nodes);
    }
  }
  for (const nodes of nodesByHost.values()) {
    nodes.forEach(({ pair, role }, i) => {
      const node = pair.spec[role];
      for (const earlier of nodes.slice(0, i)) {
        const other = earlier.pair.spec[earlier.role];
        if (other.configPath !== node.configPath) {
          error(pair, `spec.${role}.configPath`, `${node.configPath} differs from ${other.configPath} used by ${describeResource(earlier.pair)} on DDIHost "${node.host}": keepalived reads one main file, so pairs on one host share it`);
        } else if (other.interface === node.interface && earlier.pair.spec.virtualRouterID === pair.spec.virtualRouterID && earlier.pair !== pair) {
          error(pair, "spec.virtualRouterID", `VRID ${pair.spec.virtualRouterID} is already used on ${node.interface} of DDIHost "${node.host}" by ${describeResource(earlier.pair)}: pick another virtualRouterID`);
        }
        if (pair.spec.instanceName !== undefined && earlier.pair !== pair && earlier.pair.spec.instanceName === pair.spec.instanceName) {
          error(pair, "spec.instanceName", `vrrp_instance ${pair.spec.instanceName} is already named by ${describeResource(earlier.pair)} on DDIHost "${node.host}": keepalived needs unique instance names; pick another instanceName`);
        }
      }
    });
  }

  // Debian's keepalived unit reads only the default file; another path needs -f in its defaults file.
  for (const pair of set.haPairs) {
    for (const role of ["primary", "secondary"] as const) {
      const path = pair.spec[role].configPath;
      if (path !== DEFAULT_KEEPALIVED_CONF) {
        error(
          pair,
          `spec.${role}.configPath`,
          `${path} is not ${DEFAULT_KEEPALIVED_CONF}, the only file Debian's and RHEL's keepalived units read: add "-f ${path}" to KEEPALIVED_OPTIONS in /etc/default/keepalived (or /etc/sysconfig/keepalived) on DDIHost "${pair.spec[role].host}"`,
          "warning",
        );
      }
    }
  }

  // Unicast VRRP needs each node's own IPv4 address; a DNS name cannot go into unicast_src_ip.
  for (const pair of set.haPairs) {
    if (!pair.spec.unicast) continue;
    const addresses = new Map<string, string>();
    for (const role of ["primary", "secondary"] as const) {
      const node = pair.spec[role];
      const host = hostOf(pair, node.host);
      if (!node.address && host && isIP(host.spec.address) === 0) {
        error(pair, `spec.${role}.address`, `unicast mode needs this node's IP, and DDIHost "${node.host}" has the DNS name ${host.spec.address}: set spec.${role}.address`);
      } else if (!node.address && host && !isIPv4(host.spec.address)) {
        error(pair, `spec.${role}.address`, `unicast mode for the IPv4 VIP needs this node's IPv4 address, and DDIHost "${node.host}" has the IPv6 address ${host.spec.address}: set spec.${role}.address`);
      }
      const address = node.address ?? host?.spec.address;
      const other = address === undefined ? undefined : addresses.get(address);
      if (other) error(pair, `spec.${role}.address`, `unicast mode: spec.${role}.address and spec.${other}.address (or their DDIHost addresses) are both ${address}: give each node its own address`);
      if (address !== undefined) addresses.set(address, role);
    }
  }

  // Kea 2.2 cannot resolve names in peer URLs; the default URL comes from the DDIHost address.
  for (const cluster of set.keaClusters) {
    const urls = new Map<string, string>();
    cluster.spec.peers.forEach((peer, i) => {
      const host = hostOf(cluster, peer.host);
      if (!peer.url && host && isIP(host.spec.address) === 0) {
        error(cluster, `spec.peers[${i}].url`, `DDIHost "${peer.host}" has the DNS name ${host.spec.address}, and Kea needs an IP literal in peer URLs: set spec.peers[${i}].url, e.g. http://<ip>:8000/`);
      }
      const url = peer.url ?? (host ? `http://${host.spec.address}:8000/` : undefined);
      if (!url) return;
      const other = urls.get(url);
      if (other) error(cluster, `spec.peers[${i}].url`, `peer ${peer.name} has the same URL as peer ${other} (${url}): each peer needs its own Control Agent URL`);
      else urls.set(url, peer.name);
    });
  }

  // "Several heartbeats" (Kea ARM): with fewer than three, one lost heartbeat can start a failover.
  for (const cluster of set.keaClusters) {
    const heartbeat = durationToMs(cluster.spec.heartbeatDelay);
    if (durationToMs(cluster.spec.maxResponseDelay) < 3 * heartbeat) {
      error(
        cluster,
        "spec.maxResponseDelay",
        `spec.maxResponseDelay ${cluster.spec.maxResponseDelay} is less than 3 × spec.heartbeatDelay ${cluster.spec.heartbeatDelay}: one or two lost heartbeats make the partner look unreachable; use at least ${formatMs(3 * heartbeat)}`,
        "warning",
      );
    }
  }

  // A host takes part in one relationship of a kind: dhcpd has one OMAPI listener per server, and
  // Kea 2.2 serves one HA relationship per server (two clusters would write the same config files).
  const onePerHost = (resources: readonly DDIResource[], why: string) => {
    const byHost = new Map<string, DDIResource>();
    for (const r of resources) {
      for (const ref of hostReferences(r)) {
        const key = objectKey(r.metadata.namespace, ref.hostName);
        const other = byHost.get(key);
        if (other && other !== r) error(r, ref.path, `DDIHost "${ref.hostName}" is already in ${describeResource(other)}: ${why}`);
        else byHost.set(key, r);
      }
    }
  };
  onePerHost(set.failoverPeers, "one host takes part in one DhcpFailoverPeer (dhcpd has one OMAPI port)");
  onePerHost(
    set.keaClusters,
    "Kea 2.2 runs one HA relationship per server, and both would write its kea-dhcp4 and Control Agent configs; put all of this server's peers in one KeaHACluster",
  );

  return problems;
}

/**
 * Missing Secrets are warnings here: in a cluster they may exist already. Apart from the other
 * cross-object rules because the controller validates a namespace's objects once per change and
 * adds each pass's Secrets after (ADR 0032).
 */
export function missingSecretProblems(set: ManifestSet): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  for (const host of set.hosts.values()) {
    const ref = host.spec.credentialsSecretRef.name;
    if (!set.secrets.has(objectKey(host.metadata.namespace, ref))) {
      problems.push({
        severity: "warning",
        resource: describeResource(host),
        source: set.sources.get(host),
        path: "spec.credentialsSecretRef.name",
        message: `Secret "${ref}" is not in this manifest set; it must exist in namespace "${host.metadata.namespace}" before the host can be reached`,
      });
    }
  }
  return problems;
}
