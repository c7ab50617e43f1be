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

    // Targets finishing one per pass (one at a time): each counted once, as the fold lists them.
    await stack.startAgent("m2");
    await stack.startAgent("m3");
    // The pair's lock is given back just after the first one's finish: asked again until then.
    let d2;
    for (let i = 0; !d2; i++) {
      d2 = await client.create({ requestId: "metrics-2", app: "web", environment: "prod", changeset: { version: "v2" }, strategy: { maxConcurrency: 1 } }).catch((err: unknown) => {
        if (i > 50 || !/is still RUNNING/.test(String(err))) throw err;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 100));
      });
    }
    expect((await client.waitTerminal(d2.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // m2 and m3 may converge to v1 (their own deployments): every finished deployment's targets count, once all are finished.
    let all: Awaited<ReturnType<typeof client.list>>["deployments"] = [];
    let targets = 0;
    for (let i = 0; i < 100; i++) {
      all = (await client.list({ pageSize: 50 })).deployments;
      targets = all.reduce((n, x) => n + (x.targets?.length ?? 0), 0);
      coord = await scrape(coordPort);
      if (all.every((x) => x.state === "DEPLOYMENT_STATE_SUCCEEDED") && new RegExp(`deploy_deployments_finished_total\\{state="SUCCEEDED"\\} ${all.length}\n`).test(coord)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(coord).toMatch(new RegExp(`deploy_targets_finished_total\\{state="SUCCEEDED"\\} ${targets}\n`));
    expect(coord).toMatch(new RegExp(`deploy_target_duration_seconds_count\\{state="SUCCEEDED"\\} ${targets}\n`));
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
