import { describe, expect, it } from "vitest";
import { parseManifestText } from "../manifests/load.js";
import { renderManifestSet } from "../render/render-set.js";
import { validateManifests } from "../validation/validate.js";
import { FIRST_VRID, ansibleInventory, densePairs, fleetManifestText, fleetPairs, type FleetHost, type FleetSegment } from "./fleet-manifests.js";

const KEY = (n: number) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(n % 10).repeat(43)}`;
const hosts = (n: number): FleetHost[] =>
  Array.from({ length: n }, (_, i) => ({ name: `h${i + 1}`, address: `198.18.7.${11 + i}`, interface: "eth0", hostKeyLine: KEY(i) }));
const vip = (i: number) => `198.18.7.${200 + i}`;
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----\n";

describe("fleetPairs", () => {
  it("pairs neighbours with distinct VRIDs and the VIP of their index", () => {
    const pairs = fleetPairs(hosts(6), vip);
    expect(pairs.map((p) => [p.name, p.primary.name, p.secondary.name, p.vip, p.vrid])).toEqual([
      ["vip1", "h1", "h2", "198.18.7.200", FIRST_VRID],
      ["vip2", "h3", "h4", "198.18.7.201", FIRST_VRID + 1],
      ["vip3", "h5", "h6", "198.18.7.202", FIRST_VRID + 2],
    ]);
  });

  it("refuses an odd host count", () => {
    expect(() => fleetPairs(hosts(3), vip)).toThrow(/even number of hosts/);
  });
});

describe("fleetManifestText", () => {
  it("validates and renders four keepalived files per host for 100 hosts", () => {
    const h = hosts(100).map((x, i) => ({ ...x, address: `198.18.${7 + Math.floor(i / 150)}.${11 + i}` }));
    const pairs = fleetPairs(h, vip);
    const documents = parseManifestText(fleetManifestText(h, pairs, PRIVATE_KEY, 24), "fleet.yaml");
    const { set, problems } = validateManifests(documents);
    expect(problems).toEqual([]);
    expect(set.haPairs).toHaveLength(50);
    const { files, failures } = renderManifestSet(set);
    expect(failures).toEqual([]);
    expect(files).toHaveLength(400);
    const h1 = files.filter((f) => f.host === "h1").map((f) => f.path).sort();
    expect(h1).toEqual(["/etc/keepalived/ddi-ha.d/fleet_vip1.conf", "/etc/keepalived/keepalived.conf", "/usr/local/libexec/ddi-ha/keepalived-notify", "/var/lib/ddi-ha/keepalived-maintenance"]);
  });
});

describe("densePairs", () => {
  // Five L2 segments, as the controller bench builds them: eth0 plus four more networks.
  const segments = (n: number): FleetSegment[] =>
    Array.from({ length: 5 }, (_, k) => ({
      interfaceOf: new Map(hosts(n).map((h) => [h.name, `eth${k}`])),
      prefixLength: 24,
      capacity: 254 - (11 + n) + 1,
      vip: (i: number) => `198.18.${20 + k}.${11 + n + i}`,
    }));

  it("puts 960 pairs on 40 hosts without a VRID or VIP collision, 48 per host, and they render", () => {
    const h = hosts(40);
    const pairs = densePairs(h, segments(40), 960);
    const documents = parseManifestText(fleetManifestText(h, pairs, PRIVATE_KEY, 24, "bench"), "dense.yaml");
    const { set, problems } = validateManifests(documents);
    expect(problems).toEqual([]);
    expect(set.haPairs).toHaveLength(960);
    expect(set.hosts.size).toBe(40);
    expect(set.haPairs.every((p) => p.metadata.namespace === "bench")).toBe(true);
    const perHost = new Map<string, number>();
    for (const p of pairs) for (const n of [p.primary.name, p.secondary.name]) perHost.set(n, (perHost.get(n) ?? 0) + 1);
    expect(new Set(perHost.values())).toEqual(new Set([48]));
    // Couples only: a host shares pairs with its neighbour and no one else.
    expect(pairs.every((p) => Math.abs(Number(p.primary.name.slice(1)) - Number(p.secondary.name.slice(1))) === 1)).toBe(true);
    // Each host is primary for half of its pairs.
    expect(pairs.filter((p) => p.primary.name === "h1")).toHaveLength(24);
    const { failures } = renderManifestSet(set);
    expect(failures).toEqual([]);
  });

  it("refuses more pairs than the segments have VIPs for", () => {
    expect(() => densePairs(hosts(40), segments(40), 5 * 204 + 1)).toThrow(/room for 1020/);
  });
});

describe("ansibleInventory", () => {
  it("lists every host with its address and pins host keys through the lab's known_hosts", () => {
    const text = ansibleInventory(hosts(2), "/tmp/x/id_ed25519", "/tmp/x/known_hosts");
    expect(text).toContain("h1 ansible_host=198.18.7.11\nh2 ansible_host=198.18.7.12\n");
    expect(text).toContain("ansible_ssh_common_args=-o UserKnownHostsFile=/tmp/x/known_hosts -o StrictHostKeyChecking=yes");
  });

  it("refuses a path an INI line cannot carry", () => {
    expect(() => ansibleInventory(hosts(2), "/tmp/my key", "/tmp/kh")).toThrow(/\/tmp\/my key/);
  });
});
