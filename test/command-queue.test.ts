// The command queue (names.ts agentCommandQueue), end to end with real
// processes: an agent whose consumer an earlier version made (the wildcard
// deploy.cmd.<agent>.>, an entry without commandQueue) keeps that filter
// while a command waits for it on a deployment's own subject, runs it, and
// moves to its queue at a later start that finds nothing left; one whose
// consumer is made again while its entry is an earlier version's makes it
// on the wildcard, so a command on a deployment's subject still comes.
import { afterEach, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Stack } from "./helpers/stack.js";
import { lastBySubject, queuedCommand, uniq, waitFor } from "./helpers/security.js";

const LONG = 180_000;
const stacks: Stack[] = [];
const conns: NatsConnection[] = [];

afterEach(async () => {
  await Promise.all(conns.splice(0).map((nc) => nc.close().catch(() => undefined)));
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

const create = (version: string) => ({ requestId: uniq("req"), app: "web", environment: "prod", changeset: { version } });

/** A stack with agent a1, and what the tests read and write of a1 by hand. */
async function stackWithA1() {
  const stack = await Stack.start({ agents: ["a1"] });
  stacks.push(stack);
  const client = stack.client();
  const nc = await connect({ servers: stack.nats.url });
  conns.push(nc);
  const jsm = await jetstreamManager(nc);
  const agents = await new Kvm(nc).open("deploy_agents");
  const entry = async (): Promise<Record<string, unknown>> => JSON.parse((await agents.get("a1"))!.string()) as Record<string, unknown>;
  return {
    stack,
    client,
    jsm,
    entry,
    filter: async (): Promise<string | undefined> => (await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1").catch(() => undefined))?.config.filter_subject,
    /** a1's entry as an earlier version wrote it (no commandQueue), seen by the coordinators (they follow the bucket: a moment). */
    olderEntry: async (): Promise<void> => {
      const { commandQueue: _, ...older } = await entry();
      await agents.put("a1", JSON.stringify(older));
      await new Promise((r) => setTimeout(r, 1000));
    },
    /** A deployment whose command the coordinator publishes on its own subject, as for an agent from before the queue. */
    onDeploymentSubject: async (version: string): Promise<string> => {
      const id = (await client.create(create(version))).id!;
      await waitFor("the command on the deployment's subject", async () => (await lastBySubject(jsm, "DEPLOY_COMMANDS", `deploy.cmd.a1.${id}`)) !== null);
      return id;
    },
  };
}

describe("the command queue", () => {
  it("an agent's consumer from an earlier version keeps its wildcard while a command waits on a deployment's subject, then moves to the queue", { timeout: LONG }, async () => {
    const { stack, client, jsm, entry, filter, olderEntry, onDeploymentSubject } = await stackWithA1();
    expect(await filter()).toBe("deploy.cmd.a1.queue");
    expect((await entry())["commandQueue"]).toBe(true);

    // a1 as an earlier version left it: the wildcard, and an entry without commandQueue.
    await stack.agent("a1").kill("SIGTERM");
    await jsm.consumers.update("DEPLOY_COMMANDS", "agent-a1", { filter_subject: "deploy.cmd.a1.>" });
    await olderEntry();

    // The coordinator publishes on the deployment's own subject, which waits for a1.
    const first = await onDeploymentSubject("v1");
    await stack.startAgent("a1");
    await waitFor("the agent to keep its wildcard", () => stack.agent("a1").logs().includes("keeps its wildcard filter"));
    expect((await client.waitTerminal(first)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", first)).toBe(1);
    expect(await filter()).toBe("deploy.cmd.a1.>");
    // It says commandQueue all the same: the wildcard takes the queue too.
    expect((await entry())["commandQueue"]).toBe(true);

    // Nothing left on the older subjects at the next start: moved to the queue.
    await stack.agent("a1").kill("SIGTERM");
    await stack.startAgent("a1");
    // (startAgent may return on the run before's "agent running" line.)
    await waitFor("the consumer to filter the queue", async () => (await filter()) === "deploy.cmd.a1.queue");
    await waitFor("the agent to say so", () => stack.agent("a1").logs().includes("moved the command consumer to this agent's command queue"));
    await waitFor("the entry to say commandQueue", async () => (await entry())["commandQueue"] === true);
    const second = (await client.create(create("v2"))).id!;
    expect((await client.waitTerminal(second)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", second)).toBe(1);
    expect(await queuedCommand(jsm, "a1", second)).not.toBeNull();
  });

  it("a consumer made again for an agent whose entry an earlier version wrote takes the wildcard first, then the queue", { timeout: LONG }, async () => {
    const { stack, client, jsm, filter, olderEntry, onDeploymentSubject } = await stackWithA1();

    // Gone (a single nats-server's restart forgets a consumer kept in
    // memory) while the agent was away, and its entry an earlier version's.
    await stack.agent("a1").kill("SIGTERM");
    await jsm.consumers.delete("DEPLOY_COMMANDS", "agent-a1");
    await olderEntry();
    // A coordinator that saw that entry publishes on the deployment's subject.
    const first = await onDeploymentSubject("v1");

    await stack.startAgent("a1");
    await waitFor("the consumer made on the wildcard", () => stack.agent("a1").logs().includes('"filter":"wildcard","msg":"made the command consumer"'));
    expect((await client.waitTerminal(first)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", first)).toBe(1);
    await stack.agent("a1").kill("SIGTERM");
    await stack.startAgent("a1");
    await waitFor("the consumer to filter the queue", async () => (await filter()) === "deploy.cmd.a1.queue");
    const second = (await client.create(create("v2"))).id!;
    expect((await client.waitTerminal(second)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await queuedCommand(jsm, "a1", second)).not.toBeNull();
  });
});
