import { describe, expect, it } from "vitest";
import { ensureIncludeLine, removeIncludeLine } from "../daemons/dhcpd/index.js";
import type { RenderedFile } from "../render/types.js";
import {
  type LiveFile,
  PlanError,
  checkGroups,
  formatPendingReload,
  ownershipOf,
  parentDirectories,
  parsePendingReload,
  pendingReloadOf,
  parseSha256sumOutput,
  parseStatOutput,
  planChanges,
  rebasePatchedContent,
  servicesToReload,
  servicesToStop,
  sha256,
  shapeResult,
  validateRequest,
} from "./plan.js";
import type { RemovedFile } from "./types.js";

const ops = { ensure: ensureIncludeLine, remove: removeIncludeLine };
const MARKER = "# managed by ddi-ha-operator: default/dhcp";
const INCLUDE = `include "/etc/dhcp/ddi-ha/default-dhcp.conf"; ${MARKER}`;

function file(over: Partial<RenderedFile> = {}): RenderedFile {
  return {
    host: "h1",
    path: "/etc/keepalived/ddi-ha.d/default-vip.conf",
    content: "vrrp_instance VI_1 {}\n",
    mode: 0o644,
    ownership: "owned",
    service: "keepalived.service",
    check: { kind: "keepalived" },
    owner: "default/vip",
    ...over,
  };
}

const dhcpdMain = (over: Partial<RenderedFile> = {}) =>
  file({
    path: "/etc/dhcp/dhcpd.conf",
    content: `ddns-update-style none;\n${INCLUDE}\n`,
    ownership: "patched",
    patch: { marker: MARKER, line: INCLUDE },
    service: "isc-dhcp-server.service",
    check: { kind: "dhcpd" },
    owner: "default/dhcp",
    ...over,
  });

const regular = (path: string, content: string | undefined, stat: Partial<NonNullable<LiveFile["stat"]>> = {}): [string, LiveFile] => [
  path,
  content === undefined ? { path, content } : { path, content, stat: { type: "regular file", mode: 0o644, uid: 0, gid: 0, ...stat } },
];

describe("validateRequest refuses requests the engine must never act on", () => {
  const cases: { name: string; files: RenderedFile[]; remove?: RemovedFile[]; message: RegExp }[] = [
    { name: "a file for another host", files: [file({ host: "h2" })], message: /rendered for DDIHost h2, but this apply is for DDIHost h1/ },
    { name: "a relative path", files: [file({ path: "etc/x.conf" })], message: /etc\/x\.conf \(default\/vip\) is not a plain absolute path/ },
    { name: "a path with ..", files: [file({ path: "/etc/../shadow" })], message: /is not a plain absolute path/ },
    { name: "a path with a space", files: [file({ path: "/etc/a b.conf" })], message: /is not a plain absolute path/ },
    { name: "the same path twice", files: [file(), file({ owner: "default/other" })], message: /appears twice in one apply to DDIHost h1/ },
    {
      name: "a path written and removed",
      files: [file()],
      remove: [{ path: file().path, service: "keepalived.service", ownership: "owned" }],
      message: /appears twice/,
    },
    { name: "a patched file without marker", files: [file({ ownership: "patched" })], message: /patched file without its marker/ },
  ];
  it.each(cases)("$name", ({ files, remove, message }) => {
    expect(() => validateRequest("h1", files, remove ?? [])).toThrow(message);
  });

  it("accepts a normal request", () => {
    expect(() => validateRequest("h1", [file(), dhcpdMain()], [{ path: "/etc/keepalived/ddi-ha.d/old.conf", service: "keepalived.service", ownership: "owned" }])).not.toThrow();
  });
});

describe("planChanges", () => {
  it("leaves a file alone when the host already has the desired content", () => {
    const live = new Map([regular(file().path, file().content)]);
    const plan = planChanges("h1", [file()], [], live, ops);
    expect(plan.changes).toEqual([]);
    expect(plan.unchanged).toEqual([file().path]);
  });

  it("writes a changed file with the rendered mode, root owner and the live group", () => {
    const live = new Map([regular(file().path, "old\n", { mode: 0o600, uid: 1000, gid: 117 })]);
    const plan = planChanges("h1", [file({ mode: 0o640 })], [], live, ops);
    expect(plan.changes).toEqual([
      expect.objectContaining({ action: "write", path: file().path, existed: true, mode: 0o640, uid: 0, gid: 117, liveHash: sha256("old\n"), desiredHash: sha256(file().content) }),
    ]);
  });

  it("creates a missing file as root:root", () => {
    const plan = planChanges("h1", [file()], [], new Map(), ops);
    expect(plan.changes).toEqual([expect.objectContaining({ action: "write", existed: false, uid: 0, gid: 0, mode: 0o644 })]);
    expect(plan.changes[0]).not.toHaveProperty("liveHash");
  });

  it("rebases a patched file on the user's live content and keeps the user's owner and mode", () => {
    const userNow = "# the user edited this after our last render\nddns-update-style none;\noption domain-name \"lab\";\n";
    const live = new Map([regular("/etc/dhcp/dhcpd.conf", userNow, { mode: 0o640, uid: 0, gid: 4 })]);
    const plan = planChanges("h1", [dhcpdMain()], [], live, ops);
    const write = plan.changes[0];
    expect(write).toMatchObject({ action: "write", mode: 0o640, uid: 0, gid: 4 });
    expect(write?.action === "write" && write.file.content).toBe(`${userNow}${INCLUDE}\n`);
  });

  it("counts a patched file whose live content already has the line as unchanged, whatever the rendered base was", () => {
    const userNow = `subnet 198.18.0.0 netmask 255.255.255.0 {}\n${INCLUDE}\n# trailing user comment\n`;
    const live = new Map([regular("/etc/dhcp/dhcpd.conf", userNow)]);
    expect(planChanges("h1", [dhcpdMain({ content: "stale base\n" })], [], live, ops).changes).toEqual([]);
  });

  it("replaces a stale marked line in place", () => {
    const userNow = `a;\ninclude "/old/path.conf"; ${MARKER}\nb;\n`;
    const plan = planChanges("h1", [dhcpdMain()], [], new Map([regular("/etc/dhcp/dhcpd.conf", userNow)]), ops);
    expect(plan.changes[0]?.action === "write" && plan.changes[0].file.content).toBe(`a;\n${INCLUDE}\nb;\n`);
  });

  it("deletes an owned file on removal, and counts an absent one as done", () => {
    const live = new Map([regular("/etc/keepalived/ddi-ha.d/a.conf", "x\n")]);
    const remove: RemovedFile[] = [
      { path: "/etc/keepalived/ddi-ha.d/a.conf", service: "keepalived.service", ownership: "owned", owner: "default/a" },
      { path: "/etc/keepalived/ddi-ha.d/gone.conf", service: "keepalived.service", ownership: "owned" },
    ];
    const plan = planChanges("h1", [], remove, live, ops);
    expect(plan.changes).toEqual([{ action: "delete", path: "/etc/keepalived/ddi-ha.d/a.conf", service: "keepalived.service", liveHash: sha256("x\n"), owner: "default/a" }]);
    expect(plan.unchanged).toEqual(["/etc/keepalived/ddi-ha.d/gone.conf"]);
  });

  it("removes only the marked line of a patched file, without a patch for the checker to re-add", () => {
    const userNow = `a;\n${INCLUDE}\nb;\n`;
    const remove: RemovedFile[] = [{ path: "/etc/dhcp/dhcpd.conf", service: "isc-dhcp-server.service", ownership: "patched", patch: { marker: MARKER }, check: { kind: "dhcpd" } }];
    const plan = planChanges("h1", [], remove, new Map([regular("/etc/dhcp/dhcpd.conf", userNow)]), ops);
    expect(plan.changes).toHaveLength(1);
    const write = plan.changes[0]!;
    expect(write).toMatchObject({ action: "write", forRemoval: true, existed: true });
    expect(write.action === "write" && write.file.content).toBe("a;\nb;\n");
    expect(write.action === "write" && write.file.patch).toBeUndefined();
    expect(write.action === "write" && write.file.check).toEqual({ kind: "dhcpd" });
  });

  it("counts a patched file without the line as already removed", () => {
    const remove: RemovedFile[] = [{ path: "/etc/dhcp/dhcpd.conf", service: "isc-dhcp-server.service", ownership: "patched", patch: { marker: MARKER } }];
    expect(planChanges("h1", [], remove, new Map([regular("/etc/dhcp/dhcpd.conf", "a;\n")]), ops).unchanged).toEqual(["/etc/dhcp/dhcpd.conf"]);
  });

  const refusals: { name: string; live: LiveFile; target: RenderedFile; message: RegExp }[] = [
    {
      name: "a symlink target",
      live: { path: "/etc/dhcp/dhcpd.conf", content: "a;\n", stat: { type: "symbolic link", mode: 0o777, uid: 0, gid: 0 } },
      target: dhcpdMain(),
      message: /\/etc\/dhcp\/dhcpd\.conf on DDIHost h1 is a symbolic link, not a regular file/,
    },
    {
      name: "a directory target",
      live: { path: file().path, content: "", stat: { type: "directory", mode: 0o755, uid: 0, gid: 0 } },
      target: file(),
      message: /is a directory, not a regular file/,
    },
    {
      name: "a patched file that is not UTF-8",
      live: { path: "/etc/dhcp/dhcpd.conf", content: "# caf\uFFFD\n", stat: { type: "regular file", mode: 0o644, uid: 0, gid: 0 } },
      target: dhcpdMain(),
      message: /is not valid UTF-8; the operator only edits one line of UTF-8 files/,
    },
  ];
  it.each(refusals)("refuses $name", ({ live, target, message }) => {
    expect(() => planChanges("h1", [target], [], new Map([[live.path, live]]), ops)).toThrow(PlanError);
    expect(() => planChanges("h1", [target], [], new Map([[live.path, live]]), ops)).toThrow(message);
  });

  it("rebasePatchedContent creates the file from the line alone when it does not exist", () => {
    expect(rebasePatchedContent(dhcpdMain(), undefined, ops)).toBe(`${INCLUDE}\n`);
  });
});

describe("ownershipOf", () => {
  const live = (stat?: NonNullable<LiveFile["stat"]>): LiveFile => ({ path: "/x", content: stat ? "x" : undefined, ...(stat ? { stat } : {}) });
  it.each([
    { ownership: "owned" as const, stat: undefined, want: { mode: 0o640, uid: 0, gid: 0 } },
    { ownership: "owned" as const, stat: { type: "regular file", mode: 0o600, uid: 5, gid: 117 }, want: { mode: 0o640, uid: 0, gid: 117 } },
    { ownership: "shared" as const, stat: { type: "regular file", mode: 0o600, uid: 5, gid: 117 }, want: { mode: 0o640, uid: 0, gid: 117 } },
    { ownership: "patched" as const, stat: { type: "regular file", mode: 0o600, uid: 5, gid: 117 }, want: { mode: 0o600, uid: 5, gid: 117 } },
    { ownership: "patched" as const, stat: undefined, want: { mode: 0o640, uid: 0, gid: 0 } },
  ])("$ownership with live $stat", ({ ownership, stat, want }) => {
    expect(ownershipOf(ownership, 0o640, live(stat))).toEqual(want);
  });
});

describe("servicesToReload", () => {
  it("orders DHCP servers before keepalived, once each, and adds pending ones", () => {
    const plan = planChanges(
      "h1",
      [file(), file({ path: "/etc/keepalived/keepalived.conf", ownership: "shared" }), dhcpdMain()],
      [],
      new Map(),
      ops,
    );
    expect(servicesToReload(plan.changes)).toEqual(["isc-dhcp-server.service", "keepalived.service"]);
    expect(servicesToReload([], ["kea-ctrl-agent.service"])).toEqual(["kea-ctrl-agent.service"]);
    expect(servicesToReload(plan.changes, ["kea-dhcp4-server.service"])).toEqual(["isc-dhcp-server.service", "kea-dhcp4-server.service", "keepalived.service"]);
  });

  it("reloads nothing for a file the daemon follows by itself (the maintenance flag), unless something else of it changed", () => {
    const flag = file({ path: "/var/lib/ddi-ha/keepalived-maintenance", ownership: "shared", content: "1\n", check: { kind: "none" }, followedByDaemon: true });
    expect(servicesToReload(planChanges("h1", [flag], [], new Map(), ops).changes)).toEqual([]);
    const both = planChanges("h1", [flag, file({ path: "/etc/keepalived/keepalived.conf", ownership: "shared" })], [], new Map(), ops);
    expect(servicesToReload(both.changes)).toEqual(["keepalived.service"]);
  });
});

describe("servicesToStop", () => {
  const unpatch = (over: Partial<RemovedFile> = {}): RemovedFile => ({
    path: "/etc/dhcp/dhcpd.conf",
    service: "isc-dhcp-server.service",
    ownership: "patched",
    patch: { marker: MARKER },
    owner: "default/dhcp",
    stopServiceIf: (remaining) => !remaining.includes("subnet"),
    ...over,
  });

  it("judges the patched file as the removal leaves it: nothing left to serve stops the service", () => {
    const live = new Map([regular("/etc/dhcp/dhcpd.conf", `ddns-update-style none;\n${INCLUDE}\n`)]);
    const plan = planChanges("h1", [], [unpatch()], live, ops);
    expect(servicesToStop(plan.changes, [unpatch()], live)).toEqual(["isc-dhcp-server.service"]);
    const kept = new Map([regular("/etc/dhcp/dhcpd.conf", `subnet 198.18.5.0 netmask 255.255.255.0 { }\n${INCLUDE}\n`)]);
    expect(servicesToStop(planChanges("h1", [], [unpatch()], kept, ops).changes, [unpatch()], kept)).toEqual([]);
  });

  it("judges the live file when the line is gone already (a retry), a missing file as empty; adds the caller's, in service order", () => {
    const gone = new Map([regular("/etc/dhcp/dhcpd.conf", "ddns-update-style none;\n")]);
    expect(servicesToStop(planChanges("h1", [], [unpatch()], gone, ops).changes, [unpatch()], gone)).toEqual(["isc-dhcp-server.service"]);
    expect(servicesToStop([], [unpatch()], new Map())).toEqual(["isc-dhcp-server.service"]);
    expect(servicesToStop([], [unpatch({ stopServiceIf: undefined })], gone, ["kea-dhcp4-server.service"])).toEqual(["kea-dhcp4-server.service"]);
    expect(servicesToStop([], [unpatch()], gone, ["kea-dhcp4-server.service"])).toEqual(["isc-dhcp-server.service", "kea-dhcp4-server.service"]);
  });
});

describe("checkGroups", () => {
  const main = file({ path: "/etc/keepalived/keepalived.conf", ownership: "shared", content: "include x\n" });
  const kea4 = file({ path: "/etc/kea/kea-dhcp4.conf", service: "kea-dhcp4-server.service", check: { kind: "kea-dhcp4" } });
  const agent = file({ path: "/etc/kea/kea-ctrl-agent.conf", service: "kea-ctrl-agent.service", check: { kind: "kea-ctrl-agent" } });
  const batch = (kind: string) => (kind.startsWith("kea") ? "kea" : kind);

  it("gives a checker every file of a changed kind, including unchanged ones, and skips unchanged kinds", () => {
    const live = new Map([regular(main.path, main.content), regular(kea4.path, kea4.content), regular(agent.path, agent.content)]);
    const desired = [main, file(), kea4, agent];
    const plan = planChanges("h1", desired, [], live, ops);
    const groups = checkGroups(desired, plan.changes, batch);
    expect([...groups.keys()]).toEqual(["keepalived"]);
    expect(groups.get("keepalived")!.map((f) => f.path)).toEqual([main.path, file().path]);
  });

  it("hands kea-dhcp4 and kea-ctrl-agent files to one batch when either changed", () => {
    const live = new Map([regular(kea4.path, kea4.content)]);
    const plan = planChanges("h1", [kea4, agent], [], live, ops);
    expect(checkGroups([kea4, agent], plan.changes, batch).get("kea")!.map((f) => f.path)).toEqual([kea4.path, agent.path]);
  });

  it("checks the rebased content of patched files and the result of a line removal", () => {
    const live = new Map([regular("/etc/dhcp/dhcpd.conf", `user;\n${INCLUDE}\n`)]);
    const remove: RemovedFile[] = [{ path: "/etc/dhcp/dhcpd.conf", service: "isc-dhcp-server.service", ownership: "patched", patch: { marker: MARKER }, check: { kind: "dhcpd" } }];
    const plan = planChanges("h1", [], remove, live, ops);
    const group = checkGroups([], plan.changes).get("dhcpd")!;
    expect(group.map((f) => f.content)).toEqual(["user;\n"]);
  });

  it("skips files with check none", () => {
    const none = file({ check: { kind: "none" } });
    const plan = planChanges("h1", [none], [], new Map(), ops);
    expect(checkGroups([none], plan.changes).size).toBe(0);
  });
});

describe("host output parsers", () => {
  it("parseStatOutput reads stat -c '%n|%F|%a|%u|%g' and skips error lines", () => {
    const out = "/etc/a.conf|regular file|644|0|0\n/etc/b|symbolic link|777|0|0\n/etc/c|regular empty file|640|0|117\n";
    const stats = parseStatOutput(out);
    expect(stats.get("/etc/a.conf")).toEqual({ type: "regular file", mode: 0o644, uid: 0, gid: 0 });
    expect(stats.get("/etc/b")?.type).toBe("symbolic link");
    expect(stats.get("/etc/c")).toEqual({ type: "regular empty file", mode: 0o640, uid: 0, gid: 117 });
    expect(stats.size).toBe(3);
  });

  it("parseSha256sumOutput reads text and binary mode lines", () => {
    const h = "a".repeat(64);
    const g = "b".repeat(64);
    expect(parseSha256sumOutput(`${h}  /etc/a.conf\n${g} */etc/b.conf\nsha256sum: /x: No such file or directory\n`)).toEqual(
      new Map([
        ["/etc/a.conf", h],
        ["/etc/b.conf", g],
      ]),
    );
  });

  it("pending-reload markers round-trip and ignore anything that is not one of our units or a plain path", () => {
    const text = formatPendingReload({
      services: ["keepalived.service", "isc-dhcp-server.service"],
      files: [
        { path: "/etc/keepalived/ddi-ha.d/a.conf", existed: true },
        { path: "/etc/dhcp/ddi-ha/b.conf", existed: false },
      ],
    });
    expect(text).toBe("isc-dhcp-server.service\nkeepalived.service\nfile existed /etc/keepalived/ddi-ha.d/a.conf\nfile created /etc/dhcp/ddi-ha/b.conf\n");
    expect(parsePendingReload(text)).toEqual({
      services: ["isc-dhcp-server.service", "keepalived.service"],
      files: [
        { path: "/etc/keepalived/ddi-ha.d/a.conf", existed: true },
        { path: "/etc/dhcp/ddi-ha/b.conf", existed: false },
      ],
    });
    expect(parsePendingReload("sshd.service\n\ngarbage\u0000\nkeepalived.service\nfile existed /etc/../x\nfile existed rel/x\nfile gone /etc/x")).toEqual({
      services: ["keepalived.service"],
      files: [],
    });
    // An older operator's marker: units only.
    expect(parsePendingReload("keepalived.service\n")).toEqual({ services: ["keepalived.service"], files: [] });
    expect(parsePendingReload(undefined)).toEqual({ services: [], files: [] });
  });

  it("the marker written before the swap names every change; an unfinished apply's entries win (their backups are the verified files)", () => {
    const plan = planChanges("h1", [file(), file({ path: "/etc/keepalived/new.conf" })], [], new Map([regular(file().path, "old")]), ops);
    expect(pendingReloadOf(["keepalived.service"], plan.changes)).toEqual({
      services: ["keepalived.service"],
      files: [
        { path: file().path, existed: true },
        { path: "/etc/keepalived/new.conf", existed: false },
      ],
    });
    // The dead process had created file(): undoing both applies deletes it, whatever this plan found.
    expect(pendingReloadOf(["keepalived.service"], plan.changes, [{ path: file().path, existed: false }]).files).toEqual([
      { path: file().path, existed: false },
      { path: "/etc/keepalived/new.conf", existed: false },
    ]);
  });

  it("parentDirectories lists the parents of files that do not exist yet", () => {
    const plan = planChanges("h1", [file(), file({ path: "/etc/keepalived/keepalived.conf" }), file({ path: "/etc/dhcp/x.conf" })], [], new Map([regular("/etc/dhcp/x.conf", "y")]), ops);
    expect(parentDirectories(plan.changes)).toEqual(["/etc/keepalived", "/etc/keepalived/ddi-ha.d"]);
  });
});

describe("shapeResult", () => {
  it("reports written files as changed and deletions and line removals as removed, sorted", () => {
    const live = new Map([regular("/etc/z.conf", "old"), regular("/etc/dhcp/dhcpd.conf", `u;\n${INCLUDE}\n`), regular("/etc/gone.conf", "g")]);
    const remove: RemovedFile[] = [
      { path: "/etc/gone.conf", service: "keepalived.service", ownership: "owned" },
      { path: "/etc/dhcp/dhcpd.conf", service: "isc-dhcp-server.service", ownership: "patched", patch: { marker: MARKER } },
    ];
    const plan = planChanges("h1", [file({ path: "/etc/z.conf" }), file({ path: "/etc/a.conf" })], remove, live, ops);
    const result = shapeResult({ host: "h1", plan, swapped: plan.changes, reloaded: ["isc-dhcp-server.service", "keepalived.service"] });
    expect(result).toEqual({
      host: "h1",
      changed: ["/etc/a.conf", "/etc/z.conf"],
      unchanged: [],
      removed: ["/etc/dhcp/dhcpd.conf", "/etc/gone.conf"],
      reloaded: ["isc-dhcp-server.service", "keepalived.service"],
      ok: true,
      notes: [],
    });
  });

  it("is not ok with a failure, and carries the rollback verdict", () => {
    const result = shapeResult({
      host: "h1",
      plan: { changes: [], unchanged: ["/etc/a"] },
      swapped: [],
      reloaded: [],
      failure: { stage: "validate", path: "/etc/a", message: "refused" },
      rolledBack: { ok: true, message: "restored /etc/a" },
    });
    expect(result).toMatchObject({ ok: false, failure: { stage: "validate" }, rolledBack: { ok: true }, unchanged: ["/etc/a"], changed: [] });
  });
});
