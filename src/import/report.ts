// The imported manifests, rendered by the operator's own renderers and compared with the files
// read from the hosts: which files the first apply writes, a unified diff for each, and what
// happens to each daemon (nothing, a reload, a restart). Pure.
import { createTwoFilesPatch } from "diff";
import { stringify } from "yaml";
import { ensureIncludeLine } from "../daemons/dhcpd/index.js";
import { parseKeaConfigText, stableStringify } from "../daemons/kea/index.js";
import type { ManifestDocument } from "../manifests/load.js";
import { chooseServiceAction } from "../apply/systemd.js";
import { gatherRenderInputs } from "../engine/render-inputs.js";
import type { HostSession } from "../exec/host-io.js";
import { renderManifestSet } from "../render/render-set.js";
import type { RenderedFile, ServiceUnit } from "../render/types.js";
import { formatProblem, validateManifests } from "../validation/validate.js";
import { API_VERSION, type DaemonImport, type ImportHost, type ManifestObject, type Unrepresentable } from "./types.js";

/** The Secret the imported DDIHosts name; the import never writes a private key into its output. */
export const IMPORT_SSH_SECRET = "ddi-ha-ssh";

export interface FileChange {
  host: string;
  path: string;
  /** created: not on the host yet; changed: different bytes; unchanged: already what the operator writes. */
  change: "created" | "changed" | "unchanged";
  /** Unified diff, live → what the first apply writes (empty when unchanged). */
  diff: string;
  /** What the first apply writes there. */
  content: string;
  service: ServiceUnit;
  /** keepalived follows this file itself (inotify), so its change needs no reload. */
  followedByDaemon: boolean;
  /** The user must edit the live file first (declarations the operator's include file takes over); the diff shows the whole change. */
  editBeforeApply: boolean;
  /** A Kea file whose live text parses to the same JSON: only the formatting changes (the apply still rewrites it and restarts Kea). */
  sameJson?: boolean;
  /** With editBeforeApply: what the user writes to the host before the first apply (the apply then adds its include line). */
  editedContent?: string;
}

export interface ServiceImpact {
  host: string;
  service: ServiceUnit;
  /** What the first apply does to the running daemon: nothing, a reload (same PID) or a restart. */
  action: "none" | "reload" | "restart";
  why: string;
}

export interface ImportReport {
  manifests: ManifestObject[];
  /** Validation problems of the imported manifests, formatted (an import bug if any is an error). */
  problems: string[];
  unrepresentable: Unrepresentable[];
  notes: string[];
  files: FileChange[];
  services: ServiceImpact[];
  /** Rendering failures (a resource the renderers refuse), formatted. */
  failures: string[];
}

/** A DDIHost for each host the import reached: Pinned to the key the session verified. */
export function importedHosts(hosts: readonly ImportHost[], namespace: string): ManifestObject[] {
  return hosts.map((h) => ({
    apiVersion: API_VERSION,
    kind: "DDIHost",
    metadata: { name: h.name, namespace },
    spec: {
      address: h.address,
      ...(h.port !== 22 ? { port: h.port } : {}),
      user: h.user,
      ...(h.user !== "root" ? { sudo: true } : {}),
      credentialsSecretRef: { name: IMPORT_SSH_SECRET },
      ...(h.hostKey ? { hostKey: h.hostKey, hostKeyPolicy: "Pinned" } : { hostKeyPolicy: "TrustOnFirstUse" }),
    },
  }));
}

/** Every path the rendered set writes on each host, so that the reader can fetch them before the report. */
export function renderedTargets(hosts: readonly ImportHost[], namespace: string, imports: readonly DaemonImport[]): { host: string; path: string }[] {
  const { set } = validateManifests(documentsOf(allManifests(hosts, namespace, imports)));
  return renderManifestSet(set).files.map((f) => ({ host: f.host, path: f.path }));
}

function allManifests(hosts: readonly ImportHost[], namespace: string, imports: readonly DaemonImport[]): ManifestObject[] {
  return [...importedHosts(hosts, namespace), ...imports.flatMap((i) => i.manifests)];
}

function documentsOf(manifests: readonly ManifestObject[]): ManifestDocument[] {
  return manifests.map((m, n) => ({ source: `import#${n + 1}`, object: structuredClone(m) as unknown as Record<string, unknown> }));
}

function sameKeaJson(live: string, next: string): boolean {
  try {
    return stableStringify(parseKeaConfigText(live)) === stableStringify(JSON.parse(next));
  } catch {
    return false;
  }
}

/** A read-only view of the files read from a host, for gatherRenderInputs. */
function filesSession(host: ImportHost | undefined): HostSession {
  const refuse = () => Promise.reject(new Error("the import report only reads files it already holds"));
  return {
    hostName: host?.name ?? "",
    readFile: async (path: string) => host?.files.get(path),
    run: refuse,
    writeFile: refuse,
    stream: refuse,
    forward: refuse,
  };
}

/** What the first apply writes to a file: patched files are replayed on the live text, as the apply engine does. */
function targetContent(file: RenderedFile, live: string | undefined): string {
  if (file.ownership === "patched" && file.patch) return ensureIncludeLine(live ?? "", file.patch.line, file.patch.marker);
  return file.content;
}

const running = { activeState: "active" } as Parameters<typeof chooseServiceAction>[1];

/**
 * The report for manifests imported from `hosts`, whose `files` must hold every rendered target
 * (see renderedTargets): a file missing from `files` counts as absent on the host.
 */
export async function buildReport(hosts: readonly ImportHost[], namespace: string, imports: readonly DaemonImport[]): Promise<ImportReport> {
  const manifests = allManifests(hosts, namespace, imports);
  const { set, problems } = validateManifests(documentsOf(manifests));
  const byName = new Map(hosts.map((h) => [h.name, h]));
  // The engine's own render inputs (the Kea primary's config, OMAPI keys in place), read from the
  // files the import already holds: the report renders exactly what the first apply would.
  const inputs = await gatherRenderInputs(set, async (host) => filesSession(byName.get(host.metadata.name)));
  const rendered = renderManifestSet(set, inputs);
  const files: FileChange[] = [];
  const edits = new Map(imports.flatMap((i) => i.adoptEdits ?? []).map((e) => [`${e.host}:${e.path}`, e.content]));
  for (const file of rendered.files) {
    const live = byName.get(file.host)?.files.get(file.path);
    const edited = edits.get(`${file.host}:${file.path}`);
    const next = targetContent(file, edited ?? live);
    const change = live === undefined ? "created" : live === next ? "unchanged" : "changed";
    const diff = change === "unchanged" ? "" : createTwoFilesPatch(`${file.host}:${file.path}`, `${file.host}:${file.path} (first apply)`, live ?? "", next, live === undefined ? "(absent)" : "live", "rendered");
    const sameJson = change === "changed" && file.check.kind.startsWith("kea") ? sameKeaJson(live!, next) : undefined;
    files.push({ host: file.host, path: file.path, change, diff, content: next, ...(sameJson !== undefined ? { sameJson } : {}), service: file.service, followedByDaemon: file.followedByDaemon === true, editBeforeApply: edited !== undefined && edited !== live, ...(edited !== undefined && edited !== live ? { editedContent: edited } : {}) });
  }
  const services: ServiceImpact[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    const key = `${f.host}/${f.service}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const mine = files.filter((g) => g.host === f.host && g.service === f.service);
    const needing = mine.filter((g) => g.change !== "unchanged" && !g.followedByDaemon);
    if (needing.length === 0) {
      services.push({ host: f.host, service: f.service, action: "none", why: "every file it reads is already what the operator writes" });
      continue;
    }
    const action = chooseServiceAction(f.service, running);
    services.push({
      host: f.host,
      service: f.service,
      action: action === "reload" ? "reload" : "restart",
      why:
        action === "reload"
          ? `${needing.map((g) => g.path).join(", ")} change: keepalived reloads in place (SIGHUP, same PID); instances whose name is unchanged keep their state and VIP`
          : `${needing.map((g) => g.path).join(", ")} change, and ${f.service === "isc-dhcp-server.service" ? "dhcpd has no reload" : "Kea 2.2 is restarted rather than reloaded (no config rollback before 2.3.6)"} (ADR 0027)`,
    });
  }
  return {
    manifests,
    // The Secret is left out on purpose (no private key in the output): the CLI says how to create it.
    problems: problems.filter((p) => !p.path.startsWith("spec.credentialsSecretRef")).map(formatProblem),
    unrepresentable: imports.flatMap((i) => i.unrepresentable),
    notes: [...imports.flatMap((i) => i.notes), ...rendered.notes],
    files,
    services,
    failures: rendered.failures.map((f) => `${f.resource}: ${f.message}`),
  };
}

/** The manifests as one multi-document YAML stream. */
export function manifestsYaml(manifests: readonly ManifestObject[]): string {
  return manifests.map((m) => stringify(m, { lineWidth: 0 })).join("---\n");
}

/** The report for people: unrepresentable things first, then each daemon's fate, then the diffs. */
export function formatReport(report: ImportReport): string {
  const lines: string[] = [];
  const kinds = report.manifests.map((m) => `${m.kind} ${m.metadata.namespace}/${m.metadata.name}`);
  lines.push(`# Imported: ${kinds.join(", ") || "nothing"}`);
  for (const p of report.problems) lines.push(`# PROBLEM: ${p}`);
  for (const f of report.failures) lines.push(`# RENDER FAILURE: ${f}`);
  lines.push(`# Not representable (${report.unrepresentable.length}):`);
  for (const u of report.unrepresentable) {
    lines.push(`#   ${u.host}:${u.file}${u.line !== undefined ? `:${u.line}` : ""}${u.path ? ` (${u.path})` : ""}: ${u.what}: ${u.why}`);
  }
  for (const n of report.notes) lines.push(`# note: ${n}`);
  lines.push("# The first apply:");
  for (const s of report.services) lines.push(`#   ${s.host}: ${s.service}: ${s.action === "none" ? "no reload, no restart" : s.action}: ${s.why}`);
  for (const f of report.files) {
    const how = f.sameJson ? " (the same JSON: only the text differs)" : f.followedByDaemon ? " (followed by keepalived itself, no reload)" : f.editBeforeApply ? " (EDIT FIRST: the operator's include file takes over declarations made here; write adopt/<host><path> from the import's output directory to the host before the first apply, or the apply's check refuses the duplicates)" : "";
    lines.push(`#   ${f.host}:${f.path}: ${f.change}${how}`);
  }
  const diffs = report.files.filter((f) => f.diff !== "").map((f) => f.diff);
  return `${lines.join("\n")}\n${diffs.join("")}`;
}
