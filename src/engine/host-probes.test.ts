// The probe request and the drift check against what a probe brought, with plain inputs.
import { describe, expect, it } from "vitest";
import { PENDING_RELOAD_PATH } from "../apply/plan.js";
import type { HostProbe, ProbedFile } from "../observe/index.js";
import { contentSha256 } from "../observe/index.js";
import type { RenderedFile } from "../render/types.js";
import { driftFromProbes } from "./host-probes.js";

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
