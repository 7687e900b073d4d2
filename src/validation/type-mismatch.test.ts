import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadManifests } from "../manifests/load.js";
import { describeFound, typeMismatchMessage, valueAt } from "./type-mismatch.js";
import { validateManifests } from "./validate.js";

const examples = join(import.meta.dirname, "..", "..", "examples");

describe("messages for a value of the wrong type (issue 13 item 1)", () => {
  it.each([
    ["DhcpFailoverPeer", "spec.mclt", "mclt", "string", 1800, 'spec.mclt: got the number 1800; durations are strings with a unit, e.g. "1800s" (dhcpd\'s mclt is in seconds)'],
    ["KeaHACluster", "spec.heartbeatDelay", "heartbeatDelay", "string", 1000, 'spec.heartbeatDelay: got the number 1000; durations are strings with a unit, e.g. "1000ms" (Kea\'s heartbeat-delay is in milliseconds)'],
    ["HAPair", "spec.advertInterval", "advertInterval", "string", 1, 'spec.advertInterval: got the number 1; durations are strings with a unit, e.g. "1s" (keepalived\'s advert_int is in seconds)'],
    ["HAPair", "spec.virtualRouterID", "virtualRouterID", "number", "51", 'spec.virtualRouterID: got the string "51"; this field is a number: write it without quotes, e.g. 51'],
    ["HAPair", "spec.services", "services", "object", ["dns"], "spec.services: got a list; this field is a mapping of fields (name: value), not a list"],
    ["DhcpFailoverPeer", "spec.subnets", "subnets", "array", { subnet: "198.18.0.0/24" }, 'spec.subnets: got a mapping; this field is a list: write each item on its own line starting with "- "'],
    ["DDIHost", "spec.sudo", "sudo", "boolean", "yes", "spec.sudo: got the string \"yes\"; this field is true or false, written without quotes"],
    ["DDIHost", "spec.address", "address", "string", 19818, 'spec.address: got the number 19818; this field is text: quote it, e.g. "19818"'],
  ])("%s %s = %j", (kind, path, field, expected, found, message) => {
    expect(typeMismatchMessage(kind, path, field, expected, found)).toBe(message);
  });

  it("describes what was found", () => {
    expect([1800, "51", [], {}, true, null].map(describeFound)).toEqual(["the number 1800", 'the string "51"', "a list", "a mapping", "true", "null (an empty value)"]);
  });

  it("tells a missing field from one present with a falsy value", () => {
    expect(valueAt({ spec: { a: 0, b: false, c: null } }, ["spec", "a"])).toEqual({ present: true, value: 0 });
    expect(valueAt({ spec: { b: false } }, ["spec", "b"])).toEqual({ present: true, value: false });
    expect(valueAt({ spec: {} }, ["spec", "a"])).toEqual({ present: false });
    expect(valueAt({ spec: [{ x: 1 }] }, ["spec", 0, "x"])).toEqual({ present: true, value: 1 });
  });

  it("validate names the value found, the field and how to write it, never 'is required' for a present field", () => {
    const { problems } = validateManifests([
      {
        source: "t.yaml#1",
        object: {
          apiVersion: "ddi-ha.io/v1alpha1",
          kind: "DhcpFailoverPeer",
          metadata: { name: "dfp", namespace: "lab" },
          spec: { primary: { host: "a", address: "198.18.0.11" }, secondary: { host: "b", address: "198.18.0.12" }, mclt: 1800, subnets: [{ subnet: "198.18.0.0/24", pools: [] }] },
        },
      },
    ]);
    const mclt = problems.find((p) => p.path === "spec.mclt");
    expect(mclt?.message).toBe('spec.mclt: got the number 1800; durations are strings with a unit, e.g. "1800s" (dhcpd\'s mclt is in seconds)');
  });

  // The survey: every field of every example object, given a value of another type. Whatever the
  // schema says about it, a field that is there is never reported as missing.
  it("for every field of every example, a value of another type is named as found, never as missing", async () => {
    const documents = await loadManifests([examples]);
    const ours = documents.filter((d) => String(d.object.apiVersion).startsWith("ddi-ha.io/"));
    expect(ours.length).toBeGreaterThan(10);
    const wrongTypesOf = (v: unknown): unknown[] =>
      Array.isArray(v) ? [{ not: "a list" }, "text"] : v !== null && typeof v === "object" ? [["a", "list"], 7] : typeof v === "string" ? [1800, ["x"]] : typeof v === "number" ? [String(v), { n: v }] : ["yes", 3];
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (Array.isArray(v)) v.forEach((item, i) => walk(item, [...path, i]));
      else if (v !== null && typeof v === "object") for (const [k, child] of Object.entries(v)) walk(child, [...path, k]);
    };
    let mismatches = 0;
    for (const doc of ours) {
      const spec = doc.object.spec as Record<string, unknown>;
      paths.length = 0;
      for (const [k, child] of Object.entries(spec)) walk(child, [k]);
      for (const path of paths) {
        for (const wrong of wrongTypesOf(valueAt(spec, path).value)) {
          const mutated = structuredClone(spec);
          let parent: Record<string | number, unknown> = mutated;
          for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
          parent[path.at(-1)!] = wrong;
          const { problems } = validateManifests([{ source: doc.source, object: { ...doc.object, spec: mutated } }]);
          const at = `spec.${path.map((p) => (typeof p === "number" ? `[${p}]` : p)).join(".").replace(/\.\[/g, "[")}`;
          for (const p of problems.filter((q) => q.path === at)) {
            expect(p.message, `${doc.source} ${at} = ${JSON.stringify(wrong)}`).not.toMatch(/is required/);
            if (p.message.includes(": got ")) mismatches++;
          }
        }
      }
    }
    // Hundreds of fields were given a wrong type; most are plain type mismatches, named as found.
    console.log(`${mismatches} wrong-type values named as found`);
    expect(mismatches).toBeGreaterThan(100);
  });
});
