// The alert rules the chart ships, checked and unit-tested by the real promtool (Debian's
// prometheus package, see hack/install-deps.sh), and held to the metrics ControllerMetrics really
// publishes, so that a renamed metric or label cannot leave a rule that never fires.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { localRunner } from "../exec/runner.js";
import { ControllerMetrics } from "./metrics.js";

const repoRoot = join(import.meta.dirname, "..", "..");
const rulesFile = join(repoRoot, "charts", "ddi-ha-operator", "files", "ddi-ha-alerts.rules.yaml");
const testsDir = join(repoRoot, "test", "prometheus");
const testFiles = readdirSync(testsDir)
  .filter((f) => f.endsWith(".test.yaml"))
  .sort();

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface PromtoolTest {
  input_series?: { series: string; values: string }[];
  alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[];
}

const rules = (parse(readFileSync(rulesFile, "utf8")) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const tests = testFiles.flatMap((f) => (parse(readFileSync(join(testsDir, f), "utf8")) as { tests: PromtoolTest[] }).tests);

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const r = await localRunner.run(["promtool", ...args], { timeoutMs: 60_000 });
    return { code: r.code, output: `promtool ${args.join(" ")}\n${r.stdout}${r.stderr}` };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error("promtool is not installed: run hack/install-deps.sh (Debian package prometheus)");
    throw err;
  }
}

/** Each published metric's label names, read from prom-client's metric objects. */
function publishedLabels(): Map<string, Set<string>> {
  const m = new ControllerMetrics();
  m.forQueue("object");
  const names = new Map<string, Set<string>>();
  for (const metric of m.registry.getMetricsAsArray()) {
    // prom-client keeps labelNames on the metric without typing it.
    names.set(metric.name, new Set((metric as unknown as { labelNames: string[] }).labelNames));
  }
  return names;
}

/** `name{a="x",b="y"}` → the name and its label names. */
function selectors(text: string): { name: string; labels: string[] }[] {
  return [...text.matchAll(/\b(ddi_ha_\w+)(?:\{([^}]*)\})?/g)].map((m) => ({ name: m[1]!, labels: [...(m[2] ?? "").matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!) }));
}

describe("the ddi-ha alert rules", () => {
  it("promtool check rules accepts them", async () => {
    const r = await promtool("check", "rules", rulesFile);
    expect(r.code, r.output).toBe(0);
  });

  it.each(testFiles)("promtool test rules test/prometheus/%s passes", async (file) => {
    const r = await promtool("test", "rules", join(testsDir, file));
    expect(r.code, r.output).toBe(0);
  });

  it("every alert waits (for:), has a severity, and says what is wrong and what to do", () => {
    for (const rule of rules) {
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(["warning", "critical"], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
    }
  });

  it("every alert has a firing and a non-firing case in test/prometheus", () => {
    const cases = tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of new Set(rules.map((r) => r.alert))) {
      const own = cases.filter((c) => c.alertname === alert);
      expect(own.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} fires in some test`).toBe(true);
      expect(own.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} stays quiet in some test`).toBe(true);
    }
  });

  it("reads only metrics and labels ControllerMetrics publishes; the tests feed the same", () => {
    const published = publishedLabels();
    const read = rules.flatMap((r) => [r.expr, ...Object.values(r.annotations ?? {})]).flatMap(selectors);
    expect(read.length).toBeGreaterThan(10);
    for (const { name, labels } of read) {
      expect(published.has(name), `${name} is published`).toBe(true);
      for (const label of labels) expect([...published.get(name)!], `${name} has label ${label}`).toContain(label);
    }
    // Input series carry exactly the metric's labels, plus the target's labels a scrape adds.
    for (const { series } of tests.flatMap((t) => t.input_series ?? [])) {
      const m = /^(\w+)\{(.*)\}$/.exec(series);
      expect(m, series).not.toBeNull();
      if (m![1] === "up") continue;
      const labels = [...m![2]!.matchAll(/(\w+)="/g)].map((l) => l[1]!).filter((l) => l !== "job" && l !== "instance");
      expect(published.has(m![1]!), `${m![1]} is published`).toBe(true);
      expect(labels.sort(), series).toEqual([...published.get(m![1]!)!].sort());
    }
  });
});
