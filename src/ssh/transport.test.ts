import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { DDIHost } from "../api/index.js";
import { HostKeyMismatchError } from "./errors.js";
import { LOG_REDACT_PATHS, SshTransport, hostKeyToExpect } from "./transport.js";

describe("LOG_REDACT_PATHS", () => {
  it("censors credentials however they are nested in a log object", () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out.push(String(chunk));
        cb();
      },
    });
    const log = pino({ redact: [...LOG_REDACT_PATHS] }, sink);
    log.info({ privateKey: "PK1", passphrase: "PP1", credentials: { privateKey: "PK2" }, host: { passphrase: "PP2" } }, "x");
    const text = out.join("");
    for (const secret of ["PK1", "PP1", "PK2", "PP2"]) expect(text).not.toContain(secret);
    expect(text).toContain("[Redacted]");
  });
});

describe("SshTransport.session", () => {
  const host = (spec: Partial<DDIHost["spec"]>): DDIHost => ({
    apiVersion: "ddi.example.io/v1alpha1" as DDIHost["apiVersion"],
    kind: "DDIHost",
    metadata: { name: "h1", namespace: "ns" },
    spec: { address: "127.0.0.1", port: 1, user: "root", sudo: false, hostKeyPolicy: "Pinned", credentialsSecretRef: { name: "s" }, ...spec },
  });

  it("refuses Pinned without a host key before connecting", async () => {
    const t = new SshTransport();
    await expect(t.session(host({}), { privateKey: "x" })).rejects.toThrow(/DDIHost ns\/h1: hostKeyPolicy Pinned needs spec.hostKey/);
    await t.closeAll();
  });

  it("refuses new sessions after closeAll", async () => {
    const t = new SshTransport();
    await t.closeAll();
    await expect(t.session(host({ hostKeyPolicy: "TrustOnFirstUse" }), { privateKey: "x" })).rejects.toThrow(/closed/);
  });
});

describe("hostKeyToExpect", () => {
  const SPEC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  const PINNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvNVOdVqhkxYGqMXqKkq0gx3QR0ANkp0TkG4sRjLq8j";

  it("prefers spec.hostKey over a TrustOnFirstUse pin, so a key re-pinned in the spec after a reinstall is used", () => {
    expect(hostKeyToExpect({ hostKey: SPEC_KEY }, { pinnedHostKey: PINNED, pinnedHostKeyStore: "/k.json" })).toEqual({
      expectedHostKey: SPEC_KEY,
      hostKeyPinnedIn: "spec.hostKey",
    });
  });

  it("uses the pin without spec.hostKey, naming where it is kept (status by default)", () => {
    expect(hostKeyToExpect({}, { pinnedHostKey: PINNED, pinnedHostKeyStore: "/k.json" })).toEqual({ expectedHostKey: PINNED, hostKeyPinnedIn: "/k.json" });
    expect(hostKeyToExpect({}, { pinnedHostKey: PINNED })).toEqual({ expectedHostKey: PINNED, hostKeyPinnedIn: "status.observedHostKey" });
    expect(hostKeyToExpect({}, {})).toEqual({ hostKeyPinnedIn: "status.observedHostKey" });
  });
});

describe("HostKeyMismatchError", () => {
  const ref = { host: "ns/h1", address: "198.18.0.2", port: 22, user: "root" };

  it("names where a TrustOnFirstUse pin lives and says to set spec.hostKey to the key verified out of band", () => {
    for (const store of ["status.observedHostKey", "/root/.config/ddi-ha/known_hosts.json"]) {
      const { message } = new HostKeyMismatchError(ref, "SHA256:old", "SHA256:new", "ssh-ed25519 AAAA", store);
      expect(message).toContain("expected SHA256:old, the host presented SHA256:new");
      expect(message).toContain(`pinned on first use in ${store}`);
      expect(message).toMatch(/verify its new key out of band .* and set spec\.hostKey to it/);
      expect(message).not.toMatch(/clear/);
    }
  });

  it("says to put the new key in spec.hostKey when that is where the expected key came from", () => {
    const { message } = new HostKeyMismatchError(ref, "SHA256:old", "SHA256:new", "ssh-ed25519 AAAA", "spec.hostKey");
    expect(message).toMatch(/put it in spec\.hostKey\.$/);
    expect(message).not.toContain("first use");
  });
});
