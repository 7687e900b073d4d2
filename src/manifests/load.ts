// Reads Kubernetes manifests from files and directories (multi-document YAML or JSON).
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { parseAllDocuments } from "yaml";

export interface ManifestDocument {
  /** Where it came from: `file` or `file#N` for the N-th document (1-based) of a multi-document file. */
  source: string;
  object: Record<string, unknown>;
}

/** A file or document that could not be read; `message` starts with the file (and line). */
export class ManifestLoadError extends Error {}

/** Everything that could be read, and every file or document that could not. */
export interface ReadManifests {
  documents: ManifestDocument[];
  errors: ManifestLoadError[];
}

const MANIFEST_EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

/** Expands files and directories (recursively, sorted) into manifest file paths; a missing path is an error, the others are still listed. */
async function expandPaths(paths: readonly string[], errors: ManifestLoadError[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch {
      errors.push(new ManifestLoadError(`${path}: no such file or directory`));
      continue;
    }
    if (!info.isDirectory()) {
      files.push(path); // a file named explicitly is read whatever its extension
      continue;
    }
    const children = (await readdir(path)).filter((e) => !e.startsWith(".")).sort();
    for (const child of children) {
      const childPath = join(path, child);
      if ((await stat(childPath)).isDirectory()) files.push(...(await expandPaths([childPath], errors)));
      else if (MANIFEST_EXTENSIONS.has(extname(child))) files.push(childPath);
    }
  }
  return files;
}

/** Every document of one file; a broken document is an error and the others are still read. */
export function readManifestText(text: string, file: string): ReadManifests {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const documents: ManifestDocument[] = [];
  const errors: ManifestLoadError[] = [];
  const multi = docs.length > 1;
  docs.forEach((doc, index) => {
    const source = multi ? `${file}#${index + 1}` : file;
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      const line = first.linePos?.[0]?.line;
      errors.push(new ManifestLoadError(`${file}${line ? `:${line}` : ""}: invalid YAML${multi ? ` in document ${index + 1}` : ""}: ${first.message.split("\n")[0]}`));
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // empty document between '---'
    if (typeof value !== "object" || Array.isArray(value)) {
      errors.push(new ManifestLoadError(`${source}: expected a Kubernetes object (a YAML mapping with apiVersion and kind)`));
      return;
    }
    const object = value as Record<string, unknown>;
    // A `kind: List` (as `kubectl get -o yaml` prints) is unpacked into its items.
    if (object.kind === "List" && Array.isArray(object.items)) {
      (object.items as Record<string, unknown>[]).forEach((item, i) => documents.push({ source: `${source}[${i}]`, object: item }));
    } else {
      documents.push({ source, object });
    }
  });
  return { documents, errors };
}

/** Every document of one file; throws the first error. */
export function parseManifestText(text: string, file: string): ManifestDocument[] {
  const { documents, errors } = readManifestText(text, file);
  if (errors.length > 0) throw errors[0]!;
  return documents;
}

/** Reads every manifest below `paths`, collecting each unreadable path, file or document as an error. */
export async function readManifests(paths: readonly string[]): Promise<ReadManifests> {
  const errors: ManifestLoadError[] = [];
  const documents: ManifestDocument[] = [];
  for (const file of await expandPaths(paths, errors)) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      errors.push(new ManifestLoadError(`${file}: cannot read: ${err instanceof Error ? err.message : String(err)}`));
      continue;
    }
    const read = readManifestText(text, file);
    documents.push(...read.documents);
    errors.push(...read.errors);
  }
  return { documents, errors };
}

/** Reads every manifest below `paths`; throws the first error (for callers that need a whole set). */
export async function loadManifests(paths: readonly string[]): Promise<ManifestDocument[]> {
  const { documents, errors } = await readManifests(paths);
  if (errors.length > 0) throw errors[0]!;
  return documents;
}
