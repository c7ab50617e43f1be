// Environment policies end to end, on a real nats-server, coordinator and
// agents from dist/ (one in staging, two in prod): a policy that accepts only
// promotions from staging refuses a new release (and its dry run) naming the
// rule, who set it and why, and writes nothing; a promotion goes through
// once the release has soaked as long as the policy asks; a policy asking
// for a canary refuses a deployment without one; rollbacks and reverts still
// run; a retry of a request accepted before the policy is answered; the
// policy is stored (deploy_policies: the nats CLI shows it), survives a
// coordinator restart and is cleared; deployctl policy / policies.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../scripts/lib/tools.js";
import type { EnvironmentPolicy__Output } from "../services/shared/src/gen/deploy/v1/EnvironmentPolicy.js";
import type { ListEnvironmentPoliciesResponse__Output } from "../services/shared/src/gen/deploy/v1/ListEnvironmentPoliciesResponse.js";
import { convergedTo, grpcError, type DeployClient, type DeploymentMsg } from "./helpers/client.js";
import { deploymentIdOf, runCli, shown, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;
const ANON = "anonymous (development mode)";

describe("environment policies", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;
  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });
  const setPolicy = (req: object): Promise<EnvironmentPolicy__Output> => client.call("SetEnvironmentPolicy", { environment: "prod", reason: "prod runs what staging ran", ...req });
  const policies = async (): Promise<EnvironmentPolicy__Output[]> => (await client.call<ListEnvironmentPoliciesResponse__Output>("ListEnvironmentPolicies", {})).policies ?? [];
  const create = (environment: string, version: string, more: object = {}): Promise<DeploymentMsg> =>
    client.create({ requestId: rid(version), app: "web", environment, changeset: { version }, strategy: { maxConcurrency: 2 }, ...more });
  const deploy = async (environment: string, version: string, more: object = {}): Promise<DeploymentMsg> =>
    client.waitTerminal((await until(`${version} accepted`, () => create(environment, version, more).catch(() => undefined))).id!);
  const requestIds = async (): Promise<string[]> => (await client.list({ pageSize: 200 })).deployments.map((d) => d.requestId ?? "");

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "policy-"));
    stack = await Stack.start({ agents: ["p1", "p2"] });
    await stack.startAgent("s1", { environment: "staging" });
    client = stack.client();
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address, DEPLOYCTL_RETRY_BUDGET_MS: "2000", NO_COLOR: "1" };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("bad policies are INVALID_ARGUMENT naming the field, and set nothing", async () => {
    const cases: [object, RegExp][] = [
      [{ reason: " ", promoteFrom: "staging" }, /^reason: is required/],
      [{ promoteFrom: "prod" }, /^promote_from: must be another environment than prod/],
      [{ minSoak: { seconds: "60" } }, /^min_soak: needs promote_from/],
      [{ promoteFrom: "staging", minSoak: { seconds: String(31 * 86400) } }, /^min_soak: must be from 1s to 30 days/],
      [{ promoteFrom: "stag ing" }, /^promote_from: /],
      [{ environment: "pr od", requireCanary: true }, /^environment: /],
    ];
    for (const [req, details] of cases) {
      const err = await grpcError(setPolicy(req));
      expect(err.code, JSON.stringify(req)).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(details);
    }
    expect(await policies()).toEqual([]);
    const usage = await cli(["policy", "prod", "--promote-from", "staging"]);
    expect(usage.code, shown(usage)).toBe(2);
    expect(usage.stderr).toContain("--reason is required");
    const none = await cli(["policy", "prod"]);
    expect(none.code, shown(none)).toBe(0);
    expect(none.stdout).toMatch(/^prod has no policy: every deployment to it is accepted \(unless it is frozen\)/);
  });

  let v1 = "";
  let accepted: DeploymentMsg | undefined;

  it("only promotions from staging: a new release and its dry run are refused, naming the rule, and nothing is written", async () => {
    const d1 = await deploy("prod", "v1");
    expect(d1.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    v1 = d1.id!;
    expect((await deploy("prod", "v2")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    accepted = await create("prod", "v3");
    await client.waitTerminal(accepted.id!);

    const set = await cli(["policy", "prod", "--promote-from", "staging", "--reason", "prod runs what staging ran"]);
    expect(set.code, shown(set)).toBe(0);
    expect(set.stdout).toMatch(/^prod accepts only promotions from staging \(set by anonymous \(development mode\) at \S+: prod runs what staging ran\)\.$/m);
    expect(await policies()).toMatchObject([{ environment: "prod", promoteFrom: "staging", requireCanary: false, by: ANON, reason: "prod runs what staging ran" }]);
    const shownNow = await cli(["policy", "prod"]);
    expect(shownNow.stdout, shown(shownNow)).toMatch(/^prod accepts only promotions from staging \(set by anonymous \(development mode\) at \S+: prod runs what staging ran\); other deployments to it are refused/);

    const before = await requestIds();
    const requestId = rid("direct");
    const err = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v4" } }));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toMatch(
      /^environment prod's policy \(set by anonymous \(development mode\) at \S+: prod runs what staging ran\) accepts only promotions from staging, and this request deploys a new release: deploy staging's desired release with promote_from staging \(deployctl deploy --app web --env prod --from-env staging\); rollbacks, reverts and convergence still run$/,
    );
    const dry = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v4" }, validateOnly: true }));
    expect(dry.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(dry.details).toContain("accepts only promotions from staging");
    // deployctl says the same, with exit 2, and creates nothing.
    const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v4"]);
    expect(r.code, shown(r)).toBe(2);
    expect(r.stderr).toContain("accepts only promotions from staging");
    expect(await requestIds()).toEqual(before);

    // A retry of a request accepted before the policy: the same deployment.
    const again = await client.create({ requestId: accepted.requestId!, app: "web", environment: "prod", changeset: { version: "v3" }, strategy: { maxConcurrency: 2 } });
    expect(again.id).toBe(accepted.id);
  });

  it("a promotion from staging goes through once it has soaked as long as the policy asks; one from elsewhere is refused", async () => {
    const staged = await cli(["deploy", "--executable", "--app", "web", "--env", "staging", "--version", "v5"]);
    expect(staged.code, shown(staged)).toBe(0);
    // From another environment: refused by the rule, whatever it holds.
    const other = await grpcError(create("prod", "x", { changeset: undefined, promoteFrom: "qa" }));
    expect(other.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(other.details).toContain("accepts only promotions from staging, and this request promotes from qa");

    expect((await setPolicy({ promoteFrom: "staging", minSoak: { seconds: "3600" } })).minSoak).toEqual({ seconds: "3600", nanos: 0 });
    const early = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging"]);
    expect(early.code, shown(early)).toBe(2);
    expect(early.stderr).toMatch(/environment prod's policy \(set by anonymous \(development mode\) at \S+: prod runs what staging ran\) asks a soak of 1h: the desired release of app web in staging \(v5, release \S+, deployment \S+\) succeeded \S+ ago, at \S+; it can be promoted with a soak of 1h from \S+/);
    // The larger of the policy's and the request's soak: the request's 2h refuses too.
    await setPolicy({ promoteFrom: "staging", minSoak: { seconds: "1" } });
    await new Promise((r) => setTimeout(r, 1100));
    const longer = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--min-soak", "2h"]);
    expect(longer.code, shown(longer)).toBe(2);
    expect(longer.stderr).toContain("promote_min_soak: the desired release of app web in staging (v5");

    const ok = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging"]);
    expect(ok.code, shown(ok)).toBe(0);
    const d = await client.get(deploymentIdOf(ok));
    expect(d.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(d.promotedFrom).toMatchObject({ environment: "staging", version: "v5" });
  });

  it("a policy asking for a canary refuses a deployment without one, and accepts one with it", async () => {
    await setPolicy({ promoteFrom: "staging", requireCanary: true });
    const staged = await cli(["deploy", "--executable", "--app", "web", "--env", "staging", "--version", "v6"]);
    expect(staged.code, shown(staged)).toBe(0);
    const none = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging"]);
    expect(none.code, shown(none)).toBe(2);
    expect(none.stderr).toContain("asks every deployment for a canary wave, and this request has none: give strategy.canary or strategy.canary_percent (deployctl deploy --canary 1)");
    const withCanary = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--canary", "1", "--canary-soak", "1s"]);
    expect(withCanary.code, shown(withCanary)).toBe(0);
    const status = await cli(["status", "web", "prod"]);
    expect(status.stdout, shown(status)).toMatch(/^ {2}policy {11}accepts only promotions from staging; a canary wave \(set by anonymous \(development mode\) at \S+: prod runs what staging ran\)$/m);
    const listed = await cli(["policies"]);
    expect(listed.code, shown(listed)).toBe(0);
    expect(listed.stdout).toMatch(/^prod +\(every app\) +only promotions from staging; a canary wave +anonymous \(development mode\) +\S+ +prod runs what staging ran$/m);
  });

  it("a rollback and convergence still run under a policy (reverts, as rollbacks, restore a release: policy-rules.test.ts)", async () => {
    const rb = await until("a rollback accepted", () => client.rollback({ requestId: rid("rollback"), app: "web", environment: "prod", to: v1 }).catch(() => undefined));
    const done = await client.waitTerminal(rb.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.changeset?.version).toBe("v1");
    // A new agent joins prod: convergence brings it to the desired release, the policy notwithstanding.
    await stack.startAgent("p3");
    const converged = await convergedTo(client, "p3", rb.id!);
    expect(converged.changeset?.version).toBe("v1");
  });

  it("is stored in deploy_policies, survives a coordinator restart, and --clear lifts it", async () => {
    const raw = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(toolPath("nats"), ["--server", stack.nats.url, "kv", "get", "--raw", "deploy_policies", "prod"], (err, stdout) => resolve({ code: err ? 1 : 0, stdout })),
    );
    expect(raw.code).toBe(0);
    expect(JSON.parse(raw.stdout)).toMatchObject({ schema: "deploy.policy.v1", environment: "prod", promoteFrom: "staging", requireCanary: true, by: { name: ANON } });

    await stack.coordinators[0]!.kill("SIGKILL");
    const second = await stack.startCoordinator();
    const addr = stack.coordinatorAddress(second);
    client = stack.client(addr);
    env = { ...env, DEPLOY_COORDINATOR: addr };
    expect((await policies()).map((p) => p.environment)).toEqual(["prod"]);
    const refused = await until("the restarted coordinator refuses by the policy", () =>
      grpcError(create("prod", "v7")).then((e) => (e.code === grpc.status.FAILED_PRECONDITION ? e : undefined)).catch(() => undefined),
    );
    expect(refused.details).toContain("accepts only promotions from staging");

    const clear = await cli(["policy", "prod", "--clear", "--reason", "hotfix INC-204 straight from a build"]);
    expect(clear.code, shown(clear)).toBe(0);
    expect(clear.stdout).toContain("prod has no policy: every deployment to it is accepted");
    expect(await policies()).toEqual([]);
    expect((await deploy("prod", "v7")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const none = await cli(["policies", "--json"]);
    expect(JSON.parse(none.stdout)).toEqual({});
    expect((await cli(["status", "web", "prod"])).stdout).toMatch(/^ {2}policy {11}none: every deployment is accepted$/m);
  });

  it("an app's policy (--app) adds to the environment's: it refuses that app's deployments only, naming itself, and is listed, stored and cleared apart", async () => {
    const other = await cli(["policy", "prod", "--app", "api", "--require-canary", "--reason", "api canaries first"]);
    expect(other.code, shown(other)).toBe(0);
    expect(other.stdout).toMatch(/^api in prod accepts a canary wave \(set by anonymous \(development mode\) at \S+: api canaries first\)\.\nOther deployments of api to prod are refused/);
    // api's policy is not web's.
    expect((await deploy("prod", "v8")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");

    const own = await cli(["policy", "prod", "--app", "web", "--require-canary", "--reason", "web canaries first"]);
    expect(own.code, shown(own)).toBe(0);
    const envWide = await cli(["policy", "prod", "--promote-from", "staging", "--reason", "prod runs what staging ran"]);
    expect(envWide.code, shown(envWide)).toBe(0);
    // Both apply: a new release is refused by the environment's, a promotion without a canary by web's own.
    const fresh = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v9"]);
    expect(fresh.code, shown(fresh)).toBe(2);
    expect(fresh.stderr).toContain("environment prod's policy (set by anonymous (development mode) at ");
    const noCanary = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging"]);
    expect(noCanary.code, shown(noCanary)).toBe(2);
    expect(noCanary.stderr).toMatch(/^deployctl: FAILED_PRECONDITION: app web's policy in prod \(set by anonymous \(development mode\) at \S+: web canaries first\) asks every deployment for a canary wave/);
    const both = await cli(["deploy", "--app", "web", "--env", "prod", "--from-env", "staging", "--canary", "1", "--canary-soak", "1s"]);
    expect(both.code, shown(both)).toBe(0);

    const listed = await cli(["policies"]);
    expect(listed.stdout, shown(listed)).toMatch(/^prod +\(every app\) +only promotions from staging +.*\nprod +api +a canary wave +.*api canaries first\nprod +web +a canary wave +.*web canaries first$/m);
    const status = await cli(["status", "web", "prod"]);
    expect(status.stdout, shown(status)).toMatch(/^ {2}policy {11}prod's: accepts only promotions from staging \(.*\n {19}web's own: accepts a canary wave \(set by .*: web canaries first\)$/m);
    const shownWeb = await cli(["policy", "prod", "--app", "web"]);
    expect(shownWeb.stdout).toMatch(/^web in prod accepts a canary wave .*\nprod accepts only promotions from staging .*: web's deployments there must satisfy it too$/m);
    const raw = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(toolPath("nats"), ["--server", stack.nats.url, "kv", "get", "--raw", "deploy_policies", "prod.web"], (err, stdout) => resolve({ code: err ? 1 : 0, stdout })),
    );
    expect(raw.code).toBe(0);
    expect(JSON.parse(raw.stdout)).toMatchObject({ schema: "deploy.policy.v1", environment: "prod", app: "web", requireCanary: true });

    const clearWeb = await cli(["policy", "prod", "--app", "web", "--clear", "--reason", "web's canary is the environment's business"]);
    expect(clearWeb.stdout).toContain("web in prod has no policy of its own: its deployments to prod answer to prod's policy alone");
    await cli(["policy", "prod", "--clear", "--reason", "done"]);
    expect((await policies()).map((p) => `${p.environment}.${p.app}`)).toEqual(["prod.api"]);
    expect((await deploy("prod", "v10")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });
});
