// Sessions for a manifest set: credentials come from the Secrets in the same manifest set, and
// TrustOnFirstUse pins from each DDIHost's status (with a cluster) or a small known-hosts file of
// our own (the CLI without one).
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { DDIHost } from "../api/index.js";
import type { SshTransport } from "../ssh/index.js";
import { describeResource, type ManifestSet, objectKey } from "../validation/model.js";
import type { SessionProvider } from "./render-inputs.js";

export const DEFAULT_KNOWN_HOSTS = join(homedir(), ".config", "ddi-ha", "known_hosts.json");

/** Where TrustOnFirstUse keys are pinned. spec.hostKey, when set, wins over any pin. */
export interface HostKeyPins {
  /** Names the store in messages: "status.observedHostKey", or the file's path. */
  readonly location: string;
  get(host: DDIHost): string | undefined;
  /** Records a key accepted on first use. */
  pin(host: DDIHost, keyLine: string): Promise<void>;
}

/**
 * Pins kept where the API contract puts them, in each DDIHost's status.observedHostKey. Nothing
 * to write here: the reconcile pass records the key each session verified in the new status.
 */
export function statusHostKeyPins(observedHostKeyOf: (host: DDIHost) => string | undefined): HostKeyPins {
  return { location: "status.observedHostKey", get: observedHostKeyOf, pin: async () => undefined };
}

/** Pin-file writes in this process, one at a time per path (the tail of each path's queue). */
const pinFileWrites = new Map<string, Promise<void>>();

async function readPinFile(path: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Record<string, string>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new Error(`${path}: cannot read pinned host keys: ${(err as Error).message}`);
  }
}

/** TrustOnFirstUse pins by `address:port`, as `ssh-ed25519 AAAA…` lines, in a file (the CLI without a cluster). */
export class PinnedHostKeys implements HostKeyPins {
  private constructor(
    /** The file's path. */
    readonly location: string,
    private readonly keys: Record<string, string>,
  ) {}

  static async open(path: string = DEFAULT_KNOWN_HOSTS): Promise<PinnedHostKeys> {
    return new PinnedHostKeys(path, await readPinFile(path));
  }

  get(host: DDIHost): string | undefined {
    return this.keys[`${host.spec.address}:${host.spec.port}`];
  }

  async pin(host: DDIHost, keyLine: string): Promise<void> {
    this.keys[`${host.spec.address}:${host.spec.port}`] = keyLine;
    // Several hosts are first seen at once; queued, no write replaces the file with a stale copy.
    const write = (pinFileWrites.get(this.location) ?? Promise.resolve()).catch(() => undefined).then(() => this.write());
    pinFileWrites.set(this.location, write);
    await write;
  }

  private async write(): Promise<void> {
    await mkdir(dirname(this.location), { recursive: true, mode: 0o700 });
    // Pins another PinnedHostKeys (or process) wrote to this file since we read it are kept.
    Object.assign(this.keys, { ...(await readPinFile(this.location)), ...this.keys });
    // A temp name of its own: a rename must never move another write's file, half written or gone.
    const tmp = `${this.location}.tmp-${process.pid}-${randomUUID()}`;
    await writeFile(tmp, `${JSON.stringify(this.keys, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.location);
  }
}

/** What to do about a credentials Secret the set lacks, where the set comes from files (the CLI). */
export const SECRET_FROM_FILES_HINT = "add the Secret to the files you pass with -f";

/**
 * A SessionProvider over one SshTransport, reading each host's credentials from the set.
 * `missingSecretHint(namespace, name)` ends the message when the Secret is missing: what to do
 * depends on where the set came from (files, or the API server).
 */
export function manifestSessionProvider(
  set: ManifestSet,
  transport: Pick<SshTransport, "session">,
  pins: HostKeyPins,
  missingSecretHint: (namespace: string, name: string) => string = () => SECRET_FROM_FILES_HINT,
): SessionProvider {
  return async (host) => {
    const ref = host.spec.credentialsSecretRef.name;
    const secret = set.secrets.get(objectKey(host.metadata.namespace, ref));
    const privateKey = secret?.values.privateKey;
    if (!privateKey) {
      throw new Error(
        `${describeResource(host)}: spec.credentialsSecretRef names Secret "${ref}", which is not in the manifest set or has no privateKey: ${missingSecretHint(host.metadata.namespace ?? "default", ref)}`,
      );
    }
    const pinned = host.spec.hostKeyPolicy === "TrustOnFirstUse" ? pins.get(host) : undefined;
    return transport.session(
      host,
      { privateKey, ...(secret.values.passphrase ? { passphrase: secret.values.passphrase } : {}) },
      {
        ...(pinned ? { pinnedHostKey: pinned } : {}),
        pinnedHostKeyStore: pins.location,
        onHostKeyPinned: (keyLine) => pins.pin(host, keyLine),
      },
    );
  };
}
