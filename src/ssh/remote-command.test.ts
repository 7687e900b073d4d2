import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { localRunner } from "../exec/runner.js";
import {
  PidLineReader,
  effectiveArgv,
  isMissingFile,
  killArgv,
  normalizeSudoResult,
  readFileArgv,
  remoteCommandLine,
  sudoRefusal,
  writeFileArgv,
} from "./remote-command.js";

const dir = mkdtempSync(join(tmpdir(), "ddi-remote-cmd-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NASTY = ["", " ", "it's", '"dq"', "$HOME", "`id`", "$(id)", "a;b", "a|b", "*", "~", "-n", "--", "line\nbreak", "tab\tx", "ü", "\\", "'", "''"];

/** Runs a command line the way sshd does: the login shell's -c. Returns stdout without the PID line. */
async function asSshdWould(shell: string, line: string, stdin?: string): Promise<{ code: number; stdout: string; pid?: number }> {
  const r = await localRunner.run([shell, "-c", line], stdin === undefined ? {} : { stdin });
  const reader = new PidLineReader();
  const stdout = reader.push(Buffer.from(r.stdout)).toString();
  return { code: r.code, stdout, ...(reader.pid ? { pid: reader.pid } : {}) };
}

describe("remoteCommandLine", () => {
  it.each(["sh", "bash"])("delivers every argv word verbatim through %s -c, after a PID line", async (shell) => {
    const line = remoteCommandLine(["printf", "%s\\0", ...NASTY], false);
    const r = await asSshdWould(shell, line);
    expect(r.code).toBe(0);
    expect(r.pid).toBeGreaterThan(1);
    expect(r.stdout.split("\0").slice(0, -1)).toEqual(NASTY);
  });

  it("prefixes sudo -n -- and nothing else", () => {
    expect(effectiveArgv(["cat", "--", "/etc/x y"], true)).toEqual(["sudo", "-n", "--", "cat", "--", "/etc/x y"]);
    expect(effectiveArgv(["true"], false)).toEqual(["true"]);
    expect(remoteCommandLine(["cat", "/etc/x y"], true)).toBe(`sh -c 'echo "$$" && exec "$@"' sh sudo -n -- cat '/etc/x y'`);
    expect(() => effectiveArgv([], false)).toThrow(/empty command/);
  });

  it("reports a missing command as 127, as a shell would", async () => {
    expect((await asSshdWould("sh", remoteCommandLine(["no-such-command-xyz"], false))).code).toBe(127);
  });
});

describe("writeFileArgv and readFileArgv, run by a real sh", () => {
  it("creates parents, writes stdin verbatim and sets the mode", async () => {
    const path = join(dir, "new dir", "it's $x.conf");
    const content = "a\n'quoted' \"dq\" $HOME `id`\nno newline at end";
    const w = await asSshdWould("sh", remoteCommandLine(writeFileArgv(path, 0o640), false), content);
    expect(w.code).toBe(0);
    expect(readFileSync(path, "utf8")).toBe(content);
    expect(statSync(path).mode & 0o7777).toBe(0o640);
    const r = await asSshdWould("sh", remoteCommandLine(readFileArgv(path), false));
    expect(r.stdout).toBe(content);
  });

  it("tightens the mode of an existing file", async () => {
    const path = join(dir, "existing");
    writeFileSync(path, "old", { mode: 0o644 });
    await asSshdWould("sh", remoteCommandLine(writeFileArgv(path, 0o600), false), "new");
    expect(readFileSync(path, "utf8")).toBe("new");
    expect(statSync(path).mode & 0o7777).toBe(0o600);
  });

  it("tells a missing file from other read failures", async () => {
    const missing = await localRunner.run(readFileArgv(join(dir, "nope")));
    expect(isMissingFile(missing)).toBe(true);
    const isDir = await localRunner.run(readFileArgv(dir));
    expect(isMissingFile(isDir)).toBe(false);
  });

  it.each([
    [() => readFileArgv("relative/path"), /must be absolute/],
    [() => writeFileArgv("etc/x", 0o644), /must be absolute/],
    [() => writeFileArgv("/etc/x\0y", 0o644), /must be absolute/],
    [() => writeFileArgv("/etc/x", 0o10000), /file mode must be 0\.\.07777/],
    [() => writeFileArgv("/etc/x", -1), /file mode/],
    [() => writeFileArgv("/etc/x", 1.5), /file mode/],
    [() => killArgv(1, "TERM"), /refusing to signal pid 1/],
  ])("rejects bad input %#", (fn, message) => {
    expect(fn).toThrow(message);
  });
});

describe("sudoRefusal", () => {
  it.each([
    ["sudo: a password is required\n", 1, "sudo: a password is required"],
    ["sudo: a terminal is required to read the password; either use the -S option\n", 1, "sudo: a terminal is required to read the password; either use the -S option"],
    ["nosudo is not in the sudoers file.\nsudo: nosudo is not in the sudoers file.  This incident will be reported.\n", 1, "sudo: nosudo is not in the sudoers file.  This incident will be reported."],
    ["Sorry, user ddi is not allowed to execute '/usr/bin/cat /etc/shadow' as root on h1.\n", 1, "Sorry, user ddi is not allowed to execute '/usr/bin/cat /etc/shadow' as root on h1."],
    ["sh: 1: exec: sudo: not found\n", 127, "sudo is not installed"],
  ])("recognizes %j", (stderr, code, expected) => {
    expect(sudoRefusal({ code, stderr })).toBe(expected);
  });

  it.each([
    ["cat: /x: No such file or directory\n", 1],
    ["sudo: a password is required\n", 0], // a command that printed this and succeeded
    ["", 1],
    ["sh: 1: exec: foo: not found\n", 127],
    ["sudo: foo: command not found\n", 1], // the command is missing, not the right
  ])("leaves a command's own failure alone: %j", (stderr, code) => {
    expect(sudoRefusal({ code, stderr })).toBeUndefined();
  });

  it("maps sudo's command-not-found to the shell's 127", () => {
    expect(normalizeSudoResult({ code: 1, stderr: "sudo: foo: command not found\n" }).code).toBe(127);
    expect(normalizeSudoResult({ code: 1, stderr: "cat: x: No such file\n" }).code).toBe(1);
  });
});

describe("PidLineReader", () => {
  it("strips the PID line even when it arrives in pieces, and passes the rest untouched", async () => {
    const r = new PidLineReader();
    expect(r.push(Buffer.from("12")).length).toBe(0);
    expect(r.push(Buffer.from("34\nhello ")).toString()).toBe("hello ");
    expect(r.push(Buffer.from("world\n")).toString()).toBe("world\n");
    expect(r.pid).toBe(1234);
    await expect(r.pidLine).resolves.toBe(1234);
  });

  it("resolves pidLine with undefined when output ends first", async () => {
    const r = new PidLineReader();
    r.end();
    await expect(r.pidLine).resolves.toBeUndefined();
  });
});
