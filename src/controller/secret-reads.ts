// The controller's reads of Secrets (SSH credentials, OMAPI keys), reused for a short TTL. While
// the API server cannot be reached (restarting, overloaded: see isApiUnreachable) a read answers
// with the last copy it got instead of failing: the hosts are still there, and failing the read
// would make every pass call every host unreachable (status, ddi_ha_host_reachable, alerts) for
// as long as the API server is away, although nothing happened to the hosts. An informer cache,
// as controller-runtime keeps for Secrets, serves the same stale copy. An answer of the API server
// (403, 404) is always taken as it is. See ADR 0026.
import type { Logger } from "pino";
import type { KubeItem } from "../engine/kube-status.js";
import { isApiUnreachable, kubeErrorMessage } from "./kube-client.js";

export interface SecretReadsOptions {
  /** One read from the API server: undefined when the Secret does not exist. */
  read(namespace: string, name: string): Promise<KubeItem | undefined>;
  ttlMs: number;
  log: Logger;
  now?: () => number;
}

export class SecretReads {
  private readonly recent = new Map<string, { at: number; secret: Promise<KubeItem | undefined> }>();
  /** The last answer the API server gave for each Secret (undefined: it did not exist). */
  private readonly lastAnswer = new Map<string, KubeItem | undefined>();
  private readonly now: () => number;

  constructor(private readonly options: SecretReadsOptions) {
    this.now = options.now ?? Date.now;
  }

  read(namespace: string, name: string): Promise<KubeItem | undefined> {
    const key = `${namespace}/${name}`;
    const cached = this.recent.get(key);
    if (cached && this.now() - cached.at < this.options.ttlMs) return cached.secret;
    const secret = this.options.read(namespace, name).then(
      (answer) => {
        this.lastAnswer.set(key, answer);
        return answer;
      },
      (err: unknown) => {
        // Not reused: the next pass asks again.
        if (this.recent.get(key)?.secret === secret) this.recent.delete(key);
        if (!isApiUnreachable(err) || !this.lastAnswer.has(key)) throw err;
        this.options.log.warn({ namespace, name, err: kubeErrorMessage(err) }, "API server unreachable: using the last copy read of the Secret");
        return this.lastAnswer.get(key);
      },
    );
    this.recent.set(key, { at: this.now(), secret });
    return secret;
  }
}
