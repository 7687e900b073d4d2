// The SSH transport: HostSession over one pooled connection per DDIHost. No daemon knowledge.
export { SshTransport, LOG_REDACT_PATHS, type SshTransportOptions, type SshSessionOptions } from "./transport.js";
export { SshHostSession, type SshCredentials, type HostKeyPolicy, type ChannelCounts } from "./session.js";
export {
  SshError,
  HostKeyMismatchError,
  HostUnreachableError,
  SshAuthenticationError,
  SudoError,
  CommandTimeoutError,
  ConnectionLostError,
  SessionClosedError,
  type HostRef,
} from "./errors.js";
export { fingerprintOf, keyLineOf, parseHostKey, sameHostKey, type HostKey } from "./host-key.js";
export { Semaphore, type Release } from "./semaphore.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from "./backoff.js";
