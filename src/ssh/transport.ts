// The operator's SSH edge: one SshTransport per process, one pooled SshHostSession per DDIHost.
import { createHash } from "node:crypto";
import { pino, type Logger } from "pino";
import type { DDIHost } from "../api/index.js";
import { type BackoffPolicy, DEFAULT_BACKOFF } from "./backoff.js";
import { type RateGate, type RateLimit, rateGate } from "../exec/rate-limit.js";
import { Semaphore } from "./semaphore.js";
import { type ChannelCounts, type SessionTarget, type SshCredentials, SshHostSession, newChannelCounts } from "./session.js";

/**
 * Log paths pino must censor. The transport never logs credentials itself; the list is for the
 * process's root logger (pino's redaction is fixed when the root logger is created).
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  "privateKey",
  "passphrase",
  "password",
  "credentials",
  "*.privateKey",
  "*.passphrase",
  "*.password",
  "*.credentials",
  "config.privateKey",
  "config.passphrase",
];

export interface SshTransportOptions {
  /** Root logger; the transport logs through child loggers carrying the host. Default: silent. */
  logger?: Logger;
  /** Commands running at once over all hosts. Default 16. */
  maxConcurrentCommands?: number;
  /** Commands running at once on one host (sshd allows 10 sessions per connection). Default 4. */
  maxConcurrentCommandsPerHost?: number;
  /** TCP connect + SSH handshake + authentication. Default 10 s. */
  connectTimeoutMs?: number;
  /** Default per-command timeout (RunOptions.timeoutMs overrides it). Default 60 s. */
  commandTimeoutMs?: number;
  /** SSH keepalive: a dead peer is noticed after interval × (countMax + 1). Default 5 s × 3. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Spacing of reconnect attempts after failures. Default 0.5 s doubling to 30 s, with jitter. */
  backoff?: BackoffPolicy;
  /** New connections per second over all hosts, with a burst (client-side). Default: unlimited (the CLI); the controller sets one. */
  connectRate?: RateLimit;
}

export interface SshSessionOptions {
  /** TrustOnFirstUse: the key pinned earlier; any other key is refused. spec.hostKey, if set, wins. */
  pinnedHostKey?: string;
  /** TrustOnFirstUse: where pins are kept, named in the changed-key message. Default "status.observedHostKey". */
  pinnedHostKeyStore?: string;
  /** TrustOnFirstUse: called when a key is accepted for the first time, to record and pin it. */
  onHostKeyPinned?: (keyLine: string, fingerprint: string) => void | Promise<void>;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

/**
 * The key a session accepts, and where it is kept. spec.hostKey wins over a TrustOnFirstUse pin,
 * so that after a reinstall the new key, verified out of band, can be set in the spec.
 */
export function hostKeyToExpect(
  spec: Pick<DDIHost["spec"], "hostKey">,
  opts: Pick<SshSessionOptions, "pinnedHostKey" | "pinnedHostKeyStore">,
): { expectedHostKey?: string; hostKeyPinnedIn: string } {
  if (spec.hostKey) return { expectedHostKey: spec.hostKey, hostKeyPinnedIn: "spec.hostKey" };
  const hostKeyPinnedIn = opts.pinnedHostKeyStore ?? "status.observedHostKey";
  return opts.pinnedHostKey ? { expectedHostKey: opts.pinnedHostKey, hostKeyPinnedIn } : { hostKeyPinnedIn };
}

export class SshTransport {
  private readonly pool = new Map<string, { identity: string; session: SshHostSession }>();
  /** Channels opened per host (`namespace/name`), kept across reconnects and replaced sessions. */
  private readonly channelCounts = new Map<string, ChannelCounts>();
  private readonly overall: Semaphore;
  private readonly connectGate: RateGate;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly options: SshTransportOptions = {}) {
    this.overall = new Semaphore(options.maxConcurrentCommands ?? 16);
    this.connectGate = rateGate(options.connectRate);
    this.log = (options.logger ?? pino({ level: "silent", redact: [...LOG_REDACT_PATHS] })).child({ component: "ssh" });
  }

  /** Hosts with a pooled session. */
  get size(): number {
    return this.pool.size;
  }

  /**
   * The pooled session of `host`, connected (so an unreachable host, a refused key or a changed
   * host key is reported here). A changed address, user, sudo, host key setting or credential
   * replaces the pooled session; the same ones return it as is.
   */
  async session(host: DDIHost, credentials: SshCredentials, opts: SshSessionOptions = {}): Promise<SshHostSession> {
    if (this.closed) throw new Error("SshTransport is closed");
    const { spec, metadata } = host;
    const key = metadata.namespace ? `${metadata.namespace}/${metadata.name}` : metadata.name;
    if (spec.hostKeyPolicy === "Pinned" && !spec.hostKey) {
      throw new Error(`DDIHost ${key}: hostKeyPolicy Pinned needs spec.hostKey`);
    }
    const { expectedHostKey, hostKeyPinnedIn } = hostKeyToExpect(spec, opts);
    const target: SessionTarget = {
      host: key,
      name: metadata.name,
      address: spec.address,
      port: spec.port,
      user: spec.user,
      sudo: spec.sudo,
      hostKeyPolicy: spec.hostKeyPolicy,
      ...(expectedHostKey ? { expectedHostKey } : {}),
      hostKeyPinnedIn,
    };
    // Credentials enter the identity only as a hash; the pool never keeps them in a key.
    const identity = createHash("sha256")
      .update(JSON.stringify([target, credentials.privateKey, credentials.passphrase ?? null]))
      .digest("hex");
    const tunables = {
      connectTimeoutMs: opts.connectTimeoutMs ?? this.options.connectTimeoutMs ?? 10_000,
      commandTimeoutMs: opts.commandTimeoutMs ?? this.options.commandTimeoutMs ?? 60_000,
      keepaliveIntervalMs: this.options.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: this.options.keepaliveCountMax ?? 3,
      backoff: this.options.backoff ?? DEFAULT_BACKOFF,
      connectGate: this.connectGate,
      ...(opts.onHostKeyPinned ? { onHostKeyPinned: opts.onHostKeyPinned } : {}),
    };
    let entry = this.pool.get(key);
    if (entry && (entry.identity !== identity || entry.session.isClosed)) {
      this.pool.delete(key);
      await entry.session.close();
      entry = undefined;
    }
    if (!entry) {
      const perHost = new Semaphore(this.options.maxConcurrentCommandsPerHost ?? 4);
      let counts = this.channelCounts.get(key);
      if (!counts) this.channelCounts.set(key, (counts = newChannelCounts()));
      entry = { identity, session: new SshHostSession(target, credentials, tunables, perHost, this.overall, this.log, counts) };
      this.pool.set(key, entry);
    } else {
      entry.session.tunables = tunables;
    }
    await entry.session.connect();
    return entry.session;
  }

  /**
   * The SSH channels opened so far on each host (`namespace/name`), by kind: what a no-op resync
   * costs a host. A copy; counting continues.
   */
  channelsOpened(): Map<string, ChannelCounts> {
    return new Map([...this.channelCounts].map(([host, c]) => [host, { ...c }]));
  }

  /** Closes and forgets one host's session (e.g. when its DDIHost is deleted). */
  async release(host: DDIHost): Promise<void> {
    const key = host.metadata.namespace ? `${host.metadata.namespace}/${host.metadata.name}` : host.metadata.name;
    const entry = this.pool.get(key);
    this.pool.delete(key);
    await entry?.session.close();
  }

  /** Closes every session, stream and forward; nothing of the transport keeps node alive after. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const sessions = [...this.pool.values()].map((e) => e.session);
    this.pool.clear();
    await Promise.all(sessions.map((s) => s.close()));
  }
}
