import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { importKea, KEA_CTRL_AGENT_CONF, KEA_DHCP4_CONF } from "./kea.js";
import { buildReport } from "./report.js";
import type { ImportHost } from "./types.js";

const testdata = (name: string) => readFileSync(join(import.meta.dirname, "testdata", name), "utf8");
const host = (name: string, address: string, files: Record<string, string>): ImportHost => ({ name, address, port: 22, user: "root", files: new Map(Object.entries(files)) });
const hosts = () => [
  host("kea-1", "198.18.56.33", { [KEA_DHCP4_CONF]: testdata("kea-server1.conf"), [KEA_CTRL_AGENT_CONF]: testdata("kea-ctrl-agent-server1.conf") }),
  host("kea-2", "198.18.56.66", { [KEA_DHCP4_CONF]: testdata("kea-server2.conf") }),
];

describe("importKea on Micetro's hook section (seed 001 shape)", () => {
  it("makes one KeaHACluster from the primary's relationship, each host the peer it names itself", () => {
    const { manifests, notes } = importKea(hosts(), "kea");
    expect(manifests).toEqual([
      {
        apiVersion: "ddi-ha.io/v1alpha1",
        kind: "KeaHACluster",
        metadata: { name: "kea-server1", namespace: "kea" },
        spec: {
          mode: "load-balancing",
          peers: [
            { name: "server1", host: "kea-1", role: "primary", interface: "eth0" },
            { name: "server2", host: "kea-2", role: "secondary", interface: "eth0" },
          ],
          configSync: "PrimaryIsSourceOfTruth",
          heartbeatDelay: "1s",
          maxResponseDelay: "10s",
          maxAckDelay: "5s",
          maxUnackedClients: 0,
        },
      },
    ]);
    expect(notes).toEqual([]);
  });

  it("names the backup peer no --host stands for, and the Control Agent's authentication", () => {
    const seen = importKea(hosts(), "kea").unrepresentable.map((u) => `${u.host}:${u.file}:${u.what}`);
    expect(seen).toEqual(["kea-1:/etc/kea/kea-dhcp4.conf:peer server3 (http://198.18.56.99:8000/)", "kea-1:/etc/kea/kea-ctrl-agent.conf:authentication"]);
  });

  it("imports peers whose Dhcp4 differ beyond their names as HAOnly", () => {
    const h = hosts();
    const other = host("kea-2", "198.18.56.66", { [KEA_DHCP4_CONF]: testdata("kea-server2.conf").replace('"valid-lifetime": 4000', '"valid-lifetime": 7200') });
    const { manifests, notes } = importKea([h[0]!, other], "kea");
    expect(manifests[0]!.spec!.configSync).toBe("HAOnly");
    expect(notes.join("\n")).toContain("configSync: HAOnly");
  });

  it("reports the Kea files the first apply rewrites and the restart of kea-dhcp4", async () => {
    const h = hosts();
    const report = await buildReport(h, "kea", [importKea(h, "kea")]);
    expect(report.problems.filter((p) => p.startsWith("error"))).toEqual([]);
    expect(report.failures).toEqual([]);
    const dhcp4 = report.files.find((f) => f.host === "kea-2" && f.path === KEA_DHCP4_CONF)!;
    expect(dhcp4.change).toBe("changed");
    // server3 leaves the relationship: the one change in meaning, and the diff shows it.
    expect(dhcp4.sameJson).toBe(false);
    expect(dhcp4.diff).toContain('-          "name": "server3",');
    expect(JSON.parse(dhcp4.content).Dhcp4["hooks-libraries"][1].parameters["high-availability"][0]["this-server-name"]).toBe("server2");
    expect(report.services).toEqual(
      expect.arrayContaining([expect.objectContaining({ host: "kea-1", service: "kea-dhcp4-server.service", action: "restart" }), expect.objectContaining({ host: "kea-2", service: "kea-ctrl-agent.service", action: "restart" })]),
    );
  });
});
