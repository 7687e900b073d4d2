import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { KubeItem } from "../engine/kube-status.js";
import { SecretReads } from "./secret-reads.js";

const secret = (key: string): KubeItem => ({ apiVersion: "v1", kind: "Secret", metadata: { namespace: "ns", name: "lab-ssh" }, data: { privateKey: key } });
const refused = () => Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" }) });
const http = (statusCode: number) => Object.assign(new Error(`HTTP ${statusCode}`), { statusCode });

/** SecretReads over a scripted API server: each read takes the next answer. */
function reads(answers: (KubeItem | undefined | Error)[]) {
  let clock = 0;
  let calls = 0;
  const r = new SecretReads({
    read: async () => {
      const a = answers[calls++];
      if (a instanceof Error) throw a;
      return a;
    },
    ttlMs: 30_000,
    log: pino({ level: "silent" }),
    now: () => clock,
  });
  return { r, calls: () => calls, tick: (ms: number) => (clock += ms) };
}

describe("SecretReads", () => {
  it("reuses a read for the TTL, then asks again", async () => {
    const { r, calls, tick } = reads([secret("k1"), secret("k2")]);
    expect((await r.read("ns", "lab-ssh"))?.data).toEqual({ privateKey: "k1" });
    tick(29_000);
    expect((await r.read("ns", "lab-ssh"))?.data).toEqual({ privateKey: "k1" });
    expect(calls()).toBe(1);
    tick(2_000);
    expect((await r.read("ns", "lab-ssh"))?.data).toEqual({ privateKey: "k2" });
  });

  it("answers with the last copy while the API server cannot be reached, and asks again on every read", async () => {
    const { r, calls, tick } = reads([secret("k1"), refused(), http(503), secret("k2")]);
    await r.read("ns", "lab-ssh");
    tick(31_000);
    expect((await r.read("ns", "lab-ssh"))?.data).toEqual({ privateKey: "k1" });
    expect((await r.read("ns", "lab-ssh"))?.data).toEqual({ privateKey: "k1" });
    // Back: the fresh answer wins at once, no TTL wait after a fallback.
    expect((await r.read("ns", "lab-ssh"))?.data).toEqual({ privateKey: "k2" });
    expect(calls()).toBe(4);
  });

  it("keeps a Secret that did not exist missing while unreachable; never hides an answer of the API server", async () => {
    const missing = reads([undefined, refused()]);
    expect(await missing.r.read("ns", "lab-ssh")).toBeUndefined();
    missing.tick(31_000);
    expect(await missing.r.read("ns", "lab-ssh")).toBeUndefined();

    const forbidden = reads([secret("k1"), http(403)]);
    await forbidden.r.read("ns", "lab-ssh");
    forbidden.tick(31_000);
    await expect(forbidden.r.read("ns", "lab-ssh")).rejects.toThrow("HTTP 403");
  });

  it("fails when the API server cannot be reached and nothing was ever read", async () => {
    const { r } = reads([refused(), secret("k1")]);
    await expect(r.read("ns", "lab-ssh")).rejects.toThrow("fetch failed");
    // The failure is not reused.
    expect((await r.read("ns", "lab-ssh"))?.data).toEqual({ privateKey: "k1" });
  });
});
