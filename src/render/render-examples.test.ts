// The promise of `ddi-ha render -f examples`: every file rendered for every host of every
// example is accepted by the real daemon's own checker plus our stricter rules.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_CHECKERS } from "../apply/checkers.js";
import type { CheckKind } from "../apply/types.js";
import { withNetnsInterfaces } from "../daemons/keepalived/test-support.js";
import { localHostIO } from "../exec/host-io.js";
import { loadManifests } from "../manifests/load.js";
import { validateManifests } from "../validation/validate.js";
import { rootForRealDaemons } from "../testing/support.js";
import { renderManifestSet } from "./render-set.js";
import type { RenderedFile } from "./types.js";

const examplesDir = join(import.meta.dirname, "..", "..", "examples");
const isRoot = rootForRealDaemons();

const { set, problems } = validateManifests(await loadManifests([examplesDir]));
const rendered = renderManifestSet(set, {
  omapiKeys: new Map(set.failoverPeers.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, { name: "omapi-example", algorithm: "hmac-sha256", secret: "ZXhhbXBsZS1rZXktZm9yLWNoZWNraW5nLW9ubHk=" }])),
});

/** One check per host and checker: Kea's checker takes the dhcp4 and agent files together. */
function checkGroups(files: readonly RenderedFile[]): [string, CheckKind, RenderedFile[]][] {
  const groups = new Map<string, [string, CheckKind, RenderedFile[]]>();
  for (const file of files) {
    if (file.check.kind === "none") continue;
    const kind: CheckKind = file.check.kind === "kea-ctrl-agent" ? "kea-dhcp4" : file.check.kind;
    const key = `${file.host} ${kind}`;
    const group = groups.get(key) ?? [file.host, kind, []];
    group[2].push(file);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** The interfaces a host's keepalived files name, so `keepalived -t` finds them in a namespace. */
function interfacesOf(files: readonly RenderedFile[]): string[] {
  return [...new Set(files.flatMap((f) => [...f.content.matchAll(/^\s*interface\s+(\S+)/gm)].map((m) => m[1]!)))];
}

const workDirs: string[] = [];
afterAll(async () => {
  for (const dir of workDirs) await rm(dir, { recursive: true, force: true });
});

describe("rendering examples/", () => {
  it("validates every example without errors", () => {
    expect(problems.filter((p) => p.severity === "error")).toEqual([]);
    expect(set.haPairs.length + set.keaClusters.length + set.failoverPeers.length).toBeGreaterThanOrEqual(3);
  });

  it("renders every resource, for every host it names", () => {
    expect(rendered.failures).toEqual([]);
    const hostsWithFiles = new Set(rendered.files.map((f) => f.host));
    const referenced = [
      ...set.haPairs.flatMap((p) => [p.spec.primary.host, p.spec.secondary.host]),
      ...set.failoverPeers.flatMap((p) => [p.spec.primary.host, p.spec.secondary.host]),
      ...set.keaClusters.flatMap((c) => c.spec.peers.map((p) => p.host)),
    ];
    expect([...hostsWithFiles].sort()).toEqual([...new Set(referenced)].sort());
  });

  it.skipIf(!isRoot).each(checkGroups(rendered.files))("%s: the real %s checker accepts its files", async (_host, kind, files) => {
    const workDir = await mkdtemp(join(tmpdir(), "ddi-ha-examples-"));
    workDirs.push(workDir);
    const io = kind === "keepalived" ? withNetnsInterfaces(localHostIO, interfacesOf(files)) : localHostIO;
    const result = await DEFAULT_CHECKERS[kind](files, io, workDir);
    expect(result.problems, result.output).toEqual([]);
    expect(result.ok).toBe(true);
  });
});
