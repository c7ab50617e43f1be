// Prometheus metrics on the coordinator and the agent, scraped over HTTP.
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
