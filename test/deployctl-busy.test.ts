// Another deployment of the app and environment is active: the coordinator
// refuses a create with FAILED_PRECONDITION naming it in the trailer
// `active-deployment-id` (and the HTTP body's activeDeploymentId), and
// deployctl deploy / rollback say how to wait, wait with --wait-active, or
// replace it with --cancel-active. The BUILT CLI against a real stack
// (nats-server, a coordinator, three agents). A deployment waiting for its
// promote holds the pair for as long as the test wants.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newDeploymentId } from "../services/coordinator/src/createDeployment.js";
import { activeKey, DEPLOYMENTS_BUCKET, encode } from "../services/shared/src/index.js";
import type { DeployClient } from "./helpers/client.js";
import { CLI, deploymentIdOf, runCli, shown, shQuote, startShell, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";


describe("deploy while another deployment of the pair is active", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;

  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });
  const deployArgs = (version: string, ...flags: string[]): string[] => ["deploy", "--executable", "--app", "web", "--env", "prod", "--version", version, "--max-concurrency", "3", ...flags];
  /** A deployment of web to prod waiting for its promote after a canary of one: it holds the pair. */
  const holder = async (version: string): Promise<string> => {
    const r = await cli(deployArgs(version, "--canary", "1", "--detach"));
    expect(r.code, shown(r)).toBe(0);
    const id = deploymentIdOf(r);
    await until("awaiting promotion", async () => ((await client.get(id)).awaitingPromotion ? true : undefined));
    return id;
  };
  const versionsOf = async (): Promise<string[]> => (await client.list({ app: "web", environment: "prod" })).deployments.map((d) => d.changeset?.version ?? "");

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "deployctl-busy-"));
    const script = join(work, "deploy.sh");
    await writeFile(script, '#!/usr/bin/env bash\necho "applying $DEPLOY_VERSION on $DEPLOY_AGENT_ID"\n');
    await chmod(script, 0o755);
    stack = await Stack.start({ agents: [] });
    for (const id of ["a1", "a2", "a3"]) await stack.startAgent(id, { apps: { web: { deploy: script } } });
    client = stack.client();
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("the refusal names the active deployment (the gRPC trailer); deployctl says how to wait, and --wait-active gives up with nothing created", async () => {
    const active = await holder("v1");

    const err = (await client.create({ requestId: "busy-raw", app: "web", environment: "prod", changeset: { version: "v2" } }).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toBe(`deployment ${active} is still RUNNING for app web in environment prod`);
    expect(err.metadata.get("active-deployment-id")).toEqual([active]);

    const refused = await cli(deployArgs("v2"));
    expect(refused.code, shown(refused)).toBe(2);
    expect(refused.stderr).toContain(
      `deployctl: FAILED_PRECONDITION: deployment ${active} is still RUNNING for app web in environment prod; wait for it with --wait-active <duration> (e.g. --wait-active 30m), or replace it with --cancel-active (--kill-active also kills its applies running now)`,
    );

    const gaveUp = await cli(deployArgs("v2", "--wait-active", "2s"));
    expect(gaveUp.code, shown(gaveUp)).toBe(2);
    expect(gaveUp.stdout).toContain(`deployment ${active} is active for this app and environment; waiting for it to end (up to 2s more; follow it with deployctl watch ${active})`);
    expect(gaveUp.stderr).toContain(`is still RUNNING for app web in environment prod; still active after waiting 2s (--wait-active): nothing was created`);
    expect(await versionsOf()).toEqual(["v1"]);

    const dry = await cli(deployArgs("v2", "--dry-run", "--wait-active", "1m"));
    expect(dry.code, shown(dry)).toBe(2);
    expect(dry.stderr).toContain("--dry-run creates nothing: --wait-active, --cancel-active and --kill-active do not apply to it");

    await client.promote(active);
    await until("v1 done", async () => ((await client.get(active)).state === "DEPLOYMENT_STATE_SUCCEEDED" ? true : undefined));
  });

  it("--wait-active waits for the active deployment to end, then creates and follows its own", async () => {
    const active = await holder("v3");
    const waiting = startShell(`node ${shQuote(CLI)} ${deployArgs("v4", "--wait-active", "5m").map(shQuote).join(" ")}`, env);
    await waiting.waitFor(new RegExp(`deployment ${active} is active for this app and environment; waiting for it to end`));
    // Still waiting: nothing of v4 exists while v3 holds the pair.
    expect(await versionsOf()).not.toContain("v4");

    await client.promote(active);
    const done = await waiting.done;
    expect(done.code, shown(done)).toBe(0);
    expect(done.stdout).toContain(`deployment ${active} ended; sending the request again`);
    expect(done.stdout).toMatch(/SUCCEEDED: 3 of 3 target\(s\) succeeded/);
    expect((await client.get(active)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const versions = await versionsOf();
    expect(versions.filter((v) => v === "v4")).toHaveLength(1);
  });

  it("--cancel-active cancels the active deployment with a reason naming the request, waits for it, and deploys", async () => {
    const active = await holder("v5");
    // RollbackRelease is refused the same way (v1 and v4 are releases to go back to by now).
    const rollback = await cli(["rollback", "web", "prod"]);
    expect(rollback.code, shown(rollback)).toBe(2);
    expect(rollback.stderr).toContain(`FAILED_PRECONDITION: deployment ${active} is still RUNNING for app web in environment prod; wait for it with --wait-active`);

    const replaced = await cli(deployArgs("v6", "--cancel-active", "--request-id", "replace-v5"));
    expect(replaced.code, shown(replaced)).toBe(0);
    // Nothing was in flight (a canary waiting for its promote): it ends at once.
    expect(replaced.stdout).toContain(`cancelled deployment ${active} (--cancel-active): now CANCELLED`);
    expect(replaced.stdout).not.toContain("waiting for it to end");
    expect(replaced.stdout).toMatch(/SUCCEEDED: 3 of 3 target\(s\) succeeded/);
    const cancelled = await client.get(active);
    expect(cancelled.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(cancelled.message).toContain("replaced by deployctl deploy of web v6 to prod (request replace-v5) (deployctl --cancel-active)");

    // The same command again: the request is answered with its deployment, nothing is cancelled or created.
    const again = await cli(deployArgs("v6", "--cancel-active", "--request-id", "replace-v5"));
    expect(again.code, shown(again)).toBe(0);
    expect(again.stdout).not.toContain("cancelled deployment");
    expect((await versionsOf()).filter((v) => v === "v6")).toHaveLength(1);
  });

  it("--wait-active on a lock whose deployment never appears (its creator died): asks again until the lock is taken over as abandoned (30 s)", async () => {
    const ghost = newDeploymentId();
    const nc = await connect({ servers: stack.nats.url });
    try {
      await (await new Kvm(nc).open(DEPLOYMENTS_BUCKET)).create(activeKey("web", "prod"), encode({ deploymentId: ghost, requestKey: "req.gone" }));
    } finally {
      await nc.close();
    }
    const refused = await cli(deployArgs("v7"));
    expect(refused.stderr).toContain(`FAILED_PRECONDITION: deployment ${ghost} is being created for app web in environment prod; wait for it with --wait-active`);
    const r = await cli(deployArgs("v7", "--wait-active", "2m"));
    expect(r.code, shown(r)).toBe(0);
    // Announced once, though it was asked about again and again.
    expect(r.stdout.split(`deployment ${ghost} is active for this app and environment`)).toHaveLength(2);
    expect(r.stdout).toMatch(/SUCCEEDED: 3 of 3 target\(s\) succeeded/);
  }, 120_000);
});
