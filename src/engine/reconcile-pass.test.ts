// The pass's bookkeeping without hosts: every session fails as an unreachable host would, so
// what is left to check is which resource gets which verdict.
import { describe, expect, it } from "vitest";
import type { DDIHost } from "../api/index.js";
import { parseManifestText } from "../manifests/load.js";
import type { HostSession } from "../exec/host-io.js";
import { HostKeyMismatchError, HostUnreachableError, fingerprintOf } from "../ssh/index.js";
import { findCondition } from "../status/index.js";
import { validateManifests } from "../validation/validate.js";
import { defaultLabManifests, labManifestYaml } from "../lab/default-manifests.js";
import { type KubeItem, needsApply } from "./kube-status.js";
import { newPassMemory, reconcilePass } from "./reconcile-pass.js";
import type { VerifiedHostKey } from "./render-inputs.js";

function labDocuments() {
  const files = defaultLabManifests({
    subnet: "198.18.7.0/24",
    gateway: "198.18.7.1",
    vip: "198.18.7.200",
    hosts: [11, 12, 13, 14].map((i) => ({ address: `198.18.7.${i}`, interface: "eth0", hostKeyLine: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" })),
    privateKey: "unused",
    omapiSecret: Buffer.alloc(32, 1).toString("base64"),
  });
  return files.flatMap((f) => parseManifestText(labManifestYaml(f), f.name));
}

function labSet() {
  const { set, problems } = validateManifests(labDocuments());
  expect(problems).toEqual([]);
  return set;
}

const unreachable = async (host: DDIHost): Promise<never> => {
  throw new HostUnreachableError({ host: host.metadata.name, address: host.spec.address, port: 22, user: "root" }, "connect ETIMEDOUT");
};

describe("reconcilePass with every host unreachable", () => {
  it("stalls only the resource with a spec problem, and reports the others' apply as HostUnreachable", async () => {
    const set = labSet();
    const now = new Date("2026-11-22T08:00:00Z");
    const result = await reconcilePass(set, unreachable, {
      apply: true,
      problems: [{ severity: "error", resource: "HAPair ddi-ha-lab/lab-vip", path: "spec.virtualRouterID", message: "collides with HAPair other" }],
      now: () => now,
    });
    const statusOf = (kind: string, name: string) => result.statuses.find((s) => s.resource.kind === kind && s.resource.metadata.name === name)!.status;

    expect(result.applied.get("HAPair/ddi-ha-lab/lab-vip")?.outcome).toEqual({ specProblems: ["spec.virtualRouterID: collides with HAPair other"] });
    const hap = statusOf("HAPair", "lab-vip");
    expect(findCondition(hap.conditions, "Stalled")).toMatchObject({ status: "True", reason: "InvalidSpec" });
    expect(findCondition(hap.conditions, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });

    for (const [kind, name] of [["DhcpFailoverPeer", "lab-dhcp"], ["KeaHACluster", "lab-kea"]] as const) {
      const status = statusOf(kind, name);
      expect(findCondition(status.conditions, "ConfigApplied"), kind).toMatchObject({ status: "False", reason: "HostUnreachable" });
      expect(findCondition(status.conditions, "Stalled"), kind).toBeUndefined();
      expect(findCondition(status.conditions, "Ready")?.status, kind).toBe("False");
    }
    const h1 = statusOf("DDIHost", "h1");
    expect(findCondition(h1.conditions, "Reachable")).toMatchObject({ status: "False", reason: "HostUnreachable" });
    expect(findCondition(h1.conditions, "Reachable")?.message).toContain("connect ETIMEDOUT");
    expect(result.statuses.every((s) => s.status.observedGeneration === 0)).toBe(true);
  });

  it("observes only, when told not to apply: no apply outcome, ConfigApplied absent", async () => {
    const result = await reconcilePass(labSet(), unreachable, { apply: false, memory: newPassMemory() });
    expect(result.applied.size).toBe(0);
    const hap = result.statuses.find((s) => s.resource.kind === "HAPair")!.status;
    expect(findCondition(hap.conditions, "ConfigApplied")).toBeUndefined();
    expect(findCondition(hap.conditions, "Ready")).toMatchObject({ status: "False", reason: "HostUnreachable" });
  });

  it("applies only what the predicate picks", async () => {
    const result = await reconcilePass(labSet(), unreachable, { apply: (r) => r.kind === "KeaHACluster" });
    expect([...result.applied.keys()]).toEqual(["KeaHACluster/ddi-ha-lab/lab-kea"]);
  });
});

describe("reconcilePass: a DDIHost a relationship names does not exist yet", () => {
  it("is ReferenceNotFound and not Stalled, so the next pass applies it once the DDIHost is there", async () => {
    const documents = labDocuments().filter((d) => !(d.object.kind === "DDIHost" && (d.object.metadata as { name: string }).name === "h1"));
    const { set, problems } = validateManifests(documents);
    const errors = problems.filter((p) => p.severity === "error");
    expect(errors.map((p) => [p.resource, p.path, p.kind])).toEqual([
      ["HAPair ddi-ha-lab/lab-vip", "spec.primary.host", "reference"],
      ["DhcpFailoverPeer ddi-ha-lab/lab-dhcp", "spec.primary.host", "reference"],
    ]);
    const now = new Date("2026-11-22T08:00:00Z");
    const first = await reconcilePass(set, unreachable, { apply: true, problems, now: () => now });
    // The renderer's own "does not exist" failure is not a spec problem while the reference is missing.
    expect(first.applied.get("HAPair/ddi-ha-lab/lab-vip")?.outcome).toEqual({
      unresolvedReferences: [expect.stringMatching(/^spec\.primary\.host: DDIHost "h1" not found in namespace "ddi-ha-lab"/)],
    });
    const items = new Map<string, KubeItem>();
    for (const kind of ["HAPair", "DhcpFailoverPeer"]) {
      const { resource, status } = first.statuses.find((s) => s.resource.kind === kind)!;
      expect(findCondition(status.conditions, "Stalled"), kind).toBeUndefined();
      expect(findCondition(status.conditions, "ConfigApplied"), kind).toMatchObject({ status: "False", reason: "ReferenceNotFound" });
      expect(findCondition(status.conditions, "Ready"), kind).toMatchObject({ status: "False", reason: "ReferenceNotFound" });
      const item = { apiVersion: resource.apiVersion, kind, metadata: { ...resource.metadata }, status: status as Record<string, unknown> };
      expect(needsApply(item), kind).toBe(true);
      items.set(kind, item);
    }

    // The DDIHost appears (Argo CD synced it later): the same spec is applied now.
    const full = labSet();
    const second = await reconcilePass(full, unreachable, {
      apply: (r) => r.kind === "KeaHACluster" || needsApply(items.get(r.kind)),
      previousStatus: (r) => items.get(r.kind)?.status,
      now: () => now,
    });
    expect(second.applied.get("HAPair/ddi-ha-lab/lab-vip")?.outcome.errors?.length).toBeGreaterThan(0);
    const hap = second.statuses.find((s) => s.resource.kind === "HAPair")!.status;
    expect(findCondition(hap.conditions, "ConfigApplied")).toMatchObject({ status: "False", reason: "HostUnreachable" });
  });
});

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/** A DDIHost under TrustOnFirstUse (no spec.hostKey, unless Pinned) and its Secret. */
function tofuHostSet(policy: "TrustOnFirstUse" | "Pinned" = "TrustOnFirstUse") {
  const yaml = `apiVersion: v1
kind: Secret
metadata: {name: ssh, namespace: lab}
stringData: {privateKey: unused}
---
apiVersion: ddi-ha.io/v1alpha1
kind: DDIHost
metadata: {name: tofu, namespace: lab}
spec: {address: 198.18.7.21, credentialsSecretRef: {name: ssh}, hostKeyPolicy: ${policy}${policy === "Pinned" ? `, hostKey: "${HOST_KEY}"` : ""}}
`;
  const { set, problems } = validateManifests(parseManifestText(yaml, "tofu.yaml"));
  expect(problems).toEqual([]);
  return set;
}

/** A session that answers every command with empty output, and says which key it verified. */
function verifiedSession(name: string, keyLine: string, run: HostSession["run"] = async () => ({ code: 0, stdout: "", stderr: "" })): HostSession & VerifiedHostKey {
  return {
    hostName: name,
    observedHostKey: keyLine,
    hostKeyFingerprint: fingerprintOf(keyLine),
    run,
    readFile: async () => undefined,
    writeFile: async () => undefined,
    stream: async () => {
      throw new Error("no streams here");
    },
    forward: async () => {
      throw new Error("no forwards here");
    },
  };
}

describe("reconcilePass: the DDIHost's host key in status", () => {
  it("reports the fingerprint of the key the session verified, also under TrustOnFirstUse (no spec.hostKey)", async () => {
    const result = await reconcilePass(tofuHostSet(), async (h) => verifiedSession(h.metadata.name, HOST_KEY), { apply: false });
    const status = result.statuses.find((s) => s.resource.kind === "DDIHost")!.status;
    expect(findCondition(status.conditions, "Reachable")?.status).toBe("True");
    expect(status).toMatchObject({ hostKeyFingerprint: fingerprintOf(HOST_KEY) });
  });

  it("TrustOnFirstUse: records the verified key in status.observedHostKey, which pins it from then on", async () => {
    const result = await reconcilePass(tofuHostSet(), async (h) => verifiedSession(h.metadata.name, HOST_KEY), { apply: false });
    expect(result.statuses.find((s) => s.resource.kind === "DDIHost")!.status).toMatchObject({ observedHostKey: HOST_KEY });
  });

  it("Pinned: status.observedHostKey stays unset (spec.hostKey is the pin)", async () => {
    const result = await reconcilePass(tofuHostSet("Pinned"), async (h) => verifiedSession(h.metadata.name, HOST_KEY), { apply: false });
    const status = result.statuses.find((s) => s.resource.kind === "DDIHost")!.status;
    expect(status).toMatchObject({ hostKeyFingerprint: fingerprintOf(HOST_KEY) });
    expect(status).not.toHaveProperty("observedHostKey");
  });

  it("a changed host key keeps the recorded pin in status", async () => {
    const refused = async (h: DDIHost): Promise<never> => {
      const ref = { host: h.metadata.name, address: h.spec.address, port: 22, user: "root" };
      throw new HostKeyMismatchError(ref, fingerprintOf(HOST_KEY), "SHA256:other", "ssh-ed25519 AAAA", "status.observedHostKey");
    };
    const previous = { observedHostKey: HOST_KEY, hostKeyFingerprint: fingerprintOf(HOST_KEY) };
    const result = await reconcilePass(tofuHostSet(), refused, { apply: false, previousStatus: () => previous });
    const status = result.statuses.find((s) => s.resource.kind === "DDIHost")!.status;
    expect(findCondition(status.conditions, "Stalled")).toMatchObject({ status: "True", reason: "HostKeyMismatch" });
    expect(status).toMatchObject(previous);
  });

  it("keeps that fingerprint when the session connected but the observation failed", async () => {
    const failing = verifiedSession("tofu", HOST_KEY, async () => ({ code: 1, stdout: "", stderr: "sh: broken" }));
    const result = await reconcilePass(tofuHostSet(), async () => failing, { apply: false });
    const status = result.statuses.find((s) => s.resource.kind === "DDIHost")!.status;
    expect(findCondition(status.conditions, "Reachable")).toMatchObject({ status: "False", reason: "ObservationFailed" });
    expect(status).toMatchObject({ hostKeyFingerprint: fingerprintOf(HOST_KEY), observedHostKey: HOST_KEY });
  });
});
