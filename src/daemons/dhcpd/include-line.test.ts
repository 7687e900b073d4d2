import { describe, expect, it } from "vitest";
import { DEBIAN_DEFAULT_DHCPD_CONF, ensureIncludeLine, hasIncludeLine, includeLine, includeMarker, removeIncludeLine } from "./index.js";

const marker = includeMarker("lab/dhcp-failover");
const line = includeLine("/etc/dhcp/ddi-ha/dhcp-failover.conf", "lab/dhcp-failover");
const staleLine = includeLine("/etc/dhcp/ddi-ha/old-name.conf", "lab/dhcp-failover");

describe("ensureIncludeLine", () => {
  it("appends the line once to a file ending in a newline, keeping the file as a byte-identical prefix", () => {
    const out = ensureIncludeLine(DEBIAN_DEFAULT_DHCPD_CONF, line, marker);
    expect(out).toBe(`${DEBIAN_DEFAULT_DHCPD_CONF}${line}\n`);
    expect(out.startsWith(DEBIAN_DEFAULT_DHCPD_CONF)).toBe(true);
  });

  it("is idempotent", () => {
    const once = ensureIncludeLine(DEBIAN_DEFAULT_DHCPD_CONF, line, marker);
    expect(ensureIncludeLine(once, line, marker)).toBe(once);
    expect(once.split(marker)).toHaveLength(2);
  });

  it("replaces a stale marked line where it stands and leaves the lines around it alone", () => {
    const text = `authoritative;\n${staleLine}\nsubnet 10.0.0.0 netmask 255.0.0.0 { }\n`;
    expect(ensureIncludeLine(text, line, marker)).toBe(`authoritative;\n${line}\nsubnet 10.0.0.0 netmask 255.0.0.0 { }\n`);
  });

  it("keeps one marked line when the file has several, and removes the others", () => {
    const text = `a;\n${staleLine}\nb;\n${line}\nc;\n`;
    expect(ensureIncludeLine(text, line, marker)).toBe(`a;\n${line}\nb;\nc;\n`);
  });

  it("does not touch another resource's marked line, even one whose name extends ours", () => {
    const other = includeLine("/etc/dhcp/ddi-ha/x.conf", "lab/dhcp-failover-2");
    const text = `${other}\n`;
    expect(ensureIncludeLine(text, line, marker)).toBe(`${other}\n${line}\n`);
  });

  it("keeps CRLF line endings, and ends its own line with CRLF in a CRLF file", () => {
    const text = "option domain-name \"example.org\";\r\nddns-update-style none;\r\n";
    const out = ensureIncludeLine(text, line, marker);
    expect(out).toBe(`${text}${line}\r\n`);
    expect(ensureIncludeLine(out.replace(line, staleLine), line, marker)).toBe(out);
  });

  it("adds a line break before its line when the file has no final newline, and adds none after", () => {
    const text = "ddns-update-style none;";
    const out = ensureIncludeLine(text, line, marker);
    expect(out).toBe(`ddns-update-style none;\n${line}`);
    expect(ensureIncludeLine(out, line, marker)).toBe(out);
  });

  it("writes just its line into an empty file", () => {
    expect(ensureIncludeLine("", line, marker)).toBe(`${line}\n`);
  });

  it("refuses a line without the marker, or with a line break", () => {
    expect(() => ensureIncludeLine("", 'include "/x";', marker)).toThrow("does not end with its marker");
    expect(() => ensureIncludeLine("", `x;\n${line}`, marker)).toThrow("single line");
  });
});

describe("removeIncludeLine", () => {
  it.each([
    ["LF", DEBIAN_DEFAULT_DHCPD_CONF],
    ["CRLF", DEBIAN_DEFAULT_DHCPD_CONF.replace(/\n/g, "\r\n")],
    ["no final newline", "ddns-update-style none;\nauthoritative;"],
    ["CRLF without final newline", "ddns-update-style none;\r\nauthoritative;"],
    ["empty", ""],
  ])("undoes ensureIncludeLine exactly (%s)", (_label, text) => {
    const patched = ensureIncludeLine(text, line, marker);
    expect(hasIncludeLine(patched, marker)).toBe(true);
    expect(removeIncludeLine(patched, marker)).toBe(text);
  });

  it("removes every marked line of this resource and nothing else", () => {
    const other = includeLine("/etc/dhcp/ddi-ha/y.conf", "lab/other");
    const text = `a;\n${staleLine}\n${other}\nb;\r\n${line}\n`;
    expect(removeIncludeLine(text, marker)).toBe(`a;\n${other}\nb;\r\n`);
  });

  it("returns the text unchanged when there is no marked line", () => {
    expect(removeIncludeLine(DEBIAN_DEFAULT_DHCPD_CONF, marker)).toBe(DEBIAN_DEFAULT_DHCPD_CONF);
    expect(hasIncludeLine(DEBIAN_DEFAULT_DHCPD_CONF, marker)).toBe(false);
  });
});
