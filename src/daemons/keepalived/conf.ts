// A small reader of keepalived.conf syntax for our lint rules: words on a line, "quoted strings",
// `{ … }` blocks, and comments from '#' or '!' to the end of the line. It does not expand
// includes or conditionals; callers pass the files keepalived would read, in order.

export interface KaStatement {
  /** The words of the statement, unquoted; words[0] is the keyword. */
  words: string[];
  /** 1-based line of the keyword. */
  line: number;
  path: string;
  /** Present when the statement opens a `{ }` block. */
  block?: KaStatement[];
}

interface Token {
  text: string;
  line: number;
  /** First token on its line: a statement cannot continue past a line break. */
  newLine: boolean;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  text.split("\n").forEach((raw, index) => {
    let first = true;
    const re = /"([^"]*)"?|[{}]|[^\s{}"]+/g;
    for (const m of raw.matchAll(re)) {
      const word = m[0];
      if (m[1] === undefined && (word.startsWith("#") || word.startsWith("!"))) break;
      tokens.push({ text: m[1] ?? word, line: index + 1, newLine: first });
      first = false;
    }
  });
  return tokens;
}

/** The statements of one file; an unbalanced '}' or '{' is reported by keepalived -t, not here. */
export function parseKeepalivedConf(text: string, path: string): KaStatement[] {
  const tokens = tokenize(text);
  let i = 0;
  const parseBlock = (): KaStatement[] => {
    const out: KaStatement[] = [];
    let current: KaStatement | undefined;
    while (i < tokens.length) {
      const t = tokens[i]!;
      if (t.text === "}") {
        i++;
        return out;
      }
      if (t.text === "{") {
        i++;
        const block = parseBlock();
        if (current) current.block = block;
        else out.push({ words: [], line: t.line, path, block });
        current = undefined;
        continue;
      }
      if (!current || t.newLine || current.block) {
        current = { words: [], line: t.line, path };
        out.push(current);
      }
      current.words.push(t.text);
      i++;
    }
    return out;
  };
  const all: KaStatement[] = [];
  while (i < tokens.length) all.push(...parseBlock());
  return all;
}

/** The first direct child statement with this keyword. */
export function child(statement: KaStatement, keyword: string): KaStatement | undefined {
  return statement.block?.find((s) => s.words[0] === keyword);
}
