// Cordoning agents (node eligibility) end to end, on a real nats-server,
// coordinator and agents from dist/: a cordoned agent is left out of
// deployments to every agent or to a selector (a dry run names it), refused
// when named as a target, and not converged until it is uncordoned, after
// which convergence brings it to the desired release. The cordon is stored
// (deploy_cordons: the nats CLI shows who and why) and survives a
// coordinator restart; deployctl cordon / uncordon / agents show it.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../scripts/lib/tools.js";
import type { Agent__Output } from "../services/shared/src/gen/deploy/v1/Agent.js";
import type { ListAgentsResponse__Output } from "../services/shared/src/gen/deploy/v1/ListAgentsResponse.js";
import { grpcError, type DeployClient, type DeploymentMsg } from "./helpers/client.js";
import { runCli, type CliResult } from "./helpers/deployctl.js";
import { freePort } from "./helpers/nats-server.js";
import { metricValue } from "./helpers/metrics.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;

const targetIds = (d: DeploymentMsg): string[] => (d.targets ?? []).map((t) => t.agentId ?? "").sort();

describe("cordoned agents take no new deployment", () => {
  let stack: Stack;
  let client: DeployClient;
  const cordon = (agentId: string, reason = ""): Promise<Agent__Output> => client.call("CordonAgent", { agentId, reason });
  const uncordon = (agentId: string): Promise<Agent__Output> => client.call("UncordonAgent", { agentId });
  const agent = async (id: string): Promise<Agent__Output | undefined> => (await client.call<ListAgentsResponse__Output>("ListAgents", {})).agents?.find((a) => a.id === id);
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DEPLOY_COORDINATOR: addr, DEPLOYCTL_RETRY_BUDGET_MS: "2000" } });
  let addr = "";
  const deploy = async (version: string, more: { targets?: string[]; selector?: string } = {}): Promise<DeploymentMsg> => {
    const d = await client.create({ requestId: rid(version), app: "web", environment: "prod", changeset: { version }, strategy: { maxConcurrency: 3 }, targets: more.targets ?? [], selector: more.selector ?? "" });
    return client.waitTerminal(d.id!);
  };

  let metricsPort = 0;
  const gauge = (name: string): Promise<number | undefined> => metricValue(metricsPort, name);

  beforeAll(async () => {
    metricsPort = await freePort();
    stack = await Stack.start({ coordinatorEnv: { DEPLOY_METRICS_LISTEN: `127.0.0.1:${metricsPort}` } });
    addr = stack.address;
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("CordonAgent records who and why; ListAgents shows it; asking again writes nothing new", async () => {
    const a = await cordon("a2", "disk swap, OPS-1");
    expect(a.id).toBe("a2");
    expect(a.cordon).toMatchObject({ reason: "disk swap, OPS-1", cordonedBy: "anonymous (development mode)" });
    expect(Number(a.cordon?.cordonedAt?.seconds)).toBeGreaterThan(0);
    expect((await agent("a2"))?.cordon?.reason).toBe("disk swap, OPS-1");
    expect((await agent("a1"))?.cordon).toBeFalsy();
    expect(await gauge("deploy_agents_cordoned")).toBe(1);
    // The same request again (a retry): the record it shows is the first one.
    const again = await cordon("a2", "disk swap, OPS-1");
    expect(again.cordon).toEqual(a.cordon);
  });

  it("refuses an agent that is not registered (NOT_FOUND) and a bad id or reason (INVALID_ARGUMENT), writing nothing", async () => {
    const nf = await grpcError(cordon("nobody-here"));
    expect(nf.code).toBe(grpc.status.NOT_FOUND);
    expect(nf.details).toBe("agent nobody-here is not registered");
    expect((await grpcError(uncordon("nobody-here"))).code).toBe(grpc.status.NOT_FOUND);
    const empty = await grpcError(cordon(""));
    expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(empty.details).toMatch(/^agent_id: /);
    expect((await grpcError(cordon("coordinator"))).code).toBe(grpc.status.INVALID_ARGUMENT);
    const long = await grpcError(cordon("a1", "x".repeat(2000)));
    expect(long.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(long.details).toMatch(/^reason: /);
    expect((await agent("a1"))?.cordon).toBeFalsy();
  });

  let v1 = "";

  it("a deployment to every agent, or to a selector, leaves the cordoned agent out; a dry run names it", async () => {
    const dry = await client.create({ requestId: rid("dry"), app: "web", environment: "prod", changeset: { version: "v1" }, validateOnly: true });
    expect(targetIds(dry)).toEqual(["a1", "a3"]);
    expect(dry.message).toContain("1 cordoned agent(s) left out: a2");
    const bySelector = await client.create({ requestId: rid("dry-sel"), app: "web", environment: "prod", changeset: { version: "v1" }, selector: "!role", validateOnly: true });
    expect(targetIds(bySelector)).toEqual(["a1", "a3"]);
    const cli1 = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v1", "--dry-run"]);
    expect(cli1.code, cli1.stderr).toBe(0);
    expect(cli1.stdout).toMatch(/^1 cordoned agent\(s\) left out: a2$/m);
    expect(cli1.stdout).not.toMatch(/^ {2}a2\b/m);

    const d = await deploy("v1");
    expect(d.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(targetIds(d)).toEqual(["a1", "a3"]);
    v1 = d.id!;
    expect(await stack.startsOf("a2", v1)).toBe(0);
    // The deployment records whom it left out (the audit: why a2 did not get v1).
    expect(d.cordonedLeftOut).toEqual(["a2"]);
    expect(d.cordonedLeftOutCount).toBe(1);
    const shown = await cli(["get", v1]);
    expect(shown.stdout).toMatch(/^ {2}left out, cordoned at creation: a2$/m);
    // a2 stays behind: ListAgents says so.
    const a2 = await agent("a2");
    expect(a2?.releases?.find((r) => r.app === "web")?.status).toBe("RELEASE_STATUS_OUTDATED");
  });

  it("a deployment naming a cordoned agent is refused (FAILED_PRECONDITION naming the cordon) and creates nothing", async () => {
    const requestId = rid("named");
    const err = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v2" }, targets: ["a1", "a2"] }));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/^1 target\(s\) cordoned \(they take no new deployment\): a2 \(cordoned by anonymous \(development mode\) at \S+: disk swap, OPS-1\); uncordon them/);
    const { deployments } = await client.list({ pageSize: 200 });
    expect(deployments.some((x) => x.requestId === requestId)).toBe(false);
    // A selector, or every agent, when all it matches are cordoned: refused, naming them.
    await cordon("a1", "second");
    await cordon("a3", "third");
    try {
      const sel = await grpcError(client.create({ requestId: rid("sel"), app: "web", environment: "prod", changeset: { version: "v2" }, selector: "!role" }));
      expect(sel.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(sel.details).toMatch(/^selector "!role" matches 3 agent\(s\) of app web in environment prod, all cordoned: a1 \(cordoned by .*: second\), a2 .*, a3 /);
      const all = await grpcError(client.create({ requestId: rid("all"), app: "web", environment: "prod", changeset: { version: "v2" } }));
      expect(all.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(all.details).toMatch(/^no live agent that is not cordoned \(cordoned: a1 .*\) serves app web in environment prod$/);
    } finally {
      await uncordon("a1");
      await uncordon("a3");
    }
  });

  it("convergence leaves a cordoned agent alone, even when it registers again, and brings it to the desired release once uncordoned", async () => {
    // A restart writes a2's entry again, which convergence looks at.
    await stack.agent("a2").kill("SIGTERM");
    await stack.startAgent("a2");
    // No later event could tell that a convergence was not made (a deployment
    // to a1 would replace the desired release): a convergence follows a
    // registration within a sweep (250 ms here), so 3 s without one is 12.
    await new Promise((r) => setTimeout(r, 3000));
    const before = (await client.list({ pageSize: 200 })).deployments.filter((d) => d.convergesTo);
    expect(before).toEqual([]);

    const a = await uncordon("a2");
    expect(a.cordon).toBeFalsy();
    const converged = await until(
      "a convergence of a2",
      async () => {
        const c = (await client.list({ pageSize: 200 })).deployments.find((d) => d.convergesTo && d.targets?.[0]?.agentId === "a2");
        return c && c.state === "DEPLOYMENT_STATE_SUCCEEDED" ? c : undefined;
      },
      60_000,
    );
    expect(converged.convergesTo).toBe(v1);
    expect(await stack.startsOf("a2", converged.id!)).toBe(1);
    // Uncordoning again changes nothing.
    expect((await uncordon("a2")).cordon).toBeFalsy();
  });

  it("an agent uncordoned without registering again is converged too (its entry predates the desired release: it is asked to write it again)", async () => {
    await cordon("a3", "for the next release");
    const v2 = await deploy("v2");
    expect(v2.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(targetIds(v2)).toEqual(["a1", "a2"]);
    await uncordon("a3");
    const converged = await until(
      "a convergence of a3",
      async () => {
        const c = (await client.list({ pageSize: 200 })).deployments.find((d) => d.convergesTo === v2.id && d.targets?.[0]?.agentId === "a3");
        return c && c.state === "DEPLOYMENT_STATE_SUCCEEDED" ? c : undefined;
      },
      60_000,
    );
    expect(await stack.startsOf("a3", converged.id!)).toBe(1);
  });

  it("the cordon is stored: the nats CLI shows it, and a restarted coordinator keeps it", async () => {
    await cordon("a3", "kernel upgrade");
    const kv = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(toolPath("nats"), ["--server", stack.nats.url, "kv", "get", "--raw", "deploy_cordons", "a3"], (err, stdout) => resolve({ code: err ? 1 : 0, stdout })),
    );
    expect(kv.code).toBe(0);
    expect(JSON.parse(kv.stdout)).toMatchObject({ schema: "deploy.cordon.v1", agentId: "a3", cordoned: true, reason: "kernel upgrade", by: { name: "anonymous (development mode)", via: "none" } });

    await stack.coordinators[0]!.kill("SIGKILL");
    // Without metrics: its log would name that port first.
    const second = await stack.startCoordinator({ DEPLOY_METRICS_LISTEN: "" });
    addr = stack.coordinatorAddress(second);
    client = stack.client(addr);
    expect((await agent("a3"))?.cordon?.reason).toBe("kernel upgrade");
    const err = await grpcError(client.create({ requestId: rid("after-restart"), app: "web", environment: "prod", changeset: { version: "v3" }, targets: ["a3"] }));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toContain("kernel upgrade");
    await uncordon("a3");
  });

  it("deployctl cordon, agents and uncordon", async () => {
    const c = await cli(["cordon", "a1", "--reason", "maintenance window"]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^a1 is cordoned by anonymous \(development mode\) at \S+: maintenance window: new deployments leave it out/);
    const list = await cli(["agents", "--env", "prod"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^a1\s.*yes \(cordoned\)/m);
    expect(list.stdout).toContain("a1 is cordoned by anonymous (development mode) at ");
    expect(list.stdout).toContain(": maintenance window; deployctl uncordon a1 to deploy to it again");
    const json = await cli(["agents", "--env", "prod", "--json"]);
    const a1 = (JSON.parse(json.stdout) as { agents: { id: string; cordon?: { reason: string; cordonedBy: string; cordonedAt: string } }[] }).agents.find((a) => a.id === "a1");
    expect(a1?.cordon).toMatchObject({ reason: "maintenance window", cordonedBy: "anonymous (development mode)" });
    expect(a1?.cordon?.cordonedAt).toMatch(/Z$/);
    const nf = await cli(["cordon", "nope"]);
    expect(nf.code).toBe(2);
    expect(nf.stderr.trim().split("\n")).toHaveLength(1);
    expect(nf.stderr).toContain("agent nope is not registered");
    // Every agent a selector matches (none of these have labels: !role matches all), and the usage errors.
    const sel = await cli(["cordon", "--selector", "!role", "--env", "prod", "--reason", "zone maintenance"]);
    expect(sel.code, sel.stderr).toBe(0);
    for (const id of ["a1", "a2", "a3"]) expect(sel.stdout).toMatch(new RegExp(`^cordoned ${id} \\(cordoned by .*: zone maintenance\\)$`, "m"));
    const unsel = await cli(["uncordon", "--selector", "!role", "--env", "prod", "--json"]);
    expect(unsel.code, unsel.stderr).toBe(0);
    expect((JSON.parse(unsel.stdout) as { agents: { id: string; cordon?: unknown }[] }).agents.map((a) => [a.id, a.cordon])).toEqual([
      ["a1", undefined],
      ["a2", undefined],
      ["a3", undefined],
    ]);
    const both = await cli(["cordon", "a1", "--selector", "!role"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("name one agent, or give --selector (not both)");
    const none = await cli(["cordon", "--selector", "role=db", "--env", "prod"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`selector "role=db" matches none of the 3 registered agent(s) of environment prod`);
    expect((await agent("a2"))?.cordon).toBeFalsy();
    // The uncordon by selector lifted a1's cordon too: cordon it again for the last step.
    await cordon("a1", "maintenance window");
    const u = await cli(["uncordon", "a1", "--json"]);
    expect(u.code, u.stderr).toBe(0);
    const after = JSON.parse(u.stdout) as { id: string; cordon?: unknown };
    expect(after.id).toBe("a1");
    expect(after.cordon).toBeUndefined();
  });
});
