// Rollout order and overlap, seen from records the deploy executables write.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../scripts/lib/natsServer.js";
import { COMMANDS_STREAM, agentConsumerName } from "../services/shared/src/index.js";
import { Stack } from "./helpers/stack.js";

describe("rollout", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["a1", "a2", "a3"] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("max_concurrency 1 applies one target at a time, in target order", async () => {
    const client = stack.client();
    const d = await client.create({ requestId: "conc-1", app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 1 } });
    // Answered with its first target dispatched: the created event carries the first dispatch.
    expect(d.state).toBe("DEPLOYMENT_STATE_RUNNING");
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const spans = [];
    for (const id of ["a1", "a2", "a3"]) {
      const runs = (await stack.runs(id)).filter((r) => r.deploymentId === d.id);
      expect(runs.map((r) => r.phase)).toEqual(["start", "end"]);
      spans.push({ id, start: runs[0]!.at, end: runs[1]!.at });
    }
    spans.sort((a, b) => a.start - b.start);
    expect(spans.map((s) => s.id)).toEqual(["a1", "a2", "a3"]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.end);
    // The agent runs beside its started event, yet its events stay in
    // order: started, then the output, then the result.
    const events = await client.events(d.id!);
    for (const id of ["a1", "a2", "a3"]) {
      const mine = events.filter((e) => e.agentId === id && e.type !== "target.dispatched").map((e) => e.type);
      expect(mine[0]).toBe("target.started");
      expect(mine.at(-1)).toBe("target.result");
      expect(mine.slice(1, -1).length).toBeGreaterThan(0);
      expect(mine.slice(1, -1).every((t) => t === "target.progress")).toBe(true);
    }
  });

  it("max_concurrency 3 applies all targets together", async () => {
    const client = stack.client();
    for (const id of ["a1", "a2", "a3"]) await stack.control(id, { sleep: 1.5 });
    const d = await client.create({ requestId: "conc-3", app: "web", environment: "prod", changeset: { version: "v2" }, strategy: { maxConcurrency: 3 } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const spans = [];
    for (const id of ["a1", "a2", "a3"]) {
      const runs = (await stack.runs(id)).filter((r) => r.deploymentId === d.id);
      expect(runs.map((r) => r.phase)).toEqual(["start", "end"]);
      spans.push({ start: runs[0]!.at, end: runs[1]!.at });
    }
    // All three overlap: each started before any ended.
    const firstEnd = Math.min(...spans.map((s) => s.end));
    for (const s of spans) expect(s.start).toBeLessThan(firstEnd);
    for (const id of ["a1", "a2", "a3"]) await stack.control(id, { sleep: 0 }, false);
  });

  it("an apply longer than the agent's ack_wait (5 s here) is delivered once: in-progress acks keep its command", async () => {
    const client = stack.client();
    const nc = await connect({ servers: stack.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const delivered = async (): Promise<number> => (await jsm.consumers.info(COMMANDS_STREAM, agentConsumerName("a1"))).delivered.consumer_seq;
      const before = await delivered();
      await stack.control("a1", { sleep: 7 });
      const d = await client.create({ requestId: "long-apply", app: "web", environment: "prod", changeset: { version: "v3" }, strategy: { maxConcurrency: 3 } });
      const done = await client.waitTerminal(d.id!);
      expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(await delivered()).toBe(before + 1);
      expect((await stack.runs("a1")).filter((r) => r.deploymentId === d.id).map((r) => r.phase)).toEqual(["start", "end"]);
    } finally {
      await stack.control("a1", { sleep: 0 }, false);
      await nc.close();
    }
  });
});

describe("the sweep", () => {
  // Issue 16: each sweep listed the locks with KV keys(), whose consumer was
  // left behind when no lock was held: 20 idle consumers after 20 s at one
  // sweep a second (the stack here sweeps every 250 ms).
  it("leaves no consumer behind on deploy_deployments, idle or not", async () => {
    const stack = await Stack.start({ agents: ["a1"] });
    try {
      const client = stack.client();
      const done = await client.waitTerminal((await client.create({ requestId: "sweep-1", app: "web", environment: "prod", changeset: { version: "v1" } })).id!);
      expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      await new Promise((r) => setTimeout(r, 3000)); // a dozen idle sweeps
      const nc = await connect({ servers: stack.nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        expect((await jsm.streams.info("KV_deploy_deployments")).state.consumer_count).toBe(0);
      } finally {
        await nc.close();
      }
    } finally {
      await stack.stop();
    }
  });
});

// Issue 16: every coordinator swept every active deployment (a second one
// added conflicts, not capacity). Now each active deployment is swept by one
// live coordinator (rollout/membership.ts); two coordinators split them, and
// when one stops its share moves to the other.
describe("two coordinators", () => {
  it("split the active deployments between them (each swept by one), and one takes all when the other stops", async () => {
    const stack = await Stack.start({ agents: [], coordinator: false });
    try {
      const ports = [await freePort(), await freePort()];
      for (const p of ports) await stack.startCoordinator({ DEPLOY_METRICS_LISTEN: `127.0.0.1:${p}` });
      const envs = ["e1", "e2", "e3", "e4", "e5", "e6"];
      for (const e of envs) await stack.startAgent(`x-${e}`, { environment: e });
      // Frozen agents: each deployment waits, active, for its (long) delivery timeout.
      for (const e of envs) process.kill(stack.agent(`x-${e}`).pid, "SIGSTOP");
      const client = stack.client();
      for (const e of envs) await client.create({ requestId: `own-${e}`, app: "web", environment: e, changeset: { version: "v1" }, strategy: { deliveryTimeout: { seconds: 120 } } });
      const gauge = async (port: number, name: string): Promise<number> => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
        return m ? Number(m[1]) : -1;
      };
      const split = async (): Promise<number[]> => Promise.all(ports.map((p) => gauge(p, "deploy_deployments_owned")));
      let owned: number[] = [];
      for (let i = 0; i < 100; i++) {
        owned = await split();
        if (owned[0]! + owned[1]! === envs.length && (await gauge(ports[0]!, "deploy_deployments_active")) === envs.length) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(owned[0]! + owned[1]!).toBe(envs.length);
      // The second stops cleanly: the first takes every deployment at once.
      await stack.coordinators[1]!.kill("SIGTERM");
      let alone = 0;
      for (let i = 0; i < 100 && alone !== envs.length; i++) {
        alone = await gauge(ports[0]!, "deploy_deployments_owned");
        if (alone !== envs.length) await new Promise((r) => setTimeout(r, 200));
      }
      expect(alone).toBe(envs.length);
    } finally {
      for (const a of stack.agents.values()) if (a.pid > 0) process.kill(a.pid, "SIGCONT");
      await stack.stop();
    }
  });
});

// Events wake any coordinator, so one may publish a deployment's commands
// and another finish it: the first kept the set of agents it published to,
// for the life of its process. The sweep now forgets what belongs to a
// deployment no longer active, and says how many it holds.
describe("two coordinators after their deployments finish", () => {
  it("hold none of them in memory a sweep later (deploy_deployments_held)", { timeout: 120_000 }, async () => {
    const stack = await Stack.start({ agents: [], coordinator: false });
    try {
      const ports = [await freePort(), await freePort()];
      for (const p of ports) await stack.startCoordinator({ DEPLOY_METRICS_LISTEN: `127.0.0.1:${p}`, DEPLOY_SWEEP_INTERVAL_MS: "200" });
      const agents = ["a1", "a2", "a3"];
      for (const a of agents) await stack.startAgent(a);
      // Through the first coordinator: the events of each rollout wake either (one shared consumer).
      const client = stack.client();
      // Which coordinator dispatches and which finishes is up to the
      // consumer's deliveries: without the sweep's forget, 12 rollouts left
      // some held in 2 runs of 2 (6 rollouts: in 1 run of 2).
      for (let i = 0; i < 12; i++) {
        const d = await client.create({ requestId: `held-${i}`, app: "web", environment: "prod", changeset: { version: `v${i}` }, strategy: { maxConcurrency: 1 } });
        expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      }
      const gauge = async (port: number): Promise<number> => {
        const m = /^deploy_deployments_held (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
        return m ? Number(m[1]) : -1;
      };
      let held: number[] = [];
      for (let i = 0; i < 100; i++) {
        held = await Promise.all(ports.map(gauge));
        if (held.every((h) => h === 0)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(held).toEqual([0, 0]);
    } finally {
      await stack.stop();
    }
  });
});

// Issue 16: an unreadable event on a deployment's coordinator subject used to
// be skipped without moving the record's sequence bookkeeping past it, so
// every compare-and-set append conflicted from then on: cancel answered OK
// without cancelling and the deployment never finished.
describe("an unreadable event on a running deployment's coordinator subject", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["a1", "a2"] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function startWithPoison(requestId: string): Promise<string> {
    const client = stack.client();
    await stack.control("a1", { sleep: 2 });
    const d = await client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 1 } });
    const id = d.id!;
    for (;;) {
      const now = await client.get(id);
      if (now.targets?.some((t) => t.agentId === "a1" && t.state === "TARGET_STATE_APPLYING")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const nc = await connect({ servers: stack.nats.url });
    try {
      await jetstream(nc).publish(`deploy.evt.${id}.coordinator`, '{"schema":"deploy.event.v1","type":"not.an.event"}');
    } finally {
      await nc.close();
    }
    return id;
  }

  it("is skipped: the rollout goes on and the deployment SUCCEEDS", async () => {
    const id = await startWithPoison("poison-1");
    const done = await stack.client().waitTerminal(id);
    expect(done.state, done.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a2", id)).toBe(1);
    expect(stack.coordinators[0]!.logs()).toMatch(/skipping invalid event/);
  });

  it("is skipped: a cancel after it still cancels (the target not started is CANCELLED)", async () => {
    const id = await startWithPoison("poison-2");
    await stack.client().cancel(id, "poison test");
    const done = await stack.client().waitTerminal(id);
    expect(done.state, done.message).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(done.targets?.find((t) => t.agentId === "a2")?.state).toBe("TARGET_STATE_CANCELLED");
    expect(await stack.startsOf("a2", id)).toBe(0);
  });
});
