// The CRDs in crds/ as a real kube-apiserver enforces them: schema and CEL rules reject bad
// specs with a message that names the field, the examples apply cleanly, kubectl shows what
// users see (explain, category, printer columns), and the status subresource behaves.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GROUP = 'ddi-ha.io';
const VERSION = 'v1alpha1';
const API_VERSION = `${GROUP}/${VERSION}`;
const FIELD_MANAGER = 'ddi-ha-admission-test';

const provided = inject('ddiHaControlPlane');
const kubeconfigPath = provided?.kubeconfigPath ?? process.env.KUBECONFIG_DDI_HA_TEST ?? '';
const kubectlPath = provided?.kubectl ?? process.env.DDI_HA_KUBECTL ?? 'kubectl';
// A fresh discovery cache: the CRDs are new to this server, and $HOME stays untouched.
const kubectlCacheDir = mkdtempSync(join(tmpdir(), 'ddi-ha-kubectl-cache-'));

const kc = new KubeConfig();
let objects: KubernetesObjectApi;
let custom: CustomObjectsApi;
let core: CoreV1Api;
// Each run gets its own namespace: without a controller-manager, namespaces never finish deleting.
const namespace = `admission-${Date.now().toString(36)}`;

// ---------------------------------------------------------------------------------------------
// Valid baselines. Each invalid case below breaks exactly one thing in a copy of one of these.

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@ddi1';

function ddiHost(name = 'ddi1'): Record<string, any> {
  return {
    apiVersion: API_VERSION,
    kind: 'DDIHost',
    metadata: { name },
    spec: { address: '10.71.17.11', credentialsSecretRef: { name: 'ddi-ssh' }, hostKey: HOST_KEY },
  };
}

function haPair(name = 'dns-vip'): Record<string, any> {
  return {
    apiVersion: API_VERSION,
    kind: 'HAPair',
    metadata: { name },
    spec: {
      primary: { host: 'ddi1', interface: 'enp1s0' },
      secondary: { host: 'ddi2', interface: 'enp1s0' },
      virtualIP: '10.71.17.86/24',
      virtualRouterID: 51,
      services: { dns: true, dhcp: 'None' },
    },
  };
}

function keaCluster(name = 'kea-lb'): Record<string, any> {
  return {
    apiVersion: API_VERSION,
    kind: 'KeaHACluster',
    metadata: { name },
    spec: {
      mode: 'load-balancing',
      peers: [
        { name: 'server1', host: 'ddi1', role: 'primary' },
        { name: 'server2', host: 'ddi2', role: 'secondary' },
      ],
    },
  };
}

function failoverPeer(name = 'dhcp-failover'): Record<string, any> {
  return {
    apiVersion: API_VERSION,
    kind: 'DhcpFailoverPeer',
    metadata: { name },
    spec: {
      primary: { host: 'ddi1', address: '10.71.17.11' },
      secondary: { host: 'ddi2', address: '10.71.17.12' },
      split: 128,
      subnets: [{ subnet: '10.71.17.0/24', pools: [{ range: ['10.71.17.100', '10.71.17.200'] }] }],
    },
  };
}

function failoverDrill(name = 'dns-vip-drill'): Record<string, any> {
  return {
    apiVersion: API_VERSION,
    kind: 'FailoverDrill',
    metadata: { name },
    spec: { target: { kind: 'HAPair', name: 'dns-vip' }, method: 'StopPrimaryDaemon', objective: '10s', schedule: '0 3 * * 1' },
  };
}

interface InvalidCase {
  name: string;
  object: Record<string, any>;
  /** A substring of the API server's message; it names the field. */
  message: string;
}

function broken(base: Record<string, any>, mutate: (spec: Record<string, any>) => void): Record<string, any> {
  const copy = structuredClone(base);
  mutate(copy.spec);
  return copy;
}

const invalid: InvalidCase[] = [
  // DDIHost
  { name: 'DDIHost Pinned policy without hostKey', object: broken(ddiHost(), (s) => delete s.hostKey), message: 'spec.hostKey is required when spec.hostKeyPolicy is Pinned' },
  { name: 'DDIHost non-root user without sudo', object: broken(ddiHost(), (s) => (s.user = 'deploy')), message: 'spec.sudo must be true when spec.user is not root' },
  { name: 'DDIHost port 0', object: broken(ddiHost(), (s) => (s.port = 0)), message: 'spec.port' },
  { name: 'DDIHost port 65536', object: broken(ddiHost(), (s) => (s.port = 65536)), message: 'spec.port' },
  { name: 'DDIHost shell metacharacters in address', object: broken(ddiHost(), (s) => (s.address = 'ddi1;reboot')), message: 'spec.address' },
  { name: 'DDIHost shell metacharacters in user', object: broken(ddiHost(), (s) => { s.user = 'root$(id)'; s.sudo = true; }), message: 'spec.user' },
  { name: 'DDIHost malformed hostKey', object: broken(ddiHost(), (s) => (s.hostKey = 'ssh-dss AAAAB3Nza')), message: 'spec.hostKey' },
  { name: 'DDIHost unknown hostKeyPolicy', object: broken(ddiHost(), (s) => (s.hostKeyPolicy = 'TrustAlways')), message: 'spec.hostKeyPolicy' },
  { name: 'DDIHost address that is only colons', object: broken(ddiHost(), (s) => (s.address = 'a:')), message: "spec.address must be an IPv6 address such as fd00::10 when it contains ':'" },
  { name: 'DDIHost without credentialsSecretRef', object: broken(ddiHost(), (s) => delete s.credentialsSecretRef), message: 'spec.credentialsSecretRef' },

  // HAPair
  { name: 'HAPair virtualRouterID 0', object: broken(haPair(), (s) => (s.virtualRouterID = 0)), message: 'spec.virtualRouterID' },
  { name: 'HAPair virtualRouterID 256', object: broken(haPair(), (s) => (s.virtualRouterID = 256)), message: 'spec.virtualRouterID' },
  { name: 'HAPair primary priority 255 (address owner)', object: broken(haPair(), (s) => (s.primary.priority = 255)), message: 'spec.primary.priority' },
  { name: 'HAPair secondary priority 0', object: broken(haPair(), (s) => (s.secondary.priority = 0)), message: 'spec.secondary.priority' },
  { name: 'HAPair equal priorities', object: broken(haPair(), (s) => { s.primary.priority = 120; s.secondary.priority = 120; }), message: 'spec.primary.priority must be greater than spec.secondary.priority' },
  { name: 'HAPair unicast with an IPv6 VIP', object: broken(haPair(), (s) => { s.unicast = true; s.virtualIPv6 = 'fd00::86/64'; }), message: 'spec.unicast cannot be combined with spec.virtualIPv6' },
  { name: 'HAPair preemptDelay over 1000s', object: broken(haPair(), (s) => (s.preemptDelay = '1001s')), message: 'spec.preemptDelay must be at most 1000s' },
  { name: 'HAPair VRRPv3 advertInterval over 40.95s', object: broken(haPair(), (s) => { s.virtualIPv6 = 'fd00::86/64'; s.advertInterval = '41s'; }), message: 'spec.advertInterval must be at most 40.95s' },
  { name: 'HAPair secondary priority above primary', object: broken(haPair(), (s) => { s.primary.priority = 100; s.secondary.priority = 150; }), message: 'spec.primary.priority must be greater than spec.secondary.priority' },
  { name: 'HAPair virtualIP without prefix length', object: broken(haPair(), (s) => (s.virtualIP = '10.71.17.86')), message: 'spec.virtualIP' },
  { name: 'HAPair virtualIP octet out of range', object: broken(haPair(), (s) => (s.virtualIP = '10.71.17.286/24')), message: 'spec.virtualIP' },
  { name: 'HAPair virtualIP prefix /33', object: broken(haPair(), (s) => (s.virtualIP = '10.71.17.86/33')), message: 'spec.virtualIP' },
  { name: 'HAPair IPv6 in virtualIP', object: broken(haPair(), (s) => (s.virtualIP = 'fd00::86/64')), message: 'spec.virtualIP' },
  { name: 'HAPair IPv4 in virtualIPv6', object: broken(haPair(), (s) => (s.virtualIPv6 = '10.71.17.87/24')), message: 'spec.virtualIPv6' },
  { name: 'HAPair primary host = secondary host', object: broken(haPair(), (s) => (s.secondary.host = 'ddi1')), message: 'spec.secondary.host must differ from spec.primary.host' },
  { name: 'HAPair DHCPv4 Broadcast', object: broken(haPair(), (s) => { s.services.dhcp = 'DHCPv4'; s.services.dhcpv4ClientMode = 'Broadcast'; }), message: 'use a DhcpFailoverPeer for DHCPv4' },
  { name: 'HAPair DHCP Both with Broadcast', object: broken(haPair(), (s) => { s.services.dhcp = 'Both'; s.services.dhcpv4ClientMode = 'Broadcast'; }), message: 'spec.services.dhcpv4ClientMode Broadcast' },
  { name: 'HAPair unknown services.dhcp', object: broken(haPair(), (s) => (s.services.dhcp = 'DHCPv5')), message: 'spec.services.dhcp' },
  { name: 'HAPair shell metacharacters in interface', object: broken(haPair(), (s) => (s.primary.interface = 'eth0;reboot')), message: 'spec.primary.interface' },
  { name: 'HAPair command substitution in interface', object: broken(haPair(), (s) => (s.secondary.interface = '$(reboot)')), message: 'spec.secondary.interface' },
  { name: 'HAPair interface longer than IFNAMSIZ', object: broken(haPair(), (s) => (s.primary.interface = 'enp1s0f0verylong')), message: 'spec.primary.interface' },
  { name: 'HAPair shell metacharacters in configPath', object: broken(haPair(), (s) => (s.primary.configPath = '/etc/keepalived/keepalived.conf;rm -rf /')), message: 'spec.primary.configPath' },
  { name: 'HAPair relative configPath', object: broken(haPair(), (s) => (s.secondary.configPath = 'keepalived.conf')), message: 'spec.secondary.configPath' },
  { name: 'HAPair configPath with ..', object: broken(haPair(), (s) => (s.primary.configPath = '/etc/../root/.ssh/authorized_keys')), message: 'spec.primary.configPath' },
  { name: 'HAPair preemptDelay without preempt', object: broken(haPair(), (s) => { s.preempt = false; s.preemptDelay = '30s'; }), message: 'spec.preemptDelay needs spec.preempt' },
  { name: 'HAPair advertInterval above 255s', object: broken(haPair(), (s) => (s.advertInterval = '300s')), message: 'spec.advertInterval must be between 10ms and 255s' },
  { name: 'HAPair advertInterval not a duration', object: broken(haPair(), (s) => (s.advertInterval = 'one second')), message: 'spec.advertInterval' },
  { name: 'HAPair authPass longer than 8', object: broken(haPair(), (s) => (s.authPass = 'ninechars')), message: 'spec.authPass' },
  { name: 'HAPair advertInterval 15ms', object: broken(haPair(), (s) => (s.advertInterval = '15ms')), message: 'spec.advertInterval must be whole seconds or a multiple of 10ms' },
  { name: 'HAPair advertInterval 1005ms', object: broken(haPair(), (s) => (s.advertInterval = '1005ms')), message: 'spec.advertInterval must be whole seconds or a multiple of 10ms' },
  { name: 'HAPair advertInterval with part of a millisecond', object: broken(haPair(), (s) => (s.advertInterval = '20.5ms')), message: 'spec.advertInterval' },
  { name: 'HAPair fractional advertInterval over 40.95s', object: broken(haPair(), (s) => (s.advertInterval = '41.5s')), message: 'spec.advertInterval must be at most 40.95s when it is not whole seconds' },
  { name: 'HAPair authPass with a fractional advertInterval', object: broken(haPair(), (s) => { s.authPass = 'abc'; s.advertInterval = '500ms'; }), message: 'spec.authPass needs VRRPv2' },
  { name: 'HAPair unicast with an IPv6 node address', object: broken(haPair(), (s) => { s.unicast = true; s.primary.address = 'fd00::11'; }), message: 'spec.primary.address must be IPv4 with spec.unicast' },
  { name: 'HAPair node address that is only a colon', object: broken(haPair(), (s) => (s.primary.address = ':')), message: 'spec.primary.address must be an IPv4 or IPv6 address' },
  { name: 'HAPair IPv4-mapped node address', object: broken(haPair(), (s) => (s.secondary.address = '::ffff:10.71.17.12')), message: 'spec.secondary.address must be an IPv4 or IPv6 address' },
  { name: 'HAPair configPath /etc/shadow', object: broken(haPair(), (s) => (s.primary.configPath = '/etc/shadow')), message: 'spec.primary.configPath in body should match' },
  { name: 'HAPair unknown deletionPolicy', object: broken(haPair(), (s) => (s.deletionPolicy = 'Orphan')), message: 'spec.deletionPolicy' },
  { name: 'HAPair without virtualRouterID', object: broken(haPair(), (s) => delete s.virtualRouterID), message: 'spec.virtualRouterID' },

  // KeaHACluster
  { name: 'Kea load-balancing with a standby', object: broken(keaCluster(), (s) => (s.peers[1].role = 'standby')), message: 'spec.peers roles do not fit mode load-balancing' },
  { name: 'Kea hot-standby with a secondary', object: broken(keaCluster(), (s) => (s.mode = 'hot-standby')), message: 'spec.peers roles do not fit mode hot-standby' },
  { name: 'Kea passive-backup with a secondary', object: broken(keaCluster(), (s) => (s.mode = 'passive-backup')), message: 'spec.peers roles do not fit mode passive-backup' },
  { name: 'Kea two primaries', object: broken(keaCluster(), (s) => (s.peers[1].role = 'primary')), message: 'spec.peers roles do not fit mode load-balancing' },
  { name: 'Kea maxResponseDelay equal to heartbeatDelay', object: broken(keaCluster(), (s) => { s.heartbeatDelay = '10s'; s.maxResponseDelay = '10s'; }), message: 'spec.maxResponseDelay must be greater than spec.heartbeatDelay' },
  { name: 'Kea maxResponseDelay below heartbeatDelay', object: broken(keaCluster(), (s) => { s.heartbeatDelay = '20s'; s.maxResponseDelay = '15s'; }), message: 'spec.maxResponseDelay must be greater than spec.heartbeatDelay' },
  { name: 'Kea heartbeatDelay over uint16 ms', object: broken(keaCluster(), (s) => { s.heartbeatDelay = '66s'; s.maxResponseDelay = '65s'; }), message: 'spec.heartbeatDelay must be at most 65535ms' },
  { name: 'Kea hook library in spec.dhcp4', object: broken(keaCluster(), (s) => (s.dhcp4 = { 'hooks-libraries': [{ library: '/tmp/evil.so' }] })), message: 'spec.dhcp4 must not set hooks-libraries' },
  { name: 'Kea control-socket in spec.dhcp4', object: broken(keaCluster(), (s) => (s.dhcp4 = { 'control-socket': { 'socket-type': 'unix', 'socket-name': '/tmp/x' } })), message: 'spec.dhcp4 must not set hooks-libraries, control-socket or interfaces-config' },
  { name: 'Kea heartbeatDelay 0s', object: broken(keaCluster(), (s) => { s.heartbeatDelay = '0s'; s.maxResponseDelay = '1ms'; }), message: 'spec.heartbeatDelay must be at least 100ms' },
  { name: 'Kea the same host twice', object: broken(keaCluster(), (s) => (s.peers[1].host = 'ddi1')), message: 'spec.peers must each use a different host' },
  { name: 'Kea a single peer', object: broken(keaCluster(), (s) => s.peers.pop()), message: 'spec.peers' },
  { name: 'Kea duplicate peer names', object: broken(keaCluster(), (s) => (s.peers[1].name = 'server1')), message: 'spec.peers[].name must be unique' },
  { name: 'Kea https peer URL', object: broken(keaCluster(), (s) => (s.peers[0].url = 'https://10.71.17.11:8000/')), message: 'spec.peers[0].url' },
  { name: 'Kea peer URL port 65536', object: broken(keaCluster(), (s) => (s.peers[1].url = 'http://10.71.17.12:65536/')), message: 'spec.peers[1].url' },
  { name: 'Kea peer URL brackets without an IPv6 address', object: broken(keaCluster(), (s) => { s.peers[0].url = 'http://[::::]:8000/'; s.peers[1].url = 'http://[fd00::12]:8000/'; }), message: 'spec.peers[].url must have an IPv6 address in its brackets' },
  { name: 'Kea configPath = controlAgentConfigPath', object: broken(keaCluster(), (s) => { s.configPath = '/etc/kea/kea.conf'; s.controlAgentConfigPath = '/etc/kea/kea.conf'; }), message: 'spec.controlAgentConfigPath must differ from spec.configPath' },
  { name: 'Kea controlAgentConfigPath outside /etc/kea', object: broken(keaCluster(), (s) => (s.controlAgentConfigPath = '/etc/shadow')), message: 'spec.controlAgentConfigPath in body should match' },
  { name: 'Kea waitBackupAck outside passive-backup', object: broken(keaCluster(), (s) => (s.waitBackupAck = true)), message: 'spec.waitBackupAck is allowed only in mode passive-backup' },
  { name: 'Kea delayedUpdatesLimit outside load-balancing', object: broken(keaCluster(), (s) => { s.mode = 'hot-standby'; s.peers[1].role = 'standby'; s.delayedUpdatesLimit = 10; }), message: 'spec.delayedUpdatesLimit is allowed only in mode load-balancing' },
  { name: 'Kea mixed URL address families', object: broken(keaCluster(), (s) => { s.peers[0].url = 'http://[fd00::11]:8000/'; s.peers[1].url = 'http://10.71.17.12:8000/'; }), message: 'spec.peers[].url must all be of one address family' },
  { name: 'Kea URL with a host name', object: broken(keaCluster(), (s) => (s.peers[0].url = 'http://ddi1:8000/')), message: 'spec.peers[0].url' },
  { name: 'Kea unknown mode', object: broken(keaCluster(), (s) => (s.mode = 'active-active')), message: 'spec.mode' },
  { name: 'Kea shell metacharacters in configPath', object: broken(keaCluster(), (s) => (s.configPath = '/etc/kea/kea-dhcp4.conf`id`')), message: 'spec.configPath' },

  // DhcpFailoverPeer
  // Addresses that cannot be a host's own (issue 13): refused by CEL, naming the field.
  { name: 'HAPair VIP on the loopback', object: broken(haPair(), (s) => (s.virtualIP = '127.0.0.5/8')), message: 'spec.virtualIP must be an address hosts can use' },
  { name: 'HAPair multicast VIP', object: broken(haPair(), (s) => (s.virtualIP = '224.0.0.18/24')), message: 'spec.virtualIP must be an address hosts can use' },
  { name: 'HAPair link-local VIP', object: broken(haPair(), (s) => (s.virtualIP = '169.254.10.1/16')), message: 'spec.virtualIP must be an address hosts can use' },
  { name: 'HAPair link-local IPv6 VIP', object: broken(haPair(), (s) => (s.virtualIPv6 = 'fe80::86/64')), message: 'spec.virtualIPv6 must be an address hosts can use' },
  { name: 'HAPair loopback node address', object: broken(haPair(), (s) => (s.primary.address = '127.0.0.1')), message: "spec.primary.address must be a host's own address" },
  { name: 'HAPair unspecified node address', object: broken(haPair(), (s) => (s.secondary.address = '0.0.0.0')), message: "spec.secondary.address must be a host's own address" },
  { name: 'DhcpFailoverPeer multicast peer address', object: broken(failoverPeer(), (s) => (s.primary.address = '239.1.1.1')), message: "spec.primary.address must be a host's own address" },
  { name: 'DhcpFailoverPeer broadcast peer address', object: broken(failoverPeer(), (s) => (s.secondary.address = '255.255.255.255')), message: "spec.secondary.address must be a host's own address" },
  { name: 'Kea loopback peer URL', object: broken(keaCluster(), (s) => (s.peers[0].url = 'http://127.0.0.1:8000/')), message: "spec.peers[].url must be a host's own address" },
  { name: 'Kea link-local IPv6 peer URL', object: broken(keaCluster(), (s) => { s.peers[0].url = 'http://[fe80::11]:8000/'; s.peers[1].url = 'http://[fd00::12]:8000/'; }), message: "spec.peers[].url must be a host's own address" },
  { name: 'DhcpFailoverPeer split with hba', object: broken(failoverPeer(), (s) => (s.hba = Array(32).fill('ff').join(':'))), message: 'set exactly one of spec.split or spec.hba' },
  { name: 'DhcpFailoverPeer neither split nor hba', object: broken(failoverPeer(), (s) => delete s.split), message: 'set exactly one of spec.split or spec.hba' },
  { name: 'DhcpFailoverPeer fractional maxLeaseTime', object: broken(failoverPeer(), (s) => (s.subnets[0].pools[0].maxLeaseTime = '500ms')), message: 'maxLeaseTime must be whole seconds' },
  { name: 'DhcpFailoverPeer OMAPI port equal to the failover port', object: broken(failoverPeer(), (s) => (s.omapi = { port: 647 })), message: 'spec.omapi.port must differ' },
  { name: 'DhcpFailoverPeer the same subnet twice', object: broken(failoverPeer(), (s) => s.subnets.push(structuredClone(s.subnets[0]))), message: 'spec.subnets must not list the same subnet twice' },
  { name: 'DhcpFailoverPeer split 257', object: broken(failoverPeer(), (s) => (s.split = 257)), message: 'spec.split' },
  { name: 'DhcpFailoverPeer malformed hba', object: broken(failoverPeer(), (s) => { delete s.split; s.hba = 'ff:ff'; }), message: 'spec.hba' },
  { name: 'DhcpFailoverPeer primary host = secondary host', object: broken(failoverPeer(), (s) => (s.secondary.host = 'ddi1')), message: 'spec.secondary.host must differ from spec.primary.host' },
  { name: 'DhcpFailoverPeer primary address = secondary address', object: broken(failoverPeer(), (s) => (s.secondary.address = '10.71.17.11')), message: 'spec.secondary.address must differ from spec.primary.address' },
  { name: 'DhcpFailoverPeer sub-second maxResponseDelay', object: broken(failoverPeer(), (s) => (s.maxResponseDelay = '500ms')), message: 'spec.maxResponseDelay must be whole seconds' },
  { name: 'DhcpFailoverPeer mclt 0s', object: broken(failoverPeer(), (s) => (s.mclt = '0s')), message: 'spec.mclt must be whole seconds' },
  { name: 'DhcpFailoverPeer pool outside its subnet', object: broken(failoverPeer(), (s) => (s.subnets[0].pools[0].range = ['10.71.18.100', '10.71.18.200'])), message: 'spec.subnets[].pools[].range must be two addresses inside' },
  { name: 'DhcpFailoverPeer no subnets', object: broken(failoverPeer(), (s) => (s.subnets = [])), message: 'spec.subnets' },
  { name: 'DhcpFailoverPeer space in peerName', object: broken(failoverPeer(), (s) => (s.peerName = 'dhcp failover')), message: 'spec.peerName' },
  { name: 'DhcpFailoverPeer shell metacharacters in configPath', object: broken(failoverPeer(), (s) => (s.configPath = '/etc/dhcp/dhcpd.conf && reboot')), message: 'spec.configPath' },
  { name: 'DhcpFailoverPeer configPath outside /etc/dhcp', object: broken(failoverPeer(), (s) => (s.configPath = '/root/authorized_keys')), message: 'spec.configPath in body should match' },
  // FailoverDrill
  { name: 'FailoverDrill schedule that is not cron', object: broken(failoverDrill(), (s) => (s.schedule = 'every monday')), message: 'spec.schedule' },
  { name: 'FailoverDrill objective that is not a duration', object: broken(failoverDrill(), (s) => (s.objective = 'ten seconds')), message: 'spec.objective' },
  { name: 'FailoverDrill unknown method', object: broken(failoverDrill(), (s) => (s.method = 'PullThePlug')), message: 'spec.method' },
  { name: 'FailoverDrill objective beyond its timeout', object: broken(failoverDrill(), (s) => { s.objective = '5m'; s.timeout = '1m'; }), message: 'spec.objective must be more than 0s and at most spec.timeout' },
  { name: 'FailoverDrill of a KeaHACluster by stopping keepalived', object: broken(failoverDrill(), (s) => { s.target = { kind: 'KeaHACluster', name: 'kea-lb' }; s.method = 'StopPrimaryDaemon'; }), message: 'spec.method must be KeaMaintenance for a KeaHACluster' },
  { name: 'FailoverDrill of a KeaHACluster with a DNS check', object: broken(failoverDrill(), (s) => { s.target = { kind: 'KeaHACluster', name: 'kea-lb' }; s.method = 'KeaMaintenance'; s.serviceCheck = { dnsName: 'example.org' }; }), message: 'a KeaHACluster has no VIP' },
  { name: 'DhcpFailoverPeer hostname as failover address', object: broken(failoverPeer(), (s) => (s.primary.address = 'ddi1.example.net')), message: 'spec.primary.address' },
];

// ---------------------------------------------------------------------------------------------

function crdFiles(): string[] {
  const dir = join(repoRoot, 'crds');
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(dir, f));
}

function exampleFiles(): string[] {
  const dir = join(repoRoot, 'examples');
  try {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

function loadYamlObjects(path: string): KubernetesObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]?.message}`);
      return doc.toJS() as KubernetesObject | null;
    })
    .filter((o): o is KubernetesObject => o !== null && typeof o === 'object');
}

/** The API server's explanation, from a client-node ApiException or anything else. */
function apiMessage(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  if (typeof e.body === 'string') {
    try {
      return (JSON.parse(e.body) as { message?: string }).message ?? e.body;
    } catch {
      return e.body;
    }
  }
  if (e.body && typeof e.body === 'object' && 'message' in e.body) return String((e.body as { message: unknown }).message);
  return e.message ?? String(err);
}

function apiCode(err: unknown): number | undefined {
  return (err as { code?: number } | undefined)?.code;
}

async function kubectl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(kubectlPath, [`--kubeconfig=${kubeconfigPath}`, `--cache-dir=${kubectlCacheDir}`, ...args], {
      env: { ...process.env, KUBECONFIG: kubeconfigPath },
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(' ')}: ${e.stderr ?? e.message}`);
  }
}

/** Retries while discovery and OpenAPI catch up with freshly established CRDs. */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function apply<T extends KubernetesObject>(object: T): Promise<T> {
  const withNamespace = { ...object, metadata: { namespace, ...object.metadata } } as T;
  return objects.patch(withNamespace, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
}

async function getCustom(plural: string, name: string): Promise<Record<string, any>> {
  return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name })) as Record<string, any>;
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  if (!kubeconfigPath) throw new Error('no control plane: run with the integration project (globalSetup test/harness/global-setup.ts)');
  kc.loadFromFile(kubeconfigPath);
  objects = KubernetesObjectApi.makeApiClient(kc);
  custom = kc.makeApiClient(CustomObjectsApi);
  core = kc.makeApiClient(CoreV1Api);
  const apiext = kc.makeApiClient(ApiextensionsV1Api);

  const crds = crdFiles().flatMap(loadYamlObjects) as V1CustomResourceDefinition[];
  expect(crds.map((c) => c.spec.names.kind).sort()).toEqual(['DDIHost', 'DhcpFailoverPeer', 'FailoverDrill', 'HAPair', 'KeaHACluster']);
  // kubectl, as users install them. client-node's typed serializer would silently drop every
  // JSONSchemaProps field whose JSON name differs from its TypeScript name (enum, default,
  // x-kubernetes-validations, ...), installing a CRD that accepts anything.
  await kubectl('apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', join(repoRoot, 'crds'));
  for (const crd of crds) {
    await eventually(async () => {
      const live = await apiext.readCustomResourceDefinition({ name: crd.metadata!.name! });
      const established = live.status?.conditions?.find((c) => c.type === 'Established');
      if (established?.status !== 'True') throw new Error(`CRD ${crd.metadata!.name} is not Established yet`);
    });
  }
  await core.createNamespace({ body: { metadata: { name: namespace } } });
}, 120_000);

afterAll(async () => {
  // Namespaces never finish deleting without a controller-manager; ask anyway so the objects
  // at least stop being listed by a long-lived control plane started by hand.
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

describe('CRDs on a real kube-apiserver', () => {
  it('accepts the valid baselines the invalid cases are derived from, with schema defaults', async () => {
    for (const object of [ddiHost(), ddiHost('ddi2'), haPair(), keaCluster(), failoverPeer(), failoverDrill()]) {
      await apply(object as KubernetesObject);
    }
    expect((await getCustom('failoverdrills', 'dns-vip-drill')).spec).toMatchObject({ timeout: '120s', historyLimit: 5 });
    const pair = await getCustom('hapairs', 'dns-vip');
    expect(pair.spec.primary.priority).toBe(150);
    expect(pair.spec.secondary.priority).toBe(100);
    expect(pair.spec.primary.configPath).toBe('/etc/keepalived/keepalived.conf');
    expect(pair.spec.advertInterval).toBe('1s');
    expect(pair.spec.deletionPolicy).toBe('Remove');
    const host = await getCustom('ddihosts', 'ddi1');
    expect(host.spec).toMatchObject({ port: 22, user: 'root', sudo: false, hostKeyPolicy: 'Pinned' });
  });

  it('has at least 30 invalid cases', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(30);
  });

  it.each(invalid)('rejects $name', async ({ object, message }) => {
    const candidate: Record<string, any> = { ...object, metadata: { ...object.metadata, name: `invalid-${Math.random().toString(36).slice(2, 8)}`, namespace } };
    const error = await objects.create(candidate as KubernetesObject, undefined, 'All', FIELD_MANAGER).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error, `the API server accepted: ${JSON.stringify(candidate.spec)}`).toBeDefined();
    expect(apiCode(error)).toBe(422);
    expect(apiMessage(error)).toContain(message);
  });
});

describe('examples/', () => {
  const files = exampleFiles();
  // An empty examples/ would make the test below pass vacuously.
  it('has example files to apply', () => {
    expect(files, 'examples/ holds no *.yaml').not.toHaveLength(0);
  });
  it.each(files.map((f) => [f.slice(repoRoot.length + 1), f]))('%s applies with server-side apply', async (_label, path) => {
    const docs = loadYamlObjects(path);
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      const ns = doc.metadata?.namespace;
      if (ns) await core.createNamespace({ body: { metadata: { name: ns } } }).catch((e: unknown) => (apiCode(e) === 409 ? undefined : Promise.reject(e)));
      const target = ns ? doc : { ...doc, metadata: { ...doc.metadata, namespace } };
      await objects.patch(target, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply).catch((err: unknown) => {
        throw new Error(`${doc.kind}/${doc.metadata?.name} in ${path}: ${apiMessage(err)}`);
      });
    }
  });
});

describe('what kubectl users see', () => {
  it('kubectl explain hapair.spec.virtualRouterID prints the field description', async () => {
    const out = await eventually(() => kubectl('explain', 'hapair.spec.virtualRouterID'));
    expect(out).toContain('FIELD: virtualRouterID <integer>');
    // kubectl wraps long descriptions.
    expect(out.replace(/\s+/g, ' ')).toContain('VRRP virtual router ID 1-255, unique among the HAPairs whose VIPs share a subnet.');
  });

  it('kubectl get ddi-ha lists every kind', async () => {
    for (const object of [ddiHost(), ddiHost('ddi2'), haPair(), keaCluster(), failoverPeer()]) {
      await apply(object as KubernetesObject);
    }
    const out = await eventually(() => kubectl('get', 'ddi-ha', '-n', namespace, '-o', 'name'));
    const lines = out.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'ddihost.ddi-ha.io/ddi1',
        'ddihost.ddi-ha.io/ddi2',
        'hapair.ddi-ha.io/dns-vip',
        'keahacluster.ddi-ha.io/kea-lb',
        'dhcpfailoverpeer.ddi-ha.io/dhcp-failover',
      ]),
    );
  });

  it('kubectl get hap shows the printer columns', async () => {
    await apply(haPair() as KubernetesObject);
    const out = await eventually(() => kubectl('get', 'hap', '-n', namespace));
    const [header, row] = out.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'VIP', 'VRID', 'ACTIVE', 'READY', 'AGE']);
    expect(row).toMatch(/^dns-vip\s+10\.71\.17\.86\/24\s+51\s/);
    const wide = await kubectl('get', 'hap', '-n', namespace, '-o', 'wide');
    expect(wide.split('\n')[0]).toContain('REASON');
  });
});

describe('status subresource and generation', () => {
  it('a write to /status cannot change spec, and does not bump generation', async () => {
    await apply(haPair('status-check') as KubernetesObject);
    const before = await getCustom('hapairs', 'status-check');
    const body = structuredClone(before);
    body.spec.virtualRouterID = 99;
    body.status = { observedGeneration: before.metadata.generation, activeNode: 'primary', failoverCount: 0 };
    await custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: 'hapairs', name: 'status-check', body });
    const after = await getCustom('hapairs', 'status-check');
    expect(after.spec.virtualRouterID).toBe(51);
    expect(after.status).toMatchObject({ activeNode: 'primary', failoverCount: 0 });
    expect(after.metadata.generation).toBe(before.metadata.generation);
  });

  it('a spec update bumps metadata.generation', async () => {
    await apply(haPair('generation-check') as KubernetesObject);
    const before = await getCustom('hapairs', 'generation-check');
    await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: 'hapairs', name: 'generation-check', body: { spec: { virtualRouterID: 52 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const after = await getCustom('hapairs', 'generation-check');
    expect(after.spec.virtualRouterID).toBe(52);
    expect(after.metadata.generation).toBe(before.metadata.generation + 1);
  });

  it('a status write is validated against the status schema', async () => {
    await apply(haPair('status-invalid') as KubernetesObject);
    const current = await getCustom('hapairs', 'status-invalid');
    const error = await custom
      .replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'hapairs',
        name: 'status-invalid',
        body: { ...current, status: { activeNode: 'third' } },
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(apiCode(error)).toBe(422);
    expect(apiMessage(error)).toContain('status.activeNode');
  });
});
