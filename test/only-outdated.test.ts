// strategy.only_outdated (CodeDeploy's updateOutdatedInstancesOnly) end to
// end, on a real nats-server, coordinator and agents from dist/: a retry
// after a partial failure deploys only to the agents that do not run the
// changeset yet; the others are targets recorded SKIPPED ("already on
// <release>"), count as done (the deployment SUCCEEDS and becomes the
// desired release, every agent CURRENT against it) and run nothing. With
// nothing outdated the deployment succeeds at once. The flag is part of the
// request body, and deployctl's --only-outdated and --dry-run show it.
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ListAgentsResponse__Output } from "../services/shared/src/gen/deploy/v1/ListAgentsResponse.js";
import { grpcError, type DeployClient, type DeploymentMsg } from "./helpers/client.js";
import { runCli, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;

/** agent id → "STATE message" of each target. */
const byTarget = (d: DeploymentMsg): Record<string, string> =>
  Object.fromEntries((d.targets ?? []).map((t) => [t.agentId ?? "", `${(t.state ?? "").replace("TARGET_STATE_", "")} ${t.message ?? ""}`.trim()]));

describe("only_outdated: deploy only to the agents not on the changeset yet", () => {
  let stack: Stack;
  let client: DeployClient;
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DEPLOY_COORDINATOR: stack.address, DEPLOYCTL_RETRY_BUDGET_MS: "2000" } });
  const deploy = async (version: string, strategy: Record<string, unknown> = {}, requestId = rid(version)): Promise<DeploymentMsg> => {
    const d = await client.create({ requestId, app: "web", environment: "prod", changeset: { version }, strategy: { ...("maxConcurrencyPercent" in strategy ? {} : { maxConcurrency: 3 }), ...strategy } });
    return client.waitTerminal(d.id!);
  };
  /** Every agent's release status for web in prod, and the desired deployment. */
  const statuses = async (): Promise<Record<string, string>> => {
    const { agents } = await client.call<ListAgentsResponse__Output>("ListAgents", { app: "web", environment: "prod" });
    return Object.fromEntries((agents ?? []).map((a) => [a.id ?? "", `${a.releases?.[0]?.status ?? ""} ${a.releases?.[0]?.desired?.deploymentId ?? ""}`]));
  };

  beforeAll(async () => {
    stack = await Stack.start();
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  let v2Failed: DeploymentMsg;
  it("a retry after a partial failure deploys to the failed agent only; the others are SKIPPED as already on it, and it SUCCEEDS", async () => {
    expect((await deploy("v1")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await stack.control("a2", "fail");
    v2Failed = await deploy("v2", { maxFailures: 3 });
    expect(v2Failed.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(byTarget(v2Failed)).toMatchObject({ a1: "SUCCEEDED exit code 0", a3: "SUCCEEDED exit code 0" });
    await stack.control("a2", "fail", false);

    const retry = await deploy("v2", { onlyOutdated: true });
    const release = `v2-${v2Failed.id!.slice(-8)}`;
    expect(retry.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(retry.message).toBe("1 of 3 target(s) succeeded, 2 already on v2");
    expect(byTarget(retry)).toEqual({ a1: `SKIPPED already on ${release}`, a2: "SUCCEEDED exit code 0", a3: `SKIPPED already on ${release}` });
    expect(retry.strategy?.onlyOutdated).toBe(true);
    // Nothing ran on the agents already on v2.
    expect(await stack.startsOf("a1", retry.id!)).toBe(0);
    expect(await stack.startsOf("a3", retry.id!)).toBe(0);
    expect(await stack.startsOf("a2", retry.id!)).toBe(1);
    // It is the desired release, and every agent is on it (same version, same artifact: none).
    expect(await statuses()).toEqual({ a1: `RELEASE_STATUS_CURRENT ${retry.id}`, a2: `RELEASE_STATUS_CURRENT ${retry.id}`, a3: `RELEASE_STATUS_CURRENT ${retry.id}` });
  });

  it("with nothing outdated it SUCCEEDS at once, running nothing (a canary wave asked for has nothing to wait for)", async () => {
    const again = await deploy("v2", { onlyOutdated: true, canary: 2 });
    expect(again.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(again.message).toBe("0 of 3 target(s) succeeded, 3 already on v2");
    expect(Object.values(byTarget(again)).every((t) => t.startsWith("SKIPPED already on v2-"))).toBe(true);
    expect(again.strategy?.canary ?? 0).toBe(0);
    for (const a of ["a1", "a2", "a3"]) expect(await stack.startsOf(a, again.id!)).toBe(0);
  });

  it("another version is outdated everywhere: every agent is deployed to; percentages and a canary count resolve against the outdated targets", async () => {
    const v3 = await deploy("v3", { onlyOutdated: true, maxConcurrencyPercent: "50%" });
    expect(v3.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(v3.message).toBe("3 of 3 target(s) succeeded");
    expect(v3.strategy?.maxConcurrency).toBe(2);
    // a1 only is outdated now: a canary of 2 is that one target, not a refusal.
    await stack.control("a1", "fail");
    const v4 = await deploy("v4", { maxFailures: 3 });
    expect(byTarget(v4)["a1"]).toMatch(/^FAILED/);
    await stack.control("a1", "fail", false);
    const retry = await deploy("v4", { onlyOutdated: true, canary: 2, maxConcurrencyPercent: "100%" });
    expect(retry.strategy).toMatchObject({ canary: 1, maxConcurrency: 1 });
    expect(retry.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(byTarget(retry)["a1"]).toBe("SUCCEEDED exit code 0");
  });

  it("is part of the request body: the same request_id without it is ALREADY_EXISTS", async () => {
    const requestId = rid("body");
    await deploy("v4", { onlyOutdated: true }, requestId);
    const err = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v4" }, strategy: { maxConcurrency: 3 } }));
    expect(err.code).toBe(grpc.status.ALREADY_EXISTS);
  });

  it("deployctl --only-outdated: the dry run names who would be skipped, the deploy exits 0 and shows it", async () => {
    const dry = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v4", "--only-outdated", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("3 target(s) (3 already on v4: would be SKIPPED)");
    expect(dry.stdout).toMatch(/a1 {2}SKIPPED: already on v4-/);
    const run = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v4", "--only-outdated"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("only_outdated");
    expect(run.stdout).toContain("0 of 3 target(s) succeeded, 3 already on v4");
  });
});
