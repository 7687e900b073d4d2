// Messages for a value of the wrong type or shape (issue 13 item 1). zod reports a present value
// of the wrong type like a missing one unless asked for the input, so "spec.mclt: 1800" used to
// read "spec.mclt is required" and sent users looking for a field they had written. Here the value
// is looked up in the object itself: a missing field is "required"; a present one is named with
// what was found and how to write it, in the daemon's own terms where the units differ.

/** How each daemon writes the durations these fields map to, so a bare number can be converted. */
const DURATION_UNITS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  DhcpFailoverPeer: {
    mclt: "dhcpd's mclt is in seconds",
    maxResponseDelay: "dhcpd's max-response-delay is in seconds",
    maxLeaseTime: "dhcpd's max-lease-time is in seconds",
  },
  KeaHACluster: {
    heartbeatDelay: "Kea's heartbeat-delay is in milliseconds",
    maxResponseDelay: "Kea's max-response-delay is in milliseconds",
    maxAckDelay: "Kea's max-ack-delay is in milliseconds",
    syncTimeout: "Kea's sync-timeout is in milliseconds",
  },
  HAPair: {
    advertInterval: "keepalived's advert_int is in seconds",
    preemptDelay: "keepalived's preempt_delay is in seconds",
  },
  FailoverDrill: {
    objective: "",
    timeout: "",
  },
};

/** The value at `path` under `root`, and whether the path exists at all. */
export function valueAt(root: unknown, path: readonly PropertyKey[]): { present: boolean; value?: unknown } {
  let here: unknown = root;
  for (const key of path) {
    if (here === null || typeof here !== "object" || !Object.prototype.hasOwnProperty.call(here, key as string)) return { present: false };
    here = (here as Record<PropertyKey, unknown>)[key as string];
  }
  return here === undefined ? { present: false } : { present: true, value: here };
}

/** "the number 1800", "the string \"51\"", "a list", "a mapping", "true", "null". */
export function describeFound(value: unknown): string {
  if (value === null) return "null (an empty value)";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "number":
      return `the number ${value}`;
    case "string":
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
    case "boolean":
      return `${value}`;
    case "object":
      return "a mapping";
    default:
      return `a ${typeof value}`;
  }
}

const isNumeric = (s: string) => /^-?\d+(\.\d+)?$/.test(s.trim());

/**
 * The message for a present value of the wrong type: what was found, and how to write it.
 * `kind` and `field` (the last path segment) pick the daemon's units for a duration.
 */
export function typeMismatchMessage(kind: string, path: string, field: string, expected: string, found: unknown): string {
  const got = `got ${describeFound(found)}`;
  const unit = DURATION_UNITS[kind]?.[field];
  if (expected === "string" && unit !== undefined) {
    if (typeof found === "number") {
      const example = unit.includes("milliseconds") ? `"${found}ms"` : `"${found}s"`;
      return `${path}: ${got}; durations are strings with a unit, e.g. ${example}${unit ? ` (${unit})` : ""}`;
    }
    return `${path}: ${got}; durations are strings with a unit, e.g. "30s", "500ms" or "1h"${unit ? ` (${unit})` : ""}`;
  }
  switch (expected) {
    case "string":
      if (typeof found === "number" || typeof found === "boolean") return `${path}: ${got}; this field is text: quote it, e.g. "${String(found)}"`;
      return `${path}: ${got}; this field is a single text value, not ${Array.isArray(found) ? "a list" : "a mapping"}`;
    case "number":
      if (typeof found === "string" && isNumeric(found)) return `${path}: ${got}; this field is a number: write it without quotes, e.g. ${found.trim()}`;
      return `${path}: ${got}; this field is a number, e.g. 51`;
    case "boolean":
      if (typeof found === "string" && /^(true|false|yes|no)$/i.test(found.trim()))
        return `${path}: ${got}; this field is true or false, written without quotes`;
      return `${path}: ${got}; this field is true or false`;
    case "array":
      return `${path}: ${got}; this field is a list: write each item on its own line starting with "- "`;
    case "object":
      return `${path}: ${got}; this field is a mapping of fields (name: value), not ${Array.isArray(found) ? "a list" : "a single value"}`;
    default:
      return `${path}: ${got}; expected ${expected}`;
  }
}
