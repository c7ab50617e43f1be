// The agent's command consumer keeps its state in nats-server's memory
// (services/agent/src/commandConsumer.ts): a restart of a single server
// forgets it, and an operator may delete it (to change its storage). The
// agent makes it again, from shortly before its last command, and nothing
// runs twice. A real nats-server (restarted on its port and store), the nats
// CLI, a coordinator and agents.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type ConsumerInfo, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { PULL_EXPIRES_SPREAD_MS, pullOptions } from "../services/agent/src/agent.js";
import { CommandCursor } from "../services/agent/src/commandConsumer.js";
import { COMMANDS_STREAM, agentConsumerName } from "../services/shared/src/index.js";
import { toolPath } from "../scripts/lib/tools.js";
import { freePort } from "./helpers/nats-server.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const stacks: Stack[] = [];
const conns: NatsConnection[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(conns.splice(0).map((nc) => nc.close()));
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function manager(stack: Stack): Promise<JetStreamManager> {
  const nc = await connect({ servers: stack.nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  conns.push(nc);
  return jetstreamManager(nc);
}

const consumerOf = (jsm: JetStreamManager, id: string): Promise<ConsumerInfo | undefined> =>
  jsm.consumers.info(COMMANDS_STREAM, agentConsumerName(id)).catch(() => undefined);

const deploy = async (stack: Stack, version: string): Promise<string> => {
  const client = stack.client();
  const d = await client.create({ requestId: `cc-${version}-${Date.now()}`, app: "web", environment: "prod", changeset: { version } });
  expect((await client.waitTerminal(d.id!, 60_000)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  return d.id!;
};

const cursorOf = async (stack: Stack, id: string): Promise<string> =>
  (JSON.parse(await readFile(join(stack.dir, "state", id, CommandCursor.FILE), "utf8")) as { storedAt: string }).storedAt;

describe("command consumer", () => {
  it("kept in memory; after a nats-server restart forgets it, the agent makes it again from its last command and nothing runs twice", { timeout: 120_000 }, async () => {
    const stack = await Stack.start({ agents: ["a2"] });
    stacks.push(stack);
    const metricsPort = await freePort();
    await stack.startAgent("a1", { env: { DEPLOY_AGENT_METRICS_LISTEN: `127.0.0.1:${metricsPort}` } });
    const made = async (): Promise<string> => /deploy_agent_command_consumers_made_total (\d+)/.exec(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())?.[1] ?? "?";
    const jsm = await manager(stack);
    expect((await consumerOf(jsm, "a1"))?.config.mem_storage).toBe(true);
    expect(await made()).toBe("0");
    const first = await deploy(stack, "v1");
    await until("a1's cursor written", async () => (await cursorOf(stack, "a1").catch(() => "")) !== "", 10_000, 50);
    const storedAt = Date.parse(await cursorOf(stack, "a1"));

    await stack.nats.kill();
    await stack.nats.restart();
    await until("a1 and a2 make their consumers again", async () => Boolean((await consumerOf(jsm, "a1")) && (await consumerOf(jsm, "a2"))), 30_000, 100);
    const remade = (await consumerOf(jsm, "a1"))!;
    expect(remade.config.mem_storage).toBe(true);
    expect(await made()).toBe("1");
    expect(remade.config.deliver_policy).toBe("by_start_time");
    expect(Date.parse(remade.config.opt_start_time!)).toBe(storedAt - CommandCursor.CURSOR_MARGIN_MS);

    const second = await deploy(stack, "v2");
    for (const a of ["a1", "a2"]) {
      expect(await stack.startsOf(a, first), a).toBe(1);
      expect(await stack.startsOf(a, second), a).toBe(1);
    }
    // v1 was stored within the cursor's margin: delivered again and answered from the journal.
    expect(stack.agent("a1").logs()).toContain("command already in journal, its outcome reported: running nothing");
    await until("a1's consumer drained", async () => {
      const ci = await consumerOf(jsm, "a1");
      return ci !== undefined && ci.num_pending === 0 && ci.num_ack_pending === 0;
    }, 10_000, 100);
  });

  it("a file-stored consumer is kept until an operator deletes it (nats consumer rm); the agent makes it again in memory", { timeout: 120_000 }, async () => {
    const stack = await Stack.start({ agents: [] });
    stacks.push(stack);
    await stack.startAgent("a1", { env: { DEPLOY_AGENT_COMMAND_CONSUMER_STORAGE: "file" } });
    const jsm = await manager(stack);
    expect((await consumerOf(jsm, "a1"))?.config.mem_storage ?? false).toBe(false);
    const first = await deploy(stack, "v1");

    // Restarted with the default (memory): the consumer in place stays as it is.
    await stack.agent("a1").kill("SIGTERM");
    const agent = await stack.startAgent("a1", { env: {} });
    expect(agent.logs()).toContain("the command consumer keeps its storage until it is deleted");
    expect((await consumerOf(jsm, "a1"))?.config.mem_storage ?? false).toBe(false);

    const home = await mkdtemp(join(tmpdir(), "cc-cli-"));
    dirs.push(home);
    const rmOut = await new Promise<string>((resolve, reject) =>
      execFile(toolPath("nats"), ["--server", stack.nats.url, "consumer", "rm", COMMANDS_STREAM, agentConsumerName("a1"), "-f"], { env: { PATH: process.env.PATH, HOME: home }, timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stdout}${stderr}`)) : resolve(stdout + stderr),
      ),
    );
    expect(rmOut).not.toMatch(/error/i);
    await until("a1 makes its consumer again, in memory", async () => (await consumerOf(jsm, "a1"))?.config.mem_storage === true, 30_000, 100);
    const second = await deploy(stack, "v2");
    expect(await stack.startsOf("a1", first)).toBe(1);
    expect(await stack.startsOf("a1", second)).toBe(1);
  });
});

describe("CommandCursor", () => {
  it("keeps the latest stored time only, starts a margin before it, and survives a reopen", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cursor-"));
    dirs.push(dir);
    const errors: string[] = [];
    const c = await CommandCursor.open(dir, (m) => errors.push(m));
    expect(c.startAt()).toBeUndefined();
    c.handled(new Date("2026-01-01T00:00:10Z"));
    c.handled(new Date("2026-01-01T00:00:05Z")); // an earlier command handled again: no step back
    await c.settled();
    const again = await CommandCursor.open(dir, (m) => errors.push(m));
    // 60 s before the latest.
    expect(again.startAt()?.toISOString()).toBe("2025-12-31T23:59:10.000Z");
    expect(errors).toEqual([]);
  });

  it("is written WRITE_AFTER_MS after the first command handled since the last write, not once per command", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cursor-"));
    dirs.push(dir);
    const c = await CommandCursor.open(dir, () => undefined);
    const file = join(dir, CommandCursor.FILE);
    const t0 = Date.now();
    c.handled(new Date("2026-01-01T00:00:01Z"));
    c.handled(new Date("2026-01-01T00:00:02Z"));
    expect(await readFile(file, "utf8").catch(() => "none")).toBe("none");
    await until("the cursor written", async () => (await readFile(file, "utf8").catch(() => "")) !== "", 5000, 20);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(CommandCursor.WRITE_AFTER_MS - 50);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ storedAt: "2026-01-01T00:00:02.000Z" });
  });

  it("an unreadable file is reported and means: from the first kept command", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cursor-"));
    dirs.push(dir);
    await writeFile(join(dir, CommandCursor.FILE), "{not json");
    const errors: string[] = [];
    const c = await CommandCursor.open(dir, (m) => errors.push(m));
    expect(c.startAt()).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(CommandCursor.FILE);
  });
});

describe("pullOptions", () => {
  it("each agent's pull expires after its own time, 300 to 360 s, so that a fleet that pulled together does not renew together", () => {
    expect(pullOptions(() => 0).expires).toBe(300_000);
    expect(pullOptions(() => 0.999_999).expires).toBe(300_000 + PULL_EXPIRES_SPREAD_MS - 1);
    const spread = new Set(Array.from({ length: 100 }, () => pullOptions().expires));
    expect(spread.size).toBeGreaterThan(90);
    expect(pullOptions().idle_heartbeat).toBe(30_000);
  });
});
