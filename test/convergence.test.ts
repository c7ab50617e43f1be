// The fleet model end to end (a real nats-server, coordinators and agents
// from dist/): the desired release of an (app, environment) is the last
// deployment that SUCCEEDED; ListAgents shows every agent against it; an
// agent that registers or comes back on another release is brought to it by
// one linked follow-up deployment (once: not when convergence is off for
// the environment, never again after it failed, never twice with two
// coordinators); agents offline at creation are targets, SKIPPED with the
// reason. No timing thresholds: waits are "until", with generous limits,
// and "nothing happened" is checked after a later event that could only
// come after it (a pair's convergences run in the order the agents were
// seen, and a coordinator reads registrations in stream order).
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import type * as grpc from "@grpc/grpc-js";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GetReleaseResponse__Output } from "../services/shared/src/gen/deploy/v1/GetReleaseResponse.js";
import type { ListAgentsResponse__Output } from "../services/shared/src/gen/deploy/v1/ListAgentsResponse.js";
import type { DeployClient, DeploymentMsg } from "./helpers/client.js";
import { runCli, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;

function unary<T>(client: DeployClient, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = client.raw[method] as (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: T) => void) => void;
    fn.call(client.raw, req, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r)));
  });
}

const getRelease = (c: DeployClient, app: string, environment: string): Promise<GetReleaseResponse__Output> => unary(c, "GetRelease", { app, environment });
const listAgents = (c: DeployClient, environment: string): Promise<ListAgentsResponse__Output> => unary(c, "ListAgents", { app: "web", environment });

/** The agent's view in ListAgents: live, and for app web its current release, desired deployment and status. */
async function agentView(c: DeployClient, environment: string, id: string): Promise<{ live: boolean; current: string; desired: string; status: string } | undefined> {
  const a = (await listAgents(c, environment)).agents?.find((x) => x.id === id);
  const r = a?.releases?.find((x) => x.app === "web");
  if (!a || !r) return undefined;
  return { live: a.live ?? false, current: r.current ?? "", desired: r.desired?.deploymentId ?? "", status: r.status ?? "" };
}

/** Every convergence deployment of `agentId` (to any desired release), oldest first. */
async function convergencesOf(c: DeployClient, agentId: string): Promise<DeploymentMsg[]> {
  const { deployments } = await c.list({ pageSize: 200 });
  return deployments.filter((d) => d.convergesTo && d.targets?.[0]?.agentId === agentId).reverse();
}

const terminal = (d: DeploymentMsg | undefined): boolean => ["DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_CANCELLED"].includes(d?.state ?? "");

describe("desired release and convergence", () => {
  let stack: Stack;
  let client: DeployClient;
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DEPLOY_COORDINATOR: stack.address, DEPLOYCTL_RETRY_BUDGET_MS: "2000" } });

  beforeAll(async () => {
    stack = await Stack.start({ coordinatorEnv: { DEPLOY_CONVERGENCE_OFF: "staging" } });
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const deploy = async (version: string, more: { targets?: string[]; environment?: string; maxConcurrency?: number } = {}): Promise<DeploymentMsg> => {
    const d = await client.create({
      requestId: rid(version),
      app: "web",
      environment: more.environment ?? "prod",
      changeset: { version },
      strategy: { maxConcurrency: more.maxConcurrency ?? 3 },
      targets: more.targets ?? [],
    });
    return client.waitTerminal(d.id!);
  };
  const offline = (environment: string, id: string): Promise<unknown> => until(`${id} offline`, async () => (await agentView(client, environment, id))?.live === false, 30_000);
  const desiredIs = (environment: string, id: string): Promise<GetReleaseResponse__Output> =>
    until(`desired release ${id}`, async () => {
      const r = await getRelease(client, "web", environment);
      return r.desired?.deploymentId === id ? r : undefined;
    });
  /** The one convergence deployment of `agentId` to `desiredId`, once terminal. */
  const converged = (agentId: string, desiredId: string): Promise<DeploymentMsg> =>
    until(`a convergence of ${agentId} to ${desiredId}`, async () => {
      const c = (await convergencesOf(client, agentId)).find((d) => d.convergesTo === desiredId);
      return c && terminal(c) ? c : undefined;
    });

  let v1 = "";
  let v3 = "";
  let v4 = "";

  it("a deployment that SUCCEEDED becomes the desired release; one that FAILED does not", async () => {
    const d1 = await deploy("v1");
    expect(d1.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    v1 = d1.id!;
    // Terminal here only once this coordinator noted each target's release
    // (the agents write theirs beside their results): ListAgents shows it at once.
    for (const id of ["a1", "a2", "a3"]) expect((await agentView(client, "prod", id))?.current).toBe(`v1-${v1.slice(-8)}`);
    const r = await desiredIs("prod", v1);
    expect(r.desired).toMatchObject({ app: "web", environment: "prod", deploymentId: v1, version: "v1", release: `v1-${v1.slice(-8)}`, selection: "all", finishedSequence: d1.lastSequence });
    expect(r.desired?.artifact).toBeFalsy();
    expect(r.desired?.previous).toBeFalsy();
    expect(r.history ?? []).toEqual([]);
    expect(r.convergence).toBe(true);

    await stack.control("a1", "fail");
    try {
      // One at a time: a1 fails first, and a2 and a3 are skipped (they stay on v1).
      const d2 = await deploy("v2", { maxConcurrency: 1 });
      expect(d2.state).toBe("DEPLOYMENT_STATE_FAILED");
    } finally {
      await stack.control("a1", "fail", false);
    }
    // Its lock is given back only after a desired release would have been
    // recorded: a deployment accepted now comes after it (checked again below, in the history).
    const d3 = await deploy("v3", { targets: ["a1"] });
    expect(d3.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    v3 = d3.id!;
    const after = await desiredIs("prod", v3);
    expect(after.desired?.selection).toBe("targets");
    expect(after.desired?.previous?.deploymentId).toBe(v1);
    expect((after.history ?? []).map((h) => h.deploymentId)).toEqual([v1]);

    const none = await getRelease(client, "web", "nowhere").then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(none?.details).toMatch(/no deployment of app web to environment nowhere has succeeded yet/);
  });

  it("ListAgents shows each agent's current and desired release: current, outdated, offline", async () => {
    // v3 went to a1 only (an explicit list): a2 and a3 are live on v1.
    await stack.agent("a3").kill("SIGKILL");
    await offline("prod", "a3");
    expect(await agentView(client, "prod", "a1")).toEqual({ live: true, current: `v3-${v3.slice(-8)}`, desired: v3, status: "RELEASE_STATUS_CURRENT" });
    expect(await agentView(client, "prod", "a2")).toEqual({ live: true, current: `v1-${v1.slice(-8)}`, desired: v3, status: "RELEASE_STATUS_OUTDATED" });
    expect(await agentView(client, "prod", "a3")).toEqual({ live: false, current: `v1-${v1.slice(-8)}`, desired: v3, status: "RELEASE_STATUS_OFFLINE" });
    // A deployment to a hand-picked list spreads to no one: a2 stays where it is.
    expect(await convergencesOf(client, "a2")).toEqual([]);

    // deployctl shows the same: one row per (agent, app), and the release history.
    const agents = await cli(["agents", "--app", "web", "--env", "prod"]);
    expect(agents.code, agents.stderr).toBe(0);
    const [header, ...rows] = agents.stdout.trimEnd().split("\n");
    expect(header).toMatch(/\bAPP\s+CURRENT\s+DESIRED\s+STATUS$/);
    const row = (id: string): string => rows.find((r) => r.startsWith(`${id} `)) ?? "";
    expect(row("a1")).toMatch(new RegExp(`\\sweb\\s+v3-${v3.slice(-8)}\\s+v3-${v3.slice(-8)}\\s+current$`));
    expect(row("a2")).toMatch(new RegExp(`\\sweb\\s+v1-${v1.slice(-8)}\\s+v3-${v3.slice(-8)}\\s+outdated$`));
    expect(row("a3")).toMatch(/\sno\s.*\soffline$/);
    const releases = await cli(["releases", "web", "prod"]);
    expect(releases.code, releases.stderr).toBe(0);
    const lines = releases.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^web in prod: desired release v3-${v3.slice(-8)} \\(deployment ${v3}, succeeded [\\d.]+s ago\\); convergence on$`));
    expect(lines[2]).toMatch(new RegExp(`^\\*\\s+v3-${v3.slice(-8)}\\s+v3\\s+none \\(executable\\)\\s+${v3}\\s+\\S+Z\\s+targets$`));
    expect(lines[3]).toMatch(new RegExp(`^\\s+v1-${v1.slice(-8)}\\s+v1\\s+.*\\sall$`));
    const doc = JSON.parse((await cli(["releases", "web", "prod", "--json"])).stdout) as { desired: { deploymentId: string; previous: { deploymentId: string } }; history: { deploymentId: string }[]; convergence: boolean };
    expect([doc.desired.deploymentId, doc.desired.previous.deploymentId, doc.history.map((h) => h.deploymentId), doc.convergence]).toEqual([v3, v1, [v1], true]);
    const missing = await cli(["releases", "web", "nowhere"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^deployctl: NOT_FOUND: no deployment of app web to environment nowhere has succeeded yet/);
  });

  it("an agent offline during a deployment is a SKIPPED target; when it comes back it is converged once, by a linked deployment", async () => {
    const d4 = await deploy("v4");
    v4 = d4.id!;
    expect(d4.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(d4.message).toBe("2 of 3 target(s) succeeded, 1 offline (skipped; converges when back)");
    const a3 = d4.targets?.find((t) => t.agentId === "a3");
    expect(a3?.state).toBe("TARGET_STATE_SKIPPED");
    expect(a3?.message).toMatch(/^offline at creation: last heartbeat \d{4}-\d\d-\d\dT/);
    expect(await stack.startsOf("a3", v4)).toBe(0);
    await desiredIs("prod", v4);
    expect((await agentView(client, "prod", "a3"))?.status).toBe("RELEASE_STATUS_OFFLINE");

    await stack.startAgent("a3");
    const c = await converged("a3", v4);
    expect(c.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(c).toMatchObject({ requestId: `converge.web.prod.a3.${v4}`, requestedBy: "convergence", convergesTo: v4, app: "web", environment: "prod" });
    expect(c.changeset?.version).toBe("v4");
    expect(c.targets?.map((t) => t.agentId)).toEqual(["a3"]);
    expect(c.requestedByNote).toContain(v4);
    // Its deploy executable ran once for it, with the desired version.
    const runs = (await stack.runs("a3")).filter((r) => r.phase === "start" && r.deploymentId === c.id);
    expect(runs.map((r) => r.rest)).toEqual(["v4"]);
    // On the desired release now (the same version, installed by the convergence); the desired release is still v4.
    await until("a3 current", async () => (await agentView(client, "prod", "a3"))?.status === "RELEASE_STATUS_CURRENT");
    expect((await getRelease(client, "web", "prod")).desired?.deploymentId).toBe(v4);
    // The audit log says so: its created event names who and why; deployctl get shows the link.
    const created = (await client.events(c.id!))[0]!;
    expect(created.message).toContain("requested by convergence");
    const got = await cli(["get", c.id!]);
    expect(got.stdout).toContain(`convergence: brings a3 to the desired release of ${v4}`);
  });

  it("a new agent registering after the deployment gets the desired release", async () => {
    await stack.startAgent("a4");
    const c = await converged("a4", v4);
    expect(c.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a4", c.id!)).toBe(1);
    await until("a4 current", async () => (await agentView(client, "prod", "a4"))?.status === "RELEASE_STATUS_CURRENT");
  });

  it("a failed convergence is not retried: not when the agent comes back again, not ever for that desired release", async () => {
    await stack.control("a5", "fail");
    await stack.startAgent("a5");
    const c = await converged("a5", v4);
    expect(c.state).toBe("DEPLOYMENT_STATE_FAILED");
    await stack.control("a5", "fail", false);
    // It comes back again (a restart), still on no release…
    await stack.agent("a5").kill("SIGKILL");
    await offline("prod", "a5");
    await stack.startAgent("a5");
    await until("a5 live", async () => (await agentView(client, "prod", "a5"))?.live === true);
    // …then a6 registers: its convergence comes after a5's turn in the queue.
    await stack.startAgent("a6");
    expect((await converged("a6", v4)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect((await convergencesOf(client, "a5")).map((d) => d.id)).toEqual([c.id]);
    expect((await stack.runs("a5")).filter((r) => r.phase === "start").length).toBe(1);
    expect((await agentView(client, "prod", "a5"))?.status).toBe("RELEASE_STATUS_OUTDATED");
  });

  it("convergence off for an environment: an agent that registers there is left alone, and offline targets fail the deployment", async () => {
    await stack.startAgent("s1", { environment: "staging" });
    await stack.startAgent("s2", { environment: "staging" });
    const d = await deploy("s-v1", { environment: "staging" });
    expect(d.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const r = await desiredIs("staging", d.id!);
    expect(r.convergence).toBe(false);
    await stack.startAgent("s3", { environment: "staging" });
    await until("s3 registered", async () => (await agentView(client, "staging", "s3"))?.live === true);
    // A later registration elsewhere is converged: s3's was seen before it.
    await stack.startAgent("a7");
    expect((await converged("a7", v4)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await convergencesOf(client, "s3")).toEqual([]);
    expect(await agentView(client, "staging", "s3")).toMatchObject({ status: "RELEASE_STATUS_OUTDATED", current: "", desired: d.id });

    await stack.agent("s2").kill("SIGKILL");
    await offline("staging", "s2");
    const partial = await deploy("s-v2", { environment: "staging" });
    expect(partial.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(partial.message).toBe("2 of 3 target(s) succeeded, 1 offline (skipped; convergence is off in staging)");
    expect((await getRelease(client, "web", "staging")).desired?.deploymentId).toBe(d.id);
  });

  it("two coordinators make one convergence deployment", async () => {
    await stack.startCoordinator();
    await stack.agent("a1").kill("SIGKILL");
    await offline("prod", "a1");
    const d8 = await deploy("v8");
    expect(d8.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await desiredIs("prod", d8.id!);
    await stack.startAgent("a1");
    const c = await converged("a1", d8.id!);
    expect(c.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // A later registration converges after a1's turn on both coordinators.
    await stack.startAgent("a8");
    expect((await converged("a8", d8.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect((await convergencesOf(client, "a1")).filter((x) => x.convergesTo === d8.id).map((x) => x.id)).toEqual([c.id]);
    expect(await stack.startsOf("a1", c.id!)).toBe(1);
    // Both may have asked (at the same moment); they got the same deployment.
    const asked = stack.coordinators.flatMap((p) =>
      p
        .logs()
        .split("\n")
        .filter((l) => l.includes("convergence deployment requested") && l.includes('"agentId":"a1"'))
        .map((l) => /"deploymentId":"([^"]+)"/.exec(l)?.[1]),
    );
    expect(asked.length).toBeGreaterThan(0);
    expect([...new Set(asked)]).toEqual([c.id]);
  });
});

describe("an agent whose entry with the new release is written late", () => {
  it("is shown on the deployment's release as soon as the deployment is terminal: its coordinator noted it from the result", { timeout: 60_000 }, async () => {
    // The agent reports its result at once and writes its entry 5 s later.
    const stack = await Stack.start({ agents: ["a1"], agentEnv: { DEPLOY_AGENT_FAULT_DELAY_RELEASE_WRITE_MS: "5000" } });
    try {
      const client = stack.client();
      const d = await client.create({ requestId: rid("late-entry"), app: "web", environment: "prod", changeset: { version: "v7" }, targets: [] });
      const done = await client.waitTerminal(d.id!);
      expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(await agentView(client, "prod", "a1")).toMatchObject({ live: true, current: `v7-${d.id!.slice(-8)}` });
    } finally {
      await stack.stop();
    }
  });
});

describe("an agent stopped before the heartbeat that writes its new release", () => {
  it("is shown on it by every coordinator at once, writes it at a graceful stop, and after a crash takes it from its journal at its restart", { timeout: 90_000 }, async () => {
    // The agent writes its entry with a new release at its next heartbeat; the fault holds that write for a minute.
    const hold = { DEPLOY_AGENT_FAULT_DELAY_RELEASE_WRITE_MS: "60000" };
    const stack = await Stack.start({ agents: [] });
    const nc = await connect({ servers: stack.nats.url });
    try {
      const entry = async (): Promise<string | undefined> => {
        const e = await (await new Kvm(nc).open("deploy_agents")).get("a1");
        return e?.operation === "PUT" ? (e.json<{ currentReleases: Record<string, string> }>().currentReleases["web"] ?? "") : undefined;
      };
      await stack.startAgent("a1", { env: hold });
      const client = stack.client();
      const second = stack.client(stack.coordinatorAddress(await stack.startCoordinator()));
      const deploy = async (version: string): Promise<string> => {
        const d = await client.create({ requestId: rid(`stopped-${version}`), app: "web", environment: "prod", changeset: { version }, targets: [] });
        expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
        return `${version}-${d.id!.slice(-8)}`;
      };

      // SIGKILL before the write: the entry is behind; the restart reads the journal.
      const v1 = await deploy("v1");
      expect(await entry()).toBe("");
      // The coordinator that did not fold it reads the new desired release's deployment and notes its agents.
      await until("a1 on v1 at the second coordinator", async () => (await agentView(second, "prod", "a1"))?.current === v1);
      expect(await entry()).toBe("");
      await stack.agent("a1").kill("SIGKILL");
      await stack.startAgent("a1", { env: hold });
      expect(await entry()).toBe(v1);
      expect(stack.agent("a1").logs()).toContain("this agent's entry is behind its journal");

      // SIGTERM before the write: written as the agent stops.
      const v2 = await deploy("v2");
      expect(await entry()).toBe(v1);
      await stack.agent("a1").kill("SIGTERM");
      await stack.agent("a1").exited();
      expect(await entry()).toBe(v2);

      // A coordinator started after both deployments shows the agent on v2 once it is back.
      await stack.startAgent("a1", { env: {} });
      const third = stack.client(stack.coordinatorAddress(await stack.startCoordinator()));
      await until("a1 on v2 at the third coordinator", async () => (await agentView(third, "prod", "a1"))?.current === v2);
      expect(await agentView(third, "prod", "a1")).toMatchObject({ live: true, status: "RELEASE_STATUS_CURRENT" });
    } finally {
      await nc.close();
      await stack.stop();
    }
  });
});

describe("a crash between the finished event and the desired release", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ coordinator: false, agents: [] });
    // This coordinator kills itself (SIGKILL) after a deployment's
    // deployment.finished SUCCEEDED event, before recording its release.
    await stack.startCoordinator({ DEPLOY_COORDINATOR_FAULT_KILL_BEFORE_DESIRED: "1" });
    await Promise.all(["a1", "a2"].map((id) => stack.startAgent(id)));
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("is repaired by the next coordinator's sweep: the lock is kept until the release is recorded", async () => {
    const first = stack.coordinators[0]!;
    const d = await stack.client().create({ requestId: rid("crash"), app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 2 } });
    await first.exited();
    expect(first.logs()).not.toContain("desired release recorded");
    const second = await stack.startCoordinator();
    const client = stack.client(stack.coordinatorAddress(second));
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const r = await until("the desired release", async () => {
      const x = await getRelease(client, "web", "prod");
      return x.desired?.deploymentId === d.id ? x : undefined;
    });
    expect(r.desired?.version).toBe("v1");
    // Recorded before the pair's next deployment could exist: it is that one's previous.
    const next = await client.create({ requestId: rid("after-crash"), app: "web", environment: "prod", changeset: { version: "v2" }, strategy: { maxConcurrency: 2 } });
    expect((await client.waitTerminal(next.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const after = await until("the next desired release", async () => {
      const x = await getRelease(client, "web", "prod");
      return x.desired?.deploymentId === next.id ? x : undefined;
    });
    expect(after.desired?.previous?.deploymentId).toBe(d.id);
  });
});
