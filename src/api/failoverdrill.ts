// FailoverDrill: a one-shot (or cron-scheduled) action object, in the style of a Job. It breaks
// the active node of a relationship on purpose, measures how long the peer takes to serve, puts
// everything back and keeps the last runs in status. See ADR 0031.
import { Cron } from "croner";
import { z } from "zod";
import { type KindDefinition, type PrinterColumn, ageColumn, commonStatusFields, duration, durationToMs, objectName, withCrossFieldRules, withFieldRule } from "./common.js";

export const DRILL_METHODS = ["StopPrimaryDaemon", "CutHostNetwork", "KeaMaintenance"] as const;
export type DrillMethod = (typeof DRILL_METHODS)[number];
export const DRILL_PHASES = ["Pending", "Checking", "Running", "Restoring", "Succeeded", "Failed", "Aborted"] as const;
export type DrillPhase = (typeof DRILL_PHASES)[number];
export const DRILL_RESULTS = ["Succeeded", "Failed", "Aborted"] as const;
export type DrillResult = (typeof DRILL_RESULTS)[number];

/** Five cron fields (minute hour day-of-month month day-of-week) of cron characters, no seconds field. */
const CRON_RE = /^[0-9A-Za-z*,/?-]+( [0-9A-Za-z*,/?-]+){4}$/;
/** Drill names in DNS queries: letters, digits and '-' per label, '.' between; travels as argv. */
const DNS_QUERY_NAME_RE = /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;

/** Whether croner accepts a five-field pattern (in UTC). */
export function cronProblem(pattern: string): string | undefined {
  try {
    new Cron(pattern, { paused: true, timezone: "Etc/UTC" });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The first scheduled time strictly after `after`, or undefined when the pattern never fires again. */
export function nextScheduled(pattern: string, after: Date): Date | undefined {
  return new Cron(pattern, { paused: true, timezone: "Etc/UTC" }).nextRun(after) ?? undefined;
}

const schedule = () =>
  z
    .string()
    .max(100)
    .regex(CRON_RE, 'must be a five-field cron expression in UTC such as "0 3 * * 1" (minute hour day-of-month month day-of-week)')
    .superRefine((v, ctx) => {
      const problem = CRON_RE.test(v) ? cronProblem(v) : undefined;
      if (problem) ctx.addIssue({ code: "custom", message: `spec.schedule: ${problem}` });
    });

export const failoverDrillSpecSchema = withCrossFieldRules(
  z
    .strictObject({
      target: z
        .strictObject({
          kind: z.enum(["HAPair", "KeaHACluster"]).describe("Kind of the relationship to drill."),
          name: objectName().describe("Name of the relationship in the same namespace."),
        })
        .describe("The relationship whose active node is broken on purpose."),
      method: z
        .enum(DRILL_METHODS)
        .describe(
          "How the active node is broken. StopPrimaryDaemon: `systemctl stop keepalived` on the node holding the VIP, started again afterwards. CutHostNetwork: on that node, drop every packet on the VIP's interface except the SSH server's port (iptables), undone afterwards. KeaMaintenance (KeaHACluster, hot-standby or load-balancing): Kea's controlled shutdown of the primary, ha-maintenance-start sent to its partner (the standby, or the secondary), which takes over every client; ha-maintenance-cancel afterwards. Before any break the host arms a systemd timer that undoes it by itself after spec.timeout plus a margin, so a lost controller never leaves a host broken.",
        ),
      objective: duration().describe(
        'The recovery time objective: how soon after the break the peer must serve (the service answering on the VIP when spec.serviceCheck is set, else the VIP on the peer; for a KeaHACluster, the partner in partner-in-maintenance), e.g. "10s". A slower run is Failed with reason MissedObjective.',
      ),
      schedule: schedule()
        .optional()
        .describe("Optional cron schedule (five fields, UTC) for recurring drills. Without it the drill runs once, when it is created."),
      serviceCheck: z
        .strictObject({
          dnsName: withFieldRule(z.string().min(1).max(253).regex(DNS_QUERY_NAME_RE, "must be a DNS name such as example.org (letters, digits, '-' and '.')"), DNS_QUERY_NAME_RE, {
            cel: "!self.contains('..')",
            message: "spec.serviceCheck.dnsName must not contain an empty label ('..')",
            holds: (v) => !v.includes(".."),
          }).describe("A name the DNS server behind the VIP answers (type A), asked from the peer host to the VIP during the drill."),
        })
        .optional()
        .describe("How to tell that the service answers on the VIP. Without it only the VIP's move is measured."),
      timeout: duration()
        .default("120s")
        .describe("How long each stage (the peer taking over, everything coming back) may take before the run is restored and Failed. At most 10m."),
      historyLimit: z.number().int().min(1).max(20).default(5).describe("How many finished runs status.runs keeps, newest first."),
    })
    .describe("A failover drill of one relationship."),
  [
    {
      cel: "self.target.kind != 'HAPair' || self.method in ['StopPrimaryDaemon', 'CutHostNetwork']",
      message: "spec.method must be StopPrimaryDaemon or CutHostNetwork for an HAPair (KeaMaintenance is for a KeaHACluster)",
      fieldPath: ".method",
      holds: (s) => s.target.kind !== "HAPair" || s.method !== "KeaMaintenance",
    },
    {
      cel: "self.target.kind != 'KeaHACluster' || self.method == 'KeaMaintenance'",
      message: "spec.method must be KeaMaintenance for a KeaHACluster (StopPrimaryDaemon and CutHostNetwork break the keepalived node of an HAPair)",
      fieldPath: ".method",
      holds: (s) => s.target.kind !== "KeaHACluster" || s.method === "KeaMaintenance",
    },
    {
      cel: "self.target.kind != 'KeaHACluster' || !has(self.serviceCheck)",
      message: "spec.serviceCheck is a DNS query to an HAPair's VIP, and a KeaHACluster has no VIP: remove spec.serviceCheck (a Kea drill measures until the partner serves every client, as Kea itself reports it)",
      fieldPath: ".serviceCheck",
      holds: (s) => s.target.kind !== "KeaHACluster" || s.serviceCheck === undefined,
    },
    {
      cel: "duration(self.timeout) >= duration('5s') && duration(self.timeout) <= duration('10m')",
      message: "spec.timeout must be between 5s and 10m",
      fieldPath: ".timeout",
      holds: (s) => durationToMs(s.timeout) >= 5_000 && durationToMs(s.timeout) <= 600_000,
    },
    {
      cel: "duration(self.objective) > duration('0s') && duration(self.objective) <= duration(self.timeout)",
      message: "spec.objective must be more than 0s and at most spec.timeout (a run is stopped after spec.timeout)",
      fieldPath: ".objective",
      holds: (s) => durationToMs(s.objective) > 0 && durationToMs(s.objective) <= durationToMs(s.timeout),
    },
  ],
);
export type FailoverDrillSpec = z.output<typeof failoverDrillSpecSchema>;

const seconds = (what: string) => z.number().min(0).optional().describe(what);

export const drillRunSchema = z
  .strictObject({
    runID: z.string().max(32).describe("Identifier of the run, also in the name of the host-side restore timer."),
    startTime: z.string().describe("When the run started (RFC 3339)."),
    breakTime: z.string().optional().describe("When the break command was sent to the active node (RFC 3339, milliseconds); the measured seconds count from here."),
    endTime: z.string().optional().describe("When the run ended (RFC 3339)."),
    result: z.enum(DRILL_RESULTS).describe("Succeeded, Failed (including a missed objective), or Aborted (the peer was not healthy; restored)."),
    reason: z.string().max(64).describe("CamelCase reason: Succeeded, MissedObjective, TargetNotReady, PeerNotHealthy, VIPNotMoved, RoleNotMoved, ServiceNotAnswering, NotRecovered, Interrupted, BreakFailed."),
    activeHost: z.string().max(63).optional().describe("The DDIHost that was broken: the one that held the VIP, or the Kea primary."),
    peerHost: z.string().max(63).optional().describe("The DDIHost expected to take over."),
    objectiveSeconds: seconds("spec.objective in seconds, at the time of the run."),
    vipOnPeerSeconds: seconds("Seconds from the break until the VIP was on the peer."),
    servingOnPeerSeconds: seconds("KeaHACluster: seconds from sending ha-maintenance-start until the partner reported partner-in-maintenance (it answers every client)."),
    serviceAnswersSeconds: seconds("Seconds from the break until the service answered on the VIP from the peer host (with spec.serviceCheck)."),
    recoverySeconds: seconds("The measured recovery time compared to spec.objective: serviceAnswersSeconds with spec.serviceCheck, else vipOnPeerSeconds; servingOnPeerSeconds for a KeaHACluster."),
    recoveredSeconds: seconds("Seconds from the break until everything was back: the break undone, the VIP on its original node and keepalived active on both (for a KeaHACluster: both peers in the mode's normal state)."),
    message: z.string().max(4096).describe("What happened, with the measured times."),
  })
  .describe("One drill run.");
export type DrillRun = z.output<typeof drillRunSchema>;

export const activeDrillSchema = z
  .strictObject({
    runID: z.string().max(32).describe("Identifier of the run in progress."),
    startTime: z.string().describe("When the run started (RFC 3339)."),
    breakTime: z.string().optional().describe("When the active node was broken (RFC 3339)."),
    restoreTime: z.string().optional().describe("When the break was undone (RFC 3339)."),
    activeHost: z.string().max(63).optional().describe("The DDIHost that was broken."),
    peerHost: z.string().max(63).optional().describe("The DDIHost expected to take over."),
  })
  .describe("The run in progress, kept so that a controller that restarts mid-run restores the host.");

export const failoverDrillStatusSchema = z
  .strictObject({
    ...commonStatusFields,
    phase: z.enum(DRILL_PHASES).optional().describe("Pending, Checking, Running, Restoring, or the last run's result."),
    active: activeDrillSchema.optional(),
    runs: z.array(drillRunSchema).optional().describe("The last runs, newest first (spec.historyLimit of them)."),
    lastScheduleTime: z.string().optional().describe("When the last run was started (RFC 3339)."),
    nextScheduleTime: z.string().optional().describe("When the next scheduled run starts (RFC 3339), with spec.schedule."),
  })
  .describe("Observed state of the drill.");
export type FailoverDrillStatus = z.output<typeof failoverDrillStatusSchema>;

const column = (name: string, type: PrinterColumn["type"], jsonPath: string, description: string): PrinterColumn => ({ name, type, jsonPath, description });

export const failoverDrillKind: KindDefinition = {
  kind: "FailoverDrill",
  plural: "failoverdrills",
  singular: "failoverdrill",
  shortNames: ["fd", "drill"],
  description: "FailoverDrill breaks the active node of an HAPair or a KeaHACluster on purpose (once, or on a cron schedule), measures how soon the peer serves, and restores everything.",
  spec: failoverDrillSpecSchema,
  status: failoverDrillStatusSchema,
  printerColumns: [
    column("Target", "string", ".spec.target.name", "The relationship drilled."),
    column("Method", "string", ".spec.method", "How the active node is broken."),
    column("Phase", "string", ".status.phase", "Phase of the run in progress, or the last run's result."),
    column("Last", "string", ".status.runs[0].reason", "Reason of the last run."),
    column("Recovery", "number", ".status.runs[0].recoverySeconds", "The last run's measured recovery time (compared to the objective)."),
    column("VIPMove", "number", ".status.runs[0].vipOnPeerSeconds", "Seconds until the VIP was on the peer in the last run."),
    column("Objective", "string", ".spec.objective", "The recovery time objective."),
    {
      name: "Ready",
      type: "string",
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      description: "Whether the last run succeeded within its objective.",
      priority: 1,
    },
    ageColumn,
  ],
};
