import { describe, expect, it } from "vitest";
import { cidrFamily, cidrsOverlap, isCelIP, ipv6ToBigInt } from "./ip.js";

describe("isCelIP", () => {
  it.each([
    ["198.18.0.10", true],
    ["fd00::10", true],
    ["2001:db8::198.18.0.1", true],
    [":", false],
    ["a:", false],
    ["fd00:::1", false],
    ["::ffff:198.18.0.1", false], // IPv4-mapped: Kubernetes' isIP() refuses it
    ["::ffff:c612:1", false],
    ["fe80::1%eth0", false],
    ["198.018.0.1", false],
  ])("%s → %s", (value, expected) => {
    expect(isCelIP(value)).toBe(expected);
  });
});

describe("cidrFamily", () => {
  it.each([
    ["198.18.0.0/15", 4],
    ["fd00::86/64", 6],
    ["198.18.0.1/33", 0],
    ["198.18.0.1/024", 0],
    ["a:/64", 0],
    ["198.18.0.1", 0],
  ])("%s → %d", (value, expected) => {
    expect(cidrFamily(value)).toBe(expected);
  });
});

describe("cidrsOverlap", () => {
  it.each([
    ["198.18.0.5/24", "198.18.0.6/25", true],
    ["198.18.0.200/24", "198.18.0.6/25", true],
    ["198.18.0.5/25", "198.18.0.200/25", false],
    ["198.18.0.5/24", "198.19.0.5/24", false],
    ["198.18.0.5/15", "198.19.7.5/24", true],
    ["fd00::1/64", "fd00::2:0:0:1/96", true],
    ["fd00::1/64", "fd00:0:0:1::1/64", false],
    ["198.18.0.5/24", "fd00::1/64", false],
  ])("%s and %s → %s", (a, b, expected) => {
    expect(cidrsOverlap(a, b)).toBe(expected);
    expect(cidrsOverlap(b, a)).toBe(expected);
  });

  it("reads a trailing dotted quad as the last two groups", () => {
    expect(ipv6ToBigInt("::198.18.0.1")).toBe(ipv6ToBigInt("::c612:1"));
  });
});
