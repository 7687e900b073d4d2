// Sessions for a manifest set without Kubernetes: credentials come from the Secrets in the same
// manifest set, and TrustOnFirstUse pins are kept in a small known-hosts file of our own.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { DDIHost } from "../api/index.js";
import type { SshTransport } from "../ssh/index.js";
import { describeResource, type ManifestSet, objectKey } from "../validation/model.js";
import type { SessionProvider } from "./render-inputs.js";

export const DEFAULT_KNOWN_HOSTS = join(homedir(), ".config", "ddi-ha", "known_hosts.json");

/** TrustOnFirstUse pins by `address:port`, as `ssh-ed25519 AAAA…` lines. */
export class PinnedHostKeys {
  private constructor(
    private readonly path: string,
    private readonly keys: Record<string, string>,
  ) {}

  static async open(path: string = DEFAULT_KNOWN_HOSTS): Promise<PinnedHostKeys> {
    try {
      return new PinnedHostKeys(path, JSON.parse(await readFile(path, "utf8")) as Record<string, string>);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new PinnedHostKeys(path, {});
      throw new Error(`${path}: cannot read pinned host keys: ${(err as Error).message}`);
    }
  }

  get(host: DDIHost): string | undefined {
    return this.keys[`${host.spec.address}:${host.spec.port}`];
  }

  async pin(host: DDIHost, keyLine: string): Promise<void> {
    this.keys[`${host.spec.address}:${host.spec.port}`] = keyLine;
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify(this.keys, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.path);
  }
}

/** A SessionProvider over one SshTransport, reading each host's credentials from the set. */
export function manifestSessionProvider(set: ManifestSet, transport: SshTransport, pins: PinnedHostKeys): SessionProvider {
  return async (host) => {
    const ref = host.spec.credentialsSecretRef.name;
    const secret = set.secrets.get(objectKey(host.metadata.namespace, ref));
    const privateKey = secret?.values.privateKey;
    if (!privateKey) {
      throw new Error(
        `${describeResource(host)}: spec.credentialsSecretRef names Secret "${ref}", which is not in the manifest set or has no privateKey: add the Secret to the files you pass with -f`,
      );
    }
    const pinned = host.spec.hostKeyPolicy === "TrustOnFirstUse" ? pins.get(host) : undefined;
    return transport.session(
      host,
      { privateKey, ...(secret.values.passphrase ? { passphrase: secret.values.passphrase } : {}) },
      {
        ...(pinned ? { pinnedHostKey: pinned } : {}),
        onHostKeyPinned: (keyLine) => pins.pin(host, keyLine),
      },
    );
  };
}
