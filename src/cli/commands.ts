import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { stringify } from "yaml";
import { applyManifestSet, type SessionProvider, type SetApplyOutcome } from "../engine/apply-set.js";
import { manifestSessionProvider, PinnedHostKeys } from "../engine/sessions.js";
import { loadManifests, ManifestLoadError } from "../manifests/load.js";
import { SshTransport } from "../ssh/index.js";
import type { ManifestSet } from "../validation/model.js";
import { renderManifestSet } from "../render/render-set.js";
import { formatProblem, validateManifests } from "../validation/validate.js";

interface Output {
  write(text: string): unknown;
}

async function loadAndValidate(paths: string[], err: Output) {
  try {
    const documents = await loadManifests(paths);
    return { documents, ...validateManifests(documents) };
  } catch (e) {
    if (e instanceof ManifestLoadError) {
      err.write(`${e.message}\n`);
      return undefined;
    }
    throw e;
  }
}

export async function runValidate(paths: string[], out: Output, err: Output): Promise<number> {
  const loaded = await loadAndValidate(paths, err);
  if (!loaded) return 1;
  const { set, problems } = loaded;
  for (const p of problems) err.write(`${formatProblem(p)}\n`);
  const errors = problems.filter((p) => p.severity === "error").length;
  const count = set.hosts.size + set.haPairs.length + set.keaClusters.length + set.failoverPeers.length;
  if (errors > 0) {
    err.write(`${errors} error(s) in ${paths.join(", ")}\n`);
    return 1;
  }
  out.write(`${count} resource(s) valid\n`);
  return 0;
}

export async function runRender(paths: string[], outDir: string, out: Output, err: Output): Promise<number> {
  const loaded = await loadAndValidate(paths, err);
  if (!loaded) return 1;
  const errors = loaded.problems.filter((p) => p.severity === "error");
  for (const p of loaded.problems) err.write(`${formatProblem(p)}\n`);
  if (errors.length > 0) {
    err.write(`not rendering: ${errors.length} error(s)\n`);
    return 1;
  }
  const { files, failures, notes } = renderManifestSet(loaded.set);
  for (const note of notes) err.write(`note: ${note}\n`);
  if (failures.length > 0) {
    for (const f of failures) err.write(`${f.resource}: ${f.message}\n`);
    err.write(`not rendering: ${failures.length} resource(s) failed to render\n`);
    return 1;
  }
  const root = resolve(outDir);
  for (const file of files) {
    const target = join(root, file.host, file.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.content, { mode: file.mode });
    out.write(`${join(outDir, file.host, file.path)}\n`);
  }
  return 0;
}

export interface EngineOptions {
  knownHosts?: string;
  output?: "table" | "json" | "yaml";
}

function describeApply(outcome: SetApplyOutcome): string {
  const lines: string[] = [];
  for (const h of outcome.hosts) {
    if (h.error) {
      lines.push(`${h.host}: not applied: ${h.error}`);
      continue;
    }
    const r = h.result!;
    const parts = [
      r.changed.length ? `changed ${r.changed.join(", ")}` : "",
      r.removed.length ? `removed ${r.removed.join(", ")}` : "",
      r.reloaded.length ? `reloaded ${r.reloaded.join(", ")}` : "",
    ].filter(Boolean);
    lines.push(`${h.host}: ${r.ok ? "ok" : "FAILED"}${parts.length ? `: ${parts.join("; ")}` : ": unchanged"}`);
    if (r.failure) lines.push(`  ${r.failure.stage}: ${r.failure.message}`);
    if (r.rolledBack) lines.push(`  rollback: ${r.rolledBack.ok ? "ok" : "FAILED"}: ${r.rolledBack.message}`);
  }
  for (const f of outcome.renderFailures) lines.push(`${f.resource}: not rendered: ${f.message}`);
  return `${lines.join("\n")}\n`;
}

async function withEngine<T>(paths: string[], err: Output, options: EngineOptions, use: (set: ManifestSet, sessionOf: SessionProvider) => Promise<T>): Promise<T | undefined> {
  const loaded = await loadAndValidate(paths, err);
  if (!loaded) return undefined;
  for (const p of loaded.problems) err.write(`${formatProblem(p)}\n`);
  if (loaded.problems.some((p) => p.severity === "error")) {
    err.write("nothing applied: fix the errors above first\n");
    return undefined;
  }
  const transport = new SshTransport();
  try {
    const pins = await PinnedHostKeys.open(options.knownHosts);
    return await use(loaded.set, manifestSessionProvider(loaded.set, transport, pins));
  } finally {
    await transport.closeAll();
  }
}

export async function runApply(paths: string[], out: Output, err: Output, options: EngineOptions = {}): Promise<number> {
  const outcome = await withEngine(paths, err, options, (set, sessionOf) => applyManifestSet(set, sessionOf));
  if (!outcome) return 1;
  for (const note of outcome.notes) err.write(`note: ${note}\n`);
  out.write(options.output === "json" ? `${JSON.stringify(outcome, null, 2)}\n` : options.output === "yaml" ? stringify(outcome) : describeApply(outcome));
  return outcome.ok ? 0 : 1;
}
