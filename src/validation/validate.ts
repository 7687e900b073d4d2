// Validates a set of manifests the way the operator would: each object against its kind's
// schema (the same rules the CRD enforces at admission), then the rules that need several
// objects at once, which admission cannot see.
import type { z } from "zod";
import { API_GROUP, API_GROUP_VERSION, type DDIResource, type ObjectMeta, kindDefinition } from "../api/index.js";
import type { ManifestDocument } from "../manifests/load.js";
import { crossObjectProblems, missingSecretProblems } from "./cross-object.js";
import { typeMismatchMessage, valueAt } from "./type-mismatch.js";
import { DEFAULT_NAMESPACE, type ManifestSet, objectKey, type ValidationProblem } from "./model.js";

export * from "./model.js";

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === "number" ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), "");
}

/**
 * zod issues → problems with a field path and a message a network engineer can act on. `input`
 * is what was parsed (the spec), so that a present value of the wrong type is named as found,
 * never as missing; `kind` picks the daemon's units in those messages.
 */
export function zodProblems(error: z.ZodError, resource: string, source: string, prefix: string, input?: unknown, kind = ""): ValidationProblem[] {
  // A value of the wrong type is the whole story at its path: zod's other complaints there (a
  // length measured on the wrong type) would only confuse.
  const mistyped = new Set(
    error.issues.filter((i) => i.code === "invalid_type" && valueAt(input, i.path).present).map((i) => formatPath([prefix, ...i.path])),
  );
  return error.issues
    .filter((issue) => issue.code === "invalid_type" || !mistyped.has(formatPath([prefix, ...issue.path])))
    .map((issue) => {
      const path = formatPath([prefix, ...issue.path]);
      return { severity: "error" as const, resource, source, path, message: readableMessage(issue, path, input, kind) };
    });
}

/** zod's default wording is for programmers; these say what a valid value looks like. */
function readableMessage(issue: z.core.$ZodIssue, path: string, input: unknown, kind: string): string {
  switch (issue.code) {
    case "invalid_type": {
      const at = valueAt(input, issue.path);
      if (!at.present) return `${path} is required`;
      return typeMismatchMessage(kind, path, String(issue.path.at(-1) ?? ""), issue.expected, at.value);
    }
    case "unrecognized_keys":
      return `unknown field(s) ${issue.keys.join(", ")}: check the spelling against \`kubectl explain\``;
    case "too_big":
      return issue.origin === "array" ? `must have at most ${issue.maximum} item(s)` : issue.origin === "string" ? `must be at most ${issue.maximum} characters` : `must be at most ${issue.maximum}`;
    case "too_small":
      return issue.origin === "array" ? `must have at least ${issue.minimum} item(s)` : issue.origin === "string" ? `must be at least ${issue.minimum} characters` : `must be at least ${issue.minimum}`;
    case "invalid_value":
      return `must be one of: ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return issue.message;
  }
}


function decodeSecret(object: Record<string, unknown>): Record<string, string> {
  const values: Record<string, string> = {};
  const data = (object.data ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(data)) if (typeof v === "string") values[k] = Buffer.from(v, "base64").toString("utf8");
  const stringData = (object.stringData ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(stringData)) if (typeof v === "string") values[k] = v;
  return values;
}

function metadataProblems(object: Record<string, unknown>, source: string): { metadata?: ObjectMeta; problems: ValidationProblem[] } {
  const metadata = object.metadata as ObjectMeta | undefined;
  const kind = String(object.kind);
  if (!metadata || typeof metadata.name !== "string" || metadata.name === "") {
    return { problems: [{ severity: "error", resource: `${kind} (${source})`, source, path: "metadata.name", message: "metadata.name is required" }] };
  }
  if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(metadata.name)) {
    return {
      problems: [
        {
          severity: "error",
          resource: `${kind} ${metadata.name}`,
          source,
          path: "metadata.name",
          message: "metadata.name must be at most 63 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
        },
      ],
    };
  }
  return { metadata, problems: [] };
}

export interface ValidatedSet {
  set: ManifestSet;
  problems: ValidationProblem[];
}

export function validateManifests(documents: readonly ManifestDocument[]): ValidatedSet {
  const validated = validateObjects(documents);
  return { set: validated.set, problems: [...validated.problems, ...missingSecretProblems(validated.set)] };
}

/**
 * `validated` (the objects of a namespace, validated once per change of them) with this pass's
 * Secrets: the same result as validateManifests over both, without validating the objects again.
 * Each pass reads its Secrets anew, so they cannot be part of what is cached (ADR 0032).
 */
export function withSecrets(validated: ValidatedSet, secretDocuments: readonly ManifestDocument[]): ValidatedSet {
  const { set: secretsOnly, problems } = validateObjects(secretDocuments.filter((d) => d.object.apiVersion === "v1" && d.object.kind === "Secret"));
  const set: ManifestSet = { ...validated.set, secrets: new Map([...validated.set.secrets, ...secretsOnly.secrets]) };
  return { set, problems: [...validated.problems, ...problems, ...missingSecretProblems(set)] };
}

/** Every rule but the missing-Secret warnings, which depend on Secrets the caller may add later (withSecrets). */
export function validateObjects(documents: readonly ManifestDocument[]): ValidatedSet {
  const set: ManifestSet = { hosts: new Map(), haPairs: [], keaClusters: [], failoverPeers: [], secrets: new Map(), sources: new Map() };
  const problems: ValidationProblem[] = [];
  const seen = new Map<string, string>();

  for (const { source, object } of documents) {
    const kind = typeof object.kind === "string" ? object.kind : undefined;
    if (object.apiVersion === "v1" && kind === "Secret") {
      const { metadata, problems: metaProblems } = metadataProblems(object, source);
      problems.push(...metaProblems);
      if (metadata) set.secrets.set(objectKey(metadata.namespace, metadata.name), { metadata, values: decodeSecret(object) });
      continue;
    }
    const def = kind ? kindDefinition(kind) : undefined;
    const ourGroup = typeof object.apiVersion === "string" && object.apiVersion.startsWith(`${API_GROUP}/`);
    // Namespaces, RBAC…: not ours. One of our kinds under another group (ddiha.io/…) is a typo, not someone else's object.
    if (!ourGroup && !def) continue;
    if (!def) {
      problems.push({ severity: "error", resource: `${kind ?? "(no kind)"} (${source})`, source, path: "kind", message: `unknown kind ${kind ?? "(missing)"}: expected DDIHost, HAPair, KeaHACluster, DhcpFailoverPeer or FailoverDrill` });
      continue;
    }
    const { metadata, problems: metaProblems } = metadataProblems(object, source);
    problems.push(...metaProblems);
    if (!metadata) continue;
    const resourceName = `${def.kind} ${objectKey(metadata.namespace, metadata.name)}`;
    if (object.apiVersion !== API_GROUP_VERSION) {
      const given = typeof object.apiVersion === "string" ? JSON.stringify(object.apiVersion) : "missing";
      problems.push({
        severity: "error",
        resource: resourceName,
        source,
        path: "apiVersion",
        message: `apiVersion must be ${API_GROUP_VERSION} for kind ${def.kind} (it is ${given}): set apiVersion: ${API_GROUP_VERSION}`,
      });
      continue;
    }
    const duplicateOf = seen.get(resourceName);
    if (duplicateOf) {
      problems.push({ severity: "error", resource: resourceName, source, path: "metadata.name", message: `defined twice (also in ${duplicateOf}); rename one` });
      continue;
    }
    seen.set(resourceName, source);
    const parsed = def.spec.safeParse(object.spec);
    if (!parsed.success) {
      problems.push(...zodProblems(parsed.error, resourceName, source, "spec", object.spec, def.kind));
      continue;
    }
    const resource = { apiVersion: API_GROUP_VERSION, kind: def.kind, metadata: { ...metadata, namespace: metadata.namespace ?? DEFAULT_NAMESPACE }, spec: parsed.data } as DDIResource;
    set.sources.set(resource, source);
    switch (resource.kind) {
      case "DDIHost":
        set.hosts.set(objectKey(resource.metadata.namespace, resource.metadata.name), resource);
        break;
      case "HAPair":
        set.haPairs.push(resource);
        break;
      case "KeaHACluster":
        set.keaClusters.push(resource);
        break;
      case "DhcpFailoverPeer":
        set.failoverPeers.push(resource);
        break;
    }
  }
  problems.push(...crossObjectProblems(set));
  return { set, problems };
}

export function formatProblem(p: ValidationProblem): string {
  // Cross-field messages already start with the field they are about; one written for any list
  // item ("spec.peers[].url must …") gets this item's index.
  const generic = p.path.replace(/\[\d+\]/g, "[]");
  const message = generic !== p.path && p.message.startsWith(generic) ? `${p.path}${p.message.slice(generic.length)}` : p.message;
  const field = message.startsWith(p.path) ? "" : `${p.path}: `;
  return `${p.severity === "warning" ? "warning: " : ""}${p.resource}: ${field}${message}${p.source ? ` (${p.source})` : ""}`;
}
