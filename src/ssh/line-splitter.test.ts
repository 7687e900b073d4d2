import { describe, expect, it } from "vitest";
import { LineSplitter } from "./line-splitter.js";

function split(chunks: Array<Buffer | string>): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  for (const c of chunks) s.push(c);
  s.end();
  return lines;
}

describe("LineSplitter", () => {
  it("joins lines split across chunks and keeps empty lines", () => {
    expect(split(["ab", "c\nde", "f\n\ng\n"])).toEqual(["abc", "def", "", "g"]);
  });

  it("delivers a last line without newline at end()", () => {
    expect(split(["one\ntwo"])).toEqual(["one", "two"]);
  });

  it("strips CR of CRLF", () => {
    expect(split(["a\r\nb\r", "\n"])).toEqual(["a", "b"]);
  });

  it("does not break a UTF-8 character split between chunks", () => {
    const bytes = Buffer.from("grüße\n", "utf8");
    const cut = bytes.indexOf(0xc3) + 1; // inside "ü"
    expect(split([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(["grüße"]);
  });

  it("delivers nothing for no input", () => {
    expect(split([])).toEqual([]);
  });
});
