import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { importKeepalived, KEEPALIVED_CONF } from "./keepalived.js";
import { buildReport, formatReport, renderedTargets } from "./report.js";
import type { ImportHost } from "./types.js";

const testdata = (name: string) => readFileSync(join(import.meta.dirname, "testdata", name), "utf8");

function host(name: string, address: string, files: Record<string, string>): ImportHost {
  return { name, address, port: 22, user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd6pWz0b7RTrUejHF2cm6Uu0g2XWtBbWQMmBBx7KM1C", files: new Map(Object.entries(files)) };
}

const pairHosts = () => [
  host("ddi-a", "198.18.17.85", { [KEEPALIVED_CONF]: testdata("keepalived-primary.conf") }),
  host("ddi-b", "198.18.17.197", { [KEEPALIVED_CONF]: testdata("keepalived-secondary.conf") }),
];

describe("importKeepalived on DDI Central's pair (seed 000 shape)", () => {
  it("makes one HAPair that keeps the instance name, VRID, VIP, priorities, auth and the DNS check", () => {
    const { manifests } = importKeepalived(pairHosts(), "ddi");
    expect(manifests).toHaveLength(1);
    expect(manifests[0]).toEqual({
      apiVersion: "ddi-ha.io/v1alpha1",
      kind: "HAPair",
      metadata: { name: "vi-1", namespace: "ddi" },
      spec: {
        instanceName: "VI_1",
        primary: { host: "ddi-a", interface: "enp1s0", configPath: KEEPALIVED_CONF, priority: 150 },
        secondary: { host: "ddi-b", interface: "br0", configPath: KEEPALIVED_CONF, priority: 100 },
        virtualIP: "198.18.17.86/24",
        virtualRouterID: 51,
        services: { dns: true, dhcp: "None" },
        advertInterval: "1s",
        preempt: true,
        unicast: false,
        authPass: "s3cret",
      },
    });
  });

  it("names everything it cannot represent, with host, file and line", () => {
    const { unrepresentable } = importKeepalived(pairHosts(), "ddi");
    const seen = unrepresentable.map((u) => `${u.host}:${u.line}:${u.what}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        "ddi-a:3:router_id ddi-primary",
        "ddi-b:3:router_id ddi-secondary",
        "ddi-a:15:/usr/local/bin/check-upstream.sh",
        "ddi-a:37:smtp_alert",
        "ddi-b:37:smtp_alert",
      ]),
    );
    // The recognised check (chk_named) and the keywords the operator renders itself are not losses.
    expect(seen.some((s) => s.includes("chk_named") || s.includes("enable_script_security") || s.includes("advert_int"))).toBe(false);
  });

  it("names a weight or user on a recognised check: the operator's own replace them", () => {
    const conf = testdata("keepalived-primary.conf").replace("  rise 2\n", "  rise 2\n  weight -20\n");
    const { unrepresentable } = importKeepalived([{ ...pairHosts()[0]!, files: new Map([[KEEPALIVED_CONF, conf]]) }, pairHosts()[1]!], "ddi");
    expect(unrepresentable.find((u) => u.what === "weight -20")).toMatchObject({ host: "ddi-a", line: 13, path: "vrrp_script chk_named" });
  });

  it("names an instance whose partner was not given, instead of guessing the other node", () => {
    const { manifests, unrepresentable } = importKeepalived([pairHosts()[0]!], "ddi");
    expect(manifests).toEqual([]);
    expect(unrepresentable.find((u) => u.what.startsWith("vrrp_instance VI_1"))?.why).toMatch(/pass the partner's --host/);
  });

  it("takes nopreempt, unicast and a bare VIP (read as /32) from a hand-written pair", () => {
    const conf = (prio: number, self: string, peer: string) => `vrrp_instance DNS {
  state BACKUP
  nopreempt
  interface eth0
  virtual_router_id 7
  priority ${prio}
  advert_int 2
  unicast_src_ip ${self}
  unicast_peer {
    ${peer}
  }
  virtual_ipaddress {
    198.18.5.10
  }
}
`;
    const { manifests, notes } = importKeepalived(
      [host("a", "198.18.5.1", { [KEEPALIVED_CONF]: conf(200, "198.18.5.1", "198.18.5.2") }), host("b", "198.18.5.2", { [KEEPALIVED_CONF]: conf(150, "198.18.5.2", "198.18.5.1") })],
      "ns",
    );
    expect(manifests[0]!.spec).toMatchObject({
      instanceName: "DNS",
      virtualIP: "198.18.5.10/32",
      preempt: false,
      unicast: true,
      advertInterval: "2s",
      primary: { host: "a", priority: 200, address: "198.18.5.1" },
      secondary: { host: "b", priority: 150, address: "198.18.5.2" },
    });
    expect(notes.join("\n")).toContain("/32");
  });
});

describe("the import report", () => {
  it("lists the files the first apply writes with a diff each, and a reload (not a restart) of keepalived", async () => {
    const hosts = pairHosts();
    const imported = importKeepalived(hosts, "ddi");
    const targets = renderedTargets(hosts, "ddi", [imported]);
    // The hosts' own view of every target: only keepalived.conf exists so far.
    expect(targets.map((t) => `${t.host}:${t.path}`)).toEqual(expect.arrayContaining(["ddi-a:/etc/keepalived/ddi-ha.d/ddi_vi-1.conf", "ddi-b:/etc/keepalived/keepalived.conf"]));
    const report = await buildReport(hosts, "ddi", [imported]);
    expect(report.problems.filter((p) => p.startsWith("error"))).toEqual([]);
    expect(report.failures).toEqual([]);
    const main = report.files.find((f) => f.host === "ddi-a" && f.path === KEEPALIVED_CONF)!;
    expect(main.change).toBe("changed");
    expect(main.diff).toContain("-vrrp_instance VI_1 {");
    expect(main.diff).toContain("+include /etc/keepalived/ddi-ha.d/*.conf");
    const own = report.files.find((f) => f.host === "ddi-a" && f.path.endsWith("ddi_vi-1.conf"))!;
    expect(own.change).toBe("created");
    expect(own.diff).toContain("+vrrp_instance VI_1 {");
    expect(own.diff).toContain("+    198.18.17.86/24 dev enp1s0");
    expect(report.services).toEqual([
      expect.objectContaining({ host: "ddi-a", service: "keepalived.service", action: "reload" }),
      expect.objectContaining({ host: "ddi-b", service: "keepalived.service", action: "reload" }),
    ]);
    const text = formatReport(report);
    expect(text).toContain("ddi-a:/etc/keepalived/keepalived.conf:37 (vrrp_instance VI_1): smtp_alert");
    expect(text).toMatch(/ddi-a: keepalived\.service: reload/);
  });

  it("finds nothing to do once the hosts hold what the operator writes", async () => {
    const hosts = pairHosts();
    const imported = importKeepalived(hosts, "ddi");
    const first = await buildReport(hosts, "ddi", [imported]);
    // The hosts after the first apply: every rendered file in place, the pair's file included by the main one.
    const applied = hosts.map((h) => {
      const files = new Map(h.files);
      const mine = first.files.filter((g) => g.host === h.name);
      for (const f of mine) files.set(f.path, f.content);
      return { ...h, files, includes: new Map([[KEEPALIVED_CONF, mine.filter((f) => f.path.includes("/ddi-ha.d/")).map((f) => f.path)]]) };
    });
    const reimported = importKeepalived(applied, "ddi");
    // The operator's own layout is read back as the same pair, with nothing unrepresentable.
    expect(reimported.manifests).toEqual(importKeepalived(hosts, "ddi").manifests);
    expect(reimported.unrepresentable).toEqual([]);
    const again = await buildReport(applied, "ddi", [reimported]);
    expect(again.files.every((f) => f.change === "unchanged")).toBe(true);
    expect(again.services.every((s) => s.action === "none"), JSON.stringify(again.services)).toBe(true);
  });
});
