// The probe request and the drift check against what a probe brought, with plain inputs.
import { describe, expect, it, vi } from "vitest";
import { PENDING_RELOAD_PATH } from "../apply/plan.js";
import type { HostProbe, ProbedFile } from "../observe/index.js";
import { contentSha256 } from "../observe/index.js";
import type { RenderedFile } from "../render/types.js";
import { HostProbes, ProbeInDoubtError, driftFromProbes, probeWithin } from "./host-probes.js";

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

  it("puts a probe in doubt afterPeerMs after the peer answered, well before afterMs", async () => {
    vi.useFakeTimers();
    try {
      let peerAnswers!: (answered: boolean) => void;
      const answered = new Promise<boolean>((r) => (peerAnswers = r));
      const settled = probeWithin(new Promise<HostProbe>(() => undefined), 1_000, "h1", () => undefined, { answered, afterPeerMs: 300 }).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(200);
      peerAnswers(true);
      await vi.advanceTimersByTimeAsync(299);
      let done = false;
      void settled.then(() => (done = true));
      await vi.advanceTimersByTimeAsync(0);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      const err = await settled;
      expect(err).toBeInstanceOf(ProbeInDoubtError);
      expect((err as Error).message).toMatch(/^h1 has not answered its probe for 0\.5 s/);
    } finally {
      vi.useRealTimers();
    }
  });

  it("waits the whole afterMs when the peer's own probe failed", async () => {
    vi.useFakeTimers();
    try {
      let done = false;
      const settled = probeWithin(new Promise<HostProbe>(() => undefined), 1_000, "h1", () => undefined, { answered: Promise.resolve(false), afterPeerMs: 300 }).catch((e: unknown) => e);
      void settled.then(() => (done = true));
      await vi.advanceTimersByTimeAsync(999);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await settled).toBeInstanceOf(ProbeInDoubtError);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("HostProbes.answered", () => {
  const at = (ms: number) => ({ host: "h1", at: new Date(ms), files: new Map() }) as unknown as HostProbe;

  it("resolves true at once for a fresh probe, and with the one in flight otherwise", async () => {
    let now = 10_000;
    const probes = new HostProbes(() => now);
    await probes.get("ns/h1", 0, async () => at(10_000));
    await expect(probes.answered("ns/h1", 1_000)).resolves.toBe(true);
    now = 20_000;
    let answer!: (p: HostProbe) => void;
    void probes.get("ns/h1", 0, () => new Promise<HostProbe>((r) => (answer = r)));
    let got: boolean | undefined;
    void probes.answered("ns/h1", 1_000).then((a) => (got = a));
    await Promise.resolve();
    expect(got).toBeUndefined();
    answer(at(20_000));
    await new Promise((r) => setImmediate(r));
    expect(got).toBe(true);
  });

  it("waits for the next probe taken, and says false when that probe fails", async () => {
    const probes = new HostProbes(() => 0);
    const next = probes.answered("ns/h2", 1_000);
    await probes.get("ns/h2", 0, () => Promise.reject(new Error("unreachable"))).catch(() => undefined);
    await expect(next).resolves.toBe(false);
    const again = probes.answered("ns/h2", 1_000);
    await probes.get("ns/h2", 0, async () => at(0));
    await expect(again).resolves.toBe(true);
  });
});
