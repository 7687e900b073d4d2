// The lab's embedded default: one manifest set that exercises every kind on four lab hosts.
// Pure: the lab's inventory in, Kubernetes objects (and their YAML files) out. `hack/lab.sh`
// writes the files to .lab/<name>/manifests/, so a user can read them, edit them and re-apply
// them with `kubectl apply --server-side -f` or `npx ddi-ha apply -f`.
import { stringify } from "yaml";
import { API_GROUP_VERSION } from "../api/index.js";
import { ipv4InCidr, ipv4ToNumber, numberToIpv4, parseIpv4Cidr } from "../net/ipv4.js";

export const LAB_NAMESPACE = "ddi-ha-lab";
export const LAB_SSH_SECRET = "lab-ssh";
export const LAB_OMAPI_SECRET = "lab-dhcp-omapi";
export const LAB_HAPAIR = "lab-vip";
export const LAB_FAILOVER_PEER = "lab-dhcp";
export const LAB_KEA_CLUSTER = "lab-kea";
export const LAB_VRID = 51;

/** One lab host as the manifests need it: where sshd answers and the key it presents. */
export interface LabHostInventory {
  /** IPv4 address on the lab network; also the SSH address (port 22). */
  address: string;
  /** The NIC on the lab network, e.g. eth0. */
  interface: string;
  /** `ssh-ed25519 AAAA…`, pinned in spec.hostKey. */
  hostKeyLine: string;
}

export interface LabInventory {
  /** The lab network, e.g. "198.18.7.0/24". */
  subnet: string;
  /** The network's router, e.g. "198.18.7.1". */
  gateway: string;
  /** At least four hosts: h1+h2 run keepalived and dhcpd, h3+h4 run Kea. */
  hosts: readonly LabHostInventory[];
  /** An address in the subnet that no host has, for the VIP. */
  vip: string;
  /** OpenSSH private key authorized for root on every host. */
  privateKey: string;
  /** The OMAPI key dhcpd and the observer share (base64 HMAC-SHA256 secret). */
  omapiSecret: string;
}

export interface LabManifestOptions {
  /** Default ddi-ha-lab. Tests use their own: without a controller-manager a namespace never finishes deleting. */
  namespace?: string;
}

export type KubeObject = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

export interface LabManifestFile {
  /** File name inside the manifests directory, e.g. "30-hapair.yaml". Sorted names apply in order. */
  name: string;
  /** Why the file looks as it does, printed as a comment at its top. */
  comment: string;
  objects: KubeObject[];
}

/** The DDIHost name of the i-th lab host (0-based): h1, h2, … */
export function labHostName(index: number): string {
  return `h${index + 1}`;
}

/** Addresses of the subnet's /24-style layout relative to its network address. */
function at(subnet: string, offset: number): string {
  return numberToIpv4(ipv4ToNumber(parseIpv4Cidr(subnet).network) + offset);
}

/**
 * A pool [first, last] at `from`..`to` inside the subnet, refusing one that would hand out an
 * address the lab already uses (a host, the VIP, the router): a DHCP server that leases the
 * VIP to a client breaks the pair in a way that is hard to see.
 */
function poolAvoiding(inv: LabInventory, from: number, to: number): [string, string] {
  const first = at(inv.subnet, from);
  const last = at(inv.subnet, to);
  if (!ipv4InCidr(first, inv.subnet) || !ipv4InCidr(last, inv.subnet)) {
    throw new Error(`the lab subnet ${inv.subnet} is too small for a pool at +${from}..+${to}; the default set needs a /24`);
  }
  const taken = [inv.gateway, inv.vip, ...inv.hosts.map((h) => h.address)];
  const clash = taken.find((a) => ipv4ToNumber(a) >= ipv4ToNumber(first) && ipv4ToNumber(a) <= ipv4ToNumber(last));
  if (clash) throw new Error(`the pool ${first}-${last} would contain ${clash}, which the lab already uses`);
  return [first, last];
}

/**
 * The default set: a Secret with the lab's SSH key, four DDIHosts with Pinned host keys, an
 * HAPair (VIP on h1/h2), an ISC DhcpFailoverPeer (h1/h2) and a Kea hot-standby (h3/h4).
 * The two DHCP services get disjoint pools in the lab subnet, outside the hosts' and the VIP's
 * addresses. Timings are short so that failover is quick to watch.
 */
export function defaultLabManifests(inv: LabInventory, options: LabManifestOptions = {}): LabManifestFile[] {
  if (inv.hosts.length < 4) throw new Error(`the default lab set needs 4 hosts, the lab has ${inv.hosts.length}`);
  if (!ipv4InCidr(inv.vip, inv.subnet)) throw new Error(`the VIP ${inv.vip} is not in the lab subnet ${inv.subnet}`);
  const namespace = options.namespace ?? LAB_NAMESPACE;
  const prefix = parseIpv4Cidr(inv.subnet).prefix;
  const meta = (name: string) => ({ name, namespace });
  const [h1, h2, h3, h4] = inv.hosts as [LabHostInventory, LabHostInventory, LabHostInventory, LabHostInventory];
  const dhcpdPool = poolAvoiding(inv, 100, 139);
  const keaPool = poolAvoiding(inv, 150, 189);

  const ddiHosts: KubeObject[] = inv.hosts.map((h, i) => ({
    apiVersion: API_GROUP_VERSION,
    kind: "DDIHost",
    metadata: meta(labHostName(i)),
    spec: {
      address: h.address,
      credentialsSecretRef: { name: LAB_SSH_SECRET },
      hostKey: h.hostKeyLine,
      hostKeyPolicy: "Pinned",
    },
  }));

  return [
    {
      name: "00-namespace.yaml",
      comment: "The lab's namespace. Everything below lives in it.",
      objects: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }],
    },
    {
      name: "10-secrets.yaml",
      comment: [
        "The lab's SSH key (authorized for root on every lab host; generated when the lab started)",
        "and the OMAPI key dhcpd and the operator share to read the failover state.",
      ].join("\n"),
      objects: [
        { apiVersion: "v1", kind: "Secret", metadata: meta(LAB_SSH_SECRET), type: "Opaque", stringData: { privateKey: inv.privateKey } },
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: meta(LAB_OMAPI_SECRET),
          type: "Opaque",
          stringData: { algorithm: "hmac-sha256", secret: inv.omapiSecret },
        },
      ],
    },
    {
      name: "20-ddihosts.yaml",
      comment: "The four lab hosts, reached over SSH as root. Their host keys were made by the lab, so they are Pinned.",
      objects: ddiHosts,
    },
    {
      name: "30-hapair.yaml",
      comment: `A keepalived VIP on h1 (primary) and h2 (secondary). The lab's hosts run no named, so dns is off.\nTry: docker exec <h1 container> systemctl stop keepalived   (the VIP moves to h2)`,
      objects: [
        {
          apiVersion: API_GROUP_VERSION,
          kind: "HAPair",
          metadata: meta(LAB_HAPAIR),
          spec: {
            primary: { host: labHostName(0), interface: h1.interface },
            secondary: { host: labHostName(1), interface: h2.interface },
            virtualIP: `${inv.vip}/${prefix}`,
            virtualRouterID: LAB_VRID,
            services: { dns: false, dhcp: "None" },
          },
        },
      ],
    },
    {
      name: "40-dhcpfailoverpeer.yaml",
      comment: `ISC dhcpd failover between h1 (primary) and h2 (secondary) for the lab subnet; the pool avoids the hosts, the VIP and the router.`,
      objects: [
        {
          apiVersion: API_GROUP_VERSION,
          kind: "DhcpFailoverPeer",
          metadata: meta(LAB_FAILOVER_PEER),
          spec: {
            primary: { host: labHostName(0), address: h1.address },
            secondary: { host: labHostName(1), address: h2.address },
            maxResponseDelay: "10s",
            mclt: "60s",
            split: 128,
            omapi: { keySecretRef: { name: LAB_OMAPI_SECRET } },
            subnets: [
              {
                subnet: `${parseIpv4Cidr(inv.subnet).network}/${prefix}`,
                options: { routers: [inv.gateway] },
                pools: [{ range: dhcpdPool, maxLeaseTime: "1h" }],
              },
            ],
          },
        },
      ],
    },
    {
      name: "50-keahacluster.yaml",
      comment: `Kea hot-standby between h3 (primary) and h4 (standby), with short timings so partner-down comes within seconds.\nIts pool is disjoint from dhcpd's.`,
      objects: [
        {
          apiVersion: API_GROUP_VERSION,
          kind: "KeaHACluster",
          metadata: meta(LAB_KEA_CLUSTER),
          spec: {
            mode: "hot-standby",
            heartbeatDelay: "1s",
            maxResponseDelay: "4s",
            maxAckDelay: "2s",
            maxUnackedClients: 0,
            peers: [
              { name: labHostName(2), host: labHostName(2), role: "primary", interface: h3.interface },
              { name: labHostName(3), host: labHostName(3), role: "standby", interface: h4.interface },
            ],
            dhcp4: {
              "valid-lifetime": 3600,
              subnet4: [
                {
                  id: 1,
                  subnet: `${parseIpv4Cidr(inv.subnet).network}/${prefix}`,
                  pools: [{ pool: `${keaPool[0]} - ${keaPool[1]}` }],
                  "option-data": [{ name: "routers", data: inv.gateway }],
                },
              ],
            },
          },
        },
      ],
    },
  ];
}

/** One file's YAML: the comment, then its objects as documents. */
export function labManifestYaml(file: LabManifestFile): string {
  const header = file.comment
    .split("\n")
    .map((l) => `# ${l}`.trimEnd())
    .join("\n");
  return `${header}\n${file.objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n")}`;
}
