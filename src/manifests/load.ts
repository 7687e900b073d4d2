// Reads Kubernetes manifests from files and directories (multi-document YAML or JSON).
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { parseAllDocuments } from "yaml";

export interface ManifestDocument {
  /** Where it came from: `file` or `file#N` for the N-th document (1-based) of a multi-document file. */
  source: string;
  object: Record<string, unknown>;
}

export class ManifestLoadError extends Error {}

const MANIFEST_EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

/** Expands files and directories (recursively, sorted) into manifest file paths. */
export async function manifestFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new ManifestLoadError(`${path}: no such file or directory`);
    }
    if (!info.isDirectory()) {
      files.push(path); // a file named explicitly is read whatever its extension
      continue;
    }
    const children = (await readdir(path)).filter((e) => !e.startsWith(".")).sort();
    for (const child of children) {
      const childPath = join(path, child);
      if ((await stat(childPath)).isDirectory()) files.push(...(await manifestFiles([childPath])));
      else if (MANIFEST_EXTENSIONS.has(extname(child))) files.push(childPath);
    }
  }
  return files;
}

export function parseManifestText(text: string, file: string): ManifestDocument[] {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const out: ManifestDocument[] = [];
  const multi = docs.length > 1;
  docs.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      const line = first.linePos?.[0]?.line;
      throw new ManifestLoadError(`${file}${line ? `:${line}` : ""}: invalid YAML: ${first.message.split("\n")[0]}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // empty document between '---'
    const source = multi ? `${file}#${index + 1}` : file;
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new ManifestLoadError(`${source}: expected a Kubernetes object (a YAML mapping with apiVersion and kind)`);
    }
    const object = value as Record<string, unknown>;
    // A `kind: List` (as `kubectl get -o yaml` prints) is unpacked into its items.
    if (object.kind === "List" && Array.isArray(object.items)) {
      (object.items as Record<string, unknown>[]).forEach((item, i) => out.push({ source: `${source}[${i}]`, object: item }));
    } else {
      out.push({ source, object });
    }
  });
  return out;
}

export async function loadManifests(paths: readonly string[]): Promise<ManifestDocument[]> {
  const documents: ManifestDocument[] = [];
  for (const file of await manifestFiles(paths)) {
    documents.push(...parseManifestText(await readFile(file, "utf8"), file));
  }
  return documents;
}
