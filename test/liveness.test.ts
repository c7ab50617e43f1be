// Agent liveness (issue 17): an idle agent's heartbeat is a core NATS publish
// every coordinator hears, answered and stored nowhere; an agent stores its heartbeats
// (rewrites its deploy_agents entry) only from a won race until its result,
// the start lease's evidence. A real nats-server, coordinator and agents.
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentConfig } from "../services/agent/src/config.js";
import { Registration } from "../services/agent/src/registration.js";
import { AGENTS_BUCKET, HEARTBEAT_REQUEST_SUBJECT, createLogger } from "../services/shared/src/index.js";
import { freePort, startNatsServer } from "./helpers/nats-server.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const stacks: Stack[] = [];
const conns: NatsConnection[] = [];
afterEach(async () => {
  await Promise.all(conns.splice(0).map((nc) => nc.close()));
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

async function agentsKv(stack: Stack): Promise<KV> {
  const nc = await connect({ servers: stack.nats.url });
  conns.push(nc);
  return new Kvm(nc).open(AGENTS_BUCKET);
}

const revisionOf = async (kv: KV, id: string): Promise<number> => (await kv.get(id))?.revision ?? 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("agent liveness", () => {
  it("an idle agent stays live without writing its entry; a stopped one goes offline", { timeout: 60_000 }, async () => {
    // Heartbeat 500 ms, liveness 3 s (the stack's defaults).
    const stack = await Stack.start({ agents: ["a1", "a2"] });
    stacks.push(stack);
    const kv = await agentsKv(stack);
    const before = await revisionOf(kv, "a1");
    await sleep(4_000); // 8 heartbeats, longer than the liveness window
    expect(await revisionOf(kv, "a1")).toBe(before);
    const client = stack.client();
    const live = (await client.agents()).agents;
    expect(live.map((a) => [a.id, a.live])).toEqual([["a1", true], ["a2", true]]);
    await stack.agent("a2").kill("SIGKILL");
    await until("a2 shown offline", async () => (await client.agents()).agents.find((a) => a.id === "a2")?.live === false, 15_000, 200);
    expect((await client.agents()).agents.find((a) => a.id === "a1")?.live).toBe(true);
  });

  it("an applying agent stores its heartbeats; idle again, it stops", { timeout: 60_000 }, async () => {
    const stack = await Stack.start({ agents: ["a1"] });
    stacks.push(stack);
    const kv = await agentsKv(stack);
    await stack.control("a1", { sleep: 3 });
    const before = await revisionOf(kv, "a1");
    const client = stack.client();
    const d = await client.create({ requestId: `live-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v1" } });
    const done = await client.waitTerminal(d.id!, 30_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // 3 s of apply at 500 ms: about six stored heartbeats.
    expect((await revisionOf(kv, "a1")) - before).toBeGreaterThanOrEqual(4);
    // The new release is written by the next heartbeat, stored; after it the agent is idle and stores none.
    const release = `v1-${d.id!.slice(-8)}`;
    await until("the entry with the new release", async () => (await kv.get("a1"))?.json<{ currentReleases: Record<string, string> }>().currentReleases["web"] === release, 10_000, 50);
    const after = await revisionOf(kv, "a1");
    await sleep(2_000);
    expect(await revisionOf(kv, "a1")).toBe(after);
  });

  it("an idle interval of its own spaces idle heartbeats only: an applying agent stores its heartbeats at heartbeatIntervalMs, the lease's evidence", { timeout: 60_000 }, async () => {
    // Idle heartbeats a minute apart, stored ones every 500 ms, liveness
    // 3 s: a 3 s apply stores at least 4 beats (with every beat at the idle
    // interval: 2, the first one after the claim and the new release's entry).
    const stack = await Stack.start({ agents: ["a1"], agentEnv: { DEPLOY_AGENT_IDLE_HEARTBEAT_MS: "60000" } });
    stacks.push(stack);
    const kv = await agentsKv(stack);
    const client = stack.client();
    await until("the agent offline between its idle heartbeats", async () => (await client.agents()).agents.every((a) => !a.live), 15_000, 200);
    await stack.control("a1", { sleep: 3 });
    const before = await revisionOf(kv, "a1");
    // An explicit target must be live: one asked for, as a coordinator that starts asks.
    const nc = await connect({ servers: stack.nats.url });
    conns.push(nc);
    nc.publish(HEARTBEAT_REQUEST_SUBJECT);
    await until("the agent live once asked", async () => (await client.agents()).agents.every((a) => a.live), 10_000, 100);
    const d = await client.create({ requestId: `idle-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v1" } });
    const done = await client.waitTerminal(d.id!, 30_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await revisionOf(kv, "a1") - before).toBeGreaterThanOrEqual(4);
  });

  it("a coordinator that starts hears every agent at once, however long their interval; an agent it has no entry for writes it again", { timeout: 60_000 }, async () => {
    // A heartbeat a minute, a liveness window of 3 s: between heartbeats
    // the agents look offline, until a starting coordinator asks them.
    const stack = await Stack.start({ agents: ["a1", "a2"], agentEnv: { DEPLOY_AGENT_HEARTBEAT_MS: "60000" } });
    stacks.push(stack);
    const kv = await agentsKv(stack);
    const client = stack.client();
    await until("agents offline between their heartbeats", async () => (await client.agents()).agents.every((a) => !a.live), 15_000, 200);
    await stack.coordinators[0]!.kill("SIGTERM");
    await kv.delete("a1");
    const second = await stack.startCoordinator();
    const c2 = stack.client(stack.coordinatorAddress(second));
    const agents = await until(
      "both agents live at the new coordinator",
      async () => {
        const list = (await c2.agents()).agents;
        return list.length === 2 && list.every((a) => a.live) && list;
      },
      10_000,
      100,
    );
    expect(agents.map((a) => a.id)).toEqual(["a1", "a2"]);
    expect((await kv.get("a1"))?.operation).toBe("PUT");
    expect(stack.agent("a1").logs()).toContain("a coordinator has no entry for this agent: writing it again");
  });
});

describe("a coordinator that restarts", () => {
  // Found by test/cluster.test.ts: a deployment created through a coordinator
  // just restarted skipped live targets as offline. An idle agent's stored
  // entry is as old as its start; until it answers the new coordinator's
  // request for a heartbeat (within a second) it looked offline there. The
  // coordinator now serves nothing before the answers are in.
  it("serves only once it has heard its idle agents: a deployment created at once skips none", { timeout: 60_000 }, async () => {
    const stack = await Stack.start({ agents: ["a1", "a2"], agentEnv: { DEPLOY_AGENT_HEARTBEAT_MS: "60000" } });
    stacks.push(stack);
    await until("agents offline between their heartbeats", async () => (await stack.client().agents()).agents.every((a) => !a.live), 15_000, 200);
    await stack.coordinators[0]!.kill("SIGTERM");
    const second = await stack.startCoordinator();
    const c2 = stack.client(stack.coordinatorAddress(second));
    expect((await c2.agents()).agents.map((a) => [a.id, a.live])).toEqual([["a1", true], ["a2", true]]);
    const d = await c2.create({ requestId: `restart-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v1" } });
    const done = await c2.waitTerminal(d.id!, 30_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.targets?.map((t) => t.state)).toEqual(["TARGET_STATE_SUCCEEDED", "TARGET_STATE_SUCCEEDED"]);
  });
});

describe("a NATS restart", () => {
  // Idle heartbeats sent while the coordinator was cut off are lost: with a
  // long idle interval its idle agents would look offline until their next
  // one. The coordinator asks every agent for one when it reconnects, and
  // each agent sends one when it does (one of the two may be back first;
  // with the coordinator's ask alone this test failed).
  it("idle agents are live again within seconds, not an idle interval: the coordinator asks for a heartbeat, and each agent beats, on reconnecting", { timeout: 60_000 }, async () => {
    const stack = await Stack.start({ agents: ["a1", "a2"], agentEnv: { DEPLOY_AGENT_IDLE_HEARTBEAT_MS: "60000" } });
    stacks.push(stack);
    const client = stack.client();
    await until("agents offline between their heartbeats", async () => (await client.agents()).agents.every((a) => !a.live), 15_000, 200);
    await stack.nats.kill();
    await stack.nats.restart();
    const agents = await until(
      "both agents live after the coordinator reconnected",
      async () => {
        const list = (await client.agents().catch(() => ({ agents: [] }))).agents;
        return list.length === 2 && list.every((a) => a.live) && list;
      },
      20_000,
      100,
    );
    expect(agents.map((a) => a.id)).toEqual(["a1", "a2"]);
    expect(stack.coordinators[0]!.logs()).toContain("reconnected to NATS: asking every agent for a heartbeat");
  });
});

describe("a deployment created the moment the coordinator is back", () => {
  // NATS down longer than agentLiveMs: every agent's last heartbeat, as this
  // coordinator heard it, is older than the limit. Its first create after
  // the reconnect judged them offline before their answers arrived: refused
  // "no live agent" here, 3 runs of 3, and a live agent skipped in the
  // cluster test's full restart. A create waits until the agents asked have
  // answered (at most HEARTBEAT_ANSWER_WAIT_MS after the reconnect); one
  // made while the coordinator is cut off waits for it to be back, for at
  // most 10 s, then is answered UNAVAILABLE: retried with its request id,
  // it is the same request.
  it("skips no live agent; cut off for longer than a create waits, it is answered UNAVAILABLE, and so is ListAgents", { timeout: 90_000 }, async () => {
    const stack = await Stack.start({ agents: ["a1", "a2", "a3"] });
    stacks.push(stack);
    const client = stack.client();
    await until("agents live", async () => (await client.agents()).agents.every((a) => a.live), 15_000, 200);
    await stack.nats.kill();
    await sleep(4_000); // liveness 3 s (the stack's)
    const req = { requestId: `back-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v1" } };
    const down = await client.create(req, 20_000).then(
      () => undefined,
      (err: { code?: number; details?: string }) => err,
    );
    expect(down?.code, down?.details).toBe(14);
    expect(down?.details).toContain("cut off from NATS");
    // ListAgents says so too, at once, rather than show every agent offline.
    const listed = await client.agents().then(
      () => undefined,
      (err: { code?: number; details?: string }) => err,
    );
    expect(listed?.code, listed?.details).toBe(14);
    expect(listed?.details).toContain("cut off from NATS");

    const coordinator = stack.coordinators[0]!;
    const reconnects = (): number => coordinator.logs().split("reconnected to NATS").length - 1;
    const before = reconnects();
    await stack.nats.restart();
    // The moment the coordinator says it is back.
    await until("the coordinator reconnected", () => Promise.resolve(reconnects() > before), 20_000, 5);
    let created;
    for (let i = 0; !created; i++) {
      created = await client.create(req).catch((err: { code?: number; details?: string }) => {
        // UNAVAILABLE and ABORTED are retried with the same request id, as clients do.
        if (![14, 10].includes(err.code ?? -1) || i > 100) throw new Error(`CreateDeployment: ${err.code} ${err.details}`);
        return undefined;
      });
      if (!created) await sleep(100);
    }
    const done = await client.waitTerminal(created.id!, 30_000);
    expect(done.state, done.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.targets?.map((t) => [t.agentId, t.state])).toEqual(["a1", "a2", "a3"].map((a) => [a, "TARGET_STATE_SUCCEEDED"]));
  });
});

describe("NATS down longer than agentLiveMs while an agent applies", () => {
  // The coordinator was cut off too: the silence it sees is its own, not
  // the agent's, which went on applying. Only the silence it could have
  // heard counts; the result that comes after NATS is back decides.
  it("the target is not timed out for the outage: its result decides", { timeout: 90_000 }, async () => {
    const stack = await Stack.start({ agents: ["a1"] });
    stacks.push(stack);
    await stack.control("a1", { sleep: 12 });
    const client = stack.client();
    const d = await client.create({ requestId: `outage-apply-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { applyTimeout: { seconds: 60, nanos: 0 } } });
    await until("a1 applying", async () => (await stack.startsOf("a1", d.id!)) === 1, 15_000, 100);
    await stack.nats.kill();
    await sleep(5_000); // liveness 3 s (the stack's)
    await stack.nats.restart();
    const done = await client.waitTerminal(d.id!, 60_000);
    expect(done.targets?.map((t) => [t.agentId, t.state, t.message])).toEqual([["a1", "TARGET_STATE_SUCCEEDED", "exit code 0"]]);
    expect(done.state, done.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });
});

describe("idle heartbeats further apart than agentLiveMs", () => {
  // A fleet's idle interval raised without the coordinators' agentLiveMs:
  // every idle agent flaps offline between its heartbeats, and deployments
  // skip it. The coordinator counts and says so.
  it("are counted and reported by the coordinator, naming the setting", { timeout: 60_000 }, async () => {
    const port = await freePort();
    // Liveness 3 s (the stack's), idle heartbeats every 4.5 s.
    const stack = await Stack.start({ agents: ["a1"], agentEnv: { DEPLOY_AGENT_IDLE_HEARTBEAT_MS: "4500" }, coordinatorEnv: { DEPLOY_METRICS_LISTEN: `127.0.0.1:${port}` } });
    stacks.push(stack);
    const silences = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^deploy_agents_heard_after_silence_total (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    expect(await silences()).toBe(0);
    await until("two silences counted", async () => (await silences()) >= 2, 30_000, 250);
    const log = stack.coordinators[0]!.logs();
    expect(log).toContain("agents heard again after a silence longer than agentLiveMs");
    expect(log).toContain("DEPLOY_AGENT_IDLE_HEARTBEAT_MS");
    // Reported once a minute at most: one line for both.
    expect(log.split("agents heard again after a silence").length - 1).toBe(1);
  });
});

describe("a coordinator that was stalled itself", () => {
  // Paused (a VM frozen, SIGSTOP) longer than agentLiveMs with its
  // connection kept: every heartbeat it handles after the pause looks like
  // an agent's long silence. Those silences are its own: not counted, no
  // warning blaming the agents' links or their settings.
  it("counts no agent as heard after a silence", { timeout: 60_000 }, async () => {
    const port = await freePort();
    // Liveness 3 s (the stack's), idle heartbeats every second.
    const stack = await Stack.start({ agents: ["a1"], agentEnv: { DEPLOY_AGENT_IDLE_HEARTBEAT_MS: "1000", DEPLOY_AGENT_HEARTBEAT_MS: "1000" }, coordinatorEnv: { DEPLOY_METRICS_LISTEN: `127.0.0.1:${port}` } });
    stacks.push(stack);
    const silences = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^deploy_agents_heard_after_silence_total (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    const client = stack.client();
    await until("the agent live", async () => (await client.agents()).agents.every((a) => a.live), 15_000, 200);
    // Heard here a few times.
    await new Promise((r) => setTimeout(r, 2500));
    const coordinator = stack.coordinators[0]!;
    coordinator.signal("SIGSTOP");
    await new Promise((r) => setTimeout(r, 4500));
    coordinator.signal("SIGCONT");
    await until("the agent live again", async () => (await client.agents()).agents.every((a) => a.live), 15_000, 100);
    // More heartbeats heard after the pause.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await silences()).toBe(0);
    expect(coordinator.logs()).not.toContain("agents heard again after a silence");
  });
});

describe("an agent whose credentials predate idle heartbeats", () => {
  it("stores every heartbeat once the server refuses its idle one, and says to re-run gen-credentials", { timeout: 30_000 }, async () => {
    // A user allowed what an agent's old credentials allowed: no deploy.hb.a9.
    const server = await startNatsServer({
      configText: 'authorization { users = [ { user: "a9", password: "p", permissions: { publish: { allow: ["_INBOX.>"] }, subscribe: { allow: ["_INBOX.>"] } } } ] }\n',
    });
    const nc = await connect({ servers: server.url, user: "a9", pass: "p" });
    conns.push(nc);
    const warnings: string[] = [];
    const log = createLogger("test", "warn");
    const logger = Object.assign(Object.create(log) as typeof log, { warn: (o: unknown, msg?: string) => void warnings.push(`${msg ?? ""} ${JSON.stringify(o)}`) });
    let stored = 0;
    const config = { id: "a9", environment: "prod", apps: {}, labels: {} } as unknown as AgentConfig;
    const reg = new Registration({ agents: { put: () => Promise.resolve(++stored) } } as never, config, 100, logger, nc);
    try {
      await reg.start({});
      expect(stored).toBe(1); // the entry, at its start
      await until("heartbeats stored", () => Promise.resolve(stored >= 4), 10_000, 50);
      expect(warnings.join("\n")).toContain("NATS refuses this agent's idle heartbeat (credentials from before it): storing every heartbeat instead; re-run gen-credentials");
    } finally {
      reg.stop();
      await server.stop();
    }
  });
});

describe("an agent's entry after a new release", () => {
  it("a write of the new release that failed is made again at the next heartbeat, not left until the next apply", { timeout: 30_000 }, async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    conns.push(nc);
    const log = createLogger("test", "silent");
    const written: string[] = [];
    let failNext = false;
    const agents = {
      put: (_key: string, value: Uint8Array) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("no responders"));
        }
        written.push((JSON.parse(new TextDecoder().decode(value)) as { currentReleases: Record<string, string> }).currentReleases.web ?? "");
        return Promise.resolve(written.length);
      },
    };
    const config = { id: "a8", environment: "prod", apps: { web: {} }, labels: {} } as unknown as AgentConfig;
    const reg = new Registration({ agents } as never, config, 100, log, nc);
    try {
      await reg.start({});
      await sleep(350);
      // Idle: heartbeats are publishes, nothing more is stored.
      expect(written).toEqual([""]);
      reg.setCurrentRelease("web", { release: "v2-abcdefgh", deploymentId: "d-1-abcdefgh", version: "v2" });
      failNext = true;
      await expect(reg.beat()).rejects.toThrow("no responders");
      await until("the new release stored at a later heartbeat", () => Promise.resolve(written.includes("v2-abcdefgh")), 5_000, 20);
      // Once stored, idle again.
      const n = written.length;
      await sleep(350);
      expect(written.length).toBe(n);
    } finally {
      reg.stop();
      await server.cleanup();
    }
  });
});
