// One way to run a command, whether locally (tests, `ddi-ha render --check`) or on a host over
// SSH. Commands are argv arrays, never shell strings: the SSH runner quotes each word itself.
import { spawn } from "node:child_process";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string;
  timeoutMs?: number;
}

export interface CommandRunner {
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** Runs commands on this machine without a shell. */
export const localRunner: CommandRunner = {
  run(argv, options = {}) {
    return new Promise((resolve, reject) => {
      const [cmd, ...args] = argv;
      if (!cmd) return reject(new Error("empty command"));
      const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      let timedOut = false;
      const timer = options.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs)
        : undefined;
      child.on("error", (err) => {
        if (timer) clearTimeout(timer);
        reject(err);
      });
      child.on("close", (code, signal) => {
        if (timer) clearTimeout(timer);
        // Like the SSH runner: a timeout is an error, not an exit code a caller could mistake for the command's own.
        if (timedOut) return reject(new Error(`command "${shellJoin(argv)}" did not finish within ${options.timeoutMs} ms; it was killed`));
        resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      });
      // A command that exits without reading stdin (dhcpd -t) closes the pipe first: that EPIPE is not an error of the run.
      child.stdin.on("error", () => {});
      child.stdin.end(options.stdin ?? "");
    });
  },
};

/** POSIX single-quote escaping: the only quoting the SSH runner uses. */
export function shellQuote(word: string): string {
  if (word === "") return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
