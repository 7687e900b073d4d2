import { describe, expect, it } from "vitest";
import { localRunner, shellJoin } from "./runner.js";

describe("localRunner", () => {
  it("returns the command's exit code and output, with stdin", async () => {
    expect(await localRunner.run(["sh", "-c", "cat; echo err >&2; exit 3"], { stdin: "in\n" })).toEqual({ code: 3, stdout: "in\n", stderr: "err\n" });
  });

  it("rejects a command that outlives its timeout, naming it", async () => {
    await expect(localRunner.run(["sleep", "5"], { timeoutMs: 100 })).rejects.toThrow('command "sleep 5" did not finish within 100 ms; it was killed');
  });
});

describe("shellJoin", () => {
  it("quotes every word that is not plainly safe", () => {
    expect(shellJoin(["echo", "a b", "it's", "$(id)", ""])).toBe(`echo 'a b' 'it'\\''s' '$(id)' ''`);
  });
});
