// Kea 2.2 writes map keys back unescaped (config-get, config-write): spec.dhcp4 may not hold a key
// that would come back as different JSON. Measured in test/integration/hostile-values.test.ts.
import { describe, expect, it } from "vitest";
import { keaHAClusterSpecSchema, unsafeKeaKey } from "./index.js";

const spec = (dhcp4: unknown) => ({
  mode: "hot-standby",
  peers: [
    { name: "a", host: "h1", role: "primary", url: "http://198.18.0.1:8000/" },
    { name: "b", host: "h2", role: "standby", url: "http://198.18.0.2:8000/" },
  ],
  dhcp4,
});

describe("keys Kea would write back as other JSON", () => {
  it.each([
    ["a quote, nested in a list", { "subnet4": [{ "user-context": { 'x"y': 1 } }] }, 'x"y'],
    ["a backslash", { "user-context": { "a\\b": 1 } }, "a\\b"],
    ["a newline", { "user-context": { "a\nb": 1 } }, "a\nb"],
    ["DEL", { "user-context": { "a\u007fb": 1 } }, "a\u007fb"],
  ])("%s: found, and the spec is refused naming spec.dhcp4", (_what, dhcp4, key) => {
    expect(unsafeKeaKey(dhcp4)).toBe(key);
    const r = keaHAClusterSpecSchema.safeParse(spec(dhcp4));
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.message).join("\n")).toMatch(/spec\.dhcp4 must not have a key \(at any depth\) containing/);
  });

  it("keeps keys with any other character, and quotes in values", () => {
    const dhcp4 = { "user-context": { "}], {[ # // <?include x?> é": 'a"b\\c\nd' } };
    expect(unsafeKeaKey(dhcp4)).toBeUndefined();
    expect(keaHAClusterSpecSchema.safeParse(spec(dhcp4)).success).toBe(true);
  });
});
