import { describe, expect, it } from "vitest";
import type { ServiceUnit } from "../render/types.js";
import { type UnitState, chooseServiceAction, describeState, hasStopped, isRunning, judgeSettled, parseSystemctlShow, unitLoadProblem } from "./systemd.js";

// `systemctl show -p …` output for a running keepalived (systemd 252, bookworm).
const SHOW_RUNNING = `LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0
MainPID=1234
ExecMainStartTimestampMonotonic=53950178
UnitFileState=enabled
`;

const state = (over: Partial<UnitState> = {}): UnitState => ({ ...parseSystemctlShow(SHOW_RUNNING), ...over });

describe("parseSystemctlShow", () => {
  it("reads every property the engine uses", () => {
    expect(parseSystemctlShow(SHOW_RUNNING)).toEqual({
      loadState: "loaded",
      activeState: "active",
      subState: "running",
      result: "success",
      nRestarts: 0,
      mainPid: 1234,
      startMonotonic: 53950178,
      unitFileState: "enabled",
    });
  });

  it("reads a unit that does not exist (systemd answers with defaults, not an error)", () => {
    const s = parseSystemctlShow("LoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\nNRestarts=0\nMainPID=0\nExecMainStartTimestampMonotonic=0\nUnitFileState=\n");
    expect(s).toMatchObject({ loadState: "not-found", activeState: "inactive", mainPid: 0, unitFileState: "" });
  });

  it("treats missing or odd numbers as 0", () => {
    expect(parseSystemctlShow("ActiveState=active\nNRestarts=[not set]\n")).toMatchObject({ nRestarts: 0, mainPid: 0, startMonotonic: 0 });
  });
});

describe("chooseServiceAction", () => {
  it.each<{ unit: ServiceUnit; activeState: string; want: string }>([
    { unit: "keepalived.service", activeState: "active", want: "reload" },
    { unit: "keepalived.service", activeState: "inactive", want: "start" },
    { unit: "keepalived.service", activeState: "failed", want: "start" },
    { unit: "isc-dhcp-server.service", activeState: "active", want: "restart" },
    { unit: "isc-dhcp-server.service", activeState: "inactive", want: "start" },
    { unit: "kea-dhcp4-server.service", activeState: "active", want: "restart" },
    { unit: "kea-ctrl-agent.service", activeState: "active", want: "restart" },
    { unit: "kea-ctrl-agent.service", activeState: "activating", want: "start" },
  ])("$unit when $activeState: $want", ({ unit, activeState, want }) => {
    expect(chooseServiceAction(unit, state({ activeState }))).toBe(want);
  });
});

describe("unitLoadProblem", () => {
  it.each([
    { loadState: "not-found", message: /keepalived\.service is not installed/ },
    { loadState: "masked", message: /keepalived\.service is masked; unmask it \(systemctl unmask keepalived\.service\)/ },
    { loadState: "bad-setting", message: /cannot be loaded by systemd \(LoadState=bad-setting\)/ },
  ])("$loadState", ({ loadState, message }) => {
    expect(unitLoadProblem("keepalived.service", state({ loadState }))).toMatch(message);
  });
  it("is silent for a loaded unit", () => {
    expect(unitLoadProblem("keepalived.service", state())).toBeUndefined();
  });
});

describe("judgeSettled", () => {
  const before = state({ mainPid: 100, startMonotonic: 1, nRestarts: 2 });
  const cases: { name: string; action: "reload" | "restart" | "start"; first: Partial<UnitState>; settled: Partial<UnitState>; message?: RegExp }[] = [
    { name: "a restart that stays up", action: "restart", first: { mainPid: 200, startMonotonic: 5, nRestarts: 0 }, settled: { mainPid: 200, startMonotonic: 5, nRestarts: 0 } },
    { name: "a reload that keeps its process", action: "reload", first: { mainPid: 100, startMonotonic: 1, nRestarts: 2 }, settled: { mainPid: 100, startMonotonic: 1, nRestarts: 2 } },
    {
      name: "a unit that failed while settling",
      action: "start",
      first: { mainPid: 200, nRestarts: 0 },
      settled: { activeState: "failed", subState: "failed", result: "exit-code", mainPid: 0, nRestarts: 0 },
      message: /kea-ctrl-agent\.service did not stay up: it is failed\/failed, result exit-code/,
    },
    {
      name: "a sysv unit whose daemon died (active/exited)",
      action: "restart",
      first: { mainPid: 0, nRestarts: 0 },
      settled: { subState: "exited", mainPid: 0, nRestarts: 0 },
      message: /did not stay up: it is active\/exited/,
    },
    {
      name: "a restart loop",
      action: "restart",
      first: { mainPid: 200, startMonotonic: 5, nRestarts: 0 },
      settled: { mainPid: 300, startMonotonic: 9, nRestarts: 2 },
      message: /is in a restart loop: systemd restarted it 2 time\(s\) since the restart/,
    },
    {
      // A manual start resets NRestarts, so a loop must be seen even when the count stays below the old one.
      name: "a restart loop after a start that reset a higher count",
      action: "start",
      first: { mainPid: 200, startMonotonic: 5, nRestarts: 1 },
      settled: { mainPid: 200, startMonotonic: 5, nRestarts: 1 },
      message: /is in a restart loop: systemd restarted it 1 time\(s\) since the start/,
    },
    {
      name: "a reload of a unit restarted before (old count kept)",
      action: "reload",
      first: { mainPid: 100, startMonotonic: 1, nRestarts: 3 },
      settled: { mainPid: 100, startMonotonic: 1, nRestarts: 3 },
      message: /restart loop: systemd restarted it 1 time/,
    },
    {
      name: "a restart while settling without Restart= counting",
      action: "restart",
      first: { mainPid: 200, startMonotonic: 5, nRestarts: 0 },
      settled: { mainPid: 201, startMonotonic: 7, nRestarts: 0 },
      message: /restarted while settling \(main PID 200 became 201\)/,
    },
    {
      name: "a reload whose process died and came back",
      action: "reload",
      first: { mainPid: 150, startMonotonic: 3, nRestarts: 2 },
      settled: { mainPid: 150, startMonotonic: 3, nRestarts: 2 },
      message: /was reloaded but its main process changed \(PID 100 became 150\)/,
    },
  ];
  it.each(cases)("$name", ({ action, first, settled, message }) => {
    const verdict = judgeSettled("kea-ctrl-agent.service", action, before, state(first), state(settled));
    if (message) expect(verdict).toEqual({ ok: false, message: expect.stringMatching(message) });
    else expect(verdict).toEqual({ ok: true });
  });
});

describe("state helpers", () => {
  it("isRunning needs active AND running", () => {
    expect(isRunning(state())).toBe(true);
    expect(isRunning(state({ subState: "exited" }))).toBe(false);
    expect(isRunning(state({ activeState: "activating", subState: "auto-restart" }))).toBe(false);
  });
  it("hasStopped is true for failed and inactive only", () => {
    expect(hasStopped(state({ activeState: "failed" }))).toBe(true);
    expect(hasStopped(state({ activeState: "inactive" }))).toBe(true);
    expect(hasStopped(state({ activeState: "activating" }))).toBe(false);
  });
  it("describeState shows the result only when it is not success", () => {
    expect(describeState(state())).toBe("active/running");
    expect(describeState(state({ activeState: "failed", subState: "failed", result: "start-limit-hit" }))).toBe("failed/failed, result start-limit-hit");
  });
});
