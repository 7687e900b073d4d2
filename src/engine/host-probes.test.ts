// The probe request and the drift check against what a probe brought, with plain inputs.
import { describe, expect, it, vi } from "vitest";
import { PENDING_RELOAD_PATH } from "../apply/plan.js";
import type { HostProbe, ProbedFile } from "../observe/index.js";
import { contentSha256 } from "../observe/index.js";
import type { RenderedFile } from "../render/types.js";
import { DoubtDeadlines, ProbeInDoubtError, driftFromProbes, probeWithin } from "./host-probes.js";

const file = (host: string, content: string): RenderedFile => ({
  host,
  path: "/etc/keepalived/ddi-ha.d/ns_vip.conf",
  content,
  mode: 0o644,
  ownership: "owned",
  service: "keepalived.service",
  check: { kind: "keepalived" },
  owner: "ns/vip",
});

const probe = (host: string, files: Record<string, ProbedFile>): HostProbe => ({ host, files: new Map(Object.entries(files)) }) as unknown as HostProbe;

describe("driftFromProbes", () => {
  const f = file("h1", "vrrp_instance x {}\n");
  const matching = { exists: true, sha256: contentSha256(f.content) };

  it("finds nothing when the hash matches and no reload is owed", () => {
    expect(driftFromProbes([f], () => probe("h1", { [f.path]: matching, [PENDING_RELOAD_PATH]: { exists: false } }))).toEqual({ checkedHosts: ["h1"], differing: [], control: [], pendingReload: [] });
  });

  it("reports a reload owed to the file's service even though the file matches", () => {
    const marker = { exists: true, content: `keepalived.service\nfile existed ${f.path}\n` };
    expect(driftFromProbes([f], () => probe("h1", { [f.path]: matching, [PENDING_RELOAD_PATH]: marker }))).toEqual({
      checkedHosts: ["h1"],
      differing: [],
      control: [],
      pendingReload: ["h1:keepalived.service"],
    });
  });

  it("puts a differing file the daemon follows by itself (the maintenance flag) under control, not drift", () => {
    const flag = { ...file("h1", "1\n"), path: "/var/lib/ddi-ha/keepalived-maintenance", followedByDaemon: true as const };
    const drift = driftFromProbes([f, flag], () => probe("h1", { [f.path]: matching, [flag.path]: { exists: true, sha256: contentSha256("0\n") } }));
    expect(drift).toMatchObject({ differing: [], control: ["h1:/var/lib/ddi-ha/keepalived-maintenance"] });
  });

  it("ignores a reload owed to another service of the host", () => {
    const marker = { exists: true, content: "isc-dhcp-server.service\n" };
    expect(driftFromProbes([f], () => probe("h1", { [f.path]: matching, [PENDING_RELOAD_PATH]: marker })).pendingReload).toEqual([]);
  });
});

describe("probeWithin", () => {
  const answer = { host: "h1" } as unknown as HostProbe;

  it("passes a probe that answers in time through, and calls no onLate", async () => {
    let late = 0;
    await expect(probeWithin(Promise.resolve(answer), 1_000, "h1", () => late++)).resolves.toBe(answer);
    expect(late).toBe(0);
  });

  it("puts a late probe in doubt, naming the host, and calls onLate once it answers", async () => {
    vi.useFakeTimers();
    try {
      let resolve!: (p: HostProbe) => void;
      const slow = new Promise<HostProbe>((r) => (resolve = r));
      let late = 0;
      const got = probeWithin(slow, 1_000, "h1", () => late++);
      const settled = got.catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(1_000);
      const err = await settled;
      expect(err).toBeInstanceOf(ProbeInDoubtError);
      expect((err as Error).message).toMatch(/^h1 has not answered its probe for 1\.0 s while a peer took the VIP/);
      expect(late).toBe(0);
      resolve(answer);
      await vi.advanceTimersByTimeAsync(0);
      expect(late).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("calls onLate when the late probe fails too", async () => {
    vi.useFakeTimers();
    try {
      let reject!: (e: Error) => void;
      const slow = new Promise<HostProbe>((_, r) => (reject = r));
      let late = 0;
      const settled = probeWithin(slow, 500, "h2", () => late++).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(500);
      expect(await settled).toBeInstanceOf(ProbeInDoubtError);
      reject(new Error("connection lost"));
      await vi.advanceTimersByTimeAsync(0);
      expect(late).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("DoubtDeadlines", () => {
  const answer = { host: "h1" } as unknown as HostProbe;

  it("gives every wait for one probe in flight the deadline of the first, so doubt is 1 s, not 1 s per wait", async () => {
    vi.useFakeTimers();
    try {
      const doubt = new DoubtDeadlines(1_000);
      const frozen = new Promise<HostProbe>(() => undefined);
      const first = doubt.within(frozen, "h1", () => undefined).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(600);
      // A second wait (the pass's observation after its drift check) 600 ms in: 400 ms left, not 1 s.
      const second = doubt.within(frozen, "h1", () => undefined).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(400);
      expect(await first).toBeInstanceOf(ProbeInDoubtError);
      expect(await second).toBeInstanceOf(ProbeInDoubtError);
      // A wait after the deadline is in doubt at once, and says how long the probe has been waited for.
      await vi.advanceTimersByTimeAsync(500);
      const third = doubt.within(frozen, "h1", () => undefined).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(0);
      const err = await third;
      expect(err).toBeInstanceOf(ProbeInDoubtError);
      expect((err as Error).message).toMatch(/^h1 has not answered its probe for 1\.5 s/);
    } finally {
      vi.useRealTimers();
    }
  });

  it("starts a new probe's clock afresh, and passes an answer that comes in time through", async () => {
    vi.useFakeTimers();
    try {
      const doubt = new DoubtDeadlines(1_000);
      const frozen = new Promise<HostProbe>(() => undefined);
      const old = doubt.within(frozen, "h1", () => undefined).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(await old).toBeInstanceOf(ProbeInDoubtError);
      // The host's probe was invalidated and taken again: the new one has its own second.
      let resolve!: (p: HostProbe) => void;
      const fresh = new Promise<HostProbe>((r) => (resolve = r));
      const got = doubt.within(fresh, "h1", () => undefined);
      await vi.advanceTimersByTimeAsync(900);
      resolve(answer);
      await expect(got).resolves.toBe(answer);
    } finally {
      vi.useRealTimers();
    }
  });
});
