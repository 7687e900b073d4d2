// Why a host could not be observed, as data the status computation can turn into a reason.
import {
  CommandTimeoutError,
  ConnectionLostError,
  HostKeyMismatchError,
  HostUnreachableError,
  SshAuthenticationError,
  SudoError,
} from "../ssh/index.js";

export type HostFailureKind = "Unreachable" | "HostKeyMismatch" | "AuthenticationFailed" | "SudoRefused" | "Timeout" | "ConnectionLost" | "Error";

export interface HostFailure {
  kind: HostFailureKind;
  /** The transport's message: names the host and the fix. */
  message: string;
}

export function classifyHostFailure(err: unknown): HostFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof HostKeyMismatchError) return { kind: "HostKeyMismatch", message };
  if (err instanceof HostUnreachableError) return { kind: "Unreachable", message };
  if (err instanceof SshAuthenticationError) return { kind: "AuthenticationFailed", message };
  if (err instanceof SudoError) return { kind: "SudoRefused", message };
  if (err instanceof CommandTimeoutError) return { kind: "Timeout", message };
  if (err instanceof ConnectionLostError) return { kind: "ConnectionLost", message };
  return { kind: "Error", message };
}
