import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadManifests, ManifestLoadError, parseManifestText, readManifests, readManifestText } from "./load.js";

describe("parseManifestText", () => {
  it("reads every document of a multi-document file and names each source", () => {
    const docs = parseManifestText("kind: A\n---\n---\nkind: B\n", "x.yaml");
    expect(docs.map((d) => [d.source, d.object.kind])).toEqual([
      ["x.yaml#1", "A"],
      ["x.yaml#3", "B"],
    ]);
  });

  it("unpacks a kind: List", () => {
    const docs = parseManifestText("kind: List\nitems:\n- kind: A\n- kind: B\n", "l.yaml");
    expect(docs.map((d) => d.object.kind)).toEqual(["A", "B"]);
  });

  it("names the file and line of a YAML error", () => {
    expect(() => parseManifestText("kind: A\nspec: [unclosed\n", "bad.yaml")).toThrow(/bad\.yaml:\d+: invalid YAML/);
  });

  it("refuses a document that is not a mapping", () => {
    expect(() => parseManifestText("- a\n- b\n", "list.yaml")).toThrow(ManifestLoadError);
  });
});

describe("readManifestText", () => {
  it("reports every broken document and still reads the others", () => {
    const { documents, errors } = readManifestText("kind: A\nspec: [unclosed\n---\nkind: B\n---\n- x\n---\nkind: C\n", "m.yaml");
    expect(documents.map((d) => [d.source, d.object.kind])).toEqual([
      ["m.yaml#2", "B"],
      ["m.yaml#4", "C"],
    ]);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^m\.yaml:\d+: invalid YAML in document 1: /),
      "m.yaml#3: expected a Kubernetes object (a YAML mapping with apiVersion and kind)",
    ]);
  });
});

describe("readManifests", () => {
  it("collects errors from every file and path, and reads the rest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddi-ha-load-"));
    writeFileSync(join(dir, "a.yaml"), "kind: A\nspec: [\n");
    writeFileSync(join(dir, "b.yaml"), "kind: B\n");
    writeFileSync(join(dir, "c.yaml"), "kind: C\n  bad: indent\n");
    const { documents, errors } = await readManifests([dir, "/nonexistent/ddi-ha"]);
    expect(documents.map((d) => d.object.kind)).toEqual(["B"]);
    expect(errors.map((e) => e.message)).toEqual([
      "/nonexistent/ddi-ha: no such file or directory",
      expect.stringContaining(`${join(dir, "a.yaml")}:`),
      expect.stringContaining(`${join(dir, "c.yaml")}:`),
    ]);
  });
});

describe("loadManifests", () => {
  it("walks directories recursively in sorted order, reading only manifest files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddi-ha-load-"));
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "b.yaml"), "kind: B\n");
    writeFileSync(join(dir, "a.json"), '{"kind":"A"}');
    writeFileSync(join(dir, "sub", "c.yml"), "kind: C\n");
    writeFileSync(join(dir, "README.md"), "# not a manifest\n");
    const docs = await loadManifests([dir]);
    expect(docs.map((d) => d.object.kind)).toEqual(["A", "B", "C"]);
  });

  it("says which path does not exist", async () => {
    await expect(loadManifests(["/nonexistent/ddi-ha"])).rejects.toThrow("/nonexistent/ddi-ha: no such file or directory");
  });
});
