import { describe, expect, it } from "vitest";
import { renderKeaCluster } from "./render.js";
import { keaClusterRemovals, withoutHAHook } from "./removal.js";
import { testCluster, testHost } from "./test-fixtures.js";

const hosts = new Map([
  ["kea-a", testHost("kea-a", "198.18.0.11")],
  ["kea-b", testHost("kea-b", "198.18.0.12")],
]);
const spec = (extra: Record<string, unknown> = {}) => ({
  mode: "hot-standby",
  peers: [
    { name: "server1", host: "kea-a", role: "primary" },
    { name: "server2", host: "kea-b", role: "standby" },
  ],
  dhcp4: { "valid-lifetime": 3600, subnet4: [{ id: 1, subnet: "198.18.0.0/24", pools: [{ pool: "198.18.0.150 - 198.18.0.199" }] }] },
  ...extra,
});
const hooksOf = (text: string) => (JSON.parse(text) as { Dhcp4: { "hooks-libraries": { library: string }[] } }).Dhcp4["hooks-libraries"].map((h) => h.library);

describe("withoutHAHook", () => {
  it("takes only libdhcp_ha.so out; lease_cmds, the user's hooks, subnets and other sections stay", () => {
    const text = JSON.stringify({
      Dhcp4: {
        "hooks-libraries": [
          { library: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_stat_cmds.so" },
          { library: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so" },
          { library: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so", parameters: { "high-availability": [] } },
        ],
        subnet4: [{ id: 7, subnet: "198.18.0.0/24" }],
      },
      Logging: { loggers: [] },
    });
    const out = JSON.parse(withoutHAHook(text, "kea-a:/etc/kea/kea-dhcp4.conf"));
    expect(hooksOf(JSON.stringify(out))).toEqual(["/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_stat_cmds.so", "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so"]);
    expect(out.Dhcp4.subnet4).toEqual([{ id: 7, subnet: "198.18.0.0/24" }]);
    expect(out.Logging).toEqual({ loggers: [] });
  });

  it("names the file and the way out when it cannot be read as a Kea config", () => {
    expect(() => withoutHAHook('{"Dhcp6": {}}', "kea-a:/etc/kea/kea-dhcp4.conf")).toThrow("kea-a:/etc/kea/kea-dhcp4.conf has no Dhcp4 object; fix the file or set spec.deletionPolicy to Retain");
    expect(() => withoutHAHook("{ not json", "kea-a:/etc/kea/kea-dhcp4.conf")).toThrow(/kea-a:\/etc\/kea\/kea-dhcp4.conf/);
  });
});

describe("keaClusterRemovals", () => {
  const cluster = testCluster(spec());
  const rendered = renderKeaCluster(cluster, hosts);
  const live = (host: string) => rendered.find((f) => f.host === host && f.path === "/etc/kea/kea-dhcp4.conf")?.content;

  it("Remove: every peer loses the HA hook and gets its agent on 127.0.0.1; only the primary keeps serving", () => {
    const removals = keaClusterRemovals(cluster, live);
    expect(removals.map((r) => ({ host: r.host, stop: r.stop, paths: r.files.map((f) => f.path) }))).toEqual([
      { host: "kea-a", stop: [], paths: ["/etc/kea/kea-dhcp4.conf", "/etc/kea/kea-ctrl-agent.conf"] },
      { host: "kea-b", stop: ["kea-dhcp4-server.service"], paths: ["/etc/kea/kea-dhcp4.conf", "/etc/kea/kea-ctrl-agent.conf"] },
    ]);
    for (const r of removals) {
      const [dhcp4, agent] = r.files as [(typeof r.files)[0], (typeof r.files)[0]];
      expect(hooksOf(live(r.host)!).some((l) => l.endsWith("/libdhcp_ha.so"))).toBe(true);
      expect(hooksOf(dhcp4.content).some((l) => l.endsWith("/libdhcp_ha.so"))).toBe(false);
      expect(hooksOf(dhcp4.content).some((l) => l.endsWith("/libdhcp_lease_cmds.so"))).toBe(true);
      expect(dhcp4).toMatchObject({ host: r.host, ownership: "owned", service: "kea-dhcp4-server.service", check: { kind: "kea-dhcp4" }, owner: "lab/kea" });
      expect(JSON.parse(agent.content)["Control-agent"]).toMatchObject({ "http-host": "127.0.0.1", "http-port": 8000 });
      expect(agent).toMatchObject({ service: "kea-ctrl-agent.service", check: { kind: "kea-ctrl-agent" } });
    }
  });

  it("a peer whose config is gone gets only its agent file; backups and secondaries are stopped too; Retain does nothing", () => {
    expect(keaClusterRemovals(cluster, () => undefined).map((r) => r.files.map((f) => f.path))).toEqual([["/etc/kea/kea-ctrl-agent.conf"], ["/etc/kea/kea-ctrl-agent.conf"]]);
    const lb = testCluster(spec({ mode: "load-balancing", peers: [{ name: "s1", host: "kea-a", role: "primary" }, { name: "s2", host: "kea-b", role: "secondary" }] }));
    expect(keaClusterRemovals(lb, () => undefined).map((r) => r.stop)).toEqual([[], ["kea-dhcp4-server.service"]]);
    expect(keaClusterRemovals(testCluster(spec({ deletionPolicy: "Retain" })), live)).toEqual([]);
  });
});
