// The engine on this machine through a local session, for the steps that need no systemd: the
// read and plan, the no-op apply, and a real daemon checker refusing a file (dhcpd is installed
// here). Reload, verify and rollback run against real hosts in test/integration/faults.test.ts.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RenderedFile } from "../render/types.js";
import { applyHostFiles } from "./engine.js";
import { localHostSession } from "./local-session.js";

const session = localHostSession("local");
let dir: string;
const sha = (text: string) => createHash("sha256").update(text).digest("hex");

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ddi-ha-apply-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function dhcpdInclude(content: string): RenderedFile {
  return {
    host: "local",
    path: join(dir, "ddi-ha.conf"),
    content,
    mode: 0o640,
    ownership: "owned",
    service: "isc-dhcp-server.service",
    check: { kind: "dhcpd" },
    owner: "default/dhcp",
  };
}

const GOOD = "subnet 198.18.0.0 netmask 255.255.255.0 {\n  range 198.18.0.100 198.18.0.150;\n}\n";
const options = () => ({ workDir: dir, hostLockPath: join(dir, "apply.lock") });

describe("applyHostFiles on this machine", () => {
  it("writes nothing and reloads nothing when the host already has the files", async () => {
    const file = dhcpdInclude(GOOD);
    await writeFile(file.path, GOOD, { mode: 0o640 });
    const before = await stat(file.path, { bigint: true });
    const result = await applyHostFiles(session, [file], options());
    expect(result).toEqual({ host: "local", changed: [], unchanged: [file.path], removed: [], reloaded: [], ok: true, notes: [] });
    expect((await stat(file.path, { bigint: true })).mtimeNs).toBe(before.mtimeNs);
    expect(before.mtimeNs).toBeGreaterThan(0n);
  });

  it("stops at validate when dhcpd itself rejects the file: live file byte-identical, staged file and check dir gone", async () => {
    const file = dhcpdInclude(GOOD);
    await writeFile(file.path, GOOD, { mode: 0o640 });
    const broken = dhcpdInclude(`${GOOD}subnet 198.18.1.0 netmask 255.255.255.0 { range 198.18.1.10 }\n`);
    const result = await applyHostFiles(session, [broken], options());
    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject({ stage: "validate", path: file.path, service: "isc-dhcp-server.service" });
    expect(result.failure!.message).toMatch(/dhcpd -t .* refused .*ddi-ha\.conf \(isc-dhcp-server\.service\) for default\/dhcp on DDIHost local: .*line 4/);
    expect(result.failure!.checkerOutput).toMatch(/line 4/);
    expect(result.changed).toEqual([]);
    expect(sha(await readFile(file.path, "utf8"))).toBe(sha(GOOD));
    expect((await readdir(dir)).sort()).toEqual(["apply.lock", "ddi-ha.conf"]);
  });

  it("removes a backup and a staged file left by an apply that died before its swap, and writes nothing else", async () => {
    const file = dhcpdInclude(GOOD);
    await writeFile(file.path, GOOD, { mode: 0o640 });
    await writeFile(`${file.path}.ddi-ha-bak`, GOOD);
    await writeFile(`${file.path}.ddi-ha-new`, `${GOOD}# staged\n`);
    const result = await applyHostFiles(session, [file], options());
    expect(result).toMatchObject({ ok: true, changed: [], reloaded: [] });
    expect(result.notes.join(" ")).toMatch(/ddi-ha\.conf\.ddi-ha-new, .*ddi-ha\.conf\.ddi-ha-bak, left by an apply that was cut off/);
    expect((await readdir(dir)).sort()).toEqual(["apply.lock", "ddi-ha.conf"]);
  });

  it("refuses to replace a symlink, naming the file and the fix", async () => {
    const real = join(dir, "real.conf");
    await writeFile(real, GOOD);
    const file = dhcpdInclude(`${GOOD}# changed\n`);
    await symlink(real, file.path);
    const result = await applyHostFiles(session, [file], options());
    expect(result.failure).toMatchObject({ stage: "read", path: file.path });
    expect(result.failure!.message).toMatch(/is a symbolic link, not a regular file: .*point the config path at the real file/);
    expect(await readFile(real, "utf8")).toBe(GOOD);
  });

  it("refuses a request for another host before touching anything", async () => {
    const result = await applyHostFiles(session, [{ ...dhcpdInclude(GOOD), host: "elsewhere" }], options());
    expect(result).toMatchObject({ ok: false, failure: { stage: "read", message: expect.stringMatching(/rendered for DDIHost elsewhere, but this apply is for DDIHost local/) } });
    expect(await readdir(dir)).toEqual([]);
  });

  it("reports a busy host at the lock stage, naming the holder", async () => {
    const { acquireHostLock } = await import("./host-lock.js");
    const held = await acquireHostLock(session, { waitMs: 1000, maxHoldMs: 60_000, holder: "another operator", path: join(dir, "apply.lock") });
    try {
      const result = await applyHostFiles(session, [dhcpdInclude(GOOD)], { ...options(), lockWaitMs: 1000 });
      expect(result).toMatchObject({ ok: false, failure: { stage: "lock", message: expect.stringMatching(/held by another operator/) } });
    } finally {
      await held.release();
    }
  });
});

describe("applies to one host at the same time (one transaction, ADR 0034)", () => {
  const at = (name: string, content: string): RenderedFile => ({ ...dhcpdInclude(content), path: join(dir, name), owner: `default/${name}` });

  it("run as one transaction, and each caller gets its own files back", async () => {
    const a = at("a.conf", GOOD);
    const b = at("b.conf", GOOD);
    await writeFile(a.path, GOOD, { mode: 0o640 });
    await writeFile(b.path, GOOD, { mode: 0o640 });
    const [ra, rb] = await Promise.all([applyHostFiles(session, [a], options()), applyHostFiles(session, [b], options())]);
    expect(ra).toMatchObject({ ok: true, unchanged: [a.path], changed: [], reloaded: [] });
    expect(rb).toMatchObject({ ok: true, unchanged: [b.path], changed: [], reloaded: [] });
    expect(ra.notes).toContain("applied in one transaction with 1 other request(s) for this host");
  });

  it("land a refused file on its own caller: the other request is applied alone and succeeds", async () => {
    const good = at("good.conf", GOOD);
    await writeFile(good.path, GOOD, { mode: 0o640 });
    const broken = at("broken.conf", `${GOOD}subnet 198.18.1.0 netmask 255.255.255.0 { range 198.18.1.10 }\n`);
    const [rg, rb] = await Promise.all([applyHostFiles(session, [good], options()), applyHostFiles(session, [broken], options())]);
    expect(rg).toMatchObject({ ok: true, unchanged: [good.path] });
    expect(rg.notes.join(" ")).not.toMatch(/one transaction/);
    expect(rb).toMatchObject({ ok: false, failure: { stage: "validate", path: broken.path } });
    expect(rb.failure!.message).toMatch(/for default\/broken\.conf on DDIHost local/);
    expect((await readdir(dir)).sort()).toEqual(["apply.lock", "good.conf"]);
  });

  it("keep apart requests that want different bytes at one path", async () => {
    const one = at("same.conf", GOOD);
    const other = at("same.conf", `${GOOD}# other\n`);
    await writeFile(one.path, GOOD, { mode: 0o640 });
    const [r1, r2] = await Promise.all([applyHostFiles(session, [one], options()), applyHostFiles(session, [other], options())]);
    expect(r1).toMatchObject({ ok: true, unchanged: [one.path] });
    expect(r1.notes.join(" ")).not.toMatch(/one transaction/);
    // The second runs on its own: it gets as far as asking systemd about the service, which this
    // machine does not run; the live file keeps its bytes.
    expect(r2).toMatchObject({ ok: false, changed: [], failure: { stage: "validate", message: expect.stringMatching(/systemctl show isc-dhcp-server\.service failed/) } });
    expect(r2.notes.join(" ")).not.toMatch(/one transaction/);
    expect(await readFile(one.path, "utf8")).toBe(GOOD);
  });
});
