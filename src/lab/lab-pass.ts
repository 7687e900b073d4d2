// The lab's reconcile loop body: read the namespace from the API server, validate it as the CLI
// does, run one reconcile pass over SSH, and write every status to the /status subresource.
import { manifestSessionProvider } from "../engine/sessions.js";
import type { SshTransport } from "../ssh/index.js";
import { formatProblem, validateManifests } from "../validation/validate.js";
import { indexItems, itemsAsDocuments, needsApply, pinsFromStatus, statusPatchIfChanged } from "../engine/kube-status.js";
import type { Kubectl } from "./kubectl.js";
import { type ComputedStatus, type PassMemory, reconcilePass } from "../engine/reconcile-pass.js";
import { summarizeStatus } from "../status/summary.js";

export interface LabPassOptions {
  kubectl: Kubectl;
  namespace: string;
  transport: SshTransport;
  memory: PassMemory;
  /**
   * true: apply every relationship; false: observe only; "needed": apply what the operator would
   * (a spec it has not applied yet, or a failed apply it retries; not one the daemon refused).
   */
  apply: boolean | "needed";
}

export interface LabPassResult {
  /** One line per resource, e.g. `hapair/lab-vip  Ready=True (VIPOnPrimary)  active=primary`. */
  summary: Map<string, string>;
  statuses: ComputedStatus[];
  /** Validation problems of the objects on the API server (formatted). */
  problems: string[];
  /** Statuses the API server refused, with why. */
  writeErrors: string[];
}

const SHORT: Record<string, string> = { DDIHost: "ddihost", HAPair: "hapair", KeaHACluster: "keahacluster", DhcpFailoverPeer: "dhcpfailoverpeer" };

export async function runLabPass(options: LabPassOptions): Promise<LabPassResult> {
  const { kubectl, namespace } = options;
  const items = await kubectl.getNamespace(namespace);
  const { set, problems } = validateManifests(itemsAsDocuments(items, "kube-apiserver"));
  const itemOf = indexItems(items);
  // TrustOnFirstUse pins live in status.observedHostKey, which this pass reads and writes.
  const result = await reconcilePass(set, manifestSessionProvider(set, options.transport, pinsFromStatus(itemOf)), {
    apply: options.apply === "needed" ? (r) => needsApply(itemOf(r)) : options.apply,
    problems,
    previousStatus: (r) => itemOf(r)?.status,
    memory: options.memory,
  });
  const writeErrors: string[] = [];
  const summary = new Map<string, string>();
  await Promise.all(
    result.statuses.map(async ({ resource, status }) => {
      const item = itemOf(resource);
      summary.set(`${SHORT[resource.kind]}/${resource.metadata.name}`, summarizeStatus(resource.kind, status as Record<string, unknown>));
      if (!item) return;
      const patch = statusPatchIfChanged(item.status, status);
      if (!patch) return;
      try {
        await kubectl.patchStatus(item, patch);
      } catch (err) {
        writeErrors.push(`${resource.kind} ${resource.metadata.name}: ${(err as Error).message}`);
      }
    }),
  );
  return { summary, statuses: result.statuses, problems: problems.map(formatProblem), writeErrors };
}
