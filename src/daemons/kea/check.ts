// Checks one host's candidate Kea files with Kea itself before they replace the live ones:
// `kea-dhcp4 -t` and `kea-ctrl-agent -t` (syntax and most semantics), our lint (rules no Kea
// check enforces), and the scratch server (the HA hook's own verdict, which `-t` skips on 2.2).
import type { CheckResult, HostIO, HostSession } from "../../exec/host-io.js";
import type { CommandResult } from "../../exec/runner.js";
import type { RenderedFile } from "../../render/types.js";
import { isRecord, parseKeaConfigText } from "./config-text.js";
import { lintKeaConfig } from "./lint.js";
import { DEFAULT_SCRATCH_SECONDS, SCRATCH_DECIDED_RE, interpretScratchRun, loadsHAHook, scratchServerArgv, toScratchConfig } from "./scratch.js";

export interface CheckKeaOptions {
  /** How long the scratch server may run before it is stopped (a good run lasts exactly this long). */
  scratchSeconds?: number;
  /** The host's Kea version, for version-dependent lint rules. */
  keaVersion?: string;
}

const basename = (path: string) => path.slice(path.lastIndexOf("/") + 1);

/** The lines of a Kea checker's output that say what is wrong. */
function errorLines(result: CommandResult, candidate: string, livePath: string): string {
  // Kea names the temp candidate; the user knows the file by its live path (line numbers agree).
  const text = `${result.stdout}\n${result.stderr}`.split(candidate).join(`${livePath} (candidate)`);
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const errors = lines.filter((l) => /\b(ERROR|FATAL)\b|[Ee]rror|failed/.test(l));
  return (errors.length > 0 ? errors : lines.slice(-3)).join("\n");
}

function transcript(argv: readonly string[], result: CommandResult): string {
  return `$ ${argv.join(" ")}\n${result.stdout}${result.stderr}(exit ${result.code})\n`;
}

function canStream(io: HostIO): io is HostIO & Pick<HostSession, "stream"> {
  return typeof (io as Partial<HostSession>).stream === "function";
}

/**
 * Runs the scratch server. Over a HostSession it is stopped as soon as its log decides the
 * verdict (a good run takes milliseconds, not the whole time limit); `timeout` still bounds it
 * if the channel goes away. A plain HostIO waits for `timeout` to end it.
 */
async function runScratch(io: HostIO, argv: string[], seconds: number): Promise<CommandResult> {
  const limitMs = (seconds + 10) * 1000;
  if (!canStream(io)) return io.run(argv, { timeoutMs: limitMs });
  let decide = () => {};
  const decided = new Promise<void>((resolve) => (decide = resolve));
  // A stream hands stdout to the line callback; its `done` need not carry it (the SSH one does not).
  const lines: string[] = [];
  const stream = await io.stream(argv, (line) => {
    lines.push(line);
    if (SCRATCH_DECIDED_RE.test(line)) decide();
  });
  const limit = setTimeout(decide, limitMs);
  await Promise.race([decided, stream.done]);
  clearTimeout(limit);
  await stream.stop();
  const result = await stream.done;
  return result.stdout ? result : { ...result, stdout: lines.map((l) => `${l}\n`).join("") };
}

/**
 * Runs every check on one host's Kea files (the kea-dhcp4 and kea-ctrl-agent configs of one
 * peer). Candidates are written into `workDir` (a private temp dir on that host), never over the
 * live files, and the scratch server runs in a network namespace of its own.
 */
export async function checkKeaFiles(files: RenderedFile[], io: HostIO, workDir: string, options: CheckKeaOptions = {}): Promise<CheckResult> {
  const seconds = options.scratchSeconds ?? DEFAULT_SCRATCH_SECONDS;
  const problems: string[] = [];
  const tools = new Set<string>();
  let output = "";
  const run = async (argv: string[]) => {
    const result = await io.run(argv);
    output += transcript(argv, result);
    return result;
  };
  const dhcp4Sockets: string[] = [];
  const agentSockets: { path: string; socket: unknown }[] = [];

  for (const [index, file] of files.entries()) {
    const candidate = `${workDir}/${index}-${basename(file.path)}`;
    if (file.check.kind === "kea-dhcp4") {
      tools.add("kea-dhcp4 -t").add("scratch kea-dhcp4 (unshare -n)").add("lint");
      await io.writeFile(candidate, file.content, file.mode);
      const syntax = await run(["kea-dhcp4", "-t", candidate]);
      if (syntax.code !== 0) problems.push(`${file.path} on ${file.host}: kea-dhcp4 -t refused it:\n${errorLines(syntax, candidate, file.path)}`);
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = parseKeaConfigText(file.content, file.path);
      } catch (err) {
        problems.push((err as Error).message);
      }
      if (!parsed) continue;
      for (const p of lintKeaConfig(parsed, file.path, options.keaVersion === undefined ? {} : { keaVersion: options.keaVersion })) problems.push(p);
      const socket = isRecord(parsed.Dhcp4) && isRecord(parsed.Dhcp4["control-socket"]) ? parsed.Dhcp4["control-socket"]["socket-name"] : undefined;
      if (typeof socket === "string") dhcp4Sockets.push(socket);
      // A config that -t already refused would only fail again, with a less direct message.
      if (syntax.code !== 0) continue;
      const scratchPath = `${workDir}/${index}-scratch-${basename(file.path)}`;
      await io.writeFile(scratchPath, `${JSON.stringify(toScratchConfig(parsed, workDir), null, 2)}\n`, 0o600);
      const argv = scratchServerArgv(scratchPath, workDir, seconds);
      const scratch = await runScratch(io, argv, seconds);
      output += transcript(argv, scratch);
      const verdict = interpretScratchRun(scratch, seconds, loadsHAHook(parsed));
      if (!verdict.ok) problems.push(`${file.path} on ${file.host}: ${verdict.problem}`);
    } else if (file.check.kind === "kea-ctrl-agent") {
      tools.add("kea-ctrl-agent -t");
      await io.writeFile(candidate, file.content, file.mode);
      const result = await run(["kea-ctrl-agent", "-t", candidate]);
      if (result.code !== 0) problems.push(`${file.path} on ${file.host}: kea-ctrl-agent -t refused it:\n${errorLines(result, candidate, file.path)}`);
      try {
        const parsed = parseKeaConfigText(file.content, file.path);
        const agent = parsed["Control-agent"];
        const sockets = isRecord(agent) ? agent["control-sockets"] : undefined;
        agentSockets.push({ path: file.path, socket: isRecord(sockets) && isRecord(sockets.dhcp4) ? sockets.dhcp4["socket-name"] : undefined });
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  }
  // The agent is how HA peers reach kea-dhcp4 on 2.2: it must forward to the socket kea-dhcp4 opens.
  for (const agent of agentSockets) {
    for (const socket of dhcp4Sockets) {
      if (agent.socket !== socket) {
        problems.push(
          `${agent.path}: Control-agent.control-sockets.dhcp4.socket-name is ${JSON.stringify(agent.socket)} but kea-dhcp4's control-socket is "${socket}": point the agent at kea-dhcp4's socket, or HA peers cannot reach it`,
        );
      }
    }
  }
  return { ok: problems.length === 0, tool: [...tools].join(" + "), problems, output };
}
