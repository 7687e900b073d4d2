import { describe, expect, it } from "vitest";
import { keaCapabilities, keaHooksDir, parseKeaVersion, relocateHookLibrary } from "./platform.js";

describe("Kea platform facts", () => {
  it("puts the hooks where each family's packages do (seed 001 swaps these)", () => {
    expect(keaHooksDir("Debian")).toBe("/usr/lib/x86_64-linux-gnu/kea/hooks/");
    expect(keaHooksDir("RHEL")).toBe("/usr/lib64/kea/hooks/");
  });

  it("moves known hooks dirs between families and leaves the user's own paths alone", () => {
    expect(relocateHookLibrary("/usr/lib64/kea/hooks/libdhcp_bootp.so", "Debian")).toBe("/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_bootp.so");
    expect(relocateHookLibrary("/opt/kea/libmine.so", "RHEL")).toBe("/opt/kea/libmine.so");
  });

  const table: [string, ReturnType<typeof keaCapabilities>][] = [
    ["2.2.0", { hookValidatingCheck: false, configSetRollback: false, haDedicatedListenerDefault: false, controlAgentDeprecated: false, maxRelationships: 1 }],
    ["2.3.6", { hookValidatingCheck: false, configSetRollback: true, haDedicatedListenerDefault: false, controlAgentDeprecated: false, maxRelationships: 1 }],
    ["2.4.1", { hookValidatingCheck: true, configSetRollback: true, haDedicatedListenerDefault: true, controlAgentDeprecated: false, maxRelationships: 1 }],
    ["2.6.0", { hookValidatingCheck: true, configSetRollback: true, haDedicatedListenerDefault: true, controlAgentDeprecated: false, maxRelationships: Number.POSITIVE_INFINITY }],
    ["3.0.0", { hookValidatingCheck: true, configSetRollback: true, haDedicatedListenerDefault: true, controlAgentDeprecated: true, maxRelationships: Number.POSITIVE_INFINITY }],
  ];
  it.each(table)("Kea %s", (version, caps) => expect(keaCapabilities(version)).toEqual(caps));

  it("reads the version from kea-dhcp4 -V's first line and refuses garbage", () => {
    expect(parseKeaVersion("2.2.0\ntarball\nlinked with:")).toEqual([2, 2, 0]);
    expect(() => parseKeaVersion("unknown")).toThrow('cannot read a Kea version from "unknown"');
  });
});
