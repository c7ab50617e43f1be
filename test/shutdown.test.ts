// Graceful shutdown with real signals.
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Stack } from "./helpers/stack.js";

async function pollUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("shutdown", () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it("SIGTERM: the coordinator ends open watches with UNAVAILABLE and exits 0; a watch resumed elsewhere misses nothing", async () => {
    stack = await Stack.start({ agents: ["a1"] });
    const second = await stack.startCoordinator();
    await stack.control("a1", { sleep: 2 });
    const client = stack.client();
    const d = await client.create({ requestId: "shut-1", app: "web", environment: "prod", changeset: { version: "v1" } });
    const seen: number[] = [];
    const w = client.watch(d.id!, 0, (e) => seen.push(Number(e.sequence)));
    await pollUntil("a1 applying", async () => (await stack!.runs("a1")).length > 0);
    stack.coordinators[0]!.signal("SIGTERM");
    const err = await w.done.then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(await stack.coordinators[0]!.exited()).toBe(0);
    const rest = await stack.client(stack.coordinatorAddress(second)).events(d.id!, seen.at(-1) ?? 0);
    const all = [...seen, ...rest.map((e) => Number(e.sequence))];
    expect(new Set(all).size).toBe(all.length);
    expect(rest.at(-1)?.type).toBe("deployment.finished");
    const full = await stack.client(stack.coordinatorAddress(second)).events(d.id!, 0);
    expect(all).toEqual(full.map((e) => Number(e.sequence)));
  });

  it("SIGTERM: the agent stops pulling and lets the in-flight apply finish and report", async () => {
    stack = await Stack.start({ agents: ["a1"] });
    await stack.control("a1", { sleep: 2 });
    const client = stack.client();
    const d = await client.create({ requestId: "shut-2", app: "web", environment: "prod", changeset: { version: "v1" } });
    await pollUntil("a1 applying", async () => (await stack!.runs("a1")).length > 0);
    stack.agent("a1").signal("SIGTERM");
    expect(await stack.agent("a1").exited()).toBe(0);
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect((await stack.runs("a1")).map((r) => r.phase)).toEqual(["start", "end"]);
  });

  it("SIGTERM past the grace period: the apply is killed and reported interrupted, never run again", async () => {
    stack = await Stack.start({ agents: ["a1"], agentEnv: { DEPLOY_AGENT_SHUTDOWN_GRACE_MS: "500" } });
    await stack.control("a1", "hang");
    const client = stack.client();
    const d = await client.create({ requestId: "shut-3", app: "web", environment: "prod", changeset: { version: "v1" } });
    await pollUntil("a1 applying", async () => (await stack!.runs("a1")).length > 0);
    stack.agent("a1").signal("SIGTERM");
    expect(await stack.agent("a1").exited()).toBe(0);
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(/interrupted by agent shutdown/);
    await stack.control("a1", "hang", false);
    await stack.startAgent("a1");
    await new Promise((r) => setTimeout(r, 1000));
    expect(await stack.startsOf("a1", d.id!)).toBe(1);
  });
});
