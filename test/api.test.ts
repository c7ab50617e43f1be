// The public gRPC API, end to end against real processes: idempotent create,
// validation, preconditions, max_failures, cancel, watch/resume, reads, and
// the standard health and reflection services.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adoptMapping, newDeploymentId, withdrawMapping } from "../services/coordinator/src/createDeployment.js";
import { listDeployments } from "../services/coordinator/src/queries/listDeployments.js";
import { requestKeyOf } from "../services/coordinator/src/requests.js";
import { bindContext } from "../services/shared/src/js/context.js";
import { DeployClient, grpcError, type DeploymentEventMsg, type DeploymentMsg } from "./helpers/client.js";
import { runCli, shown } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;

async function countDeployments(client: DeployClient): Promise<number> {
  return ((await client.list({ pageSize: 200 })).deployments ?? []).length;
}

async function pollUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** deploy_deployments, read and written as the coordinator does, on the stack's server. */
async function deploymentsBucket(stack: Stack): Promise<{ kv: KV; jsm: JetStreamManager; close: () => Promise<void> }> {
  const nc = await connect({ servers: stack.nats.url });
  return { kv: await new Kvm(nc).open("deploy_deployments"), jsm: await jetstreamManager(nc), close: () => nc.close() };
}

/** Messages left on a KV key's subject (a KV delete would leave a marker: one). */
async function keyMessages(jsm: JetStreamManager, key: string): Promise<number> {
  const info = await jsm.streams.info("KV_deploy_deployments", { subjects_filter: `$KV.deploy_deployments.${key}` });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

const targetStates = (d: DeploymentMsg): Record<string, string> => Object.fromEntries((d.targets ?? []).map((t): [string, string] => [t.agentId ?? "", t.state ?? ""]));

describe("CreateDeployment is idempotent", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("same request_id and body twice returns the same deployment, created once", async () => {
    const client = stack.client();
    const requestId = rid("idem");
    const req = { requestId, app: "web", environment: "prod", changeset: { version: "v1" } };
    const first = await client.create(req);
    const second = await client.create(req);
    expect(second.id).toBe(first.id!);
    // The first answer is folded from the created event in hand, the second
    // from the stream: they agree on everything the event holds.
    const fixed = (d: DeploymentMsg): unknown => ({
      ...Object.fromEntries(Object.entries(d).filter(([k]) => ["id", "requestId", "app", "environment", "changeset", "strategy", "requestedBy", "requestedByNote", "createdAt"].includes(k))),
      targets: (d.targets ?? []).map((t) => t.agentId),
    });
    expect(fixed(second)).toEqual(fixed(first));
    expect(first.createdAt).toBeDefined();
    // Spelling out the defaults is the same request.
    const explicit = await client.create({ ...req, strategy: { maxConcurrency: 1, maxFailures: 0 } });
    expect(explicit.id).toBe(first.id!);
    const listed = (await client.list({ pageSize: 200 })).deployments.filter((d) => d.requestId === requestId);
    expect(listed.map((d) => d.id!)).toEqual([first.id!]);
    await client.waitTerminal(first.id!);
  });

  it("same request_id with a different body is ALREADY_EXISTS", async () => {
    const client = stack.client();
    const requestId = rid("idem-diff");
    const d = await client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v1" } });
    const err = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v2" } }));
    expect(err.code).toBe(grpc.status.ALREADY_EXISTS);
    await client.waitTerminal(d.id!);
    // Still refused once the first is terminal.
    const again = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v2" } }));
    expect(again.code).toBe(grpc.status.ALREADY_EXISTS);
  });

  it("10 clients sending the same request at once get one deployment, applied once per agent", async () => {
    const clients = Array.from({ length: 10 }, () => stack.client());
    const req = { requestId: rid("idem-10"), app: "web", environment: "prod", changeset: { version: "v10" } };
    const results = await Promise.all(clients.map((c) => c.create(req)));
    const ids = new Set(results.map((r) => r.id));
    expect(ids.size).toBe(1);
    const id = results[0]!.id!;
    const done = await clients[0]!.waitTerminal(id);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    for (const a of ["a1", "a2", "a3"]) expect(await stack.startsOf(a, id)).toBe(1);
    const listed = (await clients[0]!.list({ pageSize: 200 })).deployments.filter((d) => d.requestId === req.requestId);
    expect(listed).toHaveLength(1);
  });

  // The lock and the request mapping are written together: concurrent
  // identical calls may split them (one takes the lock, another records the
  // mapping). Whoever recorded the mapping creates; the others answer with it.
  it("8 identical creates at once, 4 rounds: every caller answered gets the same deployment (ABORTED at worst), and only it exists", async () => {
    const clients = Array.from({ length: 8 }, () => stack.client());
    for (let round = 0; round < 4; round++) {
      const req = { requestId: rid(`idem-8-${round}`), app: "web", environment: "prod", changeset: { version: `v8-${round}` }, targets: ["a1"] };
      const results = await Promise.allSettled(clients.map((c) => c.create(req)));
      for (const r of results) if (r.status === "rejected") expect((r.reason as grpc.ServiceError).code, String(r.reason)).toBe(grpc.status.ABORTED);
      const ids = new Set(results.flatMap((r) => (r.status === "fulfilled" ? [r.value.id!] : [])));
      expect(ids.size).toBe(1);
      const [id] = [...ids] as [string];
      expect((await clients[0]!.create(req)).id).toBe(id);
      expect((await clients[0]!.waitTerminal(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(await stack.startsOf("a1", id)).toBe(1);
      const listed = (await clients[0]!.list({ pageSize: 200 })).deployments.filter((d) => d.requestId === req.requestId);
      expect(listed.map((d) => d.id)).toEqual([id]);
    }
  });

  // A creator whose lock is refused withdraws the mapping it wrote; an
  // identical call may read it first and finish the job with its deployment
  // id. The finisher adopts the mapping (a new revision) before it creates,
  // and the withdrawal removes the creator's revision only.
  it("a mapping adopted by the call that finishes it survives its creator's withdrawal: retries get that deployment", async () => {
    const client = stack.client();
    const body = { app: "web", environment: "prod", changeset: { version: "v-adopt" }, targets: ["a1"] };
    const { kv, jsm, close } = await deploymentsBucket(stack);
    try {
      // The body's hash as the coordinator computes it (it leaves the request id out), from an earlier request with the same body.
      const modelId = rid("adopt-model");
      const model = await client.create({ requestId: modelId, ...body });
      await client.waitTerminal(model.id!);
      const { requestHash } = (await kv.get(requestKeyOf(modelId)))!.json<{ requestHash: string }>();
      // A creator's mapping, written in its step 2 (its lock refused, or never taken: it crashed).
      const requestId = rid("adopt");
      const key = requestKeyOf(requestId);
      const id = newDeploymentId();
      const creatorRevision = await kv.create(key, JSON.stringify({ deploymentId: id, requestHash }));
      const finished = await client.create({ requestId, ...body });
      expect(finished.id).toBe(id);
      const adopted = (await kv.get(key))!;
      expect(adopted.revision).toBeGreaterThan(creatorRevision);
      // The creator's withdrawal, late.
      await withdrawMapping({ jsm }, key, creatorRevision);
      expect((await kv.get(key))?.json<{ deploymentId: string }>().deploymentId).toBe(id);
      expect(await keyMessages(jsm, key)).toBe(1);
      expect((await client.create({ requestId, ...body })).id).toBe(id);
      expect((await client.waitTerminal(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect((await client.create({ requestId, ...body })).id).toBe(id);
      expect(await stack.startsOf("a1", id)).toBe(1);
      const listed = (await client.list({ pageSize: 200 })).deployments.filter((d) => d.requestId === requestId);
      expect(listed.map((d) => d.id)).toEqual([id]);
    } finally {
      await close();
    }
  });

  it("a mapping withdrawn before a finisher adopts it: the adoption fails on the revision, nothing is left, and the request id is free", async () => {
    const { kv, jsm, close } = await deploymentsBucket(stack);
    try {
      const key = requestKeyOf(rid("withdrawn"));
      const revision = await kv.create(key, JSON.stringify({ deploymentId: newDeploymentId(), requestHash: "h" }));
      const read = (await kv.get(key))!;
      await withdrawMapping({ jsm }, key, revision);
      expect(await adoptMapping({ deployments: kv }, read)).toBe(false);
      expect(await kv.get(key)).toBeNull();
      expect(await keyMessages(jsm, key)).toBe(0);
      // The next creator records it; the same withdrawal repeated late leaves that one.
      const next = await kv.create(key, JSON.stringify({ deploymentId: newDeploymentId(), requestHash: "h" }));
      await withdrawMapping({ jsm }, key, revision);
      expect((await kv.get(key))?.revision).toBe(next);
    } finally {
      await close();
    }
  });

  // CreateDeployment locks before it looks for the request id: a retry of a
  // finished request takes the free lock for a moment and must give it
  // back, and a retry that would now be refused is still answered.
  it("a retry of a finished request gets its deployment, gives the lock back, and is answered even when its target is gone", async () => {
    const client = stack.client();
    const req = { requestId: rid("idem-done"), app: "web", environment: "prod", changeset: { version: "v-done" }, targets: ["a3"] };
    const first = await client.create(req);
    expect((await client.waitTerminal(first.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect((await client.create(req)).id).toBe(first.id!);
    // The lock is free again: a new request for the same app/environment is accepted.
    const next = await client.create({ requestId: rid("idem-next"), app: "web", environment: "prod", changeset: { version: "v-next" } });
    expect(next.id).not.toBe(first.id!);
    await client.waitTerminal(next.id!);
    // a3 no longer registered as live would refuse a new request naming it;
    // the retry is still the accepted request.
    await stack.agent("a3").kill();
    await pollUntil("a3 to become not live", async () => (await client.agents()).agents.find((a) => a.id === "a3" && !a.live), 30_000);
    expect((await client.create(req)).id).toBe(first.id!);
    const refused = await grpcError(client.create({ ...req, requestId: rid("idem-gone") }));
    expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
  });
});

describe("CreateDeployment validation", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const base = (): Record<string, unknown> => ({ requestId: rid("val"), app: "web", environment: "prod", changeset: { version: "v1" } });
  const cases: [string, () => Record<string, unknown>, string][] = [
    ["missing request_id", () => ({ ...base(), requestId: undefined }), "request_id"],
    ['app "bad.app"', () => ({ ...base(), app: "bad.app" }), "app"],
    ['app "a b"', () => ({ ...base(), app: "a b" }), "app"],
    ['app "*"', () => ({ ...base(), app: "*" }), "app"],
    ["missing environment", () => ({ ...base(), environment: undefined }), "environment"],
    ["missing changeset", () => ({ ...base(), changeset: undefined }), "changeset"],
    ["missing changeset.version", () => ({ ...base(), changeset: {} }), "changeset.version"],
    ["strategy.max_concurrency 0", () => ({ ...base(), strategy: { maxConcurrency: 0 } }), "strategy.max_concurrency"],
    ["strategy.delivery_timeout 0s", () => ({ ...base(), strategy: { deliveryTimeout: { seconds: 0, nanos: 0 } } }), "strategy.delivery_timeout"],
    ["unknown target agent", () => ({ ...base(), targets: ["nosuch"] }), "targets[0]"],
    ["duplicate target", () => ({ ...base(), targets: ["a1", "a1"] }), "targets[1]"],
    ['target "coordinator" (the protocol\'s own source name)', () => ({ ...base(), targets: ["a1", "coordinator"] }), "targets[1]"],
  ];

  for (const [name, make, field] of cases) {
    it(`${name} → INVALID_ARGUMENT naming ${field}, nothing created`, async () => {
      const client = stack.client();
      const before = await countDeployments(client);
      const err = await grpcError(client.create(make()));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details.startsWith(`${field}:`), err.details).toBe(true);
      expect(await countDeployments(client)).toBe(before);
    });
  }
});

describe("CreateDeployment preconditions", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("no live agent for the app/environment → FAILED_PRECONDITION", async () => {
    const client = stack.client();
    const err = await grpcError(client.create({ requestId: rid("pre-none"), app: "web", environment: "staging", changeset: { version: "v1" } }));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
  });

  it("a second deployment while one is active → FAILED_PRECONDITION naming it; accepted after it finishes", async () => {
    const client = stack.client();
    await stack.control("a1", { sleep: 3 });
    try {
      const first = await client.create({ requestId: rid("pre-1"), app: "web", environment: "prod", changeset: { version: "v1" } });
      const err = await grpcError(client.create({ requestId: rid("pre-2"), app: "web", environment: "prod", changeset: { version: "v2" } }));
      expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(err.details).toContain(first.id!);
      expect((await client.waitTerminal(first.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    } finally {
      await stack.control("a1", { sleep: 0 }, false);
    }
    const next = await client.create({ requestId: rid("pre-3"), app: "web", environment: "prod", changeset: { version: "v3" } });
    expect((await client.waitTerminal(next.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // Released without a trace: a KV delete marker there would cost every
    // later deployment of the pair 2 more round trips to take the lock, and
    // every sweep a read of it.
    const nc = await connect({ servers: stack.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await pollUntil("the lock of web/prod to leave no message", async () => {
        const info = await jsm.streams.info("KV_deploy_deployments", { subjects_filter: "$KV.deploy_deployments.active.>" });
        return Object.keys(info.state.subjects ?? {}).length === 0 ? true : undefined;
      });
    } finally {
      await nc.close();
    }
  });

  // The request mapping is written together with the lock: refused, the
  // request withdraws it without a trace.
  it("a request refused while another deployment runs leaves no request mapping; retried once that one finished, it is a new deployment", async () => {
    const client = stack.client();
    const req = { requestId: rid("pre-held"), app: "web", environment: "prod", changeset: { version: "v-held" } };
    const key = requestKeyOf(req.requestId);
    const { kv, jsm, close } = await deploymentsBucket(stack);
    let blocker: DeploymentMsg;
    try {
      await stack.control("a1", { sleep: 3 });
      try {
        blocker = await client.create({ requestId: rid("pre-blocker"), app: "web", environment: "prod", changeset: { version: "v-blocker" } });
        for (let i = 0; i < 3; i++) {
          const err = await grpcError(client.create(req));
          expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
          expect(err.details).toContain(blocker.id!);
          expect(await kv.get(key)).toBeNull();
          expect(await keyMessages(jsm, key)).toBe(0);
        }
        expect((await client.waitTerminal(blocker.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      } finally {
        await stack.control("a1", { sleep: 0 }, false);
      }
      const ok = await client.create(req);
      expect(ok.id).not.toBe(blocker.id!);
      expect((await client.waitTerminal(ok.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect((await client.create(req)).id).toBe(ok.id!);
      expect((await kv.get(key))?.json<{ deploymentId: string }>().deploymentId).toBe(ok.id!);
    } finally {
      await close();
    }
  });

  // Regression: a refused request used to record its request_id, so the
  // corrected request with the same id got ALREADY_EXISTS for a deployment
  // that never existed.
  it("a refused request writes nothing: the corrected request with the same request_id is accepted", async () => {
    const client = stack.client();
    const requestId = rid("pre-fix");
    const before = await countDeployments(client);
    const bad = await grpcError(client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v1" }, targets: ["nosuch"] }));
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    const none = await grpcError(client.create({ requestId, app: "web", environment: "staging", changeset: { version: "v1" } }));
    expect(none.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(await countDeployments(client)).toBe(before);
    const ok = await client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v1" } });
    expect((await client.waitTerminal(ok.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });
});

describe("max_failures", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("max_failures 0: the first failure stops the rollout; the rest are SKIPPED and never run", async () => {
    const client = stack.client();
    await stack.control("a1", "fail");
    try {
      const d = await client.create({
        requestId: rid("mf0"),
        app: "web",
        environment: "prod",
        changeset: { version: "v1" },
        strategy: { maxConcurrency: 1, maxFailures: 0 },
        targets: ["a1", "a2", "a3"],
      });
      const done = await client.waitTerminal(d.id!);
      expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
      expect(targetStates(done)).toEqual({ a1: "TARGET_STATE_FAILED", a2: "TARGET_STATE_SKIPPED", a3: "TARGET_STATE_SKIPPED" });
      expect(await stack.startsOf("a1", d.id!)).toBe(1);
      expect(await stack.startsOf("a2", d.id!)).toBe(0);
      expect(await stack.startsOf("a3", d.id!)).toBe(0);
    } finally {
      await stack.control("a1", "fail", false);
    }
  });

  it("max_failures 1 tolerates one failure for the rollout, not the verdict: the rollout goes on past a1's failure and the deployment ends FAILED", async () => {
    const client = stack.client();
    await stack.control("a1", "fail");
    try {
      const d = await client.create({
        requestId: rid("mf1"),
        app: "web",
        environment: "prod",
        changeset: { version: "v2" },
        strategy: { maxConcurrency: 1, maxFailures: 1 },
        targets: ["a1", "a2", "a3"],
      });
      const done = await client.waitTerminal(d.id!);
      // A deployment in which any target failed never reads as a clean success.
      expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
      expect(done.message).toBe("2 of 3 target(s) succeeded, 1 failed (rollout continued: within max_failures 1)");
      expect(targetStates(done)).toEqual({ a1: "TARGET_STATE_FAILED", a2: "TARGET_STATE_SUCCEEDED", a3: "TARGET_STATE_SUCCEEDED" });
      for (const a of ["a1", "a2", "a3"]) expect(await stack.startsOf(a, d.id!)).toBe(1);
    } finally {
      await stack.control("a1", "fail", false);
    }
  });
});

describe("CancelDeployment", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("cancel while the first target applies: it finishes SUCCEEDED, the rest CANCELLED and never run; cancelling again changes nothing", async () => {
    const client = stack.client();
    for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 2 });
    try {
      const d = await client.create({
        requestId: rid("cancel"),
        app: "web",
        environment: "prod",
        changeset: { version: "v1" },
        strategy: { maxConcurrency: 1 },
        targets: ["a1", "a2", "a3"],
      });
      // Wait until a1's executable has started (it sleeps 2 s).
      await pollUntil("a1 to start applying", async () => ((await stack.startsOf("a1", d.id!)) > 0 ? true : undefined));
      const c = await client.cancel(d.id!, "test");
      expect(c.cancelRequested).toBe(true);
      const done = await client.waitTerminal(d.id!);
      expect(done.state).toBe("DEPLOYMENT_STATE_CANCELLED");
      expect(targetStates(done)).toEqual({ a1: "TARGET_STATE_SUCCEEDED", a2: "TARGET_STATE_CANCELLED", a3: "TARGET_STATE_CANCELLED" });
      expect(await stack.startsOf("a1", d.id!)).toBe(1);
      expect(await stack.startsOf("a2", d.id!)).toBe(0);
      expect(await stack.startsOf("a3", d.id!)).toBe(0);

      // A terminal deployment is returned unchanged.
      const again = await client.cancel(d.id!, "again");
      expect(again.state).toBe(done.state);
      expect(again.lastSequence).toBe(done.lastSequence);
      expect((await client.get(d.id!)).lastSequence).toBe(done.lastSequence);
    } finally {
      for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 0 }, false);
    }
  });

  it("cancelling an unknown deployment → NOT_FOUND", async () => {
    const err = await grpcError(stack.client().cancel("d-000000000-deadbeef"));
    expect(err.code).toBe(grpc.status.NOT_FOUND);
  });
});

describe("WatchDeployment", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const seqs = (es: DeploymentEventMsg[]): number[] => es.map((e) => Number(e.sequence));

  it("replays a finished deployment in order and resumes after any sequence", async () => {
    const client = stack.client();
    const d = await client.create({ requestId: rid("watch-1"), app: "web", environment: "prod", changeset: { version: "v1" } });
    await client.waitTerminal(d.id!);
    const all = await client.events(d.id!);
    expect(all.length).toBeGreaterThan(3);
    const s = seqs(all);
    for (let i = 1; i < s.length; i++) expect(s[i]!).toBeGreaterThan(s[i - 1]!);
    expect(all.at(-1)!.type).toBe("deployment.finished");
    for (const e of all) expect(e.deploymentId).toBe(d.id!);

    const third = all[2]!.sequence;
    const rest = await client.events(d.id!, Number(third));
    expect(seqs(rest)).toEqual(s.slice(3));

    expect((await client.get(d.id!)).lastSequence).toBe(all.at(-1)!.sequence);
  });

  it("GetDeployment during a rollout, served from the coordinator's own fold, agrees with the stream at its last_sequence", async () => {
    const client = stack.client();
    for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 0.5 });
    try {
      const d = await client.create({ requestId: rid("get-fold"), app: "web", environment: "prod", changeset: { version: "v-fold" }, strategy: { maxConcurrency: 1 } });
      const answers: DeploymentMsg[] = [];
      for (;;) {
        const g = await client.get(d.id!);
        answers.push(g);
        if (g.state !== "DEPLOYMENT_STATE_RUNNING" && g.state !== "DEPLOYMENT_STATE_PENDING") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // The stream's account: each event with the states the fold gave after it.
      const events = await client.events(d.id!);
      const targetsAt = new Map<string, Map<string, string>>();
      const stateAt = new Map<string, string>();
      const targets = new Map<string, string>();
      for (const e of events) {
        for (const a of e.agentIds ?? []) targets.set(a, "TARGET_STATE_DISPATCHED");
        if (e.agentId && e.targetState && e.targetState !== "TARGET_STATE_UNSPECIFIED") targets.set(e.agentId, String(e.targetState));
        targetsAt.set(String(e.sequence), new Map(targets));
        stateAt.set(String(e.sequence), String(e.deploymentState));
      }
      // Answers mid-rollout: more than the first and the last.
      expect(new Set(answers.map((a) => a.lastSequence)).size).toBeGreaterThan(3);
      for (const a of answers) {
        const at = String(a.lastSequence);
        expect(stateAt.get(at)).toBe(a.state);
        const want = targetsAt.get(at)!;
        for (const t of a.targets ?? []) if (want.has(t.agentId!)) expect(t.state, `${t.agentId} at ${at}`).toBe(want.get(t.agentId!));
      }
      expect(answers.at(-1)!.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    } finally {
      for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 0 }, false);
    }
  });

  it("a watch cancelled midway and resumed from the last sequence seen misses nothing and repeats nothing", async () => {
    const client = stack.client();
    for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 1 });
    try {
      const d = await client.create({ requestId: rid("watch-2"), app: "web", environment: "prod", changeset: { version: "v2" }, strategy: { maxConcurrency: 1 } });
      const seen: DeploymentEventMsg[] = [];
      let stopped = false;
      let gotFew!: () => void;
      const few = new Promise<void>((r) => (gotFew = r));
      const w = client.watch(d.id!, 0, (e) => {
        if (stopped) return;
        seen.push(e);
        if (seen.length >= 3) gotFew();
      });
      await few;
      stopped = true;
      w.cancel();
      await w.done;
      const before = await client.get(d.id!);
      expect(before.state).not.toBe("DEPLOYMENT_STATE_SUCCEEDED"); // really midway (3 agents × 1 s)
      const resumed = await client.events(d.id!, Number(seen.at(-1)!.sequence));
      const union = [...seqs(seen), ...seqs(resumed)];
      expect(new Set(union).size).toBe(union.length);

      const full = await client.events(d.id!);
      expect(union).toEqual(seqs(full));
      expect(full.at(-1)!.type).toBe("deployment.finished");
      expect((await client.get(d.id!)).lastSequence).toBe(full.at(-1)!.sequence);
    } finally {
      for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 0 }, false);
    }
  });
});

describe("GetDeployment, ListDeployments, ListAgents", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("GetDeployment returns every target's state, message and times, and counts per state", async () => {
    const client = stack.client();
    const d = await client.create({ requestId: rid("get"), app: "web", environment: "prod", changeset: { version: "v1" }, requestedBy: "tester" });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // Who asked is the caller's identity (no tokens here: development mode); what it wrote is the note.
    expect(done.requestedBy).toBe("anonymous (development mode)");
    expect(done.requestedByNote).toBe("tester");
    expect(done.changeset?.version).toBe("v1");
    const targets = done.targets ?? [];
    expect(targets.map((t) => t.agentId).sort()).toEqual(["a1", "a2", "a3"]);
    for (const t of targets) {
      expect(t.state).toBe("TARGET_STATE_SUCCEEDED");
      expect(typeof t.message).toBe("string");
      const ms = (ts: { seconds?: string; nanos?: number } | null | undefined): number => Number(ts?.seconds ?? 0) * 1000 + (ts?.nanos ?? 0) / 1e6;
      expect(t.dispatchedAt).toBeTruthy();
      expect(t.startedAt).toBeTruthy();
      expect(t.finishedAt).toBeTruthy();
      expect(ms(t.startedAt)).toBeGreaterThanOrEqual(ms(t.dispatchedAt));
      expect(ms(t.finishedAt)).toBeGreaterThanOrEqual(ms(t.startedAt));
    }
    expect(done.counts).toEqual([{ state: "TARGET_STATE_SUCCEEDED", count: 3 }]);
    expect(done.finishedAt).toBeTruthy();
  });

  it("ListDeployments is newest first and pages without repeats", async () => {
    const client = stack.client();
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await client.create({ requestId: rid(`list-${i}`), app: "web", environment: "prod", changeset: { version: `v${i}` } });
      await client.waitTerminal(d.id!);
      created.push(d.id!);
    }
    const all = (await client.list({ pageSize: 200 })).deployments.map((d) => d.id!);
    expect(all.length).toBeGreaterThanOrEqual(3);
    expect(all.slice(0, 3)).toEqual([...created].reverse());
    const createdAt = (await client.list({ pageSize: 200 })).deployments.map((d) => Number(d.createdAt?.seconds ?? 0) * 1000 + (d.createdAt?.nanos ?? 0) / 1e6);
    for (let i = 1; i < createdAt.length; i++) expect(createdAt[i]!).toBeLessThanOrEqual(createdAt[i - 1]!);

    const paged: string[] = [];
    let token = "";
    for (let page = 0; page < all.length + 2; page++) {
      const res = await client.list({ pageSize: 1, pageToken: token });
      expect(res.deployments.length).toBeLessThanOrEqual(1);
      paged.push(...res.deployments.map((d) => d.id!));
      token = res.nextPageToken;
      if (!token) break;
    }
    expect(token).toBe("");
    expect(paged).toEqual(all);
  });

  it("ListAgents lists the live agents; a killed agent becomes not live", async () => {
    const client = stack.client();
    const { agents } = await client.agents();
    expect(agents.map((a) => a.id).sort()).toEqual(["a1", "a2", "a3"]);
    for (const a of agents) {
      expect(a.live).toBe(true);
      expect(a.apps).toEqual(["web"]);
      expect(a.environment).toBe("prod");
    }
    await stack.agent("a3").kill();
    const a3 = await pollUntil(
      "a3 to become not live",
      async () => (await client.agents()).agents.find((a) => a.id === "a3" && !a.live),
      30_000,
    );
    expect(a3.live).toBe(false);
    const others = (await client.agents()).agents.filter((a) => a.id !== "a3");
    expect(others.every((a) => a.live)).toBe(true);
  });
});

describe("health and reflection", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ agents: [] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("gRPC health answers SERVING for the server and for deploy.v1.DeployService", async () => {
    const def = loadSync(healthProtoPath, { keepCase: true, longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    const health = new pkg.grpc.health.v1.Health(stack.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Check: (req: { service: string }, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
    };
    try {
      for (const service of ["", "deploy.v1.DeployService"]) {
        const res = await new Promise<{ status: string }>((resolve, reject) =>
          health.Check({ service }, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r))),
        );
        expect(res.status).toBe("SERVING");
      }
    } finally {
      health.close();
    }
  });

  it("server reflection lists deploy.v1.DeployService", async () => {
    const file = new URL("../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto", import.meta.url).pathname;
    const def = loadSync(file, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } };
    const refl = new pkg.grpc.reflection.v1.ServerReflection(stack.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      ServerReflectionInfo: (opts: grpc.CallOptions) => grpc.ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }>;
    };
    try {
      const names = await new Promise<string[]>((resolve, reject) => {
        const call = refl.ServerReflectionInfo({ deadline: Date.now() + 10_000 });
        call.on("data", (r: { list_services_response?: { service?: { name: string }[] } }) => {
          resolve((r.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
          call.end();
        });
        call.on("error", reject);
        call.write({ list_services: "" });
      });
      expect(names).toContain("deploy.v1.DeployService");
    } finally {
      refl.close();
    }
  });
});

describe("ListDeployments' index", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["a1", "a2"] });
    await stack.startAgent("s1", { environment: "staging" });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("filters by app, environment and state, and a restarted coordinator rebuilds lost entries", async () => {
    const client = stack.client();
    const ok = await client.waitTerminal((await client.create({ requestId: rid("idx-ok"), app: "web", environment: "prod", changeset: { version: "v1" } })).id!);
    expect(ok.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await stack.control("a1", "fail");
    let failed: DeploymentMsg;
    try {
      failed = await client.waitTerminal((await client.create({ requestId: rid("idx-f"), app: "web", environment: "prod", changeset: { version: "vf" }, targets: ["a1"] })).id!);
    } finally {
      await stack.control("a1", "fail", false);
    }
    expect(failed.state).toBe("DEPLOYMENT_STATE_FAILED");
    const staging = await client.waitTerminal((await client.create({ requestId: rid("idx-s"), app: "web", environment: "staging", changeset: { version: "vs" } })).id!);
    const ids = async (c: DeployClient, q: { app?: string; environment?: string; state?: string }): Promise<string[]> =>
      ((await c.list({ pageSize: 200, ...q })).deployments ?? []).map((d) => d.id!);
    expect(await ids(client, {})).toEqual([staging.id, failed.id, ok.id]);
    expect(await ids(client, { environment: "staging" })).toEqual([staging.id]);
    expect(await ids(client, { environment: "prod" })).toEqual([failed.id, ok.id]);
    expect(await ids(client, { app: "api" })).toEqual([]);
    expect(await ids(client, { state: "DEPLOYMENT_STATE_FAILED" })).toEqual([failed.id]);
    expect(await ids(client, { environment: "prod", state: "DEPLOYMENT_STATE_SUCCEEDED" })).toEqual([ok.id]);
    expect(await ids(client, { state: "DEPLOYMENT_STATE_RUNNING" })).toEqual([]);
    const page1 = await client.list({ environment: "prod", pageSize: 1 });
    expect(page1.deployments.map((d) => d.id)).toEqual([failed.id]);
    expect((await client.list({ environment: "prod", pageSize: 1, pageToken: page1.nextPageToken })).deployments.map((d) => d.id)).toEqual([ok.id]);

    // An entry lost (or a deployment from before the index): rebuilt when a coordinator starts.
    const nc = await connect({ servers: stack.nats.url });
    try {
      const kv = await new Kvm(nc).open("deploy_deployments");
      await kv.purge(`idx.web.staging.${staging.id}`);
    } finally {
      await nc.close();
    }
    expect(await ids(client, { environment: "staging" })).toEqual([]);
    const coordinator = stack.coordinators[0]!;
    await coordinator.kill("SIGTERM");
    const from = coordinator.logs().length;
    coordinator.start();
    await coordinator.waitForLog("coordinator running", 30_000, from);
    await coordinator.waitForLog("list index: deployments from before it indexed", 30_000, from);
    expect(await ids(stack.client(), { environment: "staging" })).toEqual([staging.id]);
  });

  it("agent_id lists an agent's history, newest first, each deployment with that agent's target only; deployctl list --agent shows it", async () => {
    const client = stack.client();
    const both = await client.waitTerminal((await client.create({ requestId: rid("hist-both"), app: "web", environment: "prod", changeset: { version: "h1" } })).id!);
    await stack.control("a2", "fail");
    let onA2: DeploymentMsg;
    try {
      onA2 = await client.waitTerminal((await client.create({ requestId: rid("hist-a2"), app: "web", environment: "prod", changeset: { version: "h2" }, targets: ["a2"] })).id!);
    } finally {
      await stack.control("a2", "fail", false);
    }
    const history = async (agentId: string): Promise<DeploymentMsg[]> => (await client.list({ agentId, pageSize: 200 })).deployments ?? [];
    const a1 = await history("a1");
    expect(a1.map((d) => d.id)).toContain(both.id);
    expect(a1.map((d) => d.id)).not.toContain(onA2.id);
    for (const d of a1) expect(d.targets?.map((t) => t.agentId)).toEqual(["a1"]);
    const a2 = await history("a2");
    expect(a2.slice(0, 2).map((d) => d.id)).toEqual([onA2.id, both.id]);
    expect(a2[0]!.targets).toEqual([expect.objectContaining({ agentId: "a2", state: "TARGET_STATE_FAILED" })]);
    expect(a2[1]!.targets).toEqual([expect.objectContaining({ agentId: "a2", state: "TARGET_STATE_SUCCEEDED" })]);
    // s1 serves web in staging: prod's deployments are not its history.
    expect((await history("s1")).map((d) => d.id)).not.toContain(both.id);
    expect(await history("nobody")).toEqual([]);
    // Pages by deployment id, as without an agent.
    const page1 = await client.list({ agentId: "a2", pageSize: 1 });
    expect(page1.deployments.map((d) => d.id)).toEqual([onA2.id]);
    expect((await client.list({ agentId: "a2", pageSize: 1, pageToken: page1.nextPageToken })).deployments.map((d) => d.id)).toEqual([both.id]);
    // An agent in few of the deployments searched: a call stops after
    // AGENT_SCAN_LIMIT loads (1,000; 2 here) with a short page, maybe
    // empty, and a token; paging on finds the whole history, once each.
    for (let i = 0; i < 3; i++) await client.waitTerminal((await client.create({ requestId: rid(`hist-a1-${i}`), app: "web", environment: "prod", changeset: { version: `h3-${i}` }, targets: ["a1"] })).id!);
    const nc = await connect({ servers: stack.nats.url });
    try {
      const ctx = await bindContext(nc);
      const whole = (await history("a2")).map((d) => d.id);
      const paged: string[] = [];
      let token = "";
      let calls = 0;
      let short = 0;
      do {
        const r = await listDeployments(ctx, { agentId: "a2", pageSize: 1, ...(token ? { pageToken: token } : {}) }, undefined, 2);
        paged.push(...r.deployments.map((d) => d.spec.id));
        if (r.deployments.length === 0 && r.nextPageToken) short++;
        token = r.nextPageToken;
        calls++;
      } while (token && calls < 1000);
      expect(paged).toEqual(whole);
      expect(short, "calls that stopped at the scan limit with nothing found yet").toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
    const bad = await grpcError(client.list({ agentId: "no such id!" }));
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^agent_id: /);

    const env = { ...process.env, DEPLOY_COORDINATOR: stack.address, NO_COLOR: "1" } as Record<string, string>;
    const r = await runCli(["list", "--agent", "a2", "--limit", "2"], { env });
    expect(r.code, shown(r)).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID +APP +ENV +VERSION +STATE +ON a2 +FINISHED\/CREATED +BY +MESSAGE$/);
    expect(lines[1]).toMatch(new RegExp(`^${onA2.id} +web +prod +h2 +FAILED +FAILED +\\S+ +\\S.* exit code \\d+`));
    expect(lines[2]).toMatch(new RegExp(`^${both.id} +web +prod +h1 +SUCCEEDED +SUCCEEDED `));
  });

  it("a running deployment is listed through its lock, unindexed; once terminal it is indexed, once", async () => {
    const client = stack.client();
    const nc = await connect({ servers: stack.nats.url });
    try {
      const kv = await new Kvm(nc).open("deploy_deployments");
      const fast = await client.waitTerminal((await client.create({ requestId: rid("idx-fast"), app: "web", environment: "prod", changeset: { version: "v1" }, targets: ["a2"] })).id!);
      expect(fast.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      const revisions = async (key: string): Promise<number> => {
        let n = 0;
        for await (const e of await kv.history({ key })) if (e.operation === "PUT") n++;
        return n;
      };
      await until("the fast deployment's index entry", async () => (await revisions(`idx.web.prod.${fast.id}`)) === 1);

      await stack.control("a2", { sleep: 3 });
      try {
        const running = (await client.create({ requestId: rid("idx-run"), app: "web", environment: "prod", changeset: { version: "v2" }, targets: ["a2"] })).id!;
        await until("the deployment running", async () => (await client.get(running)).state === "DEPLOYMENT_STATE_RUNNING");
        const listed = (await client.list({ app: "web", environment: "prod", state: "DEPLOYMENT_STATE_RUNNING", pageSize: 10 })).deployments.map((d) => d.id);
        expect(listed).toEqual([running]);
        expect(await kv.get(`idx.web.prod.${running}`)).toBeNull();
        const done = await client.waitTerminal(running);
        expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
        expect(await revisions(`idx.web.prod.${running}`)).toBe(1);
        expect((await client.list({ app: "web", environment: "prod", pageSize: 10 })).deployments.map((d) => d.id).slice(0, 2)).toEqual([running, fast.id]);
      } finally {
        await stack.control("a2", { sleep: 3 }, false);
      }
    } finally {
      await nc.close();
    }
  });
});
