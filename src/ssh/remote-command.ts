// The command lines the SSH session sends. sshd hands a command line to the user's login shell,
// so every argv word is quoted with shellQuote and no value is ever spliced into a script: the
// only scripts here are constants that read their values from "$1", "$2".
import { shellJoin } from "../exec/runner.js";

/** The argv actually run: with sudo, `sudo -n -- argv` (-n: fail instead of asking for a password). */
export function effectiveArgv(argv: readonly string[], sudo: boolean): string[] {
  if (argv.length === 0) throw new Error("empty command");
  return sudo ? ["sudo", "-n", "--", ...argv] : [...argv];
}

// Prints the command's PID on the first stdout line, then becomes the command (exec keeps the
// PID). OpenSSH refuses channel signal requests in root sessions ("session signalling requires
// privilege separation"), so a command is ended with `kill PID` over a second channel instead.
// With sudo, PID is sudo's (real uid = the SSH user, so the user may signal it; sudo relays it).
const REPORT_PID_THEN_EXEC = 'echo "$$" && exec "$@"';

/** The command line for the SSH exec request: its stdout starts with "PID\n". */
export function remoteCommandLine(argv: readonly string[], sudo: boolean): string {
  return shellJoin(["sh", "-c", REPORT_PID_THEN_EXEC, "sh", ...effectiveArgv(argv, sudo)]);
}

/** Removes the "PID\n" line from a command's stdout as it arrives, and remembers the PID. */
export class PidLineReader {
  pid: number | undefined;
  private head = Buffer.alloc(0);
  private passing = false;
  private resolvePid!: (pid: number | undefined) => void;
  /** Resolves with the PID once its line arrived (undefined if the first line was not a PID, or on end()). */
  readonly pidLine = new Promise<number | undefined>((r) => (this.resolvePid = r));

  /** The output ended (before or after the PID line). */
  end(): void {
    this.resolvePid(this.pid);
  }

  /** Returns the bytes that belong to the command's own stdout. */
  push(chunk: Buffer): Buffer {
    if (this.passing) return chunk;
    this.head = Buffer.concat([this.head, chunk]);
    const nl = this.head.indexOf(0x0a);
    if (nl < 0) return Buffer.alloc(0);
    const text = this.head.subarray(0, nl).toString("latin1");
    if (/^\d+$/.test(text)) this.pid = Number(text);
    this.passing = true;
    this.resolvePid(this.pid);
    const rest = this.head.subarray(nl + 1);
    this.head = Buffer.alloc(0);
    return rest;
  }
}

/** The command that signals a command started with remoteCommandLine (no sudo needed, see above). */
export function killArgv(pid: number, signal: "TERM" | "KILL"): string[] {
  if (!Number.isInteger(pid) || pid < 2) throw new RangeError(`refusing to signal pid ${pid}`);
  return ["kill", `-${signal}`, "--", String(pid)];
}

export function readFileArgv(path: string): string[] {
  checkAbsolutePath(path);
  return ["cat", "--", path];
}

/** True when `cat` failed only because the file does not exist. */
export function isMissingFile(result: { code: number; stderr: string }): boolean {
  return result.code === 1 && /No such file or directory/.test(result.stderr);
}

// Parent directories get the default umask (022: daemons must be able to traverse them); the
// file itself is created under umask 077 so that a secret (an OMAPI key) is never readable by
// others, not even between creation and chmod.
const WRITE_FILE_SCRIPT =
  'mkdir -p -- "$(dirname -- "$1")" && (umask 077 && cat > "$1") && chmod -- "$2" "$1"';

/** Writes stdin to $1 and sets mode $2; the content goes over stdin, never the command line. */
export function writeFileArgv(path: string, mode: number): string[] {
  checkAbsolutePath(path);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new RangeError(`file mode must be 0..07777, got ${mode}`);
  return ["sh", "-c", WRITE_FILE_SCRIPT, "sh", path, mode.toString(8).padStart(4, "0")];
}

function checkAbsolutePath(path: string): void {
  if (!path.startsWith("/") || path.includes("\0")) throw new Error(`remote path must be absolute: ${JSON.stringify(path)}`);
}

/**
 * sudo's own refusals (sudo 1.9 on Debian/RHEL, C locale), as opposed to the command failing:
 * sudo prints them on stderr prefixed "sudo:" and exits 1 before running anything.
 */
const SUDO_REFUSAL = [
  /^sudo: a password is required$/m,
  /^sudo: a terminal is required/m,
  /^sudo: .* is not in the sudoers file/m,
  /^sudo: .*not allowed to (execute|run)/m,
  /^Sorry, user \S+ is not allowed to execute/m,
  /^sudo: account validation failure/m,
  /^sudo: .*must be owned by uid 0/m,
];

/** The line of sudo's stderr that explains a refusal, or undefined when sudo ran the command. */
export function sudoRefusal(result: { code: number; stderr: string }): string | undefined {
  // The login shell's own message when sudo is not installed at all.
  if (result.code === 127 && /(^|: )sudo: (command )?not found/m.test(result.stderr)) return "sudo is not installed";
  if (result.code !== 1) return undefined;
  for (const re of SUDO_REFUSAL) {
    const m = re.exec(result.stderr);
    if (m) return result.stderr.slice(m.index).split("\n")[0]!.trim();
  }
  return undefined;
}

/**
 * sudo reports a command it cannot find with exit 1; a shell says 127. Returns the result with a
 * shell's exit code so that callers see the same result with and without sudo.
 */
export function normalizeSudoResult<T extends { code: number; stderr: string }>(result: T): T {
  if (result.code === 1 && /^sudo: \S+: command not found$/m.test(result.stderr)) return { ...result, code: 127 };
  return result;
}
