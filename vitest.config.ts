import { defineConfig } from "vitest/config";

// Two projects: `unit` is pure (no I/O but local daemon checkers), `integration` runs against a
// real kube-apiserver and real host containers, one file at a time (2-core machines).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          setupFiles: ["test/harness/log-on-failure.ts"],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
