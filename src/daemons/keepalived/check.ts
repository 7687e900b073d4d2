// Checks one host's candidate keepalived files before they replace the live ones: mirror them
// under workDir (with the pair files already live that they do not replace), point the main
// file's include at the mirror, run the real `keepalived -t -f`, `sh -n` on the notify hook, and
// our lint over everything keepalived would read.
import { posix } from "node:path";
import type { CheckResult, HostIO } from "../../exec/host-io.js";
import type { RenderedFile } from "../../render/types.js";
import { type KeepalivedSource, lintKeepalivedSources } from "./lint.js";
import { NOTIFY_SCRIPT_PATH, PAIR_DIR_NAME, renderKeepalivedMain } from "./render.js";

export const KEEPALIVED_BINARY = "keepalived";

/** keepalived's exit codes with -t (2.2.7). */
const EXIT_MEANING: Record<number, string> = {
  4: "a fatal configuration error",
  5: "configuration errors",
  6: "a script security violation",
};

export interface CheckKeepalivedOptions {
  /**
   * Also check the files already live in the include directories that `files` does not replace
   * (other HAPairs' files when one pair is applied alone). Default true: the check then sees what
   * keepalived will load after the swap, e.g. a VRID another pair already uses on the interface.
   */
  includeLiveFiles?: boolean;
}

/** Where a file is staged for the check: its own absolute path mirrored under workDir. */
export function keepalivedStagedPath(workDir: string, path: string): string {
  return posix.join(workDir, "candidate", path);
}

const INCLUDE_RE = /^(\s*include\s+)(\S+)(.*)$/;

/** The include patterns of a main file, in order. */
export function includePatterns(text: string): string[] {
  return text.split("\n").flatMap((l) => {
    const m = INCLUDE_RE.exec(l);
    return m && !l.trim().startsWith("#") ? [m[2]!] : [];
  });
}

function isPairFile(f: RenderedFile): boolean {
  return posix.basename(posix.dirname(f.path)) === PAIR_DIR_NAME;
}

/** Live files matching an absolute include pattern `DIR/GLOB` (find -name matches as glob(3) does for these). */
export async function liveFilesMatching(io: HostIO, pattern: string): Promise<string[]> {
  const dir = posix.dirname(pattern);
  const res = await io.run(["find", dir, "-maxdepth", "1", "-type", "f", "-name", posix.basename(pattern)], { timeoutMs: 15_000 });
  if (res.code !== 0) {
    if (/No such file or directory/.test(res.stderr)) return [];
    throw new Error(`listing ${dir} failed (exit ${res.code}): ${res.stderr.trim()}`);
  }
  return res.stdout.split("\n").filter(Boolean).sort();
}

/** keepalived's own findings: every output line, with staged paths shown as the real ones. */
export function keepalivedProblems(output: string, unstage: (text: string) => string): string[] {
  return unstage(output)
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/**
 * Checks the keepalived files of ONE host: the shared main file, the pairs' own files and the notify
 * hook. keepalived -t needs the interfaces named in the config to exist (on a real host they do).
 */
export async function checkKeepalivedFiles(
  files: RenderedFile[],
  io: HostIO,
  workDir: string,
  options: CheckKeepalivedOptions = {},
): Promise<CheckResult> {
  const kaFiles = files.filter((f) => f.check.kind === "keepalived");
  if (kaFiles.length === 0) throw new Error("checkKeepalivedFiles: no file with check kind keepalived");
  const hosts = new Set(kaFiles.map((f) => f.host));
  if (hosts.size > 1) throw new Error(`checkKeepalivedFiles checks one host's files at a time, got ${[...hosts].join(", ")}`);
  const host = [...hosts][0]!;
  const notify = kaFiles.find((f) => f.path === NOTIFY_SCRIPT_PATH);
  const pairFiles = kaFiles.filter((f) => f !== notify && isPairFile(f)).sort((a, b) => a.path.localeCompare(b.path));
  const mains = kaFiles.filter((f) => f !== notify && !isPairFile(f));
  if (mains.length > 1) throw new Error(`checkKeepalivedFiles: more than one main file for DDIHost ${host} (${mains.map((m) => m.path).join(", ")}); keepalived reads one`);

  const notes: string[] = [];
  let main: { path: string; content: string; mode: number };
  if (mains[0]) main = mains[0];
  else {
    const dirs = [...new Set(pairFiles.map((f) => posix.dirname(f.path)))];
    if (dirs.length !== 1) throw new Error(`checkKeepalivedFiles: no main file, and the pair files are not in one ${PAIR_DIR_NAME} directory`);
    const path = posix.join(posix.dirname(dirs[0]!), "keepalived.conf");
    main = { path, content: renderKeepalivedMain(path), mode: 0o644 };
    notes.push(`no main file among the files: checked with the operator's main file for ${path}`);
  }

  const stagingRoot = keepalivedStagedPath(workDir, "/").replace(/\/$/, "");
  const unstage = (text: string) => text.split(stagingRoot).join("");
  const problems: string[] = [];
  const sources: KeepalivedSource[] = [{ text: main.content, path: main.path }];
  const staged: { path: string; content: string; mode: number }[] = [];
  const stagedNotify = notify ? keepalivedStagedPath(workDir, notify.path) : undefined;
  const pointAtStagedNotify = (text: string) => (stagedNotify ? text.split(` ${NOTIFY_SCRIPT_PATH}`).join(` ${stagedNotify}`) : text);

  // What keepalived will load after the swap: the candidates, plus live files they do not replace.
  const given = new Set(kaFiles.map((f) => f.path));
  const included: { path: string; content: string; mode: number }[] = [...pairFiles];
  if (options.includeLiveFiles !== false) {
    for (const pattern of includePatterns(main.content)) {
      if (!posix.isAbsolute(pattern)) continue;
      for (const path of await liveFilesMatching(io, pattern)) {
        if (given.has(path)) continue;
        const content = await io.readFile(path);
        if (content === undefined) continue;
        included.push({ path, content, mode: 0o644 });
        notes.push(`checked together with ${path}, already live on the host`);
      }
    }
  }
  included.sort((a, b) => a.path.localeCompare(b.path));
  for (const f of included) {
    staged.push({ path: keepalivedStagedPath(workDir, f.path), content: pointAtStagedNotify(f.content), mode: f.mode });
    sources.push({ text: f.content, path: f.path });
  }
  if (notify && stagedNotify) staged.push({ path: stagedNotify, content: notify.content, mode: notify.mode });
  const candidate = keepalivedStagedPath(workDir, main.path);
  const candidateMain = main.content
    .split("\n")
    .map((l) => {
      const m = INCLUDE_RE.exec(l);
      return m && posix.isAbsolute(m[2]!) && !l.trim().startsWith("#") ? `${m[1]}${keepalivedStagedPath(workDir, m[2]!)}${m[3]}` : l;
    })
    .join("\n");
  staged.push({ path: candidate, content: candidateMain, mode: main.mode });
  for (const f of staged) await io.writeFile(f.path, f.content, f.mode);

  const tool = `keepalived -t -f ${main.path} (staged in ${workDir}) + ddi-ha keepalived lint`;
  let output = notes.map((n) => `ddi-ha: ${n}\n`).join("");
  // keepalived -t exits 0 for a file that is not there ("Config files missing"): prove it is.
  if ((await io.readFile(candidate)) !== candidateMain) {
    problems.push(`the staged candidate ${candidate} is missing or differs from what was written; keepalived -t would pass a missing file`);
  } else {
    try {
      const result = await io.run([KEEPALIVED_BINARY, "-t", "-f", candidate], { timeoutMs: 30_000 });
      const text = result.stdout + result.stderr;
      output += text;
      const found = keepalivedProblems(text, unstage);
      if (result.code !== 0) {
        const meaning = EXIT_MEANING[result.code] ?? `exit code ${result.code}`;
        problems.push(...(found.length > 0 ? found : [`keepalived -t reported ${meaning} without a message`]));
        problems.push(`keepalived -t exited ${result.code} (${meaning})`);
      } else {
        // An include glob that matches nothing is fine (a host whose last pair left); the main file missing is not.
        problems.push(...found.filter((l) => l.includes(`Config files missing '${main.path}'`)));
      }
    } catch (err) {
      problems.push(`could not run keepalived -t: ${(err as Error).message} (is keepalived installed on DDIHost ${host}?)`);
    }
  }
  if (notify && stagedNotify) {
    const syntax = await io.run(["sh", "-n", stagedNotify], { timeoutMs: 15_000 });
    if (syntax.code !== 0) problems.push(`${notify.path}: sh -n refused the notify script: ${unstage(syntax.stderr).trim()}`);
    output += unstage(syntax.stderr);
  }

  problems.push(...lintKeepalivedSources(sources));
  return { ok: problems.length === 0, tool, problems, output: unstage(output) };
}
