// The rendered notify hook run by the real /bin/sh (as keepalived runs it: configured path plus
// INSTANCE|GROUP NAME STATE PRIORITY), and the parser of the records it leaves.
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localRunner } from "../../exec/runner.js";
import { keepalivedStateFilePath, parseKeepalivedStateFile, renderKeepalivedNotifyScript } from "./index.js";

describe("parseKeepalivedStateFile", () => {
  it.each([
    ["MASTER 150 1795335077.123456789\n", { state: "MASTER", priority: 150, epochSeconds: 1795335077.123456789 }],
    ["BACKUP 100 1795335077", { state: "BACKUP", priority: 100, epochSeconds: 1795335077 }],
    ["FAULT 0 1795335077.5\n", { state: "FAULT", priority: 0, epochSeconds: 1795335077.5 }],
    ["STOP 150 1795335077.000000001\n", { state: "STOP", priority: 150, epochSeconds: 1795335077.000000001 }],
  ])("reads %j", (text, expected) => {
    expect(parseKeepalivedStateFile(text)).toEqual(expected);
  });

  it.each([
    ["empty", ""],
    ["a state keepalived never records here", "DELETED 100 1795335077\n"],
    ["the fifo format", 'INSTANCE "VI_1" MASTER 100\n'],
    ["no stamp", "MASTER 150\n"],
    ["a priority above 255", "MASTER 256 1795335077\n"],
    ["two records", "MASTER 150 1\nBACKUP 100 2\n"],
    ["lower-case state", "master 150 1795335077\n"],
  ])("refuses %s", (_name, text) => {
    expect(parseKeepalivedStateFile(text)).toBeUndefined();
  });

  it("puts the record of an instance under /run/ddi-ha/keepalived and refuses path tricks", () => {
    expect(keepalivedStateFilePath("ddiha_ns_name_v4")).toBe("/run/ddi-ha/keepalived/ddiha_ns_name_v4.state");
    expect(() => keepalivedStateFilePath("../etc/passwd")).toThrow(/not a plain identifier/);
  });
});

describe("the rendered notify hook under /bin/sh", () => {
  let dir = "";
  let stateDir = "";
  let script = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ka-notify-"));
    stateDir = join(dir, "state");
    script = join(dir, "keepalived-notify");
    await writeFile(script, renderKeepalivedNotifyScript(stateDir), { mode: 0o755 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const notify = async (...args: string[]) => {
    const r = await localRunner.run([script, ...args]);
    expect(r, `${args.join(" ")}`).toMatchObject({ code: 0, stderr: "" });
  };
  const record = async (name: string) => readFile(join(stateDir, `${name}.state`), "utf8");

  it("records state, priority and a nanosecond stamp, and replaces it on the next transition", async () => {
    const before = Date.now() / 1000;
    await notify("INSTANCE", "vi_a", "BACKUP", "100");
    const first = parseKeepalivedStateFile(await record("vi_a"));
    expect(first).toMatchObject({ state: "BACKUP", priority: 100 });
    expect(first!.epochSeconds).toBeGreaterThanOrEqual(Math.floor(before));
    await notify("INSTANCE", "vi_a", "MASTER", "150");
    const second = parseKeepalivedStateFile(await record("vi_a"));
    expect(second).toMatchObject({ state: "MASTER", priority: 150 });
    expect(second!.epochSeconds).toBeGreaterThan(first!.epochSeconds);
  });

  it("accepts arguments configured before keepalived's four", async () => {
    await notify("--extra", "INSTANCE", "vi_b", "FAULT", "0");
    expect(parseKeepalivedStateFile(await record("vi_b"))).toMatchObject({ state: "FAULT", priority: 0 });
  });

  it("keeps a record stamped just after its own stamp (a later transition whose hook finished first)", async () => {
    const later = `MASTER 150 ${(Date.now() / 1000 + 1).toFixed(9)}\n`;
    await writeFile(join(stateDir, "vi_c.state"), later);
    await notify("INSTANCE", "vi_c", "BACKUP", "100");
    expect(await record("vi_c")).toBe(later);
  });

  it("replaces a record stamped far in the future (the clock was stepped back) or unreadable", async () => {
    await writeFile(join(stateDir, "vi_f.state"), "MASTER 150 9999999999.000000000\n");
    await notify("INSTANCE", "vi_f", "BACKUP", "100");
    expect(parseKeepalivedStateFile(await record("vi_f"))).toMatchObject({ state: "BACKUP" });
    await writeFile(join(stateDir, "vi_f.state"), "garbage\n");
    await notify("INSTANCE", "vi_f", "FAULT", "0");
    expect(parseKeepalivedStateFile(await record("vi_f"))).toMatchObject({ state: "FAULT" });
  });

  it("removes the record when a reload deletes the instance", async () => {
    await notify("INSTANCE", "vi_d", "MASTER", "150");
    await notify("INSTANCE", "vi_d", "DELETED", "150");
    expect(await readdir(stateDir)).not.toContain("vi_d.state");
  });

  it("ignores groups, unknown states and names that are not plain identifiers", async () => {
    await notify("GROUP", "g1", "MASTER", "0");
    await notify("INSTANCE", "vi_e", "MASTER_RX_LOWER_PRI", "150");
    await notify("INSTANCE", "../escape", "MASTER", "150");
    await notify("INSTANCE", ".hidden", "MASTER", "150");
    await notify("too", "few");
    const files = await readdir(stateDir);
    expect(files.filter((f) => !f.startsWith(".lock")).sort()).toEqual(["vi_a.state", "vi_b.state", "vi_c.state", "vi_f.state"]);
  });

  it("leaves no temp files behind", async () => {
    expect((await readdir(stateDir)).filter((f) => f.includes(".state."))).toEqual([]);
  });
});
