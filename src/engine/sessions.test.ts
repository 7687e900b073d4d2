import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDirs } from "../testing/support.js";
import type { DDIHost } from "../api/index.js";
import { parseManifestText } from "../manifests/load.js";
import type { SshSessionOptions, SshTransport } from "../ssh/index.js";
import { validateManifests } from "../validation/validate.js";
import { manifestSessionProvider, PinnedHostKeys, statusHostKeyPins } from "./sessions.js";

const RECORDED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

const tempDir = scratchDirs("ddi-ha-pins-");

function hostSet(policy: "Pinned" | "TrustOnFirstUse") {
  const hostKey = policy === "Pinned" ? `, hostKey: "${RECORDED}"` : "";
  const yaml = `apiVersion: v1
kind: Secret
metadata: {name: ssh, namespace: lab}
stringData: {privateKey: the-key}
---
apiVersion: ddi-ha.io/v1alpha1
kind: DDIHost
metadata: {name: h1, namespace: lab}
spec: {address: 198.18.7.21, credentialsSecretRef: {name: ssh}, hostKeyPolicy: ${policy}${hostKey}}
`;
  const { set, problems } = validateManifests(parseManifestText(yaml, "h1.yaml"));
  expect(problems).toEqual([]);
  return { set, host: [...set.hosts.values()][0]! };
}

/** A transport that records what each session was asked for. */
function recordingTransport() {
  const calls: SshSessionOptions[] = [];
  const transport: Pick<SshTransport, "session"> = {
    session: async (_host, _creds, opts = {}) => {
      calls.push(opts);
      return {} as Awaited<ReturnType<SshTransport["session"]>>;
    },
  };
  return { transport, calls };
}

describe("manifestSessionProvider", () => {
  it("a missing credentials Secret names it and says what to do where the set came from", async () => {
    const { set, host } = hostSet("Pinned");
    set.secrets.clear();
    const { transport } = recordingTransport();
    const pins = statusHostKeyPins(() => undefined);
    await expect(manifestSessionProvider(set, transport, pins)(host)).rejects.toThrow(/names Secret "ssh".*add the Secret to the files you pass with -f/);
    await expect(manifestSessionProvider(set, transport, pins, (ns, name) => `create ${ns}/${name}`)(host)).rejects.toThrow(/names Secret "ssh".*create lab\/ssh$/);
  });

  it("TrustOnFirstUse: pins the key recorded in status.observedHostKey, and names status as the store", async () => {
    const { set, host } = hostSet("TrustOnFirstUse");
    const { transport, calls } = recordingTransport();
    const observed = new Map<DDIHost, string>([[host, RECORDED]]);
    await manifestSessionProvider(set, transport, statusHostKeyPins((h) => observed.get(h)))(host);
    expect(calls).toEqual([expect.objectContaining({ pinnedHostKey: RECORDED, pinnedHostKeyStore: "status.observedHostKey" })]);
  });

  it("TrustOnFirstUse without a recorded key: no pin (the first key is accepted); the CLI's file names itself", async () => {
    const { set, host } = hostSet("TrustOnFirstUse");
    const { transport, calls } = recordingTransport();
    const dir = await tempDir();
    const pins = await PinnedHostKeys.open(join(dir, "known_hosts.json"));
    await manifestSessionProvider(set, transport, pins)(host);
    expect(calls[0]).not.toHaveProperty("pinnedHostKey");
    expect(calls[0]).toMatchObject({ pinnedHostKeyStore: join(dir, "known_hosts.json") });
  });

  it("Pinned: ignores any recorded key", async () => {
    const { set, host } = hostSet("Pinned");
    const { transport, calls } = recordingTransport();
    await manifestSessionProvider(set, transport, statusHostKeyPins(() => "ssh-ed25519 AAAAother"))(host);
    expect(calls[0]).not.toHaveProperty("pinnedHostKey");
  });
});

describe("PinnedHostKeys", () => {
  const { host } = hostSet("TrustOnFirstUse");
  const hostAt = (address: string): DDIHost => ({ ...host, spec: { ...host.spec, address } });

  it("keeps every pin when many hosts are first seen at once, also through two instances on one file", async () => {
    const path = join(await tempDir(), "sub", "known_hosts.json");
    const [one, two] = await Promise.all([PinnedHostKeys.open(path), PinnedHostKeys.open(path)]);
    const addresses = Array.from({ length: 24 }, (_, i) => `198.18.9.${i + 1}`);
    await Promise.all(addresses.map((a, i) => (i % 2 ? one : two).pin(hostAt(a), `${RECORDED.slice(0, -2)}${i}`)));
    const onDisk = JSON.parse(await readFile(path, "utf8")) as Record<string, string>;
    expect(Object.keys(onDisk).sort()).toEqual(addresses.map((a) => `${a}:22`).sort());
    expect(await readdir(join(path, ".."))).toEqual(["known_hosts.json"]);
    const reopened = await PinnedHostKeys.open(path);
    expect(reopened.get(hostAt("198.18.9.24"))).toBe(`${RECORDED.slice(0, -2)}23`);
  });
});
