import { describe, expect, it } from "vitest";
import type { ManifestDocument } from "../manifests/load.js";
import { formatProblem, validateManifests, validateObjects, withSecrets } from "./validate.js";

const ns = "lab";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

function host(name: string, address: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "DDIHost",
    metadata: { name, namespace: ns },
    spec: { address, credentialsSecretRef: { name: "ssh" }, hostKey: KEY, ...extra },
  };
}
const secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "ssh", namespace: ns }, stringData: { privateKey: "x" } };

function haPair(spec: Record<string, unknown> = {}, name = "vip") {
  return {
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "HAPair",
    metadata: { name, namespace: ns },
    spec: {
      primary: { host: "a", interface: "eth0" },
      secondary: { host: "b", interface: "eth0" },
      virtualIP: "198.18.0.100/24",
      virtualRouterID: 51,
      services: { dns: true, dhcp: "None" },
      ...spec,
    },
  };
}

function kea(spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "KeaHACluster",
    metadata: { name: "kea", namespace: ns },
    spec: {
      mode: "hot-standby",
      peers: [
        { name: "s1", host: "a", role: "primary" },
        { name: "s2", host: "b", role: "standby" },
      ],
      ...spec,
    },
  };
}

function failover(spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "DhcpFailoverPeer",
    metadata: { name: "dhcp", namespace: ns },
    spec: {
      primary: { host: "a", address: "198.18.0.2" },
      secondary: { host: "b", address: "198.18.0.3" },
      split: 128,
      subnets: [{ subnet: "198.18.0.0/24", pools: [{ range: ["198.18.0.100", "198.18.0.200"] }] }],
      ...spec,
    },
  };
}

const hosts = [host("a", "198.18.0.2"), host("b", "198.18.0.3"), host("c", "198.18.0.4"), secret];

function problemsOf(objects: object[]): string[] {
  const docs: ManifestDocument[] = objects.map((object, i) => ({ source: `test#${i + 1}`, object: object as Record<string, unknown> }));
  return validateManifests(docs).problems.filter((p) => p.severity === "error").map(formatProblem);
}

describe("validateManifests", () => {
  it("accepts a valid set of every kind", () => {
    expect(problemsOf([...hosts, haPair(), kea(), failover()])).toEqual([]);
  });

  it("fills in defaults from the schema", () => {
    const docs = [...hosts, haPair()].map((object, i) => ({ source: `t#${i}`, object: object as Record<string, unknown> }));
    const { set } = validateManifests(docs);
    expect(set.haPairs[0]!.spec.primary.priority).toBe(150);
    expect(set.haPairs[0]!.spec.secondary.priority).toBe(100);
    expect(set.haPairs[0]!.spec.primary.configPath).toBe("/etc/keepalived/keepalived.conf");
    expect(set.hosts.get("lab/a")!.spec.port).toBe(22);
  });

  // Each invalid spec is refused with a message that names the field and the fix.
  const invalid: [string, object[], string][] = [
    ["VRID out of range", [haPair({ virtualRouterID: 256 })], "spec.virtualRouterID"],
    ["priority 255", [haPair({ primary: { host: "a", interface: "eth0", priority: 255 } })], "spec.primary.priority"],
    ["VIP without prefix", [haPair({ virtualIP: "198.18.0.100" })], "spec.virtualIP: must be an IPv4 CIDR"],
    ["IPv6 in virtualIP", [haPair({ virtualIP: "fd00::1/64" })], "spec.virtualIP"],
    ["IPv4 in virtualIPv6", [haPair({ virtualIPv6: "198.18.0.9/24" })], "spec.virtualIPv6"],
    ["primary = secondary", [haPair({ secondary: { host: "a", interface: "eth1" } })], "spec.secondary.host must differ from spec.primary.host"],
    ["equal priorities", [haPair({ secondary: { host: "b", interface: "eth0", priority: 150 } })], "spec.primary.priority must be greater than spec.secondary.priority"],
    ["secondary above primary", [haPair({ primary: { host: "a", interface: "eth0", priority: 100 }, secondary: { host: "b", interface: "eth0", priority: 150 } })], "spec.primary.priority must be greater"],
    ["Kea hook library in spec.dhcp4", [kea({ dhcp4: { "hooks-libraries": [{ library: "/tmp/evil.so" }] } })], "spec.dhcp4 must not set hooks-libraries"],
    ["Kea heartbeat 0s", [kea({ heartbeatDelay: "0s", maxResponseDelay: "1s" })], "spec.heartbeatDelay must be at least 100ms"],
    ["dhcpd fractional maxLeaseTime", [failover({ subnets: [{ subnet: "198.18.0.0/24", pools: [{ range: ["198.18.0.1", "198.18.0.9"], maxLeaseTime: "500ms" }] }] })], "maxLeaseTime must be whole seconds"],
    ["dhcpd OMAPI port = failover port", [failover({ omapi: { port: 647 } })], "spec.omapi.port must differ"],
    ["dhcpd duplicate subnet", [failover({ subnets: [{ subnet: "198.18.0.0/24", pools: [{ range: ["198.18.0.1", "198.18.0.9"] }] }, { subnet: "198.18.0.0/24", pools: [{ range: ["198.18.0.20", "198.18.0.29"] }] }] })], "same subnet twice"],
    ["DHCPv4 broadcast", [haPair({ services: { dhcp: "DHCPv4", dhcpv4ClientMode: "Broadcast" } })], "use a DhcpFailoverPeer"],
    ["Both + broadcast", [haPair({ services: { dhcp: "Both", dhcpv4ClientMode: "Broadcast" } })], "use a DhcpFailoverPeer"],
    ["shell in interface", [haPair({ primary: { host: "a", interface: "eth0;reboot" } })], "spec.primary.interface: must be a Linux interface name"],
    ["path with spaces", [haPair({ primary: { host: "a", interface: "eth0", configPath: "/etc/keepalived/a b.conf" } })], "spec.primary.configPath: must be a file under /etc/keepalived/"],
    ["path with ..", [haPair({ primary: { host: "a", interface: "eth0", configPath: "/etc/keepalived/../../root/x" } })], "spec.primary.configPath: must be a file under /etc/keepalived/"],
    ["keepalived configPath /etc/shadow", [haPair({ primary: { host: "a", interface: "eth0", configPath: "/etc/shadow" } })], "spec.primary.configPath: must be a file under /etc/keepalived/"],
    ["keepalived configPath in a hidden directory", [haPair({ secondary: { host: "b", interface: "eth0", configPath: "/etc/keepalived/.x/k.conf" } })], "spec.secondary.configPath: must be a file under /etc/keepalived/"],
    ["dhcpd configPath /root/authorized_keys", [failover({ configPath: "/root/authorized_keys" })], "spec.configPath: must be a file under /etc/dhcp/ or /etc/dhcpd/"],
    ["Kea configPath outside /etc/kea", [kea({ configPath: "/etc/keepalived/keepalived.conf" })], "spec.configPath: must be a file under /etc/kea/"],
    ["Kea controlAgentConfigPath outside /etc/kea", [kea({ controlAgentConfigPath: "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so" })], "spec.controlAgentConfigPath: must be a file under /etc/kea/"],
    ["Kea configPath = controlAgentConfigPath", [kea({ configPath: "/etc/kea/kea.conf", controlAgentConfigPath: "/etc/kea/kea.conf" })], "spec.controlAgentConfigPath must differ from spec.configPath"],
    ["advertInterval 15ms", [haPair({ advertInterval: "15ms" })], "spec.advertInterval must be whole seconds or a multiple of 10ms"],
    ["advertInterval 1005ms", [haPair({ advertInterval: "1005ms" })], "spec.advertInterval must be whole seconds or a multiple of 10ms"],
    ["advertInterval 20.5ms", [haPair({ advertInterval: "20.5ms" })], "spec.advertInterval: must be a duration in whole milliseconds"],
    ["fractional advertInterval over 40.95s", [haPair({ advertInterval: "41.5s" })], "spec.advertInterval must be at most 40.95s when it is not whole seconds"],
    ["authPass with a fractional advertInterval", [haPair({ authPass: "abc", advertInterval: "500ms" })], "spec.authPass needs VRRPv2, but a spec.advertInterval that is a fraction of a second needs VRRPv3"],
    ["unicast with an IPv6 node address", [haPair({ unicast: true, secondary: { host: "b", interface: "eth0", address: "2001:db8::3" } })], "spec.secondary.address must be IPv4 with spec.unicast"],
    ["unicast with an IPv6 DDIHost address", [host("d6", "2001:db8::7"), haPair({ unicast: true, secondary: { host: "d6", interface: "eth0" } })], 'spec.secondary.address: unicast mode for the IPv4 VIP needs this node\'s IPv4 address, and DDIHost "d6" has the IPv6 address 2001:db8::7'],
    ["unicast with both nodes on one address", [haPair({ unicast: true, primary: { host: "a", interface: "eth0", address: "198.18.0.3" } })], "spec.secondary.address and spec.primary.address (or their DDIHost addresses) are both 198.18.0.3"],
    ["node address ':'", [haPair({ primary: { host: "a", interface: "eth0", address: ":" } })], "spec.primary.address must be an IPv4 or IPv6 address such as 198.18.0.10 or fd00::10"],
    ["node address 'a:'", [haPair({ secondary: { host: "b", interface: "eth0", address: "a:" } })], "spec.secondary.address must be an IPv4 or IPv6 address"],
    ["IPv4-mapped node address", [haPair({ primary: { host: "a", interface: "eth0", address: "::ffff:198.18.0.2" } })], "spec.primary.address must be an IPv4 or IPv6 address"],
    ["DDIHost address 'a:'", [host("e", "a:")], "spec.address must be an IPv6 address such as fd00::10 when it contains ':'"],
    ["relative path", [haPair({ primary: { host: "a", interface: "eth0", configPath: "keepalived.conf" } })], "spec.primary.configPath"],
    ["unknown field", [haPair({ virtualRouterId: 5 })], "unknown field(s) virtualRouterId"],
    ["missing host", [haPair({ secondary: { host: "zz", interface: "eth0" } })], 'spec.secondary.host: DDIHost "zz" not found'],
    ["bad duration", [haPair({ advertInterval: "1 second" })], "spec.advertInterval: must be a duration"],
    ["advert too long", [haPair({ advertInterval: "300s" })], "spec.advertInterval must be between 10ms and 255s"],
    ["preemptDelay without preempt", [haPair({ preempt: false, preemptDelay: "5s" })], "spec.preemptDelay needs spec.preempt: true"],
    ["long auth_pass", [haPair({ authPass: "123456789" })], "spec.authPass"],
    [
      "VRID collision in one subnet",
      [haPair({}, "one"), haPair({ virtualIP: "198.18.0.101/24", primary: { host: "c", interface: "eth0" } }, "two")],
      "VRID 51 is already used by HAPair lab/one",
    ],
    ["unicast with an IPv6 VIP", [haPair({ unicast: true, virtualIPv6: "fd00::86/64" })], "spec.unicast cannot be combined with spec.virtualIPv6"],
    ["preemptDelay over 1000s", [haPair({ preemptDelay: "1001s" })], "spec.preemptDelay must be at most 1000s"],
    ["VRRPv3 advert over 40.95s", [haPair({ virtualIPv6: "fd00::86/64", advertInterval: "41s" })], "spec.advertInterval must be at most 40.95s"],
    [
      "VRID collision between overlapping prefixes",
      [host("e", "198.18.0.9"), haPair({ virtualIP: "198.18.0.5/24" }, "one"), haPair({ virtualIP: "198.18.0.6/25", primary: { host: "c", interface: "eth0" }, secondary: { host: "e", interface: "eth0" } }, "two")],
      "VRID 51 is already used by HAPair lab/one in the same subnet (198.18.0.6/25 overlaps 198.18.0.5/24)",
    ],
    [
      "VRID reused on one host's interface across subnets",
      [haPair({}, "one"), haPair({ virtualIP: "198.19.5.100/24", secondary: { host: "c", interface: "eth0" } }, "two")],
      'VRID 51 is already used on eth0 of DDIHost "a"',
    ],
    [
      "two main keepalived files on one host",
      [haPair({}, "one"), haPair({ virtualIP: "198.19.5.100/24", virtualRouterID: 52, primary: { host: "a", interface: "eth0", configPath: "/etc/keepalived/other.conf" }, secondary: { host: "c", interface: "eth0" } }, "two")],
      "keepalived reads one main file",
    ],
    ["same VIP twice", [haPair({}, "one"), haPair({ virtualRouterID: 52 }, "two")], "VIP 198.18.0.100 is already used"],
    ["unicast with a DNS-named host", [host("d", "dns.example.org"), haPair({ unicast: true, secondary: { host: "d", interface: "eth0" } })], "spec.secondary.address: unicast mode needs this node's IP"],
    ["two DDIHosts for one machine", [host("a2", "198.18.0.2"), haPair({ secondary: { host: "a2", interface: "eth0" } })], "are the same machine"],
    ["hostKey missing under Pinned", [{ ...host("e", "198.18.0.9"), spec: { address: "198.18.0.9", credentialsSecretRef: { name: "ssh" } } }], "spec.hostKey is required when spec.hostKeyPolicy is Pinned"],
    ["hostKey with shell", [host("e", "198.18.0.9", { hostKey: "ssh-ed25519 AAAA;reboot" })], "spec.hostKey: must be one OpenSSH public key line"],
    ["non-root without sudo", [host("e", "198.18.0.9", { user: "ddi" })], "spec.sudo must be true when spec.user is not root"],
    ["bad address", [host("e", "host;rm -rf /")], "spec.address: must be an IP address or a DNS name"],
    ["port 0", [host("e", "198.18.0.9", { port: 0 })], "spec.port"],
    ["Kea secondary in hot-standby", [kea({ peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "b", role: "secondary" }] })], "roles do not fit mode hot-standby"],
    ["Kea two primaries", [kea({ mode: "load-balancing", peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "b", role: "primary" }] })], "roles do not fit mode load-balancing"],
    ["Kea standby in passive-backup", [kea({ mode: "passive-backup" })], "roles do not fit mode passive-backup"],
    ["Kea maxResponseDelay <= heartbeatDelay", [kea({ heartbeatDelay: "10s", maxResponseDelay: "10s" })], "spec.maxResponseDelay must be greater than spec.heartbeatDelay"],
    ["Kea uint16 heartbeat", [kea({ heartbeatDelay: "70s", maxResponseDelay: "80s" })], "spec.heartbeatDelay must be at most 65535ms"],
    ["Kea hostname URL", [kea({ peers: [{ name: "s1", host: "a", role: "primary", url: "http://kea1.example.org:8000/" }, { name: "s2", host: "b", role: "standby" }] })], "with an IP literal"],
    ["Kea duplicate peer names", [kea({ peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s1", host: "b", role: "standby" }] })], "spec.peers[].name must be unique"],
    ["Kea https URL", [kea({ peers: [{ name: "s1", host: "a", role: "primary", url: "https://198.18.0.2:8000/" }, { name: "s2", host: "b", role: "standby" }] })], "spec.peers[0].url: must be http://<IP literal>:<port>/"],
    ["Kea URL port above 65535", [kea({ peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "b", role: "standby", url: "http://198.18.0.3:65536/" }] })], "spec.peers[1].url: must be http://<IP literal>:<port>/"],
    ["Kea URL port 0", [kea({ peers: [{ name: "s1", host: "a", role: "primary", url: "http://198.18.0.2:0/" }, { name: "s2", host: "b", role: "standby" }] })], "spec.peers[0].url: must be http://"],
    ["Kea URL brackets without an IPv6 address", [kea({ peers: [{ name: "s1", host: "a", role: "primary", url: "http://[::::]:8000/" }, { name: "s2", host: "b", role: "standby", url: "http://[fd00::3]:8000/" }] })], "spec.peers[0].url must have an IPv6 address in its brackets"],
    [
      "one DDIHost in two KeaHAClusters",
      [kea(), { ...kea(), metadata: { name: "kea2", namespace: ns }, spec: { mode: "hot-standby", peers: [{ name: "s3", host: "c", role: "primary" }, { name: "s4", host: "a", role: "standby" }] } }],
      'spec.peers[1].host: DDIHost "a" is already in KeaHACluster lab/kea: Kea 2.2 runs one HA relationship per server',
    ],
    ["HAPair under another group", [{ ...haPair(), apiVersion: "ddiha.io/v1alpha1" }], 'apiVersion must be ddi-ha.io/v1alpha1 for kind HAPair (it is "ddiha.io/v1alpha1")'],
    ["DDIHost under another version", [{ ...host("e", "198.18.0.9"), apiVersion: "ddi-ha.io/v1" }], 'apiVersion must be ddi-ha.io/v1alpha1 for kind DDIHost (it is "ddi-ha.io/v1")'],
    ["Kea same host twice", [kea({ peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "a", role: "standby" }] })], "same DDIHost appears twice"],
    ["Kea wait-backup-ack outside passive-backup", [kea({ waitBackupAck: true })], "spec.waitBackupAck is allowed only in mode passive-backup"],
    ["Kea delayed-updates-limit outside load-balancing", [kea({ delayedUpdatesLimit: 5 })], "spec.delayedUpdatesLimit is allowed only in mode load-balancing"],
    ["Kea mixed URL families", [kea({ peers: [{ name: "s1", host: "a", role: "primary", url: "http://[fd00::1]:8000/" }, { name: "s2", host: "b", role: "standby", url: "http://198.18.0.3:8000/" }] })], "one address family"],
    ["Kea default URL from a DNS name", [host("d", "kea.example.org"), kea({ peers: [{ name: "s1", host: "a", role: "primary" }, { name: "s2", host: "d", role: "standby" }] })], "spec.peers[1].url: DDIHost \"d\" has the DNS name"],
    ["dhcpd split and hba", [failover({ hba: "ff:".repeat(31) + "ff" })], "set exactly one of spec.split or spec.hba"],
    ["dhcpd neither split nor hba", [failover({ split: undefined })], "set exactly one of spec.split or spec.hba"],
    ["dhcpd split 257", [failover({ split: 257 })], "spec.split"],
    ["VIP on its prefix's broadcast address (the operator's rule; CEL cannot say it)", [haPair({ virtualIP: "198.18.0.255/24" })], "spec.virtualIP is the broadcast address of its own prefix"],
    ["VIP on its prefix's network address", [haPair({ virtualIP: "198.18.0.0/24" })], "spec.virtualIP is the network address of its own prefix"],
    ["multicast VIP", [haPair({ virtualIP: "224.0.0.18/24" })], "spec.virtualIP must be an address hosts can use"],
    ["dhcpd peer on the loopback", [failover({ primary: { host: "a", address: "127.0.0.1" } })], "spec.primary.address must be a host's own address"],
    ["dhcpd mclt as dhcpd.conf writes it", [failover({ mclt: 1800 })], 'spec.mclt: got the number 1800; durations are strings with a unit, e.g. "1800s"'],
    ["dhcpd fractional mclt", [failover({ mclt: "1500ms" })], "spec.mclt must be whole seconds"],
    ["dhcpd pool outside subnet", [failover({ subnets: [{ subnet: "198.18.0.0/24", pools: [{ range: ["198.18.1.1", "198.18.1.9"] }] }] })], "must be two addresses inside"],
    ["dhcpd reversed pool", [failover({ subnets: [{ subnet: "198.18.0.0/24", pools: [{ range: ["198.18.0.9", "198.18.0.1"] }] }] })], "first address before the last"],
    ["dhcpd IPv6 peer address", [failover({ primary: { host: "a", address: "fd00::2" } })], "spec.primary.address: must be an IPv4 address"],
    ["dhcpd peer name with quotes", [failover({ peerName: 'x" ; evil' })], "spec.peerName"],
    ["dhcpd primary = secondary", [failover({ secondary: { host: "a", address: "198.18.0.3" } })], "failover needs two different DDIHosts"],
  ];

  it.each(invalid)("refuses %s", (_name, objects, expected) => {
    const problems = problemsOf([...hosts, ...objects]);
    expect(problems.join("\n")).toContain(expected);
  });

  it("warns, without failing, when a referenced Secret is not in the set", () => {
    const docs = [host("a", "198.18.0.2")].map((object) => ({ source: "t", object: object as Record<string, unknown> }));
    const { problems } = validateManifests(docs);
    expect(problems).toEqual([expect.objectContaining({ severity: "warning", path: "spec.credentialsSecretRef.name" })]);
  });

  it("gives the same result validating objects once and adding each pass's Secrets after (the controller's cache)", () => {
    const asDocs = (objects: object[]) => objects.map((object, i) => ({ source: `t#${i}`, object: object as Record<string, unknown> }));
    const objects = asDocs([host("a", "198.18.0.2"), host("b", "198.18.0.3", { credentialsSecretRef: { name: "other" } }), haPair(), haPair({ virtualIP: "198.18.0.100/24" }, "clash")]);
    const secrets = asDocs([secret]);
    const cached = validateObjects(objects);
    for (const pass of [secrets, []]) {
      const whole = validateManifests([...objects, ...pass]);
      const split = withSecrets(cached, pass);
      expect(split.problems.map(formatProblem).sort()).toEqual(whole.problems.map(formatProblem).sort());
      expect([...split.set.secrets.keys()]).toEqual([...whole.set.secrets.keys()]);
      expect(split.set.haPairs.map((p) => p.metadata.name)).toEqual(whole.set.haPairs.map((p) => p.metadata.name));
    }
    // Host b's Secret is missing in both passes, a's only in the second; the clash is there each time.
    expect(withSecrets(cached, secrets).problems.filter((p) => p.path === "spec.credentialsSecretRef.name").map((p) => p.resource)).toEqual(["DDIHost lab/b"]);
    expect(withSecrets(cached, []).problems.filter((p) => p.path === "spec.credentialsSecretRef.name")).toHaveLength(2);
    expect(withSecrets(cached, secrets).problems.map(formatProblem).join("\n")).toContain("VIP 198.18.0.100 is already used");
    // The cached set is never given a pass's Secrets.
    expect(cached.set.secrets.size).toBe(0);
  });

  it("warns that a non-default keepalived config path needs -f in the unit's defaults file", () => {
    const docs = [...hosts, haPair({ primary: { host: "a", interface: "eth0", configPath: "/etc/keepalived/ddi.conf" } })].map((object) => ({ source: "t", object: object as Record<string, unknown> }));
    const { problems } = validateManifests(docs);
    expect(problems).toEqual([expect.objectContaining({ severity: "warning", path: "spec.primary.configPath", message: expect.stringContaining("KEEPALIVED_OPTIONS") })]);
  });

  it("accepts the same VRID in disjoint subnets on different hosts", () => {
    const two = haPair({ virtualIP: "198.18.0.200/25", primary: { host: "c", interface: "eth0" }, secondary: { host: "e", interface: "eth0" } }, "two");
    expect(problemsOf([...hosts, host("e", "198.18.0.9"), haPair({ virtualIP: "198.18.0.5/25" }, "one"), two])).toEqual([]);
  });

  it("accepts what render accepts: /etc/dhcpd, IPv6 peer URLs, fractional adverts without authPass, whole seconds with it", () => {
    expect(problemsOf([...hosts, failover({ configPath: "/etc/dhcpd/dhcpd.conf" })])).toEqual([]);
    const v6 = [{ name: "s1", host: "a", role: "primary", url: "http://[fd00::2]:8000/" }, { name: "s2", host: "b", role: "standby", url: "http://[2001:db8::3]:65535/" }];
    expect(problemsOf([...hosts, kea({ peers: v6 })])).toEqual([]);
    expect(problemsOf([...hosts, haPair({ advertInterval: "40.95s" }, "one"), haPair({ virtualIP: "198.19.0.100/24", virtualRouterID: 52, authPass: "abc", advertInterval: "2s" }, "two")])).toEqual([]);
  });

  it("warns, without failing, when Kea's maxResponseDelay is under three heartbeats", () => {
    const docs = [...hosts, kea({ heartbeatDelay: "10s", maxResponseDelay: "25s" })].map((object) => ({ source: "t", object: object as Record<string, unknown> }));
    const { problems } = validateManifests(docs);
    expect(problems).toEqual([
      expect.objectContaining({ severity: "warning", path: "spec.maxResponseDelay", message: expect.stringContaining("use at least 30s") }),
    ]);
    const defaults = validateManifests([...hosts, kea()].map((object) => ({ source: "t", object: object as Record<string, unknown> })));
    expect(defaults.problems).toEqual([]);
  });

  it("refuses a resource defined twice", () => {
    expect(problemsOf([...hosts, haPair(), haPair()]).join("\n")).toContain("defined twice");
  });

  it("refuses an unknown kind of our group and a wrong apiVersion", () => {
    expect(problemsOf([{ apiVersion: "ddi-ha.io/v1alpha1", kind: "HAPairs", metadata: { name: "x" }, spec: {} }]).join()).toContain("unknown kind HAPairs");
    expect(problemsOf([{ ...haPair(), apiVersion: "ddi-ha.io/v1" }]).join()).toContain("apiVersion must be ddi-ha.io/v1alpha1");
  });
});
