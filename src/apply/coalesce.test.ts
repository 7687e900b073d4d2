import { describe, expect, it } from "vitest";
import type { RenderedFile } from "../render/types.js";
import { mayCoalesce, mergeFiles, sameApplyOptions, shareOf, shouldRetryAlone } from "./coalesce.js";
import type { ApplyResult } from "./types.js";

const file = (path: string, content = "x\n", service: RenderedFile["service"] = "keepalived.service"): RenderedFile => ({
  host: "h1",
  path,
  content,
  mode: 0o644,
  ownership: "owned",
  service,
  check: { kind: "keepalived" },
  owner: `default/${path}`,
});

const result = (over: Partial<ApplyResult> = {}): ApplyResult => ({ host: "h1", changed: [], unchanged: [], removed: [], reloaded: [], ok: true, notes: [], ...over });

describe("who may share a transaction", () => {
  it("plain writes may; removals, stops and test hooks keep their own", () => {
    expect(mayCoalesce({ settleMs: 2000 })).toBe(true);
    expect(mayCoalesce({ remove: [] })).toBe(true);
    expect(mayCoalesce({ remove: [{ path: "/p", service: "keepalived.service", ownership: "owned" }] })).toBe(false);
    expect(mayCoalesce({ stop: ["keepalived.service"] })).toBe(false);
    expect(mayCoalesce({ hooks: {} })).toBe(false);
  });

  it("options must be the same values, the lock key aside", () => {
    const probes = {};
    expect(sameApplyOptions({ lockKey: "a:22", healthProbes: probes, settleMs: 1 }, { lockKey: "b:22", healthProbes: probes, settleMs: 1 })).toBe(true);
    expect(sameApplyOptions({ healthProbes: probes }, { healthProbes: {} })).toBe(false);
    expect(sameApplyOptions({ settleMs: 1 }, {})).toBe(false);
  });

  it("files merge one per path, and not at all when two want different bytes at one path", () => {
    const main = file("/etc/keepalived/keepalived.conf");
    const merged = mergeFiles([{ files: [main, file("/a.conf")], options: {} }, { files: [main, file("/b.conf")], options: {} }]);
    expect(merged?.map((f) => f.path)).toEqual(["/etc/keepalived/keepalived.conf", "/a.conf", "/b.conf"]);
    expect(mergeFiles([{ files: [main], options: {} }, { files: [{ ...main, content: "other\n" }], options: {} }])).toBeUndefined();
    expect(mergeFiles([{ files: [main], options: {} }, { files: [{ ...main, mode: 0o600 }], options: {} }])).toBeUndefined();
  });
});

describe("a shared transaction's result", () => {
  it("is retried alone only when the failure may be one request's (check, reload, verify) and there were several", () => {
    const failed = (stage: NonNullable<ApplyResult["failure"]>["stage"]) => result({ ok: false, failure: { stage, message: "m" } });
    for (const stage of ["validate", "reload", "verify"] as const) expect(shouldRetryAlone(failed(stage), 2)).toBe(true);
    for (const stage of ["lock", "read", "stage", "swap"] as const) expect(shouldRetryAlone(failed(stage), 2)).toBe(false);
    expect(shouldRetryAlone(failed("validate"), 1)).toBe(false);
    expect(shouldRetryAlone(result(), 3)).toBe(false);
  });

  it("gives each request its own paths, and the reload only to those whose files changed", () => {
    const shared = result({ changed: ["/a.conf", "/main.conf"], unchanged: ["/b.conf"], reloaded: ["keepalived.service"], notes: ["n"] });
    const a = shareOf(shared, { files: [file("/a.conf"), file("/main.conf")], options: {} }, 1);
    expect(a).toEqual({ host: "h1", changed: ["/a.conf", "/main.conf"], unchanged: [], removed: [], reloaded: ["keepalived.service"], ok: true, notes: ["n", "applied in one transaction with 1 other request(s) for this host"] });
    const b = shareOf(shared, { files: [file("/b.conf")], options: {} }, 1);
    expect(b).toMatchObject({ changed: [], unchanged: ["/b.conf"], reloaded: [] });
  });

  it("passes a host-wide failure and its rollback to every request", () => {
    const shared = result({ ok: false, failure: { stage: "swap", message: "disk full" }, rolledBack: { ok: true, message: "restored" } });
    expect(shareOf(shared, { files: [file("/a.conf")], options: {} }, 2)).toMatchObject({ ok: false, failure: { stage: "swap", message: "disk full" }, rolledBack: { ok: true } });
  });
});
