import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { DDIHost } from "../api/index.js";
import { LOG_REDACT_PATHS, SshTransport } from "./transport.js";

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
