// What a daemon module may do to a host: run argv commands and read/write files. The local
// implementation serves tests and `ddi-ha render --check`; the SSH implementation serves apply.
import { mkdir, readFile, writeFile, chmod } from "node:fs/promises";
import { dirname } from "node:path";
import { type CommandResult, type CommandRunner, localRunner } from "./runner.js";

export interface HostIO extends CommandRunner {
  /** Contents of a file, or undefined when it does not exist. */
  readFile(path: string): Promise<string | undefined>;
  /** Writes a file (creating parent directories) with the given mode. Not atomic: stage, then rename. */
  writeFile(path: string, content: string, mode: number): Promise<void>;
}

export const localHostIO: HostIO = {
  run: localRunner.run,
  async readFile(path) {
    try {
      return await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  },
  async writeFile(path, content, mode) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content, { mode });
    await chmod(path, mode);
  },
};

/** The verdict of a daemon's own checker plus our stricter rules on one candidate. */
export interface CheckResult {
  ok: boolean;
  /** The command(s) that judged the file, for messages. */
  tool: string;
  /** Every problem found, each naming the file and the fix where we know it. */
  problems: string[];
  /** Raw checker output, kept for logs and status messages. */
  output: string;
}

/** A running long-lived command (e.g. `ip -o monitor address`) whose stdout arrives line by line. */
export interface CommandStream {
  /** Ends the command (closes the channel / kills the process). */
  stop(): Promise<void>;
  /** Resolves when the command ends, for whatever reason. */
  done: Promise<CommandResult>;
}

/** A local TCP port that forwards, through the host, to an address the host can reach. */
export interface PortForward {
  localPort: number;
  close(): Promise<void>;
}

/**
 * Everything the engine does on one host. Over SSH it is one pooled connection; commands run as
 * root (directly or through `sudo -n`), so the file methods see root's view of the host.
 */
export interface HostSession extends HostIO {
  /** DDIHost name, for messages and metrics. */
  readonly hostName: string;
  stream(argv: readonly string[], onLine: (line: string) => void): Promise<CommandStream>;
  forward(remoteHost: string, remotePort: number): Promise<PortForward>;
}
