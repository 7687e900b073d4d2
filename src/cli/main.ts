// `ddi-ha`: the operator's engine without Kubernetes. validate and render need no I/O beyond
// reading manifests and writing the output directory.
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { DURATION_RE, durationToMs } from "../api/index.js";
import { runApply, runRender, runStatus, runValidate } from "./commands.js";

const program = new Command()
  .name("ddi-ha")
  .description("Declarative HA for DNS/DHCP servers: keepalived VIPs, ISC dhcpd failover and Kea HA.")
  .exitOverride()
  .showHelpAfterError();

const files = (value: string, previous: string[] = []) => [...previous, value];

program
  .command("validate")
  .description("Validate manifests (files or directories, multi-document YAML) and print every problem.")
  .requiredOption("-f, --filename <path>", "file or directory; repeatable", files)
  .action(async (opts: { filename: string[] }) => {
    process.exitCode = await runValidate(opts.filename, process.stdout, process.stderr);
  });

program
  .command("render")
  .description("Write every file the operator would put on each host to OUTDIR/<DDIHost name>/<path on the host>.")
  .requiredOption("-f, --filename <path>", "file or directory; repeatable", files)
  .requiredOption("-o, --output <dir>", "output directory")
  .action(async (opts: { filename: string[]; output: string }) => {
    process.exitCode = await runRender(opts.filename, opts.output, process.stdout, process.stderr);
  });

const outputFormat = (value: string) => {
  if (!["table", "json", "yaml"].includes(value)) throw new InvalidArgumentError("expected table, json or yaml");
  return value as "table" | "json" | "yaml";
};

program
  .command("apply")
  .description("Apply manifests to their hosts over SSH, without Kubernetes (stage, check, swap, reload, verify, roll back), then print each resource's status. Exit 1 when an apply failed, 2 when not all Ready yet.")
  .requiredOption("-f, --filename <path>", "file or directory with the resources and their Secrets; repeatable", files)
  .option("-o, --output <format>", "table, json or yaml", outputFormat, "table")
  .option("--known-hosts <file>", "where TrustOnFirstUse host keys are pinned", undefined)
  .action(async (opts: { filename: string[]; output: "table" | "json" | "yaml"; knownHosts?: string }) => {
    process.exitCode = await runApply(opts.filename, process.stdout, process.stderr, opts);
  });

program
  .command("status")
  .description("Observe the hosts of the manifests over SSH and print each resource's status (exit 2 when not all Ready).")
  .requiredOption("-f, --filename <path>", "file or directory with the resources and their Secrets; repeatable", files)
  .option("-o, --output <format>", "table, json or yaml", outputFormat, "table")
  .option("--known-hosts <file>", "where TrustOnFirstUse host keys are pinned", undefined)
  .action(async (opts: { filename: string[]; output: "table" | "json" | "yaml"; knownHosts?: string }) => {
    process.exitCode = await runStatus(opts.filename, process.stdout, process.stderr, opts);
  });

program
  .command("import")
  .description(
    "Read the running keepalived, dhcpd and Kea configs from hosts over SSH and write the DDIHost, HAPair, DhcpFailoverPeer and KeaHACluster manifests that reproduce them, with a report: what cannot be represented, which files the first apply writes (a diff each), and which daemons it reloads or restarts. Writes nothing to the hosts.",
  )
  .requiredOption("--host <user@addr[:port]>", "a host to read; repeatable (give both nodes of a pair)", files)
  .requiredOption("-i, --identity <keyfile>", "SSH private key for every --host")
  .option("--host-key <addr=key>", 'pin a host\'s key, e.g. 198.18.0.10="ssh-ed25519 AAAA…"; repeatable (others: TrustOnFirstUse in --known-hosts)', files)
  .option("--known-hosts <file>", "where TrustOnFirstUse host keys are pinned (a changed key is refused)", undefined)
  .option("-n, --namespace <ns>", "namespace of the manifests", "default")
  .option("-o, --output <dir>", "write manifests.yaml, report.txt, report.json and diff/<host>/<path>.diff here (default: manifests on stdout, report on stderr)")
  .action(async (opts: { host: string[]; identity: string; hostKey?: string[]; knownHosts?: string; namespace: string; output?: string }) => {
    const { runImport } = await import("../import/command.js");
    process.exitCode = await runImport(opts, process.stdout, process.stderr);
  });

const durationMs = (value: string) => {
  if (!DURATION_RE.test(value) || durationToMs(value) < 1000) throw new InvalidArgumentError('expected a duration of at least 1s, such as "60s" or "5m"');
  return durationToMs(value);
};

/** An integer in [min, 65535]; commander prefixes the error with the flag's name. */
const positiveNumber = (what: string) => (value: string) => {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0)) throw new InvalidArgumentError(`expected ${what}: a positive number such as 20 or 0.5, not "${value}"`);
  return n;
};

const boundedInt = (what: string, min: number) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > 65535) throw new InvalidArgumentError(`expected ${what}: an integer from ${min} to 65535, not "${value}"`);
  return n;
};

program
  .command("controller")
  .description("Run the in-cluster controller: watch the ddi-ha resources, reconcile each object over SSH, write status; serve /metrics, /healthz and /readyz.")
  .option("-n, --namespace <ns>", "watch only this namespace (default: all namespaces)")
  .option("--metrics-port <port>", "port for /metrics, /healthz and /readyz", boundedInt("a port number (0 picks a free one)", 0), 8080)
  .addOption(new Option("--resync <duration>", "drift check interval after a settled pass (jittered by up to 10%)").argParser(durationMs).default(60_000, "60s"))
  .option("--workers <n>", "objects reconciled at once", boundedInt("a number of workers", 1), 4)
  .option("--kube-api-qps <n>", "API requests per second once the burst is spent (client-side; watches aside)", positiveNumber("a rate per second"), 20)
  .option("--kube-api-burst <n>", "API requests allowed at once", boundedInt("a burst size", 1), 30)
  .option("--ssh-connect-qps <n>", "new SSH connections per second over all hosts once the burst is spent", positiveNumber("a rate per second"), 20)
  .option("--ssh-connect-burst <n>", "new SSH connections allowed at once", boundedInt("a burst size", 1), 40)
  .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
  .option("--leader-elect", "run as one of several replicas: only the holder of a coordination.k8s.io/v1 Lease writes to hosts and status", false)
  .addOption(new Option("--leader-elect-lease-duration <duration>", "how long followers wait, after the Lease last changed, before taking it").argParser(durationMs).default(15_000, "15s"))
  .addOption(new Option("--leader-elect-renew-deadline <duration>", "how long the leader keeps trying to renew before it stops writing").argParser(durationMs).default(10_000, "10s"))
  .addOption(new Option("--leader-elect-retry-period <duration>", "how often candidates try to take the Lease and the leader renews it").argParser(durationMs).default(2_000, "2s"))
  .option("--leader-election-namespace <ns>", "namespace of the Lease (default: the pod's namespace, $POD_NAMESPACE, or default)")
  .option("--leader-election-id <name>", "name of the Lease", "ddi-ha-operator")
  .action(
    async (opts: {
      namespace?: string;
      metricsPort: number;
      resync: number;
      workers: number;
      kubeApiQps: number;
      kubeApiBurst: number;
      sshConnectQps: number;
      sshConnectBurst: number;
      kubeconfig?: string;
      leaderElect: boolean;
      leaderElectLeaseDuration: number;
      leaderElectRenewDeadline: number;
      leaderElectRetryPeriod: number;
      leaderElectionNamespace?: string;
      leaderElectionId: string;
    }) => {
      const { runController } = await import("./controller-command.js");
      process.exitCode = await runController({
        metricsPort: opts.metricsPort,
        resyncMs: opts.resync,
        workers: opts.workers,
        kubeApiRate: { perSecond: opts.kubeApiQps, burst: opts.kubeApiBurst },
        sshConnectRate: { perSecond: opts.sshConnectQps, burst: opts.sshConnectBurst },
        ...(opts.namespace ? { namespace: opts.namespace } : {}),
        ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
        ...(opts.leaderElect
          ? {
              leaderElection: {
                leaseDurationMs: opts.leaderElectLeaseDuration,
                renewDeadlineMs: opts.leaderElectRenewDeadline,
                retryPeriodMs: opts.leaderElectRetryPeriod,
                leaseName: opts.leaderElectionId,
                ...(opts.leaderElectionNamespace ? { leaseNamespace: opts.leaderElectionNamespace } : {}),
              },
            }
          : {}),
      });
    },
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode;
  else {
    process.stderr.write(`ddi-ha: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
