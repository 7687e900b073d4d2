import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fingerprintOf, hostKeyAlgorithmsFor, keyLineOf, parseHostKey, sameHostKey } from "./host-key.js";

const dir = mkdtempSync(join(tmpdir(), "ddi-hostkey-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh key made by OpenSSH itself, with its own fingerprint of it. */
function sshKeygen(type: string, name: string): { line: string; fingerprint: string } {
  const path = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", `comment-of-${name}`, "-f", path]);
  const line = readFileSync(`${path}.pub`, "utf8").trim();
  const fingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${path}.pub`], { encoding: "utf8" }).split(" ")[1]!;
  return { line, fingerprint };
}

const keys = {
  ed25519: sshKeygen("ed25519", "ed"),
  ecdsa: sshKeygen("ecdsa", "ec"),
  rsa: sshKeygen("rsa", "rsa"),
  ed25519b: sshKeygen("ed25519", "ed2"),
};

describe("fingerprintOf", () => {
  it.each(["ed25519", "ecdsa", "rsa"] as const)("matches ssh-keygen -l for %s", (k) => {
    expect(fingerprintOf(keys[k].line)).toBe(keys[k].fingerprint);
    expect(fingerprintOf(keys[k].line)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it("gives the same fingerprint for the line and the raw blob", () => {
    const { blob } = parseHostKey(keys.ed25519.line);
    expect(fingerprintOf(blob)).toBe(keys.ed25519.fingerprint);
  });
});

describe("sameHostKey and keyLineOf", () => {
  it("compares the key, not the comment or the spacing", () => {
    const [type, b64] = keys.ed25519.line.split(" ");
    expect(sameHostKey(keys.ed25519.line, `${type}   ${b64}   other-comment`)).toBe(true);
    expect(sameHostKey(keys.ed25519.line, `${type} ${b64}`)).toBe(true);
    expect(keyLineOf(keys.ed25519.line)).toBe(`${type} ${b64}`);
  });

  it("tells different keys apart, of the same or another type", () => {
    expect(sameHostKey(keys.ed25519.line, keys.ed25519b.line)).toBe(false);
    expect(sameHostKey(keys.ed25519.line, keys.ecdsa.line)).toBe(false);
  });
});

describe("parseHostKey rejects what is not a key line", () => {
  const ed = keys.ed25519.line.split(" ")[1]!;
  const ec = keys.ecdsa.line.split(" ")[1]!;
  it.each([
    ["empty", "", /not an OpenSSH public key line/],
    ["type only", "ssh-ed25519", /not an OpenSSH public key line/],
    ["not base64", "ssh-ed25519 AAAA$$$", /not an OpenSSH public key line/],
    ["type differs from the key data", `ssh-ed25519 ${ec}`, /says ssh-ed25519 but its key data is ecdsa-sha2-nistp256/],
    ["garbage data", "ssh-ed25519 AAAAAAAA", /its key data is not a key/],
    ["private key text", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", /not an OpenSSH public key line/],
  ])("%s", (_name, input, message) => {
    expect(() => parseHostKey(input)).toThrow(message);
    // Never echo what was given: it might be a private key pasted into the wrong field.
    expect(() => parseHostKey(input)).not.toThrow(/b3Bl|BEGIN/);
  });

  it("rejects a blob that is not a key", () => {
    expect(() => parseHostKey(Buffer.from([0, 0, 0]))).toThrow(/not an SSH public key blob/);
    expect(parseHostKey(Buffer.from(ed, "base64")).type).toBe("ssh-ed25519");
  });
});

describe("hostKeyAlgorithmsFor", () => {
  it("offers only the pinned key's algorithms, all RSA signature variants for ssh-rsa", () => {
    expect(hostKeyAlgorithmsFor("ssh-ed25519")).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithmsFor("ecdsa-sha2-nistp256")).toEqual(["ecdsa-sha2-nistp256"]);
    expect(hostKeyAlgorithmsFor("ssh-rsa")).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
  });
});
