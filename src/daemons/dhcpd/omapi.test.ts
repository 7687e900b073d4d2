// The OMAPI codec on bytes recorded from dhcpd 4.4.3-P1 (testdata/captured/omapi-exchanges.json:
// a failover pair "p" in normal, each dhcpd in its own network namespace, spoken to by
// src/observe/omapi-client.ts; the key is a throwaway made for the capture). The live
// conversation with a real dhcpd is src/observe/omapi-client.test.ts.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { DhcpdOmapiKey } from "./index.js";
import {
  OMAPI_OP,
  OmapiFailoverConversation,
  decodeOmapiMessage,
  decodeOmapiStartup,
  encodeOmapiMessage,
  encodeOmapiStartup,
  omapiAlgorithmName,
  omapiAuthenticatorOpen,
  omapiFailoverStateOpen,
  omapiResultText,
  omapiSign,
  omapiSignatureLength,
  omapiString,
  omapiU32,
  omapiValue,
  readOmapiAuthenticatorReply,
  readOmapiFailoverStateReply,
  verifyOmapiMessage,
} from "./omapi.js";
import { TESTDATA_DIR } from "./test-support.js";

interface Exchange {
  sent: string[];
  received: string[];
}
const capture = JSON.parse(readFileSync(join(TESTDATA_DIR, "captured", "omapi-exchanges.json"), "utf8")) as Record<
  "primary" | "secondary" | "unknownPeer" | "wrongSecret" | "wrongAlgorithm",
  Exchange
> & { key: DhcpdOmapiKey };
const KEY = capture.key;
const hex = (h: string) => Buffer.from(h, "hex");
const decoded = (h: string) => {
  const d = decodeOmapiMessage(hex(h));
  if (!d) throw new Error("incomplete capture");
  return d;
};
/** The tids the capture used: the authenticator open, then the failover-state open. */
const AUTH_TID = 0x11111111;
const STATE_TID = 0x22222222;

describe("startup", () => {
  it("is version 100 and header size 24, as dhcpd sends it", () => {
    expect(encodeOmapiStartup().toString("hex")).toBe("0000006400000018");
    expect(capture.primary.received[0]).toBe("0000006400000018");
    expect(decodeOmapiStartup(hex(capture.primary.received[0]!))).toEqual({ version: 100, headerSize: 24 });
  });
  it("refuses another protocol on the port", () => {
    expect(() => decodeOmapiStartup(hex("0000006300000018"))).toThrow(/version 99, expected 100/);
    expect(() => decodeOmapiStartup(hex("0000006400000010"))).toThrow(/header size 16/);
    expect(() => decodeOmapiStartup(Buffer.from("HTTP/1.1"))).toThrow(/version/);
    expect(() => decodeOmapiStartup(hex("00000064"))).toThrow(/4 bytes/);
  });
});

describe("encode and decode", () => {
  const request = {
    op: OMAPI_OP.open,
    handle: 7,
    tid: 0xdeadbeef,
    rid: 3,
    message: [["type", omapiString("failover-state")]] as const,
    object: [
      ["name", omapiString("p")],
      ["empty", Buffer.alloc(0)],
      ["n", omapiU32(0xfffffffe)],
    ] as const,
  };

  it("round-trips an unsigned message with the wire layout of omapip", () => {
    const bytes = encodeOmapiMessage(request);
    expect(bytes.subarray(0, 24).toString("hex")).toBe("00000000" + "00000000" + "00000001" + "00000007" + "deadbeef" + "00000003");
    // u16 name length, name, u32 value length, value; u16 0 ends each list.
    expect(bytes.subarray(24, 24 + 2 + 4 + 4 + 14).toString("hex")).toBe("0004" + Buffer.from("type").toString("hex") + "0000000e" + Buffer.from("failover-state").toString("hex"));
    const d = decodeOmapiMessage(bytes)!;
    expect(d.length).toBe(bytes.length);
    expect(d.message).toEqual({ authId: 0, ...request, message: [...request.message], object: [...request.object], signature: Buffer.alloc(0) });
    expect(omapiValue(d.message.object, "n")!.readUInt32BE(0)).toBe(0xfffffffe);
  });

  it("round-trips a signed message: authlen is the digest length and the signature follows the object", () => {
    const bytes = encodeOmapiMessage(request, { authId: 9, key: KEY });
    const d = decodeOmapiMessage(bytes)!;
    expect(d.message.authId).toBe(9);
    expect(bytes.readUInt32BE(4)).toBe(32);
    expect(d.message.signature).toHaveLength(32);
    expect(verifyOmapiMessage(d, KEY, 9)).toEqual({ ok: true });
  });

  it("signs everything after the authid: authlen through the end of the object values", () => {
    const bytes = encodeOmapiMessage(request, { authId: 9, key: KEY });
    const body = bytes.subarray(4, bytes.length - 32);
    const mac = createHmac("sha256", Buffer.from(KEY.secret, "base64")).update(body).digest();
    expect(bytes.subarray(bytes.length - 32)).toEqual(mac);
    expect(decodeOmapiMessage(bytes)!.signed).toEqual(body);
    // The authid is outside the signature, as in omapi_protocol_send_message.
    const other = Buffer.from(bytes);
    other.writeUInt32BE(10, 0);
    expect(other.subarray(bytes.length - 32)).toEqual(mac);
  });

  it("says 'incomplete' for every prefix, and skips a larger header's extra bytes", () => {
    const bytes = encodeOmapiMessage(request, { authId: 9, key: KEY });
    for (let n = 0; n < bytes.length; n++) expect(decodeOmapiMessage(bytes.subarray(0, n))).toBeUndefined();
    const twoMessages = Buffer.concat([bytes, bytes]);
    expect(decodeOmapiMessage(twoMessages)!.length).toBe(bytes.length);
    const wide = Buffer.concat([bytes.subarray(0, 24), Buffer.alloc(4, 0xaa), bytes.subarray(24)]);
    expect(decodeOmapiMessage(wide, 28)!.message.object).toEqual([...request.object]);
  });

  it("rejects lengths no dhcpd would send", () => {
    const bytes = encodeOmapiMessage(request);
    const hugeAuth = Buffer.from(bytes);
    hugeAuth.writeUInt32BE(1 << 20, 4);
    expect(() => decodeOmapiMessage(hugeAuth)).toThrow(/authenticator length/);
    expect(() => encodeOmapiMessage({ ...request, object: [["", Buffer.alloc(0)]] })).toThrow(/value name/);
  });
});

describe("the requests, byte for byte as dhcpd accepted them", () => {
  it("opens the authenticator unsigned, with dhcpd's name for the algorithm", () => {
    expect(omapiAuthenticatorOpen(KEY, AUTH_TID).toString("hex")).toBe(capture.primary.sent[1]);
    const open = decoded(capture.primary.sent[1]!).message;
    expect(open).toMatchObject({ authId: 0, op: OMAPI_OP.open, signature: Buffer.alloc(0) });
    expect(omapiValue(open.object, "algorithm")!.toString()).toBe("hmac-sha256.SIG-ALG.REG.INT.");
  });
  it("opens failover-state by peer name, signed with the authenticator's handle", () => {
    expect(omapiFailoverStateOpen("p", STATE_TID, { authId: 1, key: KEY }).toString("hex")).toBe(capture.primary.sent[2]);
  });
  it("refuses names that are not plain identifiers and secrets that are not base64", () => {
    expect(() => omapiFailoverStateOpen('p"; x', 1, { authId: 1, key: KEY })).toThrow(/not a plain identifier/);
    expect(() => omapiAuthenticatorOpen({ ...KEY, name: "" }, 1)).toThrow(/not a plain identifier/);
    expect(() => omapiAuthenticatorOpen({ ...KEY, secret: "not base64!" }, 1)).toThrow(/must be base64/);
  });
});

describe("dhcpd's replies", () => {
  it("authenticator: an unsigned UPDATE whose handle is the authid from then on", () => {
    const reply = decoded(capture.primary.received[1]!).message;
    expect(reply).toMatchObject({ op: OMAPI_OP.update, authId: 0, rid: AUTH_TID, handle: 1 });
    expect(readOmapiAuthenticatorReply(reply, KEY)).toEqual({ ok: true, authId: 1 });
  });

  it("failover-state of the primary in normal: signed by the authenticator, both states and the object's integers", () => {
    const reply = decoded(capture.primary.received[2]!);
    expect(reply.message).toMatchObject({ op: OMAPI_OP.update, authId: 1, rid: STATE_TID });
    expect(verifyOmapiMessage(reply, KEY, 1)).toEqual({ ok: true });
    const state = readOmapiFailoverStateReply(reply.message, "p");
    expect(state).toMatchObject({ ok: true, localState: "normal", partnerState: "normal", localStateCode: 2, partnerStateCode: 2 });
    if (!state.ok) throw new Error(state.error);
    expect(state.values).toMatchObject({ mclt: 30, "max-response-delay": 30, "load-balance-max-secs": 3, "local-port": 647, "partner-port": 847, "cur-unacked-updates": 0 });
    expect(state.values).not.toHaveProperty("local-address");
    expect(state.values).not.toHaveProperty("load-balance-hba");
  });

  it("failover-state of the secondary: its own ports", () => {
    const reply = decoded(capture.secondary.received[2]!);
    expect(verifyOmapiMessage(reply, KEY, 1)).toEqual({ ok: true });
    const state = readOmapiFailoverStateReply(reply.message, "p");
    expect(state).toMatchObject({ ok: true, localState: "normal", partnerState: "normal", values: { "local-port": 847, "partner-port": 647 } });
  });

  it("rejects a reply whose signature does not match, or that is not signed by our authenticator", () => {
    const reply = decoded(capture.primary.received[2]!);
    const tampered = { ...reply, signed: Buffer.from(reply.signed) };
    tampered.signed[tampered.signed.length - 3]! ^= 1;
    expect(verifyOmapiMessage(tampered, KEY, 1)).toEqual({ ok: false, error: "dhcpd's update reply has a bad hmac-sha256 signature" });
    expect(verifyOmapiMessage(reply, { ...KEY, secret: Buffer.alloc(32, 1).toString("base64") }, 1)).toMatchObject({ ok: false });
    expect(verifyOmapiMessage(reply, KEY, 2)).toMatchObject({ ok: false, error: expect.stringMatching(/not signed with our authenticator/) });
    const unsigned = decoded(capture.primary.received[1]!);
    expect(verifyOmapiMessage(unsigned, KEY, 1)).toMatchObject({ ok: false, error: expect.stringMatching(/authid 0, 0-byte signature/) });
  });

  it("unknown peer: a signed STATUS carrying dhcpd's message", () => {
    const reply = decoded(capture.unknownPeer.received[2]!);
    expect(reply.message.op).toBe(OMAPI_OP.status);
    expect(verifyOmapiMessage(reply, KEY, 1)).toEqual({ ok: true });
    expect(readOmapiFailoverStateReply(reply.message, "nope")).toEqual({
      ok: false,
      error: 'dhcpd has no failover-state for peer "nope": no object matches specification: not found (result 23)',
    });
  });

  it("wrong secret: dhcpd answers the signed open with an unsigned STATUS 'invalid TSIG key'", () => {
    const reply = decoded(capture.wrongSecret.received[2]!);
    expect(reply.message).toMatchObject({ op: OMAPI_OP.status, authId: 0 });
    const wrong = { ...KEY, secret: Buffer.alloc(32, 7).toString("base64") };
    expect(verifyOmapiMessage(reply, wrong, 1)).toEqual({
      ok: false,
      error: "dhcpd refused the signature of our request: invalid TSIG key (result 393227); the secret of OMAPI key omkey does not match omapi-key in dhcpd.conf",
    });
  });

  it("wrong algorithm (or key name): the authenticator open gets STATUS not found", () => {
    const reply = decoded(capture.wrongAlgorithm.received[1]!).message;
    expect(readOmapiAuthenticatorReply(reply, { ...KEY, algorithm: "hmac-md5" })).toEqual({
      ok: false,
      error:
        "dhcpd refused the OMAPI key omkey (hmac-md5): no object matches specification: not found (result 23); check the key name, secret and algorithm against omapi-key in dhcpd.conf",
    });
  });
});

describe("algorithms and result codes", () => {
  it("hmac-md5 signs with a 16-byte MD5 HMAC, hmac-sha256 with 32 bytes", () => {
    const md5 = { name: "k", algorithm: "hmac-md5" as const, secret: Buffer.alloc(64, 3).toString("base64") };
    expect(omapiSignatureLength("hmac-md5")).toBe(16);
    expect(omapiSignatureLength("hmac-sha256")).toBe(32);
    expect(omapiAlgorithmName("hmac-md5")).toBe("hmac-md5.SIG-ALG.REG.INT.");
    expect(omapiSign(md5, Buffer.from("x"))).toEqual(createHmac("md5", Buffer.alloc(64, 3)).update("x").digest());
    const bytes = encodeOmapiMessage({ op: OMAPI_OP.open, handle: 0, tid: 1, rid: 0, message: [], object: [] }, { authId: 4, key: md5 });
    expect(bytes.readUInt32BE(4)).toBe(16);
    expect(verifyOmapiMessage(decodeOmapiMessage(bytes)!, md5, 4)).toEqual({ ok: true });
  });
  it("refuses an algorithm it cannot sign with", () => {
    expect(() => omapiSignatureLength("hmac-sha1" as never)).toThrow(/not supported/);
  });
  it("names isc and dhcp result codes, and shows the number of any other", () => {
    expect(omapiResultText(23)).toBe("not found (result 23)");
    expect(omapiResultText((6 << 16) + 10)).toBe("zone TSIG key not known (result 393226)");
    expect(omapiResultText(999)).toBe("result 999");
  });
});

describe("OmapiFailoverConversation, replaying the capture", () => {
  const tids = { authenticator: AUTH_TID, state: STATE_TID };
  /** Feeds dhcpd's recorded answers one by one; returns what the conversation sent and its result. */
  const replay = (exchange: Exchange, key: DhcpdOmapiKey, peer: string, chunking = (b: Buffer) => [b]) => {
    const c = new OmapiFailoverConversation(peer, key, tids);
    const sent = [c.start().toString("hex")];
    let done;
    for (const answer of exchange.received) {
      for (const chunk of chunking(hex(answer))) {
        const step = c.receive(chunk);
        if (step.send) sent.push(step.send.toString("hex"));
        if (step.done) done = step.done;
      }
    }
    return { sent, done };
  };

  it("sends exactly what dhcpd accepted, and reads normal/normal", () => {
    const { sent, done } = replay(capture.primary, KEY, "p");
    expect(sent).toEqual(capture.primary.sent);
    expect(done).toMatchObject({ ok: true, localState: "normal", partnerState: "normal" });
  });

  it("does not care how the bytes are cut", () => {
    const bytewise = (b: Buffer) => [...b].map((x) => Buffer.from([x]));
    expect(replay(capture.secondary, KEY, "p", bytewise)).toEqual(replay(capture.secondary, KEY, "p"));
    const all = new OmapiFailoverConversation("p", KEY, tids);
    // Startup and authenticator answer in one read: the failover-state open follows at once.
    const step = all.receive(Buffer.concat(capture.primary.received.slice(0, 2).map(hex)));
    expect(step.send?.toString("hex")).toBe(capture.primary.sent[1]! + capture.primary.sent[2]!);
  });

  it("ends with dhcpd's refusal of the key, without opening the failover-state", () => {
    const { sent, done } = replay(capture.wrongAlgorithm, { ...KEY, algorithm: "hmac-md5" }, "p");
    expect(sent).toHaveLength(2);
    expect(done).toMatchObject({ ok: false, error: expect.stringMatching(/^dhcpd refused the OMAPI key omkey \(hmac-md5\)/) });
    expect(replay(capture.wrongSecret, { ...KEY, secret: Buffer.alloc(32, 7).toString("base64") }, "p").done).toMatchObject({
      ok: false,
      error: expect.stringMatching(/refused the signature of our request: invalid TSIG key/),
    });
    expect(replay(capture.unknownPeer, KEY, "nope").done).toMatchObject({ ok: false, error: expect.stringMatching(/no failover-state for peer "nope"/) });
  });

  it("refuses a reply signed with another key, and skips messages that answer something else", () => {
    const other = { ...KEY, secret: Buffer.alloc(32, 9).toString("base64") };
    expect(replay(capture.primary, other, "p").done).toEqual({ ok: false, error: "dhcpd's update reply has a bad hmac-sha256 signature" });
    const c = new OmapiFailoverConversation("p", KEY, tids);
    c.receive(hex(capture.primary.received[0]!));
    const notify = encodeOmapiMessage({ op: OMAPI_OP.notify, handle: 5, tid: 77, rid: 12345, message: [], object: [] });
    expect(c.receive(notify)).toEqual({});
    expect(c.waitingFor).toBe("the answer to the OMAPI authenticator");
    expect(c.receive(hex(capture.primary.received[1]!)).send?.toString("hex")).toBe(capture.primary.sent[2]);
  });

  it("throws on a peer that does not speak OMAPI, and on names it would not send", () => {
    const c = new OmapiFailoverConversation("p", KEY);
    expect(c.heard).toBe(false);
    expect(() => c.receive(Buffer.from("SSH-2.0-OpenSSH_9.2p1\r\n"))).toThrow(/protocol version/);
    expect(c.heard).toBe(true);
    expect(() => new OmapiFailoverConversation('p"', KEY)).toThrow(/not a plain identifier/);
    expect(() => new OmapiFailoverConversation("p", { ...KEY, secret: "%%%" })).toThrow(/must be base64/);
  });
});

describe("setting a side's local-state (maintenance)", () => {
  const UPDATE_TID = 0x33333333;
  const tids = { authenticator: AUTH_TID, state: STATE_TID, update: UPDATE_TID };
  const authId = decodeOmapiMessage(hex(capture.primary.received[1]!), 24)!.message.handle;
  const stateHandle = decodeOmapiMessage(hex(capture.primary.received[2]!), 24)!.message.handle;
  /** dhcpd's STATUS answer to our update, signed with the authenticator as dhcpd signs it. */
  const status = (result: number, text?: string) =>
    encodeOmapiMessage(
      { op: OMAPI_OP.status, handle: 0, tid: 99, rid: UPDATE_TID, message: [["result", omapiU32(result)], ...(text ? [["message", omapiString(text)] as const] : [])], object: [] },
      { authId, key: KEY },
    );
  const upToUpdate = (state: "shutdown" | "recover" | "partner-down") => {
    const c = new OmapiFailoverConversation("p", KEY, tids, state);
    c.receive(hex(capture.primary.received[0]!));
    c.receive(hex(capture.primary.received[1]!));
    return { c, step: c.receive(hex(capture.primary.received[2]!)) };
  };

  it("after the read, sends a signed UPDATE of local-state on the opened object's handle", () => {
    const { c, step } = upToUpdate("shutdown");
    expect(step.done).toBeUndefined();
    const sent = decodeOmapiMessage(step.send!, 24)!;
    expect(sent.message).toMatchObject({ op: OMAPI_OP.update, handle: stateHandle, tid: UPDATE_TID, rid: 0, authId, message: [] });
    expect(sent.message.object).toEqual([["local-state", omapiU32(8)]]);
    expect(verifyOmapiMessage(sent, KEY, authId)).toEqual({ ok: true });
    expect(c.waitingFor).toBe('the answer to setting local-state shutdown on peer "p"');
    expect(decodeOmapiMessage(upToUpdate("recover").step.send!, 24)!.message.object).toEqual([["local-state", omapiU32(6)]]);
    expect(decodeOmapiMessage(upToUpdate("partner-down").step.send!, 24)!.message.object).toEqual([["local-state", omapiU32(4)]]);
  });

  it("ends with the state read before and the state set on result 0, and with dhcpd's complaint otherwise", () => {
    expect(upToUpdate("shutdown").c.receive(status(0)).done).toMatchObject({ ok: true, localState: "normal", partnerState: "normal", set: "shutdown" });
    expect(upToUpdate("shutdown").c.receive(status(25, "can't update object")).done).toEqual({
      ok: false,
      error: `dhcpd refused local-state shutdown for peer "p": can't update object: failure (result 25)`,
    });
    // An unsigned answer is not taken for dhcpd's.
    const unsigned = encodeOmapiMessage({ op: OMAPI_OP.status, handle: 0, tid: 99, rid: UPDATE_TID, message: [["result", omapiU32(0)]], object: [] });
    expect(upToUpdate("shutdown").c.receive(unsigned).done).toMatchObject({ ok: false, error: expect.stringMatching(/refused the signature/) });
  });

  it("without a state to set, the read is the end, as before", () => {
    const c = new OmapiFailoverConversation("p", KEY, tids);
    for (const r of capture.primary.received.slice(0, 2)) c.receive(hex(r));
    expect(c.receive(hex(capture.primary.received[2]!)).done).toMatchObject({ ok: true, localState: "normal" });
  });
});
