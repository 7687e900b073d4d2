// A minimal OMAPI client: one TCP connection to dhcpd's omapi-port (in practice the local end of
// an SSH port forward), one failover-state query, close. The conversation is the dhcpd module's
// (OmapiFailoverConversation in src/daemons/dhcpd/omapi.ts); this file only moves bytes and keeps time.
import { connect } from "node:net";
import { type DhcpdOmapiKey, type OmapiConversationResult, OmapiFailoverConversation, type OmapiSettableState } from "../daemons/dhcpd/index.js";

/**
 * The connection ended before dhcpd sent a byte. Through an SSH forward this is what a refused
 * forward looks like (sshd's AllowTcpForwarding no, or nothing listening on the port): the local
 * end accepts, then closes when the channel cannot open.
 */
export class OmapiNoAnswerError extends Error {
  override name = "OmapiNoAnswerError";
}

export interface OmapiFailoverQuery {
  port: number;
  /** Default 127.0.0.1 (a forward's local end). */
  host?: string;
  peerName: string;
  key: DhcpdOmapiKey;
  /** For the TCP connect and for each answer. Default 10 s. */
  timeoutMs?: number;
  /** After the read, set this side's local-state (maintenance); the result says `set` when dhcpd took it. */
  setLocalState?: OmapiSettableState;
}

/**
 * Both partners' failover states from dhcpd's OMAPI. Resolves with dhcpd's own refusal (wrong
 * key, unknown peer) as `ok: false`; rejects with OmapiNoAnswerError when the connection ended
 * before dhcpd said anything, and with an Error on a timeout or a protocol violation. The
 * connection is always closed.
 */
export function queryOmapiFailoverState(q: OmapiFailoverQuery): Promise<OmapiConversationResult> {
  const timeoutMs = q.timeoutMs ?? 10_000;
  const host = q.host ?? "127.0.0.1";
  const where = `OMAPI at ${host}:${q.port}`;
  let conversation: OmapiFailoverConversation;
  try {
    conversation = q.setLocalState === undefined ? new OmapiFailoverConversation(q.peerName, q.key) : new OmapiFailoverConversation(q.peerName, q.key, undefined, q.setLocalState);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise<OmapiConversationResult>((resolve, reject) => {
    const sock = connect({ host, port: q.port });
    sock.setNoDelay(true);
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      fn();
    };
    // One deadline per answer: restarted whenever we send.
    const arm = (what: () => string) => {
      clearTimeout(timer);
      timer = setTimeout(() => settle(() => reject(new Error(`${where}: ${what()}: no answer within ${timeoutMs} ms`))), timeoutMs);
    };
    arm(() => "connecting");
    sock.on("connect", () => {
      sock.write(conversation.start());
      arm(() => conversation.waitingFor);
    });
    sock.on("data", (chunk: Buffer) => {
      try {
        const step = conversation.receive(chunk);
        if (step.done) return settle(() => resolve(step.done!));
        if (step.send) {
          sock.write(step.send);
          arm(() => conversation.waitingFor);
        }
      } catch (err) {
        settle(() => reject(new Error(`${where}: ${(err as Error).message}`)));
      }
    });
    sock.on("error", (err) => {
      settle(() => reject(conversation.heard ? new Error(`${where}: ${err.message}`) : new OmapiNoAnswerError(`${where}: ${err.message}`)));
    });
    sock.on("close", () => {
      settle(() =>
        reject(
          conversation.heard
            ? new Error(`${where}: connection closed while waiting for ${conversation.waitingFor}`)
            : new OmapiNoAnswerError(`${where}: connection closed before dhcpd's OMAPI startup`),
        ),
      );
    });
  });
}
