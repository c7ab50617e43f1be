// Environment freezes end to end, on a real nats-server, coordinator and
// agents from dist/: a frozen environment refuses new deployments (and their
// dry runs) naming who froze it, why and until when, and writes nothing; a
// retry of a request accepted before the freeze is still answered; rollbacks
// and convergence go on; a create that overrides the freeze goes through and
// records it; a freeze with an end lifts itself; the freeze is stored
// (deploy_freezes: the nats CLI shows it) and survives a coordinator restart;
// deployctl freeze / freezes / unfreeze / deploy --override-freeze / get.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../scripts/lib/tools.js";
import type { EnvironmentFreeze__Output } from "../services/shared/src/gen/deploy/v1/EnvironmentFreeze.js";
import type { ListFreezesResponse__Output } from "../services/shared/src/gen/deploy/v1/ListFreezesResponse.js";
import { convergedTo, grpcError, type DeployClient, type DeploymentMsg } from "./helpers/client.js";
import { runCli, shown, deploymentIdOf, type CliResult } from "./helpers/deployctl.js";
import { freePort } from "./helpers/nats-server.js";
import { metricValue } from "./helpers/metrics.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;
const ANON = "anonymous (development mode)";

describe("environment freezes", () => {
  let stack: Stack;
  let client: DeployClient;
  let addr = "";
  let metricsPort = 0;
  const freeze = (req: object): Promise<EnvironmentFreeze__Output> => client.call("FreezeEnvironment", { environment: "prod", ...req });
  const unfreeze = (environment = "prod", name = ""): Promise<EnvironmentFreeze__Output> => client.call("UnfreezeEnvironment", { environment, name });
  const freezes = async (): Promise<EnvironmentFreeze__Output[]> => (await client.call<ListFreezesResponse__Output>("ListFreezes", {})).freezes ?? [];
  const create = (version: string, more: object = {}): Promise<DeploymentMsg> =>
    client.create({ requestId: rid(version), app: "web", environment: "prod", changeset: { version }, strategy: { maxConcurrency: 3 }, ...more });
  /** Created (retried while the pair is still held by the one before) and followed to its end. */
  const deploy = async (version: string, more: object = {}): Promise<DeploymentMsg> => client.waitTerminal((await until(`${version} accepted`, () => create(version, more).catch(() => undefined))).id!);
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DEPLOY_COORDINATOR: addr, DEPLOYCTL_RETRY_BUDGET_MS: "2000", NO_COLOR: "1" } });
  const gauge = (name: string): Promise<number | undefined> => metricValue(metricsPort, name);
  const requestIds = async (): Promise<string[]> => (await client.list({ pageSize: 200 })).deployments.map((d) => d.requestId ?? "");

  beforeAll(async () => {
    metricsPort = await freePort();
    stack = await Stack.start({ agents: ["a1", "a2"], coordinatorEnv: { DEPLOY_METRICS_LISTEN: `127.0.0.1:${metricsPort}` } });
    addr = stack.address;
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("bad freezes are INVALID_ARGUMENT naming the field, and freeze nothing", async () => {
    const noReason = await grpcError(freeze({ reason: "  " }));
    expect(noReason.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noReason.details).toMatch(/^reason: is required/);
    const both = await grpcError(freeze({ reason: "x", duration: { seconds: "60" }, until: { seconds: String(Math.floor(Date.now() / 1000) + 3600) } }));
    expect(both.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(both.details).toMatch(/^duration: give a duration or an end/);
    const past = await grpcError(freeze({ reason: "x", until: { seconds: "1000" } }));
    expect(past.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(past.details).toMatch(/^until: must be in the future/);
    const long = await grpcError(freeze({ reason: "x", duration: { seconds: String(400 * 86400) } }));
    expect(long.details).toMatch(/^duration: must end within 366 days/);
    const env = await grpcError(freeze({ environment: "pr od", reason: "x" }));
    expect(env.details).toMatch(/^environment: /);
    expect(await freezes()).toEqual([]);
  });

  let v1 = "";
  let accepted: DeploymentMsg | undefined;

  it("a frozen environment refuses new deployments and their dry runs, naming the freeze, and writes nothing", async () => {
    const d1 = await deploy("v1");
    expect(d1.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    v1 = d1.id!;
    expect((await deploy("v2")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // Accepted before the freeze; its retry during the freeze is answered below.
    accepted = await create("v3");
    await client.waitTerminal(accepted.id!);

    const f = await freeze({ reason: "incident INC-204", duration: { seconds: "3600" } });
    expect(f).toMatchObject({ environment: "prod", frozen: true, reason: "incident INC-204", by: ANON });
    const untilMs = Number(f.until?.seconds) * 1000;
    expect(untilMs - Date.now()).toBeGreaterThan(3500_000);
    expect(untilMs - Date.now()).toBeLessThanOrEqual(3600_000);
    expect((await freezes()).map((x) => x.environment)).toEqual(["prod"]);
    expect(await gauge("deploy_environments_frozen")).toBe(1);

    const before = await requestIds();
    const requestId = rid("frozen");
    const err = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v4" } }));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/^environment prod is frozen by anonymous \(development mode\) at \S+ until \S+: incident INC-204; rollbacks and convergence still run; to deploy anyway give freeze_override_reason/);
    // The trailer tells a freeze from any other refusal.
    expect(err.metadata.get("environment-frozen")).toEqual(["prod"]);
    const dry = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v4" }, validateOnly: true }));
    expect(dry.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(dry.details).toContain("incident INC-204");
    expect(await requestIds()).toEqual(before);

    // A retry of a request accepted before the freeze: the same deployment.
    const again = await client.create({ requestId: accepted.requestId!, app: "web", environment: "prod", changeset: { version: "v3" }, strategy: { maxConcurrency: 3 } });
    expect(again.id).toBe(accepted.id);
  });

  it("rollbacks and convergence still run while frozen", async () => {
    const rb = await until("a rollback accepted", () => client.rollback({ requestId: rid("rollback"), app: "web", environment: "prod", to: v1 }).catch(() => undefined));
    expect((await client.waitTerminal(rb.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // A new agent joins: convergence brings it to the desired release (the rollback's).
    await stack.startAgent("a3");
    const converged = await convergedTo(client, "a3", rb.id!);
    expect(converged.changeset?.version).toBe("v1");
  });

  it("freeze_override_reason goes through and records the override with the freeze", async () => {
    const d = await until("the override accepted", () => create("v5", { freezeOverrideReason: "hotfix for INC-204" }).catch(() => undefined));
    expect(d.freezeOverride).toMatchObject({ reason: "hotfix for INC-204", freeze: { environment: "prod", frozen: true, reason: "incident INC-204", by: ANON } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.freezeOverride?.reason).toBe("hotfix for INC-204");
    const got = await cli(["get", d.id!]);
    expect(got.stdout, shown(got)).toMatch(/^ {2}deployed through a freeze \(frozen by anonymous \(development mode\) at \S+ until \S+ \(\S+ left\): incident INC-204\), by anonymous \(development mode\): hotfix for INC-204$/m);
  });

  it("the freeze is stored (the nats CLI shows it) and a restarted coordinator keeps it; unfreeze lifts it", async () => {
    const kv = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(toolPath("nats"), ["--server", stack.nats.url, "kv", "get", "--raw", "deploy_freezes", "prod"], (err, stdout) => resolve({ code: err ? 1 : 0, stdout })),
    );
    expect(kv.code).toBe(0);
    expect(JSON.parse(kv.stdout)).toMatchObject({ schema: "deploy.freeze.v1", environment: "prod", frozen: true, reason: "incident INC-204", by: { name: ANON, via: "none" } });

    await stack.coordinators[0]!.kill("SIGKILL");
    const second = await stack.startCoordinator({ DEPLOY_METRICS_LISTEN: "" });
    addr = stack.coordinatorAddress(second);
    client = stack.client(addr);
    expect((await freezes()).map((x) => x.reason)).toEqual(["incident INC-204"]);
    const err = await grpcError(create("v6"));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toContain("incident INC-204");

    const off = await unfreeze();
    expect(off).toMatchObject({ environment: "prod", frozen: false, by: ANON });
    expect(await freezes()).toEqual([]);
    // An override of nothing (not frozen) records nothing.
    const v6 = await deploy("v6", { freezeOverrideReason: "nothing to override" });
    expect(v6.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(v6.freezeOverride).toBeFalsy();
    // Again: nothing changes.
    expect((await unfreeze()).frozen).toBe(false);
  });

  it("a freeze with an end lifts itself", async () => {
    await freeze({ reason: "a short window", duration: { seconds: "2" } });
    expect((await grpcError(create("v7"))).code).toBe(grpc.status.FAILED_PRECONDITION);
    await new Promise((r) => setTimeout(r, 2100));
    expect(await freezes()).toEqual([]);
    expect((await deploy("v7")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });

  it("a named freeze with weekly windows refuses only within them, beside the unnamed one; unfreeze by name", async () => {
    const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const dayIn = (days: number): string => DAYS[(new Date(Date.now() + days * 86_400_000).getUTCDay() + 6) % 7]!;
    // Today and tomorrow (UTC), whatever the time: in force now. Three days on, for an hour: not now.
    const now = await freeze({ name: "now", reason: "this window", windows: [`${dayIn(0)} 00:00-${dayIn(2)} 00:00`] });
    expect(now).toMatchObject({ name: "now", windows: [`${dayIn(0)} 00:00-${dayIn(2)} 00:00`], timeZone: "UTC", inForce: true });
    const later = await freeze({ name: "later", reason: "a later window", windows: [`${dayIn(3)} 00:00-${dayIn(3)} 01:00`], timeZone: "Europe/Berlin" });
    expect(later).toMatchObject({ name: "later", timeZone: "Europe/Berlin", inForce: false });
    expect((await freezes()).map((f) => [f.name, f.inForce])).toEqual([["later", false], ["now", true]]);
    const err = await grpcError(create("v8"));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/^environment prod is frozen \("now", every \w{3} 00:00-\w{3} 00:00 \(UTC\)\) by anonymous \(development mode\) at \S+ until unfrozen: this window;/);
    const off = await unfreeze("prod", "now");
    expect(off).toMatchObject({ name: "now", frozen: false });
    // "later" holds but is not in force: deployments go through.
    expect((await deploy("v8")).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect((await freezes()).map((f) => f.name)).toEqual(["later"]);
    expect((await grpcError(freeze({ name: "bad", reason: "x", windows: ["fri 15:00-08:00"] }))).details).toMatch(/^windows\[0\]: "fri 15:00-08:00": give a day on both sides/);
    expect((await grpcError(freeze({ name: "bad", reason: "x", windows: ["18:00-08:00"], timeZone: "Mars/Olympus" }))).details).toMatch(/^time_zone: "Mars\/Olympus" is not an IANA time zone/);
    expect((await grpcError(freeze({ name: "bad", reason: "x", timeZone: "UTC" }))).details).toMatch(/^time_zone: only with windows/);
    await unfreeze("prod", "later");
    expect(await freezes()).toEqual([]);
  });

  it("deployctl freeze, freezes, deploy (refused, exit 4; --override-freeze), unfreeze", async () => {
    const usage = await cli(["freeze", "prod"]);
    expect(usage.code, shown(usage)).toBe(2);
    expect(usage.stderr).toMatch(/--reason is required/);
    const bad = await cli(["freeze", "prod", "--reason", "x", "--for", "soon"]);
    expect(bad.code, shown(bad)).toBe(2);
    expect(bad.stderr).toMatch(/is not a duration such as 30m, 2h or 3d/);

    const f = await cli(["freeze", "prod", "--reason", "year-end change freeze", "--for", "3d"]);
    expect(f.code, shown(f)).toBe(0);
    expect(f.stdout).toMatch(/^prod is frozen by anonymous \(development mode\) at \S+ until \S+ \(7[12]h\d+m left\): year-end change freeze\.$/m);
    expect(f.stdout).toContain("Lift it with: deployctl unfreeze prod");
    const list = await cli(["freezes"]);
    expect(list.code, shown(list)).toBe(0);
    expect(list.stdout).toMatch(/^ENVIRONMENT\s+NAME\s+IN FORCE\s+WHEN\s+FROZEN BY\s+SINCE\s+UNTIL\s+REASON$/m);
    expect(list.stdout).toMatch(/^prod\s+-\s+yes\s+always\s+anonymous \(development mode\)\s+\S+Z\s+\S+Z \(\S+ left\)\s+year-end change freeze$/m);
    const json = await cli(["freezes", "--json"]);
    const doc = JSON.parse(json.stdout) as { freezes: { environment: string; frozen: boolean; reason: string; at: string; until: string }[] };
    expect(doc.freezes).toEqual([expect.objectContaining({ environment: "prod", frozen: true, reason: "year-end change freeze" })]);
    expect(doc.freezes[0]!.until).toMatch(/Z$/);

    const refused = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v8"]);
    // 4: frozen, nothing created (a pipeline may skip its deploy on it).
    expect(refused.code, shown(refused)).toBe(4);
    expect(refused.stderr).toMatch(/environment prod is frozen by .*: year-end change freeze/);
    const through = await until("the override accepted", async () => {
      const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v8", "--override-freeze", "security patch CVE-1"]);
      return r.code === 0 ? r : undefined;
    });
    const got = await cli(["get", deploymentIdOf(through)]);
    expect(got.stdout).toMatch(/deployed through a freeze \(frozen by .*: year-end change freeze\), by .*: security patch CVE-1$/m);

    const weekly = await cli(["freeze", "prod", "--name", "nights", "--window", "Sat 22:00 - Sun 23:00", "--window", "wed 01:00-wed 02:00", "--tz", "Europe/Berlin", "--reason", "batch jobs"]);
    expect(weekly.code, shown(weekly)).toBe(0);
    expect(weekly.stdout).toMatch(/^prod is frozen \("nights", every sat 22:00-sun 23:00, wed 01:00-wed 02:00 \(Europe\/Berlin\)\) by .* until unfrozen: batch jobs \(in force now: (yes|no)\)\.$/m);
    expect(weekly.stdout).toContain("Lift it with: deployctl unfreeze prod --name nights");
    const table = await cli(["freezes"]);
    expect(table.stdout).toMatch(/^ENVIRONMENT\s+NAME\s+IN FORCE\s+WHEN\s+FROZEN BY\s+SINCE\s+UNTIL\s+REASON$/m);
    expect(table.stdout).toMatch(/^prod\s+nights\s+(yes|no)\s+every sat 22:00-sun 23:00, wed 01:00-wed 02:00 \(Europe\/Berlin\)\s+/m);
    const tzOnly = await cli(["freeze", "prod", "--reason", "x", "--tz", "UTC"]);
    expect(tzOnly.code).toBe(2);
    expect(tzOnly.stderr).toMatch(/--tz only with --window/);

    const un = await cli(["unfreeze", "prod"]);
    expect(un.code, shown(un)).toBe(0);
    expect(un.stdout).toMatch(/^prod is lifted \(it was frozen by anonymous \(development mode\) at .*: year-end change freeze\)$/m);
    expect(un.stdout).toMatch(/^prod is still frozen \("nights", .*\) by .*: batch jobs \((not )?in force now\); lift it with: deployctl unfreeze prod --name nights$/m);
    const unNights = await cli(["unfreeze", "prod", "--name", "nights"]);
    expect(unNights.stdout).toMatch(/^prod's freeze "nights" is lifted \(it was .*\)\ndeployments to prod are accepted again$/m);
    const un2 = await cli(["unfreeze", "prod"]);
    expect(un2.stdout.trim()).toBe("prod was not frozen: nothing changed");
    expect((await cli(["freezes"])).stdout.trim()).toBe("no environment is frozen");
  });

  it("deployctl status: the desired release, what runs, the freezes and the agents by release status", async () => {
    const d = await until("a canary deployment accepted", () => create("v9", { strategy: { maxConcurrency: 3, canary: 1 } }).catch(() => undefined));
    await until("awaiting promotion", async () => ((await client.get(d.id!)).awaitingPromotion ? true : undefined));
    try {
      // --pause-running pauses what runs there (the canary deployment waiting for its promote).
      const paused = await cli(["freeze", "prod", "--reason", "status check", "--for", "10m", "--pause-running"]);
      expect(paused.code, shown(paused)).toBe(0);
      expect(paused.stdout).toContain(`paused ${d.id} (web v9): its applies in flight finish, nothing new starts; resume with: deployctl resume ${d.id}`);
      expect((await client.get(d.id!)).paused).toBe(true);
      const r = await cli(["status", "web", "prod"]);
      expect(r.code, shown(r)).toBe(0);
      expect(r.stdout).toMatch(/^web in prod$/m);
      // How long it has been desired: what deploy --from-env --min-soak asks of a promotion.
      expect(r.stdout).toMatch(/^ {2}desired release {2}v8-\S+ \(v8, deployment d-\S+, succeeded \S+, [\d.smh]+ ago\); convergence on$/m);
      expect(r.stdout).toContain(`  running          ${d.id} v9: 1 of 3 target(s) succeeded (paused by anonymous (development mode), awaiting promotion), by anonymous (development mode)`);
      expect(r.stdout).toMatch(/^ {2}frozen {11}yes: new deployments are refused \(rollbacks and convergence still run\)$/m);
      expect(r.stdout).toMatch(/^ {19}frozen by anonymous \(development mode\) at \S+ until \S+ \(\S+ left\): status check$/m);
      expect(r.stdout).toMatch(/^ {2}agents {11}3 registered, 3 live: 2 current, 1 outdated, 0 offline$/m);
      expect(r.stdout).toMatch(/^ {2}outdated {9}a1 \(on v9-\S+\)$/m);
      const json = await cli(["status", "web", "prod", "--json"]);
      const doc = JSON.parse(json.stdout) as { release: { desired: { version: string } }; running: { id: string }[]; freezes: { reason: string }[]; agents: { outdated: string[]; current: string[] } };
      expect(doc.release.desired.version).toBe("v8");
      expect(doc.running.map((x) => x.id)).toEqual([d.id]);
      expect(doc.freezes.map((f) => f.reason)).toEqual(["status check"]);
      expect(doc.agents).toMatchObject({ outdated: ["a1"], current: ["a2", "a3"] });
      const none = await cli(["status", "web", "nowhere"]);
      expect(none.code, shown(none)).toBe(0);
      expect(none.stdout).toMatch(/^ {2}desired release {2}none: no deployment has succeeded here yet$/m);
      expect(none.stdout).toMatch(/^ {2}agents {11}0 registered, 0 live: 0 current, 0 outdated, 0 offline$/m);
    } finally {
      await unfreeze();
    }
    // Cancelled after its canary: a1 stays on v9, and status names the way back.
    await client.cancel(d.id!, "not v9");
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_CANCELLED");
    const left = await cli(["status", "web", "prod"]);
    expect(left.stdout).toContain(`  not reverted     ${d.id} (v9) CANCELLED and left a1 on it: deployctl revert ${d.id}`);
    expect((JSON.parse((await cli(["status", "web", "prod", "--json"])).stdout) as { unreverted: unknown[] }).unreverted).toEqual([{ deploymentId: d.id, state: "CANCELLED", agents: ["a1"] }]);
    const back = await cli(["revert", d.id!]);
    expect(back.code, shown(back)).toBe(0);
    const after = await cli(["status", "web", "prod"]);
    expect(after.stdout).toMatch(/^ {2}agents {11}3 registered, 3 live: 3 current, 0 outdated, 0 offline$/m);
    expect(after.stdout).not.toContain("not reverted");
  });
});
