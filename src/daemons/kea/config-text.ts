// Kea's config files are JSON plus comments (`//`, `#`, `/* */`) and trailing commas, as in
// Debian's own /etc/kea/kea-dhcp4.conf. JSON.parse accepts neither, so they are blanked out first,
// keeping every offset, so that an error still points at the right line and column.

export class KeaConfigSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

function syntaxError(text: string, offset: number, what: string, source: string): KeaConfigSyntaxError {
  const { line, column } = lineAndColumn(text, offset);
  return new KeaConfigSyntaxError(`${source}:${line}:${column}: ${what}`, line, column);
}

const blank = (s: string) => s.replace(/[^\n]/g, " ");

/**
 * The text with comments and trailing commas replaced by spaces (newlines kept), ready for
 * JSON.parse. Strings are copied untouched, so `"http://x"` and `"a#b"` survive.
 */
export function stripKeaComments(text: string, source = "kea config"): string {
  let out = "";
  let i = 0;
  /** Offset in `out` of the last comma outside strings, while only whitespace has followed it. */
  let pendingComma = -1;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\") i++;
        if (text[i] === "\n") throw syntaxError(text, start, "string not closed before the end of the line", source);
        i++;
      }
      if (i >= text.length) throw syntaxError(text, start, "string not closed", source);
      out += text.slice(start, i + 1);
      i++;
      pendingComma = -1;
    } else if (c === "#" || (c === "/" && next === "/")) {
      const end = text.indexOf("\n", i);
      const stop = end === -1 ? text.length : end;
      out += blank(text.slice(i, stop));
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end === -1) throw syntaxError(text, i, "comment /* … not closed with */", source);
      out += blank(text.slice(i, end + 2));
      i = end + 2;
    } else if (c === "<" && next === "?") {
      throw syntaxError(text, i, "<?include …?> is not supported here: inline the included file, or give the operator the composed config", source);
    } else if (c === "}" || c === "]") {
      // Kea accepts a trailing comma before a closing bracket; JSON does not.
      if (pendingComma >= 0) out = `${out.slice(0, pendingComma)} ${out.slice(pendingComma + 1)}`;
      pendingComma = -1;
      out += c;
      i++;
    } else {
      if (c === ",") pendingComma = out.length;
      else if (!/\s/.test(c)) pendingComma = -1;
      out += c;
      i++;
    }
  }
  return out;
}

/** Parses a Kea config file (JSON with comments); errors name `source:line:column`. */
export function parseKeaConfigText(text: string, source = "kea config"): Record<string, unknown> {
  const json = stripKeaComments(text, source);
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    // V8's messages do not always carry a position; our own scan always does.
    const found = locateJsonError(json);
    throw syntaxError(text, found?.offset ?? json.length, `not valid JSON: ${found?.what ?? (err as Error).message}`, source);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw syntaxError(text, 0, "a Kea config file must be one JSON object such as {\"Dhcp4\": {…}}", source);
  }
  return value as Record<string, unknown>;
}

/** The offset and nature of the first JSON syntax error, by a small recursive-descent scan. */
function locateJsonError(json: string): { offset: number; what: string } | undefined {
  let i = 0;
  class Stop {
    constructor(readonly offset: number, readonly what: string) {}
  }
  const ws = () => {
    while (i < json.length && /\s/.test(json[i]!)) i++;
  };
  const describeHere = () => (i >= json.length ? "the end of the file" : `'${json[i]}'`);
  const fail = (expected: string): never => {
    throw new Stop(i, `expected ${expected}, found ${describeHere()}`);
  };
  const string = () => {
    if (json[i] !== '"') fail("a string in double quotes");
    i++;
    while (i < json.length && json[i] !== '"') i += json[i] === "\\" ? 2 : 1;
    if (i >= json.length) fail("a closing '\"'");
    i++;
  };
  const value = (): void => {
    ws();
    const c = json[i];
    if (c === "{") {
      i++;
      ws();
      if (json[i] === "}") return void i++;
      for (;;) {
        ws();
        string();
        ws();
        if (json[i] !== ":") fail("':' after the key");
        i++;
        value();
        ws();
        if (json[i] === ",") { i++; continue; }
        if (json[i] === "}") return void i++;
        fail("',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (json[i] === "]") return void i++;
      for (;;) {
        value();
        ws();
        if (json[i] === ",") { i++; continue; }
        if (json[i] === "]") return void i++;
        fail("',' or ']'");
      }
    }
    if (c === '"') return string();
    const literal = /^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false|null)/.exec(json.slice(i, i + 64));
    if (!literal) fail("a value (string, number, object, array, true, false or null)");
    i += literal![0].length;
  };
  try {
    value();
    ws();
    if (i < json.length) fail("the end of the file after the top-level value");
  } catch (err) {
    if (err instanceof Stop) return { offset: err.offset, what: err.what };
    throw err;
  }
  return undefined;
}

/** JSON with keys sorted at every level and 2-space indents: one spelling per config, so diffs mean changes. */
export function stableStringify(value: unknown): string {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
