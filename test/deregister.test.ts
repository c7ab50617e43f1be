// Deregistering a decommissioned agent (real nats-server, coordinator and
// agents from dist/): refused while it is live, NOT_FOUND when unknown;
// once done the agent is not listed, not a target (not even SKIPPED as
// offline), its command consumer and its cordon are gone; started again, it
// registers again. Agents silent longer than agents.forgetAfterMs are
// deregistered by the coordinator, except cordoned ones.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../scripts/lib/tools.js";
import type { Agent__Output } from "../services/shared/src/gen/deploy/v1/Agent.js";
import type { ListAgentsResponse__Output } from "../services/shared/src/gen/deploy/v1/ListAgentsResponse.js";
import { grpcError, type DeployClient } from "./helpers/client.js";
import { runCli } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

describe("deregistering an agent", () => {
  let stack: Stack;
  let client: DeployClient;
  const agents = async (): Promise<Agent__Output[]> => (await client.call<ListAgentsResponse__Output>("ListAgents", {})).agents ?? [];
  const nats = (args: string[]): Promise<{ code: number; stdout: string }> =>
    new Promise((resolve) => execFile(toolPath("nats"), ["--server", stack.nats.url, ...args], (err, stdout) => resolve({ code: err ? 1 : 0, stdout })));

  beforeAll(async () => {
    stack = await Stack.start();
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("is refused for a live agent and an unknown one, changing nothing", async () => {
    const live = await grpcError(client.call("DeregisterAgent", { agentId: "a1" }));
    expect(live.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(live.details).toMatch(/^agent a1 is live \(last heartbeat \S+\): stop it first/);
    const unknown = await grpcError(client.call("DeregisterAgent", { agentId: "nobody" }));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    expect((await agents()).map((a) => a.id).sort()).toEqual(["a1", "a2", "a3"]);
  });

  it("forgets an agent that is not live: not listed, not a target, its consumer and cordon gone; it comes back when it starts again", async () => {
    await client.call("CordonAgent", { agentId: "a3", reason: "being decommissioned" });
    await stack.agent("a3").kill("SIGKILL");
    await until("a3 not live", async () => (await agents()).find((a) => a.id === "a3")?.live === false, 30_000);
    expect((await nats(["consumer", "info", "DEPLOY_COMMANDS", "agent-a3"])).code).toBe(0);

    const r = await runCli(["deregister", "a3"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DEPLOY_COORDINATOR: stack.address } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^deregistered a3: it is no longer listed, deployed to or converged/);
    await until("a3 unlisted", async () => !(await agents()).some((a) => a.id === "a3"));
    expect((await nats(["consumer", "info", "DEPLOY_COMMANDS", "agent-a3"])).code).not.toBe(0);
    expect(JSON.parse((await nats(["kv", "get", "--raw", "deploy_cordons", "a3"])).stdout)).toMatchObject({ cordoned: false });
    expect((await grpcError(client.call("DeregisterAgent", { agentId: "a3" }))).code).toBe(grpc.status.NOT_FOUND);

    // A deployment to every agent: a1 and a2 only, none SKIPPED as offline.
    const d = await client.create({ requestId: `all-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 3 } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect((done.targets ?? []).map((t) => t.agentId).sort()).toEqual(["a1", "a2"]);

    await stack.startAgent("a3");
    const back = await until("a3 registered again", async () => (await agents()).find((a) => a.id === "a3" && a.live));
    expect(back.cordon).toBeFalsy();
  });
});

describe("agents silent longer than agents.forgetAfterMs", () => {
  let stack: Stack;
  let client: DeployClient;
  const ids = async (): Promise<string[]> => ((await client.call<ListAgentsResponse__Output>("ListAgents", {})).agents ?? []).map((a) => a.id ?? "").sort();

  beforeAll(async () => {
    // Liveness 3 s (the stack's), forgotten after 4 s of silence.
    stack = await Stack.start({ coordinatorEnv: { DEPLOY_AGENT_FORGET_AFTER_MS: "4000" } });
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("are deregistered, except a cordoned one; live agents stay; one that starts again registers again", async () => {
    await client.call("CordonAgent", { agentId: "a3", reason: "long maintenance" });
    await stack.agent("a2").kill("SIGKILL");
    await stack.agent("a3").kill("SIGKILL");
    await until("a2 forgotten", async () => !(await ids()).includes("a2"), 30_000);
    // Checked once more after another 4 s of silence: the cordoned a3 is kept, the live a1 too.
    await new Promise((r) => setTimeout(r, 4000));
    expect(await ids()).toEqual(["a1", "a3"]);
    await stack.startAgent("a2");
    await until("a2 back", async () => (await ids()).includes("a2"));
  });
});

