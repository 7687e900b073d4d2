// Checks one host's candidate dhcpd files before they replace the live ones: stage them in
// workDir, point the main file's marked include line at the staged include, run the real
// `dhcpd -t -cf`, then our failover lint (which dhcpd -t does not enforce).
import { posix } from "node:path";
import type { CheckResult, HostIO } from "../../exec/host-io.js";
import type { RenderedFile } from "../../render/types.js";
import { ensureIncludeLine } from "./include-line.js";
import { lintDhcpdSources } from "./lint.js";

export const DHCPD_BINARY = "dhcpd";

/** Where a file is staged for the check: its own absolute path mirrored under workDir. */
export function stagedPath(workDir: string, path: string): string {
  return posix.join(workDir, "candidate", path);
}

// dhcpd prints its banner and a "submitting bugs" paragraph around every error.
const BOILERPLATE = [
  /^Internet Systems Consortium DHCP Server/,
  /^Copyright \d/,
  /^All rights reserved\./,
  /^For info, please visit/,
  /^Config file:/,
  /^Database file:/,
  /^PID file:/,
  /^If you think you have received this message/,
  /^than a configuration issue please read/,
  /^bugs on either our web page/,
  /^before submitting a bug\./,
  /^process and the information we find helpful/,
  /^exiting\.$/,
];

/**
 * Hides key material in checker output. dhcpd quotes the line it rejects under its error, and
 * when that is an OMAPI key's `secret "…";` line the key would reach logs, status and CLI
 * messages. dhcpd cuts a long quoted line short, so a secret may lack its closing quote; the
 * known secrets are also replaced wherever else they appear.
 */
export function redactSecrets(text: string, knownSecrets: readonly string[] = []): string {
  let redacted = text.replace(/\bsecret(\s+)(?:"[^"\n]*"?|[^\s;"]+)/gi, 'secret$1"<redacted>"');
  for (const secret of knownSecrets) redacted = redacted.split(secret).join("<redacted>");
  return redacted;
}

/** The `secret "…"` values of the key statements in dhcpd config text. */
function secretsIn(text: string): string[] {
  return [...text.matchAll(/\bsecret\s+"([^"\n]+)"/g)].map((m) => m[1]!);
}

/**
 * The problems in dhcpd's output: `FILE line N: message` errors (with the offending text dhcpd
 * quotes under them), `Can't open …`, and warnings. Staged paths are shown as the real paths.
 */
export function dhcpdProblems(output: string, unstage: (text: string) => string): string[] {
  const lines = unstage(output).split("\n");
  const problems: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (/ line \d+: /.test(line)) {
      const quoted = lines[i + 1]?.trim();
      problems.push(quoted && !/ line \d+: /.test(lines[i + 1]!) && !/^Configuration file errors/.test(quoted) ? `${line} (at: ${quoted})` : line);
    } else if (/^(Can't|WARNING:|Error|Unable)/i.test(line) && !BOILERPLATE.some((re) => re.test(line))) {
      problems.push(line);
    }
  }
  return problems;
}

/**
 * Checks the dhcpd files of ONE host (typically the owned include file and the patched dhcpd.conf).
 * On a real host, workDir must be readable by dhcpd: Debian's AppArmor profile for dhcpd allows
 * /etc/dhcp/** but not /tmp, so use e.g. /etc/dhcp/ddi-ha/.check there.
 */
export async function checkDhcpdFiles(files: RenderedFile[], io: HostIO, workDir: string): Promise<CheckResult> {
  const dhcpdFiles = files.filter((f) => f.check.kind === "dhcpd");
  if (dhcpdFiles.length === 0) throw new Error("checkDhcpdFiles: no file with check kind dhcpd");
  const hosts = new Set(dhcpdFiles.map((f) => f.host));
  if (hosts.size > 1) throw new Error(`checkDhcpdFiles checks one host's files at a time, got ${[...hosts].join(", ")}`);
  const mains = dhcpdFiles.filter((f) => f.ownership === "patched");
  if (mains.length > 1) throw new Error(`checkDhcpdFiles: more than one patched main file (${mains.map((m) => m.path).join(", ")})`);
  const main = mains[0];
  const includes = dhcpdFiles.filter((f) => f !== main);

  const staged = new Map<string, string>(); // real path -> staged path
  for (const f of includes) {
    const to = stagedPath(workDir, f.path);
    await io.writeFile(to, f.content, f.mode);
    staged.set(f.path, to);
  }
  let candidate: string;
  if (main) {
    let text = main.content;
    if (main.patch) {
      let line = main.patch.line;
      for (const [real, to] of staged) line = line.split(`"${real}"`).join(`"${to}"`);
      text = ensureIncludeLine(text, line, main.patch.marker);
    }
    candidate = stagedPath(workDir, main.path);
    await io.writeFile(candidate, text, main.mode);
    staged.set(main.path, candidate);
  } else {
    // An include file alone is a complete config (OMAPI, peer, subnets), so it can be checked by itself.
    candidate = staged.get(includes[0]!.path)!;
  }

  // Staged paths mirror the real ones under this prefix, so dropping it restores them, even in
  // the context lines where dhcpd cuts a long path short.
  const stagingRoot = stagedPath(workDir, "/").replace(/\/$/, "");
  // Everything quoted from dhcpd's output goes through here, so no OMAPI secret leaves the check.
  const secrets = dhcpdFiles.flatMap((f) => secretsIn(f.content));
  const unstage = (text: string) => redactSecrets(text.split(stagingRoot).join(""), secrets);
  const argv = [DHCPD_BINARY, "-t", "-cf", candidate, "-lf", posix.join(workDir, "dhcpd.leases"), "-pf", posix.join(workDir, "dhcpd.pid")];
  const tool = `dhcpd -t -cf ${main?.path ?? includes[0]!.path} (staged in ${workDir}) + ddi-ha dhcpd failover lint`;
  const problems: string[] = [];
  let output = "";
  try {
    const result = await io.run(argv, { timeoutMs: 30_000 });
    output = result.stdout + result.stderr;
    const found = dhcpdProblems(output, unstage);
    if (result.code !== 0) {
      problems.push(...(found.length > 0 ? found : [`dhcpd -t exited ${result.code}: ${unstage(output).trim().split("\n").slice(-3).join(" ")}`]));
      if (/Permission denied/.test(output)) problems.push(`dhcpd could not read the staged files in ${workDir}: on hosts with AppArmor, stage under /etc/dhcp/`);
    }
    // Warnings (e.g. "load balancing will be disabled" for load balance max seconds 0) stay in output: 0 may be intended.
  } catch (err) {
    problems.push(`could not run dhcpd -t: ${(err as Error).message} (is isc-dhcp-server installed on DDIHost ${[...hosts][0]}?)`);
  }

  problems.push(...lintDhcpdSources(dhcpdFiles.map((f) => ({ text: f.content, path: f.path }))));
  return { ok: problems.length === 0, tool, problems, output: unstage(output) };
}
