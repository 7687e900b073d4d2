import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { stringify } from "yaml";
import { configAppliedFromDrift, configDrift } from "../engine/drift.js";
import { type ReconcilePassResult, reconcilePass } from "../engine/reconcile-pass.js";
import type { SessionProvider } from "../engine/render-inputs.js";
import { manifestSessionProvider, PinnedHostKeys } from "../engine/sessions.js";
import { readManifests } from "../manifests/load.js";
import { SshTransport } from "../ssh/index.js";
import type { ApplyOutcome } from "../status/index.js";
import { summarizeStatus } from "../status/summary.js";
import type { ManifestSet } from "../validation/model.js";
import { renderManifestSet } from "../render/render-set.js";
import { formatProblem, validateManifests } from "../validation/validate.js";

interface Output {
  write(text: string): unknown;
}

/**
 * Reads and validates everything readable, and prints every problem: files and documents that
 * could not be read first, then what validation found in the rest. `errors` counts both.
 */
async function loadAndValidate(paths: string[], err: Output) {
  const { documents, errors: loadErrors } = await readManifests(paths);
  const { set, problems } = validateManifests(documents);
  for (const e of loadErrors) err.write(`${e.message}\n`);
  for (const p of problems) err.write(`${formatProblem(p)}\n`);
  return { set, errors: loadErrors.length + problems.filter((p) => p.severity === "error").length };
}

export async function runValidate(paths: string[], out: Output, err: Output): Promise<number> {
  const { set, errors } = await loadAndValidate(paths, err);
  const count = set.hosts.size + set.haPairs.length + set.keaClusters.length + set.failoverPeers.length;
  if (errors > 0) {
    err.write(`${errors} error(s) in ${paths.join(", ")}\n`);
    return 1;
  }
  out.write(`${count} resource(s) valid\n`);
  return 0;
}

export async function runRender(paths: string[], outDir: string, out: Output, err: Output): Promise<number> {
  const { set, errors } = await loadAndValidate(paths, err);
  if (errors > 0) {
    err.write(`not rendering: ${errors} error(s)\n`);
    return 1;
  }
  const { files, failures, notes } = renderManifestSet(set);
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

async function withSessions<T>(paths: string[], err: Output, options: EngineOptions, use: (set: ManifestSet, sessionOf: SessionProvider) => Promise<T>): Promise<T | undefined> {
  const { set, errors } = await loadAndValidate(paths, err);
  if (errors > 0) {
    err.write("nothing done: fix the errors above first\n");
    return undefined;
  }
  const transport = new SshTransport();
  try {
    const pins = await PinnedHostKeys.open(options.knownHosts);
    return await use(set, manifestSessionProvider(set, transport, pins));
  } finally {
    await transport.closeAll();
  }
}

/** The statuses in the API contract's shapes, keyed like `kubectl get` names them. */
function statusDocument(result: ReconcilePassResult) {
  return result.statuses.map(({ resource, status }) => ({
    kind: resource.kind,
    namespace: resource.metadata.namespace,
    name: resource.metadata.name,
    status,
  }));
}

function describePass(result: ReconcilePassResult): string {
  const lines: string[] = [];
  for (const { resource, outcome } of result.applied.values()) {
    const parts = (outcome.results ?? []).map((r) => {
      const what = [r.changed.length ? `changed ${r.changed.join(", ")}` : "", r.reloaded.length ? `reloaded ${r.reloaded.join(", ")}` : ""].filter(Boolean).join("; ");
      return `  ${r.host}: ${r.ok ? "ok" : "FAILED"}${what ? `: ${what}` : ": unchanged"}${r.failure ? `\n    ${r.failure.stage}: ${r.failure.message}` : ""}${r.rolledBack ? `\n    rollback ${r.rolledBack.ok ? "ok" : "FAILED"}: ${r.rolledBack.message}` : ""}`;
    });
    const failures = [...(outcome.errors ?? []).map((e) => `  ${e.host}: not applied: ${e.message}`), ...(outcome.specProblems ?? []).map((p) => `  ${p}`)];
    lines.push(`${resource.kind} ${resource.metadata.namespace}/${resource.metadata.name}:`, ...parts, ...failures);
  }
  for (const { resource, status } of result.statuses) {
    lines.push(`${resource.kind.padEnd(16)} ${`${resource.metadata.namespace}/${resource.metadata.name}`.padEnd(36)} ${summarizeStatus(resource.kind, status as Record<string, unknown>)}`);
  }
  return `${lines.join("\n")}\n`;
}

function printPass(result: ReconcilePassResult, out: Output, format: EngineOptions["output"]): void {
  if (format === "json") out.write(`${JSON.stringify(statusDocument(result), null, 2)}\n`);
  else if (format === "yaml") out.write(stringify(statusDocument(result)));
  else out.write(describePass(result));
}

const applySucceeded = (o: ApplyOutcome) => (o.results ?? []).every((r) => r.ok) && !o.errors?.length && !o.specProblems?.length;

const isReady = (status: { conditions?: { type: string; status: string }[] }) => status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** `ddi-ha apply`: the safe apply on every host, then one observation; exit 0 only when all is Ready. */
export async function runApply(paths: string[], out: Output, err: Output, options: EngineOptions = {}): Promise<number> {
  const result = await withSessions(paths, err, options, (set, sessionOf) => reconcilePass(set, sessionOf, { apply: true }));
  if (!result) return 1;
  printPass(result, out, options.output);
  const applyFailed = [...result.applied.values()].some(({ outcome }) => !applySucceeded(outcome));
  return applyFailed ? 1 : result.statuses.every(({ status }) => isReady(status)) ? 0 : 2;
}

/** `ddi-ha status`: observe only; exit 0 when every resource is Ready, 2 otherwise. */
export async function runStatus(paths: string[], out: Output, err: Output, options: EngineOptions = {}): Promise<number> {
  const result = await withSessions(paths, err, options, async (set, sessionOf) => {
    // Without a stored status, "applied" means: the hosts hold what the spec renders now.
    const now = new Date();
    const relationships = [...set.haPairs, ...set.failoverPeers, ...set.keaClusters];
    const applied = new Map(
      await Promise.all(relationships.map(async (r) => [r, configAppliedFromDrift(await configDrift(set, r, sessionOf), r.metadata.generation ?? 0, now)] as const)),
    );
    return reconcilePass(set, sessionOf, {
      apply: false,
      previousStatus: (r) => (applied.has(r as never) ? { conditions: [applied.get(r as never)!] } : undefined),
    });
  });
  if (!result) return 1;
  printPass(result, out, options.output);
  return result.statuses.every(({ status }) => isReady(status)) ? 0 : 2;
}
