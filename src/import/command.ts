// `ddi-ha import`: read the running configs over SSH, write the manifests that reproduce them, and
// report what the first apply would change (docs/adr/0027-import.md). It writes nothing to hosts.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { SshTransport } from "../ssh/index.js";
import { importDhcpd } from "./dhcpd.js";
import { importKea } from "./kea.js";
import { importKeepalived } from "./keepalived.js";
import { connectAndRead, parseHostArg, parseHostKeyArg, readMore } from "./read-hosts.js";
import { buildReport, formatReport, IMPORT_SSH_SECRET, manifestsYaml, renderedTargets } from "./report.js";
import type { DaemonImport, ImportHost } from "./types.js";

interface Output {
  write(text: string): unknown;
}

export interface ImportOptions {
  host: string[];
  identity: string;
  hostKey?: string[];
  knownHosts?: string;
  namespace: string;
  /** Directory for the manifests, the report and one diff per file; without it, manifests go to stdout and the report to stderr. */
  output?: string;
}

/** Every daemon's import over the same hosts. */
export function importAll(hosts: readonly ImportHost[], namespace: string): DaemonImport[] {
  return [importKeepalived(hosts, namespace), importDhcpd(hosts, namespace), importKea(hosts, namespace)];
}

/** Exit 0 when manifests were written (whatever was unrepresentable: the report names it), 1 when the hosts could not be read or nothing was found. */
export async function runImport(options: ImportOptions, out: Output, err: Output): Promise<number> {
  let specs;
  let hostKeys;
  try {
    specs = options.host.map(parseHostArg);
    hostKeys = new Map((options.hostKey ?? []).map(parseHostKeyArg).map((k) => [k.address, k.key]));
  } catch (e) {
    err.write(`${(e as Error).message}\n`);
    return 1;
  }
  const identity = await readFile(options.identity, "utf8").catch((e: Error) => {
    err.write(`--identity ${options.identity}: cannot read the private key: ${e.message}\n`);
    return undefined;
  });
  if (identity === undefined) return 1;
  const transport = new SshTransport();
  try {
    const connected = await connectAndRead(specs, transport, { identity, hostKeys, ...(options.knownHosts ? { knownHosts: options.knownHosts } : {}) });
    const hosts = connected.map((c) => c.host);
    const imports = importAll(hosts, options.namespace);
    await readMore(connected, renderedTargets(hosts, options.namespace, imports));
    const report = await buildReport(hosts, options.namespace, imports);
    const text = formatReport(report);
    const found = report.manifests.filter((m) => m.kind !== "DDIHost").length;
    const yaml = manifestsYaml(report.manifests);
    const secretHint = `# Create the Secret the DDIHosts name before applying: kubectl -n ${options.namespace} create secret generic ${IMPORT_SSH_SECRET} --from-file=privateKey=${options.identity}\n`;
    if (options.output) {
      await mkdir(options.output, { recursive: true });
      // mode 0600: it may hold the hosts' OMAPI key.
      await writeFile(join(options.output, "manifests.yaml"), yaml, { mode: 0o600 });
      for (const f of report.files.filter((g) => g.editBeforeApply)) {
        const target = join(options.output, "adopt", f.host, f.path);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, f.editedContent ?? "", { mode: 0o644 });
      }
      await writeFile(join(options.output, "report.txt"), text);
      await writeFile(join(options.output, "report.json"), `${JSON.stringify({ ...report, manifests: undefined, files: report.files.map(({ content: _, editedContent: __, ...f }) => f) }, null, 2)}\n`);
      for (const f of report.files.filter((g) => g.diff !== "")) {
        const target = join(options.output, "diff", f.host, `${f.path}.diff`);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, f.diff);
      }
      out.write(text);
      out.write(`# Wrote ${join(options.output, "manifests.yaml")}, report.txt, report.json and diff/<host>/<path>.diff\n`);
      out.write(secretHint);
    } else {
      out.write(yaml);
      err.write(text);
      err.write(secretHint);
    }
    if (found === 0) {
      err.write("no HAPair, DhcpFailoverPeer or KeaHACluster found on these hosts (see the report above)\n");
      return 1;
    }
    return 0;
  } catch (e) {
    err.write(`ddi-ha import: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await transport.closeAll();
  }
}
