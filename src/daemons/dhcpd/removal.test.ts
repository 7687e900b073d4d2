import { describe, expect, it } from "vitest";
import { ensureIncludeLine, removeIncludeLine } from "./include-line.js";
import { DEBIAN_DEFAULT_DHCPD_CONF, includeLine, includeMarker } from "./render.js";
import { dhcpdFailoverRemovals, dhcpdServesNothing } from "./removal.js";
import { failoverPeer } from "./test-support.js";

describe("dhcpdServesNothing", () => {
  it("is true for bookworm's default dhcpd.conf once our include line is gone", () => {
    const marker = includeMarker("lab/lab-failover");
    const withOurs = ensureIncludeLine(DEBIAN_DEFAULT_DHCPD_CONF, includeLine("/etc/dhcp/ddi-ha/lab-failover.conf", "lab/lab-failover"), marker);
    expect(dhcpdServesNothing(withOurs)).toBe(false);
    expect(dhcpdServesNothing(removeIncludeLine(withOurs, marker))).toBe(true);
    expect(dhcpdServesNothing("")).toBe(true);
  });

  it("is false while the user's file declares a subnet, a shared network or includes anything", () => {
    expect(dhcpdServesNothing("authoritative;\nsubnet 198.18.5.0 netmask 255.255.255.0 { range 198.18.5.10 198.18.5.20; }\n")).toBe(false);
    expect(dhcpdServesNothing("SUBNET 198.18.5.0 netmask 255.255.255.0 { }\n")).toBe(false);
    expect(dhcpdServesNothing('shared-network lab { subnet 198.18.5.0 netmask 255.255.255.0 { } }\n')).toBe(false);
    expect(dhcpdServesNothing("subnet6 2001:db8::/64 { }\n")).toBe(false);
    expect(dhcpdServesNothing('include "/etc/dhcp/ddi-ha/other.conf"; # managed by ddi-ha-operator: lab/other\n')).toBe(false);
  });

  it("ignores comments and host declarations, which serve no subnet", () => {
    expect(dhcpdServesNothing("# subnet 198.18.5.0 netmask 255.255.255.0 { }\nhost printer { hardware ethernet 00:11:22:33:44:55; fixed-address 198.18.5.9; }\n")).toBe(true);
  });
});

describe("dhcpdFailoverRemovals", () => {
  it("Remove: per side, our include file and our marked line, the line judged for what is left", () => {
    const removals = dhcpdFailoverRemovals(failoverPeer());
    expect(removals.map(({ stopServiceIf, ...r }) => ({ ...r, judged: typeof stopServiceIf }))).toEqual(
      ["dhcp-a", "dhcp-b"].flatMap((host) => [
        { host, path: "/etc/dhcp/ddi-ha/lab-failover.conf", service: "isc-dhcp-server.service", ownership: "owned", owner: "lab/lab-failover", judged: "undefined" },
        {
          host,
          path: "/etc/dhcp/dhcpd.conf",
          service: "isc-dhcp-server.service",
          ownership: "patched",
          owner: "lab/lab-failover",
          patch: { marker: "# managed by ddi-ha-operator: lab/lab-failover" },
          judged: "function",
        },
      ]),
    );
  });

  it("follows peerName and configPath; Retain removes nothing", () => {
    const paths = dhcpdFailoverRemovals(failoverPeer({ peerName: "site-a", configPath: "/etc/dhcpd/dhcpd.conf" })).map((r) => r.path);
    expect([...new Set(paths)]).toEqual(["/etc/dhcpd/ddi-ha/site-a.conf", "/etc/dhcpd/dhcpd.conf"]);
    expect(dhcpdFailoverRemovals(failoverPeer({ deletionPolicy: "Retain" }))).toEqual([]);
  });
});
