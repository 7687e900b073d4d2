import { describe, expect, it } from "vitest";
import { HALT_STEPS, faultTestHaltHooks } from "./fault-test-halt.js";

describe("the DDI_HA_TEST_HALT_AFTER test seam", () => {
  it("does nothing when unset or empty", () => {
    expect(faultTestHaltHooks(undefined, () => undefined)).toBeUndefined();
    expect(faultTestHaltHooks("", () => undefined)).toBeUndefined();
  });

  it("refuses a step it does not know, naming the ones it does", () => {
    expect(() => faultTestHaltHooks("swap", () => undefined)).toThrow('DDI_HA_TEST_HALT_AFTER="swap": expected one of staged, backed-up, swapped, reloading');
  });

  it.each([
    ["staged", "afterStage"],
    ["backed-up", "afterBackup"],
    ["swapped", "afterSwap"],
    ["reloading", "afterReload"],
  ] as const)("%s sets only %s, which reports the halt and never settles", async (step, hook) => {
    const halted: string[] = [];
    const hooks = faultTestHaltHooks(step, (s) => halted.push(s))!;
    expect(Object.keys(hooks)).toEqual([hook]);
    const outcome = await Promise.race([hooks[hook]!().then(() => "settled"), new Promise((r) => setTimeout(() => r("still halted"), 50))]);
    expect(outcome).toBe("still halted");
    expect(halted).toEqual([step]);
  });

  it("covers every step", () => {
    expect(HALT_STEPS).toEqual(["staged", "backed-up", "swapped", "reloading"]);
  });
});
