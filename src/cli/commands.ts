import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { stringify } from "yaml";
import { HostProbes, hostKeyOf, probeRequestFor } from "../engine/host-probes.js";
import { type ReconcilePassOptions, type ReconcilePassResult, reconcilePass } from "../engine/reconcile-pass.js";
import { probeHost } from "../observe/index.js";
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
    // Checked against the hosts' probes and found current: nothing was applied.
    const inSync = !outcome.results && outcome.drift ? outcome.drift.checkedHosts.map((h) => `  ${h}: ok: in sync (every managed file has the content the spec renders)`) : [];
    const differing = !outcome.results && outcome.drift ? outcome.drift.differing.map((f) => `  ${f}: differs from the spec (left alone)`) : [];
    const parts = (outcome.results ?? []).map((r) => {
      const what = [r.changed.length ? `changed ${r.changed.join(", ")}` : "", r.reloaded.length ? `reloaded ${r.reloaded.join(", ")}` : ""].filter(Boolean).join("; ");
      return `  ${r.host}: ${r.ok ? "ok" : "FAILED"}${what ? `: ${what}` : ": unchanged"}${r.failure ? `\n    ${r.failure.stage}: ${r.failure.message}` : ""}${r.rolledBack ? `\n    rollback ${r.rolledBack.ok ? "ok" : "FAILED"}: ${r.rolledBack.message}` : ""}`;
    });
    const failures = [...(outcome.errors ?? []).map((e) => `  ${e.host}: not applied: ${e.message}`), ...(outcome.specProblems ?? []).map((p) => `  ${p}`)];
    lines.push(`${resource.kind} ${resource.metadata.namespace}/${resource.metadata.name}:`, ...parts, ...inSync, ...differing, ...failures);
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

/**
 * The reconcile core the controller runs per object, over the manifest files: each host probed
 * once (one exec: facts, addresses, units, clock, the hashes of its managed files), then taken
 * afresh after an apply changed it. Every status comes from those probes.
 */
function probedPass(set: ManifestSet, sessionOf: SessionProvider, options: Omit<ReconcilePassOptions, "probeOf" | "onHostApplied">): Promise<ReconcilePassResult> {
  const probes = new HostProbes();
  return reconcilePass(set, sessionOf, {
    ...options,
    probeOf: (host) => probes.get(hostKeyOf(host), Number.POSITIVE_INFINITY, async () => probeHost(await sessionOf(host), probeRequestFor(set, host))),
    onHostApplied: (host) => probes.invalidate(hostKeyOf(host)),
  });
}

/** The pass `ddi-ha apply` runs over a validated set (exported for the fleet bench's cross-check). */
export function applyPass(set: ManifestSet, sessionOf: SessionProvider): Promise<ReconcilePassResult> {
  return probedPass(set, sessionOf, { apply: false, applyWhenDiffering: true });
}

/**
 * `ddi-ha apply`: every relationship whose files on its hosts differ from the spec goes through
 * the safe apply; the rest are left untouched (a no-op run is one exec per host). Exit 0 only
 * when all is Ready.
 */
export async function runApply(paths: string[], out: Output, err: Output, options: EngineOptions = {}): Promise<number> {
  const result = await withSessions(paths, err, options, applyPass);
  if (!result) return 1;
  printPass(result, out, options.output);
  const applyFailed = [...result.applied.values()].some(({ outcome }) => !applySucceeded(outcome));
  return applyFailed ? 1 : result.statuses.every(({ status }) => isReady(status)) ? 0 : 2;
}

/**
 * `ddi-ha status`: observe only. Without a stored status, each relationship's files are compared
 * with what its spec renders (ConfigInSync), and nothing is written whatever its driftPolicy.
 * Exit 0 when every resource is Ready, 2 otherwise.
 */
export async function runStatus(paths: string[], out: Output, err: Output, options: EngineOptions = {}): Promise<number> {
  const result = await withSessions(paths, err, options, (set, sessionOf) => probedPass(reportingDrift(set), sessionOf, { apply: false }));
  if (!result) return 1;
  printPass(result, out, options.output);
  return result.statuses.every(({ status }) => isReady(status)) ? 0 : 2;
}

/** The set with every relationship's driftPolicy Report: `status` must never write. */
function reportingDrift(set: ManifestSet): ManifestSet {
  const report = <T extends { spec: { driftPolicy: "Correct" | "Report" } }>(r: T): T => ({ ...r, spec: { ...r.spec, driftPolicy: "Report" } });
  return { ...set, haPairs: set.haPairs.map(report), failoverPeers: set.failoverPeers.map(report), keaClusters: set.keaClusters.map(report) };
}
