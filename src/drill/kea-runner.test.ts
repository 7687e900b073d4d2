import { execFile, spawnSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { KEA_CANCEL_SCRIPT, armKeaCancelArgv, disarmKeaCancelArgv } from "./kea-runner.js";

describe("the host-side cancel of a Kea drill", () => {
  it("arms a transient timer named after the run, with the agent's address, port and the cancel command as argv", () => {
    const argv = armKeaCancelArgv("ab12", 60, "http://198.18.0.12:8000/");
    expect(argv.slice(4, 9)).toEqual(["ddi-ha-drill-ab12", "60s", "198.18.0.12", "8000", '{"command":"ha-maintenance-cancel","service":["dhcp4"]}']);
    expect(armKeaCancelArgv("ab12", 60, "http://[2001:db8::1]:8001/").slice(6, 8)).toEqual(["2001:db8::1", "8001"]);
    expect(() => armKeaCancelArgv("AB;rm", 60, "http://198.18.0.12:8000/")).toThrow(/run ID/);
    expect(() => armKeaCancelArgv("ab12", 60, "https://198.18.0.12:8000/")).toThrow(/https/);
    expect(disarmKeaCancelArgv("ab12").at(-1)).toBe("ddi-ha-drill-ab12");
    // systemd-run expands ${...} in the command it runs: the script must hold none.
    expect(argv.at(-1)).toBe(KEA_CANCEL_SCRIPT);
    expect(KEA_CANCEL_SCRIPT).not.toContain("${");
  });

  it("the cancel script POSTs the command to the agent over /dev/tcp, and refuses an address that is not an IP literal", async () => {
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        bodies.push(`${req.method} ${req.headers["content-type"]} ${body}`);
        res.setHeader("content-type", "application/json");
        res.end('[{"result":0,"text":"Server maintenance successfully canceled."}]');
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      const body = '{"command":"ha-maintenance-cancel","service":["dhcp4"]}';
      // Async: the listener answers on this process's event loop.
      const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        execFile("bash", ["-c", KEA_CANCEL_SCRIPT, "bash", "127.0.0.1", String(port), body], { timeout: 15_000 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }));
      });
      expect(out.code).toBe(0);
      expect(out.stdout).toContain("successfully canceled");
      expect(bodies).toEqual([`POST application/json ${body}`]);
    } finally {
      server.close();
    }
    const bad = spawnSync("bash", ["-c", KEA_CANCEL_SCRIPT, "bash", "$(id)", "8000", "{}"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("bad agent address");
  });
});
