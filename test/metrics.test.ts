// Prometheus metrics on the coordinator and the agent, scraped over HTTP.
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./helpers/nats-server.js";
import { Stack } from "./helpers/stack.js";

describe("metrics", () => {
  let stack: Stack;
  let coordPort: number;
  let agentPort: number;
  beforeAll(async () => {
    coordPort = await freePort();
    agentPort = await freePort();
    stack = await Stack.start({ agents: [], coordinatorEnv: { DEPLOY_METRICS_LISTEN: `127.0.0.1:${coordPort}` } });
    await stack.startAgent("m1", { env: { DEPLOY_AGENT_METRICS_LISTEN: `127.0.0.1:${agentPort}` } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("count deployments, targets, calls, commands and applies", async () => {
    const client = stack.client();
    const d = await client.create({ requestId: "metrics-1", app: "web", environment: "prod", changeset: { version: "v1" } });
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const scrape = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // the reconcile that folds the last event may still be running: poll
    let coord = await scrape(coordPort);
    for (let i = 0; i < 50 && !/deploy_deployments_finished_total\{state="SUCCEEDED"\} 1/.test(coord); i++) {
      await new Promise((r) => setTimeout(r, 100));
      coord = await scrape(coordPort);
    }
    expect(coord).toMatch(/deploy_deployments_finished_total\{state="SUCCEEDED"\} 1/);
    expect(coord).toMatch(/deploy_targets_finished_total\{state="SUCCEEDED"\} 1/);
    expect(coord).toMatch(/deploy_grpc_calls_total\{method="CreateDeployment",code="0"\} 1/);
    expect(coord).toMatch(/deploy_commands_published_total\{outcome="published"\} 1/);
    expect(coord).toMatch(/deploy_target_duration_seconds_count\{state="SUCCEEDED"\} 1/);
    const agent = await scrape(agentPort);
    expect(agent).toMatch(/deploy_agent_applies_total\{outcome="SUCCEEDED"\} 1/);
    expect(agent).toMatch(/deploy_agent_heartbeat_age_seconds \d/);
    expect((await fetch(`http://127.0.0.1:${agentPort}/other`)).status).toBe(404);
  });
});

describe("a running deployment's reconciles", () => {
  // Sweeps and deferred projection writes used to read every event since
  // the fold back from the stream, though the wake consumer had delivered
  // them all to this coordinator (fan-out 1,000: 0.1 gets a target).
  it("fold the events delivered to a sole coordinator and read none back from the stream", { timeout: 60_000 }, async () => {
    const port = await freePort();
    // Sweeps every 250 ms (the stack's), each catching up to the last event now.
    const stack = await Stack.start({ agents: [], coordinatorEnv: { DEPLOY_METRICS_LISTEN: `127.0.0.1:${port}` } });
    try {
      const script = join(stack.dir, "slow.sh");
      // Long enough for deferred projection writes and several sweeps while it runs.
      await writeFile(script, "#!/bin/sh\nsleep 1.5\n");
      await chmod(script, 0o755);
      await stack.startAgent("s1", { apps: { web: { deploy: script } }, environment: "slow" });
      await stack.startAgent("s2", { apps: { web: { deploy: script } }, environment: "slow" });
      const client = stack.client();
      const catchUps = async (): Promise<{ stream: number; deliveries: number }> => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const of = (from: string): number => Number(new RegExp(`^deploy_catchups_total\\{from="${from}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
        return { stream: of("stream"), deliveries: of("deliveries") };
      };
      // The first deployment makes the coordinator's deliveries its own for
      // longer than the 2 s after which it waits for them (deploymentStates.ts).
      const first = await client.create({ requestId: "catchup-1", app: "web", environment: "slow", changeset: { version: "v1" } });
      expect((await client.waitTerminal(first.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      await new Promise((r) => setTimeout(r, 2500));
      const before = await catchUps();
      const d = await client.create({ requestId: "catchup-2", app: "web", environment: "slow", changeset: { version: "v2" } });
      expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      const after = await catchUps();
      expect(after.deliveries).toBeGreaterThan(before.deliveries);
      // Before: every sweep and deferred projection write read the stream
      // (8 times in this test). Now none, but a delivery later than 50 ms
      // (a loaded machine) may still cost a read.
      expect(after.stream - before.stream).toBeLessThanOrEqual(2);
    } finally {
      await stack.stop();
    }
  });
});
