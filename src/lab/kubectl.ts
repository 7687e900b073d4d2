// The lab's Kubernetes side, through kubectl (argv only): server-side apply of the manifests,
// reading the set back from the API server, and writing each resource's /status subresource.
// kubectl rather than @kubernetes/client-node: installing CRDs through client-node's object API
// drops enum/default/x-kubernetes-validations, and what the lab prints is what a user types.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { KINDS } from "../api/index.js";
import type { KubeItem } from "../engine/kube-status.js";

const execFileAsync = promisify(execFile);

export const LAB_FIELD_MANAGER = "ddi-ha-lab";

export interface KubectlOptions {
  /** kubectl binary (hack/testbin.sh's, same release as the apiserver). */
  binary: string;
  kubeconfig: string;
  /** Discovery cache dir: fresh per lab, since the CRDs are new to the server and $HOME stays clean. */
  cacheDir?: string;
}

/** kind → plural resource name with group, e.g. HAPair → hapairs.ddi-ha.io. */
export function resourceOf(kind: string): string {
  const def = KINDS.find((k) => k.kind === kind);
  if (!def) throw new Error(`not a ddi-ha kind: ${kind}`);
  return `${def.plural}.ddi-ha.io`;
}

export class Kubectl {
  constructor(readonly options: KubectlOptions) {}

  /** The argv prefix a user would type (for printing). */
  get userCommand(): string[] {
    return [this.options.binary, "--kubeconfig", this.options.kubeconfig];
  }

  async run(args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
    const argv = ["--kubeconfig", this.options.kubeconfig, ...(this.options.cacheDir ? ["--cache-dir", this.options.cacheDir] : []), ...args];
    const child = execFileAsync(this.options.binary, argv, { maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000 });
    if (opts.stdin !== undefined) {
      child.child.stdin?.end(opts.stdin);
    }
    try {
      return (await child).stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`kubectl ${args.join(" ")} failed: ${(e.stderr || e.stdout || e.message).trim()}`, { cause: err });
    }
  }

  /** `kubectl apply --server-side -f PATH…`: admission (schema, CEL) runs for real. */
  async applyServerSide(paths: readonly string[]): Promise<string> {
    return this.run(["apply", "--server-side", `--field-manager=${LAB_FIELD_MANAGER}`, "--force-conflicts", ...paths.flatMap((p) => ["-f", p])]);
  }

  /** Waits until every CRD is Established, so that the first apply of resources finds them. */
  async waitForCrds(timeoutSeconds = 60): Promise<void> {
    await this.run(["wait", "--for=condition=Established", `--timeout=${timeoutSeconds}s`, ...KINDS.map((k) => `crd/${k.plural}.ddi-ha.io`)]);
  }

  /** Every ddi-ha object and Secret of a namespace, as the API server has them (defaults filled in). */
  async getNamespace(namespace: string): Promise<KubeItem[]> {
    const resources = ["secrets", ...KINDS.map((k) => `${k.plural}.ddi-ha.io`)].join(",");
    const list = JSON.parse(await this.run(["get", resources, "-n", namespace, "-o", "json"])) as { items: KubeItem[] };
    return list.items;
  }

  async patchStatus(item: Pick<KubeItem, "kind" | "metadata">, patch: object): Promise<void> {
    await this.run([
      "patch",
      resourceOf(item.kind),
      item.metadata.name,
      "-n",
      item.metadata.namespace ?? "default",
      "--subresource=status",
      "--type=merge",
      `--field-manager=${LAB_FIELD_MANAGER}`,
      "-p",
      JSON.stringify(patch),
    ]);
  }
}
