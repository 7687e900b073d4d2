import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderApiDoc } from "./api-doc.js";
import { renderCrdFiles } from "./crd-files.js";

const crdDir = join(import.meta.dirname, "..", "..", "crds");

/** Every schema node that is a field must say what it is, for `kubectl explain`. */
function fieldsWithoutDescription(node: Record<string, unknown>, path: string): string[] {
  const missing: string[] = [];
  const properties = node.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [name, child] of Object.entries(properties ?? {})) {
    const childPath = `${path}.${name}`;
    if (typeof child.description !== "string" || child.description.length < 3) missing.push(childPath);
    missing.push(...fieldsWithoutDescription(child, childPath));
  }
  const items = node.items as Record<string, unknown> | undefined;
  if (items) missing.push(...fieldsWithoutDescription(items, `${path}[]`));
  return missing;
}

describe("generated CRDs", () => {
  const files = renderCrdFiles();

  it.each(files.map((f) => [f.fileName, f.content]))("crds/%s is up to date (run `npm run generate`)", (fileName, content) => {
    expect(readFileSync(join(crdDir, fileName), "utf8")).toBe(content);
  });

  it("docs/api.md is up to date (run `npm run generate`)", () => {
    expect(readFileSync(join(crdDir, "..", "docs", "api.md"), "utf8")).toBe(renderApiDoc());
  });

  it.each(files.map((f) => [f.fileName, parse(f.content)]))("%s describes every spec and status field", (_name, crd) => {
    const schema = crd.spec.versions[0].schema.openAPIV3Schema;
    const missing = [
      ...fieldsWithoutDescription(schema.properties.spec, "spec"),
      ...fieldsWithoutDescription(schema.properties.status, "status"),
    ];
    expect(missing).toEqual([]);
  });

  it.each(files.map((f) => [f.fileName, parse(f.content)]))("%s has the status subresource, a short name, the ddi-ha category and a Ready column", (_name, crd) => {
    const version = crd.spec.versions[0];
    expect(version.subresources).toEqual({ status: {} });
    expect(crd.spec.names.shortNames.length).toBeGreaterThan(0);
    expect(crd.spec.names.categories).toContain("ddi-ha");
    expect(version.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining(["Ready", "Age"]));
  });

  it("keeps shell metacharacters out of every string that reaches a host", () => {
    const hapair = parse(files.find((f) => f.fileName.startsWith("hapairs"))!.content);
    const primary = hapair.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.primary.properties;
    for (const field of ["host", "interface", "configPath"]) {
      const pattern = new RegExp(primary[field].pattern as string);
      for (const bad of ["eth0;reboot", "a b", "$(id)", "`id`", "x|y", "x&y", "x>y", "x'y", 'x"y', "x\ny"]) {
        expect(pattern.test(bad), `${field} accepts ${JSON.stringify(bad)}`).toBe(false);
      }
    }
  });
});
