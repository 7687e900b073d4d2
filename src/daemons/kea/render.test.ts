import { describe, expect, it } from "vitest";
import type { RenderedFile } from "../../render/types.js";
import { parseKeaConfigText } from "./config-text.js";
import { lintKeaConfig } from "./lint.js";
import { KeaRenderError, renderKeaCluster, withManagedHASection } from "./render.js";
import { loadExample, testCluster, testHost } from "./test-fixtures.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const dhcp4Of = (file: RenderedFile): Json => (parseKeaConfigText(file.content, file.path) as Json).Dhcp4;
const haOf = (dhcp4: Json): Json => dhcp4["hooks-libraries"].find((h: Json) => h.library.endsWith("libdhcp_ha.so")).parameters["high-availability"][0];

describe("renderKeaCluster on examples/micetro-kea-ha (goldens)", async () => {
  const { cluster, hosts } = await loadExample();
  const files = renderKeaCluster(cluster, hosts);

  it("renders one kea-dhcp4 and one kea-ctrl-agent config per peer, owned and checked by Kea", () => {
    expect(files.map((f) => `${f.host} ${f.path} ${f.service} ${f.check.kind} ${f.mode.toString(8)} ${f.ownership} ${f.owner}`)).toEqual([
      "kea-server1 /etc/kea/kea-dhcp4.conf kea-dhcp4-server.service kea-dhcp4 644 owned ddi-ha-examples/micetro-lb",
      "kea-server1 /etc/kea/kea-ctrl-agent.conf kea-ctrl-agent.service kea-ctrl-agent 644 owned ddi-ha-examples/micetro-lb",
      "kea-server2 /etc/kea/kea-dhcp4.conf kea-dhcp4-server.service kea-dhcp4 644 owned ddi-ha-examples/micetro-lb",
      "kea-server2 /etc/kea/kea-ctrl-agent.conf kea-ctrl-agent.service kea-ctrl-agent 644 owned ddi-ha-examples/micetro-lb",
      "kea-server3 /etc/kea/kea-dhcp4.conf kea-dhcp4-server.service kea-dhcp4 644 owned ddi-ha-examples/micetro-lb",
      "kea-server3 /etc/kea/kea-ctrl-agent.conf kea-ctrl-agent.service kea-ctrl-agent 644 owned ddi-ha-examples/micetro-lb",
    ]);
  });

  for (const file of files) {
    const name = file.path.endsWith("kea-dhcp4.conf") ? "kea-dhcp4.conf" : "kea-ctrl-agent.conf";
    it(`matches the reviewed golden ${file.host}/${name}`, async () => {
      await expect(file.content).toMatchFileSnapshot(`testdata/micetro-lb/${file.host}/${name}`);
    });
  }

  it("gives each peer its own this-server-name and the same relationship otherwise", () => {
    const dhcp4Files = files.filter((f) => f.check.kind === "kea-dhcp4");
    const sections = dhcp4Files.map((f) => haOf(dhcp4Of(f)));
    expect(sections.map((s) => s["this-server-name"])).toEqual(["server1", "server2", "server3"]);
    const withoutName = sections.map(({ "this-server-name": _, ...rest }) => rest);
    expect(withoutName[1]).toEqual(withoutName[0]);
    expect(withoutName[2]).toEqual(withoutName[0]);
  });

  it("renders the seed's HA values in milliseconds, with the URLs from the DDIHost addresses", () => {
    const ha = haOf(dhcp4Of(files[0]!));
    expect(ha).toMatchObject({
      mode: "load-balancing",
      "heartbeat-delay": 1000,
      "max-response-delay": 10000,
      "max-ack-delay": 5000,
      "max-unacked-clients": 0,
      "sync-timeout": 60000,
      "sync-page-limit": 10000,
      "send-lease-updates": true,
      "sync-leases": true,
      peers: [
        { name: "server1", url: "http://192.168.56.33:8000/", role: "primary", "auto-failover": true },
        { name: "server2", url: "http://192.168.56.66:8000/", role: "secondary", "auto-failover": true },
        { name: "server3", url: "http://192.168.56.99:8000/", role: "backup", "auto-failover": false },
      ],
    });
    expect(ha).not.toHaveProperty("wait-backup-ack");
    expect(ha).not.toHaveProperty("delayed-updates-limit");
  });

  it("binds each Control Agent to its own peer-facing address and forwards to kea-dhcp4's socket", () => {
    const agents = files.filter((f) => f.check.kind === "kea-ctrl-agent").map((f) => parseKeaConfigText(f.content)["Control-agent"] as Json);
    expect(agents.map((a) => `${a["http-host"]}:${a["http-port"]}`)).toEqual(["192.168.56.33:8000", "192.168.56.66:8000", "192.168.56.99:8000"]);
    for (const a of agents) expect(a["control-sockets"].dhcp4["socket-name"]).toBe(dhcp4Of(files[0]!)["control-socket"]["socket-name"]);
  });

  it("passes our own lint", () => {
    for (const f of files.filter((x) => x.check.kind === "kea-dhcp4")) expect(lintKeaConfig(parseKeaConfigText(f.content), f.path)).toEqual([]);
  });

  it("is byte-for-byte the same whatever the key order of the base config", () => {
    const reversed = Object.fromEntries(Object.entries(cluster.spec.dhcp4!).reverse());
    const again = renderKeaCluster(cluster, hosts, { baseDhcp4: reversed });
    expect(again.map((f) => f.content)).toEqual(files.map((f) => f.content));
  });
});

describe("renderKeaCluster: hooks directory per distribution family", () => {
  const spec = { mode: "hot-standby", peers: [{ name: "a", host: "deb", role: "primary" }, { name: "b", host: "rhel", role: "standby" }] };
  const table = [
    ["Debian", "deb", "/usr/lib/x86_64-linux-gnu/kea/hooks/"],
    ["RHEL", "rhel", "/usr/lib64/kea/hooks/"],
    ["unset (offline: Debian)", "unset", "/usr/lib/x86_64-linux-gnu/kea/hooks/"],
  ] as const;
  const hosts = new Map([
    ["deb", testHost("deb", "198.18.0.2", "Debian")],
    ["rhel", testHost("rhel", "198.18.0.3", "RHEL")],
    ["unset", testHost("unset", "198.18.0.4")],
  ]);
  it.each(table)("%s host loads lease_cmds and ha from its own hooks dir", (_family, hostName, dir) => {
    const cluster = testCluster({ ...spec, peers: [{ name: "a", host: hostName, role: "primary" }, { name: "b", host: hostName === "deb" ? "rhel" : "deb", role: "standby" }] });
    const file = renderKeaCluster(cluster, hosts).find((f) => f.host === hostName && f.check.kind === "kea-dhcp4")!;
    expect(dhcp4Of(file)["hooks-libraries"].map((h: Json) => h.library)).toEqual([`${dir}libdhcp_lease_cmds.so`, `${dir}libdhcp_ha.so`]);
  });

  it("moves the primary's other hooks to a RHEL peer's directory, keeps their order and replaces old HA entries in place", () => {
    const cluster = testCluster(spec);
    const base = {
      "hooks-libraries": [
        { library: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_flex_option.so", parameters: { options: [] } },
        { library: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so" },
        { library: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so", parameters: { "high-availability": [{ "this-server-name": "a", "trust-anchor": "/etc/kea/ca.pem", "cert-file": "/etc/kea/c.pem", "key-file": "/etc/kea/k.pem", peers: [{ name: "b", "basic-auth-user": "kea" }] }] } },
        { library: "/opt/custom/libmine.so" },
      ],
    };
    const rhel = dhcp4Of(renderKeaCluster(cluster, hosts, { baseDhcp4: base }).find((f) => f.host === "rhel" && f.check.kind === "kea-dhcp4")!);
    expect(rhel["hooks-libraries"].map((h: Json) => h.library)).toEqual([
      "/usr/lib64/kea/hooks/libdhcp_flex_option.so",
      "/usr/lib64/kea/hooks/libdhcp_lease_cmds.so",
      "/usr/lib64/kea/hooks/libdhcp_ha.so",
      "/opt/custom/libmine.so",
    ]);
    const ha = haOf(rhel);
    // Not the primary's name: the known Micetro-style bug this operator exists to avoid.
    expect(ha["this-server-name"]).toBe("b");
    // What the spec does not manage (TLS, per-peer auth) survives the copy.
    expect(ha).toMatchObject({ "trust-anchor": "/etc/kea/ca.pem", "cert-file": "/etc/kea/c.pem", "key-file": "/etc/kea/k.pem" });
    expect(ha.peers[1]).toMatchObject({ name: "b", "basic-auth-user": "kea", role: "standby" });
  });
});

describe("renderKeaCluster: managed parts of the base", () => {
  const hosts = new Map([["a", testHost("a", "fd00::2")], ["b", testHost("b", "fd00::3")]]);
  const peers = [{ name: "s1", host: "a", role: "primary", interface: "eth1", url: "http://[fd00::2]:8000/" }, { name: "s2", host: "b", role: "standby", url: "http://[fd00::3]:8001/" }];

  it("takes interfaces, control socket and hooks from the operator, the rest from the primary's base", () => {
    const cluster = testCluster({ mode: "hot-standby", peers, dhcp4: { "valid-lifetime": 99 } });
    const base = { "valid-lifetime": 600, "interfaces-config": { interfaces: ["ens3"], "dhcp-socket-type": "udp" }, "control-socket": { "socket-type": "unix", "socket-name": "/tmp/x" }, "lease-database": { type: "memfile", name: "/var/lib/kea/custom.csv" } };
    const [s1, , s2] = renderKeaCluster(cluster, hosts, { baseDhcp4: base });
    expect(dhcp4Of(s1!)).toMatchObject({
      "valid-lifetime": 600,
      "interfaces-config": { interfaces: ["eth1"], "dhcp-socket-type": "udp" },
      "control-socket": { "socket-type": "unix", "socket-name": "/run/kea/kea4-ctrl-socket" },
      "lease-database": { type: "memfile", name: "/var/lib/kea/custom.csv" },
    });
    expect(dhcp4Of(s2!)["interfaces-config"].interfaces).toEqual(["*"]);
  });

  it("falls back to spec.dhcp4, then to a minimal config with a memfile lease database", () => {
    const fromSpec = dhcp4Of(renderKeaCluster(testCluster({ mode: "hot-standby", peers, dhcp4: { "valid-lifetime": 99 } }), hosts)[0]!);
    expect(fromSpec["valid-lifetime"]).toBe(99);
    const minimal = dhcp4Of(renderKeaCluster(testCluster({ mode: "hot-standby", peers }), hosts)[0]!);
    expect(minimal["lease-database"]).toEqual({ type: "memfile", "lfc-interval": 3600 });
  });

  it("binds an IPv6 peer's agent to the bare address and the URL's port", () => {
    const agent = parseKeaConfigText(renderKeaCluster(testCluster({ mode: "hot-standby", peers }), hosts)[3]!.content)["Control-agent"] as Json;
    expect([agent["http-host"], agent["http-port"]]).toEqual(["fd00::3", 8001]);
  });

  it("writes wait-backup-ack and delayed-updates-limit only where the spec sets them", () => {
    const pb = haOf(dhcp4Of(renderKeaCluster(testCluster({ mode: "passive-backup", waitBackupAck: true, peers: [{ name: "s1", host: "a", role: "primary", url: "http://[fd00::2]:8000/" }, { name: "s2", host: "b", role: "backup", url: "http://[fd00::3]:8000/" }] }), hosts)[0]!));
    expect(pb["wait-backup-ack"]).toBe(true);
    const lb = haOf(dhcp4Of(renderKeaCluster(testCluster({ mode: "load-balancing", delayedUpdatesLimit: 100, peers: [{ name: "s1", host: "a", role: "primary", url: "http://[fd00::2]:8000/" }, { name: "s2", host: "b", role: "secondary", url: "http://[fd00::3]:8000/" }] }), hosts)[0]!));
    expect(lb["delayed-updates-limit"]).toBe(100);
  });
});

describe("renderKeaCluster refuses what it cannot render (table)", () => {
  const table: [string, Record<string, unknown>, Map<string, ReturnType<typeof testHost>>, string][] = [
    [
      "DDIHost with a DNS name and no url",
      { mode: "hot-standby", peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "dns", role: "standby" }] },
      new Map([["a", testHost("a", "198.18.0.2")], ["dns", testHost("dns", "kea2.example.org")]]),
      'spec.peers[1].url is unset and DDIHost "dns" has the DNS name kea2.example.org; Kea needs an IP literal in peer URLs: set spec.peers[1].url',
    ],
    [
      "missing DDIHost",
      { mode: "hot-standby", peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "gone", role: "standby" }] },
      new Map([["a", testHost("a", "198.18.0.2")]]),
      'spec.peers[1].host names DDIHost "gone", which does not exist',
    ],
  ];
  it.each(table)("%s", (_name, spec, hosts, message) => {
    expect(() => renderKeaCluster(testCluster(spec), hosts)).toThrow(KeaRenderError);
    expect(() => renderKeaCluster(testCluster(spec), hosts)).toThrow(message);
  });

  it("an https peer URL (admission refuses it too; the renderer must if one slips past)", () => {
    const cluster = testCluster({ mode: "hot-standby", peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "b", role: "standby" }] });
    const [first, ...rest] = cluster.spec.peers;
    const slipped = { ...cluster, spec: { ...cluster.spec, peers: [{ ...first!, url: "https://198.18.0.2:8000/" }, ...rest] } };
    const hosts = new Map([["a", testHost("a", "198.18.0.2")], ["b", testHost("b", "198.18.0.3")]]);
    expect(() => renderKeaCluster(slipped, hosts)).toThrow("spec.peers[0].url uses https");
  });
});

describe("withManagedHASection (configSync HAOnly)", () => {
  const hosts = new Map([["a", testHost("a", "198.18.0.2")], ["b", testHost("b", "198.18.0.3")]]);
  const cluster = testCluster({ mode: "hot-standby", configSync: "HAOnly", peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "b", role: "standby" }] });
  const current = {
    "interfaces-config": { interfaces: ["ens3/198.18.0.3"] },
    "control-socket": { "socket-type": "unix", "socket-name": "/run/kea/custom-socket" },
    "lease-database": { type: "mysql", name: "kea" },
    subnet4: [{ id: 7, subnet: "198.18.0.0/24" }],
    "hooks-libraries": [{ library: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so", parameters: { "high-availability": [{ "this-server-name": "s1", mode: "load-balancing" }] } }],
  };

  it("keeps everything of the host's file except the HA hooks", () => {
    const result = withManagedHASection(current, cluster, hosts, "s2") as Json;
    const { "hooks-libraries": hooks, ...rest } = result;
    const { "hooks-libraries": _, ...currentRest } = current;
    expect(rest).toEqual(currentRest);
    expect(hooks.map((h: Json) => h.library)).toEqual(["/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so", "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so"]);
    expect(haOf(result)).toMatchObject({ "this-server-name": "s2", mode: "hot-standby" });
  });

  it("is what renderKeaCluster writes under HAOnly, and the agent follows the host's own socket", () => {
    const files = renderKeaCluster(cluster, hosts, { currentDhcp4ByHost: new Map([["b", current]]) });
    const s2 = files.filter((f) => f.host === "b");
    expect(dhcp4Of(s2[0]!)).toEqual(withManagedHASection(current, cluster, hosts, "s2"));
    expect((parseKeaConfigText(s2[1]!.content)["Control-agent"] as Json)["control-sockets"].dhcp4["socket-name"]).toBe("/run/kea/custom-socket");
  });

  it("adds a control socket only when the host has none", () => {
    const { "control-socket": _, ...noSocket } = current;
    expect(withManagedHASection(noSocket, cluster, hosts, "s1")["control-socket"]).toEqual({ "socket-type": "unix", "socket-name": "/run/kea/kea4-ctrl-socket" });
  });
});
