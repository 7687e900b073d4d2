// What deleting a KeaHACluster (deletionPolicy Remove) makes of each peer: its own kea-dhcp4
// config without the HA hook, a Control Agent on 127.0.0.1 again, and only the primary still
// serving. See docs/adr/0028-finalizers-for-kea-and-dhcpd.md.
import type { KeaHACluster } from "../../api/index.js";
import type { RenderedFile, ServiceUnit } from "../../render/types.js";
import { isRecord, parseKeaConfigText, stableStringify } from "./config-text.js";
import { controlAgentConfig } from "./render.js";
import { HA_LIBRARY, KEA_CONFIG_FILE_MODE, KEA_CTRL_AGENT_UNIT, KEA_DHCP4_CONTROL_SOCKET, KEA_DHCP4_UNIT, hookLibraryName } from "./platform.js";

/** Debian's own Control Agent endpoint: reachable from the host only. */
export const STANDALONE_AGENT_URL = "http://127.0.0.1:8000/";

/**
 * A kea-dhcp4 config text without the HA hook: everything else (subnets, lease database,
 * lease_cmds, the user's other hooks, key order aside) stays as the host has it.
 */
export function withoutHAHook(text: string, source: string): string {
  const config = parseKeaConfigText(text, source);
  const dhcp4 = config.Dhcp4;
  if (!isRecord(dhcp4)) throw new Error(`${source} has no Dhcp4 object; fix the file or set spec.deletionPolicy to Retain`);
  const hooks = Array.isArray(dhcp4["hooks-libraries"]) ? dhcp4["hooks-libraries"] : [];
  const kept = hooks.filter((h) => !(isRecord(h) && typeof h.library === "string" && hookLibraryName(h.library) === HA_LIBRARY));
  return stableStringify({ ...config, Dhcp4: { ...dhcp4, "hooks-libraries": kept } });
}

export interface KeaPeerRemoval {
  host: string;
  /** Rewritten whole, through the usual checks (the scratch server for kea-dhcp4). */
  files: RenderedFile[];
  /** Stopped and disabled after the swap: two standalone servers would hand out the same pool. */
  stop: ServiceUnit[];
}

/**
 * Per peer, from its live kea-dhcp4 config (undefined: the file is gone, nothing to rewrite):
 * the HA hook out, the agent back on 127.0.0.1, and every peer but the primary stopped. Under
 * Retain: nothing.
 */
export function keaClusterRemovals(cluster: KeaHACluster, liveConfigOf: (host: string) => string | undefined): KeaPeerRemoval[] {
  if (cluster.spec.deletionPolicy === "Retain") return [];
  const owner = `${cluster.metadata.namespace ?? "default"}/${cluster.metadata.name}`;
  return cluster.spec.peers.map((peer) => {
    const live = liveConfigOf(peer.host);
    const common = { host: peer.host, mode: KEA_CONFIG_FILE_MODE, ownership: "owned", owner } as const;
    const files: RenderedFile[] = [];
    let socket = KEA_DHCP4_CONTROL_SOCKET;
    if (live !== undefined) {
      const content = withoutHAHook(live, `${peer.host}:${cluster.spec.configPath}`);
      const control = (JSON.parse(content) as { Dhcp4: Record<string, unknown> }).Dhcp4["control-socket"];
      if (isRecord(control) && typeof control["socket-name"] === "string") socket = control["socket-name"];
      files.push({ ...common, path: cluster.spec.configPath, content, service: KEA_DHCP4_UNIT, check: { kind: "kea-dhcp4" } });
    }
    files.push({
      ...common,
      path: cluster.spec.controlAgentConfigPath,
      content: stableStringify(controlAgentConfig(STANDALONE_AGENT_URL, socket)),
      service: KEA_CTRL_AGENT_UNIT,
      check: { kind: "kea-ctrl-agent" },
    });
    return { host: peer.host, files, stop: peer.role === "primary" ? [] : [KEA_DHCP4_UNIT] };
  });
}
