import { describe, expect, it } from "vitest";
import { lintKeaConfig } from "./lint.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const HOOKS = "/usr/lib/x86_64-linux-gnu/kea/hooks/";
const REL = "Dhcp4.hooks-libraries[1].parameters.high-availability[0]";

function config(edit: (ha: Json, dhcp4: Json) => void = () => undefined): Json {
  const ha: Json = {
    "this-server-name": "server1",
    mode: "load-balancing",
    "heartbeat-delay": 1000,
    "max-response-delay": 10000,
    "max-ack-delay": 5000,
    "max-unacked-clients": 0,
    peers: [
      { name: "server1", url: "http://192.168.56.33:8000/", role: "primary", "auto-failover": true },
      { name: "server2", url: "http://192.168.56.66:8000/", role: "secondary", "auto-failover": true },
      { name: "server3", url: "http://192.168.56.99:8000/", role: "backup", "auto-failover": false },
    ],
  };
  const dhcp4: Json = {
    "hooks-libraries": [{ library: `${HOOKS}libdhcp_lease_cmds.so` }, { library: `${HOOKS}libdhcp_ha.so`, parameters: { "high-availability": [ha] } }],
  };
  edit(ha, dhcp4);
  return { Dhcp4: dhcp4 };
}

describe("lintKeaConfig accepts", () => {
  it.each<[string, (ha: Json, dhcp4: Json) => void]>([
    ["seed 001's load-balancing trio", () => undefined],
    ["hot-standby with a backup", (ha) => { ha.mode = "hot-standby"; ha.peers[1].role = "standby"; }],
    ["passive-backup with wait-backup-ack", (ha) => { ha.mode = "passive-backup"; ha.peers[1].role = "backup"; ha["wait-backup-ack"] = true; }],
    ["wait-backup-ack false outside passive-backup (Kea 2.2 allows it)", (ha) => { ha["wait-backup-ack"] = false; }],
    ["delayed-updates-limit 0 in hot-standby (Kea 2.2 allows it)", (ha) => { ha.mode = "hot-standby"; ha.peers[1].role = "standby"; ha["delayed-updates-limit"] = 0; }],
    ["delayed-updates-limit in load-balancing", (ha) => { ha["delayed-updates-limit"] = 100; }],
    ["IPv6 peer URLs in brackets", (ha) => ha.peers.forEach((p: Json, i: number) => (p.url = `http://[fd00::${i + 1}]:8000/`))],
    ["full TLS", (ha) => Object.assign(ha, { "trust-anchor": "/etc/kea/ca.pem", "cert-file": "/etc/kea/c.pem", "key-file": "/etc/kea/k.pem" })],
    ["Kea's default delays when absent", (ha) => { delete ha["heartbeat-delay"]; delete ha["max-response-delay"]; delete ha["max-ack-delay"]; }],
  ])("%s", (_name, edit) => expect(lintKeaConfig(config(edit), "/etc/kea/kea-dhcp4.conf")).toEqual([]));

  it("a config without the HA hook (nothing of ours to check)", () => {
    expect(lintKeaConfig({ Dhcp4: { "hooks-libraries": [{ library: `${HOOKS}libdhcp_lease_cmds.so` }] } }, "f")).toEqual([]);
  });
});

describe("lintKeaConfig refuses (table: edit → problem naming the JSON path and the fix)", () => {
  const table: [string, (ha: Json, dhcp4: Json) => void, string][] = [
    ["this-server-name copied from another server", (ha) => (ha["this-server-name"] = "server9"), `${REL}.this-server-name: "server9" names none of the peers: set it to this server's own peer name (one of server1, server2, server3)`],
    ["duplicate peer names", (ha) => (ha.peers[2].name = "server2"), `${REL}.peers[2].name: "server2" is used by peers[1] too: peer names must be unique`],
    ["a secondary in hot-standby", (ha) => (ha.mode = "hot-standby"), `${REL}.peers[1].role: "secondary" is not allowed in hot-standby: use exactly one primary and one standby; any others backup`],
    ["no secondary in load-balancing", (ha) => (ha.peers[1].role = "backup"), `${REL}.peers: 0 peers have role secondary, but load-balancing needs exactly one primary and one secondary; any others backup`],
    ["two primaries", (ha) => (ha.peers[1].role = "primary"), `${REL}.peers: 2 peers have role primary`],
    ["a secondary in passive-backup", (ha) => (ha.mode = "passive-backup"), `${REL}.peers[1].role: "secondary" is not allowed in passive-backup: use exactly one primary; all others backup`],
    ["an unknown mode", (ha) => (ha.mode = "active-active"), `${REL}.mode: "active-active" is not a mode: use load-balancing, hot-standby or passive-backup`],
    ["a host name in a peer URL", (ha) => (ha.peers[1].url = "http://kea2.example.org:8000/"), `${REL}.peers[1].url: "http://kea2.example.org:8000/" has the host name kea2.example.org, but Kea needs an IP literal`],
    ["an integer IPv4 spelling WHATWG would normalise", (ha) => (ha.peers[0].url = "http://3232249889:8000/"), `${REL}.peers[0].url: "http://3232249889:8000/" has the host name 3232249889`],
    ["IPv6 without brackets", (ha) => (ha.peers[0].url = "http://fd00::1:8000/"), `${REL}.peers[0].url: "http://fd00::1:8000/" is not an http:// or https:// URL with an IP literal: use http://<IP>:8000/, IPv6 in brackets (http://[fd00::1]:8000/)`],
    ["not a URL", (ha) => (ha.peers[0].url = "198.18.0.2:8000"), `${REL}.peers[0].url: "198.18.0.2:8000" is not an http:// or https:// URL`],
    ["heartbeat-delay 70000", (ha) => { ha["heartbeat-delay"] = 70000; ha["max-response-delay"] = 80000; }, `${REL}.heartbeat-delay: 70000 exceeds 65535: Kea stores it as a uint16 of milliseconds`],
    ["max-ack-delay 65536", (ha) => (ha["max-ack-delay"] = 65536), `${REL}.max-ack-delay: 65536 exceeds 65535`],
    ["max-response-delay absent (60000) above the uint16 limit? no: a string", (ha) => (ha["max-response-delay"] = "10s"), `${REL}.max-response-delay: "10s" is not a whole number of milliseconds`],
    ["max-response-delay not above heartbeat-delay", (ha) => (ha["max-response-delay"] = 1000), `${REL}.max-response-delay: 1000 is not greater than heartbeat-delay 1000: make it several heartbeats longer (e.g. 6000)`],
    ["wait-backup-ack outside passive-backup", (ha) => (ha["wait-backup-ack"] = true), `${REL}.wait-backup-ack: true is allowed only in passive-backup, not load-balancing: remove it`],
    ["delayed-updates-limit outside load-balancing", (ha) => { ha.mode = "hot-standby"; ha.peers[1].role = "standby"; ha["delayed-updates-limit"] = 5; }, `${REL}.delayed-updates-limit: 5 is allowed only in load-balancing, not hot-standby: remove it`],
    ["half the TLS files on the relationship", (ha) => (ha["trust-anchor"] = "/etc/kea/ca.pem"), `${REL}: TLS is half configured (trust-anchor set; cert-file, key-file missing): set all of trust-anchor, cert-file and key-file, or none`],
    ["half the TLS files on a peer", (ha) => (ha.peers[0]["cert-file"] = "/etc/kea/c.pem"), `${REL}.peers[0]: TLS is half configured (cert-file set; trust-anchor, key-file missing)`],
    ["ha without lease_cmds", (_ha, dhcp4) => dhcp4["hooks-libraries"].shift(), `Dhcp4.hooks-libraries[0]: libdhcp_ha.so is loaded without libdhcp_lease_cmds.so: add {"library": "<hooks dir>/libdhcp_lease_cmds.so"} before it`],
    ["two relationships on Kea 2.2", (ha, dhcp4) => dhcp4["hooks-libraries"][1].parameters["high-availability"].push({ ...ha }), "Dhcp4.hooks-libraries[1].parameters.high-availability: 2 relationships, but Kea 2.2.0 supports 1: keep one"],
    ["no relationship", (_ha, dhcp4) => (dhcp4["hooks-libraries"][1].parameters["high-availability"] = []), "Dhcp4.hooks-libraries[1].parameters.high-availability: missing"],
  ];
  it.each(table)("%s", (_name, edit, message) => {
    const problems = lintKeaConfig(config(edit), "/etc/kea/kea-dhcp4.conf");
    expect(problems.some((p) => p.startsWith(`/etc/kea/kea-dhcp4.conf: ${message}`))).toBe(true);
  });

  it("says what is missing when the file has no Dhcp4", () => {
    expect(lintKeaConfig({ Dhcp6: {} }, "f")).toEqual(['f: Dhcp4: missing: a kea-dhcp4 config is one object {"Dhcp4": {…}}']);
  });

  it("allows several relationships from Kea 2.6", () => {
    const two = config((ha, dhcp4) => dhcp4["hooks-libraries"][1].parameters["high-availability"].push({ ...ha }));
    expect(lintKeaConfig(two, "f", { keaVersion: "2.6.1" })).toEqual([]);
  });
});
