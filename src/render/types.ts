// What every daemon renderer produces: files for hosts. The apply engine treats them all alike
// (stage, check, swap, reload, verify, roll back), so a renderer never touches I/O.

/** A systemd unit the operator may reload or restart after a file changes. */
export type ServiceUnit = "keepalived.service" | "isc-dhcp-server.service" | "kea-dhcp4-server.service" | "kea-ctrl-agent.service";

/** The daemon check that must accept a file before it replaces the live one. */
export type FileCheck =
  | { kind: "keepalived" } // keepalived -t -f, on the composed main file
  | { kind: "dhcpd" } // dhcpd -t -cf, on the composed main file
  | { kind: "kea-dhcp4" } // kea-dhcp4 -t plus the scratch-server HA check
  | { kind: "kea-ctrl-agent" } // kea-ctrl-agent -t
  | { kind: "none" };

export interface RenderedFile {
  /** DDIHost name (same namespace as the owning resource). */
  host: string;
  /** Absolute path on the host. */
  path: string;
  content: string;
  /** Octal file mode, e.g. 0o644; secrets (OMAPI keys) get 0o640 or tighter. */
  mode: number;
  /**
   * owned: the file belongs wholly to one resource (deleted with it under deletionPolicy Remove).
   * shared: identical content whichever resource renders it (e.g. keepalived's main file that includes the per-pair files).
   * patched: the operator only keeps one marked line in a file the user owns (dhcpd.conf's include line); `content` is the
   *          result on top of `baseContent`, and `patch` says how to redo it on the live file.
   */
  ownership: "owned" | "shared" | "patched";
  patch?: { marker: string; line: string };
  /** Service to reload (or restart) when this file changes. */
  service: ServiceUnit;
  /**
   * The running daemon follows this file by itself (keepalived's track_file, through inotify): a
   * change that touches nothing else needs no reload. The maintenance flag is one.
   */
  followedByDaemon?: true;
  check: FileCheck;
  /** `namespace/name` of the resource that owns the file, for `kind/ns/name` in messages. */
  owner: string;
}
