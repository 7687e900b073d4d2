// The controller's Kubernetes I/O through @kubernetes/client-node: list and watch the ddi-ha
// kinds, write /status and finalizers with JSON merge patches, read the Secrets hosts reference.
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig, PatchStrategy, Watch, setHeaderOptions } from "@kubernetes/client-node";
import { API_GROUP, API_GROUP_VERSION, API_VERSION, kindDefinition } from "../api/index.js";
import type { KubeItem } from "../engine/kube-status.js";
import { DEFAULT_KUBE_API_RATE, type RateGate, type RateLimit, rateGate } from "../exec/rate-limit.js";

export const CONTROLLER_FIELD_MANAGER = "ddi-ha-controller";

/**
 * client-node's Watch aborts a watch that received nothing for `requestTimeoutMs` (30 s in
 * 2.0.1), shorter than the API server's bookmark interval (about a minute): every quiet watch
 * would reconnect twice a minute. The property is private in its types, public in its code.
 */
export const WATCH_INACTIVITY_TIMEOUT_MS = 90_000;

/** client-node's patch calls default to json-patch; every patch here is a merge patch (RFC 7386). */
const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

function pluralOf(kind: string): string {
  const def = kindDefinition(kind);
  if (!def) throw new Error(`not a ddi-ha kind: ${kind}`);
  return def.plural;
}

/** The collection's URL path, all namespaces when `namespace` is undefined. */
export function collectionPath(kind: string, namespace: string | undefined): string {
  return `/apis/${API_GROUP}/${API_VERSION}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ""}/${pluralOf(kind)}`;
}

/** The HTTP status of a client-node error, if it has one. */
export function statusCodeOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const e = err as { statusCode?: unknown; code?: unknown } | undefined;
  if (typeof e?.statusCode === "number") return e.statusCode;
  return typeof e?.code === "number" ? e.code : undefined;
}

/** Error codes of a connection to the API server that failed or broke (Node, undici). */
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_CLOSED"]);

/**
 * True when `err` says the API server was not there to answer (a refused or broken connection,
 * undici's "fetch failed" around one) or asked to be left alone (429, 503): nothing about the
 * request is wrong, so a watch can resume from its resourceVersion once the server is back and a
 * read can make do with its last answer meanwhile (ADR 0026).
 */
export function isApiUnreachable(err: unknown): boolean {
  const status = statusCodeOf(err);
  if (status !== undefined) return status === 429 || status === 503;
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && UNREACHABLE_CODES.has(e.code)) return true;
  }
  return false;
}

/**
 * One line for a log or a status message. client-node's ApiException message carries every
 * response header; the API server's Status message is what says what went wrong.
 */
export function kubeErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: string; reason?: string } | string | undefined;
    const message = typeof body === "object" && body?.message ? body.message : typeof body === "string" ? body.slice(0, 300) : "";
    return `HTTP ${err.code}${message ? `: ${message}` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

export interface KubeList {
  items: KubeItem[];
  resourceVersion: string;
}

export class KubeClient {
  readonly watch: Watch;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  /**
   * Every request but the watches waits for it: client-side QPS and burst, as client-go's. Public
   * so the Events sink, a client of its own, spends the same budget.
   */
  readonly gate: RateGate;

  constructor(
    readonly kubeConfig: KubeConfig,
    rate: RateLimit | undefined = DEFAULT_KUBE_API_RATE,
  ) {
    this.gate = rateGate(rate);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.watch = new Watch(kubeConfig);
    const watch = this.watch as unknown as { requestTimeoutMs?: unknown };
    // If a client-node upgrade renames it, quiet watches reconnect more often; nothing breaks.
    if (typeof watch.requestTimeoutMs === "number") watch.requestTimeoutMs = WATCH_INACTIVITY_TIMEOUT_MS;
  }

  async list(kind: string, namespace: string | undefined): Promise<KubeList> {
    await this.gate();
    const base = { group: API_GROUP, version: API_VERSION, plural: pluralOf(kind) };
    const list = (namespace ? await this.custom.listNamespacedCustomObject({ ...base, namespace }) : await this.custom.listClusterCustomObject(base)) as {
      items?: KubeItem[];
      metadata?: { resourceVersion?: string };
    };
    // A list's items may come without apiVersion and kind; the validator needs both.
    const items = (list.items ?? []).map((item) => ({ ...item, apiVersion: item.apiVersion ?? API_GROUP_VERSION, kind: item.kind ?? kind }));
    return { items, resourceVersion: list.metadata?.resourceVersion ?? "" };
  }

  /**
   * Writes `patch` ({status: …}) through the /status subresource, so spec and metadata stay
   * untouched. It carries the resourceVersion the status was computed from: if the object
   * changed since (another writer, our own earlier write not yet in the cache), the API server
   * answers 409 and the caller re-reads instead of overwriting a newer status. Returns the object written.
   */
  async patchStatus(item: Pick<KubeItem, "kind" | "metadata">, patch: { status: unknown }): Promise<KubeItem> {
    const body = item.metadata.resourceVersion ? { ...patch, metadata: { resourceVersion: item.metadata.resourceVersion } } : patch;
    await this.gate();
    return (await this.custom.patchNamespacedCustomObjectStatus(
      { ...this.objectRef(item), body, fieldManager: CONTROLLER_FIELD_MANAGER },
      MERGE_PATCH,
    )) as KubeItem;
  }

  /** The object as the API server has it now, or undefined when it is gone. */
  async get(item: Pick<KubeItem, "kind" | "metadata">): Promise<KubeItem | undefined> {
    await this.gate();
    try {
      const got = (await this.custom.getNamespacedCustomObject(this.objectRef(item))) as KubeItem;
      return { ...got, kind: got.kind ?? item.kind, apiVersion: got.apiVersion ?? API_GROUP_VERSION };
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * Sets metadata.finalizers. A merge patch replaces the list whole, so it carries the
   * resourceVersion it was computed from: a concurrent change to the object fails it with 409
   * instead of dropping someone else's finalizer.
   */
  async setFinalizers(item: Pick<KubeItem, "kind" | "metadata">, finalizers: string[]): Promise<KubeItem> {
    await this.gate();
    return (await this.custom.patchNamespacedCustomObject(
      {
        ...this.objectRef(item),
        body: { metadata: { finalizers, resourceVersion: item.metadata.resourceVersion } },
        fieldManager: CONTROLLER_FIELD_MANAGER,
      },
      MERGE_PATCH,
    )) as KubeItem;
  }

  /** A Secret as a manifest document (`data` stays base64), or undefined when there is none. Never logged. */
  async readSecret(namespace: string, name: string): Promise<KubeItem | undefined> {
    await this.gate();
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name });
      return {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name, namespace },
        data: secret.data ?? {},
      };
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw err;
    }
  }

  private objectRef(item: Pick<KubeItem, "kind" | "metadata">) {
    return {
      group: API_GROUP,
      version: API_VERSION,
      plural: pluralOf(item.kind),
      namespace: item.metadata.namespace ?? "default",
      name: item.metadata.name,
    };
  }
}
