import { execFileSync } from "node:child_process";
import { delimiter } from "node:path";
import { defineConfig } from "vitest/config";

// The pinned nats-server, nats CLI, grpcurl and grpc-health-probe
// (scripts/tools.sh builds them once into a cache outside the repo): first on
// PATH for every test and every process a test starts.
const toolsBin = execFileSync("bash", ["scripts/tools.sh", "--path"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each test file starts its own nats-server and real processes; on a
    // 2-core machine two files at a time keeps timings far from the limits.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ["default"],
    env: {
      DEPLOY_TOOLS_BIN: toolsBin,
      // Kept target counts checked against a count at every use (services/shared/src/fold.ts).
      DEPLOY_VERIFY_COUNTS: "1",
      PATH: [toolsBin, process.env["PATH"] ?? ""].join(delimiter),
    },
  },
});
