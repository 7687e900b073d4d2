// SSH host keys as OpenSSH writes them: "type base64-blob [comment]". Two keys are the same key
// when their blobs are equal; the comment and the line's whitespace never matter.
import { createHash } from "node:crypto";

export interface HostKey {
  /** Key type as named inside the blob, e.g. "ssh-ed25519". */
  type: string;
  /** The wire-format public key (RFC 4253 §6.6), what the server sends during key exchange. */
  blob: Buffer;
}

/** Reads the first SSH string of a key blob: the key type. */
function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  const type = blob.subarray(4, 4 + len).toString("latin1");
  return /^[a-z0-9@.-]+$/.test(type) ? type : undefined;
}

/** Parses a key line (`ssh-ed25519 AAAA… comment`) or a raw blob; throws on anything else. */
export function parseHostKey(key: string | Buffer): HostKey {
  if (Buffer.isBuffer(key)) {
    const type = blobType(key);
    if (!type) throw new Error("not an SSH public key blob");
    return { type, blob: Buffer.from(key) };
  }
  const [lineType, b64] = key.trim().split(/\s+/);
  // The message never quotes the input: a private key pasted by mistake must not reach a log.
  if (!lineType || !b64 || !/^[a-z0-9@.-]{1,64}$/.test(lineType) || !/^[A-Za-z0-9+/]+={0,3}$/.test(b64)) {
    throw new Error('not an OpenSSH public key line ("type base64 [comment]", e.g. "ssh-ed25519 AAAA...")');
  }
  const blob = Buffer.from(b64, "base64");
  const type = blobType(blob);
  if (type !== lineType) {
    throw new Error(`public key line says ${lineType} but its key data is ${type ?? "not a key"}`);
  }
  return { type, blob };
}

/** `SHA256:<base64 without padding>` of the key blob, as `ssh-keygen -lf` and OpenSSH print it. */
export function fingerprintOf(key: string | Buffer | HostKey): string {
  const { blob } = isHostKey(key) ? key : parseHostKey(key);
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The canonical key line without a comment: what the operator records and pins. */
export function keyLineOf(key: string | Buffer | HostKey): string {
  const k = isHostKey(key) ? key : parseHostKey(key);
  return `${k.type} ${k.blob.toString("base64")}`;
}

export function sameHostKey(a: string | Buffer | HostKey, b: string | Buffer | HostKey): boolean {
  const ka = isHostKey(a) ? a : parseHostKey(a);
  const kb = isHostKey(b) ? b : parseHostKey(b);
  return ka.blob.equals(kb.blob);
}

/**
 * The host key algorithms to offer when we expect a key of `type`. A server with several host
 * keys presents the one of the first algorithm both sides offer; offering only the pinned key's
 * algorithm(s) makes it present that key, as OpenSSH does for a host already in known_hosts.
 */
export function hostKeyAlgorithmsFor(type: string): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [type];
}

function isHostKey(k: unknown): k is HostKey {
  return typeof k === "object" && k !== null && !Buffer.isBuffer(k) && "blob" in k;
}
