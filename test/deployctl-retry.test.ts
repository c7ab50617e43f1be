// deployctl through a short NATS outage behind the coordinator: the built CLI
// retries the create with the same request id until the coordinator can
// record it, within DEPLOYCTL_RETRY_BUDGET_MS, and one deployment results.
// A real nats-server (killed, then restarted on its port and store), a
// coordinator and an agent.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Stack } from "./helpers/stack.js";

const CLI = resolve(import.meta.dirname, "../dist/services/deployctl/src/main.js");

const stacks: Stack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((res) => child.once("close", (code) => res({ code, stdout, stderr })));
}

describe("deployctl retries", () => {
  it("a deploy sent while NATS is down behind the coordinator is retried with its request id and SUCCEEDS once NATS is back", { timeout: 90_000 }, async () => {
    const stack = await Stack.start({ agents: ["a1"] });
    stacks.push(stack);
    await stack.nats.kill();
    const requestId = `retry-${Date.now()}`;
    const deploy = cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v-outage", "--request-id", requestId], {
      DEPLOY_COORDINATOR: `127.0.0.1:${stack.grpcPort}`,
      DEPLOYCTL_RETRY_BUDGET_MS: "40000",
      DEPLOYCTL_CALL_TIMEOUT_MS: "15000",
    });
    await new Promise((r) => setTimeout(r, 3000));
    await stack.nats.restart();
    const r = await deploy;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/SUCCEEDED/);
    const list = await cli(["list", "--json"], { DEPLOY_COORDINATOR: `127.0.0.1:${stack.grpcPort}` });
    expect(list.code, list.stderr).toBe(0);
    const versions = (JSON.parse(list.stdout) as { deployments: { changeset?: { version?: string }; version?: string }[] }).deployments;
    expect(versions).toHaveLength(1);
  });
});
