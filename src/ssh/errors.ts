// Errors of the SSH transport. Each message names the host and says what to do about it; none
// carries a credential.

export interface HostRef {
  /** DDIHost namespace/name (or name). */
  host: string;
  address: string;
  port: number;
  user: string;
}

function where(h: HostRef): string {
  return `${h.host} (${h.user}@${h.address}:${h.port})`;
}

export class SshError extends Error {
  constructor(
    message: string,
    readonly hostRef: HostRef,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The host presented a key other than the one pinned. Never retried transparently. */
export class HostKeyMismatchError extends SshError {
  constructor(
    hostRef: HostRef,
    readonly expectedFingerprint: string,
    readonly seenFingerprint: string,
    readonly seenKeyLine: string,
    /** Where the expected key is kept: "spec.hostKey", or a TrustOnFirstUse pin store (status.observedHostKey, a known-hosts file). */
    readonly pinnedIn: string,
  ) {
    super(
      `host key of ${where(hostRef)} has changed: expected ${expectedFingerprint}, the host presented ${seenFingerprint}. Connection refused. ` +
        `If the host was reinstalled, verify its new key out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and ` +
        (pinnedIn === "spec.hostKey"
          ? "put it in spec.hostKey."
          : `set spec.hostKey to it: the expected key was pinned on first use in ${pinnedIn}, and spec.hostKey takes precedence over that pin.`),
      hostRef,
    );
  }
}

/** TCP connect or the SSH handshake did not succeed within the connect timeout. */
export class HostUnreachableError extends SshError {
  constructor(hostRef: HostRef, readonly reason: string, options?: { cause?: unknown; retryInMs?: number }) {
    super(
      `cannot reach ${where(hostRef)}: ${reason}` +
        (options?.retryInMs ? ` (next connection attempt in ${(options.retryInMs / 1000).toFixed(1)} s)` : ""),
      hostRef,
      options,
    );
  }
}

/** The host refused our key, or the key could not be used (wrong passphrase, bad format). */
export class SshAuthenticationError extends SshError {
  constructor(hostRef: HostRef, reason: string, options?: { cause?: unknown; retryInMs?: number }) {
    super(
      `SSH authentication to ${where(hostRef)} failed: ${reason}` +
        (options?.retryInMs ? ` (next connection attempt in ${(options.retryInMs / 1000).toFixed(1)} s)` : ""),
      hostRef,
      options,
    );
  }
}

/** sudo refused to run a command (no passwordless right, or sudo missing). */
/**
 * How to grant what sudo refused: the one command when sudo named its path ("Sorry, user ddi is
 * not allowed to execute '/usr/bin/chown 0:0 /etc/x' as root on h2."), and always the blanket rule.
 */
export function sudoGrantHint(user: string, sudoMessage: string): string {
  const path = /not allowed to execute '(\/[^' ]+)/.exec(sudoMessage)?.[1];
  const blanket = `give ${user} passwordless sudo for the operator's commands (e.g. "${user} ALL=(ALL) NOPASSWD:ALL" in /etc/sudoers.d/)`;
  if (!path) return blanket.charAt(0).toUpperCase() + blanket.slice(1);
  return `Grant ${user} that command with a line such as "${user} ALL=(root) NOPASSWD: ${path}" in /etc/sudoers.d/ (check it with visudo -c), and remove any rule that denies it; or ${blanket}`;
}

export class SudoError extends SshError {
  constructor(
    hostRef: HostRef,
    readonly command: string,
    readonly sudoMessage: string,
  ) {
    super(
      `sudo refused "${command}" for user ${hostRef.user} on ${where(hostRef)}: ${sudoMessage.replace(/\.$/, "")}. ` +
        `${sudoGrantHint(hostRef.user, sudoMessage)}, or connect as root (spec.user: root, spec.sudo: false).`,
      hostRef,
    );
  }
}

/** A command did not finish within its timeout; its channel was signalled and closed. */
export class CommandTimeoutError extends SshError {
  constructor(
    hostRef: HostRef,
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`command "${command}" on ${where(hostRef)} did not finish within ${timeoutMs} ms; it was sent SIGTERM and its channel closed`, hostRef);
  }
}

/**
 * The connection died while a command ran. The command may or may not have taken effect, so it
 * is not re-run: the caller decides (the apply engine re-reads state).
 */
export class ConnectionLostError extends SshError {
  constructor(hostRef: HostRef, readonly command: string, options?: { cause?: unknown }) {
    super(`connection to ${where(hostRef)} was lost while "${command}" ran; it may or may not have taken effect`, hostRef, options);
  }
}

/** The session was closed by its owner. */
export class SessionClosedError extends SshError {
  constructor(hostRef: HostRef) {
    super(`SSH session to ${where(hostRef)} is closed`, hostRef);
  }
}
