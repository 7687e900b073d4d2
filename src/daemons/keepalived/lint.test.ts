import { describe, expect, it } from "vitest";
import { lintKeepalivedConfig, lintKeepalivedSources, parseKeepalivedConf } from "./index.js";

const GLOBALS = "global_defs {\n  enable_script_security\n  script_user root\n}\n";
const SCRIPT = 'vrrp_script chk {\n  script "/usr/bin/systemctl is-active --quiet named.service"\n}\n';

/** A clean config with one instance; `body` replaces the instance's tunable lines. */
function config(body: string, { globals = GLOBALS, vips = "198.18.0.86/24 dev eth0" } = {}): string {
  return `${globals}${SCRIPT}vrrp_instance vi {
  interface eth0
${body}  virtual_ipaddress {
    ${vips.split("\n").join("\n    ")}
  }
}
`;
}
const CLEAN = "  state BACKUP\n  virtual_router_id 51\n  priority 100\n  track_script {\n    chk weight -60\n  }\n";

describe("lintKeepalivedConfig", () => {
  it("accepts a clean config", () => {
    expect(lintKeepalivedConfig(config(CLEAN), "/etc/keepalived/keepalived.conf")).toEqual([]);
  });

  // Each row: a bad config, and the message (file, line, what is wrong, the fix) we expect.
  const rows: { name: string; text: string; expected: string }[] = [
    {
      name: "priority 0",
      text: config(CLEAN.replace("priority 100", "priority 0")),
      expected: "k.conf line 12: priority 0 is outside 1-254 (255 claims to own the address); use e.g. 150 on the primary and 100 on the secondary",
    },
    {
      name: "priority 255",
      text: config(CLEAN.replace("priority 100", "priority 255")),
      expected: "k.conf line 12: priority 255 is outside 1-254",
    },
    {
      name: "VRID 0",
      text: config(CLEAN.replace("virtual_router_id 51", "virtual_router_id 0")),
      expected: "k.conf line 11: virtual_router_id 0 is outside 1-255; pick a free VRID from 1 to 255",
    },
    {
      name: "VRID missing",
      text: config(CLEAN.replace("  virtual_router_id 51\n", "")),
      expected: "k.conf line 8: vrrp_instance vi has no virtual_router_id; add one from 1 to 255, unique per interface on the segment",
    },
    {
      name: "auth_pass longer than 8",
      text: config(`${CLEAN}  authentication {\n    auth_type PASS\n    auth_pass 123456789\n  }\n`),
      expected: "k.conf line 18: auth_pass is 9 characters and VRRPv2 keeps only the first 8; use at most 8",
    },
    {
      name: "authentication in VRRPv3",
      text: config(`${CLEAN}  version 3\n  authentication {\n    auth_type PASS\n    auth_pass abc\n  }\n`),
      expected: "k.conf line 17: authentication in VRRPv3 vrrp_instance vi is ignored by keepalived; remove it",
    },
    {
      name: "mixed families in one virtual_ipaddress block",
      text: config(CLEAN, { vips: "198.18.0.86/24 dev eth0\n2001:db8::86/64 dev eth0" }),
      expected: "k.conf line 16: virtual_ipaddress of vrrp_instance vi mixes IPv4 and IPv6; keepalived drops the other family: put IPv6 VIPs in their own vrrp_instance",
    },
    {
      name: "no virtual_ipaddress",
      text: config(CLEAN, { vips: "" }).replace(/ {2}virtual_ipaddress \{\n\s*\n {2}\}\n/, ""),
      expected: "k.conf line 8: vrrp_instance vi has no virtual_ipaddress; add the VIP",
    },
    {
      name: "nopreempt with state MASTER",
      text: config(CLEAN.replace("state BACKUP", "state MASTER").replace("chk weight -60", "chk weight 0") + "  nopreempt\n"),
      expected: "k.conf line 16: nopreempt in vrrp_instance vi with state MASTER; set `state BACKUP` on both nodes (keepalived ignores nopreempt otherwise)",
    },
    {
      name: "preempt_delay with state MASTER",
      text: config(`${CLEAN.replace("state BACKUP", "state MASTER")}  preempt_delay 30\n`),
      expected: "k.conf line 16: preempt_delay in vrrp_instance vi with state MASTER; set `state BACKUP` on both nodes",
    },
    {
      name: "nopreempt with a nonzero track_script weight",
      text: config(`${CLEAN}  nopreempt\n`),
      expected: "k.conf line 14: track_script chk has weight -60 under nopreempt in vrrp_instance vi; use `weight 0` so a failed check puts the node in FAULT",
    },
    {
      name: "nopreempt with the weight taken from the vrrp_script",
      text: config("  state BACKUP\n  nopreempt\n  virtual_router_id 51\n  priority 100\n  track_script {\n    chk\n  }\n").replace(
        "named.service\"\n}",
        'named.service"\n  weight -20\n}',
      ),
      expected: "k.conf line 16: track_script chk has weight -20 under nopreempt",
    },
    {
      name: "track_script weight beyond keepalived's range",
      text: config(CLEAN.replace("chk weight -60", "chk weight -254")),
      expected: "k.conf line 14: track_script chk weight -254 is outside -253..253; keepalived clamps it",
    },
    {
      name: "scripts without enable_script_security",
      text: config(CLEAN, { globals: "global_defs {\n  script_user root\n}\n" }),
      expected: "k.conf line 4: scripts are configured (vrrp_script) but global_defs lacks enable_script_security; add them to global_defs",
    },
    {
      name: "scripts without any global_defs",
      text: config(CLEAN, { globals: "" }),
      expected: "k.conf line 1: scripts are configured (vrrp_script) but global_defs lacks enable_script_security and script_user root",
    },
    {
      name: "fractional advert_int without version 3",
      text: config(`${CLEAN}  advert_int 0.5\n`),
      expected: "k.conf line 16: advert_int 0.5 is a fraction of a second, which VRRPv2 rounds; add `version 3` to vrrp_instance vi (and drop authentication)",
    },
    {
      name: "unicast without unicast_fault_no_peer",
      text: config(`${CLEAN}  unicast_src_ip 198.18.0.2\n  unicast_peer {\n    198.18.0.3\n  }\n`),
      expected: "k.conf line 17: unicast vrrp_instance vi has no unicast_fault_no_peer; add it so an empty peer list faults instead of falling back to multicast",
    },
    {
      name: "an empty file",
      text: "\n",
      expected: "k.conf: the file is empty; bookworm's keepalived.service has ConditionFileNotEmpty and silently does not start",
    },
    {
      name: "a file of comments only",
      text: "# keepalived.conf\n! nothing here\n",
      expected: "k.conf: the file is empty",
    },
  ];
  it.each(rows)("refuses $name", ({ text, expected }) => {
    const problems = lintKeepalivedConfig(text, "k.conf");
    expect(problems.some((p) => p.startsWith(expected)), `got ${JSON.stringify(problems)}`).toBe(true);
  });

  it("accepts a fractional advert_int with version 3, in a v3 default, and in an IPv6 instance", () => {
    expect(lintKeepalivedConfig(config(`${CLEAN}  version 3\n  advert_int 0.5\n`), "k.conf")).toEqual([]);
    expect(lintKeepalivedConfig(config(`${CLEAN}  advert_int 0.5\n`, { globals: GLOBALS.replace("}", "  vrrp_version 3\n}") }), "k.conf")).toEqual([]);
    expect(lintKeepalivedConfig(config(`${CLEAN}  advert_int 0.5\n`, { vips: "2001:db8::86/64 dev eth0" }), "k.conf")).toEqual([]);
  });

  it("accepts nopreempt with weight 0 under state BACKUP", () => {
    expect(lintKeepalivedConfig(config(`${CLEAN.replace("weight -60", "weight 0")}  nopreempt\n`), "k.conf")).toEqual([]);
  });
});

describe("lintKeepalivedSources", () => {
  it("sees global_defs in the main file when the scripts are in an included file", () => {
    const pairFile = config(CLEAN, { globals: "" });
    expect(lintKeepalivedConfig(pairFile, "/etc/keepalived/ddi-ha.d/p.conf")).not.toEqual([]);
    expect(
      lintKeepalivedSources([
        { text: `${GLOBALS}include /etc/keepalived/ddi-ha.d/*.conf\n`, path: "/etc/keepalived/keepalived.conf" },
        { text: pairFile, path: "/etc/keepalived/ddi-ha.d/p.conf" },
      ]),
    ).toEqual([]);
  });

  it("names the included file and line of a problem", () => {
    const problems = lintKeepalivedSources([
      { text: `${GLOBALS}include /etc/keepalived/ddi-ha.d/*.conf\n`, path: "/etc/keepalived/keepalived.conf" },
      { text: config(CLEAN.replace("priority 100", "priority 300"), { globals: "" }), path: "/etc/keepalived/ddi-ha.d/p.conf" },
    ]);
    expect(problems).toEqual([expect.stringMatching(/^\/etc\/keepalived\/ddi-ha\.d\/p\.conf line 8: priority 300 is outside 1-254/)]);
  });
});

describe("parseKeepalivedConf", () => {
  it("reads words, quoted strings, nested blocks and both comment styles", () => {
    const parsed = parseKeepalivedConf(
      '# top\nvrrp_script s { ! inline block\n  script "/bin/true --x" # trailing\n}\nvrrp_instance i {\n  track_script {\n    s weight 0\n  }\n}\n',
      "p",
    );
    expect(parsed.map((s) => [s.words, s.line])).toEqual([
      [["vrrp_script", "s"], 2],
      [["vrrp_instance", "i"], 5],
    ]);
    expect(parsed[0]!.block!.map((s) => s.words)).toEqual([["script", "/bin/true --x"]]);
    expect(parsed[1]!.block![0]!.block!.map((s) => [s.words, s.line])).toEqual([[["s", "weight", "0"], 7]]);
  });

  it("survives unbalanced braces (keepalived -t reports those)", () => {
    expect(parseKeepalivedConf("}\nglobal_defs {\n  enable_script_security\n", "p").map((s) => s.words)).toEqual([["global_defs"]]);
  });
});
