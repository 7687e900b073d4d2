import { describe, expect, it } from "vitest";
import { compareFailoverSides, lintDhcpdConfig } from "./index.js";

const HBA = "ff:".repeat(16) + "00:".repeat(15) + "00";

const PRIMARY_PEER = [
  "  primary;",
  "  address 198.18.0.2;",
  "  port 647;",
  "  peer address 198.18.0.3;",
  "  peer port 647;",
  "  max-response-delay 30;",
  "  max-unacked-updates 10;",
  "  load balance max seconds 3;",
  "  mclt 1800;",
  "  split 128;",
];
const SECONDARY_PEER = [
  "  secondary;",
  "  address 198.18.0.3;",
  "  port 647;",
  "  peer address 198.18.0.2;",
  "  peer port 647;",
  "  max-response-delay 30;",
  "  max-unacked-updates 10;",
  "  load balance max seconds 3;",
];
const POOL = ['  pool {', '    failover peer "p";', "    range 198.18.0.100 198.18.0.199;", "  }"];

/** A config with the peer block on lines 2.., then one subnet holding `subnetBody`. */
function conf(peerLines: readonly string[], subnetBody: readonly string[] = POOL): string {
  return ["ddns-update-style none;", 'failover peer "p" {', ...peerLines, "}", "subnet 198.18.0.0 netmask 255.255.255.0 {", ...subnetBody, "}", ""].join("\n");
}

const without = (lines: readonly string[], prefix: string) => lines.filter((l) => !l.trim().startsWith(prefix));

describe("lintDhcpdConfig", () => {
  it("accepts a complete primary and a complete secondary", () => {
    expect(lintDhcpdConfig(conf(PRIMARY_PEER), "p.conf")).toEqual([]);
    expect(lintDhcpdConfig(conf(SECONDARY_PEER), "s.conf")).toEqual([]);
  });

  // Each row: the bad config, and what the problem must say (line and fix).
  it.each([
    ["mclt on the secondary", conf([...SECONDARY_PEER, "  mclt 1800;"]), 'x.conf line 11: failover peer "p" is secondary but sets mclt; remove it'],
    ["split on the secondary", conf([...SECONDARY_PEER, "  split 128;"]), "x.conf line 11: failover peer \"p\" is secondary but sets split; remove it"],
    ["split together with hba", conf([...PRIMARY_PEER, `  hba ${HBA};`]), 'x.conf line 13: failover peer "p" sets both split and hba; keep only one'],
    ["hba before split", conf([...without(PRIMARY_PEER, "split"), `  hba ${HBA};`, "  split 128;"]), "x.conf line 13: failover peer \"p\" sets both split and hba"],
    ["a primary without mclt", conf(without(PRIMARY_PEER, "mclt")), 'x.conf line 2: failover peer "p" is primary but has no mclt; add e.g. `mclt 3600;`'],
    ["a primary without split or hba", conf(without(PRIMARY_PEER, "split")), "is primary but has neither split nor hba; add `split 128;`"],
    ["split out of range", conf([...without(PRIMARY_PEER, "split"), "  split 300;"]), "x.conf line 12: split must be 0-256"],
    ["no load balance max seconds", conf(without(PRIMARY_PEER, "load balance")), "has no `load balance max seconds`; add `load balance max seconds 3;` on both peers (left out, it is 0"],
    ["no max-response-delay", conf(without(SECONDARY_PEER, "max-response-delay")), 'x.conf line 2: failover peer "p" has no `max-response-delay`; add `max-response-delay 60;`'],
    ["no max-unacked-updates", conf(without(SECONDARY_PEER, "max-unacked-updates")), "has no `max-unacked-updates`; add `max-unacked-updates 10;`"],
    ["no peer address", conf(without(PRIMARY_PEER, "peer address")), "has no `peer address`; add the partner's failover address"],
    ["no address", conf(without(PRIMARY_PEER, "address 198.18.0.2")), "has no `address`; add this server's own failover address"],
    ["no role", conf(without(PRIMARY_PEER, "primary")), "declares neither primary nor secondary"],
    ["range dynamic-bootp in a failover pool", conf(PRIMARY_PEER, ["  pool {", '    failover peer "p";', "    range dynamic-bootp 198.18.0.100 198.18.0.199;", "  }"]), "x.conf line 17: range dynamic-bootp in a failover pool; remove `dynamic-bootp`"],
    ["dynamic bootp clients allowed in a failover pool", conf(PRIMARY_PEER, [...POOL.slice(0, 3), "    allow dynamic bootp clients;", "  }"]), "x.conf line 18: failover pool allows dynamic bootp clients; remove it or use `deny dynamic bootp clients;`"],
    ["a failover pool next to a plain pool", conf(PRIMARY_PEER, [...POOL, "  pool {", "    range 198.18.0.200 198.18.0.209;", "  }"]), "x.conf line 14: subnet 198.18.0.0 netmask 255.255.255.0 mixes failover and non-failover pools"],
    ["a failover pool next to a bare range", conf(PRIMARY_PEER, ["  range 198.18.0.200 198.18.0.209;", ...POOL]), "mixes failover and non-failover pools (a range outside a failover pool counts)"],
    ["a pool naming an undeclared peer", conf(PRIMARY_PEER, ["  pool {", '    failover peer "q";', "    range 198.18.0.100 198.18.0.199;", "  }"]), 'x.conf line 16: pool refers to failover peer "q", which is not declared'],
    ["a peer declared twice", conf(PRIMARY_PEER) + 'failover peer "p" {\n' + SECONDARY_PEER.join("\n") + "\n}\n", 'failover peer "p" is declared twice (first at x.conf line 2)'],
  ])("refuses %s", (_label, text, message) => {
    const problems = lintDhcpdConfig(text, "x.conf");
    expect(problems.join("\n")).toContain(message);
  });

  it("finds mixed pools across the subnets of a shared network", () => {
    const text = [
      'failover peer "p" {', ...PRIMARY_PEER, "}",
      "shared-network lab {",
      "  subnet 198.18.0.0 netmask 255.255.255.0 {", ...POOL.map((l) => `  ${l}`), "  }",
      "  subnet 198.18.1.0 netmask 255.255.255.0 {", "    range 198.18.1.10 198.18.1.20;", "  }",
      "}",
    ].join("\n");
    expect(lintDhcpdConfig(text, "x.conf")).toEqual([
      "x.conf line 13: shared-network lab mixes failover and non-failover pools across its subnets; serve every range of the segment with failover (a `pool { failover peer …; range …; }` each) or none",
    ]);
  });

  it("ignores comments, quoting and the leases file's `failover peer … state` blocks", () => {
    const text = [
      "# failover peer \"x\" { secondary; mclt 5; }",
      'failover peer "p" {', ...PRIMARY_PEER.map((l) => `${l} # primary side`), "}",
      'failover peer "p" state { my state normal at 0 2026/11/22 07:52:48; partner state normal at 0 2026/11/22 07:52:48; }',
      "subnet 198.18.0.0 netmask 255.255.255.0 {", ...POOL, "}",
    ].join("\r\n");
    expect(lintDhcpdConfig(text, "x.conf")).toEqual([]);
  });
});

describe("compareFailoverSides", () => {
  it("accepts matching sides", () => {
    expect(compareFailoverSides(conf(PRIMARY_PEER), conf(SECONDARY_PEER))).toEqual([]);
  });

  it("accepts the same pools written with different layout and comments", () => {
    const relaid = conf(SECONDARY_PEER, ['  pool { failover peer "p"; # same pool', "range 198.18.0.100   198.18.0.199; }"]);
    expect(compareFailoverSides(conf(PRIMARY_PEER), relaid)).toEqual([]);
  });

  it.each([
    ["a different pool range", conf(PRIMARY_PEER), conf(SECONDARY_PEER, ['  pool {', '    failover peer "p";', "    range 198.18.0.100 198.18.0.150;", "  }"]), "primary line 15: this failover pool has no identical pool on secondary"],
    ["a pool missing on the secondary", conf(PRIMARY_PEER, [...POOL, ...POOL.map((l) => l.replace("100 198.18.0.199", "200 198.18.0.220"))]), conf(SECONDARY_PEER), "primary line 19: this failover pool has no identical pool on secondary"],
    ["a pool only on the secondary", conf(PRIMARY_PEER), conf(SECONDARY_PEER, [...POOL, "  pool {", '    failover peer "p";', "    range 198.18.0.200 198.18.0.220;", "  }"]), "this failover pool has no identical pool on primary"],
    ["a different max-lease-time in a pool", conf(PRIMARY_PEER, [...POOL.slice(0, 2), "    max-lease-time 1800;", ...POOL.slice(2)]), conf(SECONDARY_PEER), "no identical pool on secondary"],
    ["peer port not the partner's port", conf(PRIMARY_PEER.map((l) => l.replace("peer port 647", "peer port 847"))), conf(SECONDARY_PEER), "primary line 7: peer port 847 differs from the partner's port 647 (secondary line 5); set peer port 647"],
    ["a port left to its default on one side", conf(without(PRIMARY_PEER, "port 647")), conf(SECONDARY_PEER.map((l) => l.replace("  port 647", "  port 847").replace("peer port 847", "peer port 647"))), "peer port 647 differs from the partner's port 847"],
    ["peer address not the partner's address", conf(PRIMARY_PEER.map((l) => l.replace("peer address 198.18.0.3", "peer address 198.18.0.9"))), conf(SECONDARY_PEER), "primary line 6: peer address 198.18.0.9 differs from the partner's address 198.18.0.3"],
    ["two primaries", conf(PRIMARY_PEER), conf(PRIMARY_PEER), 'secondary line 2: failover peer "p" must be `secondary;` on the secondary side'],
    ["different load balance max seconds", conf(PRIMARY_PEER), conf(without(SECONDARY_PEER, "load balance")), "load balance max seconds is 3 on primary but unset (0) on secondary"],
    ["the peer missing on one side", conf(PRIMARY_PEER), "ddns-update-style none;\n", 'failover peer "p" is declared in primary but not in secondary'],
  ])("finds %s", (_label, primary, secondary, message) => {
    expect(compareFailoverSides(primary, secondary).join("\n")).toContain(message);
  });
});
