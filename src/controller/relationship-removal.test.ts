import { describe, expect, it } from "vitest";
import { testCluster } from "../daemons/kea/test-fixtures.js";
import { failoverPeer } from "../daemons/dhcpd/test-support.js";
import type { ApplyResult } from "../apply/index.js";
import { CLEANUP_FINALIZER, hostsInUse } from "./finalizer.js";
import { failoverPeerRemovalsByHost, keaRemovalWaves, stoppedMessage } from "./relationship-removal.js";

const kea = (deletionPolicy?: "Retain") =>
  testCluster({
    mode: "hot-standby",
    peers: [
      { name: "s2", host: "kea-b", role: "standby" },
      { name: "s1", host: "kea-a", role: "primary" },
      { name: "s3", host: "kea-c", role: "backup" },
    ],
    ...(deletionPolicy ? { deletionPolicy } : {}),
  });

describe("removing a KeaHACluster", () => {
  it("stops the other peers first, then makes the primary standalone", () => {
    const waves = keaRemovalWaves(kea(), () => undefined);
    expect(waves.map((w) => [...w.keys()])).toEqual([["kea-b", "kea-c"], ["kea-a"]]);
    expect(waves[0]!.get("kea-b")!.stop).toEqual(["kea-dhcp4-server.service"]);
    expect(waves[1]!.get("kea-a")!.stop).toEqual([]);
    expect(keaRemovalWaves(kea("Retain"), () => undefined)).toEqual([]);
  });
});

describe("removing a DhcpFailoverPeer", () => {
  it("one wave, both sides at once, two removals each", () => {
    const byHost = failoverPeerRemovalsByHost(failoverPeer());
    expect([...byHost.keys()]).toEqual(["dhcp-a", "dhcp-b"]);
    expect(byHost.get("dhcp-a")!.remove.map((r) => r.path)).toEqual(["/etc/dhcp/ddi-ha/lab-failover.conf", "/etc/dhcp/dhcpd.conf"]);
    expect(failoverPeerRemovalsByHost(failoverPeer({ deletionPolicy: "Retain" })).size).toBe(0);
  });

  it("says which daemons it stopped, or nothing", () => {
    const result = (host: string, stopped?: ApplyResult["stopped"]): ApplyResult => ({ host, changed: [], unchanged: [], removed: [], reloaded: [], ok: true, notes: [], ...(stopped ? { stopped } : {}) });
    expect(stoppedMessage([result("h1")])).toBeUndefined();
    expect(stoppedMessage([result("h2", ["isc-dhcp-server.service"]), result("h1", ["isc-dhcp-server.service"])])).toBe(
      "stopped and disabled isc-dhcp-server.service on DDIHost h1, isc-dhcp-server.service on DDIHost h2: the removal left it nothing to serve (its config is kept on disk; start it by hand once it has a subnet again)",
    );
  });
});

describe("hostsInUse across kinds", () => {
  it("counts every Kea peer's host and both failover sides, unless Retain", () => {
    const meta = (name: string) => ({ name, finalizers: [CLEANUP_FINALIZER] });
    const inUse = hostsInUse([
      { metadata: meta("kea"), spec: kea().spec },
      { metadata: meta("kea-kept"), spec: { ...kea().spec, peers: [{ host: "kea-z" }], deletionPolicy: "Retain" } },
      { metadata: meta("dhcp"), spec: failoverPeer().spec },
      { metadata: meta("broken"), spec: { peers: "not a list" } },
    ]);
    expect([...inUse].sort()).toEqual(["dhcp-a", "dhcp-b", "kea-a", "kea-b", "kea-c"]);
  });
});
