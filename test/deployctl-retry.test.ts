// deployctl through a short NATS outage behind the coordinator: the built CLI
// retries the create with the same request id until the coordinator can
// record it, within DEPLOYCTL_RETRY_BUDGET_MS, and one deployment results.
// A real nats-server (killed, then restarted on its port and store), a
// coordinator and an agent.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { status, type ServiceError } from "@grpc/grpc-js";
import { isRetryable } from "../services/deployctl/src/errors.js";
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

describe("CreateDeployment through a short NATS outage", () => {
  // Any gRPC client, with one call and no retry of its own: the coordinator
  // gives a create whose first round trips timed out in the outage another
  // FOLLOW_MS once they failed, instead of answering ABORTED at once.
  it("one call sent while NATS is down behind the coordinator is answered with the deployment once NATS is back", { timeout: 90_000 }, async () => {
    const stack = await Stack.start({ agents: ["a1"] });
    stacks.push(stack);
    await stack.nats.kill();
    const client = stack.client();
    const created = client.create({ requestId: `outage-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v-outage" } }, 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    await stack.nats.restart();
    const d = await created.catch((err: ServiceError) => {
      throw new Error(`CreateDeployment failed: ${err.code} ${err.details}`);
    });
    expect((await client.waitTerminal(d.id!, 60_000)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });
});

describe("deployctl's retryable codes", () => {
  // The coordinator's ABORTED says "retry" (concurrent writers, or NATS
  // unreachable for longer than its follow): with the request id, it is safe.
  it("UNAVAILABLE, DEADLINE_EXCEEDED and ABORTED are retried; a refusal is not", () => {
    const err = (code: status): ServiceError => Object.assign(new Error("x"), { code, details: "x", metadata: undefined as never });
    for (const c of [status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.ABORTED]) expect(isRetryable(err(c)), status[c]).toBe(true);
    for (const c of [status.INVALID_ARGUMENT, status.ALREADY_EXISTS, status.FAILED_PRECONDITION, status.NOT_FOUND]) expect(isRetryable(err(c)), status[c]).toBe(false);
  });
});
