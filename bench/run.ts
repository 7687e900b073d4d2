// `npm run bench`: how long validate and render take, and how much memory they hold, for manifest
// sets of growing size. Writes docs/benchmarks.md with the command and the machine it ran on.
// Timings are medians of several runs; the machines are shared, so read them as orders of magnitude.
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { stringify } from "yaml";
import { parseManifestText } from "../src/manifests/load.js";
import { renderManifestSet } from "../src/render/render-set.js";
import { validateManifests } from "../src/validation/validate.js";
import { median } from "./stats.js";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/** `pairs` HAPairs on 2×pairs hosts, one /24 each, plus one Kea and one dhcpd relationship per 10 pairs. */
function manifestText(pairs: number): string {
  const docs: object[] = [{ apiVersion: "v1", kind: "Secret", metadata: { name: "ssh", namespace: "bench" }, stringData: { privateKey: "placeholder" } }];
  const host = (name: string, address: string) => ({
    apiVersion: "ddi-ha.io/v1alpha1",
    kind: "DDIHost",
    metadata: { name, namespace: "bench" },
    spec: { address, credentialsSecretRef: { name: "ssh" }, hostKey: KEY },
  });
  for (let i = 0; i < pairs; i++) {
    const net = `198.${18 + Math.floor(i / 256)}.${i % 256}`;
    docs.push(host(`h${i}a`, `${net}.2`), host(`h${i}b`, `${net}.3`));
    docs.push({
      apiVersion: "ddi-ha.io/v1alpha1",
      kind: "HAPair",
      metadata: { name: `vip${i}`, namespace: "bench" },
      spec: {
        primary: { host: `h${i}a`, interface: "eth0" },
        secondary: { host: `h${i}b`, interface: "eth0" },
        virtualIP: `${net}.100/24`,
        virtualRouterID: 51,
        services: { dns: true, dhcp: "DHCPv6" },
      },
    });
    if (i % 10 === 0) {
      docs.push({
        apiVersion: "ddi-ha.io/v1alpha1",
        kind: "KeaHACluster",
        metadata: { name: `kea${i}`, namespace: "bench" },
        spec: { mode: "hot-standby", peers: [{ name: "s1", host: `h${i}a`, role: "primary" }, { name: "s2", host: `h${i}b`, role: "standby" }] },
      });
      docs.push({
        apiVersion: "ddi-ha.io/v1alpha1",
        kind: "DhcpFailoverPeer",
        metadata: { name: `dhcp${i}`, namespace: "bench" },
        spec: {
          primary: { host: `h${i}a`, address: `${net}.2` },
          secondary: { host: `h${i}b`, address: `${net}.3` },
          split: 128,
          subnets: [{ subnet: `${net}.0/24`, pools: [{ range: [`${net}.150`, `${net}.250`] }] }],
        },
      });
    }
  }
  return docs.map((d) => stringify(d)).join("---\n");
}

interface Row {
  pairs: number;
  documents: number;
  parseMs: number;
  validateMs: number;
  renderMs: number;
  files: number;
  heapMiB: number;
}

function measure(pairs: number, runs: number): Row {
  const text = manifestText(pairs);
  const parse: number[] = [];
  const validate: number[] = [];
  const render: number[] = [];
  let files = 0;
  let documents = 0;
  let heap = 0;
  for (let r = 0; r < runs; r++) {
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    let t = performance.now();
    const docs = parseManifestText(text, "bench.yaml");
    parse.push(performance.now() - t);
    t = performance.now();
    const { set, problems } = validateManifests(docs);
    validate.push(performance.now() - t);
    if (problems.some((p) => p.severity === "error")) throw new Error(`bench manifests invalid: ${problems[0]!.message}`);
    t = performance.now();
    const rendered = renderManifestSet(set, { omapiKeys: new Map(set.failoverPeers.map((p) => [`bench/${p.metadata.name}`, { name: "k", algorithm: "hmac-sha256", secret: "c2VjcmV0" }])) });
    render.push(performance.now() - t);
    heap = Math.max(heap, process.memoryUsage().heapUsed - before);
    files = rendered.files.length;
    documents = docs.length;
  }
  return { pairs, documents, parseMs: median(parse), validateMs: median(validate), renderMs: median(render), files, heapMiB: heap / 2 ** 20 };
}

const sizes = [10, 100, 1000];
const rows = sizes.map((n) => measure(n, n >= 1000 ? 3 : 7));
const command = "npm run bench";
const table = [
  "| HAPairs | documents | parse (ms) | validate (ms) | render (ms) | files rendered | heap growth (MiB) |",
  "| --- | --- | --- | --- | --- | --- | --- |",
  ...rows.map((r) => `| ${r.pairs} | ${r.documents} | ${r.parseMs.toFixed(1)} | ${r.validateMs.toFixed(1)} | ${r.renderMs.toFixed(1)} | ${r.files} | ${r.heapMiB.toFixed(1)} |`),
].join("\n");
const doc = `# Benchmarks

Produced by \`${command}\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version},
${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB.
Medians of 7 runs (3 for the largest set). The machines are shared: read these as orders of magnitude.

## Validate and render a manifest set

Each set has N HAPairs on 2N DDIHosts, plus one KeaHACluster and one DhcpFailoverPeer per 10 pairs.
"parse" is YAML to objects; "validate" is the zod schemas plus the cross-object rules (VRID
collisions, references); "render" is every daemon's files for every host.

${table}
`;
writeFileSync("docs/benchmarks.md", doc);
console.log(table);
