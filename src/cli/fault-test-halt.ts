// A test seam for crash tests: `DDI_HA_TEST_HALT_AFTER=<step>` makes `ddi-ha controller` stop
// every apply that reaches that step of the safe-apply protocol, for good, so that a test can
// SIGKILL the process at exactly that point (test/integration/crash-safe-apply.test.ts). Unset,
// it does nothing. See docs/adr/0025-crash-safe-applies-across-processes.md.
import type { ApplyHooks } from "../apply/index.js";

export const HALT_ENV = "DDI_HA_TEST_HALT_AFTER";

const HOOK_OF_STEP = {
  staged: "afterStage",
  "backed-up": "afterBackup",
  swapped: "afterSwap",
  reloading: "afterReload",
} as const satisfies Record<string, keyof ApplyHooks>;

export type HaltStep = keyof typeof HOOK_OF_STEP;
export const HALT_STEPS = Object.keys(HOOK_OF_STEP) as HaltStep[];

/**
 * The hooks for `value` (the environment variable), or undefined when it is unset or empty.
 * Throws on any other value: a crash test that silently did not halt would prove nothing.
 */
export function faultTestHaltHooks(value: string | undefined, onHalt: (step: HaltStep) => void): ApplyHooks | undefined {
  if (value === undefined || value === "") return undefined;
  if (!(value in HOOK_OF_STEP)) throw new Error(`${HALT_ENV}=${JSON.stringify(value)}: expected one of ${HALT_STEPS.join(", ")}`);
  const step = value as HaltStep;
  return {
    [HOOK_OF_STEP[step]]: () => {
      onHalt(step);
      // Never settles: the apply stays exactly here until the process is killed.
      return new Promise<void>(() => undefined);
    },
  };
}
