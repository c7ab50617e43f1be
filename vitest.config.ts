import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each test file starts its own nats-server and real processes; on a
    // 2-core machine two files at a time keeps timings far from the limits.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
