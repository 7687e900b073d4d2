// Helpers shared by the tests of several modules (never imported by product code).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect } from "vitest";
import { type DDIHost, ddiHostSpecSchema } from "../api/index.js";
import { loadManifests } from "../manifests/load.js";
import type { ManifestSet } from "../validation/model.js";
import { validateManifests } from "../validation/validate.js";

/** Absolute path of `examples/<name>/`. */
export function exampleDir(name: string): string {
  return fileURLToPath(new URL(`../../examples/${name}/`, import.meta.url));
}

/** An example manifest set, loaded and validated the way `ddi-ha validate` does it; throws on errors. */
export async function loadExampleSet(name: string): Promise<ManifestSet> {
  const { set, problems } = validateManifests(await loadManifests([exampleDir(name)]));
  const errors = problems.filter((p) => p.severity === "error");
  if (errors.length > 0) throw new Error(`examples/${name} does not validate: ${JSON.stringify(errors)}`);
  return set;
}

/** The DDIHosts of one namespace of a set, by name, as the renderers take them. */
export function hostsOf(set: ManifestSet, namespace: string): Map<string, DDIHost> {
  return new Map([...set.hosts.values()].filter((h) => h.metadata.namespace === namespace).map((h) => [h.metadata.name, h]));
}

/** A DDIHost with defaults filled in, for table tests. */
export function testHost(name: string, address: string, namespace = "lab"): DDIHost {
  return {
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "DDIHost",
    metadata: { name, namespace },
    spec: ddiHostSpecSchema.parse({ address, credentialsSecretRef: { name: "ssh" }, hostKeyPolicy: "TrustOnFirstUse" }),
  };
}

/** Polls `probe` until it returns something other than undefined. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Compares rendered text with a reviewed golden file. To accept a deliberate change:
 * UPDATE_GOLDEN=1 npx vitest run <folder>, then review the diff before committing.
 */
export function expectGolden(actual: string, path: string): void {
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
  }
  expect(actual).toBe(readFileSync(path, "utf8"));
}

/**
 * Whether this process may run the tests that need root (network namespaces for the real
 * daemons). They skip themselves visibly for a developer without root; under CI a skip would
 * hide that the real checkers never ran, so there it is an error.
 */
export function rootForRealDaemons(): boolean {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot && process.env.CI) {
    throw new Error("CI is set but this process is not root: the tests of the real daemons need root for network namespaces (run CI as root)");
  }
  return isRoot;
}

/** Makes scratch directories under the system temp dir (`prefix` + random); all are removed after the file's tests. */
export function scratchDirs(prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
