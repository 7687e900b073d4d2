import { describe, expect, it } from "vitest";
import { parseManifestText } from "../manifests/load.js";
import { validateManifests } from "../validation/validate.js";
import { ipv4ToNumber } from "../net/ipv4.js";
import { type LabInventory, LAB_NAMESPACE, defaultLabManifests, labManifestYaml } from "./default-manifests.js";

const KEY = (n: number) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(n).repeat(43).slice(0, 43)}`;

function inventory(overrides: Partial<LabInventory> = {}): LabInventory {
  return {
    subnet: "198.18.7.0/24",
    gateway: "198.18.7.1",
    vip: "198.18.7.200",
    hosts: [11, 12, 13, 14].map((i) => ({ address: `198.18.7.${i}`, interface: "eth0", hostKeyLine: KEY(i % 10) })),
    privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----\n",
    omapiSecret: Buffer.alloc(32, 7).toString("base64"),
    ...overrides,
  };
}

/** The files as `ddi-ha validate -f` reads them. */
function validateFiles(inv: LabInventory, namespace?: string) {
  const files = defaultLabManifests(inv, namespace ? { namespace } : {});
  const documents = files.flatMap((f) => parseManifestText(labManifestYaml(f), f.name));
  return { files, documents, ...validateManifests(documents) };
}

describe("defaultLabManifests", () => {
  it("is a valid set for ddi-ha validate: four hosts, one of each relationship, in ddi-ha-lab", () => {
    const { set, problems, documents } = validateFiles(inventory());
    expect(problems).toEqual([]);
    expect([...set.hosts.keys()]).toEqual(["ddi-ha-lab/h1", "ddi-ha-lab/h2", "ddi-ha-lab/h3", "ddi-ha-lab/h4"]);
    expect(set.haPairs.map((p) => p.metadata.name)).toEqual(["lab-vip"]);
    expect(set.failoverPeers.map((p) => p.metadata.name)).toEqual(["lab-dhcp"]);
    expect(set.keaClusters.map((p) => p.metadata.name)).toEqual(["lab-kea"]);
    const namespaces = documents.filter((d) => d.object.kind !== "Namespace").map((d) => (d.object.metadata as { namespace?: string }).namespace);
    expect(new Set(namespaces)).toEqual(new Set([LAB_NAMESPACE]));
    expect(documents.filter((d) => d.object.kind === "Namespace").map((d) => (d.object.metadata as { name: string }).name)).toEqual([LAB_NAMESPACE]);
  });

  it("pins each host's own key and reaches it as root with the lab's Secret", () => {
    const inv = inventory();
    const { set } = validateFiles(inv);
    [...set.hosts.values()].forEach((h, i) => {
      expect(h.spec).toMatchObject({ address: inv.hosts[i]!.address, port: 22, user: "root", hostKeyPolicy: "Pinned", hostKey: inv.hosts[i]!.hostKeyLine });
    });
    expect(set.secrets.get("ddi-ha-lab/lab-ssh")?.values.privateKey).toBe(inv.privateKey);
    expect(set.secrets.get("ddi-ha-lab/lab-dhcp-omapi")?.values).toEqual({ algorithm: "hmac-sha256", secret: inv.omapiSecret });
  });

  it("puts the VIP on h1/h2 with VRID 51, dhcpd failover on h1/h2, Kea hot-standby on h3/h4", () => {
    const { set } = validateFiles(inventory());
    expect(set.haPairs[0]!.spec).toMatchObject({
      primary: { host: "h1", interface: "eth0" },
      secondary: { host: "h2", interface: "eth0" },
      virtualIP: "198.18.7.200/24",
      virtualRouterID: 51,
      services: { dns: false, dhcp: "None" },
    });
    expect(set.failoverPeers[0]!.spec).toMatchObject({
      primary: { host: "h1", address: "198.18.7.11" },
      secondary: { host: "h2", address: "198.18.7.12" },
      omapi: { keySecretRef: { name: "lab-dhcp-omapi" } },
      subnets: [{ subnet: "198.18.7.0/24", options: { routers: ["198.18.7.1"] }, pools: [{ range: ["198.18.7.100", "198.18.7.139"] }] }],
    });
    expect(set.keaClusters[0]!.spec).toMatchObject({
      mode: "hot-standby",
      peers: [
        { name: "h3", host: "h3", role: "primary" },
        { name: "h4", host: "h4", role: "standby" },
      ],
    });
  });

  it("keeps both pools away from the hosts, the VIP, the router and each other", () => {
    const inv = inventory();
    const { set } = validateFiles(inv);
    const dhcpd = set.failoverPeers[0]!.spec.subnets[0]!.pools[0]!.range.map(ipv4ToNumber) as [number, number];
    const keaPool = String((set.keaClusters[0]!.spec.dhcp4!.subnet4 as { pools: { pool: string }[] }[])[0]!.pools[0]!.pool);
    const kea = keaPool.split(" - ").map(ipv4ToNumber) as [number, number];
    const used = [inv.gateway, inv.vip, ...inv.hosts.map((h) => h.address)].map(ipv4ToNumber);
    for (const [first, last] of [dhcpd, kea]) for (const a of used) expect(a < first || a > last, `${a} in pool`).toBe(true);
    expect(dhcpd[1] < kea[0] || kea[1] < dhcpd[0]).toBe(true);
  });

  it("uses the namespace it is given (tests need their own)", () => {
    const { set, problems } = validateFiles(inventory(), "lab-test-1");
    expect(problems).toEqual([]);
    expect(set.haPairs[0]!.metadata.namespace).toBe("lab-test-1");
  });

  it.each([
    ["three hosts", { hosts: inventory().hosts.slice(0, 3) }, "needs 4 hosts, the lab has 3"],
    ["a VIP outside the subnet", { vip: "198.18.8.200" }, "198.18.8.200 is not in the lab subnet 198.18.7.0/24"],
    ["a VIP inside the dhcpd pool", { vip: "198.18.7.120" }, "the pool 198.18.7.100-198.18.7.139 would contain 198.18.7.120"],
    [
      "a host inside the Kea pool",
      { hosts: [...inventory().hosts.slice(0, 3), { address: "198.18.7.160", interface: "eth0", hostKeyLine: KEY(4) }] },
      "the pool 198.18.7.150-198.18.7.189 would contain 198.18.7.160",
    ],
    ["a subnet too small for the pools", { subnet: "198.18.7.0/25", vip: "198.18.7.20" }, "too small for a pool at +100..+139"],
  ] as const)("refuses %s", (_name, overrides, message) => {
    expect(() => defaultLabManifests(inventory(overrides as Partial<LabInventory>))).toThrow(message);
  });

  it("writes each file as commented multi-document YAML", () => {
    const [, secrets] = defaultLabManifests(inventory());
    const text = labManifestYaml(secrets!);
    expect(text.split("\n")[0]).toMatch(/^# The lab's SSH key/);
    expect(parseManifestText(text, "10-secrets.yaml").map((d) => d.source)).toEqual(["10-secrets.yaml#1", "10-secrets.yaml#2"]);
  });
});
