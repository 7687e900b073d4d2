import { describe, expect, it } from "vitest";
import type { ManifestDocument } from "../manifests/load.js";
import { validateManifests } from "../validation/validate.js";
import { renderManifestSet } from "./render-set.js";

const ns = "lab";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const host = (name: string, address: string) => ({
  apiVersion: "ddi-ha.io/v1alpha1",
  kind: "DDIHost",
  metadata: { name, namespace: ns },
  spec: { address, credentialsSecretRef: { name: "ssh" }, hostKey: KEY },
});
const kea = (name: string, peers: [string, string]) => ({
  apiVersion: "ddi-ha.io/v1alpha1",
  kind: "KeaHACluster",
  metadata: { name, namespace: ns },
  spec: { mode: "hot-standby", peers: [{ name: `${name}-1`, host: peers[0], role: "primary" }, { name: `${name}-2`, host: peers[1], role: "standby" }] },
});
const pair = {
  apiVersion: "ddi-ha.io/v1alpha1",
  kind: "HAPair",
  metadata: { name: "vip", namespace: ns },
  spec: { primary: { host: "a", interface: "eth0" }, secondary: { host: "b", interface: "eth0" }, virtualIP: "198.18.0.100/24", virtualRouterID: 51, services: { dns: true } },
};

/** A set as the operator holds it; cross-object problems are ignored, as they are by a renderer that is handed such a set. */
function setOf(objects: object[]) {
  const docs: ManifestDocument[] = objects.map((object, i) => ({ source: `t#${i + 1}`, object: object as Record<string, unknown> }));
  return validateManifests(docs).set;
}

describe("renderManifestSet", () => {
  const hosts = [host("a", "198.18.0.2"), host("b", "198.18.0.3"), host("c", "198.18.0.4")];

  it("reports a file two resources fight over as a failure of each, naming both and the file, and renders the others", () => {
    const set = setOf([...hosts, pair, kea("one", ["a", "b"]), kea("two", ["c", "a"])]);
    const { files, failures } = renderManifestSet(set);
    const message = "/etc/kea/kea-dhcp4.conf on DDIHost a is rendered by both KeaHACluster lab/one and KeaHACluster lab/two: give them different config paths or hosts";
    expect(failures).toEqual([
      { resource: "KeaHACluster lab/one", message },
      { resource: "KeaHACluster lab/two", message },
    ]);
    expect(files.some((f) => f.path.startsWith("/etc/kea/"))).toBe(false);
    expect(files.filter((f) => f.path === "/etc/keepalived/keepalived.conf").map((f) => f.host)).toEqual(["a", "b"]);
  });

  it("reports one resource rendering one file twice", () => {
    const set = setOf([...hosts, kea("one", ["a", "b"])]);
    set.keaClusters[0]!.spec.controlAgentConfigPath = set.keaClusters[0]!.spec.configPath; // past the schema, as a hand-built set could be
    expect(renderManifestSet(set).failures).toEqual([
      { resource: "KeaHACluster lab/one", message: expect.stringContaining("/etc/kea/kea-dhcp4.conf on DDIHost a is rendered twice by KeaHACluster lab/one") },
    ]);
  });
});
