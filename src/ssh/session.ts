// One pooled SSH connection to one DDIHost, behind the HostSession interface. It connects lazily
// again after a drop (spaced by backoff), verifies the host key on every connect, bounds the
// commands it runs at once, and never re-runs a command that may have started.
import { Socket, createServer, type Server } from "node:net";
import { constants as osConstants } from "node:os";
import { NodeSSH, type SSHExecCommandOptions } from "node-ssh";
import type { Logger } from "pino";
import type { CommandResult, RunOptions } from "../exec/runner.js";
import { shellJoin } from "../exec/runner.js";
import type { CommandStream, HostSession, PortForward } from "../exec/host-io.js";
import { type BackoffPolicy, backoffDelay } from "./backoff.js";
import {
  CommandTimeoutError,
  ConnectionLostError,
  HostKeyMismatchError,
  type HostRef,
  HostUnreachableError,
  SessionClosedError,
  SshAuthenticationError,
  SshError,
  SudoError,
} from "./errors.js";
import { type HostKey, fingerprintOf, hostKeyAlgorithmsFor, keyLineOf, parseHostKey } from "./host-key.js";
import { LineSplitter } from "./line-splitter.js";
import {
  PidLineReader,
  isMissingFile,
  killArgv,
  normalizeSudoResult,
  readFileArgv,
  remoteCommandLine,
  sudoRefusal,
  writeFileArgv,
} from "./remote-command.js";
import type { RateGate } from "../exec/rate-limit.js";
import type { Semaphore } from "./semaphore.js";

type Client = NonNullable<NodeSSH["connection"]>;
type ConnectConfig = Parameters<NodeSSH["connect"]>[0];
type ClientChannel = Parameters<NonNullable<SSHExecCommandOptions["onChannel"]>>[0];

export interface SshCredentials {
  /** OpenSSH or PEM private key text. */
  privateKey: string;
  passphrase?: string;
}

export type HostKeyPolicy = "Pinned" | "TrustOnFirstUse";

/** Everything a session needs to know about its host; built by SshTransport from a DDIHost. */
export interface SessionTarget extends HostRef {
  /** DDIHost metadata.name. */
  name: string;
  sudo: boolean;
  hostKeyPolicy: HostKeyPolicy;
  /** The key to accept: spec.hostKey, else (TrustOnFirstUse) the key pinned earlier. */
  expectedHostKey?: string;
  /** Where the accepted key is kept, for the changed-key message: "spec.hostKey" or the TrustOnFirstUse pin store. */
  hostKeyPinnedIn: string;
}

/**
 * SSH channels opened on one host, by what they carried: `exec` for commands (run, readFile,
 * writeFile, the kill of a stopped command), `stream` for long-lived commands, `forward` for port
 * forwards. The transport keeps one per host across reconnects, so the count a test or a
 * benchmark reads is what the host's sshd saw.
 */
export interface ChannelCounts {
  exec: number;
  stream: number;
  forward: number;
}

export const newChannelCounts = (): ChannelCounts => ({ exec: 0, stream: 0, forward: 0 });

export interface SessionTunables {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  backoff: BackoffPolicy;
  /** Called once when TrustOnFirstUse accepted a key for the first time: record and pin it. */
  onHostKeyPinned?: (keyLine: string, fingerprint: string) => void | Promise<void>;
  /** Waited on before every new connection (reconnects too): the transport's client-side rate limit. */
  connectGate?: RateGate;
}

/** The channel never opened, so the command certainly did not start: safe to send again. */
class ChannelNotOpenedError extends Error {}

/** Exit code of a command killed by a signal, as a shell reports it (128 + signal number). */
function signalExitCode(signal: string | undefined): number {
  const num = signal ? (osConstants.signals as Record<string, number>)[`SIG${signal}`] : undefined;
  return 128 + (num ?? 0);
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * Sends a signal request (RFC 4254 §6.9) on a session channel. ssh2's public Channel.signal()
 * silently does nothing once our side sent EOF, which every command has (stdin is ended so that
 * a command reading stdin does not hang); the protocol allows the request after EOF and OpenSSH
 * honours it, so the request is sent through ssh2's protocol object. The integration test
 * "a command that outlives its timeout is reported and killed on the host" guards this.
 */
function sendSignal(ch: ClientChannel, signal: "TERM" | "KILL"): void {
  const internal = ch as unknown as {
    outgoing?: { id?: number; state?: string };
    _client?: { _protocol?: { signal?: (id: number, sig: string) => void } };
  };
  try {
    const protocol = internal._client?._protocol;
    const id = internal.outgoing?.id;
    const state = internal.outgoing?.state;
    if (typeof protocol?.signal === "function" && typeof id === "number" && (state === "open" || state === "eof")) {
      protocol.signal(id, signal);
    } else {
      ch.signal(signal);
    }
  } catch {
    /* the channel or the connection is already gone */
  }
}

export class SshHostSession implements HostSession {
  readonly hostName: string;
  readonly hostRef: HostRef;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private failures = 0;
  private nextAttemptAt = 0;
  private lastError: Error | undefined;
  private closed = false;
  private pinnedKey: HostKey | undefined;
  private seenKeyLine: string | undefined;
  private readonly streams = new Set<{ stop(): Promise<void> }>();
  private readonly forwards = new Set<PortForward>();
  private readonly log: Logger;

  constructor(
    readonly target: SessionTarget,
    private readonly credentials: SshCredentials,
    public tunables: SessionTunables,
    private readonly perHost: Semaphore,
    private readonly overall: Semaphore,
    logger: Logger,
    /** Where this session counts the channels it opens (shared with the transport). */
    readonly channels: ChannelCounts = newChannelCounts(),
  ) {
    this.hostName = target.name;
    this.hostRef = { host: target.host, address: target.address, port: target.port, user: target.user };
    this.pinnedKey = target.expectedHostKey ? parseHostKey(target.expectedHostKey) : undefined;
    this.log = logger.child({ host: target.host, address: `${target.address}:${target.port}` });
  }

  /** The host key line (no comment) presented on the latest successful connect. */
  get observedHostKey(): string | undefined {
    return this.seenKeyLine;
  }

  /** SHA256 fingerprint of observedHostKey, for status.hostKeyFingerprint. */
  get hostKeyFingerprint(): string | undefined {
    return this.seenKeyLine ? fingerprintOf(this.seenKeyLine) : undefined;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- connection -------------------------------------------------------------------------

  /** Connects now if not connected; throws the classified connect error. */
  async connect(): Promise<void> {
    await this.ensureConnected();
  }

  private ensureConnected(): Promise<Client> {
    if (this.closed) return Promise.reject(new SessionClosedError(this.hostRef));
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const wait = this.nextAttemptAt - Date.now();
    if (this.lastError && wait > 0) return Promise.reject(this.failFastError(this.lastError, wait));
    this.connecting = (async () => {
      try {
        await this.tunables.connectGate?.();
        const client = await this.connectOnce();
        if (this.closed) {
          client.end();
          throw new SessionClosedError(this.hostRef);
        }
        if (this.failures > 0) this.log.info({ failures: this.failures }, "reconnected");
        this.failures = 0;
        this.lastError = undefined;
        this.client = client;
        return client;
      } catch (err) {
        this.failures++;
        const delay = backoffDelay(this.failures, this.tunables.backoff);
        this.nextAttemptAt = Date.now() + delay;
        this.lastError = err as Error;
        this.log.warn({ err: describeError(err), failures: this.failures, retryInMs: delay }, "connect failed");
        throw err;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  /** During backoff: the last error again, saying when the next attempt will be made. */
  private failFastError(last: Error, waitMs: number): Error {
    if (last instanceof HostUnreachableError) return new HostUnreachableError(this.hostRef, last.reason, { cause: last.cause, retryInMs: waitMs });
    return last;
  }

  private async connectOnce(): Promise<Client> {
    const { target, tunables } = this;
    const expected = this.pinnedKey;
    let seen: HostKey | undefined;
    let mismatch: HostKeyMismatchError | undefined;
    // Our own socket, for TCP_NODELAY: without it Nagle's algorithm holds the small packets of
    // each exec exchange and a trivial command takes ~45 ms instead of ~10 ms (measured in the lab).
    const sock = new Socket();
    sock.setNoDelay(true);
    sock.connect(target.port, target.address);
    const config: ConnectConfig = {
      sock,
      host: target.address,
      port: target.port,
      username: target.user,
      privateKey: this.credentials.privateKey,
      ...(this.credentials.passphrase !== undefined ? { passphrase: this.credentials.passphrase } : {}),
      readyTimeout: tunables.connectTimeoutMs,
      keepaliveInterval: tunables.keepaliveIntervalMs,
      keepaliveCountMax: tunables.keepaliveCountMax,
      // Agent and keyboard-interactive are never used: the operator has exactly one key.
      tryKeyboard: false,
      ...(expected ? { algorithms: { serverHostKey: hostKeyAlgorithmsFor(expected.type) as never } } : {}),
      // Called during every key exchange (also re-keys); the server has proven it holds the
      // private half by the time the connection is ready.
      hostVerifier: (blob: Buffer): boolean => {
        let key: HostKey;
        try {
          key = parseHostKey(blob);
        } catch {
          return false;
        }
        const want = expected ?? seen;
        if (want && !want.blob.equals(key.blob)) {
          mismatch = new HostKeyMismatchError(this.hostRef, fingerprintOf(want), fingerprintOf(key), keyLineOf(key), target.hostKeyPinnedIn);
          return false;
        }
        seen = key;
        return true;
      },
    };
    const ssh = new NodeSSH();
    const started = Date.now();
    try {
      await ssh.connect(config);
    } catch (err) {
      ssh.connection?.end();
      sock.destroy();
      if (!mismatch && expected && /no matching host key format/i.test(describeError(err))) {
        // We offered only the pinned key's type and the host has none: a reinstalled host with a
        // new key type is a changed key. Fetch that key to report it like any other mismatch.
        const other = await this.probeHostKey();
        if (other) mismatch = new HostKeyMismatchError(this.hostRef, fingerprintOf(expected), fingerprintOf(other), keyLineOf(other), target.hostKeyPinnedIn);
      }
      throw this.classifyConnectError(err, mismatch);
    }
    const client = ssh.connection!;
    // node-ssh drops its error listener once ready; without ours a reset would crash the process.
    client.on("error", (err: Error) => this.log.warn({ err: describeError(err) }, "connection error"));
    client.on("close", () => {
      if (this.client === client) {
        this.client = undefined;
        if (!this.closed) this.log.info("connection closed; the next command reconnects");
      }
    });
    this.seenKeyLine = seen ? keyLineOf(seen) : undefined;
    this.log.debug({ ms: Date.now() - started, hostKey: this.hostKeyFingerprint }, "connected");
    if (!expected && seen && target.hostKeyPolicy === "TrustOnFirstUse") {
      // From now on this process refuses any other key, whether or not the caller records it.
      this.pinnedKey = seen;
      const line = keyLineOf(seen);
      const fp = fingerprintOf(seen);
      this.log.info({ hostKey: fp }, "host key trusted on first use");
      try {
        await tunables.onHostKeyPinned?.(line, fp);
      } catch (err) {
        this.log.error({ err: describeError(err) }, "onHostKeyPinned failed");
      }
    }
    return client;
  }

  /** The host key the host presents by default (refused before authentication), or undefined. */
  private async probeHostKey(): Promise<HostKey | undefined> {
    let seen: HostKey | undefined;
    const sock = new Socket();
    sock.connect(this.target.port, this.target.address);
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        sock,
        host: this.target.address,
        port: this.target.port,
        username: this.target.user,
        readyTimeout: this.tunables.connectTimeoutMs,
        hostVerifier: (blob: Buffer): boolean => {
          try {
            seen = parseHostKey(blob);
          } catch {
            /* not a key we can report */
          }
          return false;
        },
      });
    } catch {
      /* refused by our verifier, as intended */
    } finally {
      ssh.connection?.end();
      sock.destroy();
    }
    return seen;
  }

  private classifyConnectError(err: unknown, mismatch: HostKeyMismatchError | undefined): Error {
    if (mismatch) return mismatch;
    const e = err as Error & { level?: string; code?: string };
    const msg = describeError(err);
    if (e.level === "client-authentication") {
      return new SshAuthenticationError(this.hostRef, `the host refused the private key for user ${this.target.user} (${msg})`, { cause: err });
    }
    if (/privateKey|passphrase|private key/i.test(e.message ?? "")) {
      return new SshAuthenticationError(this.hostRef, `the private key cannot be used: ${msg}`, { cause: err });
    }
    const expected = this.pinnedKey;
    if (expected && /no matching host key format/i.test(msg)) {
      // We offer only the pinned key's algorithm; a host without such a key has been rekeyed.
      return new HostUnreachableError(
        this.hostRef,
        `the host offers no ${expected.type} host key, the type of the pinned key ${fingerprintOf(expected)}; if it was reinstalled, pin its new key (${msg})`,
        { cause: err },
      );
    }
    if (e.level === "client-timeout") {
      return new HostUnreachableError(this.hostRef, `no SSH handshake within ${this.tunables.connectTimeoutMs} ms (${msg})`, { cause: err });
    }
    return new HostUnreachableError(this.hostRef, msg, { cause: err });
  }

  // ---- commands ---------------------------------------------------------------------------

  async run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const display = shellJoin(argv);
    const line = remoteCommandLine(argv, this.target.sudo);
    const timeoutMs = options.timeoutMs ?? this.tunables.commandTimeoutMs;
    // Per host first: a host's queued commands must not sit on global slots others could use.
    return this.perHost.use(() =>
      this.overall.use(async () => {
        const result = await this.execWithReconnect(line, display, options.stdin, timeoutMs);
        if (!this.target.sudo) return result;
        const refusal = sudoRefusal(result);
        if (refusal) throw new SudoError(this.hostRef, display, refusal);
        return normalizeSudoResult(result);
      }),
    );
  }

  async readFile(path: string): Promise<string | undefined> {
    const r = await this.run(readFileArgv(path));
    if (r.code === 0) return r.stdout;
    if (isMissingFile(r)) return undefined;
    throw new SshError(`cannot read ${path} on ${this.target.host}: ${r.stderr.trim() || `cat exited ${r.code}`}`, this.hostRef);
  }

  async writeFile(path: string, content: string, mode: number): Promise<void> {
    const r = await this.run(writeFileArgv(path, mode), { stdin: content });
    if (r.code !== 0) {
      throw new SshError(`cannot write ${path} on ${this.target.host}: ${r.stderr.trim() || `exit ${r.code}`}`, this.hostRef);
    }
  }

  private async execWithReconnect(line: string, display: string, stdin: string | undefined, timeoutMs: number): Promise<CommandResult> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.ensureConnected();
      try {
        return await this.execOn(client, line, display, stdin, timeoutMs);
      } catch (err) {
        if (!(err instanceof ChannelNotOpenedError)) throw err;
        this.discard(client);
        if (attempt > 0) throw new ConnectionLostError(this.hostRef, display, { cause: err });
        this.log.info({ command: display, err: err.message }, "connection was dead; reconnecting once");
      }
    }
  }

  /**
   * Ends a running command: SIGTERM now (a signal request, which OpenSSH honours for non-root
   * users, plus `kill PID` over a new channel, which also works for root), and if the channel has
   * not closed 5 s later, SIGKILL and our channel close. Through sudo only a catchable signal
   * reaches the command (sudo relays it), hence TERM first.
   */
  private terminate(client: Client, ch: ClientChannel, pids: PidLineReader | undefined, display: string): void {
    let closed = false;
    ch.once("close", () => (closed = true));
    const signal = (sig: "TERM" | "KILL") => {
      sendSignal(ch, sig);
      // The PID line may still be on its way when a command is stopped right after it started.
      void (pids?.pidLine ?? Promise.resolve(undefined)).then((pid) => {
        if (pid === undefined || closed || this.client !== client) return;
        try {
          this.channels.exec++;
          client.exec(shellJoin(killArgv(pid, sig)), (err, kch) => {
            if (err) return this.log.warn({ command: display, err: err.message }, `cannot send SIG${sig}`);
            kch.on("data", () => undefined);
            kch.stderr.on("data", () => undefined);
            kch.on("error", () => undefined);
            kch.end();
          });
        } catch (err) {
          this.log.warn({ command: display, err: describeError(err) }, `cannot send SIG${sig}`);
        }
      });
    };
    signal("TERM");
    const timer = setTimeout(() => {
      if (closed) return;
      signal("KILL");
      try {
        ch.close();
      } catch {
        /* already gone */
      }
    }, 5_000);
    timer.unref();
  }

  /** Forgets a connection found dead so that the next call connects anew. */
  private discard(client: Client): void {
    if (this.client === client) this.client = undefined;
    client.destroy();
  }

  /**
   * Opens a session channel for `line` and runs `setup` on it synchronously: one socket read can
   * carry the exec reply, the output, the exit status and the close together, and a listener
   * attached a microtask later would miss them. Rejects with ChannelNotOpenedError when the
   * connection is gone.
   */
  private openChannel(client: Client, line: string, display: string, setup: (ch: ClientChannel) => void, kind: "exec" | "stream" = "exec"): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      try {
        this.channels[kind]++;
        client.exec(line, (err, ch) => {
          if (!err) {
            setup(ch);
            return resolve(ch);
          }
          // ssh2 reports a dead connection as "No response from server" after our close handler ran.
          if (this.client !== client || /No response from server|Not connected/.test(err.message)) {
            reject(new ChannelNotOpenedError(err.message));
          } else {
            reject(new SshError(`cannot start "${display}" on ${this.target.host}: ${err.message}`, this.hostRef, { cause: err }));
          }
        });
      } catch (err) {
        reject(new ChannelNotOpenedError(describeError(err)));
      }
    });
  }

  private execOn(client: Client, line: string, display: string, stdin: string | undefined, timeoutMs: number): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let channel: ClientChannel | undefined;
      const pidReader = new PidLineReader();
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const timer = setTimeout(() => {
        settle(() => reject(new CommandTimeoutError(this.hostRef, display, timeoutMs)));
        this.log.warn({ command: display, timeoutMs }, "command timed out");
        if (channel) this.terminate(client, channel, pidReader, display);
      }, timeoutMs);
      const setup = (ch: ClientChannel) => {
        channel = ch;
        if (settled) {
          // Timed out while the channel was opening: the command may start now; end it.
          ch.on("data", (d: Buffer) => pidReader.push(d));
          ch.on("close", () => pidReader.end());
          return this.terminate(client, ch, pidReader, display);
        }
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let exit: { code: number } | undefined;
        ch.on("data", (d: Buffer) => out.push(pidReader.push(d)));
        ch.stderr.on("data", (d: Buffer) => err.push(d));
        ch.on("exit", (code: number | null, signal?: string) => {
          exit = { code: code ?? signalExitCode(signal?.replace(/^SIG/, "")) };
        });
        ch.on("error", () => undefined);
        ch.on("close", () =>
          settle(() => {
            pidReader.end();
            if (!exit) return reject(new ConnectionLostError(this.hostRef, display));
            resolve({ code: exit.code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
          }),
        );
        ch.end(stdin ?? "");
      };
      this.openChannel(client, line, display, setup).catch((e: unknown) => settle(() => reject(e)));
    });
  }

  // ---- streams and forwards -----------------------------------------------------------------

  async stream(argv: readonly string[], onLine: (line: string) => void): Promise<CommandStream> {
    const display = shellJoin(argv);
    const line = remoteCommandLine(argv, this.target.sudo);
    const lines = new LineSplitter((l) => {
      try {
        onLine(l);
      } catch (err) {
        this.log.error({ command: display, err: describeError(err) }, "stream line handler threw");
      }
    });
    const stderr: Buffer[] = [];
    let exit: number | undefined;
    let stopping = false;
    let resolveDone!: (r: CommandResult) => void;
    const done = new Promise<CommandResult>((r) => (resolveDone = r));
    const handle = { stop: async () => undefined as void };
    const pidReader = new PidLineReader();
    const setup = (channel: ClientChannel) => {
      channel.on("data", (d: Buffer) => lines.push(pidReader.push(d)));
      channel.stderr.on("data", (d: Buffer) => stderr.push(d));
      channel.on("exit", (code: number | null, signal?: string) => {
        exit = code ?? signalExitCode(signal?.replace(/^SIG/, ""));
      });
      channel.on("error", () => undefined);
      channel.on("close", () => {
        pidReader.end();
        lines.end();
        this.streams.delete(handle);
        let err = Buffer.concat(stderr).toString("utf8");
        // 255 is what OpenSSH's client reports for a connection it lost; 143 = 128 + SIGTERM.
        let code = exit ?? (stopping ? 143 : 255);
        if (exit === undefined && !stopping) err += `${err ? "\n" : ""}connection to ${this.target.host} lost while streaming "${display}"`;
        if (this.target.sudo) {
          const refusal = sudoRefusal({ code, stderr: err });
          if (refusal) this.log.error({ command: display, sudo: refusal }, "sudo refused a stream");
          ({ code, stderr: err } = normalizeSudoResult({ code, stderr: err }));
        }
        resolveDone({ code, stdout: "", stderr: err });
      });
      channel.end();
    };
    let ch: ClientChannel | undefined;
    let client!: Client;
    for (let attempt = 0; !ch; attempt++) {
      client = await this.ensureConnected();
      try {
        ch = await this.openChannel(client, line, display, setup, "stream");
      } catch (err) {
        if (!(err instanceof ChannelNotOpenedError) || attempt > 0) throw err;
        this.discard(client);
      }
    }
    const channel = ch;
    // Return once the command runs (its PID line came), so a caller can act right after, e.g.
    // change an address and expect the monitor to see it.
    let startTimer: NodeJS.Timeout | undefined;
    const started = await Promise.race([
      pidReader.pidLine.then(() => true),
      new Promise<false>((r) => (startTimer = setTimeout(() => r(false), this.tunables.commandTimeoutMs))),
    ]);
    clearTimeout(startTimer);
    if (!started) {
      this.terminate(client, channel, pidReader, display);
      throw new CommandTimeoutError(this.hostRef, display, this.tunables.commandTimeoutMs);
    }
    handle.stop = async () => {
      stopping = true;
      this.terminate(client, channel, pidReader, display);
      // terminate() escalates to SIGKILL after 5 s; past that, stop() returns and done follows
      // whenever the connection ends.
      await Promise.race([done, new Promise((r) => setTimeout(r, 8_000).unref())]);
    };
    this.streams.add(handle);
    return { stop: () => handle.stop(), done };
  }

  async forward(remoteHost: string, remotePort: number): Promise<PortForward> {
    if (!Number.isInteger(remotePort) || remotePort < 1 || remotePort > 65535) throw new RangeError(`bad port ${remotePort}`);
    await this.ensureConnected(); // fail now, not on the first local connection
    const sockets = new Set<Socket>();
    const log = this.log.child({ forward: `${remoteHost}:${remotePort}` });
    const server: Server = createServer((sock) => {
      sockets.add(sock);
      sock.on("close", () => sockets.delete(sock));
      sock.on("error", () => undefined);
      this.ensureConnected()
        .then(
          (client) =>
            new Promise<void>((resolve, reject) => {
              this.channels.forward++;
              client.forwardOut("127.0.0.1", sock.remotePort ?? 0, remoteHost, remotePort, (err, ch) => {
                if (err) return reject(err);
                if (sock.destroyed) {
                  ch.close();
                  return resolve();
                }
                ch.on("error", () => sock.destroy());
                ch.on("close", () => sock.destroy());
                sock.on("close", () => ch.close());
                sock.pipe(ch).pipe(sock);
                resolve();
              });
            }),
        )
        .catch((err: unknown) => {
          log.warn({ err: describeError(err) }, "forwarded connection failed");
          sock.destroy();
        });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("forward: no local port");
    const fwd: PortForward = {
      localPort: address.port,
      close: () =>
        new Promise<void>((resolve) => {
          this.forwards.delete(fwd);
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    };
    this.forwards.add(fwd);
    log.debug({ localPort: fwd.localPort }, "forward listening");
    return fwd;
  }

  // ---- shutdown -----------------------------------------------------------------------------

  /** Stops streams and forwards and ends the connection. Later calls throw SessionClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.streams].map((s) => s.stop().catch(() => undefined)));
    await Promise.all([...this.forwards].map((f) => f.close()));
    const pending = this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    if (client) await endClient(client);
    await pending;
    this.log.debug("session closed");
  }
}

/** Ends a connection and waits until its socket closed (at most 2 s, then destroys it). */
function endClient(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, 2000);
    client.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    client.end();
  });
}
