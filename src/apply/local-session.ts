// A HostSession on this machine (no SSH): lets the engine's file steps, its host lock and the
// daemon checkers run for real in unit tests. Not for production: it cannot forward ports.
import { spawn } from "node:child_process";
import { type CommandStream, type HostSession, localHostIO } from "../exec/host-io.js";
import type { CommandResult } from "../exec/runner.js";

export function localHostSession(hostName: string): HostSession {
  return {
    hostName,
    run: localHostIO.run,
    readFile: localHostIO.readFile,
    writeFile: localHostIO.writeFile,
    async stream(argv, onLine): Promise<CommandStream> {
      const [cmd, ...args] = argv;
      if (!cmd) throw new Error("empty command");
      const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      let partial = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        partial += d.toString();
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) onLine(line);
      });
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<CommandResult>((resolve) => {
        child.on("error", (err) => resolve({ code: 127, stdout, stderr: stderr + String(err) }));
        child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
      });
      return {
        done,
        async stop() {
          // Like an SSH channel closing: our end of the pipe goes away, and the process is told to end.
          child.stdout.destroy();
          child.kill("SIGTERM");
        },
      };
    },
    async forward() {
      throw new Error("localHostSession cannot forward ports");
    },
  };
}
