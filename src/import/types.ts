// What `ddi-ha import` works on: config files read from hosts, and what it makes of them. Pure
// data; the SSH edge (src/import/read-hosts.ts) fills HostConfigs, the daemon modules here turn
// them into manifests, and src/import/report.ts compares the manifests' rendering with the files.

/** One host named by `--host user@addr[:port]`, as the import reached it. */
export interface ImportHost {
  /** The DDIHost name the import gives it (from the host's own hostname, made RFC 1123). */
  name: string;
  address: string;
  port: number;
  user: string;
  /** The host key line the SSH session verified; the DDIHost pins it. */
  hostKey?: string;
  /** Every file read from the host, by absolute path; undefined when it does not exist. */
  files: ReadonlyMap<string, string | undefined>;
  /** keepalived's include patterns expanded on the host: main file → the files it includes, in order. */
  includes?: ReadonlyMap<string, readonly string[]>;
}

/** Something in a host's config that no manifest field holds. It is always named, never dropped silently. */
export interface Unrepresentable {
  host: string;
  file: string;
  /** 1-based line, where the syntax has lines. */
  line?: number;
  /** A JSON path (Kea) or the enclosing block (keepalived, dhcpd). */
  path?: string;
  /** The statement or key, as written. */
  what: string;
  /** Why the manifests cannot hold it, and what the first apply does with it. */
  why: string;
}

/** A Kubernetes object as the import writes it (YAML documents). */
export type ManifestObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  /** Secrets only (the OMAPI key). */
  stringData?: Record<string, string>;
};

export interface DaemonImport {
  manifests: ManifestObject[];
  unrepresentable: Unrepresentable[];
  /** Facts worth saying that are not losses (a default made explicit, a role inferred). */
  notes: string[];
  /**
   * Files the user must change before the first apply, with their new content: declarations the
   * operator's own include file takes over (dhcpd.conf). The report diffs against these.
   */
  adoptEdits?: { host: string; path: string; content: string }[];
}

export const API_VERSION = "ddi-ha.io/v1alpha1";

/** An RFC 1123 label from any word: lower case, runs of other characters become '-'. */
export function rfc1123Name(word: string, fallback: string): string {
  const name = word
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  return name === "" ? fallback : name;
}

/** Milliseconds as the API's duration string: whole seconds as "Ns", else "Nms". */
export function msToDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
