// Faults: processes SIGKILLed at each step of an apply, commands re-published
// by hand, coordinators killed or doubled, agents that never come back,
// malformed messages and a NATS server restart. Every terminal deployment is
// checked against the design's invariants: applied at most once, terminal is
// final, and KV equals the fold of the event stream.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { foldAll, type DeploymentRecord, type StoredEvent } from "../services/shared/src/fold.js";
import { parseEvent, type DeployEvent } from "../services/shared/src/schemas.js";
import { appendEvent } from "../services/shared/src/js/appendEvent.js";
import { requestKeyOf } from "../services/coordinator/src/requests.js";
import { COMMANDS_STREAM, agentConsumerName } from "../services/shared/src/index.js";
import { runCli, shown } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { queuedCommand } from "./helpers/security.js";
import { Journal } from "../services/agent/src/journal.js";
import type { DeployClient, DeploymentMsg } from "./helpers/client.js";

const LONG = 180_000;
const TERMINAL = ["DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_CANCELLED"];

const stacks: Stack[] = [];
const conns: NatsConnection[] = [];

afterEach(async () => {
  await Promise.all(conns.splice(0).map((nc) => (nc.isClosed() ? Promise.resolve() : nc.close().catch(() => undefined))));
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

async function startStack(agents: string[], coordinatorEnv?: Record<string, string>): Promise<Stack> {
  const s = await Stack.start({ agents, ...(coordinatorEnv ? { coordinatorEnv } : {}) });
  stacks.push(s);
  return s;
}

async function natsConn(stack: Stack): Promise<NatsConnection> {
  const nc = await connect({ servers: stack.nats.url, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  conns.push(nc);
  return nc;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let counter = 0;
const uniq = (p: string): string => `${p}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

function createReq(version: string, strategy: Record<string, unknown> = {}): Parameters<DeployClient["create"]>[0] {
  return { requestId: uniq("req"), app: "web", environment: "prod", changeset: { version }, strategy };
}

const targetOf = (d: DeploymentMsg, agentId: string): NonNullable<DeploymentMsg["targets"]>[number] | undefined =>
  d.targets?.find((t) => t.agentId === agentId);

/** getMessage answering null or throwing "no message found" alike. */
async function lastBySubject(jsm: JetStreamManager, stream: string, subject: string): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(stream, { last_by_subj: subject });
  } catch (err) {
    if (/no message found/i.test(String(err))) return null;
    throw err;
  }
}

/** Every event of a deployment, as the fold takes them. */
async function readAllEvents(jsm: JetStreamManager, id: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let seq = 1;
  for (;;) {
    let m: StoredMsg | null;
    try {
      m = await jsm.streams.getMessage("DEPLOY_EVENTS", { seq, next_by_subj: `deploy.evt.${id}.>` } as unknown as { seq: number });
    } catch (err) {
      if (/no message found/i.test(String(err))) break;
      throw err;
    }
    if (m === null) break;
    let event: DeployEvent | undefined;
    try {
      event = parseEvent(m.data);
    } catch {
      event = undefined; // the fold skips what it cannot read
    }
    if (event) out.push({ seq: m.seq, time: m.time.toISOString(), source: m.subject.split(".").at(-1)!, event });
    seq = m.seq + 1;
  }
  return out;
}

function summary(r: DeploymentRecord | undefined): { state?: string; targets: Record<string, string> } {
  if (!r) return { targets: {} };
  return { state: r.state, targets: Object.fromEntries(Object.entries(r.targets).map(([k, t]) => [k, t.state])) };
}

/** Invariant 5: the KV projection of a deployment equals the fold of its events. */
async function expectKvMatchesFold(stack: Stack, id: string): Promise<DeploymentRecord> {
  const nc = await natsConn(stack);
  try {
    const jsm = await jetstreamManager(nc);
    const kv = await new Kvm(nc).open("deploy_deployments");
    let folded: DeploymentRecord | undefined;
    let stored: DeploymentRecord | undefined;
    // KV may trail the stream by one write right after the last event.
    const agree = async (): Promise<boolean> => {
      folded = foldAll(await readAllEvents(jsm, id));
      const e = await kv.get(id);
      stored = e && e.operation === "PUT" ? e.json<DeploymentRecord>() : undefined;
      return JSON.stringify(summary(folded)) === JSON.stringify(summary(stored));
    };
    await waitFor(`KV of ${id} to equal the fold`, agree, 20_000).catch(() => undefined);
    expect(folded).toBeDefined();
    expect(summary(stored)).toEqual(summary(folded));
    return folded!;
  } finally {
    await nc.close();
  }
}

async function waitStart(stack: Stack, agentId: string, id: string): Promise<void> {
  await waitFor(`${agentId} to start ${id}`, async () => (await stack.startsOf(agentId, id)) > 0);
}

async function waitEnd(stack: Stack, agentId: string, id: string): Promise<void> {
  await waitFor(`${agentId} to end ${id}`, async () => (await stack.runs(agentId)).some((r) => r.phase === "end" && r.deploymentId === id));
}

/** Waits until agent `agentId` has published an event of `type` for `id`. */
async function waitAgentEvent(stack: Stack, id: string, agentId: string, type: string): Promise<void> {
  const nc = await natsConn(stack);
  try {
    const jsm = await jetstreamManager(nc);
    await waitFor(`${type} from ${agentId} for ${id}`, async () =>
      (await readAllEvents(jsm, id)).some((e) => e.source === agentId && e.event.type === type),
    );
  } finally {
    await nc.close();
  }
}

describe("agent killed around its apply", () => {
  it("killed right after the deployment is created: ran at most once, terminal", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    // The command reaches the agent about when the create answers (the
    // created event dispatches it), so the kill lands before, during or
    // after its handling: the restarted agent runs it, or reports it
    // interrupted (also between its stored start and its journal's fsync:
    // the next test), and the target ends well before its apply timeout
    // (the default 10 minutes).
    const d = await client.create(createReq("v1"));
    await stack.agent("a1").kill("SIGKILL");
    await sleep(1000);
    await stack.startAgent("a1");
    const done = await client.waitTerminal(d.id!, 90_000);
    expect(TERMINAL).toContain(done.state);
    expect(await stack.startsOf("a1", d.id!)).toBeLessThanOrEqual(1);
    await expectKvMatchesFold(stack, d.id!);
  });

  // Killed once its start is stored, before its journal records it (a
  // window of a few milliseconds; a fault hook makes it certain): nothing
  // ran. The restarted agent finds its start by its nonce, derived from its
  // journal's key, and reports it interrupted at once. It used to decline,
  // unable to tell its start from a lost journal's, and the target waited
  // for its apply timeout (10 minutes by default).
  it("killed between its stored start and its journal record: nothing ran, target FAILED as interrupted at once", { timeout: LONG }, async () => {
    const stack = await startStack([]);
    const agent = await stack.startAgent("a1", { env: { DEPLOY_AGENT_FAULT_KILL_BEFORE_JOURNAL: "1" } });
    const client = stack.client();
    const d = await client.create(createReq("v1", { maxFailures: 0 }));
    await agent.exited();
    await waitAgentEvent(stack, d.id!, "a1", "target.started");
    await stack.startAgent("a1"); // the fault fires once per state directory
    const done = await client.waitTerminal(d.id!, 60_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    const t = targetOf(done, "a1");
    expect(t?.state).toBe("TARGET_STATE_FAILED");
    expect(t?.message).toMatch(/^interrupted: the agent restarted between storing its start and journaling it, before the apply began; not run again/);
    expect(await stack.startsOf("a1", d.id!)).toBe(0);
    await expectKvMatchesFold(stack, d.id!);
    // The next deployment runs as usual.
    const next = await client.waitTerminal((await client.create(createReq("v2"))).id!, 60_000);
    expect(next.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", next.id!)).toBe(1);
  });

  // A command delivered to a run that died before its ack used to wait for
  // the server to deliver it again, ack_wait after the delivery (30 s by
  // default): the restarted agent sat idle, and so did the deployments
  // behind it. The restarted agent asks for it again at once
  // (commandConsumer.ts RECLAIM_ACK_WAIT_MS). ack_wait is 60 s here, so an
  // end within 20 s is the reclaim's.
  it("restarted after dying with its command unacknowledged: gets it again at once, and its consumer keeps its own ack_wait", { timeout: LONG }, async () => {
    const stack = await startStack([]);
    const agent = await stack.startAgent("a1", { env: { DEPLOY_AGENT_ACK_WAIT_MS: "60000", DEPLOY_AGENT_FAULT_KILL_BEFORE_JOURNAL: "1" } });
    const client = stack.client();
    const d = await client.create(createReq("v1", { maxFailures: 0 }));
    await agent.exited();
    await waitAgentEvent(stack, d.id!, "a1", "target.started");
    const restarted = await stack.startAgent("a1");
    const done = await client.waitTerminal(d.id!, 20_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(done, "a1")?.message).toMatch(/^interrupted: the agent restarted between storing its start and journaling it/);
    expect(restarted.logs()).toContain("asking for it again now");
    const nc = await natsConn(stack);
    try {
      const ci = await (await jetstreamManager(nc)).consumers.info(COMMANDS_STREAM, agentConsumerName("a1"));
      expect(ci.config.ack_wait).toBe(60_000 * 1_000_000);
    } finally {
      await nc.close();
    }
    const next = await client.waitTerminal((await client.create(createReq("v2"))).id!, 20_000);
    expect(next.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", next.id!)).toBe(1);
    expect(await stack.startsOf("a1", d.id!)).toBe(0);
  });

  it("killed during its apply: started once, target FAILED as interrupted, deployment FAILED", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    await stack.control("a1", { sleep: 5 });
    const d = await client.create(createReq("v1", { maxFailures: 0 }));
    await waitStart(stack, "a1", d.id!);
    await stack.agent("a1").kill("SIGKILL");
    await stack.control("a1", { sleep: 0 }, false);
    await stack.startAgent("a1");
    const done = await client.waitTerminal(d.id!, 90_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    const t = targetOf(done, "a1");
    expect(t?.state).toBe("TARGET_STATE_FAILED");
    expect(t?.message).toContain("interrupted");
    expect(await stack.startsOf("a1", d.id!)).toBe(1);
    await expectKvMatchesFold(stack, d.id!);
  });

  it("killed after its apply ended, before the ack: ran exactly once, terminal", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    const d = await client.create(createReq("v1"));
    await waitEnd(stack, "a1", d.id!);
    await stack.agent("a1").kill("SIGKILL");
    await stack.startAgent("a1");
    const done = await client.waitTerminal(d.id!, 90_000);
    expect(TERMINAL).toContain(done.state);
    // Let the restarted agent go through its redelivered command too.
    await sleep(2000);
    expect(await stack.startsOf("a1", d.id!)).toBe(1);
    expect((await client.get(d.id!)).state).toBe(done.state);
    await expectKvMatchesFold(stack, d.id!);
  });
});

describe("an agent killed between its stored result and its journal's finished record", () => {
  // The result goes out beside the "finished" record (handleCommand.ts), so
  // a crash can leave the result in the stream and only "started" in the
  // journal. Made here by cutting the journal back to that.
  it("journals the stored result at its restart instead of reporting the apply interrupted", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    const d = await client.create(createReq("v1"));
    const id = d.id!;
    expect((await client.waitTerminal(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await stack.agent("a1").kill("SIGKILL");
    const file = join(stack.dir, "state", "a1", "journal.jsonl");
    type Rec = { op: string; deploymentId: string; result?: { outcome: string; message: string } };
    const records = async (): Promise<Rec[]> => (await readFile(file, "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Rec);
    const journaled = async (): Promise<Rec[]> => (await records()).filter((r) => r.deploymentId === id);
    const kept = (await records()).filter((r) => r.deploymentId !== id || r.op === "started");
    await writeFile(file, kept.map((r) => `${JSON.stringify(r)}\n`).join(""));

    await stack.startAgent("a1");
    // The helper may match the first run's "agent running" line, logged
    // after its recovery: wait for the journal instead.
    await waitFor("the restarted agent to journal the deployment's outcome", async () => (await journaled()).some((r) => r.op === "reported"));
    const after = await journaled();
    expect(after.map((r) => r.op)).toEqual(["started", "finished", "reported"]);
    expect(after[1]!.result).toMatchObject({ outcome: "SUCCEEDED" });
    expect(after[1]!.result!.message).not.toContain("interrupted");

    const nc = await natsConn(stack);
    const results = (await readAllEvents(await jetstreamManager(nc), id)).filter((e) => e.source === "a1" && e.event.type === "target.result");
    expect(results).toHaveLength(1);
    expect(await stack.startsOf("a1", id)).toBe(1);
    expect((await client.get(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await expectKvMatchesFold(stack, id);
  });
});

describe("commands re-published by hand", () => {
  it("the server drops a second copy of a command with its msg id; one stored with another is answered from the journal; the agent ran once", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    const d = await client.create(createReq("v1"));
    const id = d.id!;
    expect((await client.waitTerminal(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");

    const nc = await natsConn(stack);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const subject = "deploy.cmd.a1.queue";
    const original = await queuedCommand(jsm, "a1", id);
    expect(original).not.toBeNull();

    // Inside the duplicate window the msg id drops it; stored with another
    // (a repeat after the window), the agent's journal answers it.
    expect((await js.publish(subject, original!.data, { msgID: `${id}.a1`, headers: original!.header })).duplicate).toBe(true);
    const again = await js.publish(subject, original!.data, { msgID: uniq("other-msg-id"), headers: original!.header });
    expect(again.duplicate).toBe(false);
    const info = await jsm.streams.info("DEPLOY_COMMANDS", { subjects_filter: subject });
    expect(info.state.subjects?.[subject]).toBe(2);

    await waitFor("the agent's consumer to be drained", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.delivered.stream_seq >= again.seq && ci.num_pending === 0 && ci.num_ack_pending === 0;
    });
    await sleep(1000);
    expect(await stack.startsOf("a1", id)).toBe(1);
    expect((await client.get(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await expectKvMatchesFold(stack, id);
  });

  it("a command JetStream forgot and got again is answered from the journal, not run", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    const d = await client.create(createReq("v1"));
    const id = d.id!;
    expect((await client.waitTerminal(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");

    const nc = await natsConn(stack);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const subject = "deploy.cmd.a1.queue";
    const original = await queuedCommand(jsm, "a1", id);
    expect(original).not.toBeNull();
    await jsm.streams.purge("DEPLOY_COMMANDS", { filter: subject });
    const ack = await js.publish(subject, original!.data, { msgID: uniq("again"), headers: original!.header });
    expect(ack.duplicate).toBe(false);

    await waitFor("the agent's consumer to be drained", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.delivered.stream_seq >= ack.seq && ci.num_pending === 0 && ci.num_ack_pending === 0;
    });
    expect(await stack.startsOf("a1", id)).toBe(1);
    expect((await client.get(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await expectKvMatchesFold(stack, id);
  });
});

describe("an agent whose journal dropped a deployment (journalKeepMs)", () => {
  // A command delivered again after its journal entry went (a command
  // stream kept longer than the agent's journalKeepMs): the race finds the
  // target's subject holding its start and result, and nothing runs.
  it("gets its command again, runs nothing and declines it", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    const first = (await client.create(createReq("v1"))).id!;
    expect((await client.waitTerminal(first)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const second = (await client.create(createReq("v2"))).id!;
    expect((await client.waitTerminal(second)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");

    await stack.agent("a1").stop();
    const stateDir = join(stack.dir, "state", "a1");
    const day = 24 * 3600 * 1000;
    const journal = await Journal.open(stateDir, { keepMs: day });
    // Two days on: the first deployment goes; the second is the app's last success, which the agent's release comes from.
    expect(await journal.compact(Date.now() + 2 * day)).toMatchObject({ dropped: 1, kept: 1 });
    await journal.close();
    await stack.startAgent("a1");

    const nc = await natsConn(stack);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const original = await queuedCommand(jsm, "a1", first);
    const ack = await js.publish("deploy.cmd.a1.queue", original!.data, { msgID: uniq("again"), headers: original!.header });
    await waitFor("the agent's consumer to be drained", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.delivered.stream_seq >= ack.seq && ci.num_pending === 0 && ci.num_ack_pending === 0;
    });
    expect(await stack.startsOf("a1", first)).toBe(1);
    const records = (await readFile(join(stateDir, "journal.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { op: string; deploymentId: string; reason?: string });
    const declined = records.find((r) => r.deploymentId === first && r.op === "declined");
    expect(declined?.reason).toMatch(/already ran on this agent, whose journal no longer has it/);
    expect((await client.get(first)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await expectKvMatchesFold(stack, first);
  });
});

describe("coordinators", () => {
  it("a coordinator SIGKILLed mid-rollout: a new one finishes it, each target ran once", { timeout: LONG }, async () => {
    const stack = await startStack(["a1", "a2", "a3"]);
    for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 1 });
    const d = await stack.client().create(createReq("v1", { maxConcurrency: 1 }));
    const id = d.id!;
    await waitStart(stack, "a1", id);
    await stack.coordinators[0]!.kill("SIGKILL");
    const second = await stack.startCoordinator();
    const client = stack.client(stack.coordinatorAddress(second));
    const done = await client.waitTerminal(id, 120_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    for (const a of ["a1", "a2", "a3"]) expect(await stack.startsOf(a, id), a).toBe(1);
    await expectKvMatchesFold(stack, id);
  });

  it("two coordinators at once: no target is dispatched twice, each ran once", { timeout: LONG }, async () => {
    const stack = await startStack(["a1", "a2", "a3"]);
    const second = await stack.startCoordinator();
    const clients = [stack.client(), stack.client(stack.coordinatorAddress(second))];
    for (let round = 0; round < 3; round++) {
      const d = await clients[round % 2]!.create(createReq(`v${round}`, { maxConcurrency: 1 }));
      const id = d.id!;
      const done = await clients[(round + 1) % 2]!.waitTerminal(id, 90_000);
      expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      const events = await clients[0]!.events(id);
      for (const a of ["a1", "a2", "a3"]) {
        // target.dispatched, targets.dispatched, or the created event that dispatched the first target.
        const dispatches = events.filter((e) => (e.type === "target.dispatched" && e.agentId === a) || e.agentIds?.includes(a));
        expect(dispatches.length, `dispatches of ${a}`).toBe(1);
        expect(await stack.startsOf(a, id), `starts of ${a}`).toBe(1);
      }
      await expectKvMatchesFold(stack, id);
    }
  });
});

/**
 * Commands as a coordinator from before the fenced cancel (2026-12-05)
 * issued them, without cancelFenced: their agents look at the deployment
 * after the race, and only the look can stop a start after such a
 * coordinator's cancel request (it wrote target.cancelled after it).
 */
const UNFENCED = { DEPLOY_COORDINATOR_FAULT_UNFENCED_COMMANDS: "1" };

describe("cancel", () => {
  it("an agent that gets its command after a cancel was requested declines it, even with no coordinator to claim its target", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"], UNFENCED);
    const client = stack.client();
    const nc = await natsConn(stack);
    const jsm = await jetstreamManager(nc);
    // Frozen: its command waits for it.
    stack.agent("a1").signal("SIGSTOP");
    const d = await client.create(createReq("v1"));
    const id = d.id!;
    await waitFor("a1's command", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.num_pending + ci.num_ack_pending > 0;
    });
    // No coordinator left to claim (and cancel) the dispatched target: only the agent's own look can stop it.
    await stack.coordinators[0]!.kill("SIGKILL");
    const lastCoordinatorSeq = (await readAllEvents(jsm, id)).filter((e) => e.source === "coordinator").at(-1)!.seq;
    await appendEvent({ js: jetstream(nc) }, id, { type: "deployment.cancel_requested", reason: "stop" }, { source: "coordinator", expectLastSubjectSeq: lastCoordinatorSeq });
    stack.agent("a1").signal("SIGCONT");
    await waitAgentEvent(stack, id, "a1", "target.declined");
    expect(await stack.startsOf("a1", id)).toBe(0);
    // A coordinator back: the target is cancelled by the agent's decline after its start (its look after the race saw the cancel).
    await stack.startCoordinator();
    const done = await stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!)).waitTerminal(id, 60_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_CANCELLED");
    expect(await stack.startsOf("a1", id)).toBe(0);
    await expectKvMatchesFold(stack, id);
  });
});

describe("a cancel whose caller died half-way", () => {
  // A cancel stores its target.cancelled before its request
  // (rollout/plan.ts cancelDecisions). A caller that dies between the two
  // leaves a cancel under way: the freed slot goes to no other target, and
  // the coordinator makes the request itself 5 s later, so the deployment
  // still finishes, CANCELLED, in the caller's words.
  it("is completed by the coordinator: nothing else is dispatched, and the deployment ends CANCELLED", { timeout: LONG }, async () => {
    const stack = await startStack(["a1", "a2"]);
    const client = stack.client();
    const nc = await natsConn(stack);
    const jsm = await jetstreamManager(nc);
    for (const a of ["a1", "a2"]) stack.agent(a).signal("SIGSTOP");
    const id = (await client.create(createReq("v1", { maxConcurrency: 1 }))).id!;
    let first = "";
    await waitFor("the first command", async () => {
      for (const a of ["a1", "a2"]) {
        const ci = await jsm.consumers.info("DEPLOY_COMMANDS", `agent-${a}`);
        if (ci.num_pending + ci.num_ack_pending > 0) first = a;
      }
      return first !== "";
    });
    const other = first === "a1" ? "a2" : "a1";
    // What the caller wrote before it died: the dispatched target's target.cancelled, on its own subject.
    await appendEvent({ js: jetstream(nc) }, id, { type: "target.cancelled", agentId: first, message: "cancelled: stop" }, { source: first, expectLastSubjectSeq: 0 });
    for (const a of ["a1", "a2"]) stack.agent(a).signal("SIGCONT");
    const done = await client.waitTerminal(id, 60_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(done.message).toBe("cancelled: stop (completed by the coordinator: its caller did not finish it)");
    expect(targetOf(done, first)?.state).toBe("TARGET_STATE_CANCELLED");
    // Never dispatched into the slot the cancel freed.
    expect(targetOf(done, other)?.state).toBe("TARGET_STATE_CANCELLED");
    const events = await client.events(id);
    // One dispatch, the first target's, made with the creation.
    expect(events.filter((e) => e.type === "target.dispatched" || (e.agentIds ?? []).length > 0).map((e) => [e.type, e.agentIds])).toEqual([["deployment.created", [first]]]);
    await waitAgentEvent(stack, id, first, "target.declined");
    for (const a of ["a1", "a2"]) expect(await stack.startsOf(a, id), a).toBe(0);
    await expectKvMatchesFold(stack, id);
  });
});

describe("cancel hidden behind a later coordinator event", () => {
  // Issue 16: the agent's look reads only the last coordinator event; a
  // target.timed_out decided after the cancel request used to hide it, and
  // the agent ran a cancelled deployment. Every coordinator event decided on
  // a view with the cancel now carries Deploy-Cancel-Requested.
  it("an agent whose look finds a target.timed_out after cancel_requested still declines", { timeout: LONG }, async () => {
    const stack = await startStack(["a1", "a2"], UNFENCED);
    const client = stack.client();
    const nc = await natsConn(stack);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    stack.agent("a1").signal("SIGSTOP");
    stack.agent("a2").signal("SIGSTOP");
    const d = await client.create(createReq("v1", { maxConcurrency: 2 }));
    const id = d.id!;
    await waitFor("both commands", async () => {
      const [c1, c2] = await Promise.all(["agent-a1", "agent-a2"].map((c) => jsm.consumers.info("DEPLOY_COMMANDS", c)));
      return c1!.num_pending + c1!.num_ack_pending > 0 && c2!.num_pending + c2!.num_ack_pending > 0;
    });
    await stack.coordinators[0]!.kill("SIGKILL");
    // What a coordinator does: the cancel request, then (on a view holding it) a2 timed out.
    let last = (await readAllEvents(jsm, id)).filter((e) => e.source === "coordinator").at(-1)!.seq;
    last = await appendEvent({ js }, id, { type: "deployment.cancel_requested", reason: "stop" }, { source: "coordinator", expectLastSubjectSeq: last });
    await appendEvent({ js }, id, { type: "target.timed_out", agentId: "a2", phase: "delivery", message: "no answer" }, { source: "coordinator", expectLastSubjectSeq: last, cancelRequested: true });
    stack.agent("a1").signal("SIGCONT");
    await waitAgentEvent(stack, id, "a1", "target.declined");
    expect(await stack.startsOf("a1", id)).toBe(0);
    stack.agent("a2").signal("SIGCONT");
    await stack.startCoordinator();
    const done = await stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!)).waitTerminal(id, 60_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_CANCELLED");
    expect(await stack.startsOf("a1", id)).toBe(0);
    expect(await stack.startsOf("a2", id)).toBe(0);
    await expectKvMatchesFold(stack, id);
  });
});

describe("an unreadable message on a target's own subject", () => {
  // Found by reasoning over the fault suite's poison-event kind: the agent
  // reads only the last message on its target's subject before it races; an
  // unreadable one after a coordinator's target.timed_out hid the timeout,
  // the agent's started (expecting the unreadable one's sequence) was
  // stored, and it ran a target already TIMED_OUT.
  it("hides nothing: an agent whose target's subject ends with one does not start (it declines), even after a timeout", { timeout: LONG }, async () => {
    const stack = await startStack(["a1", "a2"]);
    const client = stack.client();
    const nc = await natsConn(stack);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    stack.agent("a1").signal("SIGSTOP");
    const d = await client.create(createReq("v1", { maxConcurrency: 2, maxFailures: 2 }));
    const id = d.id!;
    await waitFor("a1's command", async () => {
      const c = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return c.num_pending + c.num_ack_pending > 0;
    });
    await stack.coordinators[0]!.kill("SIGKILL");
    // What a coordinator does when a1 is late: a1 timed out on a1's own subject (the race), then poison after it.
    await appendEvent({ js }, id, { type: "target.timed_out", agentId: "a1", phase: "delivery", message: "no answer" }, { source: "a1", expectLastSubjectSeq: 0 });
    await js.publish(`deploy.evt.${id}.a1`, new TextEncoder().encode("{not json"));
    stack.agent("a1").signal("SIGCONT");
    await waitAgentEvent(stack, id, "a1", "target.declined");
    expect(await stack.startsOf("a1", id)).toBe(0);
    await stack.startCoordinator();
    const done = await stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!)).waitTerminal(id, 60_000);
    expect(TERMINAL).toContain(done.state);
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_TIMED_OUT");
    expect(await stack.startsOf("a1", id)).toBe(0);
    await expectKvMatchesFold(stack, id);
  });
});

describe("an agent paused right after it wins its claim", () => {
  // Issue 16: the agent won its claim, was paused (SIGSTOP) past the
  // coordinator's liveness limit, the coordinator timed the target out and
  // finished the deployment; on SIGCONT the agent used to run it anyway. Its
  // start lease (no heartbeat gap longer than 90 % of agentLiveMs since the
  // claim) now stops it: it reports a late FAILED and runs nothing.
  it("is timed out, and on waking runs nothing: start lease expired", { timeout: LONG }, async () => {
    const stack = await Stack.start({ agents: [], agentEnv: { DEPLOY_AGENT_FAULT_STOP_AFTER_CLAIM: "1" } });
    stacks.push(stack);
    await stack.startAgent("a1");
    const client = stack.client();
    const d = await client.create(createReq("v1"));
    const id = d.id!;
    const done = await client.waitTerminal(id, 90_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_TIMED_OUT");
    stack.agent("a1").signal("SIGCONT");
    await waitAgentEvent(stack, id, "a1", "target.result");
    expect(await stack.startsOf("a1", id)).toBe(0);
    const after = await client.get(id);
    expect(after.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(after, "a1")?.state).toBe("TARGET_STATE_TIMED_OUT");
    expect(targetOf(after, "a1")?.lateResult).toMatch(/^FAILED: not started: start lease expired: \d+ ms without an acknowledged heartbeat/);
    // deployctl get says what the agent reported after the timeout, which the target's state does not.
    const got = await runCli(["get", id], { env: { ...process.env, DEPLOY_COORDINATOR: stack.address, NO_COLOR: "1" } });
    expect(got.stdout, shown(got)).toMatch(/^ {2}a1: result after it was TIMED_OUT: FAILED: not started: start lease expired: /m);
    // Awake again, it serves the next deployment as usual.
    const next = await client.waitTerminal((await client.create(createReq("v2"))).id!, 60_000);
    expect(next.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await expectKvMatchesFold(stack, id);
  });
});

describe("a cancel requested before the agent's start was stored", () => {
  // Chaos seed 81043: a2 looked at its deployment, its race was retried
  // through a DEPLOY_EVENTS leader election, and it won 418 ms after a
  // cancel was requested, before the coordinator had written its
  // target.cancelled: it ran. A cancel now writes each dispatched target's
  // target.cancelled before its request (rollout/plan.ts cancelDecisions),
  // so the race alone decides. Here the agent waits 3 s between its journal
  // and its race (a fault hook), and the coordinator is stopped once the
  // cancel is answered, so that only what the cancel wrote can stop the start.
  /** A stack whose one agent waits 3 s before its race, and a deployment to it whose agent is waiting there. */
  async function slowRace(coordinatorEnv?: Record<string, string>): Promise<{ stack: Stack; client: DeployClient; id: string }> {
    const stack = await Stack.start({ agents: [], agentEnv: { DEPLOY_AGENT_FAULT_DELAY_RACE_MS: "3000" }, ...(coordinatorEnv ? { coordinatorEnv } : {}) });
    stacks.push(stack);
    const agent = await stack.startAgent("a1");
    const client = stack.client();
    const id = (await client.create(createReq("v1"))).id!;
    await agent.waitForLog("fault: delaying the race", 30_000);
    return { stack, client, id };
  }

  /** With the coordinator stopped, a1 declines; it ran nothing, and the deployment and a1 end CANCELLED with `message`. */
  async function declinedWhileStopped(stack: Stack, client: DeployClient, id: string, message: string, meanwhile: () => Promise<void> = async () => {}): Promise<void> {
    const coordinator = stack.coordinators[0]!;
    coordinator.signal("SIGSTOP");
    try {
      await meanwhile();
      await waitAgentEvent(stack, id, "a1", "target.declined");
    } finally {
      coordinator.signal("SIGCONT");
    }
    expect(await stack.startsOf("a1", id)).toBe(0);
    const done = await client.waitTerminal(id, 60_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_CANCELLED");
    expect(targetOf(done, "a1")?.message).toBe(message);
    await expectKvMatchesFold(stack, id);
  }

  it("is decided by the target's race: the slow start loses to the cancel's target.cancelled, and runs nothing", { timeout: LONG }, async () => {
    const { stack, client, id } = await slowRace();
    const cancelled = await client.cancel(id, "test");
    expect(cancelled.cancelRequested).toBe(true);
    expect(targetOf(cancelled, "a1")?.state).toBe("TARGET_STATE_CANCELLED");
    await declinedWhileStopped(stack, client, id, "cancelled: test");
  });

  // A coordinator from before the fence (here a fault hook that issues its
  // commands) appends the request first and its target.cancelled after: its
  // commands do not say cancelFenced, and the agent looks at its deployment
  // after the race, which sees any cancel requested before the start was stored.
  it("from an older coordinator, is seen by the look after a slow race: the target runs nothing and is CANCELLED", { timeout: LONG }, async () => {
    const { stack, client, id } = await slowRace(UNFENCED);
    // Its start won (target.started is stored), and the decline after it ends the target.
    await declinedWhileStopped(stack, client, id, "declined by the agent: the deployment is being cancelled: not started", async () => {
      // What that coordinator's CancelDeployment appends, by compare-and-set on the coordinator's subject.
      const nc = await natsConn(stack);
      const jsm = await jetstreamManager(nc);
      const last = await lastBySubject(jsm, "DEPLOY_EVENTS", `deploy.evt.${id}.coordinator`);
      await appendEvent({ js: jetstream(nc) }, id, { type: "deployment.cancel_requested", reason: "test", by: "test", byVia: "none" }, { source: "coordinator", expectLastSubjectSeq: last!.seq });
    });
  });
});

describe("a lock left by a failed create of the same request", () => {
  // A create that took the (app, environment) lock and failed before
  // recording its request id (and could not give the lock back) used to
  // wedge that request: every retry found "its own" lock and waited for a
  // mapping that never came (DEADLINE_EXCEEDED, chaos seed 7018).
  it("is taken over once it is older than the follow time: the retry creates the deployment", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const nc = await natsConn(stack);
    const kv = await new Kvm(nc).open("deploy_deployments");
    const req = createReq("v1");
    await kv.create("active.web.prod", JSON.stringify({ deploymentId: "d-0mx000000-deadbeef", requestKey: requestKeyOf(req.requestId as string) }));
    await new Promise((r) => setTimeout(r, 5500)); // FOLLOW_MS: the creator would have recorded the request by now
    const d = await stack.client().create(req);
    expect((await stack.client().waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", d.id!)).toBe(1);
  });
});

describe("a declined target", () => {
  // Issue 16: whatever the reason an agent declines, the target is terminal
  // with that reason at once, not after the delivery timeout (10 min here).
  it("is FAILED with the agent's reason at once, and the deployment finishes", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    const jsm = await jetstreamManager(await natsConn(stack));
    stack.agent("a1").signal("SIGSTOP");
    const d = await client.create(createReq("v1", { deliveryTimeout: { seconds: 600 } }));
    const id = d.id!;
    await waitFor("a1's command", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.num_pending + ci.num_ack_pending > 0;
    });
    // Back, but moved to another environment by its operator: it must decline.
    await stack.agent("a1").kill("SIGKILL");
    await stack.startAgent("a1", { environment: "staging", env: {} });
    const done = await client.waitTerminal(id, 90_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_FAILED");
    expect(targetOf(done, "a1")?.message).toBe("declined by the agent: this agent is in environment staging, not prod");
    expect(await stack.startsOf("a1", id)).toBe(0);
    await expectKvMatchesFold(stack, id);
  });
});

describe("an agent that never comes back", () => {
  it("never picks up its command: TIMED_OUT, FAILED; on its return it runs nothing", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    // Frozen: still live in the registry for a moment, but it cannot start.
    stack.agent("a1").signal("SIGSTOP");
    const d = await client.create(createReq("v1", { deliveryTimeout: { seconds: 2 } }));
    const id = d.id!;
    await stack.agent("a1").kill("SIGKILL");
    const done = await client.waitTerminal(id, 90_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_TIMED_OUT");

    await stack.startAgent("a1");
    await waitAgentEvent(stack, id, "a1", "target.declined");
    expect(await stack.startsOf("a1", id)).toBe(0);
    const after = await client.get(id);
    expect(after.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(after, "a1")?.state).toBe("TARGET_STATE_TIMED_OUT");
    await expectKvMatchesFold(stack, id);
  });

  it("dies while applying: heartbeats stop, TIMED_OUT, FAILED; on its return it runs nothing again", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    await stack.control("a1", { sleep: 20 });
    const d = await client.create(createReq("v1"));
    const id = d.id!;
    await waitStart(stack, "a1", id);
    await stack.agent("a1").kill("SIGKILL");
    await stack.control("a1", { sleep: 0 }, false);
    const done = await client.waitTerminal(id, 90_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(done, "a1")?.state).toBe("TARGET_STATE_TIMED_OUT");

    await stack.startAgent("a1");
    // Its journal says "started": it reports the apply interrupted (a late result).
    await waitAgentEvent(stack, id, "a1", "target.result");
    expect(await stack.startsOf("a1", id)).toBe(1);
    const after = await client.get(id);
    expect(after.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(targetOf(after, "a1")?.state).toBe("TARGET_STATE_TIMED_OUT");
    await expectKvMatchesFold(stack, id);
  });
});

describe("malformed messages on an agent's subject", () => {
  it("are terminated with an agent.rejected_message event, and the agent keeps working", { timeout: LONG }, async () => {
    const stack = await startStack(["a1"]);
    const client = stack.client();
    const nc = await natsConn(stack);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

    const badJson = uniq("bad-json");
    const badSchema = uniq("bad-schema");
    const other = uniq("other-agent");
    const messages: [string, Uint8Array][] = [
      [badJson, enc("{not json")],
      [badSchema, enc(JSON.stringify({ schema: "something.else.v9", deploymentId: badSchema, hello: "world" }))],
      [
        other,
        enc(
          JSON.stringify({
            schema: "deploy.command.v1",
            deploymentId: other,
            agentId: "a2",
            app: "web",
            environment: "prod",
            changeset: { version: "v1" },
            applyTimeoutMs: 60_000,
            issuedAt: new Date().toISOString(),
          }),
        ),
      ],
    ];
    for (const [, data] of messages) await js.publish("deploy.cmd.a1.queue", data);
    // Beside the queue (never delivered: the agent's filter is the queue's
    // subject), and a well-formed command of a deployment that does not exist.
    const deep = uniq("deep");
    await js.publish(`deploy.cmd.a1.queue.${deep}`, enc("{}"));
    await js.publish(`deploy.cmd.a1.${deep}`, enc("{}"));
    const ghost = uniq("ghost");
    await js.publish(
      "deploy.cmd.a1.queue",
      enc(JSON.stringify({ schema: "deploy.command.v1", deploymentId: ghost, agentId: "a1", app: "web", environment: "prod", changeset: { version: "v1" }, applyTimeoutMs: 60_000, issuedAt: new Date().toISOString() })),
    );

    // Filed under the deployment the payload names; an unreadable payload names none.
    for (const [id] of messages) {
      let event: DeployEvent | undefined;
      await waitFor(`agent.rejected_message for ${id}`, async () => {
        const m = await lastBySubject(jsm, "DEPLOY_EVENTS", `deploy.evt.${id === badJson ? "_invalid" : id}.a1`);
        if (m) event = parseEvent(m.data);
        return event !== undefined;
      });
      expect(event!.type).toBe("agent.rejected_message");
    }
    await waitFor("the agent's consumer to be drained", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.num_pending === 0 && ci.num_ack_pending === 0;
    });
    const redelivered = (await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1")).num_redelivered;

    const d = await client.create(createReq("v1"));
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", d.id!)).toBe(1);
    expect(stack.agent("a1").running).toBe(true);
    const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
    expect(ci.num_ack_pending).toBe(0);
    expect(ci.num_redelivered).toBe(redelivered);
    for (const id of [...messages.map(([i]) => i), deep, ghost]) expect(await stack.startsOf("a1", id)).toBe(0);
    await expectKvMatchesFold(stack, d.id!);
  });
});

describe("NATS server", () => {
  it("SIGKILLed and restarted mid-rollout: the rollout completes, each target ran at most once", { timeout: LONG }, async () => {
    const stack = await startStack(["a1", "a2", "a3"]);
    for (const a of ["a1", "a2", "a3"]) await stack.control(a, { sleep: 1 });
    const client = stack.client();
    const d = await client.create(createReq("v1", { maxConcurrency: 1 }));
    const id = d.id!;
    await waitStart(stack, "a1", id);
    await stack.nats.kill();
    await sleep(1000);
    await stack.nats.restart();
    const done = await client.waitTerminal(id, 150_000);
    expect(TERMINAL).toContain(done.state);
    for (const a of ["a1", "a2", "a3"]) expect(await stack.startsOf(a, id), a).toBeLessThanOrEqual(1);
    await expectKvMatchesFold(stack, id);
  });
});
