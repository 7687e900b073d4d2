// Shared by this module's tests: the example manifest set, loaded and validated the way
// `ddi-ha validate` does it, and a spec builder for table tests.
import { fileURLToPath } from "node:url";
import type { DDIHost, DhcpFailoverPeer } from "../../api/index.js";
import { dhcpFailoverPeerSpecSchema } from "../../api/index.js";
import { exampleDir, hostsOf, loadExampleSet, testHost } from "../../testing/support.js";

export const EXAMPLE_DIR = exampleDir("isc-dhcpd-failover");
export const TESTDATA_DIR = fileURLToPath(new URL("./testdata/", import.meta.url));

export async function loadExample(): Promise<{ peer: DhcpFailoverPeer; hosts: Map<string, DDIHost> }> {
  const set = await loadExampleSet("isc-dhcpd-failover");
  const peer = set.failoverPeers[0];
  if (!peer || set.failoverPeers.length !== 1) throw new Error("the example must hold exactly one DhcpFailoverPeer");
  return { peer, hosts: hostsOf(set, peer.metadata.namespace!) };
}

export const host = testHost;

/** A validated DhcpFailoverPeer on the 198.18.0.0/15 test network, with overrides. */
export function failoverPeer(overrides: Record<string, unknown> = {}, name = "lab-failover", namespace = "lab"): DhcpFailoverPeer {
  const spec = dhcpFailoverPeerSpecSchema.parse({
    primary: { host: "dhcp-a", address: "198.18.0.2" },
    secondary: { host: "dhcp-b", address: "198.18.0.3" },
    maxResponseDelay: "30s",
    mclt: "30s",
    split: 128,
    subnets: [
      {
        subnet: "198.18.0.0/24",
        options: { routers: ["198.18.0.1"], domainNameServers: ["198.18.0.1"] },
        pools: [{ range: ["198.18.0.100", "198.18.0.199"], maxLeaseTime: "30m" }],
      },
    ],
    ...overrides,
  });
  return { apiVersion: "ddi-ha.io/v1alpha1", kind: "DhcpFailoverPeer", metadata: { name, namespace }, spec };
}

export function labHosts(): Map<string, DDIHost> {
  return new Map([
    ["dhcp-a", host("dhcp-a", "198.18.0.2")],
    ["dhcp-b", host("dhcp-b", "198.18.0.3")],
  ]);
}

/** Stands for the runtime-generated OMAPI secret in golden files. */
export const SECRET_PLACEHOLDER = "<OMAPI-SECRET>";
