// Build once, deploy many: CreateDeploymentRequest.promote_from (deployctl
// deploy --from-env) deploys the desired release of the app in another
// environment as it is, the same version and the same artifact digest. End
// to end: the built CLI against a real stack (nats-server, a coordinator, an
// agent in staging and two in prod).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, foldAll, makeEvent, parseEvent, type DeploymentSpec } from "../services/shared/src/index.js";
import { notificationOf } from "../services/coordinator/src/notifier.js";
import type { DeployClient } from "./helpers/client.js";
import { HELLO, deploymentIdOf, runCli, shown, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

describe("deploy --from-env (promote_from)", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;
  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "promote-from-"));
    stack = await Stack.start({ agents: ["p1", "p2"] });
    await stack.startAgent("s1", { environment: "staging" });
    client = stack.client();
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("deploys staging's desired release to prod bit for bit, records where it came from, and a retry after staging moved on is the same deployment", async () => {
    // Nothing succeeded in staging yet: nothing to promote, nothing created.
    const none = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging"]);
    expect(none.code, shown(none)).toBe(2);
    expect(none.stderr).toContain("promote_from: no deployment of app web to environment staging has succeeded, so it has no desired release to promote (deployctl releases web staging)");
    expect((await client.list({ environment: "prod" })).deployments ?? []).toEqual([]);

    const staged = await cli(["deploy", HELLO, "--app", "web", "--env", "staging", "--version", "v1"]);
    expect(staged.code, shown(staged)).toBe(0);
    const stagingId = deploymentIdOf(staged);
    const stagingDeployment = await client.get(stagingId);
    const digest = stagingDeployment.changeset?.artifact?.digest ?? "";
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const r = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--request-id", "promote-1"]);
    expect(r.code, shown(r)).toBe(0);
    const prodId = deploymentIdOf(r);
    expect(r.stdout + r.stderr).toContain(`web v1 to prod, 2 target(s), promoted from staging (release v1-${stagingId.slice(-8)}, deployment ${stagingId}, artifact ${digest})`);
    const d = await client.get(prodId);
    expect(d.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(d.changeset).toMatchObject({ version: "v1", artifact: { name: "web", digest } });
    expect(d.promotedFrom).toMatchObject({ app: "web", environment: "staging", deploymentId: stagingId, version: "v1", release: `v1-${stagingId.slice(-8)}`, artifact: { digest } });
    const agents = (await client.agents({ app: "web", environment: "prod" })).agents;
    for (const a of agents) expect(a.currentReleases["web"], a.id).toBe(`v1-${prodId.slice(-8)}`);
    const got = await cli(["get", prodId]);
    expect(got.stdout).toContain(`promoted from staging: its desired release v1 (release v1-${stagingId.slice(-8)}, deployment ${stagingId}, artifact ${digest})`);

    // Staging moves on; the same request is still the deployment it made.
    const v2 = await cli(["deploy", "--executable", "--app", "web", "--env", "staging", "--version", "v2"]);
    expect(v2.code, shown(v2)).toBe(0);
    const again = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--request-id", "promote-1", "--detach", "--json"]);
    expect(again.code, shown(again)).toBe(0);
    expect((JSON.parse(again.stdout) as { deployment: { id: string } }).deployment.id).toBe(prodId);
    // A new request promotes what staging has now: v2, an executable deploy (no bundle).
    const next = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--dry-run"]);
    expect(next.code, shown(next)).toBe(0);
    expect(next.stdout + next.stderr).toMatch(/dry run: would deploy web v2 to prod, promoted from staging \(release v2-\S+, deployment d-\S+, no bundle\), 2 target\(s\)/);
  });

  it("refuses a promotion that also names a changeset, a version or a bundle, or promotes an environment to itself, naming why", async () => {
    const both = client.create({ requestId: "promote-both", app: "web", environment: "prod", changeset: { version: "v9" }, promoteFrom: "staging" });
    await expect(both).rejects.toThrow(/promote_from: give a changeset or promote_from, not both/);
    const self = client.create({ requestId: "promote-self", app: "web", environment: "prod", promoteFrom: "prod" });
    await expect(self).rejects.toThrow(/promote_from: is the environment deployed to \(prod\)/);
    const withVersion = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--version", "v9"]);
    expect(withVersion.code, shown(withVersion)).toBe(2);
    expect(withVersion.stderr).toContain("--from-env deploys the release of staging as it is: not with --version");
    const withBundle = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--from-env", "staging"]);
    expect(withBundle.code, shown(withBundle)).toBe(2);
    expect(withBundle.stderr).toContain("not with a bundle");
    const noVersion = await cli(["deploy", "--executable", "--app", "web", "--env", "prod"]);
    expect(noVersion.code, shown(noVersion)).toBe(2);
    expect(noVersion.stderr).toContain("--version is required (but with --from-env)");
  });
});

describe("a promotion's record", () => {
  const spec: DeploymentSpec = {
    id: "d-prod-1",
    requestId: "r-1",
    requestHash: "h",
    app: "web",
    environment: "prod",
    changeset: { version: "v1", artifact: { name: "web", digest: `sha256:${"a".repeat(64)}`, size: 100 } },
    strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000 },
    targets: ["p1"],
    requestedBy: "ci",
    promotedFrom: { environment: "staging", deploymentId: "d-stage-1", version: "v1", release: "v1-stage-1", artifact: { name: "web", digest: `sha256:${"a".repeat(64)}` } },
  };

  it("survives the stream (the created event read back keeps promotedFrom), and its notification says where it came from", () => {
    const created = parseEvent(encode(makeEvent(spec.id, { type: "deployment.created", spec })));
    expect(created.type === "deployment.created" && created.spec.promotedFrom).toEqual(spec.promotedFrom);
    const finished = makeEvent(spec.id, { type: "deployment.finished", state: "SUCCEEDED", message: "1 of 1 target(s) succeeded" });
    const rec = foldAll([{ seq: 1, time: new Date(0).toISOString(), source: "coordinator", event: created }])!;
    const n = notificationOf(finished, 9, rec);
    expect(n.text).toBe("web v1 to prod (d-prod-1, promoted from staging): SUCCEEDED: 1 of 1 target(s) succeeded");
    expect(n.deployment.promotedFrom).toEqual({ environment: "staging", deploymentId: "d-stage-1", release: "v1-stage-1" });
  });
});
