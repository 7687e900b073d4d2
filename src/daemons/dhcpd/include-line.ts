// The operator owns exactly one line of the user's dhcpd.conf: a marked include line. These
// functions keep that line and leave every other byte of the file as the user wrote it.

interface Line {
  /** The line without its terminator. */
  body: string;
  /** "\n", "\r\n" or "" (a last line without a newline). */
  eol: string;
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  const re = /([^\n]*?)(\r?\n|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) lines.push({ body: m[1]!, eol: m[2]! });
  return lines;
}

function join(lines: readonly Line[]): string {
  return lines.map((l) => l.body + l.eol).join("");
}

function isMarked(body: string, marker: string): boolean {
  return body.trimEnd().endsWith(marker);
}

/** The file's own line ending: CRLF when it already uses CRLF, else LF. */
function lineEnding(text: string): string {
  return text.includes("\r\n") ? "\r\n" : "\n";
}

/**
 * Returns mainText with exactly one line carrying `marker`, equal to `line`:
 * - no marked line: `line` is appended (after a line break if the text lacks a final one);
 * - a marked line that differs (a stale path): it is replaced where it stands;
 * - several marked lines: the first is kept (replaced), the others are removed.
 * Every unmarked line keeps its bytes, including its line ending. Applying it twice changes nothing.
 */
export function ensureIncludeLine(mainText: string, line: string, marker: string): string {
  if (!isMarked(line, marker)) throw new Error(`include line ${JSON.stringify(line)} does not end with its marker ${JSON.stringify(marker)}`);
  if (/[\r\n]/.test(line)) throw new Error("the include line must be a single line");
  const lines = splitLines(mainText);
  const eol = lineEnding(mainText);
  let placed = false;
  const out: Line[] = [];
  for (const l of lines) {
    if (!isMarked(l.body, marker)) out.push(l);
    else if (!placed) {
      out.push({ body: line, eol: l.eol });
      placed = true;
    }
  }
  if (!placed) {
    const last = out[out.length - 1];
    // A file without a final newline stays without one, so that remove(ensure(text)) === text.
    if (last && last.eol === "") {
      last.eol = eol;
      out.push({ body: line, eol: "" });
    } else {
      out.push({ body: line, eol });
    }
  }
  return join(out);
}

/**
 * Returns mainText without any line carrying `marker`. When the marked line was the last line and
 * had no line ending, the line break before it goes too, so remove(ensure(text)) === text.
 */
export function removeIncludeLine(mainText: string, marker: string): string {
  const lines = splitLines(mainText);
  const out: Line[] = [];
  for (const l of lines) {
    if (!isMarked(l.body, marker)) {
      out.push(l);
      continue;
    }
    if (l.eol === "" && out.length > 0) out[out.length - 1] = { ...out[out.length - 1]!, eol: "" };
  }
  return join(out);
}

/** Whether mainText has a line carrying `marker`. */
export function hasIncludeLine(mainText: string, marker: string): boolean {
  return splitLines(mainText).some((l) => isMarked(l.body, marker));
}
