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
import { soakText } from "../services/coordinator/src/releases/promote.js";
import type { DeployClient } from "./helpers/client.js";
import { HELLO, deploymentIdOf, runCli, shown, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

describe("deploy --from-env (promote_from)", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;
  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });
  type Desired = { deploymentId?: string; version?: string; release?: string; succeededAt?: { seconds?: string; nanos?: number } };
  const desiredOf = async (environment: string): Promise<Desired | undefined> => (await client.call<{ desired?: Desired }>("GetRelease", { app: "web", environment })).desired;

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
    expect(r.stdout + r.stderr).toContain(`web v1 to prod, 2 target(s), promoted from staging (release v1-${stagingId.slice(-8)}, deployment ${stagingId}, artifact ${digest}, succeeded there `);
    const d = await client.get(prodId);
    // When it succeeded in staging: the time of staging's finished event, as GetRelease says.
    const stagingRelease = await desiredOf("staging");
    expect(stagingRelease?.succeededAt?.seconds).toMatch(/^\d+$/);
    expect(d.promotedFrom?.succeededAt).toEqual(stagingRelease?.succeededAt);
    expect(d.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(d.changeset).toMatchObject({ version: "v1", artifact: { name: "web", digest } });
    expect(d.promotedFrom).toMatchObject({ app: "web", environment: "staging", deploymentId: stagingId, version: "v1", release: `v1-${stagingId.slice(-8)}`, artifact: { digest } });
    const agents = (await client.agents({ app: "web", environment: "prod" })).agents;
    for (const a of agents) expect(a.currentReleases["web"], a.id).toBe(`v1-${prodId.slice(-8)}`);
    const got = await cli(["get", prodId]);
    expect(got.stdout).toContain(`promoted from staging: its desired release v1 (release v1-${stagingId.slice(-8)}, deployment ${stagingId}, artifact ${digest}, succeeded there `);

    // Staging moves on; the same request is still the deployment it made.
    const v2 = await cli(["deploy", "--executable", "--app", "web", "--env", "staging", "--version", "v2"]);
    expect(v2.code, shown(v2)).toBe(0);
    const again = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--request-id", "promote-1", "--detach", "--json"]);
    expect(again.code, shown(again)).toBe(0);
    expect((JSON.parse(again.stdout) as { deployment: { id: string } }).deployment.id).toBe(prodId);
    // A new request promotes what staging has now: v2, an executable deploy (no bundle).
    const next = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--dry-run"]);
    expect(next.code, shown(next)).toBe(0);
    expect(next.stdout + next.stderr).toMatch(/dry run: would deploy web v2 to prod, promoted from staging \(release v2-\S+, deployment d-\S+, no bundle, succeeded there \S+\), 2 target\(s\)/);
  });

  it("promotes with --min-soak only a release that has been desired there that long, and a retry of a promotion it let through is still answered", async () => {
    const release = (await desiredOf("staging"))!;
    const succeededAt = new Date(Number(release.succeededAt!.seconds) * 1000 + Math.floor((release.succeededAt!.nanos ?? 0) / 1e6)).toISOString();
    // Staging's desired release succeeded seconds ago: not soaked an hour. Nothing is created.
    const before = (await client.list({ environment: "prod" })).deployments?.length ?? 0;
    const early = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--min-soak", "1h", "--request-id", "soak-1"]);
    expect(early.code, shown(early)).toBe(2);
    expect(early.stderr).toContain(`promote_min_soak: the desired release of app web in staging (${release.version}, release ${release.release}, deployment ${release.deploymentId}) succeeded `);
    expect(early.stderr).toContain(`ago, at ${succeededAt}; it can be promoted with a soak of 1h from ${new Date(Date.parse(succeededAt) + 3_600_000).toISOString()}`);
    expect((await client.list({ environment: "prod" })).deployments?.length ?? 0).toBe(before);
    // The dry run is refused alike.
    const dry = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--min-soak", "1h", "--dry-run"]);
    expect(dry.code, shown(dry)).toBe(2);
    expect(dry.stderr).toContain("promote_min_soak:");

    // Soaked long enough: promoted.
    const soaked = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--min-soak", "1ms", "--request-id", "soak-2", "--detach", "--json"]);
    expect(soaked.code, shown(soaked)).toBe(0);
    const id = (JSON.parse(soaked.stdout) as { deployment: { id: string } }).deployment.id;
    await client.waitTerminal(id);
    // Staging moves on; a retry of that promotion, with a soak the new release has not had, is the deployment it made.
    const v3 = await cli(["deploy", "--executable", "--app", "web", "--env", "staging", "--version", "v3"]);
    expect(v3.code, shown(v3)).toBe(0);
    const retry = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--min-soak", "1h", "--request-id", "soak-2", "--detach", "--json"]);
    expect(retry.code, shown(retry)).toBe(0);
    const again = (JSON.parse(retry.stdout) as { deployment: { id: string; changeset: { version: string } } }).deployment;
    expect(again.id).toBe(id);
    expect(again.changeset.version).toBe(release.version);
    // A new request with that soak is refused: v3 succeeded moments ago.
    await expect(client.create({ requestId: "soak-3", app: "web", environment: "prod", promoteFrom: "staging", promoteMinSoak: { seconds: 3600, nanos: 0 } })).rejects.toThrow(/promote_min_soak: the desired release of app web in staging \(v3, /);
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
    const soakAlone = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v9", "--min-soak", "1h"]);
    expect(soakAlone.code, shown(soakAlone)).toBe(2);
    expect(soakAlone.stderr).toContain("--min-soak needs --from-env");
    await expect(client.create({ requestId: "soak-alone", app: "web", environment: "prod", changeset: { version: "v9" }, promoteMinSoak: { seconds: 60, nanos: 0 } })).rejects.toThrow(/promote_min_soak: needs promote_from/);
    await expect(client.create({ requestId: "soak-long", app: "web", environment: "prod", promoteFrom: "staging", promoteMinSoak: { seconds: 8 * 86_400, nanos: 0 } })).rejects.toThrow(/promote_min_soak: must be at most 7 days/);
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

  it("says how long a release has soaked in the two largest units", () => {
    expect([500, 45_000, 750_000, 7_512_000, 273_600_000].map(soakText)).toEqual(["500ms", "45s", "12m30s", "2h5m", "3d4h"]);
  });
});
