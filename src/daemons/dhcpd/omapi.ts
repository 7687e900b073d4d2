// dhcpd's OMAPI wire protocol (ISC omapip, protocol version 100), pure: encoding, decoding and
// HMAC signing of messages, reading a failover-state object out of a reply, and the whole
// conversation as a state machine fed with received bytes. No I/O; the observer
// (src/observe/omapi-client.ts) moves the bytes. See docs/adr/0010-omapi-over-ssh-forward.md.
//
// A connection starts with each side sending u32 version (100) and u32 header size (24). Then
// messages, all integers big-endian:
//   u32 authid, u32 authlen, u32 op, u32 handle, u32 tid, u32 rid,
//   message values, object values (each pair: u16 name length, name, u32 value length, value;
//   a u16 0 ends each list), then authlen bytes of signature.
// The signature is an HMAC over everything from authlen to the end of the object values
// (omapi_protocol_send_message activates the key right after writing the authid).
import { createHmac, randomInt, timingSafeEqual } from "node:crypto";
import { type OmshellFailoverState, failoverStateName } from "./observe.js";
import type { DhcpdOmapiKey, OmapiAlgorithm } from "./render.js";

export const OMAPI_PROTOCOL_VERSION = 100;
/** sizeof(omapi_protocol_header_t): the six u32 fields. A peer may announce a larger header. */
export const OMAPI_HEADER_SIZE = 24;
export const OMAPI_STARTUP_SIZE = 8;

export const OMAPI_OP = { open: 1, refresh: 2, update: 3, notify: 4, status: 5, delete: 6 } as const;
export type OmapiOpName = keyof typeof OMAPI_OP;

export function omapiOpName(op: number): string {
  return (Object.keys(OMAPI_OP) as OmapiOpName[]).find((k) => OMAPI_OP[k] === op) ?? `op ${op}`;
}

/** Name/value pairs in wire order. OMAPI values are untyped bytes; see omapiString and omapiU32. */
export type OmapiValues = ReadonlyArray<readonly [string, Buffer]>;

export interface OmapiMessage {
  /** The handle of the authenticator that signed the message; 0 when unsigned. */
  authId: number;
  op: number;
  /** The object's handle on the server. */
  handle: number;
  /** This message's transaction id. */
  tid: number;
  /** The tid of the message this one answers; 0 in a request. */
  rid: number;
  message: OmapiValues;
  object: OmapiValues;
  /** authlen bytes; empty when unsigned. */
  signature: Buffer;
}

export function omapiString(text: string): Buffer {
  return Buffer.from(text, "utf8");
}

export function omapiU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The first value named `name`, if any. */
export function omapiValue(values: OmapiValues, name: string): Buffer | undefined {
  return values.find(([n]) => n === name)?.[1];
}

// ---- startup -------------------------------------------------------------------------------

export function encodeOmapiStartup(): Buffer {
  return Buffer.concat([omapiU32(OMAPI_PROTOCOL_VERSION), omapiU32(OMAPI_HEADER_SIZE)]);
}

/** The peer's 8 startup bytes; throws on a version or header size omapip itself would refuse. */
export function decodeOmapiStartup(bytes: Buffer): { version: number; headerSize: number } {
  if (bytes.length < OMAPI_STARTUP_SIZE) throw new Error(`OMAPI startup: ${bytes.length} bytes, expected ${OMAPI_STARTUP_SIZE}`);
  const version = bytes.readUInt32BE(0);
  const headerSize = bytes.readUInt32BE(4);
  if (version !== OMAPI_PROTOCOL_VERSION) throw new Error(`OMAPI protocol version ${version}, expected ${OMAPI_PROTOCOL_VERSION} (is this port dhcpd's omapi-port?)`);
  if (headerSize < OMAPI_HEADER_SIZE || headerSize > 1024) throw new Error(`OMAPI header size ${headerSize}, expected ${OMAPI_HEADER_SIZE}`);
  return { version, headerSize };
}

// ---- signing -------------------------------------------------------------------------------

const DIGEST: Record<OmapiAlgorithm, { hash: string; length: number }> = {
  "hmac-md5": { hash: "md5", length: 16 },
  "hmac-sha256": { hash: "sha256", length: 32 },
};

/**
 * The algorithm as dhcpd stores it: dhcpd.conf's `algorithm hmac-sha256;` gets
 * ".SIG-ALG.REG.INT." appended (parse_key), and the authenticator's algorithm must match it
 * (case-insensitively, omapi_auth_key_lookup).
 */
export function omapiAlgorithmName(algorithm: OmapiAlgorithm): string {
  return `${algorithm}.SIG-ALG.REG.INT.`;
}

export function omapiSignatureLength(algorithm: OmapiAlgorithm): number {
  const d = DIGEST[algorithm];
  if (!d) throw new Error(`OMAPI key algorithm ${JSON.stringify(algorithm)} is not supported (hmac-md5, hmac-sha256)`);
  return d.length;
}

function keyBytes(key: DhcpdOmapiKey): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key.secret)) throw new Error(`OMAPI key ${key.name}: the secret must be base64`);
  return Buffer.from(key.secret, "base64");
}

/** HMAC of `data` with the key's base64-decoded secret. */
export function omapiSign(key: DhcpdOmapiKey, data: Buffer): Buffer {
  omapiSignatureLength(key.algorithm);
  return createHmac(DIGEST[key.algorithm].hash, keyBytes(key)).update(data).digest();
}

// ---- messages ------------------------------------------------------------------------------

function encodeValues(values: OmapiValues): Buffer[] {
  const parts: Buffer[] = [];
  for (const [name, value] of values) {
    const n = Buffer.from(name, "utf8");
    if (n.length === 0 || n.length > 0xffff) throw new Error(`OMAPI value name ${JSON.stringify(name)}: length ${n.length}`);
    const head = Buffer.alloc(2);
    head.writeUInt16BE(n.length);
    parts.push(head, n, omapiU32(value.length), value);
  }
  parts.push(Buffer.alloc(2));
  return parts;
}

export type OmapiRequest = Pick<OmapiMessage, "op" | "handle" | "tid" | "rid" | "message" | "object">;

/**
 * One message on the wire. With `auth` the message carries `auth.authId` and is signed with
 * `auth.key`; without it, authid and authlen are 0 (only the authenticator's own OPEN is sent so).
 */
export function encodeOmapiMessage(m: OmapiRequest, auth?: { authId: number; key: DhcpdOmapiKey }): Buffer {
  const authLen = auth ? omapiSignatureLength(auth.key.algorithm) : 0;
  const signed = Buffer.concat([
    omapiU32(authLen),
    omapiU32(m.op),
    omapiU32(m.handle),
    omapiU32(m.tid),
    omapiU32(m.rid),
    ...encodeValues(m.message),
    ...encodeValues(m.object),
  ]);
  const signature = auth ? omapiSign(auth.key, signed) : Buffer.alloc(0);
  return Buffer.concat([omapiU32(auth?.authId ?? 0), signed, signature]);
}

export interface DecodedOmapiMessage {
  message: OmapiMessage;
  /** Bytes the message took. */
  length: number;
  /** The bytes its signature covers (authlen through the end of the object values). */
  signed: Buffer;
}

/**
 * The message at the start of `bytes`, or undefined when more bytes are needed. A header larger
 * than 24 bytes (announced in the peer's startup) has its extra bytes skipped, as omapip does.
 */
export function decodeOmapiMessage(bytes: Buffer, headerSize = OMAPI_HEADER_SIZE): DecodedOmapiMessage | undefined {
  if (bytes.length < headerSize) return undefined;
  const u32 = (at: number) => bytes.readUInt32BE(at);
  const authId = u32(0);
  const authLen = u32(4);
  if (authLen > 1024) throw new Error(`OMAPI message: authenticator length ${authLen}`);
  let at = headerSize;
  const lists: [string, Buffer][][] = [[], []];
  for (const list of lists) {
    for (;;) {
      if (bytes.length < at + 2) return undefined;
      const nameLen = bytes.readUInt16BE(at);
      at += 2;
      if (nameLen === 0) break;
      if (bytes.length < at + nameLen + 4) return undefined;
      const name = bytes.toString("utf8", at, at + nameLen);
      at += nameLen;
      const valueLen = u32(at);
      at += 4;
      if (valueLen > 16 * 1024 * 1024) throw new Error(`OMAPI message: value ${JSON.stringify(name)} of ${valueLen} bytes`);
      if (bytes.length < at + valueLen) return undefined;
      list.push([name, Buffer.from(bytes.subarray(at, at + valueLen))]);
      at += valueLen;
    }
  }
  if (bytes.length < at + authLen) return undefined;
  const signed = Buffer.from(bytes.subarray(4, at));
  const signature = Buffer.from(bytes.subarray(at, at + authLen));
  return {
    message: { authId, op: u32(8), handle: u32(12), tid: u32(16), rid: u32(20), message: lists[0]!, object: lists[1]!, signature },
    length: at + authLen,
    signed,
  };
}

/**
 * Whether a reply is signed by `key`. dhcpd signs every answer to a signed request with the same
 * authenticator, so an unsigned or wrongly signed answer is refused.
 */
export function verifyOmapiMessage(decoded: DecodedOmapiMessage, key: DhcpdOmapiKey, authId: number): { ok: true } | { ok: false; error: string } {
  const m = decoded.message;
  if (m.op === OMAPI_OP.status && m.authId === 0 && m.signature.length === 0) {
    // dhcpd answers a request whose signature it cannot verify with an unsigned STATUS
    // (protocol.c: verify_result), DHCP_R_INVALIDKEY for a wrong secret.
    return { ok: false, error: `dhcpd refused the signature of our request: ${omapiStatusText(m)}; the secret of OMAPI key ${key.name} does not match omapi-key in dhcpd.conf` };
  }
  if (m.authId !== authId || m.signature.length === 0) {
    return { ok: false, error: `dhcpd's ${omapiOpName(m.op)} reply is not signed with our authenticator (authid ${m.authId}, ${m.signature.length}-byte signature; expected authid ${authId})` };
  }
  const expected = omapiSign(key, decoded.signed);
  if (expected.length !== m.signature.length || !timingSafeEqual(expected, m.signature)) {
    return { ok: false, error: `dhcpd's ${omapiOpName(m.op)} reply has a bad ${key.algorithm} signature` };
  }
  return { ok: true };
}

// ---- the requests the observer sends -------------------------------------------------------

const IDENTIFIER_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** OPEN of the authenticator object: the reply's handle is the authid of every later message. */
export function omapiAuthenticatorOpen(key: DhcpdOmapiKey, tid: number): Buffer {
  if (!IDENTIFIER_RE.test(key.name)) throw new Error(`OMAPI key name ${JSON.stringify(key.name)} is not a plain identifier`);
  keyBytes(key);
  return encodeOmapiMessage({
    op: OMAPI_OP.open,
    handle: 0,
    tid,
    rid: 0,
    message: [["type", omapiString("authenticator")]],
    object: [
      ["name", omapiString(key.name)],
      ["algorithm", omapiString(omapiAlgorithmName(key.algorithm))],
    ],
  });
}

/** OPEN of a failover-state object by peer name (omshell's `new failover-state; set name = …; open`), signed. */
export function omapiFailoverStateOpen(peerName: string, tid: number, auth: { authId: number; key: DhcpdOmapiKey }): Buffer {
  if (!IDENTIFIER_RE.test(peerName)) throw new Error(`failover peer name ${JSON.stringify(peerName)} is not a plain identifier`);
  return encodeOmapiMessage(
    { op: OMAPI_OP.open, handle: 0, tid, rid: 0, message: [["type", omapiString("failover-state")]], object: [["name", omapiString(peerName)]] },
    auth,
  );
}

/** Failover states an operator may set through OMAPI (failover.h): what maintenance uses. */
export const OMAPI_SETTABLE_STATES = { "partner-down": 4, recover: 6, shutdown: 8 } as const;
export type OmapiSettableState = keyof typeof OMAPI_SETTABLE_STATES;

/**
 * UPDATE of an opened failover-state object's local-state (omshell's `set local-state = N;
 * update`), signed. dhcpd's dhcp_failover_state_set_value passes it to dhcp_failover_set_state,
 * which records the state, tells the partner and answers with a STATUS.
 */
export function omapiFailoverStateUpdate(handle: number, state: OmapiSettableState, tid: number, auth: { authId: number; key: DhcpdOmapiKey }): Buffer {
  const code = OMAPI_SETTABLE_STATES[state];
  if (code === undefined) throw new Error(`failover state ${JSON.stringify(state)} cannot be set through OMAPI (${Object.keys(OMAPI_SETTABLE_STATES).join(", ")})`);
  if (!Number.isInteger(handle) || handle <= 0) throw new Error(`OMAPI object handle ${handle}`);
  return encodeOmapiMessage({ op: OMAPI_OP.update, handle, tid, rid: 0, message: [], object: [["local-state", omapiU32(code)]] }, auth);
}

// ---- replies -------------------------------------------------------------------------------

/** isc_result_t texts (isc/result.h) and dhcpd's own (common/result.c, result class 6 of bind's libisc). */
const ISC_RESULTS: Readonly<Record<number, string>> = {
  0: "success",
  1: "out of memory",
  2: "timed out",
  12: "connection refused",
  14: "end of file",
  23: "not found",
  25: "failure",
  27: "not implemented",
  29: "no more",
  34: "unexpected error",
  40: "not connected",
};
const DHCP_RESULT_CLASS = 6 << 16;
const DHCP_RESULTS = [
  "host unknown",
  "protocol version mismatch",
  "protocol error",
  "invalid argument",
  "data not yet available",
  "object unchanged",
  "more than one object matches key",
  "key conflict",
  "parse error(s) occurred",
  "no key specified",
  "zone TSIG key not known",
  "invalid TSIG key",
  "operation in progress",
  "DNS format error",
  "DNS server failed",
  "no such domain",
  "not implemented",
  "refused",
  "domain already exists",
  "RRset already exists",
  "no such RRset",
  "not authorized",
  "not a zone",
  "bad DNS signature",
  "bad DNS key",
  "clock skew too great",
  "no root zone",
  "destination address required",
  "cross-zone update",
  "no TSIG signature",
  "not equal",
  "connection reset by peer",
  "unknown attribute",
];

export function omapiResultText(code: number): string {
  const dhcp = code - DHCP_RESULT_CLASS;
  const text = ISC_RESULTS[code] ?? (dhcp >= 0 && dhcp < DHCP_RESULTS.length ? DHCP_RESULTS[dhcp] : undefined);
  return text ? `${text} (result ${code})` : `result ${code}`;
}

/** A STATUS message's complaint: its "message" text, else the text for its "result" code. */
export function omapiStatusText(m: OmapiMessage): string {
  const text = omapiValue(m.message, "message")?.toString("utf8");
  const result = omapiValue(m.message, "result");
  const code = result?.length === 4 ? result.readUInt32BE(0) : undefined;
  return [text, code !== undefined ? omapiResultText(code) : undefined].filter(Boolean).join(": ") || "STATUS without a result";
}

/** The handle of the opened authenticator, from the reply to omapiAuthenticatorOpen. */
export function readOmapiAuthenticatorReply(m: OmapiMessage, key: DhcpdOmapiKey): { ok: true; authId: number } | { ok: false; error: string } {
  if (m.op === OMAPI_OP.status) {
    return {
      ok: false,
      error: `dhcpd refused the OMAPI key ${key.name} (${key.algorithm}): ${omapiStatusText(m)}; check the key name, secret and algorithm against omapi-key in dhcpd.conf`,
    };
  }
  if (m.op !== OMAPI_OP.update || m.handle === 0) return { ok: false, error: `unexpected ${omapiOpName(m.op)} (handle ${m.handle}) in answer to the authenticator` };
  return { ok: true, authId: m.handle };
}

/** The same reading as omshell's (values: the object's other 4-byte values as integers). */
export type OmapiFailoverState = OmshellFailoverState;

/** local-state and partner-state from the reply to omapiFailoverStateOpen. */
export function readOmapiFailoverStateReply(m: OmapiMessage, peerName: string): OmapiFailoverState {
  if (m.op === OMAPI_OP.status) return { ok: false, error: `dhcpd has no failover-state for peer "${peerName}": ${omapiStatusText(m)}` };
  if (m.op !== OMAPI_OP.update) return { ok: false, error: `unexpected ${omapiOpName(m.op)} in answer to the failover-state open` };
  const values: Record<string, number> = {};
  for (const [name, value] of m.object) {
    if (value.length === 4 && !/-(address|hba)$/.test(name)) values[name] = value.readUInt32BE(0);
  }
  const local = values["local-state"];
  const partner = values["partner-state"];
  if (local === undefined || partner === undefined) {
    return { ok: false, error: `dhcpd's failover-state for peer "${peerName}" has no local-state/partner-state (values: ${m.object.map(([n]) => n).join(", ") || "none"})` };
  }
  return { ok: true, localState: failoverStateName(local), partnerState: failoverStateName(partner), localStateCode: local, partnerStateCode: partner, values };
}

/** dhcpd's STATUS answer to omapiFailoverStateUpdate: result 0 is success. */
export function readOmapiUpdateReply(m: OmapiMessage, peerName: string, state: OmapiSettableState, before: OmapiFailoverState & { ok: true }): OmapiConversationResult {
  if (m.op !== OMAPI_OP.status) return { ok: false, error: `unexpected ${omapiOpName(m.op)} in answer to setting local-state ${state} on peer "${peerName}"` };
  const result = omapiValue(m.message, "result");
  if (result?.length === 4 && result.readUInt32BE(0) === 0) return { ...before, set: state };
  return { ok: false, error: `dhcpd refused local-state ${state} for peer "${peerName}": ${omapiStatusText(m)}` };
}

// ---- the conversation ----------------------------------------------------------------------

function randomTid(): number {
  return randomInt(1, 0x7fffffff);
}

/** With `setLocalState`: the state read before the update, and the state set. */
export type OmapiConversationResult = OmapiFailoverState & { set?: OmapiSettableState };

export type OmapiStep = { send?: Buffer; done?: OmapiConversationResult };

/**
 * One failover-state query as omshell makes it: startup, authenticator OPEN (unsigned), then the
 * failover-state OPEN signed with the authenticator's handle. Feed it every received chunk; it
 * says what to send next and, at the end, the reading (dhcpd's refusal as `ok: false`). Throws on
 * bytes that are not OMAPI. `tids` are fixed only by tests that replay a capture.
 */
export class OmapiFailoverConversation {
  private buf: Buffer = Buffer.alloc(0);
  private headerSize = 0;
  private phase: "startup" | "authenticator" | "state" | "update" | "done" = "startup";
  private authId = 0;
  private readonly authTid: number;
  private readonly stateTid: number;
  private readonly updateTid: number;
  private read?: OmapiFailoverState & { ok: true };
  /** Whether any byte came from the peer. */
  heard = false;

  constructor(
    private readonly peerName: string,
    private readonly key: DhcpdOmapiKey,
    tids: { authenticator: number; state: number; update?: number } = { authenticator: randomTid(), state: randomTid() },
    /** After reading the state, set the local state to this (maintenance); the reply is dhcpd's STATUS. */
    private readonly setLocalState?: OmapiSettableState,
  ) {
    // Fail before any connection on a name or secret we would not send.
    omapiAuthenticatorOpen(key, 0);
    omapiFailoverStateOpen(peerName, 0, { authId: 0, key });
    if (setLocalState !== undefined) omapiFailoverStateUpdate(1, setLocalState, 0, { authId: 0, key });
    this.authTid = tids.authenticator;
    this.stateTid = tids.state;
    this.updateTid = tids.update ?? randomTid();
  }

  /** What the peer is being waited for, for timeout messages. */
  get waitingFor(): string {
    return {
      startup: "dhcpd's OMAPI startup",
      authenticator: "the answer to the OMAPI authenticator",
      state: `the answer to the failover-state open of peer "${this.peerName}"`,
      update: `the answer to setting local-state ${this.setLocalState} on peer "${this.peerName}"`,
      done: "nothing",
    }[this.phase];
  }

  /** The first bytes to send: our startup. */
  start(): Buffer {
    return encodeOmapiStartup();
  }

  receive(chunk: Buffer): OmapiStep {
    if (chunk.length) this.heard = true;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const sends: Buffer[] = [];
    for (;;) {
      if (this.phase === "done") break;
      if (this.phase === "startup") {
        if (this.buf.length < OMAPI_STARTUP_SIZE) break;
        this.headerSize = decodeOmapiStartup(this.buf).headerSize;
        this.buf = this.buf.subarray(OMAPI_STARTUP_SIZE);
        this.phase = "authenticator";
        sends.push(omapiAuthenticatorOpen(this.key, this.authTid));
        continue;
      }
      const decoded = decodeOmapiMessage(this.buf, this.headerSize);
      if (!decoded) break;
      this.buf = this.buf.subarray(decoded.length);
      const m = decoded.message;
      // dhcpd answers each request with rid = its tid; anything else (a NOTIFY) is not ours.
      if (this.phase === "authenticator" && m.rid === this.authTid) {
        const auth = readOmapiAuthenticatorReply(m, this.key);
        if (!auth.ok) return this.finish(auth);
        this.authId = auth.authId;
        this.phase = "state";
        sends.push(omapiFailoverStateOpen(this.peerName, this.stateTid, { authId: this.authId, key: this.key }));
      } else if (this.phase === "state" && m.rid === this.stateTid) {
        const verified = verifyOmapiMessage(decoded, this.key, this.authId);
        const read = verified.ok ? readOmapiFailoverStateReply(m, this.peerName) : verified;
        if (!read.ok || this.setLocalState === undefined) return this.finish(read);
        this.read = read;
        this.phase = "update";
        sends.push(omapiFailoverStateUpdate(m.handle, this.setLocalState, this.updateTid, { authId: this.authId, key: this.key }));
      } else if (this.phase === "update" && m.rid === this.updateTid) {
        const verified = verifyOmapiMessage(decoded, this.key, this.authId);
        if (!verified.ok) return this.finish(verified);
        return this.finish(readOmapiUpdateReply(m, this.peerName, this.setLocalState!, this.read!));
      }
    }
    return sends.length ? { send: Buffer.concat(sends) } : {};
  }

  private finish(result: OmapiConversationResult): OmapiStep {
    this.phase = "done";
    return { done: result };
  }
}
