// Choosing targets by label selector, max_concurrency / max_failures as
// percentages, and the verdict rule (any failed target fails the
// deployment), end to end: a real nats-server, coordinator and agents
// started with labels (DEPLOY_AGENT_LABELS), the gRPC API and the built
// deployctl.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CreateDeploymentRequestInput } from "../services/shared/src/proto.js";
import { grpcError, type DeploymentEventMsg, type DeploymentMsg } from "./helpers/client.js";
import { runCli } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;

const targetStates = (d: DeploymentMsg): Record<string, string> => Object.fromEntries((d.targets ?? []).map((t): [string, string] => [t.agentId ?? "", t.state ?? ""]));

/** Most targets in flight at once, replaying the dispatch decisions and the outcomes in stream order. */
function maxInFlight(events: DeploymentEventMsg[]): number {
  const inFlight = new Set<string>();
  let most = 0;
  for (const e of events) {
    // targets.dispatched, or a deployment.created that dispatched its first targets.
    for (const a of e.agentIds ?? []) inFlight.add(a);
    if (e.type === "target.dispatched") inFlight.add(e.agentId ?? "");
    if (["target.result", "target.timed_out", "target.cancelled", "target.declined"].includes(e.type ?? "")) inFlight.delete(e.agentId ?? "");
    most = Math.max(most, inFlight.size);
  }
  return most;
}

const LABELS: Record<string, Record<string, string>> = {
  a1: { role: "web", zone: "a" },
  a2: { role: "web", zone: "b" },
  a3: { role: "db", zone: "a" },
  // Stopped by the last test: a selector matching only offline agents.
  a4: { role: "web", zone: "c" },
};

describe("label selectors, percentages and the verdict", () => {
  let stack: Stack;
  let work: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "targeting-test-"));
    stack = await Stack.start({ agents: [] });
    await Promise.all(Object.entries(LABELS).map(([id, labels]) => stack.startAgent(id, { env: { DEPLOY_AGENT_LABELS: JSON.stringify(labels) } })));
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address, TMPDIR: work };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const create = (req: CreateDeploymentRequestInput): Promise<DeploymentMsg> => stack.client().create({ app: "web", environment: "prod", changeset: { version: "v1" }, ...req });

  it("a selector picks 2 of the 4 agents; the deployment records it in canonical form and only those two apply", async () => {
    const client = stack.client();
    const requestId = rid("sel");
    const d = await create({ requestId, selector: " zone in (b, a) , role = web" });
    expect(d.selector).toBe("role=web,zone in (a,b)");
    expect((d.targets ?? []).map((t) => t.agentId)).toEqual(["a1", "a2"]);
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.selector).toBe("role=web,zone in (a,b)");
    expect(targetStates(done)).toEqual({ a1: "TARGET_STATE_SUCCEEDED", a2: "TARGET_STATE_SUCCEEDED" });
    for (const a of ["a1", "a2"]) expect(await stack.startsOf(a, d.id!)).toBe(1);
    for (const a of ["a3", "a4"]) expect(await stack.startsOf(a, d.id!)).toBe(0);
    // The audit log's first event says how the targets were chosen; listings carry it too.
    const created = (await client.events(d.id!))[0]!;
    expect(created.type).toBe("deployment.created");
    expect(created.message).toBe("web@v1 to 2 target(s) in prod (selector role=web,zone in (a,b)), requested by anonymous (development mode); dispatched 1 target(s): a1");
    const listed = (await client.list({ app: "web", environment: "prod", pageSize: 200 })).deployments.find((x) => x.id === d.id);
    expect(listed?.selector).toBe("role=web,zone in (a,b)");

    // The same request spelled another way is the same request; another selector is not.
    expect((await create({ requestId, selector: "role==web,zone in (a,b)" })).id).toBe(d.id);
    const other = await grpcError(create({ requestId, selector: "role=web" }));
    expect(other.code).toBe(grpc.status.ALREADY_EXISTS);
  });

  it("a selector matching no agent is FAILED_PRECONDITION naming the selector, and creates nothing", async () => {
    const client = stack.client();
    const before = (await client.list({ pageSize: 200 })).deployments.length;
    const err = await grpcError(create({ requestId: rid("none"), selector: "role=web,zone=mars" }));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toBe('selector "role=web,zone=mars" matches no agent registered for app web in environment prod (4 registered)');
    expect((await client.list({ pageSize: 200 })).deployments.length).toBe(before);
  });

  it("a selector with explicit targets, or one that does not parse, is INVALID_ARGUMENT naming selector (and the position)", async () => {
    const both = await grpcError(create({ requestId: rid("both"), selector: "role=web", targets: ["a1"] }));
    expect(both.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(both.details).toBe("selector: give targets or a selector, not both");
    expect(both.metadata.get("field")).toEqual(["selector"]);
    const bad = await grpcError(create({ requestId: rid("bad"), selector: "role=web,zone in a" }));
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toBe('selector: at position 18: expected "(" after "in", found "a"');
    expect(bad.metadata.get("field")).toEqual(["selector"]);
  });

  it('max_concurrency "50%" of 3 targets dispatches 2 at a time; max_failures "34%" (1) lets the rollout go on past one failure, and the deployment FAILS', async () => {
    const client = stack.client();
    await stack.control("a1", "fail");
    try {
      const d = await create({ requestId: rid("pct"), targets: ["a1", "a2", "a3"], strategy: { maxConcurrencyPercent: "50%", maxFailuresPercent: "34%" } });
      // The resolved counts are in force; the percentages are kept beside them.
      expect(d.strategy).toMatchObject({ maxConcurrency: 2, maxConcurrencyPercent: "50%", maxFailures: 1, maxFailuresPercent: "34%" });
      const done = await client.waitTerminal(d.id!);
      const events = await client.events(d.id!);
      // The first two with the creation, the third when a slot frees.
      const dispatches = events.filter((e) => (e.agentIds ?? []).length > 0 || e.type === "target.dispatched");
      expect(dispatches[0]).toMatchObject({ type: "deployment.created", agentIds: ["a1", "a2"] });
      expect(dispatches.flatMap((e) => (e.type === "target.dispatched" ? [e.agentId] : e.agentIds))).toEqual(["a1", "a2", "a3"]);
      expect(maxInFlight(events)).toBe(2);
      expect(targetStates(done)).toEqual({ a1: "TARGET_STATE_FAILED", a2: "TARGET_STATE_SUCCEEDED", a3: "TARGET_STATE_SUCCEEDED" });
      expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
      expect(done.message).toBe("2 of 3 target(s) succeeded, 1 failed (rollout continued: within max_failures 1)");
      expect(events.some((e) => e.type === "deployment.halted")).toBe(false);
    } finally {
      await stack.control("a1", "fail", false);
    }
  });

  it("percentages out of range, or given with the count, are INVALID_ARGUMENT naming the field", async () => {
    for (const [strategy, field] of [
      [{ maxConcurrencyPercent: "0%" }, "strategy.max_concurrency_percent"],
      [{ maxFailuresPercent: "150%" }, "strategy.max_failures_percent"],
      [{ maxConcurrency: 2, maxConcurrencyPercent: "50%" }, "strategy.max_concurrency_percent"],
    ] as const) {
      const err = await grpcError(create({ requestId: rid("pct-bad"), strategy }));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(new RegExp(`^${field.replace(/\./g, "\\.")}: `));
      expect(err.metadata.get("field")).toEqual([field]);
    }
  });

  it("two targets that both fail with max_failures 2: both run, the deployment is FAILED and deployctl exits 1", async () => {
    await stack.control("a1", "fail");
    await stack.control("a3", "fail");
    try {
      const r = await runCli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v-fail", "--targets", "a1,a3", "--max-failures", "2"], { env });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toContain("FAILED: 0 of 2 target(s) succeeded, 2 failed (rollout continued: within max_failures 2)");
      const id = /deployment (d-[A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
      const d = await stack.client().get(id);
      expect(d.state).toBe("DEPLOYMENT_STATE_FAILED");
      expect(targetStates(d)).toEqual({ a1: "TARGET_STATE_FAILED", a3: "TARGET_STATE_FAILED" });
      for (const a of ["a1", "a3"]) expect(await stack.startsOf(a, id)).toBe(1);
    } finally {
      await stack.control("a1", "fail", false);
      await stack.control("a3", "fail", false);
    }
  });

  it("deployctl deploy --selector --max-concurrency 50% --max-failures 0%: the selector and the percentages reach the deployment; exit 0", async () => {
    const r = await runCli(
      ["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v-sel", "--selector", "role=web,zone in (a,b)", "--max-concurrency", "50%", "--max-failures", "0%", "--json"],
      { env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { deployment: { id: string; state: string; selector: string; strategy: Record<string, unknown>; targets: { agentId: string }[] } };
    expect(doc.deployment.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(doc.deployment.selector).toBe("role=web,zone in (a,b)");
    expect(doc.deployment.targets.map((t) => t.agentId)).toEqual(["a1", "a2"]);
    expect(doc.deployment.strategy).toMatchObject({ maxConcurrency: 1, maxConcurrencyPercent: "50%", maxFailures: 0, maxFailuresPercent: "0%" });
    const got = await runCli(["get", doc.deployment.id], { env });
    expect(got.code).toBe(0);
    expect(got.stdout).toContain("targets chosen by selector role=web,zone in (a,b)");
    expect(got.stdout).toContain("strategy max_concurrency 1 (50%), max_failures 0 (0%)");
  });

  it("deployctl refuses a bad selector, a selector with --targets, a bad percentage (exit 2, nothing sent), and a selector matching nobody (exit 2)", async () => {
    const base = ["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v-x"];
    const parse = await runCli([...base, "--selector", "role=web,zone in a"], { env });
    expect(parse.code).toBe(2);
    expect(parse.stderr).toContain('at position 18: expected "(" after "in", found "a"');
    const both = await runCli([...base, "--selector", "role=web", "--targets", "a1"], { env });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--selector.*cannot be used with.*--targets/);
    const pct = await runCli([...base, "--max-concurrency", "0%"], { env });
    expect(pct.code).toBe(2);
    expect(pct.stderr).toContain("use a whole percentage from 1% to 100%");
    const nobody = await runCli([...base, "--selector", "zone=mars"], { env });
    expect(nobody.code).toBe(2);
    expect(nobody.stderr).toContain('deployctl: FAILED_PRECONDITION: selector "zone=mars" matches no agent registered for app web in environment prod');
  });

  it("a selector matching only offline agents is FAILED_PRECONDITION naming them", async () => {
    const client = stack.client();
    await stack.agent("a4").kill("SIGKILL");
    // Offline once its heartbeat is older than the coordinator's liveness window.
    for (let until = Date.now() + 30_000; ; ) {
      const a4 = (await client.agents({ app: "web", environment: "prod" })).agents.find((a) => a.id === "a4");
      if (a4 && !a4.live) break;
      if (Date.now() > until) throw new Error("a4 still live 30 s after SIGKILL");
      await new Promise((r) => setTimeout(r, 200));
    }
    const err = await grpcError(create({ requestId: rid("offline"), selector: "zone=c" }));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toBe('selector "zone=c" matches 1 agent(s) of app web in environment prod, none live (no recent heartbeat): a4');
  });
});
