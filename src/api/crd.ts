// Turns the zod schemas into CustomResourceDefinitions. The zod schemas are the single source:
// TypeScript types, `ddi-ha validate`, and the structural schema the API server enforces.
import { z } from "zod";
import { API_GROUP, API_VERSION, type KindDefinition } from "./common.js";

type JsonSchema = Record<string, unknown>;

/** Rewrites zod's JSON Schema into a Kubernetes structural schema. */
function toStructural(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "$schema":
      case "propertyNames":
        continue; // not part of the Kubernetes OpenAPI subset
      case "additionalProperties":
        // zod emits `false` for strict objects (not allowed beside `properties`) and `{}` for
        // records, which become maps of arbitrary values that CEL can still iterate.
        if (value !== false && node.properties === undefined) {
          out.additionalProperties = Object.keys(value as object).length === 0 ? { "x-kubernetes-preserve-unknown-fields": true } : toStructural(value as JsonSchema);
        }
        continue;
      case "properties":
        out.properties = Object.fromEntries(
          Object.entries(value as Record<string, JsonSchema>).map(([k, v]) => [k, toStructural(v)]),
        );
        break;
      case "items":
        out.items = toStructural(value as JsonSchema);
        break;
      default:
        out[key] = value;
    }
  }
  // A node of any type (z.unknown()) keeps whatever the user wrote.
  if (out.type === undefined && out.anyOf === undefined && out["x-kubernetes-preserve-unknown-fields"] === undefined) {
    out["x-kubernetes-preserve-unknown-fields"] = true;
  }
  if (out.type === "object" && out.properties === undefined && out.additionalProperties === undefined && out["x-kubernetes-preserve-unknown-fields"] === undefined) {
    out["x-kubernetes-preserve-unknown-fields"] = true;
  }
  return out;
}

export function openApiSchema(schema: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { io: "input", target: "draft-7", unrepresentable: "throw" }) as JsonSchema);
}

export function crdFor(def: KindDefinition): Record<string, unknown> {
  const spec = openApiSchema(def.spec);
  const status = openApiSchema(def.status);
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${def.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ["ddi-ha"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: def.description,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string", description: "APIVersion of this object: ddi-ha.io/v1alpha1." },
                kind: { type: "string", description: `Kind of this object: ${def.kind}.` },
                metadata: { type: "object" },
                spec: spec,
                status: status,
              },
            },
          },
        },
      ],
    },
  };
}
