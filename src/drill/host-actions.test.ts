// The drill's host scripts run for real in a local bash (localHostSession): the observation loop
// over a stream, its DNS query against a real UDP responder on a loopback address, and the rule
// that every value travels as argv.
import { type Socket, createSocket } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localHostSession } from "../apply/local-session.js";
import { rootForRealDaemons } from "../testing/support.js";
import { HostObserver, OBSERVE_SCRIPT, breakArgv, observeArgv, restoreArgv, restoreUnitOf } from "./host-actions.js";

const RESPONDER = "127.0.0.2";
let responder: Socket | undefined;
let queries = 0;

beforeAll(async () => {
  if (!rootForRealDaemons()) return;
  responder = createSocket("udp4");
  // Answers every query with one A record, copying the ID and the question, like a DNS server.
  responder.on("message", (q, from) => {
    queries++;
    const answer = Buffer.from("c00c000100010000003c00047f000001", "hex");
    const reply = Buffer.concat([q.subarray(0, 2), Buffer.from("81800001000100000000", "hex"), q.subarray(12), answer]);
    responder!.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve, reject) => {
    responder!.once("error", reject);
    responder!.bind(53, RESPONDER, () => resolve());
  });
});

afterAll(() => responder?.close());

describe("argv, never spliced", () => {
  it("the scripts are constants; run IDs, interfaces and names are words of their own", () => {
    const a = breakArgv({ method: "CutHostNetwork", runID: "abc123", interface: "eth0", safetySeconds: 90 });
    const b = breakArgv({ method: "CutHostNetwork", runID: "zz9", interface: "br0", safetySeconds: 30 });
    expect(a[2]).toBe(b[2]);
    expect(a.slice(4, 7)).toEqual(["ddi-ha-drill-abc123", "90s", "eth0"]);
    expect(restoreArgv({ method: "StopPrimaryDaemon", runID: "abc123", interface: "eth0" }).slice(4)).toEqual(["ddi-ha-drill-abc123"]);
    expect(observeArgv("eth0", "198.18.0.53", "localhost", 200, 90).slice(4)).toEqual(["eth0", "198.18.0.53", "localhost", "0.200", "90"]);
    for (const bad of ["", "A1", "a;b", "$(id)", "a".repeat(33)]) expect(() => restoreUnitOf(bad)).toThrow(/run ID/);
    expect(() => breakArgv({ method: "KeaMaintenance", runID: "a", interface: "eth0", safetySeconds: 1 })).toThrow(/not implemented/);
  });

  it("the observation script refuses values that are not what their argv word should be", async () => {
    const session = localHostSession("local");
    for (const args of [["eth0;id", "127.0.0.1", ""], ["lo", "1.2.3.4;id", ""], ["lo", "127.0.0.1", "a b"], ["-lo", "127.0.0.1", ""]]) {
      const r = await session.run(["bash", "-c", OBSERVE_SCRIPT, "bash", ...args, "0.1", "1"]);
      expect(r.code, args.join(" ")).toBe(2);
    }
  });
});

describe.skipIf(!rootForRealDaemons())("the observation loop (root: binds UDP port 53 on a loopback address)", () => {
  it("streams one block per round; the DNS query gets the responder's answer, and no answer where nobody listens", async () => {
    const session = localHostSession("local");
    const answered = await HostObserver.start(session, { iface: "lo", vip: RESPONDER, dnsName: "localhost", intervalMs: 100, maxSeconds: 5 }, Date.now);
    const silent = await HostObserver.start(session, { iface: "lo", vip: "127.0.0.3", dnsName: "www.example.org", intervalMs: 100, maxSeconds: 5 }, Date.now);
    const vipLoop = await HostObserver.start(session, { iface: "lo", vip: "127.0.0.1", dnsName: undefined, intervalMs: 100, maxSeconds: 5 }, Date.now);
    try {
      // The responder lives in this test's event loop: on a loaded machine one answer may miss its second.
      const seen = async (o: HostObserver, want: boolean) => {
        for (const end = Date.now() + 15_000; Date.now() < end; await o.next(1_000)) if (o.view(Date.now())?.view.dns === want) return true;
        return false;
      };
      expect(await seen(answered, true)).toBe(true);
      expect(await seen(silent, false)).toBe(true);
      expect(silent.view(Date.now())?.view.reachable).toBe(true);
      // lo carries 127.0.0.1/8: the VIP check greps `ip -o -4 addr show dev lo`.
      for (const end = Date.now() + 15_000; Date.now() < end && vipLoop.view(Date.now()) === undefined; ) await vipLoop.next(1_000);
      expect(vipLoop.view(Date.now())?.view).toMatchObject({ reachable: true, vip: true, keepalivedActive: false });
      expect(queries).toBeGreaterThanOrEqual(1);
      const a = answered.view(Date.now())!;
      expect(a.sinceMs).toBeLessThanOrEqual(a.atMs);
    } finally {
      await Promise.all([answered.stop(), silent.stop(), vipLoop.stop()]);
    }
    // A stopped stream is unreachable, not frozen at its last block.
    for (const end = Date.now() + 10_000; Date.now() < end && answered.view(Date.now())?.view.reachable; ) await answered.next(200);
    expect(answered.view(Date.now())?.view.reachable).toBe(false);
  });
});
