import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KeaConfigSyntaxError, parseKeaConfigText, stableStringify, stripKeaComments } from "./config-text.js";

describe("parseKeaConfigText", () => {
  it("reads Debian bookworm's own /etc/kea/kea-dhcp4.conf (comments and a trailing comma), as kea-dhcp4 -t does", () => {
    const text = readFileSync(new URL("testdata/debian-bookworm-kea-dhcp4.conf", import.meta.url), "utf8");
    const config = parseKeaConfigText(text, "/etc/kea/kea-dhcp4.conf") as { Dhcp4: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(config.Dhcp4["control-socket"]).toEqual({ "socket-type": "unix", "socket-name": "/run/kea/kea4-ctrl-socket" });
    expect(config.Dhcp4.loggers[0].output_options[0]).toEqual({ output: "stdout", pattern: "%-5p %m\n" });
    expect(config.Dhcp4.subnet4).toHaveLength(1);
  });

  it("strips //, # and /* */ comments but not the same characters inside strings", () => {
    const text = `{
  // line comment
  "url": "http://198.18.0.2:8000/", # hash comment
  /* block
     comment */ "pattern": "a # b // c /* d */",
  "escaped": "quote \\" // still a string",
}`;
    expect(parseKeaConfigText(text)).toEqual({ url: "http://198.18.0.2:8000/", pattern: "a # b // c /* d */", escaped: 'quote " // still a string' });
  });

  it("keeps every offset, so JSON errors point at the original line and column", () => {
    const text = '{\n  /* x */ "a": 1,\n  "b": nope,\n}';
    expect(stripKeaComments(text)).toHaveLength(text.length);
    expect(() => parseKeaConfigText(text, "/etc/kea/kea-dhcp4.conf")).toThrow("/etc/kea/kea-dhcp4.conf:3:8: not valid JSON: expected a value (string, number, object, array, true, false or null), found 'n'");
  });

  it("removes trailing commas before ] and } only outside strings", () => {
    expect(parseKeaConfigText('{"a": [1, 2, ], "b": ",]", }')).toEqual({ a: [1, 2], b: ",]" });
  });

  const bad: [string, string, string][] = [
    ["an unclosed block comment", '{ "a": 1 /* oops }', "f.conf:1:10: comment /* … not closed with */"],
    ["an unclosed string", '{ "a": "oops }', "f.conf:1:8: string not closed"],
    ["an include directive", '{ <?include "x.json"?> }', "f.conf:1:3: <?include …?> is not supported here"],
    ["a top-level array", "[1]", 'f.conf:1:1: a Kea config file must be one JSON object such as {"Dhcp4": {…}}'],
    ["a missing comma", '{ "a": 1\n  "b": 2 }', "f.conf:2:3: not valid JSON: expected ',' or '}', found '\"'"],
    ["an unquoted key", '{\n  valid-lifetime: 3600 }', "f.conf:2:3: not valid JSON: expected a string in double quotes, found 'v'"],
    ["a missing closing brace", '{ "Dhcp4": { }', "f.conf:1:15: not valid JSON: expected ',' or '}', found the end of the file"],
  ];
  it.each(bad)("refuses %s with file:line:column", (_name, text, message) => {
    expect(() => parseKeaConfigText(text, "f.conf")).toThrow(KeaConfigSyntaxError);
    expect(() => parseKeaConfigText(text, "f.conf")).toThrow(message);
  });
});

describe("stableStringify", () => {
  it("sorts keys at every level, keeps array order, indents by 2 and ends with a newline", () => {
    expect(stableStringify({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{\n  "a": {\n    "c": null,\n    "d": [\n      3,\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
    );
  });
});
