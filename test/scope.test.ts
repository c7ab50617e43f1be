// Deployer tokens scoped to environments (grpc/scope.ts): a token scoped to
// staging deploys, cancels, freezes and cordons there, and is refused
// (PERMISSION_DENIED naming the token, its environments and the one the
// call acts in) anywhere else, over gRPC, deployctl and the dashboard's
// API alike, having changed nothing; it still reads everything. The table
// of changing methods is checked against the service's roles, so a new
// method cannot be left unscoped.
import { createHash, randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTokens, METHOD_ROLES } from "../services/coordinator/src/grpc/auth.js";
import { scopeTable, UNSCOPED_CHANGES } from "../services/coordinator/src/grpc/scope.js";
import { runCli, shown } from "./helpers/deployctl.js";
import { freePort } from "./helpers/nats-server.js";
import { rawClient } from "./helpers/security.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const sha = (t: string): string => createHash("sha256").update(t).digest("hex");
const HEX = sha("x");

describe("token scopes, configured", () => {
  it("every method that changes something is scoped, but UploadArtifact", () => {
    const table = scopeTable({ ctx: {} as never, registry: { get: () => undefined } });
    const changing = Object.entries(METHOD_ROLES).filter(([, role]) => role === "deployer").map(([m]) => m);
    expect(changing.filter((m) => !(m in table) && !(UNSCOPED_CHANGES as readonly string[]).includes(m))).toEqual([]);
    expect(Object.keys(table).filter((m) => METHOD_ROLES[m] !== "deployer")).toEqual([]);
  });

  it("reads environments and apps from the string and the object form, and refuses what cannot be meant", () => {
    expect(
      loadTokens(
        [
          `ci:deployer:${HEX}:staging+qa`,
          { name: "ops", role: "deployer", sha256: HEX, environments: ["prod"] },
          `all:deployer:${HEX}`,
          `web:deployer:${HEX}:*:web`,
          `webprod:deployer:sha256:${HEX}:prod:web+shop`,
          { name: "api", role: "deployer", sha256: HEX, apps: ["api"] },
        ],
        "",
      ).map((t) => [t.name, t.environments, t.apps]),
    ).toEqual([
      ["ci", ["qa", "staging"], undefined],
      ["ops", ["prod"], undefined],
      ["all", undefined, undefined],
      ["web", undefined, ["web"]],
      ["webprod", ["prod"], ["shop", "web"]],
      ["api", undefined, ["api"]],
    ]);
    expect(() => loadTokens([{ name: "v", role: "viewer", sha256: HEX, apps: ["web"] }], "")).toThrow(/^grpc\.tokens\[0\]\.apps: only a deployer token is scoped to apps/);
    expect(() => loadTokens([`v:viewer:${HEX}:staging`], "")).toThrow(/^grpc\.tokens\[0\]\.environments: only a deployer token is scoped to environments/);
    expect(() => loadTokens([{ name: "x", role: "deployer", sha256: HEX, environments: [] }], "")).toThrow(/environments: must be a non-empty list/);
    expect(() => loadTokens([`x:deployer:${HEX}:pr od`], "")).toThrow(/environments: "pr od" is not an environment name/);
  });
});

describe("a deployer token scoped to an app", () => {
  const team = `team-${randomUUID()}`;
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["p1"], coordinatorEnv: { DEPLOY_GRPC_TOKENS: `team-web:deployer:${sha(team)}:*:web` } });
    await stack.startAgent("q1", { apps: { api: { deploy: "/bin/true" } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("deploys and acts on its app only (its app's policy too); a freeze, the environment's policy, another app's and an agent that serves another app are refused", async () => {
    const c = rawClient(stack.address, { token: team });
    try {
      const web = await c.unary<{ id: string }>("CreateDeployment", { requestId: `r-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1" } });
      expect(web.id).toMatch(/^d-/);
      const refused = await c.unary("CreateDeployment", { requestId: `r-${randomUUID()}`, app: "api", environment: "prod", changeset: { version: "v1" } }).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(refused?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(refused?.details).toBe("token team-web may change app web only; CreateDeployment acts on app api");
      const freeze = await c.unary("FreezeEnvironment", { environment: "prod", reason: "team tries" }).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(freeze?.details).toBe("token team-web may change app web only; FreezeEnvironment acts on every app of environment prod");
      expect(await c.code("SetEnvironmentPolicy", { environment: "prod", requireCanary: true, reason: "team tries" })).toBe(grpc.status.PERMISSION_DENIED);
      // Its own app's policy is its own to set; another app's is not.
      expect(await c.code("SetEnvironmentPolicy", { environment: "prod", app: "api", requireCanary: true, reason: "team tries" })).toBe(grpc.status.PERMISSION_DENIED);
      expect(await c.code("SetEnvironmentPolicy", { environment: "prod", app: "web", requireCanary: true, reason: "web canaries first" })).toBe(grpc.status.OK);
      expect(await c.code("SetEnvironmentPolicy", { environment: "prod", app: "web", reason: "lifted again" })).toBe(grpc.status.OK);
      const cordon = await c.unary("CordonAgent", { agentId: "q1", reason: "team tries" }).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(cordon?.details).toBe("token team-web may change app web only; CordonAgent acts on agent q1, which serves app api");
      // p1 serves web only: its own.
      expect(await c.code("CordonAgent", { agentId: "p1", reason: "team may" })).toBe(grpc.status.OK);
      expect(await c.code("UncordonAgent", { agentId: "p1" })).toBe(grpc.status.OK);
      await until("web's deployment ended", async () => ((await c.unary<{ state: string }>("GetDeployment", { deploymentId: web.id })).state === "DEPLOYMENT_STATE_SUCCEEDED" ? true : undefined));
    } finally {
      c.close();
    }
  });
});

describe("a deployer token scoped to staging", () => {
  const ci = `ci-${randomUUID()}`;
  const admin = `admin-${randomUUID()}`;
  let stack: Stack;
  let base = "";
  const cli = (token: string, args: string[]) =>
    runCli(args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DEPLOY_COORDINATOR: stack.address, DEPLOY_TOKEN: token, DEPLOYCTL_RETRY_BUDGET_MS: "2000", NO_COLOR: "1" } });

  beforeAll(async () => {
    const httpPort = await freePort();
    stack = await Stack.start({
      agents: ["p1", "p2"],
      coordinatorEnv: { DEPLOY_HTTP_LISTEN: `127.0.0.1:${httpPort}`, DEPLOY_GRPC_TOKENS: `ci:deployer:${sha(ci)}:staging,admin:deployer:${sha(admin)}` },
    });
    await stack.startAgent("s1", { environment: "staging" });
    base = `http://127.0.0.1:${httpPort}/`;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("changes staging, is refused everywhere else having changed nothing, and reads everything", async () => {
    const c = rawClient(stack.address, { token: ci });
    const a = rawClient(stack.address, { token: admin });
    try {
      const staged = await c.unary<{ id: string }>("CreateDeployment", { requestId: `r-${randomUUID()}`, app: "web", environment: "staging", changeset: { version: "v1" } });
      expect(staged.id).toMatch(/^d-/);
      const prodRequest = { requestId: `r-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 1 } };
      const refused = await c.unary("CreateDeployment", prodRequest).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(refused?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(refused?.details).toBe("token ci may change environment staging only; CreateDeployment acts on environment prod");
      // Nothing was created: the admin's identical request is a new one.
      const prod = await a.unary<{ id: string; requestedBy: string }>("CreateDeployment", prodRequest);
      expect(prod.requestedBy).toBe("admin");

      // Acting on prod's deployment, freezing prod, cordoning a prod agent: refused; reading: not.
      for (const [m, req] of [
        ["CancelDeployment", { deploymentId: prod.id }],
        ["PauseDeployment", { deploymentId: prod.id }],
        ["RevertDeployment", { deploymentId: prod.id }],
        ["FreezeEnvironment", { environment: "prod", reason: "ci tries" }],
        ["SetEnvironmentPolicy", { environment: "prod", requireCanary: true, reason: "ci tries" }],
        ["RollbackRelease", { requestId: `r-${randomUUID()}`, app: "web", environment: "prod" }],
        ["CordonAgent", { agentId: "p1", reason: "ci tries" }],
        ["DeregisterAgent", { agentId: "p1" }],
      ] as const) {
        expect(await c.code(m, req), m).toBe(grpc.status.PERMISSION_DENIED);
      }
      expect(await c.code("GetDeployment", { deploymentId: prod.id })).toBe(grpc.status.OK);
      expect(await c.code("ListAgents", { environment: "prod" })).toBe(grpc.status.OK);
      // In staging it may: a freeze, its lift, a cordon of its agent and the uncordon.
      expect(await c.code("FreezeEnvironment", { environment: "staging", reason: "ci may" })).toBe(grpc.status.OK);
      expect(await c.code("UnfreezeEnvironment", { environment: "staging" })).toBe(grpc.status.OK);
      expect(await c.code("CordonAgent", { agentId: "s1", reason: "ci may" })).toBe(grpc.status.OK);
      expect(await c.code("UncordonAgent", { agentId: "s1" })).toBe(grpc.status.OK);
      // A deployment that does not exist: NOT_FOUND, as for anyone (there is no environment to refuse).
      expect(await c.code("CancelDeployment", { deploymentId: "d-0mxnotthere-00000000" })).toBe(grpc.status.NOT_FOUND);
      expect((await a.unary<{ frozen: boolean }>("FreezeEnvironment", { environment: "prod", reason: "admin checks" })).frozen).toBe(true);
      expect((await a.unary<{ freezes?: { environment: string }[] }>("ListFreezes", {})).freezes?.map((f) => f.environment)).toEqual(["prod"]);
      await a.unary("UnfreezeEnvironment", { environment: "prod" });
      await until("prod's deployment ended", async () => ((await a.unary<{ state: string }>("GetDeployment", { deploymentId: prod.id })).state === "DEPLOYMENT_STATE_SUCCEEDED" ? true : undefined));
    } finally {
      c.close();
      a.close();
    }
  });

  it("deployctl and the dashboard's API refuse it the same way", async () => {
    const r = await cli(ci, ["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v2"]);
    expect(r.code, shown(r)).toBe(2);
    expect(r.stderr).toContain("token ci may change environment staging only; CreateDeployment acts on environment prod");
    const ok = await cli(ci, ["deploy", "--executable", "--app", "web", "--env", "staging", "--version", "v2"]);
    expect(ok.code, shown(ok)).toBe(0);

    const a = rawClient(stack.address, { token: admin });
    try {
      const prod = await a.unary<{ id: string }>("CreateDeployment", { requestId: `r-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v3" } });
      const post = (path: string, body: object): Promise<Response> =>
        fetch(`${base}${path}`, { method: "POST", headers: { Authorization: `Bearer ${ci}`, "Content-Type": "application/json", Origin: base.slice(0, -1) }, body: JSON.stringify(body) });
      // The page says what the token may change.
      const session = await fetch(`${base}api/session`, { headers: { Authorization: `Bearer ${ci}` } });
      expect(await session.json()).toMatchObject({ name: "ci", role: "deployer", canCancel: true, environments: ["staging"] });
      const cancel = await post(`api/deployments/${prod.id}/cancel`, {});
      expect(cancel.status).toBe(403);
      expect(await cancel.json()).toMatchObject({ error: "token ci may change environment staging only; CancelDeployment acts on environment prod" });
      const freeze = await post("api/freezes", { environment: "prod", reason: "ci tries" });
      expect(freeze.status).toBe(403);
      const promote = await post("api/promotions", { requestId: `r-${randomUUID()}`, app: "web", environment: "prod", from: "staging" });
      expect(promote.status).toBe(403);
      expect((await a.unary<{ freezes?: unknown[] }>("ListFreezes", {})).freezes ?? []).toEqual([]);
    } finally {
      a.close();
    }
  });
});
