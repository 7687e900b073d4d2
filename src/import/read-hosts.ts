// The SSH edge of `ddi-ha import`: reach each `--host user@addr[:port]` with the CLI's own host-key
// checks (a key given with --host-key is pinned; otherwise TrustOnFirstUse against the
// --known-hosts file, where a changed key is refused), and read the daemons' config files.
import { isIP } from "node:net";
import type { DDIHost } from "../api/index.js";
import { parseDhcpdConf, startsWith } from "../daemons/dhcpd/conf-parser.js";
import { includePatterns, liveFilesMatching } from "../daemons/keepalived/index.js";
import { PinnedHostKeys } from "../engine/sessions.js";
import type { HostSession } from "../exec/host-io.js";
import { parseHostKey, type SshTransport } from "../ssh/index.js";
import { type ImportHost, rfc1123Name } from "./types.js";

export interface HostSpec {
  user: string;
  address: string;
  port: number;
}

const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}$/;
const DNS_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `user@addr`, `user@addr:port` or `user@[v6]:port`; refuses anything that is not a plain user and address. */
export function parseHostArg(arg: string): HostSpec {
  const m = /^([^@]+)@(\[([^\]]+)\]|[^:]+)(?::(\d{1,5}))?$/.exec(arg);
  const user = m?.[1];
  const address = m?.[3] ?? m?.[2];
  const port = m?.[4] !== undefined ? Number(m[4]) : 22;
  if (!m || !user || !address || !USER_RE.test(user) || !(isIP(address) !== 0 || DNS_NAME_RE.test(address)) || port < 1 || port > 65535) {
    throw new Error(`--host ${JSON.stringify(arg)}: expected user@address or user@address:port, e.g. root@198.18.0.10 (IPv6 as root@[fd00::10]:22)`);
  }
  return { user, address, port };
}

/** `--host-key addr=ssh-ed25519 AAAA…`: the key to pin for one host. */
export function parseHostKeyArg(arg: string): { address: string; key: string } {
  const eq = arg.indexOf("=");
  const address = arg.slice(0, eq).replace(/^\[|\]$/g, "");
  const key = arg.slice(eq + 1).trim();
  try {
    if (eq <= 0) throw new Error("no '='");
    parseHostKey(key);
  } catch {
    throw new Error(`--host-key ${JSON.stringify(arg.slice(0, 40))}…: expected address=<host key line>, e.g. 198.18.0.10="ssh-ed25519 AAAA…"`);
  }
  return { address, key };
}

/** The config files every import reads (those the seeds' shapes live in). */
const KEEPALIVED_MAIN = "/etc/keepalived/keepalived.conf";
const DHCPD_MAIN = "/etc/dhcp/dhcpd.conf";
export const IMPORT_FILES = [KEEPALIVED_MAIN, DHCPD_MAIN, "/etc/kea/kea-dhcp4.conf", "/etc/kea/kea-ctrl-agent.conf"] as const;

export interface ReadHostsOptions {
  identity: string;
  passphrase?: string;
  hostKeys: ReadonlyMap<string, string>;
  knownHosts?: string;
}

/** One connected host: its session, and the ImportHost filled with the files read so far. */
export interface ConnectedHost {
  session: HostSession;
  host: ImportHost & { files: Map<string, string | undefined> };
}

/** Connects to every host (all at once) and reads IMPORT_FILES; the DDIHost names come from each host's own hostname. */
export async function connectAndRead(specs: readonly HostSpec[], transport: Pick<SshTransport, "session">, options: ReadHostsOptions): Promise<ConnectedHost[]> {
  const pins = await PinnedHostKeys.open(options.knownHosts);
  const taken = new Set<string>();
  const connected = await Promise.all(
    specs.map(async (spec, n) => {
      const pinnedKey = options.hostKeys.get(spec.address);
      // A DDIHost of the import's own, only for the transport: the real ones are written after the hostnames are known.
      const target = {
        apiVersion: "ddi-ha.io/v1alpha1",
        kind: "DDIHost",
        metadata: { name: `import-${n + 1}`, namespace: "ddi-ha-import" },
        spec: {
          address: spec.address,
          port: spec.port,
          user: spec.user,
          sudo: spec.user !== "root",
          credentialsSecretRef: { name: "import" },
          ...(pinnedKey ? { hostKey: pinnedKey } : {}),
          hostKeyPolicy: pinnedKey ? "Pinned" : "TrustOnFirstUse",
          maintenance: false,
        },
      } as unknown as DDIHost;
      let verifiedKey = pinnedKey ?? pins.get(target);
      const session = await transport.session(
        target,
        { privateKey: options.identity, ...(options.passphrase ? { passphrase: options.passphrase } : {}) },
        {
          ...(pinnedKey ? {} : { ...(verifiedKey ? { pinnedHostKey: verifiedKey } : {}), pinnedHostKeyStore: pins.location }),
          onHostKeyPinned: async (line) => {
            verifiedKey = line;
            await pins.pin(target, line);
          },
        },
      );
      const hostname = (await session.run(["hostname"])).stdout.trim();
      const files = new Map<string, string | undefined>();
      for (const path of IMPORT_FILES) files.set(path, await session.readFile(path));
      // keepalived's includes (the operator's own ddi-ha.d/*.conf among them), expanded as keepalived does.
      const includes = new Map<string, string[]>();
      const main = files.get(KEEPALIVED_MAIN);
      if (main !== undefined) {
        const included: string[] = [];
        for (const pattern of includePatterns(main)) {
          for (const path of pattern.startsWith("/") ? await liveFilesMatching(session, pattern) : []) {
            included.push(path);
            files.set(path, await session.readFile(path));
          }
        }
        includes.set(KEEPALIVED_MAIN, included);
      }
      // dhcpd's include statements (the operator's own include file among them), read in order.
      const dhcpd = files.get(DHCPD_MAIN);
      if (dhcpd !== undefined) {
        const included = parseDhcpdConf(dhcpd, DHCPD_MAIN)
          .filter((st) => startsWith(st, "include") && st.words[1]?.quoted && st.words[1].text.startsWith("/"))
          .map((st) => st.words[1]!.text);
        for (const path of included) files.set(path, await session.readFile(path));
        includes.set(DHCPD_MAIN, included);
      }
      return { session, spec, hostname, files, includes, verifiedKey: () => verifiedKey };
    }),
  );
  return connected.map(({ session, spec, hostname, files, includes, verifiedKey }) => {
    let name = rfc1123Name(hostname, rfc1123Name(spec.address, "host"));
    for (let i = 2; taken.has(name); i++) name = `${rfc1123Name(hostname, "host")}-${i}`;
    taken.add(name);
    const key = verifiedKey();
    return { session, host: { name, address: spec.address, port: spec.port, user: spec.user, ...(key ? { hostKey: key } : {}), files, includes } };
  });
}

/** Reads the given paths into each host's files (those already read are kept). */
export async function readMore(hosts: readonly ConnectedHost[], targets: readonly { host: string; path: string }[]): Promise<void> {
  await Promise.all(
    hosts.map(async ({ session, host }) => {
      for (const t of targets) if (t.host === host.name && !host.files.has(t.path)) host.files.set(t.path, await session.readFile(t.path));
    }),
  );
}
