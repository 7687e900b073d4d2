import { describe, expect, it } from "vitest";
import { ipv4NetworkOrBroadcast, isGlobalUnicastIP, nonHostAddressKind } from "./ip.js";

describe("addresses that cannot be a host's own (as Go's IsGlobalUnicast, which CEL calls)", () => {
  it.each([
    ["198.18.0.10", undefined],
    ["10.0.0.1", undefined],
    ["0.1.2.3", undefined],
    ["fd00::10", undefined],
    ["2001:db8::1", undefined],
    ["0.0.0.0", "the unspecified address"],
    ["255.255.255.255", "the limited broadcast address"],
    ["127.0.0.1", "a loopback address (127.0.0.0/8)"],
    ["127.255.0.9", "a loopback address (127.0.0.0/8)"],
    ["224.0.0.18", "a multicast address (224.0.0.0/4)"],
    ["239.255.255.250", "a multicast address (224.0.0.0/4)"],
    ["169.254.1.1", "a link-local address (169.254.0.0/16)"],
    ["::", "the unspecified address (::)"],
    ["::1", "the loopback address (::1)"],
    ["ff02::12", "a multicast address (ff00::/8)"],
    ["fe80::1", "a link-local address (fe80::/10)"],
    ["febf::1", "a link-local address (fe80::/10)"],
  ])("%s", (ip, kind) => {
    expect(nonHostAddressKind(ip)).toBe(kind);
    expect(isGlobalUnicastIP(ip)).toBe(kind === undefined);
  });

  it.each([
    ["198.18.0.0/24", "network"],
    ["198.18.0.255/24", "broadcast"],
    ["198.18.0.5/24", undefined],
    ["198.18.0.4/30", "network"],
    ["198.18.0.7/30", "broadcast"],
    ["198.18.0.0/31", undefined],
    ["198.18.0.1/32", undefined],
    ["10.0.255.255/16", "broadcast"],
  ])("%s is the %s address of its prefix", (cidr, which) => {
    expect(ipv4NetworkOrBroadcast(cidr)).toBe(which);
  });
});
