// Shared by this module's tests: the example manifest set loaded the way `ddi-ha validate` does
// it, spec builders for table tests, and a HostIO that runs keepalived in a private network
// namespace holding the interfaces the config names (keepalived -t exits 5 when one is missing).
import { fileURLToPath } from "node:url";
import type { DDIHost, HAPair } from "../../api/index.js";
import { haPairSpecSchema } from "../../api/index.js";
import type { HostIO } from "../../exec/host-io.js";
import type { RenderedFile } from "../../render/types.js";
import { renderKeepalivedPair } from "./render.js";
import { exampleDir, hostsOf, loadExampleSet, testHost } from "../../testing/support.js";

export const EXAMPLE_DIR = exampleDir("ddi-central-keepalived");
export const TESTDATA_DIR = fileURLToPath(new URL("./testdata/", import.meta.url));

export async function loadExample(): Promise<{ pair: HAPair; hosts: Map<string, DDIHost> }> {
  const set = await loadExampleSet("ddi-central-keepalived");
  const pair = set.haPairs[0];
  if (!pair || set.haPairs.length !== 1) throw new Error("the example must hold exactly one HAPair");
  return { pair, hosts: hostsOf(set, pair.metadata.namespace!) };
}

export const host = testHost;

/** Two hosts on the 198.18.0.0/15 test network, plus one reached by DNS name. */
export function labHosts(): Map<string, DDIHost> {
  return new Map([
    ["ka-a", host("ka-a", "198.18.0.2")],
    ["ka-b", host("ka-b", "198.18.0.3")],
    ["ka-dns", host("ka-dns", "ka-dns.lab.example")],
  ]);
}

/** A validated HAPair between ka-a (eth0) and ka-b (eth1), with spec overrides. */
export function haPair(overrides: Record<string, unknown> = {}, name = "lab-vip", namespace = "lab"): HAPair {
  const spec = haPairSpecSchema.parse({
    primary: { host: "ka-a", interface: "eth0" },
    secondary: { host: "ka-b", interface: "eth1" },
    virtualIP: "198.18.0.86/24",
    virtualRouterID: 61,
    services: { dns: true },
    ...overrides,
  });
  return { apiVersion: "ddi-ha.io/v1alpha1", kind: "HAPair", metadata: { name, namespace }, spec };
}

/**
 * Runs `keepalived` (and only it) inside `unshare -n` with the given interfaces created first, so
 * `keepalived -t` finds enp1s0/br0 on a machine that has neither. A test helper: on a real host
 * the interfaces exist and the checker runs keepalived directly.
 */
export function withNetnsInterfaces(io: HostIO, interfaces: readonly string[]): HostIO {
  // Some kernels lack the dummy module; a veth pair (peer named ddi-kaN) works everywhere.
  const setup = interfaces
    .map((name, n) => `{ ip link add ${name} type dummy 2>/dev/null || ip link add ${name} type veth peer name ddi-ka${n}; } && ip link set ${name} up`)
    .join(" && ");
  return {
    ...io,
    run(argv, options) {
      if (argv[0] !== "keepalived") return io.run(argv, options);
      return io.run(["unshare", "-n", "sh", "-c", `${setup || ":"} && exec "$@"`, "sh", ...argv], options);
    },
  };
}

/** Variants whose pair files are golden-tested here and checked with keepalived -t in check.test.ts. */
export const VARIANTS: Record<string, () => RenderedFile[]> = {
  // preempt false: both BACKUP + nopreempt, FAULT (weight 0) on a failed check; Kea for both DHCP families.
  nopreempt: () =>
    renderKeepalivedPair(
      haPair({ preempt: false, services: { dns: false, dhcp: "Both", dhcpv4Server: "kea-dhcp4", dhcpv6Server: "kea-dhcp6" } }, "nopreempt"),
      labHosts(),
    ),
  // unicast: the primary's address from spec, the secondary's from its DDIHost; PASS authentication.
  unicast: () =>
    renderKeepalivedPair(
      haPair({ unicast: true, authPass: "s3cret", primary: { host: "ka-a", interface: "eth0", address: "198.18.0.12" } }, "unicast"),
      labHosts(),
    ),
  // IPv6 VIP: a second instance, VRRPv3, same VRID (VRIDs are per address family).
  ipv6: () => renderKeepalivedPair(haPair({ virtualIPv6: "2001:db8::86/64", services: { dns: true, dhcp: "DHCPv6" } }, "dual-stack"), labHosts()),
  // A fraction of a second needs VRRPv3 on the IPv4 instance too.
  fractional: () => renderKeepalivedPair(haPair({ advertInterval: "500ms" }, "fast"), labHosts()),
  // preempt with a delay: both BACKUP (keepalived ignores preempt_delay on a MASTER).
  "preempt-delay": () => renderKeepalivedPair(haPair({ preemptDelay: "30s" }, "delayed"), labHosts()),
};
