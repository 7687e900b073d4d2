// The controller's pure decisions: which events are worth a pass, which Secrets a namespace
// needs, what a pass still waits for, and the finalizer's bookkeeping.
import { describe, expect, it } from "vitest";
import { API_GROUP_VERSION, type HAPair, haPairSpecSchema } from "../api/index.js";
import type { KubeItem } from "../engine/kube-status.js";
import { isWorthAPass } from "./controller.js";
import { CLEANUP_FINALIZER, IN_USE_FINALIZER, addingFinalizer, hostsInUse, inUseFinalizerChange, pairRemovalsByHost, removingFinalizer } from "./finalizer.js";
import { startHealthServer } from "./health-server.js";
import { collectionPath } from "./kube-client.js";
import { ControllerMetrics } from "./metrics.js";
import { abandonedMessage, referencedSecretNames, waitingResources } from "./reconcile-object.js";

const item = (kind: string, metadata: Partial<KubeItem["metadata"]> = {}, spec: object = {}): KubeItem => ({
  apiVersion: API_GROUP_VERSION,
  kind,
  metadata: { name: "x", namespace: "ns", generation: 1, resourceVersion: "1", ...metadata },
  spec,
});

describe("isWorthAPass", () => {
  it.each([
    ["a status write (ours or anyone's)", item("HAPair", { resourceVersion: "2" }), false],
    ["a spec change (generation bump)", item("HAPair", { generation: 2, resourceVersion: "2" }), true],
    ["a deletion starting", item("HAPair", { resourceVersion: "2", deletionTimestamp: "2026-01-01T00:00:00Z" }), true],
    ["a finalizer added or removed", item("HAPair", { resourceVersion: "2", finalizers: [CLEANUP_FINALIZER] }), true],
    ["a label change", item("HAPair", { resourceVersion: "2", labels: { a: "b" } }), true],
  ])("%s", (_name, next, expected) => {
    expect(isWorthAPass(next, item("HAPair"))).toBe(expected);
  });

  it("an object the cache did not hold is always worth a pass", () => {
    expect(isWorthAPass(item("HAPair"), undefined)).toBe(true);
  });
});

describe("referencedSecretNames", () => {
  it("names the DDIHosts' credentials and the failover peers' OMAPI keys, once each", () => {
    const items = [
      item("DDIHost", { name: "h1" }, { credentialsSecretRef: { name: "ssh" } }),
      item("DDIHost", { name: "h2" }, { credentialsSecretRef: { name: "ssh" } }),
      item("DhcpFailoverPeer", {}, { omapi: { keySecretRef: { name: "omapi" } } }),
      item("DhcpFailoverPeer", { name: "generated-key" }, { omapi: {} }),
      item("HAPair"),
    ];
    expect(referencedSecretNames(items)).toEqual(["omapi", "ssh"]);
  });
});

describe("waitingResources", () => {
  const status = (...conditions: [string, string][]) => ({ conditions: conditions.map(([type, s]) => ({ type, status: s })) });
  it("lists what is neither Ready nor Stalled", () => {
    const r = (name: string) => ({ kind: "HAPair", metadata: { name, namespace: "ns" } });
    const statuses = [
      { resource: r("ready"), status: status(["Ready", "True"]) },
      { resource: r("stalled"), status: status(["Ready", "False"], ["Stalled", "True"]) },
      { resource: r("settling"), status: status(["Ready", "False"]) },
      { resource: r("new"), status: {} },
    ];
    expect(waitingResources(statuses as never)).toEqual(["HAPair settling", "HAPair new"]);
  });
});

describe("the in-use finalizer on DDIHosts", () => {
  const hap = (name: string, hosts: [string, string], opts: { finalizer?: boolean; deletionPolicy?: string } = {}) => ({
    metadata: { name, ...(opts.finalizer === false ? {} : { finalizers: [CLEANUP_FINALIZER] }) },
    spec: { primary: { host: hosts[0] }, secondary: { host: hosts[1] }, ...(opts.deletionPolicy ? { deletionPolicy: opts.deletionPolicy } : {}) },
  });
  const host = (name: string, finalizers?: string[], deleting = false) => ({
    metadata: { name, ...(finalizers ? { finalizers } : {}), ...(deleting ? { deletionTimestamp: "2025-01-01T00:00:00Z" } : {}) },
  });

  it("protects the hosts of pairs that still have our cleanup finalizer and deletionPolicy Remove (the default)", () => {
    const inUse = hostsInUse([
      hap("a", ["h1", "h2"]),
      hap("b", ["h3", "h4"], { deletionPolicy: "Retain" }),
      hap("c", ["h5", "h6"], { finalizer: false }),
      hap("d", ["h2", "h7"], { deletionPolicy: "Remove" }),
    ]);
    expect([...inUse].sort()).toEqual(["h1", "h2", "h7"]);
  });

  it("is added to a host in use, never to one being deleted, and removed once no pair needs the host", () => {
    const inUse = new Set(["h1"]);
    expect(inUseFinalizerChange(host("h1", ["x"]), inUse)).toEqual(["x", IN_USE_FINALIZER]);
    expect(inUseFinalizerChange(host("h1", [IN_USE_FINALIZER]), inUse)).toBeUndefined();
    expect(inUseFinalizerChange(host("h1", undefined, true), inUse)).toBeUndefined();
    expect(inUseFinalizerChange(host("h1", [IN_USE_FINALIZER], true), inUse)).toBeUndefined();
    expect(inUseFinalizerChange(host("h2", ["x", IN_USE_FINALIZER], true), inUse)).toEqual(["x"]);
    expect(inUseFinalizerChange(host("h2"), inUse)).toBeUndefined();
  });

  it("a pair deleted without reaching a host says which host, why, and which files are left", () => {
    expect(abandonedMessage([{ host: "h1", why: "DDIHost h1 does not exist any more", files: ["/etc/keepalived/ddi-ha.d/site_vip.conf"] }])).toBe(
      "deleted without cleaning up h1 (DDIHost h1 does not exist any more; left on it: /etc/keepalived/ddi-ha.d/site_vip.conf): remove those files by hand and reload keepalived",
    );
  });
});

describe("the cleanup finalizer", () => {
  it("is added once, after the finalizers already there, and removed leaving the others", () => {
    expect(addingFinalizer(undefined)).toEqual([CLEANUP_FINALIZER]);
    expect(addingFinalizer(["other.io/x"])).toEqual(["other.io/x", CLEANUP_FINALIZER]);
    expect(addingFinalizer(["other.io/x", CLEANUP_FINALIZER])).toBeUndefined();
    expect(removingFinalizer(["a", CLEANUP_FINALIZER, "b"])).toEqual(["a", "b"]);
    expect(removingFinalizer(undefined)).toEqual([]);
  });

  const pair = (deletionPolicy: "Remove" | "Retain"): HAPair => ({
    apiVersion: API_GROUP_VERSION,
    kind: "HAPair",
    metadata: { name: "vip", namespace: "site" },
    spec: haPairSpecSchema.parse({
      primary: { host: "h1", interface: "eth0" },
      secondary: { host: "h2", interface: "eth0" },
      virtualIP: "198.18.0.200/24",
      virtualRouterID: 51,
      services: {},
      deletionPolicy,
    }),
  });

  it("Remove takes the pair's own file off each node; Retain nothing", () => {
    const removals = pairRemovalsByHost(pair("Remove"));
    expect([...removals.keys()]).toEqual(["h1", "h2"]);
    expect(removals.get("h1")).toEqual([expect.objectContaining({ path: "/etc/keepalived/ddi-ha.d/site_vip.conf", ownership: "owned", service: "keepalived.service" })]);
    expect(pairRemovalsByHost(pair("Retain")).size).toBe(0);
  });
});

describe("collectionPath", () => {
  it("is the group's collection, namespaced or across all namespaces", () => {
    expect(collectionPath("HAPair", "site a")).toBe("/apis/ddi-ha.io/v1alpha1/namespaces/site%20a/hapairs");
    expect(collectionPath("DDIHost", undefined)).toBe("/apis/ddi-ha.io/v1alpha1/ddihosts");
  });
});

describe("the health server", () => {
  it("serves /healthz, /readyz (503 until ready) and /metrics", async () => {
    let ready = false;
    const metrics = new ControllerMetrics();
    const server = await startHealthServer({ port: 0, host: "127.0.0.1", registry: metrics.registry, isReady: () => ready });
    try {
      const get = (path: string) => fetch(`http://127.0.0.1:${server.port}${path}`);
      expect((await get("/healthz")).status).toBe(200);
      expect((await get("/readyz")).status).toBe(503);
      ready = true;
      expect((await get("/readyz")).status).toBe(200);
      const m = await get("/metrics");
      expect(m.headers.get("content-type")).toContain("text/plain");
      expect(await m.text()).toContain("ddi_ha_reconcile_total");
      expect((await get("/nope")).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
